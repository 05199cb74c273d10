//! SalesStore on PostgreSQL: opportunities, their follow-up, the sales settings and the KPIs.
//!
//! Opportunities are opened and joined by the lead insert ([`file_lead`], called from
//! `leads.rs` in the lead's own transaction, which holds the customer's row lock: leads of one
//! customer are filed one at a time). Round-robin's turn is shared by every customer of a
//! publisher, so an opening that assigns an owner first locks the publisher's `sales_settings`
//! row and reads the turn under that lock: concurrent openings take turns one after another.
//! The methods of [`SalesStore`] take the row lock of the opportunity they change, so a version
//! check and the change it guards are one step; notices are claimed by an `UPDATE` of the rows
//! still waiting, so concurrent takers never hand out one twice.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use leadrelay_core::sales::kpi::{DeliveryFact, KpiAccumulator, KpiQuery, KpiReport};
use leadrelay_core::sales::{Activity, Opportunity, OpportunityStatus, SalesSettings, sla};
use leadrelay_core::storage::{
    ChecklistTick, DeliveryStatus, DueFilter, OpportunityFilter, OpportunityUpdate, OwnerFilter, Page, PageRequest,
    Result, SalesNotice, SalesNoticeKind, SalesStore, StorageError,
};
use leadrelay_core::stored::sales::{
    ACTIVITY_COLUMNS, OPPORTUNITY_COLUMNS, OpportunityRow, SETTINGS_COLUMNS, SettingsRow, StoredSettings, UpdatableRow,
    activity_from_row, checklist, group_column, id_bound, joined_stage, opportunity_fact, opportunity_id,
    sealed_activity, takes_leads,
};
use leadrelay_core::{Lead, LeadId, OfferId, OpportunityId, PublisherId, Timestamp};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::rows::{Arg, PagedQuery, count, destination_id, get, lead_id, text, ts};
use crate::{Db, Mode, PostgresStore, in_transaction};

// ---------------------------------------------------------------------------------------------
// Settings

fn settings_row(r: &Row) -> Result<SettingsRow> {
    Ok(SettingsRow {
        team: get(r, 0)?,
        round_robin: get(r, 1)?,
        max_open_per_owner: get(r, 2)?,
        checklist: get(r, 3)?,
        first_touch_sla_hours: get(r, 4)?,
        follow_up_min: get(r, 5)?,
        follow_up_max: get(r, 6)?,
        time_zone: get(r, 7)?,
        business_days: get(r, 8)?,
        business_start_minute: get(r, 9)?,
        business_end_minute: get(r, 10)?,
        rr_last_owner: get(r, 11)?,
    })
}

/// The stored settings of a publisher, `None` when it saved none; with `lock`, the row stays
/// locked until the transaction ends (round-robin's turn is read and moved under it).
async fn read_settings(db: &Db<'_>, publisher: &str, lock: bool) -> Result<Option<StoredSettings>> {
    let row = if lock {
        db.optional(
            &format!("SELECT {SETTINGS_COLUMNS} FROM sales_settings WHERE publisher_id = $1 FOR UPDATE"),
            &[&publisher],
        )
        .await?
    } else {
        db.optional(&format!("SELECT {SETTINGS_COLUMNS} FROM sales_settings WHERE publisher_id = $1"), &[&publisher])
            .await?
    };
    row.map(|r| settings_row(&r).and_then(StoredSettings::from_row)).transpose()
}

/// A publisher's settings as one transaction read them, and whether it holds their row lock.
struct Cached {
    stored: StoredSettings,
    locked: bool,
}

/// Settings read once per run of a transaction, by publisher. Make a new one for each run (the
/// body of `in_transaction!`), never keep one across transactions: after a retry, or once a
/// lock is released, what it holds may be stale.
#[derive(Default)]
pub(crate) struct SettingsCache(HashMap<String, Cached>);

