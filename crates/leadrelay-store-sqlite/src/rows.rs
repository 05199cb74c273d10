//! Row ↔ domain conversions shared by the query modules.

use leadrelay_core::destination::{DestinationRecord, ErrorClass};
use leadrelay_core::storage::{Attempt, Delivery, DeliveryStatus, Result, StorageError};
use leadrelay_core::vault::{Column, Vault, VaultError};
use leadrelay_core::{
    ActionCode, Customer, CustomerId, DeliveryId, DestinationId, Lead, LeadId, OfferId, PublisherId, Source, Stage,
    Timestamp,
};
use rusqlite::Row;

fn corrupt(what: &str) -> StorageError {
    StorageError::Other(format!("stored {what} is not valid").into())
}

/// A value that does not open: the wrong key, or a damaged row. Says which without the value.
pub(crate) fn sealing(e: VaultError) -> StorageError {
    StorageError::Other(Box::new(e))
}

/// Opens a sealed column value.
pub(crate) fn open(v: &Vault, column: Column, sealed: Option<String>) -> Result<Option<String>> {
    v.open_opt(column, sealed.as_deref()).map_err(sealing)
}

pub(crate) fn ts(v: i64) -> Timestamp {
    Timestamp::from_millis(v)
}

pub(crate) fn lead_id(s: &str) -> Result<LeadId> {
    LeadId::parse(s).ok_or_else(|| corrupt("lead id"))
}
pub(crate) fn delivery_id(s: &str) -> Result<DeliveryId> {
    DeliveryId::parse(s).ok_or_else(|| corrupt("delivery id"))
}
pub(crate) fn destination_id(s: &str) -> Result<DestinationId> {
    DestinationId::parse(s).ok_or_else(|| corrupt("destination id"))
}
pub(crate) fn publisher_id(s: &str) -> Result<PublisherId> {
    PublisherId::parse(s).map_err(|_| corrupt("publisher id"))
}
pub(crate) fn offer_id(s: &str) -> Result<OfferId> {
    OfferId::parse(s).map_err(|_| corrupt("offer id"))
}

/// Columns of `leads` in the order [`lead_from_row`] reads them.
pub(crate) const LEAD_COLUMNS: &str = "id, publisher_id, offer_id, offer_title, source, action, raw_lead_source, stage, \
     first_name, last_name, email, phone, country, company, title, description, campaign, \
     customer_id, duplicate_of, merge_reason, is_test, pii_withheld, received_at, previously_erased";

/// The raw column values of a lead row; converted outside rusqlite's closure so errors map cleanly.
pub(crate) struct LeadRow {
    strings: [Option<String>; 20],
    is_test: bool,
    pii_withheld: bool,
    received_at: i64,
    previously_erased: bool,
}

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

impl LeadRow {
    pub(crate) fn into_lead(self, v: &Vault) -> Result<Lead> {
        let [
            id,
            publisher,
            offer,
            offer_title,
            source,
            action,
            raw,
            stage,
            first,
            last,
            email,
            phone,
            country,
            company,
            title,
            description,
            campaign,
            customer_id,
            duplicate_of,
            merge_reason,
        ] = self.strings;
        Ok(Lead {
            id: lead_id(id.as_deref().unwrap_or(""))?,
            publisher: publisher_id(publisher.as_deref().unwrap_or(""))?,
            offer: offer.as_deref().map(offer_id).transpose()?,
            offer_title,
            source: Source::parse(source.as_deref().unwrap_or("")),
            action: action.as_deref().and_then(ActionCode::parse),
            raw_lead_source: open(v, Column::RawLeadSource, raw)?,
            stage: Stage::parse(stage.as_deref().unwrap_or("")).map_err(|_| corrupt("stage"))?,
            customer: Customer {
                first_name: open(v, Column::FirstName, first)?,
                last_name: open(v, Column::LastName, last)?,
                email: open(v, Column::Email, email)?,
                phone: open(v, Column::Phone, phone)?,
                country,
                company: open(v, Column::Company, company)?,
                title: open(v, Column::Title, title)?,
            },
            description: open(v, Column::Description, description)?,
            campaign,
            is_test: self.is_test,
            pii_withheld: self.pii_withheld,
            received_at: ts(self.received_at),
            customer_id: customer_id
                .as_deref()
                .map(|c| CustomerId::parse(c).ok_or_else(|| corrupt("customer id")))
                .transpose()?,
            duplicate_of: duplicate_of.as_deref().map(lead_id).transpose()?,
            merge_reason,
            previously_erased: self.previously_erased,
        })
    }
}

