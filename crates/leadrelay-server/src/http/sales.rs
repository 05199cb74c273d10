//! The sales workspace over HTTP: a publisher's sales settings, its opportunities and their
//! follow-up, and the KPIs (JSON or CSV).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use leadrelay_core::access::Scope;
use leadrelay_core::audit::{AuditAction, AuditObject};
use leadrelay_core::destination::FieldError;
use leadrelay_core::sales::kpi::{
    DailyLeads, DestinationHealth, FIRST_TOUCH_BUCKET_HOURS, Figures, KpiGroup, KpiQuery, KpiReport,
};
use leadrelay_core::sales::{
    Activity, ActivityKind, BusinessHours, ChecklistEntry, FollowUpTarget, Opportunity, OpportunityStatus,
    SalesSettings,
};
use leadrelay_core::storage::OpportunityFilter;
use leadrelay_core::{OfferId, OpportunityId, PublisherId, Timestamp, UserId};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::error::ApiError;
use crate::http::extract::{Caller, OptionalJson, PathParams, ValidJson, object};
use crate::http::query::Query;
use crate::ops::{DueList, NewActivity, OpportunityPatch, OpportunityView, owner_filter};
use crate::state::AppState;

pub(crate) const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Working hours: the SLA clock runs only inside them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BusinessHoursIo {
    /// Working days, `mon` … `sun`.
    #[schema(example = json!(["mon", "tue", "wed", "thu", "fri"]))]
    days: Vec<String>,
    /// Start of the working day, `HH:MM` (24 h), in `time_zone`.
    #[schema(example = "09:00", pattern = "^[0-2][0-9]:[0-5][0-9]$")]
    start: String,
    /// End of the working day, `HH:MM`, after `start` (`24:00` is midnight).
    #[schema(example = "17:00", pattern = "^[0-2][0-9]:[0-5][0-9]$")]
    end: String,
}

/// The follow-up target: how many calls, e-mails and meetings an opportunity should get.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowUpTargetIo {
    #[schema(minimum = 0, maximum = 1000)]
    min: u32,
    #[schema(minimum = 1, maximum = 1000)]
    max: u32,
}

fn default_checklist() -> Vec<String> {
    SalesSettings::default().checklist
}
fn default_sla_hours() -> u32 {
    SalesSettings::default().first_touch_sla_hours
}
fn default_target() -> FollowUpTargetIo {
    let t = SalesSettings::default().follow_up_target;
    FollowUpTargetIo { min: t.min, max: t.max }
}
fn default_time_zone() -> String {
    SalesSettings::default().time_zone
}

/// A publisher's sales settings. `PUT` replaces them; a field left out takes its default.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SalesSettingsIo {
    /// User ids (`usr_…`, admins and members of the publisher), in round-robin order.
    #[serde(default)]
    team: Vec<String>,
    /// Assign each new opportunity to the next person of `team`.
    #[serde(default)]
    round_robin: bool,
    /// Skip a person already owning this many open opportunities; `null`: no cap.
    #[serde(default)]
    #[schema(minimum = 1)]
    max_open_per_owner: Option<u32>,
    /// Qualification checklist items (`a-z 0-9 - _`), in order. Default: budget, authority,
    /// need, timeline.
    #[serde(default = "default_checklist")]
    checklist: Vec<String>,
    /// First touch due this many hours after an opportunity opens (working hours with
    /// `business_hours`). Default 24.
    #[serde(default = "default_sla_hours")]
    #[schema(minimum = 1, maximum = 720)]
    first_touch_sla_hours: u32,
    /// Default 5 to 12.
    #[serde(default = "default_target", deserialize_with = "object")]
    follow_up_target: FollowUpTargetIo,
    /// IANA time zone, e.g. `Europe/Lisbon`. Default `UTC`.
    #[serde(default = "default_time_zone")]
    time_zone: String,
    /// `null`: the SLA clock runs around the clock.
    #[serde(default, deserialize_with = "optional_object")]
    business_hours: Option<BusinessHoursIo>,
}

fn optional_object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<serde_json::Value>::deserialize(d)?
        .map(|v| object(v).map_err(serde::de::Error::custom))
        .transpose()
        .map_err(|e: serde_json::Error| serde::de::Error::custom(e.to_string()))
}

pub(crate) fn minute_of(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    ((h < 24 && m < 60) || (h == 24 && m == 0)).then_some(h * 60 + m)
}

