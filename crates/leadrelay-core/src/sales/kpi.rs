//! The figures a sales manager watches, per period and optionally per offer, source or action.
//! A backend only selects the facts (one row per opportunity, one per delivery, one per lead or
//! a count per day) and feeds them to [`KpiAccumulator`]; the arithmetic lives here, once, so
//! every backend reports the same.
//!
//! Definitions (rates are `None` when nothing could be counted):
//! - funnel: opportunities by current status;
//! - contact rate: opportunities touched at least once / opportunities;
//! - time to first touch: hours from opening to the first call, e-mail or meeting (p50, p90 by
//!   nearest rank over the touched ones), and the touched ones counted in the buckets of
//!   [`FIRST_TOUCH_BUCKET_HOURS`] for a histogram;
//! - SLA breach rate: breached / opportunities whose SLA is decided (touched, or past due);
//! - qualification rate: opportunities ever qualified / opportunities;
//! - win rate: won / closed (won, lost, disqualified);
//! - follow-ups per won: touches logged on won opportunities / won opportunities;
//! - destination health: delivered / attempts counted against the retry schedule, the p95 of
//!   the time from a lead's arrival to its delivery, and the dead letters;
//! - leads per day: real leads received per UTC day, source and action (every real lead, so
//!   duplicates and do-not-contact ones too: what arrived, not what became work).

use std::collections::BTreeMap;

use crate::clock::Timestamp;
use crate::ids::{DestinationId, PublisherId};
use crate::offer::OfferId;
use crate::sales::opportunity::{OpportunityStatus, sla_breached};
use crate::storage::DeliveryStatus;

/// Upper bounds, in hours, of the buckets of the first-touch histogram; one more bucket holds
/// everything at or above the last bound.
pub const FIRST_TOUCH_BUCKET_HOURS: [u32; 5] = [1, 4, 8, 24, 72];

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// What to count. Test leads never count: they open no opportunity, and their deliveries are
/// left out.
#[derive(Debug, Clone)]
pub struct KpiQuery {
    /// The publisher.
    pub publisher: PublisherId,
    /// Opportunities opened (and leads received) at or after.
    pub since: Option<Timestamp>,
    /// … and before.
    pub until: Option<Timestamp>,
    /// Only this offer.
    pub offer: Option<OfferId>,
    /// Only this source (marketplace spelling of the opening lead).
    pub source: Option<String>,
    /// Only this action code (of the opening lead, any case).
    pub action: Option<String>,
    /// The same figures per offer, source or action, too.
    pub group_by: Option<KpiGroup>,
    /// Now, for SLAs not yet decided.
    pub now: Timestamp,
}

impl KpiQuery {
    /// Every opportunity and delivery of `publisher`, all time, ungrouped; set the filters with
    /// struct update syntax. `now` is the epoch until the caller (or `Ops::kpis`) sets it.
    pub fn new(publisher: PublisherId) -> Self {
        Self {
            publisher,
            since: None,
            until: None,
            offer: None,
            source: None,
            action: None,
            group_by: None,
            now: Timestamp::default(),
        }
    }
}

/// What the per-group figures are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KpiGroup {
    /// The offer id.
    Offer,
    /// The source of the opening lead.
    Source,
    /// The action code of the opening lead.
    Action,
}

impl KpiGroup {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Offer => "offer",
            Self::Source => "source",
            Self::Action => "action",
        }
    }

    /// The rule a wrong name breaks, for error messages.
    pub const RULE: &'static str = "must be offer, source or action";

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Offer, Self::Source, Self::Action].into_iter().find(|g| g.as_str() == s)
    }
}

/// One opportunity, as the KPIs see it.
#[derive(Debug, Clone)]
pub struct OpportunityFact {
    /// Current status.
    pub status: OpportunityStatus,
    /// Opened.
    pub opened_at: Timestamp,
    /// First touch due.
    pub first_touch_due_at: Timestamp,
    /// First touch.
    pub first_touched_at: Option<Timestamp>,
    /// Ever qualified (or won).
    pub qualified: bool,
    /// Touches logged.
    pub follow_ups: u32,
    /// Offer id, source and action of the opening lead: the grouping keys.
    pub offer: Option<String>,
    /// Source.
    pub source: String,
    /// Action code.
    pub action: Option<String>,
}

