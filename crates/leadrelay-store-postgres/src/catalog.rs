//! CatalogStore on PostgreSQL: publishers, offers and destinations.
//!
//! Each write is one statement whose own lock makes its rule hold across nodes: a primary key
//! lets one of concurrent creates win (the others are `Conflict`), `INSERT … ON CONFLICT DO
//! UPDATE` creates or replaces an offer in one step and says which, and enabling or disabling
//! a destination holds the destination's row lock while its deliveries are parked or released.

use leadrelay_core::destination::DestinationRecord;
use leadrelay_core::storage::{CatalogStore, Offer, Publisher, Result, StorageError, Upserted};
use leadrelay_core::vault::Column;
use leadrelay_core::{DestinationId, OfferId, PublisherId, Timestamp};
use tokio_postgres::Row;

use crate::rows::{
    DESTINATION_COLUMNS, OFFER_COLUMNS, OfferRow, destination_from_row, destination_row, get, offer_from_row,
    offers_json, publisher_id, ts,
};
use crate::{Db, Mode, PostgresStore, in_transaction};

fn offer_row(r: &Row) -> Result<OfferRow> {
    Ok((get(r, 0)?, get(r, 1)?, get(r, 2)?, get(r, 3)?, get(r, 4)?, get(r, 5)?, get(r, 6)?, get(r, 7)?))
}

/// Pausing parks a destination's waiting deliveries (no due time), those whose lease expired
/// included; resuming makes the parked ones due at `now`. Deliveries in flight keep their
/// lease; their result is parked when it is recorded. A delivery being claimed meanwhile is
/// waited for and then judged by its new state (READ COMMITTED re-checks the row).
pub(crate) async fn pause_or_resume(db: &Db<'_>, destination: &str, enabled: bool, now: i64) -> Result<()> {
    if enabled {
        let released = db
            .exec(
                "UPDATE deliveries SET next_attempt_at = $2
                 WHERE destination_id = $1 AND status = 'pending' AND next_attempt_at IS NULL",
                &[&destination, &now],
            )
            .await?;
        if released > 0 {
            db.work_is_due().await?;
        }
        Ok(())
    } else {
        db.exec(
            "UPDATE deliveries SET next_attempt_at = NULL
             WHERE destination_id = $1 AND status = 'pending' AND (lease_token IS NULL OR next_attempt_at <= $2)",
            &[&destination, &now],
        )
        .await
        .map(drop)
    }
}

async fn create_publisher(db: &Db<'_>, p: &Publisher) -> Result<()> {
    db.exec(
        "INSERT INTO publishers (id, name, created_at) VALUES ($1, $2, $3)",
        &[&p.id.as_str(), &p.name, &p.created_at.as_millis()],
    )
    .await
    .map(drop)
}

async fn get_publisher(db: &Db<'_>, id: &PublisherId) -> Result<Publisher> {
    let r = db.one("SELECT id, name, created_at FROM publishers WHERE id = $1", &[&id.as_str()]).await?;
    let id: String = get(&r, 0)?;
    Ok(Publisher { id: publisher_id(&id)?, name: get(&r, 1)?, created_at: ts(get(&r, 2)?) })
}

/// `xmax` is zero on a row version this statement inserted, and the updating transaction's id
/// on one it replaced: one statement both writes and says which, whatever runs concurrently.
async fn upsert_offer(db: &Db<'_>, o: &Offer) -> Result<Upserted> {
    let r = db
        .one(
            "INSERT INTO offers (id, publisher_id, title, offer_type, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (id) DO UPDATE
                 SET title = excluded.title, offer_type = excluded.offer_type, updated_at = excluded.updated_at
             RETURNING xmax = '0'::xid",
            &[&o.id.as_str(), &o.publisher.as_str(), &o.title, &o.offer_type.as_str(), &o.updated_at.as_millis()],
        )
        .await?;
    let created: bool = get(&r, 0)?;
    Ok(if created { Upserted::Created } else { Upserted::Updated })
}

async fn get_offer(db: &Db<'_>, id: &OfferId) -> Result<Offer> {
    let r = db.one(&format!("SELECT {OFFER_COLUMNS} FROM offers WHERE id = $1"), &[&id.as_str()]).await?;
    offer_from_row(offer_row(&r)?)
}

async fn record_publication(db: &Db<'_>, id: &OfferId, at: Timestamp, results: &serde_json::Value) -> Result<()> {
    let n = db
        .exec(
            "UPDATE offers SET published_at = $2, last_validation = $3 WHERE id = $1",
            &[&id.as_str(), &at.as_millis(), &results.to_string()],
        )
        .await?;
    if n == 0 { Err(StorageError::NotFound) } else { Ok(()) }
}

