//! Opportunities, their follow-up, the sales settings and the KPI query.
//!
//! Opportunities are opened and joined by the lead insert ([`file_lead`], called from
//! `leads.rs` in the lead's own transaction); the methods here work them. Every write reads
//! what it checks in the writer's transaction, so the version check, round-robin's turn and
//! the notices handed out once need nothing more than SQLite's one writer.

use std::collections::HashMap;

use leadrelay_core::sales::kpi::{DeliveryFact, KpiAccumulator, KpiGroup, KpiQuery, KpiReport, OpportunityFact};
use leadrelay_core::sales::settings::{BusinessHours, FollowUpTarget};
use leadrelay_core::sales::{
    Activity, ActivityKind, ChecklistEntry, Opportunity, OpportunityStatus, SalesSettings, sla, stage_rank,
};
use leadrelay_core::storage::{
    ChecklistTick, DeliveryStatus, DueFilter, OpportunityFilter, OpportunityUpdate, OwnerFilter, Page, PageRequest,
    Result, SalesNotice, SalesNoticeKind, SalesStore, StorageError,
};
use leadrelay_core::vault::Column;
use leadrelay_core::{ActivityId, Lead, OfferId, OpportunityId, PublisherId, Stage, Timestamp, UserId};
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, params};

use crate::rows::{PagedQuery, open, publisher_id, text, ts};
use crate::{Db, SqliteStore, map_err, query_rows};

fn corrupt(what: &str) -> StorageError {
    StorageError::Other(format!("stored {what} is not valid").into())
}

// ---------------------------------------------------------------------------------------------
// Settings

const SETTINGS_COLUMNS: &str = "team, round_robin, max_open_per_owner, checklist, first_touch_sla_hours, \
     follow_up_min, follow_up_max, time_zone, business_days, business_start_minute, business_end_minute, rr_last_owner";

type SettingsRow = (
    String,
    bool,
    Option<u32>,
    String,
    u32,
    u32,
    u32,
    String,
    Option<String>,
    Option<u16>,
    Option<u16>,
    Option<String>,
);

/// A publisher's stored settings with round-robin's position (the person who got the last one).
#[derive(Debug, Clone, Default)]
pub(crate) struct StoredSettings {
    settings: SalesSettings,
    rr_last_owner: Option<String>,
}

fn settings_from_row(row: SettingsRow) -> Result<StoredSettings> {
    let (team, round_robin, cap, checklist, sla_hours, min, max, time_zone, days, start, end, rr_last_owner) = row;
    let team: Vec<String> = serde_json::from_str(&team).map_err(|_| corrupt("sales team"))?;
    let team = team.iter().map(|u| UserId::parse(u).ok_or_else(|| corrupt("team member id"))).collect::<Result<_>>()?;
    let checklist: Vec<String> = serde_json::from_str(&checklist).map_err(|_| corrupt("checklist"))?;
    let business_hours = match (days, start, end) {
        (Some(days), Some(start_minute), Some(end_minute)) => Some(BusinessHours {
            days: serde_json::from_str(&days).map_err(|_| corrupt("business days"))?,
            start_minute,
            end_minute,
        }),
        _ => None,
    };
    Ok(StoredSettings {
        settings: SalesSettings {
            team,
            round_robin,
            max_open_per_owner: cap,
            checklist,
            first_touch_sla_hours: sla_hours,
            follow_up_target: FollowUpTarget { min, max },
            time_zone,
            business_hours,
        },
        rr_last_owner,
    })
}

/// The stored settings of a publisher, `None` when it saved none.
fn read_settings(c: &rusqlite::Connection, publisher: &str) -> Result<Option<StoredSettings>> {
    let row: Option<SettingsRow> = c
        .prepare_cached(&format!("SELECT {SETTINGS_COLUMNS} FROM sales_settings WHERE publisher_id = ?1"))
        .and_then(|mut s| {
            s.query_row([publisher], |r| {
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
            })
            .optional()
        })
        .map_err(map_err)?;
    row.map(settings_from_row).transpose()
}