/// One delivery of a real lead, as the KPIs see it.
#[derive(Debug, Clone)]
pub struct DeliveryFact {
    /// Destination.
    pub destination: DestinationId,
    /// State.
    pub status: DeliveryStatus,
    /// Attempts counted against the schedule.
    pub attempts: u32,
    /// Milliseconds from the lead's arrival to its delivery (delivered ones).
    pub lag_ms: Option<i64>,
}

/// The figures of one set of opportunities.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// Opportunities by status (every status, 0 included).
    pub funnel: BTreeMap<&'static str, u64>,
    /// Opportunities counted.
    pub opportunities: u64,
    /// Touched / all.
    pub contact_rate: Option<f64>,
    /// Hours to the first touch, median.
    pub first_touch_hours_p50: Option<f64>,
    /// Hours to the first touch, 90th percentile.
    pub first_touch_hours_p90: Option<f64>,
    /// Breached / decided.
    pub sla_breach_rate: Option<f64>,
    /// Ever qualified / all.
    pub qualification_rate: Option<f64>,
    /// Won / closed.
    pub win_rate: Option<f64>,
    /// Touches on won / won.
    pub follow_ups_per_won: Option<f64>,
}

/// One destination's health.
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationHealth {
    /// Destination.
    pub destination: DestinationId,
    /// Delivered / attempts.
    pub success_rate: Option<f64>,
    /// 95th percentile of arrival-to-delivery, milliseconds.
    pub p95_lag_ms: Option<i64>,
    /// Dead letters.
    pub dead_letters: u64,
    /// Deliveries counted.
    pub deliveries: u64,
}

/// Real leads received on one UTC day with one source and action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyLeads {
    /// The UTC date, `YYYY-MM-DD`.
    pub day: String,
    /// Source (marketplace spelling).
    pub source: String,
    /// Action code, when the lead had one.
    pub action: Option<String>,
    /// Leads counted.
    pub leads: u64,
}

/// Everything `GET /v1/publishers/{p}/kpis` answers.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiReport {
    /// All the selected opportunities.
    pub overall: Figures,
    /// Per group key, by key (`None` when no grouping was asked). A missing key is `""`.
    pub by: Option<Vec<(String, Figures)>>,
    /// Per destination of the publisher, by id.
    pub destinations: Vec<DestinationHealth>,
    /// Touched opportunities by hours to first touch: `FIRST_TOUCH_BUCKET_HOURS.len() + 1`
    /// counts (`[0,1)`, `[1,4)`, … `[72,∞)`), of all the selected opportunities.
    pub first_touch_histogram: Vec<u64>,
    /// Real (not test) leads of the period and filters, per UTC day, source and action, in
    /// that order.
    pub leads_per_day: Vec<DailyLeads>,
}

#[derive(Debug, Default)]
struct Tally {
    funnel: [u64; 6],
    touched: u64,
    first_touch_ms: Vec<i64>,
    decided: u64,
    breached: u64,
    qualified: u64,
    won: u64,
    closed: u64,
    won_follow_ups: u64,
}

impl Tally {
    fn add(&mut self, f: &OpportunityFact, now: Timestamp) {
        let i = OpportunityStatus::ALL.iter().position(|s| *s == f.status).unwrap_or(0);
        self.funnel[i] += 1;
        if let Some(t) = f.first_touched_at {
            self.touched += 1;
            self.first_touch_ms.push((t.as_millis() - f.opened_at.as_millis()).max(0));
        }
        if f.first_touched_at.is_some() || now > f.first_touch_due_at {
            self.decided += 1;
            self.breached += u64::from(sla_breached(f.first_touch_due_at, f.first_touched_at, now));
        }
        self.qualified += u64::from(f.qualified || f.status == OpportunityStatus::Won);
        if f.status.is_closed() {
            self.closed += 1;
        }
        if f.status == OpportunityStatus::Won {
            self.won += 1;
            self.won_follow_ups += u64::from(f.follow_ups);
        }
    }