pub(crate) fn hh_mm(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

impl SalesSettingsIo {
    fn into_settings(self) -> Result<SalesSettings, ApiError> {
        let mut errors = Vec::new();
        let team = self
            .team
            .iter()
            .enumerate()
            .filter_map(|(i, id)| {
                let parsed = UserId::parse(id);
                if parsed.is_none() {
                    errors.push(FieldError::new(format!("team[{i}]"), "is not a user id (usr_…)"));
                }
                parsed
            })
            .collect();
        let business_hours = match self.business_hours {
            None => None,
            Some(h) => {
                let days: Option<Vec<u8>> = h
                    .days
                    .iter()
                    .map(|d| DAYS.iter().position(|n| n.eq_ignore_ascii_case(d)).map(|p| p as u8 + 1))
                    .collect();
                let (start, end) = (minute_of(&h.start), minute_of(&h.end));
                if days.is_none() {
                    errors.push(FieldError::new(
                        "business_hours.days",
                        "must name days as mon, tue, wed, thu, fri, sat, sun",
                    ));
                }
                if start.is_none() {
                    errors.push(FieldError::new("business_hours.start", "must be a time HH:MM"));
                }
                if end.is_none() {
                    errors.push(FieldError::new("business_hours.end", "must be a time HH:MM"));
                }
                match (days, start, end) {
                    (Some(mut days), Some(start_minute), Some(end_minute)) => {
                        days.sort_unstable();
                        if days.windows(2).any(|w| w[0] == w[1]) {
                            errors.push(FieldError::new("business_hours.days", "names a day twice"));
                        }
                        Some(BusinessHours { days, start_minute, end_minute })
                    }
                    _ => None,
                }
            }
        };
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(SalesSettings {
            team,
            round_robin: self.round_robin,
            max_open_per_owner: self.max_open_per_owner,
            checklist: self.checklist,
            first_touch_sla_hours: self.first_touch_sla_hours,
            follow_up_target: FollowUpTarget { min: self.follow_up_target.min, max: self.follow_up_target.max },
            time_zone: self.time_zone,
            business_hours,
        })
    }
}

impl From<&SalesSettings> for SalesSettingsIo {
    fn from(s: &SalesSettings) -> Self {
        Self {
            team: s.team.iter().map(UserId::to_string).collect(),
            round_robin: s.round_robin,
            max_open_per_owner: s.max_open_per_owner,
            checklist: s.checklist.clone(),
            first_touch_sla_hours: s.first_touch_sla_hours,
            follow_up_target: FollowUpTargetIo { min: s.follow_up_target.min, max: s.follow_up_target.max },
            time_zone: s.time_zone.clone(),
            business_hours: s.business_hours.as_ref().map(|h| BusinessHoursIo {
                days: h.days.iter().map(|d| DAYS[usize::from(d.saturating_sub(1)).min(6)].to_owned()).collect(),
                start: hh_mm(h.start_minute),
                end: hh_mm(h.end_minute),
            }),
        }
    }
}

fn publisher_of(id: &str) -> Result<PublisherId, ApiError> {
    PublisherId::parse(id).map_err(|_| ApiError::NotFound("publisher"))
}

/// `GET /v1/publishers/{publisher}/settings/sales`
#[utoipa::path(
    get, path = "/v1/publishers/{publisher}/settings/sales", tag = "sales",
    params(("publisher" = String, Path, description = "The publisher id")),
    responses((status = 200, description = "The sales settings (defaults until saved)", body = SalesSettingsIo)),
    security(("bearer" = []))
)]
pub async fn get_sales_settings(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(publisher): PathParams<String>,
) -> Result<Json<SalesSettingsIo>, ApiError> {
    let publisher = publisher_of(&publisher)?;
    caller.check(&publisher, Scope::Read, "publisher")?;
    let settings = state.ops.sales_settings(&publisher).await?;
    Ok(Json(SalesSettingsIo::from(&settings)))
}

/// `PUT /v1/publishers/{publisher}/settings/sales`: replaces them (the `admin` scope).
#[utoipa::path(
    put, path = "/v1/publishers/{publisher}/settings/sales", tag = "sales",
    params(("publisher" = String, Path, description = "The publisher id")),
    request_body = SalesSettingsIo,
    responses((status = 200, description = "The settings as saved", body = SalesSettingsIo)),
    security(("bearer" = []))
)]
pub async fn put_sales_settings(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(publisher): PathParams<String>,
    ValidJson(body): ValidJson<SalesSettingsIo>,
) -> Result<Json<SalesSettingsIo>, ApiError> {
    let publisher = publisher_of(&publisher)?;
    caller.check(&publisher, Scope::Admin, "publisher")?;
    let settings = body.into_settings()?;
    let saved = state.ops.put_sales_settings(&caller.actor(), &publisher, settings).await?;
    Ok(Json(SalesSettingsIo::from(&saved)))
}