/// Settings read once per write (or read), by publisher.
#[derive(Default)]
pub(crate) struct SettingsCache(HashMap<String, StoredSettings>);

impl SettingsCache {
    fn get(&mut self, c: &rusqlite::Connection, publisher: &str) -> Result<&mut StoredSettings> {
        if !self.0.contains_key(publisher) {
            let stored = read_settings(c, publisher)?.unwrap_or_default();
            self.0.insert(publisher.to_owned(), stored);
        }
        Ok(self.0.get_mut(publisher).expect("inserted just above"))
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
            && !matches!(status.as_str(), "lost" | "disqualified")
        {
            let current = Stage::parse(&stage).map_err(|_| corrupt("opportunity stage"))?;
            let stage = if stage_rank(&lead.stage) > stage_rank(&current) { lead.stage.as_str() } else { &stage };
            c.prepare_cached(JOIN).and_then(|mut s| s.execute(params![id, stage, at])).map_err(map_err)?;
            add_lead(c, lead, &id)?;
            return OpportunityId::parse(&id).ok_or_else(|| corrupt("opportunity id"));
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
    let team = &stored.settings.team;
    if team.is_empty() {
        return Ok(None);
    }
    let start = stored
        .rr_last_owner
        .as_deref()
        .and_then(|last| team.iter().position(|u| u.as_str() == last))
        .map_or(0, |i| i + 1);
    for k in 0..team.len() {
        let person = team[(start + k) % team.len()].as_str();
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

const OPPORTUNITY_COLUMNS: &str = "id, publisher_id, customer_id, offer_id, stage, status, reason, owner_id, source, \
     action, opened_at, first_touch_due_at, first_touched_at, qualified_at, next_touch_at, sla_notified_at, updated_at, \
     version";

/// An opportunity row's columns, converted outside rusqlite's closure.
pub(crate) struct OpportunityRow {
    strings: [Option<String>; 10],
    opened_at: i64,
    first_touch_due_at: i64,
    times: [Option<i64>; 4],
    updated_at: i64,
    version: i64,
}

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

fn opportunity_id(s: &str) -> Result<OpportunityId> {
    OpportunityId::parse(s).ok_or_else(|| corrupt("opportunity id"))
}

fn status(s: &str) -> Result<OpportunityStatus> {
    OpportunityStatus::parse(s).ok_or_else(|| corrupt("opportunity status"))
}

/// The opportunity of a row, with its leads, checklist (in `checklist`'s order) and log.
fn opportunity(c: &Db<'_>, row: OpportunityRow, checklist: &[String]) -> Result<Opportunity> {
    let [id, publisher, customer, offer, stage, state, reason, owner, source, action] = row.strings;
    let id = id.unwrap_or_default();
    let [first_touched_at, qualified_at, next_touch_at, sla_notified_at] = row.times;
    let lead_ids = query_rows(
        c,
        "SELECT lead_id FROM opportunity_leads WHERE opportunity_id = ?1 ORDER BY received_at, lead_id",
        [&id],
        |r| r.get::<_, String>(0),
        |s| crate::rows::lead_id(&s),
    )?;
    let mut ticked: HashMap<String, ChecklistEntry> = query_rows(
        c,
        "SELECT item, done, actor, at FROM opportunity_checklist WHERE opportunity_id = ?1",
        [&id],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?)),
        |(item, done, by, at)| Ok((item.clone(), ChecklistEntry { item, done, by: Some(by), at: Some(ts(at)) })),
    )?
    .into_iter()
    .collect();
    let checklist = checklist
        .iter()
        .map(|item| {
            ticked.remove(item).unwrap_or_else(|| ChecklistEntry {
                item: item.clone(),
                done: false,
                by: None,
                at: None,
            })
        })
        .collect();
    let activities = query_rows(
        c,
        "SELECT id, kind, outcome, note, next_touch_at, actor, at FROM activities WHERE opportunity_id = ?1
         ORDER BY at, id",
        [&id],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, i64>(6)?,
            ))
        },
        |(id, kind, outcome, note, next, by, at)| {
            Ok(Activity {
                id: ActivityId::parse(&id).ok_or_else(|| corrupt("activity id"))?,
                kind: ActivityKind::parse(&kind).ok_or_else(|| corrupt("activity kind"))?,
                outcome: open(c.vault, Column::ActivityOutcome, outcome)?,
                note: open(c.vault, Column::ActivityNote, note)?,
                next_touch_at: next.map(ts),
                by,
                at: ts(at),
            })
        },
    )?;
    Ok(Opportunity {
        id: opportunity_id(&id)?,
        publisher: publisher_id(publisher.as_deref().unwrap_or(""))?,
        customer_id: leadrelay_core::CustomerId::parse(customer.as_deref().unwrap_or(""))
            .ok_or_else(|| corrupt("customer id"))?,
        offer: offer.as_deref().map(crate::rows::offer_id).transpose()?,
        stage: Stage::parse(stage.as_deref().unwrap_or("")).map_err(|_| corrupt("opportunity stage"))?,
        status: status(state.as_deref().unwrap_or(""))?,
        reason: open(c.vault, Column::OpportunityReason, reason)?,
        owner: owner.as_deref().map(|u| UserId::parse(u).ok_or_else(|| corrupt("owner id"))).transpose()?,
        lead_ids,
        source: source.unwrap_or_default(),
        action,
        checklist,
        activities,
        opened_at: ts(row.opened_at),
        first_touch_due_at: ts(row.first_touch_due_at),
        first_touched_at: first_touched_at.map(ts),
        qualified_at: qualified_at.map(ts),
        next_touch_at: next_touch_at.map(ts),
        sla_notified_at: sla_notified_at.map(ts),
        updated_at: ts(row.updated_at),
        version: row.version,
    })
}

