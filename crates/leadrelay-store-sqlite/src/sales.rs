//! Opportunities, their follow-up, the sales settings and the KPI query.
//!
//! Opportunities are opened and joined by the lead insert ([`file_lead`], called from
//! `leads.rs` in the lead's own transaction); the methods here work them. Every write reads
//! what it checks in the writer's transaction, so the version check, round-robin's turn and
//! the notices handed out once need nothing more than SQLite's one writer.

use std::collections::HashMap;

use leadrelay_core::sales::kpi::{DeliveryFact, KpiAccumulator, KpiQuery, KpiReport};
use leadrelay_core::sales::{Activity, Opportunity, OpportunityStatus, SalesSettings, sla};
use leadrelay_core::storage::{
    ChecklistTick, DeliveryStatus, DueFilter, OpportunityFilter, OpportunityUpdate, OwnerFilter, Page, PageRequest,
    Result, SalesNotice, SalesNoticeKind, SalesStore,
};
use leadrelay_core::stored::sales::{
    ACTIVITY_COLUMNS, OPPORTUNITY_COLUMNS, OpportunityRow, SETTINGS_COLUMNS, SettingsRow, StoredSettings, UpdatableRow,
    activity_from_row, checklist, group_column, id_bound, joined_stage, opportunity_fact, opportunity_id,
    sealed_activity, takes_leads,
};
use leadrelay_core::{Lead, OfferId, OpportunityId, PublisherId, Timestamp};
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, params};

use crate::rows::{PagedQuery, corrupt, text, ts};
use crate::{Db, SqliteStore, map_err, query_rows};

// ---------------------------------------------------------------------------------------------
// Settings

/// The stored settings of a publisher, `None` when it saved none.
fn read_settings(c: &rusqlite::Connection, publisher: &str) -> Result<Option<StoredSettings>> {
    let row: Option<SettingsRow> = c
        .prepare_cached(&format!("SELECT {SETTINGS_COLUMNS} FROM sales_settings WHERE publisher_id = ?1"))
        .and_then(|mut s| {
            s.query_row([publisher], |r| {
                Ok(SettingsRow {
                    team: r.get(0)?,
                    round_robin: r.get(1)?,
                    max_open_per_owner: r.get(2)?,
                    checklist: r.get(3)?,
                    first_touch_sla_hours: r.get(4)?,
                    follow_up_min: r.get(5)?,
                    follow_up_max: r.get(6)?,
                    time_zone: r.get(7)?,
                    business_days: r.get(8)?,
                    business_start_minute: r.get(9)?,
                    business_end_minute: r.get(10)?,
                    rr_last_owner: r.get(11)?,
                })
            })
            .optional()
        })
        .map_err(map_err)?;
    row.map(StoredSettings::from_row).transpose()
}

/// Settings read once per write (or read), by publisher.
#[derive(Default)]
pub(crate) struct SettingsCache(HashMap<String, StoredSettings>);