/// One checklist item of an opportunity.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChecklistOut {
    item: String,
    done: bool,
    /// Who ticked it last (`usr_…`, `tok_…` or `admin`).
    by: Option<String>,
    #[schema(format = DateTime)]
    at: Option<String>,
}

impl From<&ChecklistEntry> for ChecklistOut {
    fn from(c: &ChecklistEntry) -> Self {
        Self { item: c.item.clone(), done: c.done, by: c.by.clone(), at: c.at.map(Timestamp::to_rfc3339) }
    }
}

/// One entry of the follow-up log.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityOut {
    id: String,
    #[schema(schema_with = activity_kinds)]
    kind: &'static str,
    outcome: Option<String>,
    note: Option<String>,
    #[schema(format = DateTime)]
    next_touch_at: Option<String>,
    /// Who logged it (`usr_…`, `tok_…` or `admin`).
    by: String,
    #[schema(format = DateTime)]
    at: String,
}

fn activity_kinds() -> utoipa::openapi::Object {
    crate::http::openapi::string_enum(ActivityKind::ALL.map(ActivityKind::as_str))
}

fn statuses() -> utoipa::openapi::Object {
    crate::http::openapi::string_enum(OpportunityStatus::ALL.map(OpportunityStatus::as_str))
}

impl From<&Activity> for ActivityOut {
    fn from(a: &Activity) -> Self {
        Self {
            id: a.id.to_string(),
            kind: a.kind.as_str(),
            outcome: a.outcome.clone(),
            note: a.note.clone(),
            next_touch_at: a.next_touch_at.map(Timestamp::to_rfc3339),
            by: a.by.clone(),
            at: a.at.to_rfc3339(),
        }
    }
}

/// The follow-ups logged against the publisher's target.
#[derive(Debug, Serialize, ToSchema)]
pub struct FollowUpsOut {
    /// Calls, e-mails and meetings logged (notes do not count).
    count: u32,
    target_min: u32,
    target_max: u32,
}

/// An opportunity: one customer's interest in one offer, and its follow-up.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpportunityOut {
    id: String,
    publisher: String,
    customer_id: String,
    offer: Option<String>,
    /// The furthest funnel stage of its leads (`initial_interest`, `trial`, `active`, …).
    stage: String,
    #[schema(schema_with = statuses)]
    status: &'static str,
    /// Why it was won, lost, disqualified or moved back.
    reason: Option<String>,
    /// `usr_…`
    owner: Option<String>,
    /// Its leads, oldest first.
    lead_ids: Vec<String>,
    /// The source of the lead that opened it.
    source: String,
    /// The action code of the lead that opened it.
    action: Option<String>,
    checklist: Vec<ChecklistOut>,
    /// The follow-up log, oldest first.
    activities: Vec<ActivityOut>,
    follow_ups: FollowUpsOut,
    #[schema(format = DateTime)]
    opened_at: String,
    #[schema(format = DateTime)]
    first_touch_due_at: String,
    #[schema(format = DateTime)]
    first_touched_at: Option<String>,
    /// The first touch came after its due time, or has not come and is overdue.
    sla_breached: bool,
    #[schema(format = DateTime)]
    next_touch_at: Option<String>,
    #[schema(format = DateTime)]
    updated_at: String,
}

fn opportunity_out(o: &Opportunity, target: FollowUpTarget, now: Timestamp) -> OpportunityOut {
    OpportunityOut {
        id: o.id.to_string(),
        publisher: o.publisher.to_string(),
        customer_id: o.customer_id.to_string(),
        offer: o.offer.as_ref().map(OfferId::to_string),
        stage: o.stage.as_str().to_owned(),
        status: o.status.as_str(),
        reason: o.reason.clone(),
        owner: o.owner.as_ref().map(UserId::to_string),
        lead_ids: o.lead_ids.iter().map(ToString::to_string).collect(),
        source: o.source.clone(),
        action: o.action.clone(),
        checklist: o.checklist.iter().map(ChecklistOut::from).collect(),
        activities: o.activities.iter().map(ActivityOut::from).collect(),
        follow_ups: FollowUpsOut { count: o.follow_up_count(), target_min: target.min, target_max: target.max },
        opened_at: o.opened_at.to_rfc3339(),
        first_touch_due_at: o.first_touch_due_at.to_rfc3339(),
        first_touched_at: o.first_touched_at.map(Timestamp::to_rfc3339),
        sla_breached: o.sla_breached(now),
        next_touch_at: o.next_touch_at.map(Timestamp::to_rfc3339),
        updated_at: o.updated_at.to_rfc3339(),
    }
}