impl SettingsCache {
    /// The publisher's settings, read without a lock the first time.
    async fn get(&mut self, db: &Db<'_>, publisher: &str) -> Result<&mut Cached> {
        Ok(match self.0.entry(publisher.to_owned()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let stored = read_settings(db, publisher, false).await?.unwrap_or_default();
                e.insert(Cached { stored, locked: false })
            }
        })
    }

    /// The publisher's settings for an opening: when round robin is on, read again under the
    /// row's lock (once per transaction), so the turn is the latest one and nobody else's
    /// opening moves it until this transaction ends.
    async fn for_opening(&mut self, db: &Db<'_>, publisher: &str) -> Result<&mut StoredSettings> {
        let cached = self.get(db, publisher).await?;
        if cached.stored.settings.round_robin && !cached.locked {
            cached.stored = read_settings(db, publisher, true).await?.unwrap_or_default();
            cached.locked = true;
        }
        Ok(&mut cached.stored)
    }
}

// ---------------------------------------------------------------------------------------------
// Opening and joining, in the lead's transaction

// The customer's latest opportunity for the offer, or with no offer: two statements, as
// `IS NOT DISTINCT FROM` would not use `opportunities_by_customer`.
const LATEST_FOR_OFFER: &str = "SELECT id, status, stage FROM opportunities
     WHERE customer_id = $1 AND offer_id = $2 ORDER BY id DESC LIMIT 1";
const LATEST_WITHOUT_OFFER: &str = "SELECT id, status, stage FROM opportunities
     WHERE customer_id = $1 AND offer_id IS NULL ORDER BY id DESC LIMIT 1";

// Joins the lead to opportunity $1 and moves its stage, in one round trip.
const JOIN: &str = "WITH joined AS (
         UPDATE opportunities SET stage = $2, updated_at = GREATEST(updated_at, $3), version = version + 1
         WHERE id = $1)
     INSERT INTO opportunity_leads (lead_id, opportunity_id, received_at) VALUES ($4, $1, $3)";

// Opens opportunity $2 with lead $12 in it, in one round trip.
const OPEN: &str = "WITH opened AS (
         INSERT INTO opportunities (publisher_id, id, customer_id, offer_id, stage, status, owner_id, source, action,
             opened_at, first_touch_due_at, owner_notice_pending, updated_at, version)
         VALUES ($1, $2, $3, $4, $5, 'new', $6, $7, $8, $9, $10, $11, $9, 1))
     INSERT INTO opportunity_leads (lead_id, opportunity_id, received_at) VALUES ($12, $2, $9)";

// The first person, in turn order ($1), who owns fewer open opportunities than the cap ($2):
// each one counted on `opportunities_open_by_owner` alone, and only up to the cap.
const FIRST_UNDER_CAP: &str = "SELECT t.person FROM UNNEST($1::text[]) WITH ORDINALITY AS t(person, n)
     WHERE (SELECT COUNT(*) FROM (
               SELECT 1 FROM opportunities o
               WHERE o.owner_id = t.person AND o.status IN ('new', 'contacted', 'qualified') LIMIT $2) open) < $2
     ORDER BY t.n LIMIT 1";

/// Files a lead that is sales work (`sales::opens_opportunity`, not a duplicate) under its
/// customer's opportunity for its offer, opening one when there is none to join, and returns
/// its id. The caller holds the customer's row lock. `new_customer`: the customer was created
/// by this lead, so it has no opportunity yet (no lookup). `cache` lives as long as one run of
/// the lead's transaction.
pub(crate) async fn file_lead(
    db: &Db<'_>,
    cache: &mut SettingsCache,
    lead: &Lead,
    customer: &str,
    new_customer: bool,
) -> Result<OpportunityId> {
    let offer = lead.offer.as_ref().map(OfferId::as_str);
    let at = lead.received_at.as_millis();
    let lead_id = lead.id.as_str();
    if !new_customer {
        let latest = match offer {
            Some(offer) => db.optional(LATEST_FOR_OFFER, &[&customer, &offer]).await?,
            None => db.optional(LATEST_WITHOUT_OFFER, &[&customer]).await?,
        };
        if let Some(row) = latest {
            let (id, status, stage): (String, String, String) = (get(&row, 0)?, get(&row, 1)?, get(&row, 2)?);
            if takes_leads(&status) {
                let stage = joined_stage(&stage, &lead.stage)?;
                db.exec(JOIN, &[&id, &stage, &at, &lead_id]).await?;
                return opportunity_id(&id);
            }
        }
    }
    let publisher = lead.publisher.as_str();
    let stored = cache.for_opening(db, publisher).await?;
    let due = sla::first_touch_due(lead.received_at, &stored.settings).as_millis();
    let owner = if stored.settings.round_robin { next_in_turn(db, stored).await? } else { None };
    if let Some(owner) = &owner {
        db.exec("UPDATE sales_settings SET rr_last_owner = $2 WHERE publisher_id = $1", &[&publisher, owner]).await?;
        stored.rr_last_owner = Some(owner.clone());
    }
    let id = OpportunityId::generate(lead.received_at);
    db.exec(
        OPEN,
        &[
            &publisher,
            &id.as_str(),
            &customer,
            &offer,
            &lead.stage.as_str(),
            &owner,
            &lead.source.as_str(),
            &lead.action.as_ref().map(|a| a.as_str()),
            &at,
            &due,
            &owner.is_some(),
            &lead_id,
        ],
    )
    .await?;
    Ok(id)
}