impl SettingsCache {
    fn get(&mut self, c: &rusqlite::Connection, publisher: &str) -> Result<&mut StoredSettings> {
        Ok(match self.0.entry(publisher.to_owned()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(read_settings(c, publisher)?.unwrap_or_default()),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Opening and joining, in the lead's transaction

// The customer's latest opportunity for the offer (NULL offer included).
const LATEST_OF_CUSTOMER: &str = "SELECT id, status, stage FROM opportunities
     WHERE customer_id = ?1 AND offer_id IS ?2 ORDER BY id DESC LIMIT 1";

const JOIN: &str = "UPDATE opportunities SET stage = ?2, updated_at = MAX(updated_at, ?3), version = version + 1
     WHERE id = ?1";

const OPEN_OPPORTUNITY: &str = "INSERT INTO opportunities (publisher_id, id, customer_id, offer_id, stage, status,
         owner_id, source, action, opened_at, first_touch_due_at, owner_notice_pending, updated_at, version)
     VALUES (?1, ?2, ?3, ?4, ?5, 'new', ?6, ?7, ?8, ?9, ?10, ?11, ?9, 1)";

const ADD_LEAD: &str = "INSERT INTO opportunity_leads (lead_id, opportunity_id, received_at) VALUES (?1, ?2, ?3)";

// Counted on `opportunities_open_by_owner` alone, and only up to the cap.
const OPEN_OF_OWNER: &str = "SELECT COUNT(*) FROM (
         SELECT 1 FROM opportunities WHERE owner_id = ?1 AND status IN ('new', 'contacted', 'qualified') LIMIT ?2)";

/// Files a lead that is sales work (`sales::opens_opportunity`, not a duplicate) under its
/// customer's opportunity for its offer, opening one when there is none to join, and returns
/// its id. `new_customer`: the customer was created by this lead, so it has no opportunity yet
/// (no lookup). Writes nothing outside the transaction: the cache lives as long as one run of
/// the write.
pub(crate) fn file_lead(
    c: &Db<'_>,
    cache: &mut SettingsCache,
    lead: &Lead,
    customer: &str,
    new_customer: bool,
) -> Result<OpportunityId> {
    let offer = lead.offer.as_ref().map(OfferId::as_str);
    let at = lead.received_at.as_millis();
    if !new_customer {
        let latest: Option<(String, String, String)> = c
            .prepare_cached(LATEST_OF_CUSTOMER)
            .and_then(|mut s| {
                s.query_row(params![customer, offer], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional()
            })
            .map_err(map_err)?;
        if let Some((id, status, stage)) = latest
            && takes_leads(&status)
        {
            let stage = joined_stage(&stage, &lead.stage)?;
            c.prepare_cached(JOIN).and_then(|mut s| s.execute(params![id, stage, at])).map_err(map_err)?;
            add_lead(c, lead, &id)?;
            return opportunity_id(&id);
        }
    }
    let publisher = lead.publisher.as_str();
    let stored = cache.get(c, publisher)?;
    let due = sla::first_touch_due(lead.received_at, &stored.settings);
    let owner = if stored.settings.round_robin { next_in_turn(c, stored)? } else { None };
    if let Some(owner) = &owner {
        c.prepare_cached("UPDATE sales_settings SET rr_last_owner = ?2 WHERE publisher_id = ?1")
            .and_then(|mut s| s.execute(params![publisher, owner]))
            .map_err(map_err)?;
        stored.rr_last_owner = Some(owner.clone());
    }
    let id = OpportunityId::generate(lead.received_at);
    c.prepare_cached(OPEN_OPPORTUNITY)
        .and_then(|mut s| {
            s.execute(params![
                publisher,
                id.as_str(),
                customer,
                offer,
                lead.stage.as_str(),
                owner,
                lead.source.as_str(),
                lead.action.as_ref().map(|a| a.as_str()),
                at,
                due.as_millis(),
                owner.is_some(),
            ])
        })
        .map_err(map_err)?;
    add_lead(c, lead, id.as_str())?;
    Ok(id)
}

fn add_lead(c: &Db<'_>, lead: &Lead, opportunity: &str) -> Result<()> {
    c.prepare_cached(ADD_LEAD)
        .and_then(|mut s| s.execute(params![lead.id.as_str(), opportunity, lead.received_at.as_millis()]))
        .map(drop)
        .map_err(map_err)
}

/// Round-robin: the next person of the team after the one who got the last opportunity who
/// owns fewer open opportunities than the cap; `None` when every one is at it.
fn next_in_turn(c: &Db<'_>, stored: &StoredSettings) -> Result<Option<String>> {
    for person in stored.turn_order() {
        let person = person.as_str();
        let Some(cap) = stored.settings.max_open_per_owner else { return Ok(Some(person.to_owned())) };
        let open: u32 = c
            .prepare_cached(OPEN_OF_OWNER)
            .and_then(|mut s| s.query_row(params![person, cap], |r| r.get(0)))
            .map_err(map_err)?;
        if open < cap {
            return Ok(Some(person.to_owned()));
        }
    }
    Ok(None)
}

// ---------------------------------------------------------------------------------------------
// Reading an opportunity

fn opportunity_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OpportunityRow> {
    let mut strings: [Option<String>; 10] = Default::default();
    for (i, slot) in strings.iter_mut().enumerate() {
        *slot = r.get(i)?;
    }
    Ok(OpportunityRow {
        strings,
        opened_at: r.get(10)?,
        first_touch_due_at: r.get(11)?,
        times: [r.get(12)?, r.get(13)?, r.get(14)?, r.get(15)?],
        updated_at: r.get(16)?,
        version: r.get(17)?,
    })
}

/// The opportunity of a row, with its leads, checklist (in `checklist`'s order) and log.
fn opportunity(c: &Db<'_>, row: OpportunityRow, items: &[String]) -> Result<Opportunity> {
    let id = row.id().to_owned();
    let lead_ids = query_rows(
        c,
        "SELECT lead_id FROM opportunity_leads WHERE opportunity_id = ?1 ORDER BY received_at, lead_id",
        [&id],
        |r| r.get::<_, String>(0),
        |s| crate::rows::lead_id(&s),
    )?;
    let ticked = query_rows(
        c,
        "SELECT item, done, actor, at FROM opportunity_checklist WHERE opportunity_id = ?1",
        [&id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        Ok,
    )?;
    let activities = query_rows(
        c,
        &format!("SELECT {ACTIVITY_COLUMNS} FROM activities WHERE opportunity_id = ?1 ORDER BY at, id"),
        [&id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
        |row| activity_from_row(row, c.vault),
    )?;
    row.into_opportunity(c.vault, lead_ids, checklist(items, ticked), activities)
}

/// One opportunity by id, in full; `NotFound` if unknown.
fn load(c: &Db<'_>, id: &str, cache: &mut SettingsCache) -> Result<Opportunity> {
    let row = c
        .prepare_cached(&format!("SELECT {OPPORTUNITY_COLUMNS} FROM opportunities WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id], opportunity_row))
        .map_err(map_err)?;
    let checklist = &cache.get(c, row.publisher())?.settings.checklist;
    opportunity(c, row, checklist)
}

/// Runs `f` in one read transaction, so an opportunity's row, leads, checklist and log (and
/// every item of a page) come from one snapshot. The transaction ends however `f` does, so the
/// connection goes back to the pool holding no snapshot (which would hold up checkpoints).
fn in_snapshot<T>(c: &Db<'_>, f: impl FnOnce() -> Result<T>) -> Result<T> {
    struct End<'a>(&'a rusqlite::Connection);
    impl Drop for End<'_> {
        fn drop(&mut self) {
            let _ = self.0.execute_batch("COMMIT");
        }
    }
    c.execute_batch("BEGIN DEFERRED").map_err(map_err)?;
    let _end = End(c);
    f()
}

/// `NotFound` if the opportunity is unknown, for a write to it.
fn exists(c: &Db<'_>, id: &str) -> Result<()> {
    c.prepare_cached("SELECT 1 FROM opportunities WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |_| Ok(())))
        .map_err(map_err)
}

// ---------------------------------------------------------------------------------------------
// Writes

const UPDATE: &str = "UPDATE opportunities SET status = ?2, reason = ?3, owner_id = ?4, owner_notice_pending = ?5,
         next_touch_at = ?6, qualified_at = COALESCE(qualified_at, ?7), updated_at = MAX(updated_at, ?8),
         version = version + 1
     WHERE id = ?1";

// Set expressions read the row as it was: a touch is the first one only if there was none.
const LOG_ACTIVITY: &str = "UPDATE opportunities SET touches = touches + ?2,
         first_touched_at = CASE WHEN ?2 = 1 AND first_touched_at IS NULL THEN ?3 ELSE first_touched_at END,
         status = CASE WHEN ?2 = 1 AND status = 'new' THEN 'contacted' ELSE status END,
         next_touch_at = CASE WHEN ?4 IS NOT NULL THEN ?4 ELSE next_touch_at END,
         updated_at = MAX(updated_at, ?3), version = version + 1
     WHERE id = ?1";

const INSERT_ACTIVITY: &str =
    "INSERT INTO activities (id, opportunity_id, kind, outcome, note, next_touch_at, actor, at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

const TICK: &str =
    "INSERT INTO opportunity_checklist (opportunity_id, item, done, actor, at) VALUES (?1, ?2, ?3, ?4, ?5)
     ON CONFLICT (opportunity_id, item) DO UPDATE SET done = excluded.done, actor = excluded.actor, at = excluded.at";

const TOUCHED: &str = "UPDATE opportunities SET updated_at = MAX(updated_at, ?2), version = version + 1 WHERE id = ?1";

// Owners assigned and not yet told; then open opportunities nobody touched whose first-touch
// deadline passed and whose breach was not told (a due time implies open). Both read a partial
// index that holds only the rows still waiting.
const PENDING_OWNER_NOTICES: &str = "SELECT id FROM opportunities WHERE owner_notice_pending = 1 LIMIT ?1";
const PENDING_BREACHES: &str = "SELECT id FROM opportunities
     WHERE first_touched_at IS NULL AND sla_notified_at IS NULL AND due_at < ?1 ORDER BY due_at LIMIT ?2";

fn put_settings(c: &Db<'_>, publisher: &str, s: &SalesSettings) -> Result<()> {
    let kept = read_settings(c, publisher)?.and_then(|old| old.kept_turn(s));
    let r = SettingsRow::new(s, kept)?;
    c.prepare_cached(&format!(
        "INSERT INTO sales_settings (publisher_id, {SETTINGS_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (publisher_id) DO UPDATE SET team = excluded.team, round_robin = excluded.round_robin,
             max_open_per_owner = excluded.max_open_per_owner, checklist = excluded.checklist,
             first_touch_sla_hours = excluded.first_touch_sla_hours, follow_up_min = excluded.follow_up_min,
             follow_up_max = excluded.follow_up_max, time_zone = excluded.time_zone,
             business_days = excluded.business_days, business_start_minute = excluded.business_start_minute,
             business_end_minute = excluded.business_end_minute, rr_last_owner = excluded.rr_last_owner"
    ))
    .and_then(|mut st| {
        st.execute(params![
            publisher,
            r.team,
            r.round_robin,
            r.max_open_per_owner,
            r.checklist,
            r.first_touch_sla_hours,
            r.follow_up_min,
            r.follow_up_max,
            r.time_zone,
            r.business_days,
            r.business_start_minute,
            r.business_end_minute,
            r.rr_last_owner,
        ])
    })
    .map(drop)
    .map_err(map_err)
}

fn update(c: &Db<'_>, u: &OpportunityUpdate) -> Result<()> {
    let id = u.id.as_str();
    let current = c
        .prepare_cached(
            "SELECT status, reason, owner_id, owner_notice_pending, next_touch_at, version FROM opportunities
             WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.query_row([id], |r| {
                Ok(UpdatableRow {
                    status: r.get(0)?,
                    reason: r.get(1)?,
                    owner: r.get(2)?,
                    owner_notice_pending: r.get(3)?,
                    next_touch_at: r.get(4)?,
                    version: r.get(5)?,
                })
            })
        })
        .map_err(map_err)?;
    let w = current.apply(u, c.vault)?;
    c.prepare_cached(UPDATE)
        .and_then(|mut s| {
            s.execute(params![
                id,
                w.status,
                w.reason,
                w.owner,
                w.owner_notice_pending,
                w.next_touch_at,
                w.qualified_at,
                w.now
            ])
        })
        .map(drop)
        .map_err(map_err)
}

/// An activity with its texts sealed in the caller's task.
struct SealedActivity {
    activity: Activity,
    outcome: Option<String>,
    note: Option<String>,
}

fn log_activity(c: &Db<'_>, opportunity: &str, a: &SealedActivity) -> Result<()> {
    exists(c, opportunity)?;
    let act = &a.activity;
    c.prepare_cached(INSERT_ACTIVITY)
        .and_then(|mut s| {
            s.execute(params![
                act.id.as_str(),
                opportunity,
                act.kind.as_str(),
                a.outcome,
                a.note,
                act.next_touch_at.map(Timestamp::as_millis),
                act.by,
                act.at.as_millis()
            ])
        })
        .map_err(map_err)?;
    c.prepare_cached(LOG_ACTIVITY)
        .and_then(|mut s| {
            s.execute(params![
                opportunity,
                i64::from(act.kind.is_touch()),
                act.at.as_millis(),
                act.next_touch_at.map(Timestamp::as_millis)
            ])
        })
        .map(drop)
        .map_err(map_err)
}

fn tick(c: &Db<'_>, t: &ChecklistTick) -> Result<()> {
    let id = t.opportunity.as_str();
    exists(c, id)?;
    c.prepare_cached(TICK)
        .and_then(|mut s| s.execute(params![id, t.item, t.done, t.by, t.at.as_millis()]))
        .map_err(map_err)?;
    c.prepare_cached(TOUCHED).and_then(|mut s| s.execute(params![id, t.at.as_millis()])).map(drop).map_err(map_err)
}

/// Takes the notices due and marks them taken; which ones, by opportunity id.
fn take_notices(c: &Db<'_>, now: Timestamp, limit: u32) -> Result<Vec<(SalesNoticeKind, String)>> {
    let assigned: Vec<String> = query_rows(c, PENDING_OWNER_NOTICES, [limit], |r| r.get(0), Ok)?;
    let left = limit.saturating_sub(u32::try_from(assigned.len()).unwrap_or(u32::MAX));
    let breached: Vec<String> = if left == 0 {
        Vec::new()
    } else {
        query_rows(c, PENDING_BREACHES, params![now.as_millis(), left], |r| r.get(0), Ok)?
    };
    // Taking a notice is bookkeeping, not a change a person made: the version stays, so nobody
    // editing the opportunity meanwhile gets a conflict from it.
    for id in &assigned {
        c.prepare_cached("UPDATE opportunities SET owner_notice_pending = 0 WHERE id = ?1")
            .and_then(|mut s| s.execute([id]))
            .map_err(map_err)?;
    }
    for id in &breached {
        c.prepare_cached("UPDATE opportunities SET sla_notified_at = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id, now.as_millis()]))
            .map_err(map_err)?;
    }
    let assigned = assigned.into_iter().map(|id| (SalesNoticeKind::Assigned, id));
    Ok(assigned.chain(breached.into_iter().map(|id| (SalesNoticeKind::SlaBreached, id))).collect())
}

// ---------------------------------------------------------------------------------------------
// KPIs

// A destination's deliveries of leads received in the period, from the covering index alone.
const KPI_DELIVERIES: &str =
    "SELECT status, attempts, CASE WHEN status = 'delivered' THEN updated_at - lead_received_at END, id
     FROM deliveries
     WHERE destination_id = ?1 AND status IN ('pending', 'delivered', 'dead')
       AND lead_received_at >= ?2 AND lead_received_at < ?3";

// The deliveries of the publisher's test leads received in the period: the test leads by their
// partial index (a few), their deliveries by lead.
const KPI_TEST_DELIVERIES: &str = "SELECT d.id FROM leads l JOIN deliveries d ON d.lead_id = l.id
     WHERE l.publisher_id = ?1 AND l.is_test = 1 AND l.received_at >= ?2 AND l.received_at < ?3";

/// The opportunities opened in the period, with the query's filters: a range of the table's own
/// key (see [`id_bound`]), the opening time checked as well.
/// Only the grouping key is read, in the last column ([`group_column`]): three strings a row are
/// most of the cost of reading a few hundred thousand.
fn kpi_opportunities(q: &KpiQuery) -> (String, Vec<Value>) {
    let key = group_column(q.group_by);
    let mut sql = format!(
        "SELECT status, opened_at, first_touch_due_at, first_touched_at, qualified_at IS NOT NULL, touches, {key}
         FROM opportunities WHERE publisher_id = ?1"
    );
    let mut args: Vec<Value> = vec![Value::Text(q.publisher.as_str().to_owned())];
    let mut and = |clause: &str, v: Value| {
        args.push(v);
        sql.push_str(&format!(" AND {clause} ?{}", args.len()));
    };
    if let Some(since) = q.since {
        and("id >=", Value::Text(id_bound(since)));
        and("opened_at >=", Value::Integer(since.as_millis()));
    }
    if let Some(until) = q.until {
        and("id <", Value::Text(id_bound(until)));
        and("opened_at <", Value::Integer(until.as_millis()));
    }
    kpi_filters(q, &mut and);
    (sql, args)
}

/// The query's offer, source and action filters, on a table with those columns (an
/// opportunity's are its opening lead's): the action in any case, as the lead list compares it.
fn kpi_filters(q: &KpiQuery, and: &mut impl FnMut(&str, Value)) {
    if let Some(offer) = &q.offer {
        and("offer_id =", Value::Text(offer.as_str().to_owned()));
    }
    if let Some(source) = &q.source {
        and("source =", Value::Text(source.clone()));
    }
    if let Some(action) = &q.action {
        and("action COLLATE NOCASE =", Value::Text(action.clone()));
    }
}

/// The publisher's real leads received in the period, with the query's filters: a range of
/// `leads_by_received`, which holds every column read here, so no lead's row is read. One row
/// a lead, counted per day as it streams: a `GROUP BY` of the day would sort every lead first,
/// which costs more than reading them.
fn kpi_leads(q: &KpiQuery) -> (String, Vec<Value>) {
    let mut sql = "SELECT received_at, source, action FROM leads
         WHERE publisher_id = ?1 AND received_at >= ?2 AND received_at < ?3 AND is_test = 0"
        .to_owned();
    let mut args: Vec<Value> = vec![
        Value::Text(q.publisher.as_str().to_owned()),
        Value::Integer(q.since.map_or(i64::MIN, Timestamp::as_millis)),
        Value::Integer(q.until.map_or(i64::MAX, Timestamp::as_millis)),
    ];
    kpi_filters(q, &mut |clause, v| {
        args.push(v);
        sql.push_str(&format!(" AND {clause} ?{}", args.len()));
    });
    (sql, args)
}

/// A text column without copying it.
fn text_at<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> Result<&'r str> {
    r.get_ref(i).map_err(map_err)?.as_str().map_err(|_| corrupt("status"))
}

fn kpis_in(c: &Db<'_>, q: &KpiQuery) -> Result<KpiReport> {
    let mut acc = KpiAccumulator::new(q);
    let publisher = q.publisher.as_str();
    let destinations: Vec<String> = query_rows(
        c,
        "SELECT id FROM destinations WHERE publisher_id = ?1 ORDER BY id",
        [publisher],
        |r| r.get(0),
        Ok,
    )?;
    for d in &destinations {
        acc.destination(crate::rows::destination_id(d)?);
    }

    let (sql, args) = kpi_opportunities(q);
    {
        let mut stmt = c.prepare_cached(&sql).map_err(map_err)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args)).map_err(map_err)?;
        while let Some(r) = rows.next().map_err(map_err)? {
            let row = (
                text_at(r, 0)?,
                r.get(1).map_err(map_err)?,
                r.get(2).map_err(map_err)?,
                r.get(3).map_err(map_err)?,
                r.get(4).map_err(map_err)?,
                r.get(5).map_err(map_err)?,
                r.get(6).map_err(map_err)?,
            );
            acc.opportunity(&opportunity_fact(row, q.group_by)?);
        }
    }

    let (sql, args) = kpi_leads(q);
    {
        let mut stmt = c.prepare_cached(&sql).map_err(map_err)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args)).map_err(map_err)?;
        while let Some(r) = rows.next().map_err(map_err)? {
            let action = r.get_ref(2).map_err(map_err)?.as_str_or_null().map_err(|_| corrupt("action"))?;
            acc.daily_leads(ts(r.get(0).map_err(map_err)?), text_at(r, 1)?, action, 1);
        }
    }

    // Deliveries of the publisher's real leads received in the period: a range of the covering
    // `deliveries_by_destination` per destination, never the table. The test leads' deliveries
    // are one small set read first and left out here by id (a hash probe, where an SQL
    // `NOT IN` cost a B-tree probe a row).
    let since = q.since.map_or(i64::MIN, Timestamp::as_millis);
    let until = q.until.map_or(i64::MAX, Timestamp::as_millis);
    let tests: std::collections::HashSet<String> =
        query_rows(c, KPI_TEST_DELIVERIES, params![publisher, since, until], |r| r.get(0), Ok)?.into_iter().collect();
    let mut stmt = c.prepare_cached(KPI_DELIVERIES).map_err(map_err)?;
    for d in &destinations {
        let destination = crate::rows::destination_id(d)?;
        let mut rows = stmt.query(params![d, since, until]).map_err(map_err)?;
        while let Some(r) = rows.next().map_err(map_err)? {
            if !tests.is_empty() && tests.contains(text_at(r, 3)?) {
                continue;
            }
            acc.delivery(DeliveryFact {
                destination: destination.clone(),
                status: DeliveryStatus::parse(text_at(r, 0)?).ok_or_else(|| corrupt("delivery status"))?,
                attempts: r.get(1).map_err(map_err)?,
                lag_ms: r.get(2).map_err(map_err)?,
            });
        }
    }
    Ok(acc.finish())
}

// ---------------------------------------------------------------------------------------------
// Lists

/// The index a list reads, newest first, when its filter has one that keeps that order: without
/// statistics SQLite prefers walking the table's key backwards and filtering, which reads the
/// whole publisher when few rows match (a status nobody has yet, the unassigned ones of a team
/// that assigns every one). The due lists keep that walk: their index is ordered by due time,
/// and sorting every due row to show the newest fifty costs more than the walk.
fn list_index(filter: &OpportunityFilter) -> Option<&'static str> {
    match (&filter.publisher, &filter.owner, filter.status) {
        (_, Some(OwnerFilter::User(_)), Some(_)) => Some("opportunities_open_by_owner"),
        (Some(_), Some(_), _) => Some("opportunities_by_owner"),
        (Some(_), None, Some(_)) => Some("opportunities_by_status"),
        _ => None,
    }
}

