//! An opportunity is one customer's interest in one offer (Dynamics calls it an opportunity,
//! HubSpot a deal). The customer's first lead for an offer opens it; later leads of the same
//! customer and offer join it and can only move its stage forward. Its status follows the sales
//! process, and [`StatusChange::check`] is the one rule every way of changing it goes through.

use std::fmt;

use crate::clock::Timestamp;
use crate::ids::{ActivityId, CustomerId, LeadId, OpportunityId, PublisherId, UserId};
use crate::lead::Lead;
use crate::offer::OfferId;
use crate::source::ActionCode;
use crate::stage::Stage;

/// Whether a lead is sales work: test leads, do-not-contact leads and leads with nobody to
/// contact (no customer: nothing to match on, or the person's data was withheld) open none.
pub fn opens_opportunity(lead: &Lead) -> bool {
    !lead.is_test
        && !lead.pii_withheld
        && !matches!(lead.action, Some(ActionCode::Dnc))
        && lead.customer_match().is_some()
}

/// How far along the funnel a stage is (`interest → trial → active`); stages outside the
/// funnel (unclassified, custom ones) rank 0 and never move an opportunity.
pub fn stage_rank(stage: &Stage) -> u8 {
    match stage.as_str() {
        "initial_interest" => 1,
        "trial" => 2,
        "active" => 3,
        _ => 0,
    }
}

/// Where an opportunity stands in the sales process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpportunityStatus {
    /// Nobody has reached the customer yet.
    New,
    /// Someone reached out (the first call, e-mail or meeting moves it here).
    Contacted,
    /// Budget, authority, need and timeline checked: worth the full process.
    Qualified,
    /// Closed: the customer bought.
    Won,
    /// Closed: the customer went elsewhere or stopped answering.
    Lost,
    /// Closed: not a real prospect (a student, a competitor, a wrong address).
    Disqualified,
}

impl OpportunityStatus {
    /// Every status, in process order.
    pub const ALL: [Self; 6] = [Self::New, Self::Contacted, Self::Qualified, Self::Won, Self::Lost, Self::Disqualified];

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Contacted => "contacted",
            Self::Qualified => "qualified",
            Self::Won => "won",
            Self::Lost => "lost",
            Self::Disqualified => "disqualified",
        }
    }

    /// The rule a wrong name breaks, for error messages.
    pub const RULE: &'static str = "must be new, contacted, qualified, won, lost or disqualified";

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Won, lost or disqualified.
    pub fn is_closed(self) -> bool {
        matches!(self, Self::Won | Self::Lost | Self::Disqualified)
    }

    /// Position in the process: closing statuses share the last place.
    fn order(self) -> u8 {
        match self {
            Self::New => 0,
            Self::Contacted => 1,
            Self::Qualified => 2,
            Self::Won | Self::Lost | Self::Disqualified => 3,
        }
    }
}

impl fmt::Display for OpportunityStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A requested status change, checked against the current status.
#[derive(Debug, Clone, Copy)]
pub struct StatusChange<'a> {
    /// Current status.
    pub from: OpportunityStatus,
    /// Requested status.
    pub to: OpportunityStatus,
    /// Why, as the person wrote it.
    pub reason: Option<&'a str>,
}

impl StatusChange<'_> {
    /// The rules of the sales process:
    /// - `lost` and `disqualified` need a reason;
    /// - `won` comes after `qualified`; skipping qualification needs a reason that says why;
    /// - going back (to an earlier status, or reopening a closed one) needs a reason;
    /// - staying where it is changes nothing and is always allowed.
    ///
    /// # Errors
    /// The rule the change breaks, for the `reason` or `status` field.
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        use OpportunityStatus::*;
        let has_reason = self.reason.is_some_and(|r| !r.trim().is_empty());
        if self.from == self.to {
            return Ok(());
        }
        match self.to {
            Lost | Disqualified if !has_reason => {
                Err(("reason", "is required when an opportunity is lost or disqualified"))
            }
            Won if self.from != Qualified && !has_reason => {
                Err(("reason", "is required to win an opportunity that was never qualified (say why)"))
            }
            _ if (self.from.is_closed() || self.to.order() < self.from.order()) && !has_reason => {
                Err(("reason", "is required to move an opportunity back or to reopen a closed one"))
            }
            _ => Ok(()),
        }
    }
}

/// What kind of follow-up an activity records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActivityKind {
    /// A phone call.
    Call,
    /// An e-mail written to the customer.
    Email,
    /// A meeting or demo.
    Meeting,
    /// An internal note: not a touch, and not counted as a follow-up.
    Note,
}

impl ActivityKind {
    /// Every kind.
    pub const ALL: [Self; 4] = [Self::Call, Self::Email, Self::Meeting, Self::Note];

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Call => "call",
            Self::Email => "email",
            Self::Meeting => "meeting",
            Self::Note => "note",
        }
    }

    /// The rule a wrong name breaks, for error messages.
    pub const RULE: &'static str = "must be call, email, meeting or note";

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Whether it reached the customer: the first touch stops the SLA clock, and touches are
    /// the follow-ups counted against the publisher's target.
    pub fn is_touch(self) -> bool {
        self != Self::Note
    }
}

/// One entry of the follow-up log. `outcome` and `note` are free text a person wrote, so they
/// are personal data to storage (sealed at rest, removed by an erasure).
#[derive(Clone, PartialEq, Eq)]
pub struct Activity {
    /// Id.
    pub id: ActivityId,
    /// What was done.
    pub kind: ActivityKind,
    /// What came of it ("left a voicemail", "demo booked").
    pub outcome: Option<String>,
    /// Anything else worth keeping.
    pub note: Option<String>,
    /// When to reach out next, if this set it.
    pub next_touch_at: Option<Timestamp>,
    /// Who logged it: an audit actor id (`usr_…`, `tok_…` or `admin`).
    pub by: String,
    /// When.
    pub at: Timestamp,
}