/// Round-robin: the next person in turn who owns fewer open opportunities than the cap;
/// `None` when the team is empty or every one is at it.
async fn next_in_turn(db: &Db<'_>, stored: &StoredSettings) -> Result<Option<String>> {
    let order: Vec<String> = stored.turn_order().into_iter().map(|u| u.as_str().to_owned()).collect();
    let Some(cap) = stored.settings.max_open_per_owner else { return Ok(order.into_iter().next()) };
    if order.is_empty() {
        return Ok(None);
    }
    db.optional(FIRST_UNDER_CAP, &[&order, &i64::from(cap)]).await?.map(|r| get(&r, 0)).transpose()
}

// ---------------------------------------------------------------------------------------------
// Reading opportunities

fn opportunity_row(r: &Row) -> Result<OpportunityRow> {
    let mut strings: [Option<String>; 10] = Default::default();
    for (i, slot) in strings.iter_mut().enumerate() {
        *slot = get(r, i)?;
    }
    Ok(OpportunityRow {
        strings,
        opened_at: get(r, 10)?,
        first_touch_due_at: get(r, 11)?,
        times: [get(r, 12)?, get(r, 13)?, get(r, 14)?, get(r, 15)?],
        updated_at: get(r, 16)?,
        version: get(r, 17)?,
    })
}

/// Rows of `opportunity_id` then the rest, grouped by opportunity in the order they came.
fn by_opportunity<T>(rows: &[Row], mut convert: impl FnMut(&Row) -> Result<T>) -> Result<HashMap<String, Vec<T>>> {
    let mut grouped: HashMap<String, Vec<T>> = HashMap::new();
    for r in rows {
        grouped.entry(get(r, 0)?).or_default().push(convert(r)?);
    }
    Ok(grouped)
}

/// The opportunities of `rows`, in their order, each with its leads, checklist (in its
/// publisher's checklist order) and log: three statements for all of them, sent together.
async fn assemble(db: &Db<'_>, rows: Vec<OpportunityRow>, cache: &mut SettingsCache) -> Result<Vec<Opportunity>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = rows.iter().map(|r| r.id().to_owned()).collect();
    let activities_sql = format!(
        "SELECT opportunity_id, {ACTIVITY_COLUMNS} FROM activities WHERE opportunity_id = ANY($1)
         ORDER BY opportunity_id, at, id"
    );
    let (leads, ticks, logs) = futures_util::future::try_join3(
        db.rows(
            "SELECT opportunity_id, lead_id FROM opportunity_leads WHERE opportunity_id = ANY($1)
             ORDER BY opportunity_id, received_at, lead_id",
            &[&ids],
        ),
        db.rows(
            "SELECT opportunity_id, item, done, actor, at FROM opportunity_checklist WHERE opportunity_id = ANY($1)",
            &[&ids],
        ),
        db.rows(&activities_sql, &[&ids]),
    )
    .await?;
    let mut leads = by_opportunity(&leads, |r| lead_id(get(r, 1)?))?;
    let mut ticks = by_opportunity(&ticks, |r| Ok((get(r, 1)?, get(r, 2)?, get(r, 3)?, get(r, 4)?)))?;
    let mut logs = by_opportunity(&logs, |r| {
        activity_from_row(
            (get(r, 1)?, get(r, 2)?, get(r, 3)?, get(r, 4)?, get(r, 5)?, get(r, 6)?, get(r, 7)?),
            db.vault,
        )
    })?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id = row.id().to_owned();
        let items = &cache.get(db, row.publisher()).await?.stored.settings.checklist;
        let checklist = checklist(items, ticks.remove(&id).unwrap_or_default());
        let lead_ids: Vec<LeadId> = leads.remove(&id).unwrap_or_default();
        out.push(row.into_opportunity(db.vault, lead_ids, checklist, logs.remove(&id).unwrap_or_default())?);
    }
    Ok(out)
}