fn list_query(filter: &OpportunityFilter, terms: Option<Vec<String>>) -> PagedQuery {
    let table = match list_index(filter) {
        Some(index) => format!("opportunities INDEXED BY {index}"),
        None => "opportunities".to_owned(),
    };
    let mut q = PagedQuery::new(OPPORTUNITY_COLUMNS, &table);
    q.and("publisher_id =", text(filter.publisher.as_ref().map(PublisherId::as_str)));
    q.and("status =", text(filter.status.map(OpportunityStatus::as_str)));
    match &filter.owner {
        Some(OwnerFilter::User(u)) => q.and("owner_id =", text(Some(u.as_str()))),
        Some(OwnerFilter::Unassigned) => q.push(" AND owner_id IS NULL"),
        None => {}
    }
    q.and("offer_id =", text(filter.offer.as_ref().map(OfferId::as_str)));
    match filter.due {
        Some(DueFilter::Before(t)) => q.and("due_at <", Some(Value::Integer(t.as_millis()))),
        Some(DueFilter::SlaBreached(t)) => {
            q.push(" AND first_touched_at IS NULL");
            q.and("due_at <", Some(Value::Integer(t.as_millis())));
        }
        None => {}
    }
    if let Some(terms) = terms {
        // One of its leads holds every word: the blind index, through the lead's opportunity.
        if terms.is_empty() {
            q.push(" AND 0");
        } else {
            let holds: Vec<String> = terms
                .into_iter()
                .map(|t| {
                    format!("ol.lead_id IN (SELECT lead_id FROM lead_terms WHERE term = {})", q.arg(Value::Text(t)))
                })
                .collect();
            q.push(&format!(
                " AND id IN (SELECT ol.opportunity_id FROM opportunity_leads ol WHERE {})",
                holds.join(" AND ")
            ));
        }
    }
    q
}

