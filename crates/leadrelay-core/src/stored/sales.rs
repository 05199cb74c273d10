//! The sales workspace's stored form, for every backend: a publisher's settings row and its
//! round-robin position, an opportunity's row with its leads, checklist and log, the rules a
//! write applies to a row it read (joining a lead, an update), and the KPI query's pieces that
//! are not SQL (the id bound of a period, a fact from its row). Each backend reads its driver's
//! row into these plain types and runs its own SQL; what the values mean is decided here once.

use std::collections::HashMap;

use super::{corrupt, offer_id, open, publisher_id, ts};
use crate::sales::kpi::{KpiGroup, OpportunityFact};
use crate::sales::settings::{BusinessHours, FollowUpTarget};
use crate::sales::{Activity, ActivityKind, ChecklistEntry, Opportunity, OpportunityStatus, SalesSettings, stage_rank};
use crate::storage::{OpportunityUpdate, Result, StorageError};
use crate::vault::{Column, Vault};
use crate::{ActivityId, CustomerId, LeadId, OpportunityId, Stage, Timestamp, UserId};

// ---------------------------------------------------------------------------------------------
// Settings

/// Columns of `sales_settings` (after `publisher_id`) in [`SettingsRow`]'s order.
pub const SETTINGS_COLUMNS: &str = "team, round_robin, max_open_per_owner, checklist, first_touch_sla_hours, \
     follow_up_min, follow_up_max, time_zone, business_days, business_start_minute, business_end_minute, rr_last_owner";

/// The raw column values of a `sales_settings` row, in [`SETTINGS_COLUMNS`] order: lists as
/// JSON text, numbers as the database's integers.
#[derive(Debug, Clone)]
pub struct SettingsRow {
    /// `team`: a JSON array of user ids, in round-robin order.
    pub team: String,
    /// `round_robin`.
    pub round_robin: bool,
    /// `max_open_per_owner` (NULL: no cap).
    pub max_open_per_owner: Option<i64>,
    /// `checklist`: a JSON array of item names.
    pub checklist: String,
    /// `first_touch_sla_hours`.
    pub first_touch_sla_hours: i64,
    /// `follow_up_min`.
    pub follow_up_min: i64,
    /// `follow_up_max`.
    pub follow_up_max: i64,
    /// `time_zone`.
    pub time_zone: String,
    /// `business_days`: a JSON array of days 1..7 (NULL: no business hours).
    pub business_days: Option<String>,
    /// `business_start_minute`.
    pub business_start_minute: Option<i64>,
    /// `business_end_minute`.
    pub business_end_minute: Option<i64>,
    /// `rr_last_owner`: the person who got the last opportunity.
    pub rr_last_owner: Option<String>,
}

/// A stored number that must fit its field's type.
fn fits<T: TryFrom<i64>>(v: i64, what: &str) -> Result<T> {
    T::try_from(v).map_err(|_| corrupt(what))
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StorageError::Other(Box::new(e)))
}

impl SettingsRow {
    /// The row that stores `s`, with round-robin's position `rr_last_owner`.
    ///
    /// # Errors
    /// `Other` if a list does not serialise (it always does).
    pub fn new(s: &SalesSettings, rr_last_owner: Option<String>) -> Result<Self> {
        let hours = s.business_hours.as_ref();
        Ok(Self {
            team: json(&s.team.iter().map(UserId::as_str).collect::<Vec<_>>())?,
            round_robin: s.round_robin,
            max_open_per_owner: s.max_open_per_owner.map(i64::from),
            checklist: json(&s.checklist)?,
            first_touch_sla_hours: i64::from(s.first_touch_sla_hours),
            follow_up_min: i64::from(s.follow_up_target.min),
            follow_up_max: i64::from(s.follow_up_target.max),
            time_zone: s.time_zone.clone(),
            business_days: hours.map(|h| json(&h.days)).transpose()?,
            business_start_minute: hours.map(|h| i64::from(h.start_minute)),
            business_end_minute: hours.map(|h| i64::from(h.end_minute)),
            rr_last_owner,
        })
    }
}

/// A publisher's stored settings with round-robin's position (the person who got the last one).
#[derive(Debug, Clone, Default)]
pub struct StoredSettings {
    /// The settings (the defaults when none are stored).
    pub settings: SalesSettings,
    /// Who got the last opportunity round-robin assigned.
    pub rr_last_owner: Option<String>,
}