impl fmt::Debug for Activity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Activity").field("id", &self.id).field("kind", &self.kind).finish_non_exhaustive()
    }
}

/// One item of the qualification checklist, with who ticked it and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecklistEntry {
    /// The item's name, from the publisher's checklist.
    pub item: String,
    /// Ticked.
    pub done: bool,
    /// Who ticked (or unticked) it last: an audit actor id.
    pub by: Option<String>,
    /// When.
    pub at: Option<Timestamp>,
}

/// An opportunity as stored, with its checklist and follow-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opportunity {
    /// Id.
    pub id: OpportunityId,
    /// Owner publisher.
    pub publisher: PublisherId,
    /// The customer.
    pub customer_id: CustomerId,
    /// The offer (`None` when its leads named none that could be resolved).
    pub offer: Option<OfferId>,
    /// The furthest funnel stage of its leads.
    pub stage: Stage,
    /// Where the sales process stands.
    pub status: OpportunityStatus,
    /// Why it was won, lost, disqualified, or moved back.
    pub reason: Option<String>,
    /// Who follows it up.
    pub owner: Option<UserId>,
    /// Its leads, oldest first.
    pub lead_ids: Vec<LeadId>,
    /// Where the opening lead came from and what the customer did (for the KPIs).
    pub source: String,
    /// The opening lead's action code, as stored.
    pub action: Option<String>,
    /// The qualification checklist, in the publisher's order.
    pub checklist: Vec<ChecklistEntry>,
    /// The follow-up log, oldest first.
    pub activities: Vec<Activity>,
    /// Opened (its first lead's arrival).
    pub opened_at: Timestamp,
    /// When the first touch is due (the SLA).
    pub first_touch_due_at: Timestamp,
    /// The first call, e-mail or meeting.
    pub first_touched_at: Option<Timestamp>,
    /// When it was first qualified (or won): kept when it closes, for the qualification rate.
    pub qualified_at: Option<Timestamp>,
    /// When to reach out next.
    pub next_touch_at: Option<Timestamp>,
    /// When the owner and the publisher were told the SLA was breached (once).
    pub sla_notified_at: Option<Timestamp>,
    /// Last changed.
    pub updated_at: Timestamp,
    /// Incremented by every change: an update names the version it was checked against, so
    /// two people changing one opportunity at once cannot skip a rule.
    pub version: i64,
}

impl Opportunity {
    /// Touches logged (calls, e-mails, meetings): the follow-ups counted against the target.
    pub fn follow_up_count(&self) -> u32 {
        u32::try_from(self.activities.iter().filter(|a| a.kind.is_touch()).count()).unwrap_or(u32::MAX)
    }

    /// Whether the first touch came late, or has not come and is overdue at `now`.
    pub fn sla_breached(&self, now: Timestamp) -> bool {
        sla_breached(self.first_touch_due_at, self.first_touched_at, now)
    }
}

/// The SLA rule on its own (for storage queries and KPIs): the first touch after its due time,
/// or none by `now` when the due time has passed.
pub fn sla_breached(due: Timestamp, first_touched_at: Option<Timestamp>, now: Timestamp) -> bool {
    match first_touched_at {
        Some(t) => t > due,
        None => now > due,
    }
}

#[cfg(test)]
mod tests {
    use super::OpportunityStatus::*;
    use super::*;

    fn change(from: OpportunityStatus, to: OpportunityStatus, reason: Option<&str>) -> Result<(), &'static str> {
        StatusChange { from, to, reason }.check().map_err(|(field, _)| field)
    }

    #[test]
    fn the_process_moves_forward_freely() {
        assert!(change(New, Contacted, None).is_ok());
        assert!(change(Contacted, Qualified, None).is_ok());
        assert!(change(Qualified, Won, None).is_ok());
        assert!(change(New, Qualified, None).is_ok());
        assert!(change(Won, Won, None).is_ok(), "no change is always allowed");
    }

    #[test]
    fn closing_and_shortcuts_need_a_reason() {
        assert_eq!(change(Contacted, Lost, None), Err("reason"));
        assert_eq!(change(Qualified, Disqualified, Some("  ")), Err("reason"));
        assert!(change(Qualified, Disqualified, Some("student")).is_ok());
        assert_eq!(change(New, Won, None), Err("reason"), "no won before qualified");
        assert!(change(Contacted, Won, Some("signed at the booth")).is_ok());
    }

    #[test]
    fn going_back_needs_a_reason() {
        assert_eq!(change(Qualified, Contacted, None), Err("reason"));
        assert_eq!(change(Lost, Contacted, None), Err("reason"));
        assert_eq!(change(Won, Lost, None), Err("reason"));
        assert!(change(Lost, Qualified, Some("came back")).is_ok());
    }

    #[test]
    fn stages_rank_along_the_funnel() {
        let s = |n: &str| stage_rank(&Stage::parse(n).unwrap());
        assert!(s("initial_interest") < s("trial") && s("trial") < s("active"));
        assert_eq!(s("unclassified"), 0);
    }

    #[test]
    fn the_sla_is_breached_by_a_late_or_missing_first_touch() {
        let t = Timestamp::from_millis;
        assert!(!sla_breached(t(100), None, t(100)));
        assert!(sla_breached(t(100), None, t(101)));
        assert!(sla_breached(t(100), Some(t(150)), t(101)));
        assert!(!sla_breached(t(100), Some(t(99)), t(10_000)));
    }
}