impl From<&OpportunityView> for OpportunityOut {
    fn from(v: &OpportunityView) -> Self {
        opportunity_out(&v.opportunity, v.target, v.now)
    }
}

/// A page of opportunities, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpportunityPageOut {
    items: Vec<OpportunityOut>,
    /// Pass back as `cursor`; `null` at the end.
    next_cursor: Option<String>,
}

/// The opportunity list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct OpportunityListQuery {
    /// `new`, `contacted`, `qualified`, `won`, `lost` or `disqualified`.
    status: Option<String>,
    /// `usr_…`, `none` (unassigned) or `me` (the signed-in user).
    owner: Option<String>,
    /// `publisherid.offerid`.
    offer: Option<String>,
    /// `today` (the next touch is due before the end of the publisher's day), `overdue` (due
    /// before now) or `sla_breached` (never touched, first-touch SLA over).
    due: Option<String>,
    /// Whole words that must all appear in one of its leads' names, e-mail or company.
    q: Option<String>,
    /// Page size.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// `GET /v1/publishers/{publisher}/opportunities`
#[utoipa::path(
    get, path = "/v1/publishers/{publisher}/opportunities", tag = "sales",
    params(("publisher" = String, Path, description = "The publisher id"), OpportunityListQuery),
    responses((status = 200, description = "A page of opportunities", body = OpportunityPageOut)),
    security(("bearer" = []))
)]
pub async fn list_opportunities(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(publisher): PathParams<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<OpportunityPageOut>, ApiError> {
    let publisher = publisher_of(&publisher)?;
    caller.check(&publisher, Scope::Read, "publisher")?;
    let q = Query::parse_for::<OpportunityListQuery>(raw.as_deref())?;
    let filter = opportunity_filter(&state, &q, &publisher, signed_in_user(&caller).as_ref()).await?;
    let (page, target, now) = state.ops.list_opportunities(&filter, &q.page()?).await?;
    let entry = state.ops.audit_entry(&caller.actor(), Some(&publisher), AuditAction::OpportunityList);
    state.ops.record(entry.count(page.items.len() as u64).text_search(filter.text.is_some())).await?;
    Ok(Json(OpportunityPageOut {
        items: page.items.iter().map(|o| opportunity_out(o, target, now)).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// The opportunity filter of a publisher's list from its parameters (`me`: the signed-in
/// person, for `owner=me`).
///
/// # Errors
/// 422 naming a bad parameter.
pub async fn opportunity_filter(
    state: &AppState,
    q: &Query,
    publisher: &PublisherId,
    me: Option<&UserId>,
) -> Result<OpportunityFilter, ApiError> {
    let owner = q.parsed("owner", |o| owner_filter(o, me))?;
    let due = match q.parsed("due", |d| DueList::parse(d).ok_or(DueList::RULE))? {
        Some(list) => Some(state.ops.due_filter(publisher, list).await?),
        None => None,
    };
    Ok(OpportunityFilter {
        publisher: Some(publisher.clone()),
        status: q.parsed("status", |s| OpportunityStatus::parse(s).ok_or(OpportunityStatus::RULE))?,
        owner,
        offer: q.parsed("offer", OfferId::parse)?,
        due,
        text: q.parsed("q", crate::http::leads::search_text)?,
    })
}

fn opportunity_id(id: &str) -> Result<OpportunityId, ApiError> {
    OpportunityId::parse(id).ok_or(ApiError::NotFound("opportunity"))
}

/// `GET /v1/opportunities/{id}`
#[utoipa::path(
    get, path = "/v1/opportunities/{id}", tag = "sales",
    params(("id" = String, Path, description = "`opp_…`")),
    responses((status = 200, description = "The opportunity", body = OpportunityOut)),
    security(("bearer" = []))
)]
pub async fn get_opportunity(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<OpportunityOut>, ApiError> {
    let id = opportunity_id(&id)?;
    let view = state.ops.get_opportunity(&id).await?;
    caller.check(&view.opportunity.publisher, Scope::Read, "opportunity")?;
    let entry = state.ops.audit_entry(&caller.actor(), Some(&view.opportunity.publisher), AuditAction::OpportunityRead);
    state.ops.record(entry.object(AuditObject::Opportunity(id))).await?;
    Ok(Json(OpportunityOut::from(&view)))
}

/// The signed-in user behind a session (none for bearer tokens).
fn signed_in_user(caller: &Caller) -> Option<UserId> {
    match caller {
        Caller::User { user, .. } => Some(user.clone()),
        _ => None,
    }
}

/// Reads a field that may be absent (unchanged), `null` (cleared) or a value.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A change to an opportunity; a field left out stays as it is.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpportunityPatchIn {
    /// The new status. `lost` and `disqualified` need a `reason`; so do `won` before
    /// `qualified`, going back, and reopening a closed opportunity.
    #[schema(schema_with = statuses)]
    status: Option<String>,
    /// Why.
    #[schema(max_length = 500)]
    reason: Option<String>,
    /// `usr_…` (an admin or member of the publisher), or `null` to unassign.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    owner: Option<Option<String>>,
    /// When to reach out next (RFC 3339), or `null` to clear it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    next_touch_at: Option<Option<String>>,
}

fn time_field(name: &str, text: &str) -> Result<Timestamp, ApiError> {
    Timestamp::parse_rfc3339(text).map_err(|rule| ApiError::field(name, rule))
}

/// `PATCH /v1/opportunities/{id}`: status (with reason), owner, next touch (the `write` scope).
#[utoipa::path(
    patch, path = "/v1/opportunities/{id}", tag = "sales",
    params(("id" = String, Path, description = "`opp_…`")),
    request_body = OpportunityPatchIn,
    responses(
        (status = 200, description = "The opportunity after the change", body = OpportunityOut),
        (status = 409, description = "Others kept changing it meanwhile; read it again", body = crate::http::error::ErrorOut)
    ),
    security(("bearer" = []))
)]
pub async fn patch_opportunity(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    ValidJson(body): ValidJson<OpportunityPatchIn>,
) -> Result<Json<OpportunityOut>, ApiError> {
    let id = opportunity_id(&id)?;
    let patch = OpportunityPatch {
        status: body
            .status
            .as_deref()
            .map(|s| OpportunityStatus::parse(s).ok_or_else(|| ApiError::field("status", OpportunityStatus::RULE)))
            .transpose()?,
        reason: body.reason,
        owner: body
            .owner
            .map(|o| {
                o.map(|id| {
                    UserId::parse(&id).ok_or_else(|| ApiError::field("owner", "must be a user id (usr_…) or null"))
                })
                .transpose()
            })
            .transpose()?,
        next_touch_at: body
            .next_touch_at
            .map(|t| t.map(|t| time_field("next_touch_at", &t)).transpose())
            .transpose()?,
    };
    let may_write = |p: &PublisherId| caller.check(p, Scope::Write, "opportunity");
    let view = state.ops.update_opportunity(&caller.actor(), &id, patch, may_write).await?;
    Ok(Json(OpportunityOut::from(&view)))
}

/// A follow-up to log.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityIn {
    /// `call`, `email`, `meeting` or `note` (a note is not a touch).
    #[schema(schema_with = activity_kinds)]
    kind: String,
    /// What came of it.
    #[schema(max_length = 200)]
    outcome: Option<String>,
    #[schema(max_length = 4000)]
    note: Option<String>,
    /// When to reach out next (RFC 3339).
    #[schema(format = DateTime)]
    next_touch_at: Option<String>,
}