/// One opportunity by id, in full; `NotFound` if unknown.
fn load(c: &Db<'_>, id: &str, cache: &mut SettingsCache) -> Result<Opportunity> {
    let row = c
        .prepare_cached(&format!("SELECT {OPPORTUNITY_COLUMNS} FROM opportunities WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id], opportunity_row))
        .map_err(map_err)?;
    let publisher = row.strings[1].clone().unwrap_or_default();
    let checklist = cache.get(c, &publisher)?.settings.checklist.clone();
    opportunity(c, row, &checklist)
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

/// The status and version of an opportunity, for a write that checks them; `NotFound` if unknown.
fn current(c: &Db<'_>, id: &str) -> Result<(OpportunityStatus, Option<String>, i64)> {
    let (state, owner, version): (String, Option<String>, i64) = c
        .prepare_cached("SELECT status, owner_id, version FROM opportunities WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))))
        .map_err(map_err)?;
    Ok((status(&state)?, owner, version))
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
    // The turn stays with the person it points at while the team still holds them.
    let kept = read_settings(c, publisher)?
        .and_then(|old| old.rr_last_owner)
        .filter(|last| s.team.iter().any(|u| u.as_str() == last));
    let team = serde_json::to_string(&s.team.iter().map(UserId::as_str).collect::<Vec<_>>()).unwrap_or_default();
    let checklist = serde_json::to_string(&s.checklist).unwrap_or_default();
    let hours = s.business_hours.as_ref();
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
            team,
            s.round_robin,
            s.max_open_per_owner,
            checklist,
            s.first_touch_sla_hours,
            s.follow_up_target.min,
            s.follow_up_target.max,
            s.time_zone,
            hours.map(|h| serde_json::to_string(&h.days).unwrap_or_default()),
            hours.map(|h| h.start_minute),
            hours.map(|h| h.end_minute),
            kept,
        ])
    })
    .map(drop)
    .map_err(map_err)
}