/// One opportunity by id, in full; `NotFound` if unknown.
async fn load(db: &Db<'_>, id: &str) -> Result<Opportunity> {
    let row = db.one(&format!("SELECT {OPPORTUNITY_COLUMNS} FROM opportunities WHERE id = $1"), &[&id]).await?;
    let mut cache = SettingsCache::default();
    assemble(db, vec![opportunity_row(&row)?], &mut cache).await?.pop().ok_or(StorageError::NotFound)
}

async fn list(
    db: &Db<'_>,
    filter: &OpportunityFilter,
    terms: Option<&[String]>,
    page: &PageRequest,
) -> Result<Page<Opportunity>> {
    let mut q = PagedQuery::new(OPPORTUNITY_COLUMNS, "opportunities");
    q.and("publisher_id =", text(filter.publisher.as_ref().map(PublisherId::as_str)));
    q.and("status =", text(filter.status.map(OpportunityStatus::as_str)));
    match &filter.owner {
        Some(OwnerFilter::User(u)) => q.and("owner_id =", text(Some(u.as_str()))),
        Some(OwnerFilter::Unassigned) => q.push(" AND owner_id IS NULL"),
        None => {}
    }
    q.and("offer_id =", text(filter.offer.as_ref().map(OfferId::as_str)));
    let millis = |t: Timestamp| Some(Box::new(t.as_millis()) as Arg);
    match filter.due {
        Some(DueFilter::Before(t)) => q.and("due_at <", millis(t)),
        Some(DueFilter::SlaBreached(t)) => {
            q.push(" AND first_touched_at IS NULL");
            q.and("due_at <", millis(t));
        }
        None => {}
    }
    if let Some(terms) = terms {
        // One of its leads holds every word: the blind index, through the lead's opportunity.
        if terms.is_empty() {
            q.push(" AND FALSE");
        } else {
            let holds: Vec<String> = terms
                .iter()
                .map(|t| {
                    let p = q.arg(Box::new(t.clone()));
                    format!("ol.lead_id IN (SELECT lead_id FROM lead_terms WHERE term = {p})")
                })
                .collect();
            q.push(&format!(
                " AND id IN (SELECT ol.opportunity_id FROM opportunity_leads ol WHERE {})",
                holds.join(" AND ")
            ));
        }
    }
    let rows = q.run(db, page, opportunity_row, |r| r.id().to_owned()).await?;
    let mut cache = SettingsCache::default();
    Ok(Page { items: assemble(db, rows.items, &mut cache).await?, next_cursor: rows.next_cursor })
}

// ---------------------------------------------------------------------------------------------
// Writes

async fn read_publisher_settings(db: &Db<'_>, publisher: &str) -> Result<SalesSettings> {
    db.one("SELECT 1 FROM publishers WHERE id = $1", &[&publisher]).await?;
    Ok(read_settings(db, publisher, false).await?.unwrap_or_default().settings)
}

