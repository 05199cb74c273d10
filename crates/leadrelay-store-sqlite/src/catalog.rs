//! Publishers, offers, destinations and ingest keys.

use leadrelay_core::destination::DestinationRecord;
use leadrelay_core::storage::{CatalogStore, Offer, Publisher, Result, StorageError, Upserted};
use leadrelay_core::{DestinationId, OfferId, PublisherId, Timestamp};
use rusqlite::{OptionalExtension, params};

use leadrelay_core::vault::Column;

use crate::rows::{
    self, DESTINATION_COLUMNS, OFFER_COLUMNS, OfferRow, destination_from_row, destination_row, offer_from_row, ts,
};
use crate::{SqliteStore, map_err, query_rows};

fn offer_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OfferRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
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

#[async_trait::async_trait]
impl CatalogStore for SqliteStore {
    async fn create_publisher(&self, p: &Publisher) -> Result<()> {
        let (id, name, at) = (p.id.as_str().to_owned(), p.name.clone(), p.created_at.as_millis());
        self.write(move |c| {
            c.prepare_cached("INSERT INTO publishers (id, name, created_at) VALUES (?1, ?2, ?3)")
                .and_then(|mut s| s.execute(params![id, name, at]))
                .map(drop)
                .map_err(map_err)
        })
        .await
    }

    async fn get_publisher(&self, id: &PublisherId) -> Result<Publisher> {
        let id = id.as_str().to_owned();
        self.read(move |c| {
            let (id, name, at): (String, String, i64) = c
                .prepare_cached("SELECT id, name, created_at FROM publishers WHERE id = ?1")
                .and_then(|mut s| s.query_row([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))))
                .map_err(map_err)?;
            Ok(Publisher { id: rows::publisher_id(&id)?, name, created_at: ts(at) })
        })
        .await
    }

    async fn upsert_offer(&self, o: &Offer) -> Result<Upserted> {
        let o = o.clone();
        self
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

    async fn get_offer(&self, id: &OfferId) -> Result<Offer> {
        let id = id.as_str().to_owned();
        self.read(move |c| {
            let row = c
                .prepare_cached(&format!("SELECT {OFFER_COLUMNS} FROM offers WHERE id = ?1"))
                .and_then(|mut s| s.query_row([&id], offer_row))
                .map_err(map_err)?;
            offer_from_row(row)
        })
        .await
    }

    async fn record_publication(&self, id: &OfferId, at: Timestamp, results: &serde_json::Value) -> Result<()> {
        let (id, results) = (id.as_str().to_owned(), results.to_string());
        self.write(move |c| {
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

    async fn list_offers(&self, publisher: &PublisherId) -> Result<Vec<Offer>> {
        let p = publisher.as_str().to_owned();
        self.read(move |c| {
            let sql = format!("SELECT {OFFER_COLUMNS} FROM offers WHERE publisher_id = ?1 ORDER BY id");
            query_rows(c, &sql, [&p], offer_row, offer_from_row)
        })
        .await
    }

    async fn create_destination(&self, d: &DestinationRecord) -> Result<()> {
        let d = d.clone();
        self.write(move |c| {
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
                    c.vault.seal(Column::DestinationSettings, &d.settings.to_string()),
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

    async fn get_destination(&self, id: &DestinationId) -> Result<DestinationRecord> {
        let id = id.as_str().to_owned();
        self.read(move |c| {
            let row = c
                .prepare_cached(&format!("SELECT {DESTINATION_COLUMNS} FROM destinations WHERE id = ?1"))
                .and_then(|mut s| s.query_row([&id], destination_row))
                .map_err(map_err)?;
            destination_from_row(row, c.vault)
        })
        .await
    }

    async fn list_destinations(&self, publisher: &PublisherId) -> Result<Vec<DestinationRecord>> {
        let p = publisher.as_str().to_owned();
        self.read(move |c| {
            let sql = format!("SELECT {DESTINATION_COLUMNS} FROM destinations WHERE publisher_id = ?1 ORDER BY id");
            query_rows(c, &sql, [&p], destination_row, |r| destination_from_row(r, c.vault))
        })
        .await
    }

    async fn set_destination_enabled(
        &self,
        id: &DestinationId,
        enabled: bool,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<()> {
        let (id, reason, now) = (id.as_str().to_owned(), reason.map(str::to_owned), now.as_millis());
        self.write(move |c| {
            let changed = c
                .execute(
                    "UPDATE destinations SET enabled = ?2, disabled_reason = ?3, updated_at = ?4,
                             consecutive_failures = CASE WHEN ?2 THEN 0 ELSE consecutive_failures END,
                             failing_since = CASE WHEN ?2 THEN NULL ELSE failing_since END
                         WHERE id = ?1",
                    params![id, enabled, if enabled { None } else { reason.as_deref() }, now],
                )
                .map_err(map_err)?;
            if changed == 0 {
                return Err(StorageError::NotFound);
            }
            pause_or_resume(c, &id, enabled, now)
        })
        .await
    }
}