/// `POST /v1/opportunities/{id}/activities`: logs a call, e-mail, meeting or note.
#[utoipa::path(
    post, path = "/v1/opportunities/{id}/activities", tag = "sales",
    params(("id" = String, Path, description = "`opp_…`")),
    request_body = ActivityIn,
    responses((status = 201, description = "Logged; the opportunity after it", body = OpportunityOut)),
    security(("bearer" = []))
)]
pub async fn add_activity(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    ValidJson(body): ValidJson<ActivityIn>,
) -> Result<(StatusCode, Json<OpportunityOut>), ApiError> {
    let id = opportunity_id(&id)?;
    let activity = NewActivity {
        kind: ActivityKind::parse(&body.kind).ok_or_else(|| ApiError::field("kind", ActivityKind::RULE))?,
        outcome: body.outcome,
        note: body.note,
        next_touch_at: body.next_touch_at.as_deref().map(|t| time_field("next_touch_at", t)).transpose()?,
    };
    let may_write = |p: &PublisherId| caller.check(p, Scope::Write, "opportunity");
    let view = state.ops.add_activity(&caller.actor(), &id, activity, may_write).await?;
    Ok((StatusCode::CREATED, Json(OpportunityOut::from(&view))))
}

/// A checklist tick; an empty body ticks.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChecklistTickIn {
    /// `false` unticks. Default `true`.
    #[serde(default = "ticked")]
    done: bool,
}

