//! Reading driver rows into the stored form that `leadrelay_core::stored` converts, and the
//! paged list query.

use leadrelay_core::storage::{Page, PageRequest, Result, StorageError};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, ToSql};

pub(crate) use leadrelay_core::stored::*;

use crate::Db;

/// Column `i` of `r`; a type that does not match is corruption, not a panic.
pub(crate) fn get<'a, T: FromSql<'a>>(r: &'a Row, i: usize) -> Result<T> {
    r.try_get(i).map_err(|e| StorageError::Other(Box::new(e)))
}

/// A stored count that must fit a `u32`.
pub(crate) fn count(v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| corrupt("count"))
}

/// A row selected with [`LEAD_COLUMNS`].
pub(crate) fn lead_row(r: &Row) -> Result<LeadRow> {
    let mut strings: [Option<String>; 20] = Default::default();
    for (i, slot) in strings.iter_mut().enumerate() {
        *slot = get(r, i)?;
    }
    Ok(LeadRow {
        strings,
        is_test: get(r, 20)?,
        pii_withheld: get(r, 21)?,
        received_at: get(r, 22)?,
        previously_erased: get(r, 23)?,
    })
}

/// A row selected with [`DELIVERY_COLUMNS`].
pub(crate) fn delivery_row(r: &Row) -> Result<DeliveryRow> {
    Ok((
        get(r, 0)?,
        get(r, 1)?,
        get(r, 2)?,
        get(r, 3)?,
        get(r, 4)?,
        count(get(r, 5)?)?,
        get(r, 6)?,
        get(r, 7)?,
        get(r, 8)?,
        get(r, 9)?,
    ))
}

/// A row selected with [`DESTINATION_COLUMNS`].
pub(crate) fn destination_row(r: &Row) -> Result<DestinationRow> {
    Ok((
        get(r, 0)?,
        get(r, 1)?,
        get(r, 2)?,
        get(r, 3)?,
        get(r, 4)?,
        get(r, 5)?,
        get(r, 6)?,
        get(r, 7)?,
        count(get(r, 8)?)?,
        get(r, 9)?,
        get(r, 10)?,
        get(r, 11)?,
    ))
}

/// A row of `delivery_id, number, started_at, duration_ms, status_code, error_class, message,
/// excerpt` from `attempts`.
pub(crate) fn attempt_row(r: &Row) -> Result<AttemptRow> {
    let status: Option<i64> = get(r, 4)?;
    Ok((
        get(r, 0)?,
        count(get(r, 1)?)?,
        get(r, 2)?,
        get(r, 3)?,
        status.map(|s| u16::try_from(s).map_err(|_| corrupt("status code"))).transpose()?,
        get(r, 5)?,
        get(r, 6)?,
        get(r, 7)?,
    ))
}

/// A value bound to a [`PagedQuery`].
pub(crate) type Arg = Box<dyn ToSql + Sync + Send>;

/// A `SELECT … WHERE` built from optional filters, newest first by id, one page at a time.
pub(crate) struct PagedQuery {
    sql: String,
    args: Vec<Arg>,
}

impl PagedQuery {
    /// Starts from `SELECT {columns} FROM {table}`.
    pub(crate) fn new(columns: &str, table: &str) -> Self {
        Self { sql: format!("SELECT {columns} FROM {table} WHERE TRUE"), args: Vec::new() }
    }

    /// Adds `AND {clause} $n` when `value` is present (`clause` ends with its operator).
    pub(crate) fn and(&mut self, clause: &str, value: Option<Arg>) {
        if let Some(v) = value {
            let placeholder = self.arg(v);
            self.sql.push_str(&format!(" AND {clause} {placeholder}"));
        }
    }

    /// Binds `value` and returns its placeholder, for a clause written with [`PagedQuery::push`].
    pub(crate) fn arg(&mut self, value: Arg) -> String {
        self.args.push(value);
        format!("${}", self.args.len())
    }

    /// Appends SQL as it is (` AND …`, its values bound with [`PagedQuery::arg`]).
    pub(crate) fn push(&mut self, sql: &str) {
        self.sql.push_str(sql);
    }

    /// Adds, for each blind-index term, `AND id IN (leads holding it)`: every term must match.
    /// No terms (a search with no word in it) matches nothing.
    pub(crate) fn and_terms(&mut self, terms: &[String]) {
        if terms.is_empty() {
            self.sql.push_str(" AND FALSE");
        }
        for t in terms {
            let placeholder = self.arg(Box::new(t.clone()));
            self.sql.push_str(&format!(" AND id IN (SELECT lead_id FROM lead_terms WHERE term = {placeholder})"));
        }
    }

    /// Runs the query for one page and converts the rows.
    pub(crate) async fn run<T>(
        mut self,
        db: &Db<'_>,
        page: &PageRequest,
        mut convert: impl FnMut(&Row) -> Result<T>,
        id_of: impl Fn(&T) -> String,
    ) -> Result<Page<T>> {
        self.and("id <", page.cursor.clone().map(|c| Box::new(c) as Arg));
        let limit = page.limit.max(1) as usize;
        self.sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", limit + 1));
        let params: Vec<&(dyn ToSql + Sync)> = self.args.iter().map(|a| a.as_ref() as &(dyn ToSql + Sync)).collect();
        let rows = db.rows(&self.sql, &params).await?;
        let mut items = rows.iter().map(&mut convert).collect::<Result<Vec<T>>>()?;
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(id_of)
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }
}

/// Text for a filter value.
pub(crate) fn text(v: Option<&str>) -> Option<Arg> {
    v.map(|s| Box::new(s.to_owned()) as Arg)
}