/// Replaces the settings under the row's lock, so an opening moving the turn meanwhile is
/// waited for and its turn kept (or dropped with its person). An unknown publisher is the
/// foreign key's `NotFound`.
async fn put_settings(db: &Db<'_>, publisher: &str, s: &SalesSettings) -> Result<()> {
    let kept = read_settings(db, publisher, true).await?.and_then(|old| old.kept_turn(s));
    let r = SettingsRow::new(s, kept)?;
    db.exec(
        &format!(
            "INSERT INTO sales_settings (publisher_id, {SETTINGS_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (publisher_id) DO UPDATE SET team = excluded.team, round_robin = excluded.round_robin,
                 max_open_per_owner = excluded.max_open_per_owner, checklist = excluded.checklist,
                 first_touch_sla_hours = excluded.first_touch_sla_hours, follow_up_min = excluded.follow_up_min,
                 follow_up_max = excluded.follow_up_max, time_zone = excluded.time_zone,
                 business_days = excluded.business_days, business_start_minute = excluded.business_start_minute,
                 business_end_minute = excluded.business_end_minute, rr_last_owner = excluded.rr_last_owner"
        ),
        &[
            &publisher,
            &r.team,
            &r.round_robin,
            &r.max_open_per_owner,
            &r.checklist,
            &r.first_touch_sla_hours,
            &r.follow_up_min,
            &r.follow_up_max,
            &r.time_zone,
            &r.business_days,
            &r.business_start_minute,
            &r.business_end_minute,
            &r.rr_last_owner,
        ],
    )
    .await
    .map(drop)
}

/// The version check and the change in one step: the row is locked as it is read, so a
/// concurrent update with the same version waits, then reads the new version and conflicts.
async fn update(db: &Db<'_>, u: &OpportunityUpdate) -> Result<Opportunity> {
    let id = u.id.as_str();
    let r = db
        .one(
            "SELECT status, reason, owner_id, owner_notice_pending, next_touch_at, version FROM opportunities
             WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?;
    let current = UpdatableRow {
        status: get(&r, 0)?,
        reason: get(&r, 1)?,
        owner: get(&r, 2)?,
        owner_notice_pending: get(&r, 3)?,
        next_touch_at: get(&r, 4)?,
        version: get(&r, 5)?,
    };
    let w = current.apply(u, db.vault)?;
    db.exec(
        "UPDATE opportunities SET status = $2, reason = $3, owner_id = $4, owner_notice_pending = $5,
             next_touch_at = $6, qualified_at = COALESCE(qualified_at, $7), updated_at = GREATEST(updated_at, $8),
             version = version + 1
         WHERE id = $1",
        &[&id, &w.status, &w.reason, &w.owner, &w.owner_notice_pending, &w.next_touch_at, &w.qualified_at, &w.now],
    )
    .await?;
    load(db, id).await
}

// The activity and what it does to its opportunity, in one statement (set expressions read the
// row as it was: a touch is the first one only if there was none). An unknown opportunity is
// the activity's foreign key: `NotFound`.
const LOG_ACTIVITY: &str = "WITH logged AS (
         INSERT INTO activities (id, opportunity_id, kind, outcome, note, next_touch_at, actor, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8))
     UPDATE opportunities SET touches = touches + CASE WHEN $9 THEN 1 ELSE 0 END,
         first_touched_at = CASE WHEN $9 AND first_touched_at IS NULL THEN $8 ELSE first_touched_at END,
         status = CASE WHEN $9 AND status = 'new' THEN 'contacted' ELSE status END,
         next_touch_at = COALESCE($6, next_touch_at),
         updated_at = GREATEST(updated_at, $8), version = version + 1
     WHERE id = $2";

async fn log_activity(db: &Db<'_>, opportunity: &str, a: &Activity) -> Result<Opportunity> {
    let (outcome, note) = sealed_activity(db.vault, a);
    let next = a.next_touch_at.map(Timestamp::as_millis);
    db.exec(
        LOG_ACTIVITY,
        &[
            &a.id.as_str(),
            &opportunity,
            &a.kind.as_str(),
            &outcome,
            &note,
            &next,
            &a.by,
            &a.at.as_millis(),
            &a.kind.is_touch(),
        ],
    )
    .await?;
    load(db, opportunity).await
}

