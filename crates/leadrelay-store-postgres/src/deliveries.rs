//! The outbox on PostgreSQL: claiming due deliveries under a lease, recording attempts, retry
//! and replay, for any number of nodes at once.
//!
//! A claim moves a delivery's `next_attempt_at` to the end of its lease and gives it the claim's
//! token, so the row is hidden until then and comes back by itself if the worker dies.
//!
//! Locks are taken in one order everywhere, destination rows (by id) before delivery rows (by
//! id), so use cases that meet wait for each other instead of deadlocking:
//! - A claim first locks every destination it may serve (`FOR NO KEY UPDATE`, which the
//!   foreign-key check of a lead insert does not wait for), then, in a second statement whose
//!   snapshot sees every claim that held those destinations before, counts their leased
//!   deliveries and leases their oldest due ones. So the per-destination cap, and the single
//!   probe of a destination whose pause ended, hold for the whole cluster. Delivery rows are
//!   taken `SKIP LOCKED`: one being recorded or retried is left for the next claim.
//! - Recording attempts locks their destinations, then their deliveries, and only then decides
//!   from the rows it holds which leases are still the records' own: a stale result and the
//!   claim that took its delivery over run one after the other, never interleaved. A batch of
//!   successes that changes no destination's health (the common case) locks only its
//!   deliveries, so deliveries to one destination are recorded side by side.
//! - Retry and replay hold their destination `FOR SHARE`, so a disable (which updates the row)
//!   runs before or after them and a delivery is never made due for a disabled destination.
//!
//! What a recorded attempt does to its rows is `leadrelay_core::stored::outbox`, shared with
//! SQLite.

use std::collections::{HashMap, HashSet};

use leadrelay_core::destination::DestinationRecord;
use leadrelay_core::storage::{
    AttemptRecord, ClaimRequest, Claimed, Delivery, DeliveryFilter, NextState, OutboxDepth, OutboxStore, Page,
    PageRequest, ReplayPlan, ReplayRequest, Result, StorageError,
};
use leadrelay_core::stored::outbox::{DestinationHealth, NextRow, attempt_number, lease_token};
use leadrelay_core::vault::Column;
use leadrelay_core::{DeliveryId, Lead, LeadId, Timestamp};
use tokio_postgres::Row;

use crate::rows::{
    DELIVERY_COLUMNS, DESTINATION_COLUMNS, LEAD_COLUMNS, PagedQuery, count, delivery_from_row, delivery_row,
    destination_from_row, destination_id, destination_row, error_class, get, lead_row, publisher_id, text, ts,
};
use crate::{Db, Mode, PostgresStore, in_transaction};

/// The destinations a claim may serve now (enabled, not paused, with a due delivery), locked in
/// id order. `{DESTINATION_COLUMNS}` is replaced by the columns.
const LOCK_SERVABLE: &str = "SELECT {DESTINATION_COLUMNS} FROM destinations t
     WHERE t.enabled AND (t.throttled_until IS NULL OR t.throttled_until <= $1)
       AND EXISTS (SELECT 1 FROM deliveries d
                   WHERE d.destination_id = t.id AND d.status = 'pending' AND d.next_attempt_at <= $1)
     ORDER BY t.id
     FOR NO KEY UPDATE OF t";

// The claim, over the destinations locked by LOCK_SERVABLE ($4). Each offers its oldest due
// rows (an index seek per destination, so a backlog is never sorted), as many as its cap leaves
// room for beside the rows still leased (a destination probing after a pause has a cap of one);
// the claim takes the first of every destination before a second of any. A row that still
// carries a token is a lease that ran out with no result recorded.
const CLAIM: &str = "WITH servable AS (
         SELECT t.id,
                LEAST($5::bigint, CASE WHEN t.throttled_until IS NULL THEN $6::bigint ELSE 1 END
                    - (SELECT COUNT(*) FROM deliveries b
                       WHERE b.destination_id = t.id AND b.status = 'pending'
                         AND b.lease_token IS NOT NULL AND b.next_attempt_at > $3)) AS room
         FROM destinations t
         WHERE t.id = ANY($4) AND t.enabled AND (t.throttled_until IS NULL OR t.throttled_until <= $3)
     ),
     due AS (
         SELECT c.* FROM servable s CROSS JOIN LATERAL (
             SELECT d.id, d.destination_id, d.next_attempt_at, d.lease_token FROM deliveries d
             WHERE d.destination_id = s.id AND d.status = 'pending' AND d.next_attempt_at <= $3
             ORDER BY d.next_attempt_at
             LIMIT GREATEST(s.room, 0)
             FOR NO KEY UPDATE OF d SKIP LOCKED) c
     ),
     chosen AS (
         SELECT id AS claim_id, lease_token IS NOT NULL AS was_leased FROM (
             SELECT due.*, ROW_NUMBER() OVER (PARTITION BY destination_id ORDER BY next_attempt_at, id) AS turn
             FROM due) ranked
         ORDER BY turn, next_attempt_at, id
         LIMIT $5
     )
     UPDATE deliveries SET next_attempt_at = $1, lease_token = $2
     FROM chosen WHERE id = chosen.claim_id
     RETURNING {DELIVERY_COLUMNS}, was_leased";