#[async_trait::async_trait]
impl SalesStore for SqliteStore {
    async fn sales_settings(&self, publisher: &PublisherId) -> Result<SalesSettings> {
        let publisher = publisher.as_str().to_owned();
        self.read(move |c| {
            c.prepare_cached("SELECT 1 FROM publishers WHERE id = ?1")
                .and_then(|mut s| s.query_row([&publisher], |_| Ok(())))
                .map_err(map_err)?;
            Ok(read_settings(c, &publisher)?.unwrap_or_default().settings)
        })
        .await
    }

    async fn put_sales_settings(&self, publisher: &PublisherId, settings: &SalesSettings) -> Result<()> {
        let (publisher, settings) = (publisher.as_str().to_owned(), settings.clone());
        self.write(move |c| put_settings(c, &publisher, &settings)).await
    }

    async fn get_opportunity(&self, id: &OpportunityId) -> Result<Opportunity> {
        let id = id.as_str().to_owned();
        self.read(move |c| in_snapshot(c, || load(c, &id, &mut SettingsCache::default()))).await
    }

    async fn list_opportunities(&self, filter: &OpportunityFilter, page: &PageRequest) -> Result<Page<Opportunity>> {
        let terms = filter.text.as_deref().map(|t| self.vault.query_terms(t));
        let q = list_query(filter, terms);
        let page = page.clone();
        self.read(move |c| {
            let mut cache = SettingsCache::default();
            in_snapshot(c, || {
                q.run(
                    c,
                    &page,
                    opportunity_row,
                    |row| {
                        let publisher = row.strings[1].clone().unwrap_or_default();
                        let checklist = cache.get(c, &publisher)?.settings.checklist.clone();
                        opportunity(c, row, &checklist)
                    },
                    |o| o.id.as_str().to_owned(),
                )
            })
        })
        .await
    }