const TICK: &str = "WITH ticked AS (
         INSERT INTO opportunity_checklist (opportunity_id, item, done, actor, at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (opportunity_id, item) DO UPDATE
             SET done = excluded.done, actor = excluded.actor, at = excluded.at)
     UPDATE opportunities SET updated_at = GREATEST(updated_at, $5), version = version + 1 WHERE id = $1";

async fn tick(db: &Db<'_>, t: &ChecklistTick) -> Result<Opportunity> {
    let id = t.opportunity.as_str();
    db.exec(TICK, &[&id, &t.item, &t.done, &t.by, &t.at.as_millis()]).await?;
    load(db, id).await
}

// Claims: each takes the rows still waiting, skipping those another taker holds, and marks them
// taken in the same statement; a row another taker marked meanwhile no longer matches when it
// is locked. Taking a notice is bookkeeping, not a change a person made: the version stays.
const TAKE_OWNER_NOTICES: &str = "WITH taken AS (
         UPDATE opportunities SET owner_notice_pending = FALSE
         WHERE id IN (SELECT id FROM opportunities WHERE owner_notice_pending LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING id)
     SELECT id FROM taken ORDER BY id";
const TAKE_BREACHES: &str = "WITH taken AS (
         UPDATE opportunities SET sla_notified_at = $1
         WHERE id IN (SELECT id FROM opportunities
                      WHERE first_touched_at IS NULL AND sla_notified_at IS NULL AND due_at < $1
                      ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING id, due_at)
     SELECT id FROM taken ORDER BY due_at, id";

async fn take_notices(db: &Db<'_>, now: Timestamp, limit: u32) -> Result<Vec<SalesNotice>> {
    let ids = |rows: Vec<Row>| rows.iter().map(|r| get::<String>(r, 0)).collect::<Result<Vec<_>>>();
    let assigned = ids(db.rows(TAKE_OWNER_NOTICES, &[&i64::from(limit)]).await?)?;
    let left = i64::from(limit) - i64::try_from(assigned.len()).unwrap_or(i64::MAX);
    let breached = if left > 0 { ids(db.rows(TAKE_BREACHES, &[&now.as_millis(), &left]).await?)? } else { Vec::new() };
    let kinds: Vec<SalesNoticeKind> = std::iter::repeat_n(SalesNoticeKind::Assigned, assigned.len())
        .chain(std::iter::repeat_n(SalesNoticeKind::SlaBreached, breached.len()))
        .collect();
    let all: Vec<String> = assigned.into_iter().chain(breached).collect();
    if all.is_empty() {
        return Ok(Vec::new());
    }
    let rows = db
        .rows(&format!("SELECT {OPPORTUNITY_COLUMNS} FROM opportunities WHERE id = ANY($1)"), &[&all])
        .await?
        .iter()
        .map(|r| opportunity_row(r).map(|o| (o.id().to_owned(), o)))
        .collect::<Result<HashMap<String, OpportunityRow>>>()?;
    let mut rows = rows;
    let ordered = all.iter().map(|id| rows.remove(id).ok_or(StorageError::NotFound)).collect::<Result<Vec<_>>>()?;
    let mut cache = SettingsCache::default();
    let opportunities = assemble(db, ordered, &mut cache).await?;
    Ok(kinds.into_iter().zip(opportunities).map(|(kind, opportunity)| SalesNotice { kind, opportunity }).collect())
}

// ---------------------------------------------------------------------------------------------
// KPIs

// The publisher's destinations' deliveries of leads received in the period, a range of
// `deliveries_by_destination` per destination. Without test leads in the period it holds every
// column read (an index-only scan); with some, each delivery's id is read too, to leave theirs
// out.
const KPI_DELIVERIES: &str = "SELECT destination_id, status, attempts,
         CASE WHEN status = 'delivered' THEN updated_at - lead_received_at END
     FROM deliveries
     WHERE destination_id = ANY($1) AND status IN ('pending', 'delivered', 'dead')
       AND lead_received_at >= $2 AND lead_received_at < $3";