async fn list_offers(db: &Db<'_>, publisher: &PublisherId) -> Result<Vec<Offer>> {
    let sql = format!("SELECT {OFFER_COLUMNS} FROM offers WHERE publisher_id = $1 ORDER BY id");
    db.rows(&sql, &[&publisher.as_str()]).await?.iter().map(|r| offer_from_row(offer_row(r)?)).collect()
}

async fn create_destination(db: &Db<'_>, d: &DestinationRecord) -> Result<()> {
    db.exec(
        "INSERT INTO destinations (id, publisher_id, name, kind, settings, offers, enabled, disabled_reason,
                 consecutive_failures, failing_since, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, NULL, $9, $10)",
        &[
            &d.id.as_str(),
            &d.publisher.as_str(),
            &d.name,
            &d.kind,
            &db.vault.seal(Column::DestinationSettings, &d.settings.to_string()),
            &offers_json(&d.offers),
            &d.enabled,
            &d.disabled_reason,
            &d.created_at.as_millis(),
            &d.updated_at.as_millis(),
        ],
    )
    .await
    .map(drop)
}

async fn get_destination(db: &Db<'_>, id: &DestinationId) -> Result<DestinationRecord> {
    let r = db.one(&format!("SELECT {DESTINATION_COLUMNS} FROM destinations WHERE id = $1"), &[&id.as_str()]).await?;
    destination_from_row(destination_row(&r)?, db.vault)
}

async fn list_destinations(db: &Db<'_>, publisher: &PublisherId) -> Result<Vec<DestinationRecord>> {
    let sql = format!("SELECT {DESTINATION_COLUMNS} FROM destinations WHERE publisher_id = $1 ORDER BY id");
    db.rows(&sql, &[&publisher.as_str()])
        .await?
        .iter()
        .map(|r| destination_from_row(destination_row(r)?, db.vault))
        .collect()
}

/// The update takes the destination's row lock first, so a concurrent enable and disable of
/// one destination run one after the other, each with its deliveries.
async fn set_destination_enabled(
    db: &Db<'_>,
    id: &DestinationId,
    enabled: bool,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<()> {
    let now = now.as_millis();
    let reason = if enabled { None } else { reason };
    // FOR UPDATE waits for lead inserts that hold the row FOR KEY SHARE (their deliveries'
    // join), so the release below sees every delivery they parked, and later inserts read the
    // new state: none is left parked on an enabled destination.
    db.one("SELECT 1 FROM destinations WHERE id = $1 FOR UPDATE", &[&id.as_str()]).await?;
    let changed = db
        .exec(
            "UPDATE destinations SET enabled = $2, disabled_reason = $3, updated_at = $4,
                     consecutive_failures = CASE WHEN $2 THEN 0 ELSE consecutive_failures END,
                     failing_since = CASE WHEN $2 THEN NULL ELSE failing_since END
                 WHERE id = $1",
            &[&id.as_str(), &enabled, &reason, &now],
        )
        .await?;
    if changed == 0 {
        return Err(StorageError::NotFound);
    }
    pause_or_resume(db, id.as_str(), enabled, now).await
}

#[async_trait::async_trait]
impl CatalogStore for PostgresStore {
    async fn create_publisher(&self, publisher: &Publisher) -> Result<()> {
        in_transaction!(self, Mode::Write, |db| create_publisher(db, publisher))
    }

    async fn get_publisher(&self, id: &PublisherId) -> Result<Publisher> {
        in_transaction!(self, Mode::Read, |db| get_publisher(db, id))
    }

    async fn upsert_offer(&self, offer: &Offer) -> Result<Upserted> {
        in_transaction!(self, Mode::Write, |db| upsert_offer(db, offer))
    }

    async fn get_offer(&self, id: &OfferId) -> Result<Offer> {
        in_transaction!(self, Mode::Read, |db| get_offer(db, id))
    }

    async fn record_publication(&self, id: &OfferId, at: Timestamp, results: &serde_json::Value) -> Result<()> {
        in_transaction!(self, Mode::Write, |db| record_publication(db, id, at, results))
    }

    async fn list_offers(&self, publisher: &PublisherId) -> Result<Vec<Offer>> {
        in_transaction!(self, Mode::Read, |db| list_offers(db, publisher))
    }

    async fn create_destination(&self, destination: &DestinationRecord) -> Result<()> {
        in_transaction!(self, Mode::Write, |db| create_destination(db, destination))
    }

    async fn get_destination(&self, id: &DestinationId) -> Result<DestinationRecord> {
        in_transaction!(self, Mode::Read, |db| get_destination(db, id))
    }

    async fn list_destinations(&self, publisher: &PublisherId) -> Result<Vec<DestinationRecord>> {
        in_transaction!(self, Mode::Read, |db| list_destinations(db, publisher))
    }

    async fn set_destination_enabled(
        &self,
        id: &DestinationId,
        enabled: bool,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<()> {
        in_transaction!(self, Mode::Write, |db| set_destination_enabled(db, id, enabled, reason, now))
    }
}
