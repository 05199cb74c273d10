//! How every storage backend stores a value, so that one database format holds whatever the
//! backend: ids, kinds and statuses as their text, times as milliseconds since the epoch, lists
//! as JSON text, personal data and secrets sealed by the [`Vault`] per column. The conversions
//! from stored values back to domain types live here once; each backend only reads its driver's
//! row into these plain types. A stored value that does not parse is corruption (`Other`), never
//! a panic.

pub mod leads;
pub mod outbox;
pub mod sales;

use crate::destination::{DestinationRecord, ErrorClass};
use crate::storage::{Attempt, Delivery, DeliveryStatus, Result, StorageError};
use crate::vault::{Column, Vault, VaultError};
use crate::{
    ActionCode, Customer, CustomerId, DeliveryId, DestinationId, Lead, LeadId, OfferId, PublisherId, Source, Stage,
    Timestamp,
};

/// A stored value that does not parse as what its column holds.
pub fn corrupt(what: &str) -> StorageError {
    StorageError::Other(format!("stored {what} is not valid").into())
}

/// A value that does not open: the wrong key, or a damaged row. Says which without the value.
pub fn sealing(e: VaultError) -> StorageError {
    StorageError::Other(Box::new(e))
}

/// Opens a sealed column value.
pub fn open(v: &Vault, column: Column, sealed: Option<String>) -> Result<Option<String>> {
    v.open_opt(column, sealed.as_deref()).map_err(sealing)
}

/// A stored time (milliseconds since the epoch).
pub fn ts(v: i64) -> Timestamp {
    Timestamp::from_millis(v)
}

/// A stored lead id.
pub fn lead_id(s: &str) -> Result<LeadId> {
    LeadId::parse(s).ok_or_else(|| corrupt("lead id"))
}
/// A stored delivery id.
pub fn delivery_id(s: &str) -> Result<DeliveryId> {
    DeliveryId::parse(s).ok_or_else(|| corrupt("delivery id"))
}
/// A stored destination id.
pub fn destination_id(s: &str) -> Result<DestinationId> {
    DestinationId::parse(s).ok_or_else(|| corrupt("destination id"))
}
/// A stored publisher id.
pub fn publisher_id(s: &str) -> Result<PublisherId> {
    PublisherId::parse(s).map_err(|_| corrupt("publisher id"))
}
/// A stored offer id.
pub fn offer_id(s: &str) -> Result<OfferId> {
    OfferId::parse(s).map_err(|_| corrupt("offer id"))
}

/// Columns of `leads` in the order [`lead_from_row`] reads them.
pub const LEAD_COLUMNS: &str = "id, publisher_id, offer_id, offer_title, source, action, raw_lead_source, stage, \
     first_name, last_name, email, phone, country, company, title, description, campaign, \
     customer_id, duplicate_of, merge_reason, is_test, pii_withheld, received_at, previously_erased";

/// The raw column values of a lead row, in [`LEAD_COLUMNS`] order: the 20 text columns, then
/// the flags and the time.
pub struct LeadRow {
    /// The text columns, `id` to `merge_reason`.
    pub strings: [Option<String>; 20],
    /// `is_test`.
    pub is_test: bool,
    /// `pii_withheld`.
    pub pii_withheld: bool,
    /// `received_at`.
    pub received_at: i64,
    /// `previously_erased`.
    pub previously_erased: bool,
}