    // The writes answer with the opportunity read back after their commit, on a reader: the
    // one writer thread, which every lead waits for, spends no time assembling answers.

    async fn update_opportunity(&self, update: &OpportunityUpdate) -> Result<Opportunity> {
        let u = update.clone();
        self.write(move |c| self::update(c, &u)).await?;
        self.get_opportunity(&update.id).await
    }

    async fn add_activity(&self, opportunity: &OpportunityId, activity: &Activity) -> Result<Opportunity> {
        // Sealed here, in the caller's task: the writer thread is shared by every write.
        let (outcome, note) = sealed_activity(&self.vault, activity);
        let a = SealedActivity { outcome, note, activity: activity.clone() };
        let id = opportunity.as_str().to_owned();
        self.write(move |c| log_activity(c, &id, &a)).await?;
        self.get_opportunity(opportunity).await
    }

    async fn tick_checklist(&self, t: &ChecklistTick) -> Result<Opportunity> {
        let tick = t.clone();
        self.write(move |c| self::tick(c, &tick)).await?;
        self.get_opportunity(&t.opportunity).await
    }

    async fn take_sales_notices(&self, now: Timestamp, limit: u32) -> Result<Vec<SalesNotice>> {
        let taken = self.write(move |c| take_notices(c, now, limit)).await?;
        if taken.is_empty() {
            return Ok(Vec::new());
        }
        self.read(move |c| {
            let mut cache = SettingsCache::default();
            in_snapshot(c, || {
                taken
                    .iter()
                    .map(|(kind, id)| Ok(SalesNotice { kind: *kind, opportunity: load(c, id, &mut cache)? }))
                    .collect()
            })
        })
        .await
    }

