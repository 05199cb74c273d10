//! What a publisher configures for its sales team: who is on it, how new opportunities are
//! assigned, the qualification checklist, the first-touch SLA and the follow-up target.
//! [`SalesSettings::check`] is the one place their rules live.

use crate::destination::FieldError;
use crate::ids::UserId;

/// The defaults follow the article this product comes from: a BANT checklist, first touch
/// within a day, 5 to 12 follow-ups.
pub const DEFAULT_CHECKLIST: [&str; 4] = ["budget", "authority", "need", "timeline"];

/// How many follow-ups an opportunity should get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowUpTarget {
    /// At least.
    pub min: u32,
    /// At most (more is not wrong, just a sign to stop).
    pub max: u32,
}

/// Working hours: the SLA clock runs only inside them, in the publisher's time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessHours {
    /// Working days, 1 = Monday … 7 = Sunday, ascending, no repeats.
    pub days: Vec<u8>,
    /// Start of the working day, minutes after midnight.
    pub start_minute: u16,
    /// End of the working day, minutes after midnight (after `start_minute`).
    pub end_minute: u16,
}

/// One publisher's sales settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesSettings {
    /// The people new opportunities are assigned to, in round-robin order.
    pub team: Vec<UserId>,
    /// Assign each new opportunity to the next person of `team`.
    pub round_robin: bool,
    /// Skip a person who already owns this many open opportunities (`None`: no cap).
    pub max_open_per_owner: Option<u32>,
    /// The qualification checklist, in order.
    pub checklist: Vec<String>,
    /// The first touch is due this many hours (working hours, with `business_hours`) after
    /// the opportunity opens.
    pub first_touch_sla_hours: u32,
    /// The follow-up target.
    pub follow_up_target: FollowUpTarget,
    /// IANA time zone name, e.g. `Europe/Lisbon`.
    pub time_zone: String,
    /// Working hours; `None`: the clock runs around the clock.
    pub business_hours: Option<BusinessHours>,
}

impl Default for SalesSettings {
    fn default() -> Self {
        Self {
            team: Vec::new(),
            round_robin: false,
            max_open_per_owner: None,
            checklist: DEFAULT_CHECKLIST.iter().map(|s| (*s).to_owned()).collect(),
            first_touch_sla_hours: 24,
            follow_up_target: FollowUpTarget { min: 5, max: 12 },
            time_zone: "UTC".to_owned(),
            business_hours: None,
        }
    }
}

/// The most people on one team and items on one checklist.
pub const MAX_TEAM: usize = 200;
/// The most checklist items.
pub const MAX_CHECKLIST: usize = 30;

impl SalesSettings {
    /// Every rule the settings break, by field path (team membership is checked by the caller,
    /// which knows the publisher's users).
    pub fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut err = |path: &str, rule: &str| errors.push(FieldError::new(path, rule));
        if self.team.len() > MAX_TEAM {
            err("team", "may name at most 200 people");
        }
        if self.team.iter().enumerate().any(|(i, u)| self.team[..i].contains(u)) {
            err("team", "names a person twice");
        }
        if self.round_robin && self.team.is_empty() {
            err("round_robin", "needs at least one person in team");
        }
        if self.max_open_per_owner == Some(0) {
            err("max_open_per_owner", "must be at least 1, or null for no cap");
        }
        if self.checklist.len() > MAX_CHECKLIST {
            err("checklist", "may hold at most 30 items");
        }
        for (i, item) in self.checklist.iter().enumerate() {
            if !is_checklist_item(item) {
                err(&format!("checklist[{i}]"), "must be 1-40 characters of lowercase letters, digits, '-' and '_'");
            } else if self.checklist[..i].contains(item) {
                err(&format!("checklist[{i}]"), "repeats an earlier item");
            }
        }
        if !(1..=720).contains(&self.first_touch_sla_hours) {
            err("first_touch_sla_hours", "must be between 1 and 720");
        }
        let t = self.follow_up_target;
        if t.max == 0 || t.min > t.max || t.max > 1000 {
            err("follow_up_target", "needs 0 <= min <= max, and max between 1 and 1000");
        }
        if crate::sales::sla::time_zone(&self.time_zone).is_none() {
            err("time_zone", "must be an IANA time zone name such as Europe/Lisbon or UTC");
        }
        if let Some(h) = &self.business_hours {
            if h.days.is_empty() || h.days.iter().any(|d| !(1..=7).contains(d)) || !h.days.is_sorted_by(|a, b| a < b) {
                err("business_hours.days", "must list working days once each, from mon to sun");
            }
            if h.start_minute >= h.end_minute || h.end_minute > 24 * 60 {
                err("business_hours", "start must be before end, both within the day (HH:MM)");
            }
        }
        errors
    }
}

/// A checklist item's name rule: 1–40 of `a-z 0-9 - _`, so it can be a path segment.
pub fn is_checklist_item(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass_their_own_rules() {
        assert!(SalesSettings::default().check().is_empty());
    }

    #[test]
    fn each_broken_rule_is_named() {
        let s = SalesSettings {
            round_robin: true,
            max_open_per_owner: Some(0),
            checklist: vec!["Budget".into(), "need".into(), "need".into()],
            first_touch_sla_hours: 0,
            follow_up_target: FollowUpTarget { min: 9, max: 3 },
            time_zone: "Mars/Olympus".into(),
            business_hours: Some(BusinessHours { days: vec![3, 1], start_minute: 600, end_minute: 540 }),
            ..SalesSettings::default()
        };
        let paths: Vec<String> = s.check().into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "round_robin",
                "max_open_per_owner",
                "checklist[0]",
                "checklist[2]",
                "first_touch_sla_hours",
                "follow_up_target",
                "time_zone",
                "business_hours.days",
                "business_hours"
            ]
        );
    }
}