const KPI_DELIVERIES_WITH_IDS: &str = "SELECT destination_id, status, attempts,
         CASE WHEN status = 'delivered' THEN updated_at - lead_received_at END, id
     FROM deliveries
     WHERE destination_id = ANY($1) AND status IN ('pending', 'delivered', 'dead')
       AND lead_received_at >= $2 AND lead_received_at < $3";

// The deliveries of the publisher's test leads received in the period: the test leads by their
// partial index (a few), their deliveries by lead.
const KPI_TEST_DELIVERIES: &str = "SELECT d.id FROM leads l JOIN deliveries d ON d.lead_id = l.id
     WHERE l.publisher_id = $1 AND l.is_test AND l.received_at >= $2 AND l.received_at < $3";

/// A `SELECT … WHERE publisher_id = $1` with more conditions bound as it grows.
struct Filtered {
    sql: String,
    args: Vec<Arg>,
}

impl Filtered {
    fn and(&mut self, clause: &str, v: Arg) {
        self.args.push(v);
        self.sql.push_str(&format!(" AND {clause}${}", self.args.len()));
    }

    /// The query's offer, source and action filters, on a table with those columns (an
    /// opportunity's are its opening lead's): the action in any case, as the lead list does.
    fn kpi_filters(&mut self, q: &KpiQuery) {
        if let Some(offer) = &q.offer {
            self.and("offer_id = ", Box::new(offer.as_str().to_owned()));
        }
        if let Some(source) = &q.source {
            self.and("source = ", Box::new(source.clone()));
        }
        if let Some(action) = &q.action {
            self.args.push(Box::new(action.clone()));
            self.sql.push_str(&format!(" AND lower(action) = lower(${})", self.args.len()));
        }
    }

    async fn rows(&self, db: &Db<'_>) -> Result<Vec<Row>> {
        let params: Vec<&(dyn ToSql + Sync)> = self.args.iter().map(|a| a.as_ref() as &(dyn ToSql + Sync)).collect();
        db.rows(&self.sql, &params).await
    }
}

/// The opportunities opened in the period, with the query's filters: a range of the table's own
/// key (see [`id_bound`]), the opening time checked as well; only the grouping key is read.
fn kpi_opportunities(q: &KpiQuery) -> Filtered {
    let mut f = Filtered {
        sql: format!(
            "SELECT status, opened_at, first_touch_due_at, first_touched_at, qualified_at IS NOT NULL, touches, {}
             FROM opportunities WHERE publisher_id = $1",
            group_column(q.group_by)
        ),
        args: vec![Box::new(q.publisher.as_str().to_owned())],
    };
    if let Some(since) = q.since {
        f.and("id >= ", Box::new(id_bound(since)));
        f.and("opened_at >= ", Box::new(since.as_millis()));
    }
    if let Some(until) = q.until {
        f.and("id < ", Box::new(id_bound(until)));
        f.and("opened_at < ", Box::new(until.as_millis()));
    }
    f.kpi_filters(q);
    f
}

/// The publisher's real leads received in the period, with the query's filters: a range of
/// `leads_by_received`, which holds every column read here. One row a lead, counted per day as
/// it streams.
fn kpi_leads(q: &KpiQuery) -> Filtered {
    let mut f = Filtered {
        sql: "SELECT received_at, source, action FROM leads
              WHERE publisher_id = $1 AND received_at >= $2 AND received_at < $3 AND NOT is_test"
            .to_owned(),
        args: vec![
            Box::new(q.publisher.as_str().to_owned()),
            Box::new(q.since.map_or(i64::MIN, Timestamp::as_millis)),
            Box::new(q.until.map_or(i64::MAX, Timestamp::as_millis)),
        ],
    };
    f.kpi_filters(q);
    f
}

