//! Publishers, offers, destinations and ingest keys.

use leadrelay_core::access::{format_scopes, parse_scopes};
use leadrelay_core::destination::DestinationRecord;
use leadrelay_core::storage::{ApiToken, IngestKey, Offer, Publisher, Result, StorageError, Upserted};
use leadrelay_core::{DestinationId, IngestKeyId, OfferId, OfferType, PublisherId, Timestamp, TokenId};
use rusqlite::{OptionalExtension, params};

use crate::rows::{self, DESTINATION_COLUMNS, destination_from_row, destination_row, ts};
use crate::{SqliteStore, map_err, query_rows};

pub(crate) async fn create_publisher(store: &SqliteStore, p: &Publisher) -> Result<()> {
    let (id, name, at) = (p.id.as_str().to_owned(), p.name.clone(), p.created_at.as_millis());
    store
        .write(move |c| {
            c.prepare_cached("INSERT INTO publishers (id, name, created_at) VALUES (?1, ?2, ?3)")
                .and_then(|mut s| s.execute(params![id, name, at]))
                .map(drop)
                .map_err(map_err)
        })
        .await
}

pub(crate) async fn get_publisher(store: &SqliteStore, id: &PublisherId) -> Result<Publisher> {
    let id = id.as_str().to_owned();
    store
        .read(move |c| {
            let (id, name, at): (String, String, i64) = c
                .prepare_cached("SELECT id, name, created_at FROM publishers WHERE id = ?1")
                .and_then(|mut s| s.query_row([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))))
                .map_err(map_err)?;
            Ok(Publisher { id: rows::publisher_id(&id)?, name, created_at: ts(at) })
        })
        .await
}

pub(crate) async fn upsert_offer(store: &SqliteStore, o: &Offer) -> Result<Upserted> {
    let o = o.clone();
    store
        .write(move |c| {
            let existed: bool = c
                .prepare_cached("SELECT 1 FROM offers WHERE id = ?1")
                .and_then(|mut s| s.query_row([o.id.as_str()], |_| Ok(())).optional())
                .map_err(map_err)?
                .is_some();
            c.prepare_cached(
                "INSERT INTO offers (id, publisher_id, title, offer_type, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                 ON CONFLICT (id) DO UPDATE SET title = excluded.title, offer_type = excluded.offer_type, updated_at = excluded.updated_at",
            )
            .and_then(|mut s| {
                s.execute(params![o.id.as_str(), o.publisher.as_str(), o.title, o.offer_type.as_str(), o.updated_at.as_millis()])
            })
            .map_err(map_err)?;
            Ok(if existed { Upserted::Updated } else { Upserted::Created })
        })
        .await
}

type OfferRow = (String, String, String, String, i64, i64, Option<i64>, Option<String>);

fn offer_from_row((id, publisher, title, kind, created, updated, published, validation): OfferRow) -> Result<Offer> {
    Ok(Offer {
        id: rows::offer_id(&id)?,
        publisher: rows::publisher_id(&publisher)?,
        title,
        offer_type: OfferType::parse(&kind)
            .ok_or_else(|| StorageError::Other("stored offer type is not valid".into()))?,
        created_at: ts(created),
        updated_at: ts(updated),
        published_at: published.map(ts),
        last_validation: validation.and_then(|v| serde_json::from_str(&v).ok()),
    })
}

const OFFER_COLUMNS: &str =
    "id, publisher_id, title, offer_type, created_at, updated_at, published_at, last_validation";

fn offer_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OfferRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
}

pub(crate) async fn record_publication(
    store: &SqliteStore,
    id: &OfferId,
    at: Timestamp,
    results: &serde_json::Value,
) -> Result<()> {
    let (id, results) = (id.as_str().to_owned(), results.to_string());
    store
        .write(move |c| {
            let n = c
                .execute(
                    "UPDATE offers SET published_at = ?2, last_validation = ?3 WHERE id = ?1",
                    params![id, at.as_millis(), results],
                )
                .map_err(map_err)?;
            if n == 0 { Err(StorageError::NotFound) } else { Ok(()) }
        })
        .await
}