    fn figures(mut self) -> Figures {
        let total: u64 = self.funnel.iter().sum();
        let rate = |n: u64, d: u64| (d > 0).then(|| n as f64 / d as f64);
        self.first_touch_ms.sort_unstable();
        let hours = |q: f64| nearest_rank(&self.first_touch_ms, q).map(|ms| ms as f64 / HOUR_MS as f64);
        Figures {
            funnel: OpportunityStatus::ALL.iter().zip(self.funnel).map(|(s, n)| (s.as_str(), n)).collect(),
            opportunities: total,
            contact_rate: rate(self.touched, total),
            first_touch_hours_p50: hours(0.5),
            first_touch_hours_p90: hours(0.9),
            sla_breach_rate: rate(self.breached, self.decided),
            qualification_rate: rate(self.qualified, total),
            win_rate: rate(self.won, self.closed),
            follow_ups_per_won: rate(self.won_follow_ups, self.won),
        }
    }
}

/// Counts first-touch times (milliseconds) into the buckets of [`FIRST_TOUCH_BUCKET_HOURS`].
fn first_touch_histogram(first_touch_ms: &[i64]) -> Vec<u64> {
    let mut counts = vec![0; FIRST_TOUCH_BUCKET_HOURS.len() + 1];
    for &ms in first_touch_ms {
        let bucket = FIRST_TOUCH_BUCKET_HOURS
            .iter()
            .position(|&h| ms < i64::from(h) * HOUR_MS)
            .unwrap_or(FIRST_TOUCH_BUCKET_HOURS.len());
        counts[bucket] += 1;
    }
    counts
}