/// The destinations of a batch of records, unlocked: enough when every record is a success that
/// changes nothing in them. Such a record ends its delivery whatever the destination's state
/// meanwhile (a disable waits for the delivery's row lock, then finds it delivered), so the
/// records of one destination need not queue on its row, nor on claims that hold it.
const READ_HEALTH: &str = "SELECT id, enabled, disabled_reason, consecutive_failures, failing_since, throttled_until,
         updated_at
     FROM destinations WHERE id = ANY($1)";

/// The destinations of a batch of records, locked in id order, with what the records change.
const LOCK_HEALTH: &str = "SELECT id, enabled, disabled_reason, consecutive_failures, failing_since, throttled_until,
         updated_at
     FROM destinations WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE";

/// The deliveries of a batch of records, locked in id order, with their lease and latest attempt.
const LOCK_DELIVERIES: &str = "SELECT d.id, d.lease_token, a.number, a.error_class
     FROM deliveries d
     LEFT JOIN LATERAL (SELECT number, error_class FROM attempts
                        WHERE delivery_id = d.id ORDER BY number DESC LIMIT 1) a ON TRUE
     WHERE d.id = ANY($1) ORDER BY d.id FOR NO KEY UPDATE OF d";

/// Logs attempts; a number already taken is the throttled row a new throttled try replaces.
const LOG_ATTEMPTS: &str =
    "INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code, error_class, message, excerpt)
     SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[],
                          $7::text[], $8::text[])
     ON CONFLICT (delivery_id, number) DO UPDATE SET started_at = excluded.started_at,
         duration_ms = excluded.duration_ms, status_code = excluded.status_code,
         error_class = excluded.error_class, message = excluded.message, excerpt = excluded.excerpt";

/// Writes the next state of the deliveries whose lease was the records' own. A retry of a
/// delivery whose destination is disabled is parked (no due time).
const SET_NEXT_STATES: &str = "UPDATE deliveries d SET status = u.status, attempts = d.attempts + u.counts,
         next_attempt_at = CASE WHEN u.status = 'pending' AND t.enabled THEN u.due END,
         lease_token = NULL, last_error = u.last_error, updated_at = u.updated_at
     FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::bigint[])
              AS u(id, status, counts, due, last_error, updated_at),
          destinations t
     WHERE d.id = u.id AND t.id = d.destination_id";

/// Writes the destinations' new health and pause; a destination a record disabled has its
/// waiting deliveries parked, those in flight left to finish (as `set_destination_enabled`).
const SET_HEALTH: &str = "WITH h AS (
         SELECT * FROM UNNEST($1::text[], $2::bool[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[],
                              $7::bigint[], $8::bool[])
             AS h(id, enabled, disabled_reason, consecutive_failures, failing_since, throttled_until,
                  updated_at, park)
     ),
     changed AS (
         UPDATE destinations t SET enabled = h.enabled, disabled_reason = h.disabled_reason,
             consecutive_failures = h.consecutive_failures, failing_since = h.failing_since,
             throttled_until = h.throttled_until, updated_at = h.updated_at
         FROM h WHERE t.id = h.id
         RETURNING t.id
     )
     UPDATE deliveries d SET next_attempt_at = NULL
     FROM h
     WHERE h.park AND d.destination_id = h.id AND d.status = 'pending'
       AND (d.lease_token IS NULL OR d.next_attempt_at <= h.updated_at)";