pub(crate) async fn get_offer(store: &SqliteStore, id: &OfferId) -> Result<Offer> {
    let id = id.as_str().to_owned();
    store
        .read(move |c| {
            let row = c
                .prepare_cached(&format!("SELECT {OFFER_COLUMNS} FROM offers WHERE id = ?1"))
                .and_then(|mut s| s.query_row([&id], offer_row))
                .map_err(map_err)?;
            offer_from_row(row)
        })
        .await
}

pub(crate) async fn list_offers(store: &SqliteStore, publisher: &PublisherId) -> Result<Vec<Offer>> {
    let p = publisher.as_str().to_owned();
    store
        .read(move |c| {
            let sql = format!("SELECT {OFFER_COLUMNS} FROM offers WHERE publisher_id = ?1 ORDER BY id");
            query_rows(c, &sql, [&p], offer_row, offer_from_row)
        })
        .await
}

pub(crate) async fn create_destination(store: &SqliteStore, d: &DestinationRecord) -> Result<()> {
    let d = d.clone();
    store
        .write(move |c| {
            c.prepare_cached(
                "INSERT INTO destinations (id, publisher_id, name, kind, settings, offers, enabled, disabled_reason,
                     consecutive_failures, failing_since, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, NULL, ?9, ?10)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    d.id.as_str(),
                    d.publisher.as_str(),
                    d.name,
                    d.kind,
                    d.settings.to_string(),
                    rows::offers_json(&d.offers),
                    d.enabled,
                    d.disabled_reason,
                    d.created_at.as_millis(),
                    d.updated_at.as_millis()
                ])
            })
            .map(drop)
            .map_err(map_err)
        })
        .await
}

pub(crate) async fn get_destination(store: &SqliteStore, id: &DestinationId) -> Result<DestinationRecord> {
    let id = id.as_str().to_owned();
    store
        .read(move |c| {
            let row = c
                .prepare_cached(&format!("SELECT {DESTINATION_COLUMNS} FROM destinations WHERE id = ?1"))
                .and_then(|mut s| s.query_row([&id], destination_row))
                .map_err(map_err)?;
            destination_from_row(row)
        })
        .await
}

pub(crate) async fn list_destinations(store: &SqliteStore, publisher: &PublisherId) -> Result<Vec<DestinationRecord>> {
    let p = publisher.as_str().to_owned();
    store
        .read(move |c| {
            let sql = format!("SELECT {DESTINATION_COLUMNS} FROM destinations WHERE publisher_id = ?1 ORDER BY id");
            query_rows(c, &sql, [&p], destination_row, destination_from_row)
        })
        .await
}

pub(crate) async fn set_destination_enabled(
    store: &SqliteStore,
    id: &DestinationId,
    enabled: bool,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<()> {
    let (id, reason, now) = (id.as_str().to_owned(), reason.map(str::to_owned), now.as_millis());
    store
        .write(move |c| {
            let changed = c
                .execute(
                    "UPDATE destinations SET enabled = ?2, disabled_reason = ?3, updated_at = ?4,
                         consecutive_failures = CASE WHEN ?2 THEN 0 ELSE consecutive_failures END,
                         failing_since = CASE WHEN ?2 THEN NULL ELSE failing_since END
                     WHERE id = ?1",
                    params![id, enabled, if enabled { None } else { reason }, now],
                )
                .map_err(map_err)?;
            if changed == 0 {
                return Err(StorageError::NotFound);
            }
            pause_or_resume(c, &id, enabled, now)
        })
        .await
}

/// Pausing parks a destination's waiting deliveries (no due time); resuming makes them due now.
/// Deliveries in flight keep their lease; their result is parked when it is recorded.
pub(crate) fn pause_or_resume(c: &rusqlite::Connection, destination: &str, enabled: bool, now: i64) -> Result<()> {
    let sql = if enabled {
        "UPDATE deliveries SET next_attempt_at = ?2 WHERE destination_id = ?1 AND status = 'pending' AND next_attempt_at IS NULL"
    } else {
        "UPDATE deliveries SET next_attempt_at = NULL
         WHERE destination_id = ?1 AND status = 'pending' AND (lease_token IS NULL OR next_attempt_at <= ?2)"
    };
    c.execute(sql, params![destination, now]).map(drop).map_err(map_err)
}

pub(crate) async fn create_ingest_key(store: &SqliteStore, k: &IngestKey) -> Result<()> {
    let k = k.clone();
    store
        .write(move |c| {
            c.execute(
                "INSERT INTO ingest_keys (id, key_hash, publisher_id, offer_id, created_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
                params![k.id.as_str(), k.key_hash, k.publisher.as_str(), k.offer.as_ref().map(OfferId::as_str), k.created_at.as_millis()],
            )
            .map(drop)
            .map_err(map_err)
        })
        .await
}

pub(crate) async fn find_ingest_key(store: &SqliteStore, key_hash: &str) -> Result<IngestKey> {
    let hash = key_hash.to_owned();
    store
        .read(move |c| {
            let (id, hash, publisher, offer, created, revoked): (String, String, String, Option<String>, i64, Option<i64>) = c
                .prepare_cached("SELECT id, key_hash, publisher_id, offer_id, created_at, revoked_at FROM ingest_keys WHERE key_hash = ?1")
                .and_then(|mut s| s.query_row([&hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))))
                .map_err(map_err)?;
            Ok(IngestKey {
                id: IngestKeyId::parse(&id).ok_or_else(|| StorageError::Other("stored ingest key id is not valid".into()))?,
                key_hash: hash,
                publisher: rows::publisher_id(&publisher)?,
                offer: offer.as_deref().map(rows::offer_id).transpose()?,
                created_at: ts(created),
                revoked_at: revoked.map(ts),
            })
        })
        .await
}