    async fn kpis(&self, query: &KpiQuery) -> Result<KpiReport> {
        let q = query.clone();
        self.read(move |c| kpis_in(c, &q)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::query_plan as plan;

    #[track_caller]
    fn reads(sql: &str, step: &str) {
        let plan = plan(sql);
        assert!(plan.iter().any(|s| s.starts_with(step)), "{step}, not {plan:?}");
        assert!(
            !plan
                .iter()
                .any(|s| ["SCAN opportunities", "SCAN deliveries", "SCAN leads"].iter().any(|t| s.starts_with(t))),
            "{plan:?}"
        );
    }

    #[test]
    fn every_list_reads_an_index_in_id_order_and_never_sorts() {
        let of_p =
            || OpportunityFilter { publisher: Some(PublisherId::parse("p").unwrap()), ..OpportunityFilter::default() };
        let ana = || Some(OwnerFilter::User(leadrelay_core::UserId::generate(Timestamp::from_millis(0))));
        let at = Timestamp::from_millis(5);
        let status = Some(OpportunityStatus::Qualified);
        let cases = [
            (of_p(), "SEARCH opportunities USING PRIMARY KEY (publisher_id=? AND id<?)"),
            (OpportunityFilter { status, ..of_p() }, "SEARCH opportunities USING INDEX opportunities_by_status"),
            (OpportunityFilter { owner: ana(), ..of_p() }, "SEARCH opportunities USING INDEX opportunities_by_owner"),
            (
                OpportunityFilter { owner: Some(OwnerFilter::Unassigned), ..of_p() },
                "SEARCH opportunities USING INDEX opportunities_by_owner",
            ),
            (
                OpportunityFilter { owner: ana(), status, ..of_p() },
                "SEARCH opportunities USING INDEX opportunities_open_by_owner",
            ),
            (
                OpportunityFilter { due: Some(DueFilter::Before(at)), ..of_p() },
                "SEARCH opportunities USING PRIMARY KEY",
            ),
            (
                OpportunityFilter { due: Some(DueFilter::SlaBreached(at)), ..of_p() },
                "SEARCH opportunities USING PRIMARY KEY",
            ),
            (
                OpportunityFilter { text: Some("ada".into()), ..of_p() },
                "SEARCH opportunities USING PRIMARY KEY (publisher_id=? AND id=?",
            ),
        ];
        for (filter, step) in cases {
            let terms = filter.text.as_ref().map(|_| vec!["t1".to_owned(), "t2".to_owned()]);
            let mut q = list_query(&filter, terms);
            q.push(" AND id < ?99 ORDER BY id DESC LIMIT 51");
            let sql = q.sql_for_tests();
            reads(&sql, step);
            assert!(!plan(&sql).iter().any(|s| s.contains("TEMP B-TREE")), "{filter:?}: {:?}", plan(&sql));
        }
    }

    #[test]
    fn the_kpis_read_a_key_range_of_opportunities_and_a_covering_index_of_deliveries() {
        let q = KpiQuery {
            since: Some(Timestamp::from_millis(1)),
            until: Some(Timestamp::from_millis(2)),
            source: Some("AppSource".into()),
            now: Timestamp::from_millis(3),
            ..KpiQuery::new(PublisherId::parse("p").unwrap())
        };
        reads(&kpi_opportunities(&q).0, "SEARCH opportunities USING PRIMARY KEY (publisher_id=? AND id>? AND id<?)");
        reads(KPI_DELIVERIES, "SEARCH deliveries USING COVERING INDEX deliveries_by_destination");
        reads(KPI_TEST_DELIVERIES, "SEARCH l USING COVERING INDEX leads_test_by_publisher");
    }

    #[test]
    fn the_daily_lead_counts_read_a_range_of_leads_by_received_alone_with_every_filter() {
        let all_time = KpiQuery { now: Timestamp::from_millis(3), ..KpiQuery::new(PublisherId::parse("p").unwrap()) };
        let filtered = KpiQuery {
            since: Some(Timestamp::from_millis(1)),
            until: Some(Timestamp::from_millis(2)),
            offer: Some(OfferId::parse("p.crm").unwrap()),
            source: Some("AppSource (SPZA)".into()),
            action: Some("ins".into()),
            ..all_time.clone()
        };
        for q in [all_time, filtered] {
            let sql = kpi_leads(&q).0;
            reads(
                &sql,
                "SEARCH leads USING COVERING INDEX leads_by_received (publisher_id=? AND received_at>? AND received_at<?)",
            );
            assert!(!plan(&sql).iter().any(|s| s.contains("TEMP B-TREE")), "{:?}", plan(&sql));
        }
    }

    #[test]
    fn the_ingest_and_notice_lookups_read_their_own_indexes() {
        reads(
            LATEST_OF_CUSTOMER,
            "SEARCH opportunities USING INDEX opportunities_by_customer (customer_id=? AND offer_id=?)",
        );
        reads(OPEN_OF_OWNER, "SEARCH opportunities USING COVERING INDEX opportunities_open_by_owner");
        reads(PENDING_OWNER_NOTICES, "SEARCH opportunities USING COVERING INDEX opportunities_owner_notices");
        reads(PENDING_BREACHES, "SEARCH opportunities USING INDEX opportunities_sla_watch");
        for write in [JOIN, UPDATE, LOG_ACTIVITY, TOUCHED] {
            reads(write, "SEARCH opportunities USING COVERING INDEX opportunities_by_id");
        }
    }
}