// Per enabled destination (an index seek each): its earliest due row, or the end of its pause if
// later (GREATEST ignores a NULL pause).
const NEXT_DUE: &str = "SELECT MIN(GREATEST(due, throttled_until)) FROM (
         SELECT t.throttled_until,
                (SELECT MIN(next_attempt_at) FROM deliveries
                 WHERE destination_id = t.id AND status = 'pending') AS due
         FROM destinations t WHERE t.enabled) per_destination
     WHERE due IS NOT NULL";

// Every destination with its count of waiting deliveries, read from the (destination_id,
// status) prefix of `deliveries_by_destination`: the delivered and dead history is not read.
const OUTBOX_DEPTHS: &str = "SELECT t.publisher_id, t.id, t.enabled, t.throttled_until,
         (SELECT COUNT(*) FROM deliveries d WHERE d.destination_id = t.id AND d.status = 'pending')
     FROM destinations t ORDER BY t.id";

/// A delivery's destination, held against a concurrent enable or disable: whether it is enabled.
const HOLD_DESTINATION_OF: &str = "SELECT t.enabled FROM deliveries d JOIN destinations t ON t.id = d.destination_id
     WHERE d.id = $1 FOR SHARE OF t";

// Makes a delivery due now ($3: its destination is enabled) with a fresh attempt budget, or
// parks it. A delivery in flight (leased, lease not ended) is left alone.
const RESET: &str = "UPDATE deliveries SET status = 'pending', attempts = 0, lease_token = NULL, updated_at = $2,
         next_attempt_at = CASE WHEN $3 THEN $2 END
     WHERE id = $1 AND NOT (status = 'pending' AND lease_token IS NOT NULL AND next_attempt_at > $2)
     RETURNING {DELIVERY_COLUMNS}";

/// A replay's destination, held against a concurrent enable or disable.
const HOLD_DESTINATION: &str = "SELECT id, publisher_id, enabled FROM destinations WHERE id = $1 FOR SHARE";

// A replay: each planned lead's delivery to the destination ($3) is made due ($5, or parked:
// NULL) with a fresh budget unless it is in flight; a lead of the destination's publisher ($4)
// with none gets one. Answers how many were made due or parked.
const REPLAY: &str = "WITH plan AS (
         SELECT * FROM UNNEST($1::text[], $2::text[]) AS p(lead_id, delivery_id)
     ),
     reset AS (
         UPDATE deliveries d SET status = 'pending', attempts = 0, lease_token = NULL, updated_at = $6,
             next_attempt_at = $5
         FROM plan p
         WHERE d.lead_id = p.lead_id AND d.destination_id = $3
           AND NOT (d.status = 'pending' AND d.lease_token IS NOT NULL AND d.next_attempt_at > $6)
         RETURNING d.id
     ),
     created AS (
         INSERT INTO deliveries (id, lead_id, destination_id, publisher_id, status, attempts, next_attempt_at,
                 lease_token, last_error, lead_received_at, created_at, updated_at)
         SELECT p.delivery_id, l.id, $3, l.publisher_id, 'pending', 0, $5, NULL, NULL, l.received_at, $6, $6
         FROM plan p JOIN leads l ON l.id = p.lead_id AND l.publisher_id = $4
         WHERE NOT EXISTS (SELECT 1 FROM deliveries x WHERE x.lead_id = p.lead_id AND x.destination_id = $3)
         ON CONFLICT (lead_id, destination_id) DO NOTHING
         RETURNING id
     )
     SELECT (SELECT COUNT(*) FROM reset) + (SELECT COUNT(*) FROM created)";

fn with_columns(sql: &str) -> String {
    sql.replace("{DESTINATION_COLUMNS}", DESTINATION_COLUMNS).replace("{DELIVERY_COLUMNS}", DELIVERY_COLUMNS)
}

fn lead_ids_of(rows: &[Row]) -> Result<Vec<String>> {
    rows.iter().map(|r| get::<String>(r, 1)).collect()
}

