//! The outbox: claiming due deliveries under a lease, recording attempts, retry and replay.
//! What a recorded attempt does to its rows is `leadrelay_core::stored::outbox`, shared with
//! PostgreSQL.

use std::collections::{HashMap, HashSet};

use leadrelay_core::storage::{
    AttemptRecord, ClaimRequest, Claimed, Delivery, DeliveryFilter, OutboxDepth, OutboxStore, Page, PageRequest,
    ReplayPlan, ReplayRequest, Result, StorageError,
};
use leadrelay_core::stored::outbox::{DestinationHealth, NextRow, attempt_number, lease_token};
use leadrelay_core::vault::Column;
use leadrelay_core::{DeliveryId, Lead, LeadId, Timestamp};
use rusqlite::{OptionalExtension, params};

use crate::rows::{
    DELIVERY_COLUMNS, DESTINATION_COLUMNS, LEAD_COLUMNS, delivery_from_row, delivery_row, destination_from_row,
    destination_row, lead_row,
};
use crate::rows::{PagedQuery, corrupt, destination_id, error_class, publisher_id, text, ts};
use crate::{Db, SqliteStore, map_err, query_rows};

// Claiming moves next_attempt_at to the lease's end: the row is hidden until then, and comes back
// by itself if the worker dies. The lease token says whose result may be recorded.
//
// Fairness: each enabled, unpaused destination offers at most `cap` of its oldest due rows (an
// index seek per destination, so a backlog of millions is never sorted), ranked within the
// destination; the claim takes rank 1 of every destination before rank 2 of any. Rows already
// leased count against the cap, so a receiver that hangs holds at most `cap` deliveries, and a
// destination probing after a throttle pause holds one.
const CLAIM: &str = "WITH busy AS (
         SELECT destination_id, COUNT(*) AS n FROM deliveries
         WHERE status = 'pending' AND lease_token IS NOT NULL AND next_attempt_at > ?3
         GROUP BY destination_id
     ),
     candidates AS (
         SELECT d.id, d.destination_id, d.next_attempt_at,
                ROW_NUMBER() OVER (PARTITION BY d.destination_id ORDER BY d.next_attempt_at, d.id) AS rank,
                CASE WHEN t.throttled_until IS NULL THEN ?5 ELSE 1 END AS cap
         FROM destinations t JOIN deliveries d ON d.id IN (
             SELECT id FROM deliveries
             WHERE destination_id = t.id AND status = 'pending' AND next_attempt_at <= ?3
             ORDER BY next_attempt_at LIMIT ?5)
         WHERE t.enabled AND (t.throttled_until IS NULL OR t.throttled_until <= ?3)
     )
     UPDATE deliveries SET next_attempt_at = ?1, lease_token = ?2
     WHERE id IN (
         SELECT c.id FROM candidates c LEFT JOIN busy b ON b.destination_id = c.destination_id
         WHERE c.rank + COALESCE(b.n, 0) <= c.cap
         ORDER BY c.rank, c.next_attempt_at LIMIT ?4)
     RETURNING id";

// Pending rows that still carry a lease token but are due again: their lease ran out with no
// result recorded. Read in the claim's own transaction, just before it, so what it says of the
// rows the claim takes is exact. The partial index holds leased rows only (those in flight and
// those expired), a few per unit of worker concurrency, so this stays small.
const EXPIRED_LEASES: &str = "SELECT id FROM deliveries
     WHERE status = 'pending' AND lease_token IS NOT NULL AND next_attempt_at <= ?1";

// Every destination with its count of waiting deliveries: a seek per destination on the
// (destination_id, status) prefix of `deliveries_by_destination`, which covers the count, so the
// delivered and dead history is never read (see the plan test below).
const OUTBOX_DEPTHS: &str = "SELECT t.publisher_id, t.id, t.enabled, t.throttled_until, COUNT(d.id)
     FROM destinations t LEFT JOIN deliveries d ON d.destination_id = t.id AND d.status = 'pending'
     GROUP BY t.id";