fn update(c: &Db<'_>, u: &OpportunityUpdate) -> Result<()> {
    let id = u.id.as_str();
    let (was, owner, version) = current(c, id)?;
    if version != u.expected_version {
        return Err(StorageError::Conflict);
    }
    let row: (Option<String>, bool, Option<i64>) = c
        .prepare_cached("SELECT reason, owner_notice_pending, next_touch_at FROM opportunities WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))))
        .map_err(map_err)?;
    let (mut reason, mut pending, mut next_touch_at) = row;
    let mut now_status = was;
    if let Some((to, why)) = &u.status {
        now_status = *to;
        reason = c.vault.seal_opt(Column::OpportunityReason, why.as_deref());
    }
    let mut new_owner = owner.clone();
    if let Some(to) = &u.owner {
        let to = to.as_ref().map(|o| o.as_str().to_owned());
        if to != owner {
            // A new owner is told once; nobody is told of an opportunity taken away.
            pending = to.is_some();
        }
        new_owner = to;
    }
    if let Some(next) = u.next_touch_at {
        next_touch_at = next.map(Timestamp::as_millis);
    }
    let qualified =
        matches!(now_status, OpportunityStatus::Qualified | OpportunityStatus::Won).then(|| u.now.as_millis());
    c.prepare_cached(UPDATE)
        .and_then(|mut s| {
            s.execute(params![
                id,
                now_status.as_str(),
                reason,
                new_owner,
                pending,
                next_touch_at,
                qualified,
                u.now.as_millis()
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
    current(c, opportunity)?;
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
    current(c, id)?;
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

/// The smallest opportunity id generated at or after `at`: ids are UUIDv7 of their opening
/// time, whose first twelve hex digits are the Unix milliseconds.
fn id_bound(at: Timestamp) -> String {
    format!("{}{:012x}", OpportunityId::PREFIX, at.as_millis().clamp(0, (1 << 48) - 1))
}

/// The opportunities opened in the period, with the query's filters: a range of the table's own
/// key (see [`id_bound`]), the opening time checked as well.
/// Only the grouping key is read, in the last column (NULL without grouping): the accumulator
/// uses the offer, source and action of a fact for nothing else, and three strings a row are
/// most of the cost of reading a few hundred thousand.
fn kpi_opportunities(q: &KpiQuery) -> (String, Vec<Value>) {
    let key = match q.group_by {
        Some(KpiGroup::Offer) => "offer_id",
        Some(KpiGroup::Source) => "source",
        Some(KpiGroup::Action) => "action",
        None => "NULL",
    };
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
            let key: Option<String> = r.get(6).map_err(map_err)?;
            let mut fact = OpportunityFact {
                status: status(text_at(r, 0)?)?,
                opened_at: ts(r.get(1).map_err(map_err)?),
                first_touch_due_at: ts(r.get(2).map_err(map_err)?),
                first_touched_at: r.get::<_, Option<i64>>(3).map_err(map_err)?.map(ts),
                qualified: r.get(4).map_err(map_err)?,
                follow_ups: r.get(5).map_err(map_err)?,
                offer: None,
                source: String::new(),
                action: None,
            };
            match q.group_by {
                Some(KpiGroup::Offer) => fact.offer = key,
                Some(KpiGroup::Source) => fact.source = key.unwrap_or_default(),
                Some(KpiGroup::Action) => fact.action = key,
                None => {}
            }
            acc.opportunity(&fact);
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
        let a = SealedActivity {
            outcome: self.vault.seal_opt(Column::ActivityOutcome, activity.outcome.as_deref()),
            note: self.vault.seal_opt(Column::ActivityNote, activity.note.as_deref()),
            activity: activity.clone(),
        };
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
        let ana = || Some(OwnerFilter::User(UserId::generate(Timestamp::from_millis(0))));
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