async fn claim(db: &Db<'_>, request: &ClaimRequest, token: &str) -> Result<Vec<Claimed>> {
    let ClaimRequest { now, limit, lease, per_destination } = *request;
    if limit == 0 {
        return Ok(Vec::new());
    }
    let at = now.as_millis();
    let servable = db.rows(&with_columns(LOCK_SERVABLE), &[&at]).await?;
    if servable.is_empty() {
        return Ok(Vec::new());
    }
    let mut destination_rows: HashMap<String, &Row> = HashMap::with_capacity(servable.len());
    for r in &servable {
        destination_rows.insert(get(r, 0)?, r);
    }
    let ids: Vec<&str> = destination_rows.keys().map(String::as_str).collect();
    let leased = db
        .rows(
            &with_columns(CLAIM),
            &[&now.plus(lease).as_millis(), &token, &at, &ids, &i64::from(limit), &i64::from(per_destination.max(1))],
        )
        .await?;
    if leased.is_empty() {
        return Ok(Vec::new());
    }
    let lead_rows =
        db.rows(&format!("SELECT {LEAD_COLUMNS} FROM leads WHERE id = ANY($1)"), &[&lead_ids_of(&leased)?]).await?;
    let mut leads: HashMap<String, Lead> = HashMap::with_capacity(lead_rows.len());
    for r in &lead_rows {
        let lead = lead_row(r)?.into_lead(db.vault)?;
        leads.insert(lead.id.as_str().to_owned(), lead);
    }
    let mut destinations: HashMap<String, DestinationRecord> = HashMap::new();
    leased
        .iter()
        .map(|r| {
            let delivery = delivery_from_row(delivery_row(r)?, db.vault)?;
            let lease_expired: bool = get(r, 10)?;
            let lead = leads.get(delivery.lead_id.as_str()).cloned().ok_or(StorageError::NotFound)?;
            let id = delivery.destination.as_str();
            let destination = match destinations.get(id) {
                Some(d) => d.clone(),
                None => {
                    let row = destination_rows.get(id).ok_or(StorageError::NotFound)?;
                    let d = destination_from_row(destination_row(row)?, db.vault)?;
                    destinations.insert(id.to_owned(), d.clone());
                    d
                }
            };
            Ok(Claimed { delivery, lead, destination, lease_token: token.to_owned(), lease_expired })
        })
        .collect()
}

/// A record with its attempt's message and excerpt sealed (before the transaction, so no lock
/// is held while sealing).
struct Sealed<'r> {
    record: &'r AttemptRecord,
    message: Option<String>,
    excerpt: Option<String>,
}

/// A delivery as the records of a batch find it: its lease and its latest attempt row.
struct Held {
    lease_token: Option<String>,
    latest: Option<(u32, Option<leadrelay_core::destination::ErrorClass>)>,
}

/// The attempt log rows a batch writes, one per (delivery, number), as UNNEST columns.
#[derive(Default)]
struct AttemptRows {
    slots: HashMap<(String, u32), usize>,
    delivery: Vec<String>,
    number: Vec<i64>,
    started_at: Vec<i64>,
    duration_ms: Vec<i64>,
    status_code: Vec<Option<i64>>,
    error_class: Vec<Option<String>>,
    message: Vec<Option<String>>,
    excerpt: Vec<Option<String>>,
}

impl AttemptRows {
    fn put(&mut self, number: u32, s: &Sealed<'_>) {
        let a = &s.record.attempt;
        let key = (a.delivery_id.as_str().to_owned(), number);
        let values = (
            a.started_at.as_millis(),
            i64::try_from(a.duration_ms).unwrap_or(i64::MAX),
            a.status_code.map(i64::from),
            a.error_class.map(|c| c.as_str().to_owned()),
            s.message.clone(),
            s.excerpt.clone(),
        );
        if let Some(&i) = self.slots.get(&key) {
            // A second throttled try of one delivery in one batch replaces the first.
            (
                self.started_at[i],
                self.duration_ms[i],
                self.status_code[i],
                self.error_class[i],
                self.message[i],
                self.excerpt[i],
            ) = values;
            return;
        }
        self.slots.insert(key.clone(), self.delivery.len());
        self.delivery.push(key.0);
        self.number.push(i64::from(number));
        self.started_at.push(values.0);
        self.duration_ms.push(values.1);
        self.status_code.push(values.2);
        self.error_class.push(values.3);
        self.message.push(values.4);
        self.excerpt.push(values.5);
    }
}