impl StoredSettings {
    /// The settings of a stored row.
    ///
    /// # Errors
    /// `Other` for a value that does not parse.
    pub fn from_row(row: SettingsRow) -> Result<Self> {
        let team: Vec<String> = serde_json::from_str(&row.team).map_err(|_| corrupt("sales team"))?;
        let team =
            team.iter().map(|u| UserId::parse(u).ok_or_else(|| corrupt("team member id"))).collect::<Result<_>>()?;
        let checklist: Vec<String> = serde_json::from_str(&row.checklist).map_err(|_| corrupt("checklist"))?;
        let business_hours = match (row.business_days, row.business_start_minute, row.business_end_minute) {
            (Some(days), Some(start), Some(end)) => Some(BusinessHours {
                days: serde_json::from_str(&days).map_err(|_| corrupt("business days"))?,
                start_minute: fits(start, "business start")?,
                end_minute: fits(end, "business end")?,
            }),
            _ => None,
        };
        Ok(Self {
            settings: SalesSettings {
                team,
                round_robin: row.round_robin,
                max_open_per_owner: row.max_open_per_owner.map(|c| fits(c, "open cap")).transpose()?,
                checklist,
                first_touch_sla_hours: fits(row.first_touch_sla_hours, "first-touch SLA")?,
                follow_up_target: FollowUpTarget {
                    min: fits(row.follow_up_min, "follow-up target")?,
                    max: fits(row.follow_up_max, "follow-up target")?,
                },
                time_zone: row.time_zone,
                business_hours,
            },
            rr_last_owner: row.rr_last_owner,
        })
    }

    /// The round-robin position that new settings keep: the turn stays with the person it
    /// points at while the new team still holds them.
    pub fn kept_turn(&self, new: &SalesSettings) -> Option<String> {
        self.rr_last_owner.clone().filter(|last| new.team.iter().any(|u| u.as_str() == last))
    }