fn ticked() -> bool {
    true
}

impl Default for ChecklistTickIn {
    fn default() -> Self {
        Self { done: true }
    }
}

/// `POST /v1/opportunities/{id}/checklist/{item}`: ticks (or, with `{"done": false}`,
/// unticks) an item of the publisher's checklist.
#[utoipa::path(
    post, path = "/v1/opportunities/{id}/checklist/{item}", tag = "sales",
    params(("id" = String, Path, description = "`opp_…`"), ("item" = String, Path, description = "A checklist item")),
    request_body(content = Option<ChecklistTickIn>, description = "Optional; empty ticks"),
    responses((status = 200, description = "The opportunity after it", body = OpportunityOut)),
    security(("bearer" = []))
)]
pub async fn tick_checklist(
    caller: Caller,
    State(state): State<AppState>,
    PathParams((id, item)): PathParams<(String, String)>,
    OptionalJson(body): OptionalJson<ChecklistTickIn>,
) -> Result<Json<OpportunityOut>, ApiError> {
    let id = opportunity_id(&id)?;
    let may_write = |p: &PublisherId| caller.check(p, Scope::Write, "opportunity");
    let view = state.ops.tick_checklist(&caller.actor(), &id, &item, body.done, may_write).await?;
    Ok(Json(OpportunityOut::from(&view)))
}

/// Opportunities by status.
#[derive(Debug, Serialize, ToSchema)]
pub struct FunnelOut {
    new: u64,
    contacted: u64,
    qualified: u64,
    won: u64,
    lost: u64,
    disqualified: u64,
}

/// Hours from opening to the first touch.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoursOut {
    p50: Option<f64>,
    p90: Option<f64>,
}

/// The figures of one set of opportunities (definitions in the KPI docs: rates are `null` when
/// nothing could be counted).
#[derive(Debug, Serialize, ToSchema)]
pub struct FiguresOut {
    funnel: FunnelOut,
    /// Opportunities counted.
    opportunities: u64,
    /// Touched at least once / all.
    contact_rate: Option<f64>,
    time_to_first_touch_hours: HoursOut,
    /// Breached / those whose SLA is decided (touched, or past due).
    sla_breach_rate: Option<f64>,
    /// Ever qualified / all.
    qualification_rate: Option<f64>,
    /// Won / closed (won, lost, disqualified).
    win_rate: Option<f64>,
    /// Calls, e-mails and meetings on won opportunities / won.
    follow_ups_per_won: Option<f64>,
}

impl From<&Figures> for FiguresOut {
    fn from(f: &Figures) -> Self {
        let n = |s: &str| f.funnel.get(s).copied().unwrap_or(0);
        Self {
            funnel: FunnelOut {
                new: n("new"),
                contacted: n("contacted"),
                qualified: n("qualified"),
                won: n("won"),
                lost: n("lost"),
                disqualified: n("disqualified"),
            },
            opportunities: f.opportunities,
            contact_rate: f.contact_rate,
            time_to_first_touch_hours: HoursOut { p50: f.first_touch_hours_p50, p90: f.first_touch_hours_p90 },
            sla_breach_rate: f.sla_breach_rate,
            qualification_rate: f.qualification_rate,
            win_rate: f.win_rate,
            follow_ups_per_won: f.follow_ups_per_won,
        }
    }
}

/// One destination's health in the period.
#[derive(Debug, Serialize, ToSchema)]
pub struct DestinationHealthOut {
    /// `dst_…`
    id: String,
    /// Delivered / attempts counted against the retry schedule.
    success_rate: Option<f64>,
    /// 95th percentile of a lead's arrival to its delivery, milliseconds.
    p95_lag_ms: Option<i64>,
    dead_letters: u64,
    /// Deliveries of the period's leads.
    deliveries: u64,
}