fn health_row(r: &Row) -> Result<(String, DestinationHealth)> {
    Ok((
        get(r, 0)?,
        DestinationHealth {
            enabled: get(r, 1)?,
            disabled_reason: get(r, 2)?,
            consecutive_failures: get(r, 3)?,
            failing_since: get(r, 4)?,
            throttled_until: get(r, 5)?,
            updated_at: get(r, 6)?,
        },
    ))
}

/// Each destination's health now and as the records will leave it (both as read, to start).
type HealthChange = HashMap<String, (DestinationHealth, DestinationHealth)>;

async fn destination_health(db: &Db<'_>, sql: &str, ids: &[&str]) -> Result<HealthChange> {
    let mut health = HashMap::with_capacity(ids.len());
    for r in db.rows(sql, &[&ids]).await? {
        let (id, h) = health_row(&r)?;
        health.insert(id, (h.clone(), h));
    }
    Ok(health)
}

/// True when applying every record leaves each destination's row as it is, which is what nearly
/// every delivery does: a success to a destination that was not failing or paused.
fn leaves_health_as_it_is(health: &HealthChange, records: &[Sealed<'_>]) -> bool {
    let mut after = health.clone();
    for s in records {
        if let Some((_, h)) = after.get_mut(s.record.destination.as_str()) {
            h.record(s.record);
        }
    }
    after.values().all(|(before, after)| before == after)
}

async fn record(db: &Db<'_>, records: &[Sealed<'_>]) -> Result<()> {
    let mut destination_ids: Vec<&str> = records.iter().map(|s| s.record.destination.as_str()).collect();
    destination_ids.sort_unstable();
    destination_ids.dedup();
    let mut health = destination_health(db, READ_HEALTH, &destination_ids).await?;
    let plain_successes = records.iter().all(|s| matches!(s.record.next, NextState::Delivered));
    if !(plain_successes && leaves_health_as_it_is(&health, records)) {
        health = destination_health(db, LOCK_HEALTH, &destination_ids).await?;
    }
    let mut delivery_ids: Vec<&str> = records.iter().map(|s| s.record.attempt.delivery_id.as_str()).collect();
    delivery_ids.sort_unstable();
    delivery_ids.dedup();
    let mut held: HashMap<String, Held> = HashMap::with_capacity(delivery_ids.len());
    for r in db.rows(LOCK_DELIVERIES, &[&delivery_ids]).await? {
        let number: Option<i64> = get(&r, 2)?;
        let latest = number.map(|n| Ok::<_, StorageError>((count(n)?, error_class(get(&r, 3)?)))).transpose()?;
        held.insert(get(&r, 0)?, Held { lease_token: get(&r, 1)?, latest });
    }

    let mut attempts = AttemptRows::default();
    let (mut ids, mut statuses, mut counts, mut dues, mut errors, mut updated) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut parked: HashSet<String> = HashSet::new();
    for s in records {
        let r = s.record;
        let id = r.attempt.delivery_id.as_str();
        let delivery = held.entry(id.to_owned()).or_insert(Held { lease_token: None, latest: None });
        // The attempt happened, so it is logged even when the lease was lost.
        let number = attempt_number(delivery.latest, r.attempt.error_class);
        delivery.latest = Some((number, r.attempt.error_class));
        attempts.put(number, s);
        if delivery.lease_token.as_deref() != Some(r.lease_token.as_str()) {
            // The lease expired and another claim owns the delivery now (or this lease's result
            // was recorded already): the state and the destination's health are theirs to set.
            continue;
        }
        delivery.lease_token = None;
        let next = NextRow::of(r, s.message.as_deref());
        ids.push(id.to_owned());
        statuses.push(next.status);
        counts.push(next.counts);
        dues.push(next.due);
        errors.push(next.last_error);
        updated.push(next.updated_at);
        if let Some((_, h)) = health.get_mut(r.destination.as_str())
            && h.record(r)
        {
            parked.insert(r.destination.as_str().to_owned());
        }
    }

    db.exec(
        LOG_ATTEMPTS,
        &[
            &attempts.delivery,
            &attempts.number,
            &attempts.started_at,
            &attempts.duration_ms,
            &attempts.status_code,
            &attempts.error_class,
            &attempts.message,
            &attempts.excerpt,
        ],
    )
    .await?;
    if !ids.is_empty() {
        db.exec(SET_NEXT_STATES, &[&ids, &statuses, &counts, &dues, &errors, &updated]).await?;
    }
    let changed: Vec<(&String, &DestinationHealth, bool)> = health
        .iter()
        .filter(|(_, (before, after))| before != after)
        .map(|(id, (before, after))| (id, after, before.throttled_until.is_some() && after.throttled_until.is_none()))
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&DestinationHealth) -> Option<i64>| changed.iter().map(|(_, h, _)| f(h)).collect::<Vec<_>>();
    db.exec(
        SET_HEALTH,
        &[
            &changed.iter().map(|(id, _, _)| id.as_str()).collect::<Vec<_>>(),
            &changed.iter().map(|(_, h, _)| h.enabled).collect::<Vec<_>>(),
            &changed.iter().map(|(_, h, _)| h.disabled_reason.as_deref()).collect::<Vec<_>>(),
            &changed.iter().map(|(_, h, _)| h.consecutive_failures).collect::<Vec<_>>(),
            &column(|h| h.failing_since),
            &column(|h| h.throttled_until),
            &changed.iter().map(|(_, h, _)| h.updated_at).collect::<Vec<_>>(),
            &changed.iter().map(|(id, _, _)| parked.contains(id.as_str())).collect::<Vec<_>>(),
        ],
    )
    .await?;
    if changed.iter().any(|(_, _, pause_ended)| *pause_ended) {
        // The rest of a paused destination's queue is due again.
        db.work_is_due().await?;
    }
    Ok(())
}