/// Columns of `deliveries` in the order [`delivery_from_row`] reads them.
pub(crate) const DELIVERY_COLUMNS: &str =
    "id, lead_id, destination_id, publisher_id, status, attempts, next_attempt_at, last_error, created_at, updated_at";

pub(crate) type DeliveryRow = (String, String, String, String, String, u32, Option<i64>, Option<String>, i64, i64);

pub(crate) fn delivery_row(r: &Row<'_>) -> rusqlite::Result<DeliveryRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?))
}

pub(crate) fn delivery_from_row(row: DeliveryRow, v: &Vault) -> Result<Delivery> {
    let (id, lead, dest, publisher, status, attempts, next, last_error, created, updated) = row;
    Ok(Delivery {
        id: delivery_id(&id)?,
        lead_id: lead_id(&lead)?,
        destination: destination_id(&dest)?,
        publisher: publisher_id(&publisher)?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| corrupt("delivery status"))?,
        attempts,
        next_attempt_at: next.map(ts),
        last_error: open(v, Column::AttemptMessage, last_error)?,
        created_at: ts(created),
        updated_at: ts(updated),
    })
}

/// Columns of `destinations` in the order [`destination_from_row`] reads them.
pub(crate) const DESTINATION_COLUMNS: &str = "id, publisher_id, name, kind, settings, offers, enabled, disabled_reason, \
     consecutive_failures, failing_since, created_at, updated_at";

pub(crate) type DestinationRow =
    (String, String, String, String, String, Option<String>, bool, Option<String>, u32, Option<i64>, i64, i64);

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

pub(crate) fn destination_from_row(row: DestinationRow, v: &Vault) -> Result<DestinationRecord> {
    let (id, publisher, name, kind, settings, offers, enabled, reason, failures, failing_since, created, updated) = row;
    let offers = match offers {
        None => None,
        Some(json) => {
            let ids: Vec<String> = serde_json::from_str(&json).map_err(|_| corrupt("destination offers"))?;
            Some(ids.iter().map(|s| offer_id(s)).collect::<Result<Vec<_>>>()?)
        }
    };
    Ok(DestinationRecord {
        id: destination_id(&id)?,
        publisher: publisher_id(&publisher)?,
        name,
        kind,
        settings: serde_json::from_str(&v.open(Column::DestinationSettings, &settings).map_err(sealing)?)
            .map_err(|_| corrupt("destination settings"))?,
        offers,
        enabled,
        disabled_reason: reason,
        consecutive_failures: failures,
        failing_since: failing_since.map(ts),
        created_at: ts(created),
        updated_at: ts(updated),
    })
}

pub(crate) fn offers_json(offers: &Option<Vec<OfferId>>) -> Option<String> {
    offers
        .as_ref()
        .map(|list| serde_json::to_string(&list.iter().map(OfferId::as_str).collect::<Vec<_>>()).unwrap_or_default())
}

pub(crate) fn error_class(s: Option<String>) -> Option<ErrorClass> {
    match s.as_deref()? {
        "transient" => Some(ErrorClass::Transient),
        "throttled" => Some(ErrorClass::Throttled),
        "permanent" => Some(ErrorClass::Permanent),
        "gone" => Some(ErrorClass::Gone),
        _ => None,
    }
}

pub(crate) type AttemptRow = (String, u32, i64, i64, Option<u16>, Option<String>, Option<String>, Option<String>);

pub(crate) fn attempt_row(r: &Row<'_>) -> rusqlite::Result<AttemptRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
}

pub(crate) fn attempt_from_row(row: AttemptRow, v: &Vault) -> Result<Attempt> {
    let (delivery, number, started, duration, status, class, message, excerpt) = row;
    Ok(Attempt {
        delivery_id: delivery_id(&delivery)?,
        number,
        started_at: ts(started),
        duration_ms: u64::try_from(duration).unwrap_or(0),
        status_code: status,
        error_class: error_class(class),
        message: open(v, Column::AttemptMessage, message)?,
        excerpt: open(v, Column::AttemptExcerpt, excerpt)?,
    })
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