impl From<&DestinationHealth> for DestinationHealthOut {
    fn from(h: &DestinationHealth) -> Self {
        Self {
            id: h.destination.to_string(),
            success_rate: h.success_rate,
            p95_lag_ms: h.p95_lag_ms,
            dead_letters: h.dead_letters,
            deliveries: h.deliveries,
        }
    }
}

/// One bucket of the first-touch histogram: the touched opportunities first touched at least
/// `from_hours` and less than `to_hours` after they opened.
#[derive(Debug, Serialize, ToSchema)]
pub struct FirstTouchBucketOut {
    from_hours: u32,
    /// `null` for the last bucket, which has no upper bound.
    to_hours: Option<u32>,
    opportunities: u64,
}

/// The buckets of [`FIRST_TOUCH_BUCKET_HOURS`] with their counts.
fn first_touch_buckets(counts: &[u64]) -> Vec<FirstTouchBucketOut> {
    let from = std::iter::once(0).chain(FIRST_TOUCH_BUCKET_HOURS);
    let to = FIRST_TOUCH_BUCKET_HOURS.map(Some).into_iter().chain([None]);
    from.zip(to)
        .zip(counts)
        .map(|((from_hours, to_hours), &opportunities)| FirstTouchBucketOut { from_hours, to_hours, opportunities })
        .collect()
}

/// Real leads received on one UTC day with one source and action.
#[derive(Debug, Serialize, ToSchema)]
pub struct DailyLeadsOut {
    /// `YYYY-MM-DD`, UTC.
    day: String,
    /// The marketplace spelling (`AzureMarketplace`, `AppSource (SPZA)`, …).
    source: String,
    /// The action code (`INS`, `PLT`, …); `null` when the leads had none.
    action: Option<String>,
    leads: u64,
}

impl From<&DailyLeads> for DailyLeadsOut {
    fn from(d: &DailyLeads) -> Self {
        Self { day: d.day.clone(), source: d.source.clone(), action: d.action.clone(), leads: d.leads }
    }
}

/// The KPI report. Test leads are never counted.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpisOut {
    #[serde(flatten)]
    overall: FiguresOut,
    destinations: Vec<DestinationHealthOut>,
    /// Touched opportunities by hours from opening to the first touch, in buckets `[0,1)`,
    /// `[1,4)`, `[4,8)`, `[8,24)`, `[24,72)`, `[72,∞)`: of all the selected opportunities,
    /// never per group.
    first_touch_histogram: Vec<FirstTouchBucketOut>,
    /// Real leads received in the period, with the filters, per UTC day, source and action,
    /// in that order (every real lead: duplicates and do-not-contact ones too).
    leads_per_day: Vec<DailyLeadsOut>,
    /// With `group_by`: what the groups are (`offer`, `source` or `action`).
    group_by: Option<&'static str>,
    /// With `group_by`: the same figures per offer id, source or action code (`""`: none).
    by: Option<BTreeMap<String, FiguresOut>>,
}

impl KpisOut {
    /// The wire form of a report.
    pub fn new(report: &KpiReport, group_by: Option<KpiGroup>) -> Self {
        Self {
            overall: FiguresOut::from(&report.overall),
            destinations: report.destinations.iter().map(DestinationHealthOut::from).collect(),
            first_touch_histogram: first_touch_buckets(&report.first_touch_histogram),
            leads_per_day: report.leads_per_day.iter().map(DailyLeadsOut::from).collect(),
            group_by: group_by.map(KpiGroup::as_str),
            by: report.by.as_ref().map(|by| by.iter().map(|(k, f)| (k.clone(), FiguresOut::from(f))).collect()),
        }
    }
}

/// The KPI filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct KpiQueryIn {
    /// Opportunities opened (leads received) at or after: RFC 3339 or a date.
    since: Option<String>,
    /// … and before.
    until: Option<String>,
    /// `publisherid.offerid`.
    offer: Option<String>,
    /// The source of the opening lead (`AzureMarketplace`, `AppSource`, …).
    source: Option<String>,
    /// The action code of the opening lead (`INS`, `PLT`, …), any case.
    action: Option<String>,
    /// `offer`, `source` or `action`: the same figures per group, under `by`.
    group_by: Option<String>,
    /// `json` (default) or `csv` (one row per scope: `all`, each group, each destination).
    format: Option<String>,
}