async fn get_delivery(db: &Db<'_>, id: &DeliveryId) -> Result<Delivery> {
    let r = db.one(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1"), &[&id.as_str()]).await?;
    delivery_from_row(delivery_row(&r)?, db.vault)
}

async fn retry_delivery(db: &Db<'_>, id: &DeliveryId, now: Timestamp) -> Result<Delivery> {
    let enabled: bool = get(&db.one(HOLD_DESTINATION_OF, &[&id.as_str()]).await?, 0)?;
    // No row: the delivery is in flight right now.
    let row = db
        .optional(&with_columns(RESET), &[&id.as_str(), &now.as_millis(), &enabled])
        .await?
        .ok_or(StorageError::Conflict)?;
    if enabled {
        db.work_is_due().await?;
    }
    delivery_from_row(delivery_row(&row)?, db.vault)
}

async fn replay_candidates(db: &Db<'_>, req: &ReplayRequest, after: Option<&LeadId>, limit: u32) -> Result<Vec<Lead>> {
    let dest = db.one("SELECT publisher_id FROM destinations WHERE id = $1", &[&req.destination.as_str()]).await?;
    let publisher: String = get(&dest, 0)?;
    let since = req.since.map_or(i64::MIN, Timestamp::as_millis);
    let until = req.until.map_or(i64::MAX, Timestamp::as_millis);
    let after = after.map_or("", |a| a.as_str());
    let base = format!(
        "SELECT {LEAD_COLUMNS} FROM leads
         WHERE publisher_id = $1 AND received_at >= $2 AND received_at < $3 AND duplicate_of IS NULL AND id > $4"
    );
    let limit = i64::from(limit);
    let rows = if req.only_dead {
        let sql = format!(
            "{base} AND EXISTS (SELECT 1 FROM deliveries d
                                WHERE d.lead_id = leads.id AND d.destination_id = $6 AND d.status = 'dead')
             ORDER BY id LIMIT $5"
        );
        db.rows(&sql, &[&publisher, &since, &until, &after, &limit, &req.destination.as_str()]).await?
    } else {
        db.rows(&format!("{base} ORDER BY id LIMIT $5"), &[&publisher, &since, &until, &after, &limit]).await?
    };
    rows.iter().map(|r| lead_row(r)?.into_lead(db.vault)).collect()
}

async fn replay(db: &Db<'_>, plan: &ReplayPlan, now: Timestamp) -> Result<u64> {
    let dest = db.one(HOLD_DESTINATION, &[&plan.destination.as_str()]).await?;
    let (id, publisher, enabled): (String, String, bool) = (get(&dest, 0)?, get(&dest, 1)?, get(&dest, 2)?);
    if plan.leads.is_empty() {
        return Ok(0);
    }
    let leads: Vec<&str> = plan.leads.iter().map(|(l, _)| l.as_str()).collect();
    let deliveries: Vec<&str> = plan.leads.iter().map(|(_, d)| d.as_str()).collect();
    let at = now.as_millis();
    let due = enabled.then_some(at);
    let n: i64 = get(&db.one(REPLAY, &[&leads, &deliveries, &id, &publisher, &due, &at]).await?, 0)?;
    if n > 0 && enabled {
        db.work_is_due().await?;
    }
    Ok(u64::try_from(n).unwrap_or(0))
}