    /// Round-robin's candidates in turn: the whole team, starting with the person after the one
    /// who got the last opportunity (the first of the team when that one is not on it). The
    /// first of them under the open cap gets the next one.
    pub fn turn_order(&self) -> Vec<&UserId> {
        let team = &self.settings.team;
        let start = self
            .rr_last_owner
            .as_deref()
            .and_then(|last| team.iter().position(|u| u.as_str() == last))
            .map_or(0, |i| i + 1);
        (0..team.len()).map(|k| &team[(start + k) % team.len()]).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Opening and joining

/// The stage of an opportunity a lead of `lead` stage joins, whose stage is `current`: a lead
/// only moves it forward along the funnel.
///
/// # Errors
/// `Other` if the stored stage does not parse.
pub fn joined_stage(current: &str, lead: &Stage) -> Result<String> {
    let stored = Stage::parse(current).map_err(|_| corrupt("opportunity stage"))?;
    Ok(if stage_rank(lead) > stage_rank(&stored) { lead.as_str().to_owned() } else { current.to_owned() })
}

/// Whether a customer's latest opportunity of this status takes a new lead: a closed one
/// that was lost or disqualified does not (the lead opens another); a won one does.
pub fn takes_leads(status: &str) -> bool {
    !matches!(status, "lost" | "disqualified")
}

// ---------------------------------------------------------------------------------------------
// Reading an opportunity

/// Columns of `opportunities` in [`OpportunityRow`]'s order.
pub const OPPORTUNITY_COLUMNS: &str = "id, publisher_id, customer_id, offer_id, stage, status, reason, owner_id, \
     source, action, opened_at, first_touch_due_at, first_touched_at, qualified_at, next_touch_at, sla_notified_at, \
     updated_at, version";

/// The raw column values of an opportunity row, in [`OPPORTUNITY_COLUMNS`] order.
#[derive(Debug, Clone)]
pub struct OpportunityRow {
    /// `id` to `action`.
    pub strings: [Option<String>; 10],
    /// `opened_at`.
    pub opened_at: i64,
    /// `first_touch_due_at`.
    pub first_touch_due_at: i64,
    /// `first_touched_at`, `qualified_at`, `next_touch_at`, `sla_notified_at`.
    pub times: [Option<i64>; 4],
    /// `updated_at`.
    pub updated_at: i64,
    /// `version`.
    pub version: i64,
}

impl OpportunityRow {
    /// The row's id, as stored.
    pub fn id(&self) -> &str {
        self.strings[0].as_deref().unwrap_or("")
    }

    /// The row's publisher id, as stored (its settings give the checklist).
    pub fn publisher(&self) -> &str {
        self.strings[1].as_deref().unwrap_or("")
    }

    /// The opportunity, with its leads (oldest first), checklist ([`checklist`]) and log, its
    /// reason opened.
    ///
    /// # Errors
    /// `Other` for a value that does not parse or open.
    pub fn into_opportunity(
        self,
        v: &Vault,
        lead_ids: Vec<LeadId>,
        checklist: Vec<ChecklistEntry>,
        activities: Vec<Activity>,
    ) -> Result<Opportunity> {
        let [id, publisher, customer, offer, stage, state, reason, owner, source, action] = self.strings;
        let [first_touched_at, qualified_at, next_touch_at, sla_notified_at] = self.times;
        Ok(Opportunity {
            id: opportunity_id(id.as_deref().unwrap_or(""))?,
            publisher: publisher_id(publisher.as_deref().unwrap_or(""))?,
            customer_id: CustomerId::parse(customer.as_deref().unwrap_or("")).ok_or_else(|| corrupt("customer id"))?,
            offer: offer.as_deref().map(offer_id).transpose()?,
            stage: Stage::parse(stage.as_deref().unwrap_or("")).map_err(|_| corrupt("opportunity stage"))?,
            status: opportunity_status(state.as_deref().unwrap_or(""))?,
            reason: open(v, Column::OpportunityReason, reason)?,
            owner: owner.as_deref().map(|u| UserId::parse(u).ok_or_else(|| corrupt("owner id"))).transpose()?,
            lead_ids,
            source: source.unwrap_or_default(),
            action,
            checklist,
            activities,
            opened_at: ts(self.opened_at),
            first_touch_due_at: ts(self.first_touch_due_at),
            first_touched_at: first_touched_at.map(ts),
            qualified_at: qualified_at.map(ts),
            next_touch_at: next_touch_at.map(ts),
            sla_notified_at: sla_notified_at.map(ts),
            updated_at: ts(self.updated_at),
            version: self.version,
        })
    }
}

/// A stored opportunity id.
pub fn opportunity_id(s: &str) -> Result<OpportunityId> {
    OpportunityId::parse(s).ok_or_else(|| corrupt("opportunity id"))
}

/// A stored opportunity status.
pub fn opportunity_status(s: &str) -> Result<OpportunityStatus> {
    OpportunityStatus::parse(s).ok_or_else(|| corrupt("opportunity status"))
}

/// A row of `item, done, actor, at` from `opportunity_checklist`.
pub type ChecklistRow = (String, bool, String, i64);

/// The checklist of an opportunity: every item of the publisher's `items`, in its order, ticked
/// as its stored row says or unticked when it has none (rows of items no longer on the list
/// are left out).
pub fn checklist(items: &[String], rows: Vec<ChecklistRow>) -> Vec<ChecklistEntry> {
    let mut ticked: HashMap<String, ChecklistEntry> = rows
        .into_iter()
        .map(|(item, done, by, at)| (item.clone(), ChecklistEntry { item, done, by: Some(by), at: Some(ts(at)) }))
        .collect();
    items
        .iter()
        .map(|item| {
            ticked.remove(item).unwrap_or_else(|| ChecklistEntry {
                item: item.clone(),
                done: false,
                by: None,
                at: None,
            })
        })
        .collect()
}

/// Columns of `activities` in [`ActivityRow`]'s order.
pub const ACTIVITY_COLUMNS: &str = "id, kind, outcome, note, next_touch_at, actor, at";

/// A row of [`ACTIVITY_COLUMNS`].
pub type ActivityRow = (String, String, Option<String>, Option<String>, Option<i64>, String, i64);

/// An activity from its stored row, its texts opened.
///
/// # Errors
/// `Other` for a value that does not parse or open.
pub fn activity_from_row(row: ActivityRow, v: &Vault) -> Result<Activity> {
    let (id, kind, outcome, note, next, by, at) = row;
    Ok(Activity {
        id: ActivityId::parse(&id).ok_or_else(|| corrupt("activity id"))?,
        kind: ActivityKind::parse(&kind).ok_or_else(|| corrupt("activity kind"))?,
        outcome: open(v, Column::ActivityOutcome, outcome)?,
        note: open(v, Column::ActivityNote, note)?,
        next_touch_at: next.map(ts),
        by,
        at: ts(at),
    })
}

/// An activity's texts sealed as stored.
pub fn sealed_activity(v: &Vault, a: &Activity) -> (Option<String>, Option<String>) {
    (v.seal_opt(Column::ActivityOutcome, a.outcome.as_deref()), v.seal_opt(Column::ActivityNote, a.note.as_deref()))
}

// ---------------------------------------------------------------------------------------------
// Updating

/// What an update reads of an opportunity and writes back: `status, reason, owner_id,
/// owner_notice_pending, next_touch_at, version`.
#[derive(Debug, Clone)]
pub struct UpdatableRow {
    /// `status`.
    pub status: String,
    /// `reason`, sealed.
    pub reason: Option<String>,
    /// `owner_id`.
    pub owner: Option<String>,
    /// `owner_notice_pending`.
    pub owner_notice_pending: bool,
    /// `next_touch_at`.
    pub next_touch_at: Option<i64>,
    /// `version`.
    pub version: i64,
}

/// The columns an update writes, from [`UpdatableRow::apply`].
#[derive(Debug, Clone)]
pub struct UpdatedRow {
    /// `status`.
    pub status: &'static str,
    /// `reason`, sealed.
    pub reason: Option<String>,
    /// `owner_id`.
    pub owner: Option<String>,
    /// `owner_notice_pending`.
    pub owner_notice_pending: bool,
    /// `next_touch_at`.
    pub next_touch_at: Option<i64>,
    /// `qualified_at` if it is not set yet (the first qualification or win).
    pub qualified_at: Option<i64>,
    /// `updated_at` at least.
    pub now: i64,
}

impl UpdatableRow {
    /// The row after `u`: `Conflict` when the version is not the one the caller expected. A new
    /// owner is told once (a notice); nobody is told of an opportunity taken away.
    ///
    /// # Errors
    /// `Conflict` on another version; `Other` for a stored status that does not parse.
    pub fn apply(self, u: &OpportunityUpdate, v: &Vault) -> Result<UpdatedRow> {
        if self.version != u.expected_version {
            return Err(StorageError::Conflict);
        }
        let mut status = opportunity_status(&self.status)?;
        let mut reason = self.reason;
        if let Some((to, why)) = &u.status {
            status = *to;
            reason = v.seal_opt(Column::OpportunityReason, why.as_deref());
        }
        let mut owner = self.owner;
        let mut pending = self.owner_notice_pending;
        if let Some(to) = &u.owner {
            let to = to.as_ref().map(|o| o.as_str().to_owned());
            if to != owner {
                pending = to.is_some();
            }
            owner = to;
        }
        let next_touch_at = match u.next_touch_at {
            Some(next) => next.map(Timestamp::as_millis),
            None => self.next_touch_at,
        };
        let qualified_at =
            matches!(status, OpportunityStatus::Qualified | OpportunityStatus::Won).then(|| u.now.as_millis());
        Ok(UpdatedRow {
            status: status.as_str(),
            reason,
            owner,
            owner_notice_pending: pending,
            next_touch_at,
            qualified_at,
            now: u.now.as_millis(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// KPIs

/// The smallest opportunity id generated at or after `at`: ids are UUIDv7 of their opening
/// time, whose first twelve hex digits are the Unix milliseconds. The KPI query bounds the
/// table's key by the period with it (and checks `opened_at` too).
pub fn id_bound(at: Timestamp) -> String {
    format!("{}{:012x}", OpportunityId::PREFIX, at.as_millis().clamp(0, (1 << 48) - 1))
}

/// The column the KPI query reads as an opportunity's grouping key (`NULL` without grouping):
/// the accumulator uses the offer, source and action of a fact for nothing else.
pub fn group_column(group: Option<KpiGroup>) -> &'static str {
    match group {
        Some(KpiGroup::Offer) => "offer_id",
        Some(KpiGroup::Source) => "source",
        Some(KpiGroup::Action) => "action",
        None => "NULL",
    }
}

/// A row of the KPI query's opportunities: `status, opened_at, first_touch_due_at,
/// first_touched_at, qualified_at IS NOT NULL, touches` and the [`group_column`].
pub type KpiOpportunityRow<'a> = (&'a str, i64, i64, Option<i64>, bool, i64, Option<String>);

/// The fact of a KPI opportunity row, its grouping key where `group` puts it.
///
/// # Errors
/// `Other` for a status that does not parse or a count out of range.
pub fn opportunity_fact(row: KpiOpportunityRow<'_>, group: Option<KpiGroup>) -> Result<OpportunityFact> {
    let (status, opened_at, due, touched, qualified, touches, key) = row;
    let mut fact = OpportunityFact {
        status: opportunity_status(status)?,
        opened_at: ts(opened_at),
        first_touch_due_at: ts(due),
        first_touched_at: touched.map(ts),
        qualified,
        follow_ups: fits(touches, "touch count")?,
        offer: None,
        source: String::new(),
        action: None,
    };
    match group {
        Some(KpiGroup::Offer) => fact.offer = key,
        Some(KpiGroup::Source) => fact.source = key.unwrap_or_default(),
        Some(KpiGroup::Action) => fact.action = key,
        None => {}
    }
    Ok(fact)
}
