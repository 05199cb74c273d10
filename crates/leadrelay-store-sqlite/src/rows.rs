//! Reading rusqlite rows into the stored form that `leadrelay_core::stored` converts, and the
//! paged list query.

use leadrelay_core::storage::Result;
pub(crate) use leadrelay_core::stored::*;
use rusqlite::Row;

pub(crate) fn lead_row(r: &Row<'_>) -> rusqlite::Result<LeadRow> {
    let mut strings: [Option<String>; 20] = Default::default();
    for (i, slot) in strings.iter_mut().enumerate() {
        *slot = r.get(i)?;
    }
    Ok(LeadRow {
        strings,
        is_test: r.get(20)?,
        pii_withheld: r.get(21)?,
        received_at: r.get(22)?,
        previously_erased: r.get(23)?,
    })
}

pub(crate) fn delivery_row(r: &Row<'_>) -> rusqlite::Result<DeliveryRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?))
}

pub(crate) fn destination_row(r: &Row<'_>) -> rusqlite::Result<DestinationRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
    ))
}

pub(crate) fn attempt_row(r: &Row<'_>) -> rusqlite::Result<AttemptRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
}

/// A `SELECT … WHERE` built from optional filters, newest first by id, one page at a time.
pub(crate) struct PagedQuery {
    sql: String,
    args: Vec<rusqlite::types::Value>,
}

impl PagedQuery {
    /// Starts from `SELECT {columns} FROM {table}`.
    pub(crate) fn new(columns: &str, table: &str) -> Self {
        Self { sql: format!("SELECT {columns} FROM {table} WHERE 1 = 1"), args: Vec::new() }
    }

    /// Adds `AND {clause} ?n` when `value` is present (`clause` ends with its operator).
    pub(crate) fn and(&mut self, clause: &str, value: Option<rusqlite::types::Value>) {
        if let Some(v) = value {
            self.args.push(v);
            self.sql.push_str(&format!(" AND {clause} ?{}", self.args.len()));
        }
    }

    /// Binds `value` and returns its placeholder, for a clause written with [`PagedQuery::push`].
    pub(crate) fn arg(&mut self, value: rusqlite::types::Value) -> String {
        self.args.push(value);
        format!("?{}", self.args.len())
    }

    /// Appends SQL as it is (` AND …`, its values bound with [`PagedQuery::arg`]).
    pub(crate) fn push(&mut self, sql: &str) {
        self.sql.push_str(sql);
    }

    /// Adds, for each blind-index term, `AND id IN (leads holding it)`: every term must match.
    /// No terms (a search with no word in it) matches nothing.
    pub(crate) fn and_terms(&mut self, terms: &[String]) {
        if terms.is_empty() {
            self.sql.push_str(" AND 0");
        }
        for t in terms {
            self.args.push(rusqlite::types::Value::Text(t.clone()));
            self.sql
                .push_str(&format!(" AND id IN (SELECT lead_id FROM lead_terms WHERE term = ?{})", self.args.len()));
        }
    }

    #[cfg(test)]
    pub(crate) fn sql_for_tests(&self) -> String {
        self.sql.clone()
    }

    /// Runs the query for one page and converts the rows.
    pub(crate) fn run<R, T>(
        mut self,
        c: &rusqlite::Connection,
        page: &leadrelay_core::storage::PageRequest,
        row: impl FnMut(&Row<'_>) -> rusqlite::Result<R>,
        convert: impl FnMut(R) -> Result<T>,
        id_of: impl Fn(&T) -> String,
    ) -> Result<leadrelay_core::storage::Page<T>> {
        self.and("id <", page.cursor.clone().map(rusqlite::types::Value::Text));
        let limit = page.limit.max(1) as usize;
        self.sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", limit + 1));
        let mut items = crate::query_rows(c, &self.sql, rusqlite::params_from_iter(self.args), row, convert)?;
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(id_of)
        } else {
            None
        };
        Ok(leadrelay_core::storage::Page { items, next_cursor })
    }
}

/// Text for a filter value.
pub(crate) fn text(v: Option<&str>) -> Option<rusqlite::types::Value> {
    v.map(|s| rusqlite::types::Value::Text(s.to_owned()))
}