/// The `q` quantile of sorted values by nearest rank (`None` when empty).
pub fn nearest_rank(sorted: &[i64], q: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[derive(Debug, Default)]
struct DeliveryTally {
    deliveries: u64,
    delivered: u64,
    attempts: u64,
    dead: u64,
    lags: Vec<i64>,
}

/// Collects facts one at a time (a backend streams them from its query) and makes the report.
#[derive(Debug)]
pub struct KpiAccumulator {
    group_by: Option<KpiGroup>,
    now: Timestamp,
    overall: Tally,
    groups: BTreeMap<String, Tally>,
    destinations: BTreeMap<DestinationId, DeliveryTally>,
    /// Leads by UTC day (days since the epoch), then by source and action in arrival order: a
    /// day has a few of those, found without allocating, since a backend may feed every lead.
    daily_leads: BTreeMap<i64, Vec<(String, Option<String>, u64)>>,
}

impl KpiAccumulator {
    /// For a query.
    pub fn new(query: &KpiQuery) -> Self {
        Self {
            group_by: query.group_by,
            now: query.now,
            overall: Tally::default(),
            groups: BTreeMap::new(),
            destinations: BTreeMap::new(),
            daily_leads: BTreeMap::new(),
        }
    }

    /// Counts an opportunity.
    pub fn opportunity(&mut self, fact: &OpportunityFact) {
        self.overall.add(fact, self.now);
        if let Some(g) = self.group_by {
            let key = match g {
                KpiGroup::Offer => fact.offer.clone(),
                KpiGroup::Source => Some(fact.source.clone()),
                KpiGroup::Action => fact.action.clone(),
            };
            self.groups.entry(key.unwrap_or_default()).or_default().add(fact, self.now);
        }
    }

    /// Makes sure a destination is listed even when it delivered nothing in the period.
    pub fn destination(&mut self, id: DestinationId) {
        self.destinations.entry(id).or_default();
    }

    /// Counts a delivery.
    pub fn delivery(&mut self, fact: DeliveryFact) {
        let t = self.destinations.entry(fact.destination).or_default();
        t.deliveries += 1;
        t.attempts += u64::from(fact.attempts);
        match fact.status {
            DeliveryStatus::Delivered => {
                t.delivered += 1;
                if let Some(lag) = fact.lag_ms {
                    t.lags.push(lag.max(0));
                }
            }
            DeliveryStatus::Dead => t.dead += 1,
            DeliveryStatus::Pending => {}
        }
    }

    /// Counts `leads` real leads received on the UTC day of `received_at` with `source` and
    /// `action` (a backend may pass one lead at a time or a count per day); counts of one day,
    /// source and action add up.
    pub fn daily_leads(&mut self, received_at: Timestamp, source: &str, action: Option<&str>, leads: u64) {
        let day = self.daily_leads.entry(received_at.as_millis().div_euclid(DAY_MS)).or_default();
        match day.iter_mut().find(|(s, a, _)| s == source && a.as_deref() == action) {
            Some((_, _, n)) => *n += leads,
            None => day.push((source.to_owned(), action.map(str::to_owned), leads)),
        }
    }

    /// The report.
    pub fn finish(self) -> KpiReport {
        let by = self.group_by.map(|_| self.groups.into_iter().map(|(k, t)| (k, t.figures())).collect());
        let destinations = self
            .destinations
            .into_iter()
            .map(|(destination, mut t)| {
                t.lags.sort_unstable();
                DestinationHealth {
                    destination,
                    success_rate: (t.attempts > 0).then(|| t.delivered as f64 / t.attempts as f64),
                    p95_lag_ms: nearest_rank(&t.lags, 0.95),
                    dead_letters: t.dead,
                    deliveries: t.deliveries,
                }
            })
            .collect();
        let leads_per_day = self
            .daily_leads
            .into_iter()
            .flat_map(|(day, mut counts)| {
                counts.sort_unstable();
                let (y, m, d) = Timestamp::from_millis(day * DAY_MS).date();
                let day = format!("{y:04}-{m:02}-{d:02}");
                counts.into_iter().map(move |(source, action, leads)| DailyLeads {
                    day: day.clone(),
                    source,
                    action,
                    leads,
                })
            })
            .collect();
        KpiReport {
            first_touch_histogram: first_touch_histogram(&self.overall.first_touch_ms),
            overall: self.overall.figures(),
            by,
            destinations,
            leads_per_day,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(status: OpportunityStatus, touched_after_h: Option<i64>, follow_ups: u32, source: &str) -> OpportunityFact {
        let h = 3_600_000;
        OpportunityFact {
            status,
            opened_at: Timestamp::from_millis(0),
            first_touch_due_at: Timestamp::from_millis(24 * h),
            first_touched_at: touched_after_h.map(|n| Timestamp::from_millis(n * h)),
            qualified: matches!(status, OpportunityStatus::Qualified | OpportunityStatus::Won),
            follow_ups,
            offer: None,
            source: source.into(),
            action: None,
        }
    }

    fn query(group_by: Option<KpiGroup>) -> KpiQuery {
        KpiQuery {
            group_by,
            now: Timestamp::from_millis(48 * 3_600_000),
            ..KpiQuery::new(PublisherId::parse("p").unwrap())
        }
    }

    #[test]
    fn the_figures_follow_their_definitions() {
        use OpportunityStatus::*;
        let mut acc = KpiAccumulator::new(&query(Some(KpiGroup::Source)));
        acc.opportunity(&fact(New, None, 0, "AppSource")); // overdue: breached
        acc.opportunity(&fact(Contacted, Some(2), 1, "AppSource"));
        acc.opportunity(&fact(Won, Some(30), 6, "AzureMarketplace")); // touched late
        acc.opportunity(&fact(Lost, Some(4), 2, "AppSource"));
        let r = acc.finish();
        let o = &r.overall;
        assert_eq!(o.opportunities, 4);
        assert_eq!(o.funnel["new"], 1);
        assert_eq!(o.funnel["won"], 1);
        assert_eq!(o.funnel["disqualified"], 0);
        assert_eq!(o.contact_rate, Some(0.75));
        assert_eq!(o.first_touch_hours_p50, Some(4.0));
        assert_eq!(o.first_touch_hours_p90, Some(30.0));
        assert_eq!(o.sla_breach_rate, Some(0.5));
        assert_eq!(o.qualification_rate, Some(0.25));
        assert_eq!(o.win_rate, Some(0.5));
        assert_eq!(o.follow_ups_per_won, Some(6.0));
        assert_eq!(r.first_touch_histogram, [0, 1, 1, 0, 1, 0], "2 h, 4 h and 30 h; the untouched one is not in it");
        let by = r.by.unwrap();
        assert_eq!(
            by.iter().map(|(k, f)| (k.as_str(), f.opportunities)).collect::<Vec<_>>(),
            [("AppSource", 3), ("AzureMarketplace", 1)]
        );
    }

    #[test]
    fn nothing_counted_gives_no_rates_and_every_status() {
        let r = KpiAccumulator::new(&query(None)).finish();
        assert_eq!(r.overall.funnel.len(), 6);
        assert_eq!(r.overall.contact_rate, None);
        assert_eq!(r.overall.win_rate, None);
        assert!(r.by.is_none());
        assert_eq!(r.first_touch_histogram, [0; FIRST_TOUCH_BUCKET_HOURS.len() + 1]);
        assert!(r.leads_per_day.is_empty());
    }

    #[test]
    fn a_first_touch_on_a_bucket_bound_counts_in_the_bucket_above_it() {
        let mut acc = KpiAccumulator::new(&query(Some(KpiGroup::Source)));
        for h in [0, 1, 3, 4, 8, 23, 24, 71, 72, 500] {
            acc.opportunity(&fact(OpportunityStatus::Contacted, Some(h), 1, "AppSource"));
        }
        acc.opportunity(&fact(OpportunityStatus::New, None, 0, "AppSource"));
        let mut late = fact(OpportunityStatus::Contacted, Some(0), 1, "AppSource");
        late.first_touched_at = Some(Timestamp::from_millis(3_600_000 - 1));
        acc.opportunity(&late);
        let r = acc.finish();
        assert_eq!(r.first_touch_histogram, [2, 2, 1, 2, 2, 2]);
        assert_eq!(r.first_touch_histogram.iter().sum::<u64>(), 11, "every touched one, the untouched one left out");
    }

    #[test]
    fn leads_per_day_add_up_per_utc_day_source_and_action_in_that_order() {
        let mut acc = KpiAccumulator::new(&query(None));
        let day = 86_400_000;
        let at = |ms: i64| Timestamp::from_millis(1_795_000_000_000 / day * day + ms);
        acc.daily_leads(at(day + 5), "AzureMarketplace", Some("INS"), 1);
        acc.daily_leads(at(0), "AzureMarketplace", Some("PLT"), 2);
        acc.daily_leads(at(day - 1), "AzureMarketplace", Some("PLT"), 1);
        acc.daily_leads(at(10), "AppSource (SPZA)", None, 1);
        acc.daily_leads(at(20), "AzureMarketplace", Some("INS"), 3);
        let r = acc.finish();
        let rows: Vec<_> =
            r.leads_per_day.iter().map(|d| (d.day.as_str(), d.source.as_str(), d.action.as_deref(), d.leads)).collect();
        assert_eq!(
            rows,
            [
                ("2026-11-18", "AppSource (SPZA)", None, 1),
                ("2026-11-18", "AzureMarketplace", Some("INS"), 3),
                ("2026-11-18", "AzureMarketplace", Some("PLT"), 3),
                ("2026-11-19", "AzureMarketplace", Some("INS"), 1),
            ]
        );
    }

    #[test]
    fn destination_health_counts_attempts_lag_and_dead_letters() {
        let mut acc = KpiAccumulator::new(&query(None));
        let d = DestinationId::generate(Timestamp::from_millis(0));
        let quiet = DestinationId::generate(Timestamp::from_millis(1));
        acc.destination(quiet.clone());
        for lag in 1..=20 {
            acc.delivery(DeliveryFact {
                destination: d.clone(),
                status: DeliveryStatus::Delivered,
                attempts: 1,
                lag_ms: Some(lag),
            });
        }
        acc.delivery(DeliveryFact { destination: d.clone(), status: DeliveryStatus::Dead, attempts: 5, lag_ms: None });
        let r = acc.finish();
        let h = r.destinations.iter().find(|h| h.destination == d).unwrap();
        assert_eq!(h.success_rate, Some(20.0 / 25.0));
        assert_eq!(h.p95_lag_ms, Some(19));
        assert_eq!(h.dead_letters, 1);
        let q = r.destinations.iter().find(|h| h.destination == quiet).unwrap();
        assert_eq!((q.success_rate, q.deliveries), (None, 0));
    }

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(nearest_rank(&[], 0.5), None);
        assert_eq!(nearest_rank(&[7], 0.9), Some(7));
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 0.5), Some(2));
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 1.0), Some(4));
    }
}