impl LeadRow {
    /// The lead, its personal data opened.
    pub fn into_lead(self, v: &Vault) -> Result<Lead> {
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
pub const DELIVERY_COLUMNS: &str =
    "id, lead_id, destination_id, publisher_id, status, attempts, next_attempt_at, last_error, created_at, updated_at";

/// The raw column values of a delivery row, in [`DELIVERY_COLUMNS`] order.
pub type DeliveryRow = (String, String, String, String, String, u32, Option<i64>, Option<String>, i64, i64);

/// A delivery from its stored row.
pub fn delivery_from_row(row: DeliveryRow, v: &Vault) -> Result<Delivery> {
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
pub const DESTINATION_COLUMNS: &str = "id, publisher_id, name, kind, settings, offers, enabled, disabled_reason, \
     consecutive_failures, failing_since, created_at, updated_at";

/// The raw column values of a destination row, in [`DESTINATION_COLUMNS`] order.
pub type DestinationRow =
    (String, String, String, String, String, Option<String>, bool, Option<String>, u32, Option<i64>, i64, i64);

/// A destination from its stored row (its settings opened).
pub fn destination_from_row(row: DestinationRow, v: &Vault) -> Result<DestinationRecord> {
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

/// A destination's offer list as stored: a JSON array of ids, `None` for every offer.
pub fn offers_json(offers: &Option<Vec<OfferId>>) -> Option<String> {
    offers
        .as_ref()
        .map(|list| serde_json::to_string(&list.iter().map(OfferId::as_str).collect::<Vec<_>>()).unwrap_or_default())
}

/// A stored error class (`None` for none or an unknown one).
pub fn error_class(s: Option<String>) -> Option<ErrorClass> {
    match s.as_deref()? {
        "transient" => Some(ErrorClass::Transient),
        "throttled" => Some(ErrorClass::Throttled),
        "permanent" => Some(ErrorClass::Permanent),
        "gone" => Some(ErrorClass::Gone),
        _ => None,
    }
}

/// The raw column values of an attempt row: delivery id, number, start, duration, status code, class, message, excerpt.
pub type AttemptRow = (String, u32, i64, i64, Option<u16>, Option<String>, Option<String>, Option<String>);

/// An attempt from its stored row.
pub fn attempt_from_row(row: AttemptRow, v: &Vault) -> Result<Attempt> {
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

/// A table with sealed columns: its name, the columns that name a row, and each sealed column
/// with the kind of value it holds.
pub type SealedTable = (&'static str, &'static [&'static str], &'static [(&'static str, Column)]);

/// Every sealed column of the schema, which key rotation re-seals and `keys status` counts.
pub const SEALED_COLUMNS: &[SealedTable] = &[
    (
        "leads",
        &["id"],
        &[
            ("first_name", Column::FirstName),
            ("last_name", Column::LastName),
            ("email", Column::Email),
            ("phone", Column::Phone),
            ("company", Column::Company),
            ("title", Column::Title),
            ("description", Column::Description),
            ("raw_lead_source", Column::RawLeadSource),
        ],
    ),
    ("destinations", &["id"], &[("settings", Column::DestinationSettings)]),
    ("deliveries", &["id"], &[("last_error", Column::AttemptMessage)]),
    (
        "attempts",
        &["delivery_id", "number"],
        &[("message", Column::AttemptMessage), ("excerpt", Column::AttemptExcerpt)],
    ),
    ("users", &["id"], &[("email", Column::UserEmail), ("name", Column::UserName)]),
    ("activities", &["id"], &[("outcome", Column::ActivityOutcome), ("note", Column::ActivityNote)]),
    ("opportunities", &["id"], &[("reason", Column::OpportunityReason)]),
];

/// Columns of `offers` in the order [`offer_from_row`] reads them.
pub const OFFER_COLUMNS: &str =
    "id, publisher_id, title, offer_type, created_at, updated_at, published_at, last_validation";

/// The raw column values of an offer row, in [`OFFER_COLUMNS`] order.
pub type OfferRow = (String, String, String, String, i64, i64, Option<i64>, Option<String>);

/// An offer from its stored row. A last validation that is not JSON reads as none: it is a
/// report of a past publish, not a value anything depends on.
pub fn offer_from_row(row: OfferRow) -> Result<crate::storage::Offer> {
    let (id, publisher, title, kind, created, updated, published, validation) = row;
    Ok(crate::storage::Offer {
        id: offer_id(&id)?,
        publisher: publisher_id(&publisher)?,
        title,
        offer_type: crate::OfferType::parse(&kind).ok_or_else(|| corrupt("offer type"))?,
        created_at: ts(created),
        updated_at: ts(updated),
        published_at: published.map(ts),
        last_validation: validation.and_then(|v| serde_json::from_str(&v).ok()),
    })
}

/// Columns of `ingest_keys` in the order [`ingest_key_from_row`] reads them.
pub const INGEST_KEY_COLUMNS: &str = "id, key_hash, publisher_id, offer_id, created_at, revoked_at";

/// The raw column values of an ingest key row, in [`INGEST_KEY_COLUMNS`] order.
pub type IngestKeyRow = (String, String, String, Option<String>, i64, Option<i64>);

/// An ingest key from its stored row.
pub fn ingest_key_from_row(row: IngestKeyRow) -> Result<crate::storage::IngestKey> {
    let (id, key_hash, publisher, offer, created, revoked) = row;
    Ok(crate::storage::IngestKey {
        id: crate::IngestKeyId::parse(&id).ok_or_else(|| corrupt("ingest key id"))?,
        key_hash,
        publisher: publisher_id(&publisher)?,
        offer: offer.as_deref().map(offer_id).transpose()?,
        created_at: ts(created),
        revoked_at: revoked.map(ts),
    })
}

/// Columns of `api_tokens` in the order [`api_token_from_row`] reads them.
pub const API_TOKEN_COLUMNS: &str = "id, token_hash, publisher_id, scopes, created_at, revoked_at";

/// The raw column values of an API token row, in [`API_TOKEN_COLUMNS`] order.
pub type ApiTokenRow = (String, String, Option<String>, String, i64, Option<i64>);

/// An API token from its stored row (scopes as [`crate::access::format_scopes`] wrote them).
pub fn api_token_from_row(row: ApiTokenRow) -> Result<crate::storage::ApiToken> {
    let (id, token_hash, publisher, scopes, created, revoked) = row;
    Ok(crate::storage::ApiToken {
        id: crate::TokenId::parse(&id).ok_or_else(|| corrupt("token id"))?,
        token_hash,
        publisher: publisher.as_deref().map(publisher_id).transpose()?,
        scopes: crate::access::parse_scopes(&scopes),
        created_at: ts(created),
        revoked_at: revoked.map(ts),
    })
}

/// The `instance_settings` key of the admin token's SHA-256.
pub const ADMIN_TOKEN_KEY: &str = "admin_token_sha256";

/// Columns of `audit_log` in the order [`audit_from_row`] reads them.
pub const AUDIT_COLUMNS: &str =
    "id, at, actor, actor_publisher_id, publisher_id, action, object_id, count, text_search";

/// The raw column values of an audit row, in [`AUDIT_COLUMNS`] order.
pub type AuditRow = (String, i64, String, Option<String>, Option<String>, String, Option<String>, Option<i64>, bool);

/// An audit entry from its stored row.
pub fn audit_from_row(row: AuditRow) -> Result<crate::audit::AuditEntry> {
    use crate::audit::{Actor, ActorId, AuditAction, AuditEntry, AuditObject};
    let (id, at, actor, actor_publisher, publisher, action, object, count, text_search) = row;
    Ok(AuditEntry {
        id: crate::AuditId::parse(&id).ok_or_else(|| corrupt("audit id"))?,
        at: ts(at),
        actor: Actor {
            id: ActorId::parse(&actor).map_err(|_| corrupt("audit actor"))?,
            publisher: actor_publisher.as_deref().map(publisher_id).transpose()?,
        },
        publisher: publisher.as_deref().map(publisher_id).transpose()?,
        action: AuditAction::parse(&action).ok_or_else(|| corrupt("audit action"))?,
        object: object.as_deref().map(|o| AuditObject::parse(o).ok_or_else(|| corrupt("audit object"))).transpose()?,
        count: count.map(|n| u64::try_from(n).unwrap_or(0)),
        text_search,
    })
}

/// An audit entry's count as stored (a count past `i64::MAX` is stored as that).
pub fn audit_count(count: Option<u64>) -> Option<i64> {
    count.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

/// Columns of `users` (as `u`) in the order [`UserRow`] holds them.
pub const USER_COLUMNS: &str =
    "u.id, u.publisher_id, u.email, u.name, u.role, u.password_hash, u.invite_hash, u.invite_expires_at, u.created_at";

/// The same columns unqualified (a `RETURNING` clause names the table's own columns).
pub const USER_RETURNING: &str =
    "id, publisher_id, email, name, role, password_hash, invite_hash, invite_expires_at, created_at";

/// The raw column values of a user row, in [`USER_COLUMNS`] order; `email` and `name` sealed.
pub struct UserRow {
    /// `id`.
    pub id: String,
    /// `publisher_id`.
    pub publisher: String,
    /// `email`, sealed.
    pub email: String,
    /// `name`, sealed.
    pub name: String,
    /// `role`.
    pub role: String,
    /// `password_hash`.
    pub password_hash: Option<String>,
    /// `invite_hash`.
    pub invite_hash: Option<String>,
    /// `invite_expires_at`.
    pub invite_expires_at: Option<i64>,
    /// `created_at`.
    pub created_at: i64,
}

impl UserRow {
    /// The user, address and name opened.
    pub fn into_user(self, v: &Vault) -> Result<crate::sales::User> {
        Ok(crate::sales::User {
            id: crate::UserId::parse(&self.id).ok_or_else(|| corrupt("user id"))?,
            publisher: publisher_id(&self.publisher)?,
            email: v.open(Column::UserEmail, &self.email).map_err(sealing)?,
            name: v.open(Column::UserName, &self.name).map_err(sealing)?,
            role: crate::sales::Role::parse(&self.role).ok_or_else(|| corrupt("user role"))?,
            password_hash: self.password_hash,
            invite_hash: self.invite_hash,
            invite_expires_at: self.invite_expires_at.map(ts),
            created_at: ts(self.created_at),
        })
    }
}

/// The digest a user is found by, `users.email_hash`: of the address trimmed and lowercased
/// (the caller should have normalised it already; doing it again here keeps one address one
/// digest whatever).
pub fn user_email_digest(v: &Vault, email: &str) -> String {
    v.user_email_digest(&email.trim().to_lowercase())
}