/// `GET /v1/publishers/{publisher}/kpis`: the funnel, contact and SLA figures, rates and
/// destination health, as JSON or CSV.
#[utoipa::path(
    get, path = "/v1/publishers/{publisher}/kpis", tag = "sales",
    params(("publisher" = String, Path, description = "The publisher id"), KpiQueryIn),
    responses((status = 200, description = "The report: JSON, or CSV with `format=csv`",
               content((KpisOut = "application/json"), (String = "text/csv")))),
    security(("bearer" = []))
)]
pub async fn get_kpis(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(publisher): PathParams<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let publisher = publisher_of(&publisher)?;
    caller.check(&publisher, Scope::Read, "publisher")?;
    let q = Query::parse_for::<KpiQueryIn>(raw.as_deref())?;
    let group_by = q.parsed("group_by", |g| KpiGroup::parse(g).ok_or(KpiGroup::RULE))?;
    let csv = match q.text("format") {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::field("format", "must be json or csv")),
    };
    let query = KpiQuery { group_by, ..kpi_query(&q, &publisher)? };
    let report = state.ops.kpis(query).await?;
    state.ops.record(state.ops.audit_entry(&caller.actor(), Some(&publisher), AuditAction::KpisRead)).await?;
    if csv {
        let body = kpi_csv(&report, group_by);
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (header::CONTENT_DISPOSITION, "attachment; filename=\"kpis.csv\""),
            ],
            body,
        )
            .into_response());
    }
    Ok(Json(KpisOut::new(&report, group_by)).into_response())
}

/// A publisher's KPI query from its parameters (the period and the filters; no grouping).
///
/// # Errors
/// 422 naming a bad parameter.
pub fn kpi_query(q: &Query, publisher: &PublisherId) -> Result<KpiQuery, ApiError> {
    Ok(KpiQuery {
        since: q.time("since")?,
        until: q.time("until")?,
        offer: q.parsed("offer", OfferId::parse)?,
        source: q.text("source").map(|s| leadrelay_core::Source::parse(s).as_str().to_owned()),
        action: q.text("action").map(str::to_owned),
        ..KpiQuery::new(publisher.clone())
    })
}

/// The CSV form: a header, then one row for all opportunities, one per group and one per
/// destination; a column that does not apply to a row is empty.
pub fn kpi_csv(report: &KpiReport, group_by: Option<KpiGroup>) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let header = [
        "scope",
        "key",
        "opportunities",
        "new",
        "contacted",
        "qualified",
        "won",
        "lost",
        "disqualified",
        "contact_rate",
        "first_touch_hours_p50",
        "first_touch_hours_p90",
        "sla_breach_rate",
        "qualification_rate",
        "win_rate",
        "follow_ups_per_won",
        "success_rate",
        "p95_lag_ms",
        "dead_letters",
        "deliveries",
    ];
    let _ = w.write_record(header);
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
    let figures_row = |scope: &str, key: &str, f: &Figures| -> Vec<String> {
        let n = |s: &str| f.funnel.get(s).copied().unwrap_or(0).to_string();
        let mut row = vec![scope.to_owned(), key.to_owned(), f.opportunities.to_string()];
        row.extend(OpportunityStatus::ALL.iter().map(|s| n(s.as_str())));
        row.extend([
            opt(f.contact_rate),
            opt(f.first_touch_hours_p50),
            opt(f.first_touch_hours_p90),
            opt(f.sla_breach_rate),
            opt(f.qualification_rate),
            opt(f.win_rate),
            opt(f.follow_ups_per_won),
        ]);
        row.extend(std::iter::repeat_n(String::new(), 4));
        row
    };
    let _ = w.write_record(figures_row("all", "", &report.overall));
    if let (Some(g), Some(by)) = (group_by, &report.by) {
        for (key, f) in by {
            let _ = w.write_record(figures_row(g.as_str(), key, f));
        }
    }
    for h in &report.destinations {
        let mut row = vec!["destination".to_owned(), h.destination.to_string()];
        row.extend(std::iter::repeat_n(String::new(), 14));
        row.extend([
            opt(h.success_rate),
            h.p95_lag_ms.map_or(String::new(), |v| v.to_string()),
            h.dead_letters.to_string(),
            h.deliveries.to_string(),
        ]);
        let _ = w.write_record(row);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}