async fn kpis_in(db: &Db<'_>, q: &KpiQuery) -> Result<KpiReport> {
    let mut acc = KpiAccumulator::new(q);
    let publisher = q.publisher.as_str();
    let since = q.since.map_or(i64::MIN, Timestamp::as_millis);
    let until = q.until.map_or(i64::MAX, Timestamp::as_millis);
    let (opportunities, leads, destinations, tests) = futures_util::future::try_join4(
        async { kpi_opportunities(q).rows(db).await },
        async { kpi_leads(q).rows(db).await },
        db.rows("SELECT id FROM destinations WHERE publisher_id = $1 ORDER BY id", &[&publisher]),
        db.rows(KPI_TEST_DELIVERIES, &[&publisher, &since, &until]),
    )
    .await?;
    let destinations = destinations.iter().map(|r| get::<String>(r, 0)).collect::<Result<Vec<_>>>()?;
    for d in &destinations {
        acc.destination(destination_id(d)?);
    }
    for r in &opportunities {
        let row = (get(r, 0)?, get(r, 1)?, get(r, 2)?, get(r, 3)?, get(r, 4)?, get(r, 5)?, get(r, 6)?);
        acc.opportunity(&opportunity_fact(row, q.group_by)?);
    }
    for r in &leads {
        acc.daily_leads(ts(get(r, 0)?), get(r, 1)?, get(r, 2)?, 1);
    }
    // The test leads' deliveries are a small set left out here by id, a hash probe a row.
    let tests: std::collections::HashSet<&str> = tests.iter().map(|r| get(r, 0)).collect::<Result<_>>()?;
    let sql = if tests.is_empty() { KPI_DELIVERIES } else { KPI_DELIVERIES_WITH_IDS };
    let deliveries = db.rows(sql, &[&destinations, &since, &until]).await?;
    let mut ids: HashMap<&str, leadrelay_core::DestinationId> = HashMap::new();
    for r in &deliveries {
        if !tests.is_empty() && tests.contains(get::<&str>(r, 4)?) {
            continue;
        }
        let d: &str = get(r, 0)?;
        let destination = match ids.get(d) {
            Some(id) => id.clone(),
            None => {
                let id = destination_id(d)?;
                ids.insert(d, id.clone());
                id
            }
        };
        acc.delivery(DeliveryFact {
            destination,
            status: DeliveryStatus::parse(get(r, 1)?)
                .ok_or_else(|| leadrelay_core::stored::corrupt("delivery status"))?,
            attempts: count(get(r, 2)?)?,
            lag_ms: get(r, 3)?,
        });
    }
    Ok(acc.finish())
}

#[async_trait::async_trait]
impl SalesStore for PostgresStore {
    async fn sales_settings(&self, publisher: &PublisherId) -> Result<SalesSettings> {
        in_transaction!(self, Mode::Read, |db| read_publisher_settings(db, publisher.as_str()))
    }

    async fn put_sales_settings(&self, publisher: &PublisherId, settings: &SalesSettings) -> Result<()> {
        in_transaction!(self, Mode::Write, |db| put_settings(db, publisher.as_str(), settings))
    }

    async fn get_opportunity(&self, id: &OpportunityId) -> Result<Opportunity> {
        in_transaction!(self, Mode::Read, |db| load(db, id.as_str()))
    }

    async fn list_opportunities(&self, filter: &OpportunityFilter, page: &PageRequest) -> Result<Page<Opportunity>> {
        let terms = filter.text.as_deref().map(|t| self.vault.query_terms(t));
        in_transaction!(self, Mode::Read, |db| list(db, filter, terms.as_deref(), page))
    }

    async fn update_opportunity(&self, u: &OpportunityUpdate) -> Result<Opportunity> {
        in_transaction!(self, Mode::Write, |db| update(db, u))
    }

    async fn add_activity(&self, opportunity: &OpportunityId, activity: &Activity) -> Result<Opportunity> {
        in_transaction!(self, Mode::Write, |db| log_activity(db, opportunity.as_str(), activity))
    }

    async fn tick_checklist(&self, t: &ChecklistTick) -> Result<Opportunity> {
        in_transaction!(self, Mode::Write, |db| tick(db, t))
    }

    async fn take_sales_notices(&self, now: Timestamp, limit: u32) -> Result<Vec<SalesNotice>> {
        in_transaction!(self, Mode::Write, |db| take_notices(db, now, limit))
    }

    async fn kpis(&self, query: &KpiQuery) -> Result<KpiReport> {
        in_transaction!(self, Mode::Read, |db| kpis_in(db, query))
    }
}