pub(crate) async fn revoke_ingest_key(
    store: &SqliteStore,
    publisher: &PublisherId,
    id: &IngestKeyId,
    now: Timestamp,
) -> Result<()> {
    revoke(store, "ingest_keys", publisher, id.as_str(), now).await
}

/// Marks a publisher's credential (ingest key or API token) revoked; revoking twice keeps the
/// first time. `NotFound` if the publisher has no such credential.
async fn revoke(
    store: &SqliteStore,
    table: &'static str,
    publisher: &PublisherId,
    id: &str,
    now: Timestamp,
) -> Result<()> {
    let (p, id, now) = (publisher.as_str().to_owned(), id.to_owned(), now.as_millis());
    store
        .write(move |c| {
            let sql =
                format!("UPDATE {table} SET revoked_at = COALESCE(revoked_at, ?3) WHERE id = ?1 AND publisher_id = ?2");
            let n = c.execute(&sql, params![id, p, now]).map_err(map_err)?;
            if n == 0 { Err(StorageError::NotFound) } else { Ok(()) }
        })
        .await
}

pub(crate) async fn create_api_token(store: &SqliteStore, t: &ApiToken) -> Result<()> {
    let t = t.clone();
    store
        .write(move |c| {
            c.execute(
                "INSERT INTO api_tokens (id, token_hash, publisher_id, scopes, created_at, revoked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
                params![
                    t.id.as_str(),
                    t.token_hash,
                    t.publisher.as_ref().map(PublisherId::as_str),
                    format_scopes(&t.scopes),
                    t.created_at.as_millis()
                ],
            )
            .map(drop)
            .map_err(map_err)
        })
        .await
}

pub(crate) async fn find_api_token(store: &SqliteStore, token_hash: &str) -> Result<ApiToken> {
    let hash = token_hash.to_owned();
    store
        .read(move |c| {
            type Row = (String, String, Option<String>, String, i64, Option<i64>);
            let (id, hash, publisher, scopes, created, revoked): Row = c
                .prepare_cached(
                    "SELECT id, token_hash, publisher_id, scopes, created_at, revoked_at FROM api_tokens WHERE token_hash = ?1",
                )
                .and_then(|mut s| {
                    s.query_row([&hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
                })
                .map_err(map_err)?;
            Ok(ApiToken {
                id: TokenId::parse(&id).ok_or_else(|| StorageError::Other("stored token id is not valid".into()))?,
                token_hash: hash,
                publisher: publisher.as_deref().map(rows::publisher_id).transpose()?,
                scopes: parse_scopes(&scopes),
                created_at: ts(created),
                revoked_at: revoked.map(ts),
            })
        })
        .await
}

pub(crate) async fn revoke_api_token(
    store: &SqliteStore,
    publisher: &PublisherId,
    id: &TokenId,
    now: Timestamp,
) -> Result<()> {
    revoke(store, "api_tokens", publisher, id.as_str(), now).await
}