// The latest row of a delivery's attempt log, which `attempt_number` continues.
const LATEST_ATTEMPT: &str =
    "SELECT number, error_class FROM attempts WHERE delivery_id = ?1 ORDER BY number DESC LIMIT 1";

// Logs an attempt; a number already taken is the throttled row a new throttled try replaces.
const LOG_ATTEMPT: &str =
    "INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code, error_class, message, excerpt)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
     ON CONFLICT (delivery_id, number) DO UPDATE SET started_at = excluded.started_at,
         duration_ms = excluded.duration_ms, status_code = excluded.status_code,
         error_class = excluded.error_class, message = excluded.message, excerpt = excluded.excerpt";

// A retry of a delivery whose destination was disabled meanwhile is parked (NULL due time).
const SET_NEXT_STATE: &str = "UPDATE deliveries SET status = ?3, attempts = attempts + ?4,
         next_attempt_at = CASE WHEN ?3 = 'pending' AND (SELECT enabled FROM destinations WHERE id = destination_id) THEN ?5 ELSE NULL END,
         lease_token = NULL, last_error = ?6, updated_at = ?7
     WHERE id = ?1 AND lease_token = ?2";

// Per destination (an index seek each): its earliest due row, or the end of its pause if later.
const NEXT_DUE: &str = "SELECT MIN(MAX(due, COALESCE(throttled_until, due))) FROM (
         SELECT t.throttled_until,
                (SELECT MIN(next_attempt_at) FROM deliveries
                 WHERE destination_id = t.id AND status = 'pending') AS due
         FROM destinations t WHERE t.enabled)
     WHERE due IS NOT NULL";

const READ_HEALTH: &str = "SELECT enabled, disabled_reason, consecutive_failures, failing_since, throttled_until,
         updated_at
     FROM destinations WHERE id = ?1";

// Written only when an attempt changed it, so the usual success (a healthy destination) costs a
// lookup, not a write.
const WRITE_HEALTH: &str = "UPDATE destinations SET enabled = ?2, disabled_reason = ?3, consecutive_failures = ?4,
         failing_since = ?5, throttled_until = ?6, updated_at = ?7
     WHERE id = ?1";

/// The destination's health, changed by an applied attempt as `DestinationHealth::record` says;
/// a destination the attempt disabled has its queue parked.
fn apply_health(c: &Db<'_>, r: &AttemptRecord) -> Result<()> {
    let dest = r.destination.as_str();
    let Some(before) = c
        .prepare_cached(READ_HEALTH)
        .and_then(|mut s| {
            s.query_row([dest], |row| {
                Ok(DestinationHealth {
                    enabled: row.get(0)?,
                    disabled_reason: row.get(1)?,
                    consecutive_failures: row.get(2)?,
                    failing_since: row.get(3)?,
                    throttled_until: row.get(4)?,
                    updated_at: row.get(5)?,
                })
            })
            .optional()
        })
        .map_err(map_err)?
    else {
        return Ok(());
    };
    let mut after = before.clone();
    let disabled = after.record(r);
    if after != before {
        c.prepare_cached(WRITE_HEALTH)
            .and_then(|mut s| {
                s.execute(params![
                    dest,
                    after.enabled,
                    after.disabled_reason,
                    after.consecutive_failures,
                    after.failing_since,
                    after.throttled_until,
                    after.updated_at
                ])
            })
            .map_err(map_err)?;
    }
    if disabled {
        crate::catalog::pause_or_resume(c, dest, false, after.updated_at)?;
    }
    Ok(())
}

fn read_delivery(c: &Db<'_>, id: &str) -> Result<Delivery> {
    let row = c
        .prepare_cached(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id], delivery_row))
        .map_err(map_err)?;
    delivery_from_row(row, c.vault)
}

// Makes a delivery due now with a fresh attempt budget, or parks it if its destination is
// disabled. Deliveries in flight (leased, lease not expired) are left alone.
const RESET: &str = "UPDATE deliveries SET status = 'pending', attempts = 0, lease_token = NULL, updated_at = ?2,
         next_attempt_at = CASE WHEN (SELECT enabled FROM destinations WHERE id = destination_id) THEN ?2 ELSE NULL END
     WHERE id = ?1 AND NOT (status = 'pending' AND lease_token IS NOT NULL AND next_attempt_at > ?2)";

