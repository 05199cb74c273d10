//! The sales team's workspace: the settings of a publisher's team, the opportunities its leads
//! open, their follow-up, the notices an owner must get, and the KPIs.
//!
//! A change to an opportunity is checked against the state it was read in (the status rules of
//! `sales::StatusChange` need the current status) and written with that state's version; when
//! someone else changed it in between, the change is read and checked again, so two people
//! working one opportunity cannot slip a transition past the rules.

use std::time::Duration;

use leadrelay_core::audit::{Actor, AuditAction, AuditObject};
use leadrelay_core::destination::{FieldError, Notice, SalesMail};
use leadrelay_core::routing;
use leadrelay_core::sales::kpi::{KpiQuery, KpiReport};
use leadrelay_core::sales::settings::is_checklist_item;
use leadrelay_core::sales::{
    Activity, ActivityKind, FollowUpTarget, Opportunity, OpportunityStatus, Role, SalesSettings, StatusChange,
};
use leadrelay_core::storage::{
    ChecklistTick, DueFilter, OpportunityFilter, OpportunityUpdate, OwnerFilter, Page, PageRequest, SalesNotice,
    SalesNoticeKind, StorageError,
};
use leadrelay_core::{ActivityId, OpportunityId, PublisherId, Timestamp, UserId};

use super::{Ops, OpsError, OpsResult};

/// The longest free texts of an activity and of a reason.
const MAX_OUTCOME: usize = 200;
const MAX_NOTE: usize = 4000;
const MAX_REASON: usize = 500;

/// How many times a change is re-checked when others keep changing the opportunity meanwhile.
const UPDATE_TRIES: usize = 5;

/// How often the notice task looks for owners to tell and SLAs breached.
pub const NOTICE_INTERVAL: Duration = Duration::from_secs(15);

/// The due lists a reader may ask for, by their wire names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueList {
    /// `today`: the next touch is due before the end of the publisher's day.
    Today,
    /// `overdue`: due before now.
    Overdue,
    /// `sla_breached`: never touched, and the first-touch SLA is over.
    SlaBreached,
}

impl DueList {
    /// The rule a wrong name breaks, for error messages.
    pub const RULE: &'static str = "must be today, overdue or sla_breached";

    /// The storage filter of this list at `now`, "today" ending at midnight in `zone` (the
    /// publisher's time zone).
    pub fn filter(self, now: Timestamp, zone: &str) -> DueFilter {
        match self {
            Self::Today => DueFilter::Before(leadrelay_core::sales::sla::end_of_day(now, zone)),
            Self::Overdue => DueFilter::Before(now),
            Self::SlaBreached => DueFilter::SlaBreached(now),
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "today" => Some(Self::Today),
            "overdue" => Some(Self::Overdue),
            "sla_breached" => Some(Self::SlaBreached),
            _ => None,
        }
    }
}

/// Reads an owner as readers name one: a user id, `none` (nobody), or `me` when the reader is a
/// signed-in person (`me`).
///
/// # Errors
/// The rule, for the `owner` field.
pub fn owner_filter(text: &str, me: Option<&UserId>) -> Result<OwnerFilter, &'static str> {
    match text {
        "none" => Ok(OwnerFilter::Unassigned),
        "me" => me.cloned().map(OwnerFilter::User).ok_or("'me' needs a signed-in session"),
        id => UserId::parse(id).map(OwnerFilter::User).ok_or("must be a user id (usr_…), none or me"),
    }
}

/// An opportunity with what its readers need beside it: the publisher's follow-up target and
/// the time its SLA is judged at.
#[derive(Debug, Clone)]
pub struct OpportunityView {
    /// The opportunity.
    pub opportunity: Opportunity,
    /// The publisher's follow-up target.
    pub target: FollowUpTarget,
    /// Now.
    pub now: Timestamp,
}

impl OpportunityView {
    /// Whether the first touch came late or is overdue now.
    pub fn sla_breached(&self) -> bool {
        self.opportunity.sla_breached(self.now)
    }
}

