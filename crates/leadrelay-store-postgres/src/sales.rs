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

#![allow(unused_variables)]

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use leadrelay_core::sales::kpi::{KpiQuery, KpiReport};
use leadrelay_core::sales::{Activity, Opportunity, SalesSettings, sla};
use leadrelay_core::storage::{
    ChecklistTick, OpportunityFilter, OpportunityUpdate, Page, PageRequest, Result, SalesNotice, SalesStore,
    StorageError,
};
use leadrelay_core::stored::sales::{
    SETTINGS_COLUMNS, SettingsRow, StoredSettings, joined_stage, opportunity_id, takes_leads,
};
use leadrelay_core::{Lead, OfferId, OpportunityId, PublisherId, Timestamp};
use tokio_postgres::Row;

use crate::rows::get;
use crate::{Db, PostgresStore};

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

#[async_trait::async_trait]
impl SalesStore for PostgresStore {
    async fn sales_settings(&self, publisher: &PublisherId) -> Result<SalesSettings> {
        Err(StorageError::Other("SalesStore is not written yet".into()))
    }

    async fn put_sales_settings(&self, publisher: &PublisherId, settings: &SalesSettings) -> Result<()> {
        Err(StorageError::Other("SalesStore is not written yet".into()))
    }

    async fn get_opportunity(&self, id: &OpportunityId) -> Result<Opportunity> {
        Err(StorageError::Other("SalesStore is not written yet".into()))
    }

    async fn list_opportunities(&self, filter: &OpportunityFilter, page: &PageRequest) -> Result<Page<Opportunity>> {
        Err(StorageError::Other("SalesStore is not written yet".into()))
    }

    async fn update_opportunity(&self, update: &OpportunityUpdate) -> Result<Opportunity> {
        Err(StorageError::Other("SalesStore is not written yet".into()))
    }

    async fn add_activity(&self, opportunity: &OpportunityId, activity: &Activity) -> Result<Opportunity> {
        Err(StorageError::Other("SalesStore is not written yet".into()))
    }

    async fn tick_checklist(&self, tick: &ChecklistTick) -> Result<Opportunity> {
        Err(StorageError::Other("SalesStore is not written yet".into()))
    }

    async fn take_sales_notices(&self, now: Timestamp, limit: u32) -> Result<Vec<SalesNotice>> {
        Err(StorageError::Other("SalesStore is not written yet".into()))
    }

    async fn kpis(&self, query: &KpiQuery) -> Result<KpiReport> {
        Err(StorageError::Other("SalesStore is not written yet".into()))
    }
}