async fn next_due_at(db: &Db<'_>) -> Result<Option<Timestamp>> {
    let at: Option<i64> = get(&db.one(NEXT_DUE, &[]).await?, 0)?;
    Ok(at.map(ts))
}

async fn outbox_depths(db: &Db<'_>) -> Result<Vec<OutboxDepth>> {
    db.rows(OUTBOX_DEPTHS, &[])
        .await?
        .iter()
        .map(|r| {
            let (publisher, destination): (String, String) = (get(r, 0)?, get(r, 1)?);
            let paused_until: Option<i64> = get(r, 3)?;
            let waiting: i64 = get(r, 4)?;
            Ok(OutboxDepth {
                publisher: publisher_id(&publisher)?,
                destination: destination_id(&destination)?,
                enabled: get(r, 2)?,
                paused_until: paused_until.map(ts),
                waiting: u64::try_from(waiting).unwrap_or(0),
            })
        })
        .collect()
}

async fn list_deliveries(db: &Db<'_>, filter: &DeliveryFilter, page: &PageRequest) -> Result<Page<Delivery>> {
    let mut q = PagedQuery::new(DELIVERY_COLUMNS, "deliveries");
    q.and("publisher_id =", text(filter.publisher.as_ref().map(|p| p.as_str())));
    q.and("status =", text(filter.status.map(|s| s.as_str())));
    q.and("destination_id =", text(filter.destination.as_ref().map(|d| d.as_str())));
    q.run(db, page, |r| delivery_from_row(delivery_row(r)?, db.vault), |d| d.id.as_str().to_owned()).await
}

#[async_trait::async_trait]
impl OutboxStore for PostgresStore {
    async fn claim_due_deliveries(&self, request: &ClaimRequest) -> Result<Vec<Claimed>> {
        let token = lease_token(request.now);
        in_transaction!(self, Mode::Write, |db| claim(db, request, &token))
    }

    async fn record_attempts(&self, records: &[AttemptRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let sealed: Vec<Sealed<'_>> = records
            .iter()
            .map(|record| Sealed {
                record,
                message: self.vault.seal_opt(Column::AttemptMessage, record.attempt.message.as_deref()),
                excerpt: self.vault.seal_opt(Column::AttemptExcerpt, record.attempt.excerpt.as_deref()),
            })
            .collect();
        in_transaction!(self, Mode::Write, |db| record(db, &sealed))
    }

    async fn next_due_at(&self) -> Result<Option<Timestamp>> {
        in_transaction!(self, Mode::Read, |db| next_due_at(db))
    }

    async fn outbox_depths(&self) -> Result<Vec<OutboxDepth>> {
        in_transaction!(self, Mode::Read, |db| outbox_depths(db))
    }

    async fn get_delivery(&self, id: &DeliveryId) -> Result<Delivery> {
        in_transaction!(self, Mode::Read, |db| get_delivery(db, id))
    }

    async fn list_deliveries(&self, filter: &DeliveryFilter, page: &PageRequest) -> Result<Page<Delivery>> {
        in_transaction!(self, Mode::Read, |db| list_deliveries(db, filter, page))
    }

    async fn retry_delivery(&self, id: &DeliveryId, now: Timestamp) -> Result<Delivery> {
        in_transaction!(self, Mode::Write, |db| retry_delivery(db, id, now))
    }

    async fn replay_candidates(
        &self,
        request: &ReplayRequest,
        after: Option<&LeadId>,
        limit: u32,
    ) -> Result<Vec<Lead>> {
        in_transaction!(self, Mode::Read, |db| replay_candidates(db, request, after, limit))
    }

    async fn replay(&self, plan: &ReplayPlan, now: Timestamp) -> Result<u64> {
        in_transaction!(self, Mode::Write, |db| replay(db, plan, now))
    }
}