/// A change asked of an opportunity; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct OpportunityPatch {
    /// New status (its reason in `reason`).
    pub status: Option<OpportunityStatus>,
    /// The reason for the status (with no status: a new reason for the current one).
    pub reason: Option<String>,
    /// New owner; `Some(None)` unassigns.
    pub owner: Option<Option<UserId>>,
    /// New next touch; `Some(None)` clears it.
    pub next_touch_at: Option<Option<Timestamp>>,
}

/// A follow-up to log.
#[derive(Debug, Clone)]
pub struct NewActivity {
    /// What was done.
    pub kind: ActivityKind,
    /// What came of it.
    pub outcome: Option<String>,
    /// A note.
    pub note: Option<String>,
    /// When to reach out next.
    pub next_touch_at: Option<Timestamp>,
}

fn trimmed(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

fn check_length(errors: &mut Vec<FieldError>, path: &str, text: Option<&str>, max: usize) {
    if text.is_some_and(|t| t.chars().count() > max) {
        errors.push(FieldError::new(path, format!("must be at most {max} characters")));
    }
}

impl Ops {
    async fn known_publisher(&self, publisher: &PublisherId) -> OpsResult<()> {
        match self.storage.get_publisher(publisher).await {
            Err(StorageError::NotFound) => Err(OpsError::NotFound("publisher")),
            other => other.map(drop).map_err(OpsError::from),
        }
    }

    /// A publisher's sales settings (the defaults until some are saved).
    ///
    /// # Errors
    /// Unknown publisher; storage failures.
    pub async fn sales_settings(&self, publisher: &PublisherId) -> OpsResult<SalesSettings> {
        match self.storage.sales_settings(publisher).await {
            Err(StorageError::NotFound) => Err(OpsError::NotFound("publisher")),
            other => Ok(other?),
        }
    }

    /// Replaces a publisher's sales settings: every rule of `SalesSettings::check`, and each
    /// person of the team must be an admin or member of this publisher.
    ///
    /// # Errors
    /// The broken rules by field; unknown publisher; storage failures.
    pub async fn put_sales_settings(
        &self,
        actor: &Actor,
        publisher: &PublisherId,
        settings: SalesSettings,
    ) -> OpsResult<SalesSettings> {
        self.known_publisher(publisher).await?;
        let mut errors = settings.check();
        let users = self.storage.list_users(publisher).await?;
        for (i, member) in settings.team.iter().enumerate() {
            match users.iter().find(|u| &u.id == member) {
                None => errors.push(FieldError::new(format!("team[{i}]"), "is not a user of this publisher")),
                Some(u) if u.role == Role::Viewer => {
                    errors.push(FieldError::new(format!("team[{i}]"), "is a viewer; only admins and members own work"));
                }
                Some(_) => {}
            }
        }
        if !errors.is_empty() {
            return Err(OpsError::Invalid(errors));
        }
        self.storage.put_sales_settings(publisher, &settings).await?;
        self.record(self.audit_entry(actor, Some(publisher), AuditAction::SalesSettingsUpdate)).await?;
        Ok(settings)
    }

    async fn view(&self, opportunity: Opportunity) -> OpsResult<OpportunityView> {
        let target = self.sales_settings(&opportunity.publisher).await?.follow_up_target;
        Ok(OpportunityView { opportunity, target, now: self.clock.now() })
    }

    async fn load(&self, id: &OpportunityId) -> OpsResult<Opportunity> {
        match self.storage.get_opportunity(id).await {
            Err(StorageError::NotFound) => Err(OpsError::NotFound("opportunity")),
            other => Ok(other?),
        }
    }

    /// One opportunity (the caller checks it may see its publisher, then records the read).
    ///
    /// # Errors
    /// Not found; storage failures.
    pub async fn get_opportunity(&self, id: &OpportunityId) -> OpsResult<OpportunityView> {
        let opportunity = self.load(id).await?;
        self.view(opportunity).await
    }

    /// A page of a publisher's opportunities, newest first.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn list_opportunities(
        &self,
        filter: &OpportunityFilter,
        page: &PageRequest,
    ) -> OpsResult<(Page<Opportunity>, FollowUpTarget, Timestamp)> {
        let target = match &filter.publisher {
            Some(p) => self.sales_settings(p).await?.follow_up_target,
            None => SalesSettings::default().follow_up_target,
        };
        Ok((self.storage.list_opportunities(filter, page).await?, target, self.clock.now()))
    }

    /// The latest lead of each of these opportunities, by opportunity: who each one is, for a
    /// list that shows them (one read for the whole list).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn latest_leads(
        &self,
        opportunities: &[Opportunity],
    ) -> OpsResult<std::collections::HashMap<OpportunityId, leadrelay_core::Lead>> {
        let ids: Vec<leadrelay_core::LeadId> =
            opportunities.iter().filter_map(|o| o.lead_ids.last().cloned()).collect();
        let mut leads: std::collections::HashMap<leadrelay_core::LeadId, leadrelay_core::Lead> =
            self.storage.get_leads(&ids).await?.into_iter().map(|l| (l.id.clone(), l)).collect();
        Ok(opportunities.iter().filter_map(|o| Some((o.id.clone(), leads.remove(o.lead_ids.last()?)?))).collect())
    }

    /// The storage filter of a due list, now: "today" ends at the end of the publisher's day
    /// in its time zone.
    ///
    /// # Errors
    /// Unknown publisher; storage failures.
    pub async fn due_filter(&self, publisher: &PublisherId, list: DueList) -> OpsResult<DueFilter> {
        let zone = match list {
            DueList::Today => self.sales_settings(publisher).await?.time_zone,
            DueList::Overdue | DueList::SlaBreached => String::new(),
        };
        Ok(list.filter(self.clock.now(), &zone))
    }

    /// Applies a patch: a status change must pass `StatusChange::check`, an owner must be an
    /// admin or member of the opportunity's publisher.
    ///
    /// The changing use cases take `authorize`, called with the opportunity's publisher on the
    /// read they make anyway (the caller's rule: another publisher's is "not found", a missing
    /// scope "forbidden"), so a change costs one read of the opportunity.
    ///
    /// # Errors
    /// Broken rules by field; not found; what `authorize` refuses; storage failures.
    pub async fn update_opportunity<E: From<OpsError>>(
        &self,
        actor: &Actor,
        id: &OpportunityId,
        patch: OpportunityPatch,
        authorize: impl Fn(&PublisherId) -> Result<(), E>,
    ) -> Result<OpportunityView, E> {
        let reason = trimmed(patch.reason.clone());
        let mut errors = Vec::new();
        check_length(&mut errors, "reason", reason.as_deref(), MAX_REASON);
        if !errors.is_empty() {
            return Err(OpsError::Invalid(errors).into());
        }
        for _ in 0..UPDATE_TRIES {
            let current = self.load(id).await?;
            authorize(&current.publisher)?;
            if let Some(Some(owner)) = &patch.owner {
                self.check_owner(&current.publisher, owner).await?;
            }
            let status = match (patch.status, &reason) {
                (Some(to), _) => {
                    StatusChange { from: current.status, to, reason: reason.as_deref() }
                        .check()
                        .map_err(|(field, rule)| OpsError::field(field, rule))?;
                    Some((to, reason.clone()))
                }
                (None, Some(_)) => Some((current.status, reason.clone())),
                (None, None) => None,
            };
            let update = OpportunityUpdate {
                id: id.clone(),
                expected_version: current.version,
                status,
                owner: patch.owner.clone(),
                next_touch_at: patch.next_touch_at,
                now: self.clock.now(),
            };
            match self.storage.update_opportunity(&update).await {
                Ok(updated) => {
                    let entry = self.audit_entry(actor, Some(&updated.publisher), AuditAction::OpportunityUpdate);
                    self.record(entry.object(AuditObject::Opportunity(id.clone()))).await?;
                    return Ok(self.view(updated).await?);
                }
                Err(StorageError::Conflict) => continue,
                Err(StorageError::NotFound) => return Err(OpsError::NotFound("opportunity").into()),
                Err(e) => return Err(OpsError::from(e).into()),
            }
        }
        Err(OpsError::Conflict("the opportunity keeps changing; read it again and retry".to_owned()).into())
    }

    async fn check_owner(&self, publisher: &PublisherId, owner: &UserId) -> OpsResult<()> {
        let user = match self.storage.get_user(owner).await {
            Err(StorageError::NotFound) => None,
            other => Some(other?),
        };
        match user {
            Some(u) if &u.publisher == publisher && u.role != Role::Viewer => Ok(()),
            Some(u) if &u.publisher == publisher => {
                Err(OpsError::field("owner", "is a viewer; only admins and members own work"))
            }
            _ => Err(OpsError::field("owner", "is not a user of this publisher")),
        }
    }

    /// Logs a follow-up on an opportunity (see `SalesStore::add_activity` for what a touch
    /// does); `authorize` as for [`Ops::update_opportunity`].
    ///
    /// # Errors
    /// Texts too long; not found; what `authorize` refuses; storage failures.
    pub async fn add_activity<E: From<OpsError>>(
        &self,
        actor: &Actor,
        id: &OpportunityId,
        activity: NewActivity,
        authorize: impl Fn(&PublisherId) -> Result<(), E>,
    ) -> Result<OpportunityView, E> {
        let (outcome, note) = (trimmed(activity.outcome), trimmed(activity.note));
        let mut errors = Vec::new();
        check_length(&mut errors, "outcome", outcome.as_deref(), MAX_OUTCOME);
        check_length(&mut errors, "note", note.as_deref(), MAX_NOTE);
        if !errors.is_empty() {
            return Err(OpsError::Invalid(errors).into());
        }
        authorize(&self.load(id).await?.publisher)?;
        let now = self.clock.now();
        let entry = Activity {
            id: ActivityId::generate(now),
            kind: activity.kind,
            outcome,
            note,
            next_touch_at: activity.next_touch_at,
            by: actor.id.as_str().to_owned(),
            at: now,
        };
        let updated = match self.storage.add_activity(id, &entry).await {
            Err(StorageError::NotFound) => return Err(OpsError::NotFound("opportunity").into()),
            other => other.map_err(OpsError::from)?,
        };
        let audit = self.audit_entry(actor, Some(&updated.publisher), AuditAction::OpportunityActivity);
        self.record(audit.object(AuditObject::Opportunity(id.clone()))).await?;
        Ok(self.view(updated).await?)
    }

    /// Ticks (or unticks) an item of the publisher's checklist on an opportunity;
    /// `authorize` as for [`Ops::update_opportunity`].
    ///
    /// # Errors
    /// An item not on the checklist is not found; what `authorize` refuses; storage failures.
    pub async fn tick_checklist<E: From<OpsError>>(
        &self,
        actor: &Actor,
        id: &OpportunityId,
        item: &str,
        done: bool,
        authorize: impl Fn(&PublisherId) -> Result<(), E>,
    ) -> Result<OpportunityView, E> {
        let current = self.load(id).await?;
        authorize(&current.publisher)?;
        let settings = self.sales_settings(&current.publisher).await?;
        if !is_checklist_item(item) || !settings.checklist.iter().any(|i| i == item) {
            return Err(OpsError::NotFound("checklist item").into());
        }
        let tick = ChecklistTick {
            opportunity: id.clone(),
            item: item.to_owned(),
            done,
            by: actor.id.as_str().to_owned(),
            at: self.clock.now(),
        };
        let updated = match self.storage.tick_checklist(&tick).await {
            Err(StorageError::NotFound) => return Err(OpsError::NotFound("opportunity").into()),
            other => other.map_err(OpsError::from)?,
        };
        let audit = self.audit_entry(actor, Some(&updated.publisher), AuditAction::OpportunityChecklist);
        self.record(audit.object(AuditObject::Opportunity(id.clone()))).await?;
        Ok(OpportunityView { opportunity: updated, target: settings.follow_up_target, now: self.clock.now() })
    }

    /// The KPI report of a publisher (the caller checks access and records the read).
    ///
    /// # Errors
    /// Unknown publisher; storage failures.
    pub async fn kpis(&self, mut query: KpiQuery) -> OpsResult<KpiReport> {
        self.known_publisher(&query.publisher).await?;
        query.now = self.clock.now();
        Ok(self.storage.kpis(&query).await?)
    }

    /// Takes the sales notices due now and sends them by the publishers' notification
    /// destinations (e-mail): an assignment to its owner only, a breach to its owner and to
    /// every notification destination's own recipients. Each notice is taken once, so it is
    /// sent at most once; a failed send is logged and not retried (the opportunity itself
    /// shows the assignment and the breach). Returns how many notices were taken.
    ///
    /// # Errors
    /// Storage failures while taking them.
    pub async fn send_sales_notices(&self) -> OpsResult<usize> {
        let notices = self.storage.take_sales_notices(self.clock.now(), 200).await?;
        for notice in &notices {
            if let Err(e) = self.send_sales_notice(notice).await {
                tracing::warn!(opportunity.id = %notice.opportunity.id, error = %e, "a sales notice could not be sent");
            }
        }
        Ok(notices.len())
    }

    async fn send_sales_notice(&self, notice: &SalesNotice) -> OpsResult<()> {
        let opp = &notice.opportunity;
        let owner_email = match &opp.owner {
            Some(owner) => match self.storage.get_user(owner).await {
                Ok(user) => Some(user.email),
                Err(StorageError::NotFound) => None,
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let to_publisher = notice.kind == SalesNoticeKind::SlaBreached;
        if owner_email.is_none() && !to_publisher {
            return Ok(());
        }
        let catalog = self.catalog(&opp.publisher).await?;
        let notifiers: Vec<_> =
            catalog.destinations.iter().filter(|d| routing::hears_notices(d, &self.destinations)).collect();
        if notifiers.is_empty() {
            tracing::info!(opportunity.id = %opp.id, "no notification destination to send a sales notice by");
            return Ok(());
        }
        let lead = match opp.lead_ids.first() {
            Some(id) => Some(Box::new(self.storage.get_lead(id).await?.lead)),
            None => None,
        };
        let mut owner_told = false;
        for d in notifiers {
            let mail = SalesMail {
                kind: notice.kind,
                opportunity: opp.id.clone(),
                offer: opp.offer.clone(),
                first_touch_due_at: opp.first_touch_due_at,
                owner_email: if owner_told { None } else { owner_email.clone() },
                to_publisher,
                lead: lead.clone(),
            };
            if mail.owner_email.is_none() && !to_publisher {
                break;
            }
            let sent = match self.destinations.build(d) {
                Ok(destination) => destination.notify(&Notice::Sales(Box::new(mail))).await,
                Err(e) => Err(e),
            };
            match sent {
                Ok(()) => owner_told = true,
                Err(e) => {
                    tracing::warn!(destination.id = %d.id, error.class = e.class.as_str(), "a sales notice could not be sent");
                }
            }
        }
        Ok(())
    }
}

/// The background task that sends sales notices every [`NOTICE_INTERVAL`] until `stop`.
pub fn sales_notice_task(
    ops: std::sync::Arc<Ops>,
    stop: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = ops.send_sales_notices().await {
                tracing::warn!(error = %e, "sales notices could not be taken; trying again later");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(NOTICE_INTERVAL) => {}
            }
        }
    })
}