// A delivery for a lead that never had one to this destination (received before it existed, or
// before it listed the lead's offer); only for a lead of the destination's publisher.
const INSERT_REPLAYED: &str = "INSERT INTO deliveries (id, lead_id, destination_id, publisher_id, status, attempts,
         next_attempt_at, lease_token, last_error, lead_received_at, created_at, updated_at)
     SELECT ?1, id, ?3, publisher_id, 'pending', 0, ?5, NULL, NULL, received_at, ?6, ?6
     FROM leads WHERE id = ?2 AND publisher_id = ?4";

fn read_destination(c: &Db<'_>, id: &str) -> Result<leadrelay_core::destination::DestinationRecord> {
    c.prepare_cached(&format!("SELECT {DESTINATION_COLUMNS} FROM destinations WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id], destination_row))
        .optional()
        .map_err(map_err)?
        .ok_or(StorageError::NotFound)
        .and_then(|r| destination_from_row(r, c.vault))
}

#[async_trait::async_trait]
impl OutboxStore for SqliteStore {
    async fn claim_due_deliveries(&self, request: &ClaimRequest) -> Result<Vec<Claimed>> {
        let ClaimRequest { now, limit, lease, per_destination } = *request;
        let token = lease_token(now);
        let lease_end = now.plus(lease).as_millis();
        let claim_token = token.clone();
        let cap = per_destination.max(1);
        let (ids, expired): (Vec<String>, HashSet<String>) = self
            .write(move |c| {
                let expired: HashSet<String> =
                    query_rows(c, EXPIRED_LEASES, [now.as_millis()], |r| r.get(0), Ok)?.into_iter().collect();
                let ids: Vec<String> = query_rows(
                    c,
                    CLAIM,
                    params![lease_end, claim_token, now.as_millis(), limit, cap],
                    |r| r.get(0),
                    Ok,
                )?;
                let expired = ids.iter().filter(|id| expired.contains(*id)).cloned().collect();
                Ok((ids, expired))
            })
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids_json = serde_json::to_string(&ids).unwrap_or_default();
        self.read(move |c| {
            let in_list = |ids: &[&str]| serde_json::to_string(ids).unwrap_or_default();
            let sql =
                format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id IN (SELECT value FROM json_each(?1))");
            let deliveries = query_rows(c, &sql, [&ids_json], delivery_row, |r| delivery_from_row(r, c.vault))?;
            let lead_ids: Vec<&str> = deliveries.iter().map(|d| d.lead_id.as_str()).collect();
            let sql = format!("SELECT {LEAD_COLUMNS} FROM leads WHERE id IN (SELECT value FROM json_each(?1))");
            let leads: HashMap<String, leadrelay_core::Lead> =
                query_rows(c, &sql, [in_list(&lead_ids)], lead_row, |r| {
                    r.into_lead(c.vault).map(|l| (l.id.as_str().to_owned(), l))
                })?
                .into_iter()
                .collect();
            let mut dest_ids: Vec<&str> = deliveries.iter().map(|d| d.destination.as_str()).collect();
            dest_ids.sort_unstable();
            dest_ids.dedup();
            let sql =
                format!("SELECT {DESTINATION_COLUMNS} FROM destinations WHERE id IN (SELECT value FROM json_each(?1))");
            let destinations: HashMap<String, leadrelay_core::destination::DestinationRecord> =
                query_rows(c, &sql, [in_list(&dest_ids)], destination_row, |r| {
                    destination_from_row(r, c.vault).map(|d| (d.id.as_str().to_owned(), d))
                })?
                .into_iter()
                .collect();
            deliveries
                .into_iter()
                .map(|d| {
                    let lead = leads.get(d.lead_id.as_str()).cloned().ok_or(StorageError::NotFound)?;
                    let destination =
                        destinations.get(d.destination.as_str()).cloned().ok_or(StorageError::NotFound)?;
                    let lease_expired = expired.contains(d.id.as_str());
                    Ok(Claimed { delivery: d, lead, destination, lease_token: token.clone(), lease_expired })
                })
                .collect()
        })
        .await
    }

    async fn record_attempts(&self, records: &[AttemptRecord]) -> Result<()> {
        // Sealed here, in the caller's task: the writer thread is shared by every write.
        let v = &self.vault;
        let records: Vec<(AttemptRecord, Option<String>, Option<String>)> = records
            .iter()
            .map(|r| {
                let a = &r.attempt;
                let message = v.seal_opt(Column::AttemptMessage, a.message.as_deref());
                (r.clone(), message, v.seal_opt(Column::AttemptExcerpt, a.excerpt.as_deref()))
            })
            .collect();
        self.write(move |c| {
            for (r, message, excerpt) in &records {
                let a = &r.attempt;
                let next = NextRow::of(r, message.as_deref());
                let changed = c
                    .prepare_cached(SET_NEXT_STATE)
                    .and_then(|mut s| {
                        s.execute(params![
                            a.delivery_id.as_str(),
                            r.lease_token,
                            next.status,
                            next.counts,
                            next.due,
                            next.last_error,
                            next.updated_at
                        ])
                    })
                    .map_err(map_err)?;
                // The attempt happened, so it is logged even when our lease was lost.
                let latest: Option<(i64, Option<String>)> = c
                    .prepare_cached(LATEST_ATTEMPT)
                    .and_then(|mut s| s.query_row([a.delivery_id.as_str()], |r| Ok((r.get(0)?, r.get(1)?))).optional())
                    .map_err(map_err)?;
                let latest = latest
                    .map(|(n, class)| {
                        u32::try_from(n).map(|n| (n, error_class(class))).map_err(|_| corrupt("attempt number"))
                    })
                    .transpose()?;
                let number = attempt_number(latest, a.error_class);
                c.prepare_cached(LOG_ATTEMPT)
                    .and_then(|mut s| {
                        s.execute(params![
                            a.delivery_id.as_str(),
                            number,
                            a.started_at.as_millis(),
                            i64::try_from(a.duration_ms).unwrap_or(i64::MAX),
                            a.status_code,
                            a.error_class.map(|e| e.as_str()),
                            message,
                            excerpt
                        ])
                    })
                    .map_err(map_err)?;
                if changed == 0 {
                    // Our lease expired and another worker owns the delivery now: the state
                    // and the destination's health are theirs to set.
                    continue;
                }
                apply_health(c, r)?;
            }
            Ok(())
        })
        .await
    }

    async fn next_due_at(&self) -> Result<Option<Timestamp>> {
        self.read(|c| {
            c.prepare_cached(NEXT_DUE)
                .and_then(|mut s| s.query_row([], |r| r.get::<_, Option<i64>>(0)))
                .map(|v| v.map(Timestamp::from_millis))
                .map_err(map_err)
        })
        .await
    }

    async fn outbox_depths(&self) -> Result<Vec<OutboxDepth>> {
        self.read(|c| {
            let row = |r: &rusqlite::Row<'_>| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            };
            query_rows(c, OUTBOX_DEPTHS, [], row, |(publisher, destination, enabled, paused_until, waiting)| {
                Ok(OutboxDepth {
                    publisher: publisher_id(&publisher)?,
                    destination: destination_id(&destination)?,
                    enabled,
                    paused_until: paused_until.map(ts),
                    waiting: u64::try_from(waiting).unwrap_or(0),
                })
            })
        })
        .await
    }

    async fn get_delivery(&self, id: &DeliveryId) -> Result<Delivery> {
        let id = id.as_str().to_owned();
        self.read(move |c| read_delivery(c, &id)).await
    }

    async fn list_deliveries(&self, filter: &DeliveryFilter, page: &PageRequest) -> Result<Page<Delivery>> {
        let mut q = PagedQuery::new(DELIVERY_COLUMNS, "deliveries");
        q.and("publisher_id =", text(filter.publisher.as_ref().map(|p| p.as_str())));
        q.and("status =", text(filter.status.map(|s| s.as_str())));
        q.and("destination_id =", text(filter.destination.as_ref().map(|d| d.as_str())));
        let page = page.clone();
        self.read(move |c| {
            q.run(c, &page, delivery_row, |r| delivery_from_row(r, c.vault), |d| d.id.as_str().to_owned())
        })
        .await
    }

    async fn retry_delivery(&self, id: &DeliveryId, now: Timestamp) -> Result<Delivery> {
        let id = id.as_str().to_owned();
        self.write(move |c| {
            let n =
                c.prepare_cached(RESET).and_then(|mut s| s.execute(params![id, now.as_millis()])).map_err(map_err)?;
            if n == 0 {
                // Either it does not exist or it is in flight right now.
                read_delivery(c, &id)?;
                return Err(StorageError::Conflict);
            }
            read_delivery(c, &id)
        })
        .await
    }

    async fn replay_candidates(&self, req: &ReplayRequest, after: Option<&LeadId>, limit: u32) -> Result<Vec<Lead>> {
        let req = req.clone();
        let after = after.map_or_else(String::new, |a| a.as_str().to_owned());
        self.read(move |c| {
            let dest = read_destination(c, req.destination.as_str())?;
            let since = req.since.map_or(i64::MIN, Timestamp::as_millis);
            let until = req.until.map_or(i64::MAX, Timestamp::as_millis);
            let dead_only = if req.only_dead {
                "AND EXISTS (SELECT 1 FROM deliveries d WHERE d.lead_id = leads.id AND d.destination_id = ?6 AND d.status = 'dead')"
            } else {
                "AND ?6 IS NOT NULL"
            };
            let sql = format!(
                "SELECT {LEAD_COLUMNS} FROM leads
                 WHERE publisher_id = ?1 AND received_at >= ?2 AND received_at < ?3 AND duplicate_of IS NULL
                   AND id > ?4 {dead_only}
                 ORDER BY id LIMIT ?5"
            );
            query_rows(
                c,
                &sql,
                params![dest.publisher.as_str(), since, until, after, limit, dest.id.as_str()],
                lead_row,
                |r| r.into_lead(c.vault),
            )
        })
        .await
    }

    async fn replay(&self, plan: &ReplayPlan, now: Timestamp) -> Result<u64> {
        let plan = plan.clone();
        self.write(move |c| {
            let dest = read_destination(c, plan.destination.as_str())?;
            let due = dest.enabled.then_some(now.as_millis());
            let mut count = 0u64;
            for (lead, delivery) in &plan.leads {
                let existing: Option<String> = c
                    .prepare_cached("SELECT id FROM deliveries WHERE lead_id = ?1 AND destination_id = ?2")
                    .and_then(|mut s| s.query_row(params![lead.as_str(), dest.id.as_str()], |r| r.get(0)).optional())
                    .map_err(map_err)?;
                let n = match existing {
                    Some(id) => c.prepare_cached(RESET).and_then(|mut s| s.execute(params![id, now.as_millis()])),
                    None => c.prepare_cached(INSERT_REPLAYED).and_then(|mut s| {
                        s.execute(params![
                            delivery.as_str(),
                            lead.as_str(),
                            dest.id.as_str(),
                            dest.publisher.as_str(),
                            due,
                            now.as_millis()
                        ])
                    }),
                }
                .map_err(map_err)?;
                count += n as u64;
            }
            Ok(count)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::query_plan as plan;

    #[test]
    fn outbox_depths_seek_each_destinations_waiting_deliveries_through_an_index() {
        let plan = plan(OUTBOX_DEPTHS);
        assert!(
            plan.iter().any(|s| s.starts_with("SEARCH d USING COVERING INDEX deliveries_by_destination")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|s| s.starts_with("SCAN d")), "never a scan of the outbox: {plan:?}");
    }

    #[test]
    fn expired_leases_are_read_from_the_index_of_leased_deliveries() {
        let plan = plan(EXPIRED_LEASES);
        assert!(plan.iter().any(|s| s.contains("deliveries_leased")), "{plan:?}");
    }
}
