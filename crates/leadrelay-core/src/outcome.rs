//! What an attempt's result means for its delivery and its destination: delivered, retried on
//! the schedule, retried after a throttle pause of the whole destination, dead-lettered, or
//! dead with the destination disabled. Pure, so every path through it is tested here and the
//! worker only carries the decision out.

use std::time::Duration;

use crate::clock::Timestamp;
use crate::destination::ErrorClass;
use crate::health::DisablePolicy;
use crate::retry::{RetryDecision, RetryPolicy};
use crate::storage::NextState;

/// How an attempt ended, as far as the decision needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// The destination took the lead.
    Delivered,
    /// It failed with this class; `retry_after` is the receiver's wish, if it said one.
    Failed {
        /// How to handle it.
        class: ErrorClass,
        /// The receiver's `Retry-After`.
        retry_after: Option<Duration>,
    },
}

/// What was known about the delivery and its destination when the attempt started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptFacts {
    /// Attempts already counted against the schedule, before this one.
    pub attempts_before: u32,
    /// Since when the destination has failed without a success (`None`: it has not).
    pub failing_since: Option<Timestamp>,
    /// Failed attempts in a row before this one.
    pub consecutive_failures: u32,
    /// When this attempt started.
    pub started_at: Timestamp,
}

/// Why a destination is switched off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisableReason {
    /// The receiver answered `410 Gone`.
    Gone,
    /// It failed without a success since this time, for longer than the policy allows.
    FailingSince(Timestamp),
}

impl std::fmt::Display for DisableReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Gone => f.write_str("the receiver answered 410 Gone"),
            Self::FailingSince(t) => write!(f, "failing without a success since {t}"),
        }
    }
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The delivery's next state.
    pub next: NextState,
    /// Switch the destination off (its queue waits).
    pub disable: Option<DisableReason>,
    /// Pause the whole destination until then: the receiver asked us to slow down, so its other
    /// deliveries wait too, and one probe goes first when the pause ends.
    pub pause_destination_until: Option<Timestamp>,
}

impl Decision {
    /// Whether the delivery was given up (the publisher hears of it).
    pub fn is_dead_letter(&self) -> bool {
        self.next == NextState::Dead
    }

    /// What was decided, by a stable name (a metrics label): `delivered`, `retry` (on the
    /// schedule), `throttled` (the destination paused), `dead_letter`, or `disabled` (the
    /// destination switched off, which wins over what happens to the delivery itself).
    pub fn name(&self) -> &'static str {
        if self.disable.is_some() {
            return "disabled";
        }
        match self.next {
            NextState::Delivered => "delivered",
            NextState::RetryAt { .. } if self.pause_destination_until.is_some() => "throttled",
            NextState::RetryAt { .. } => "retry",
            NextState::Dead => "dead_letter",
        }
    }
}

/// Decides what follows an attempt. `jitter` is uniform in `[-1, 1]`, drawn by the caller.
pub fn decide(
    result: AttemptResult,
    facts: AttemptFacts,
    retry: &RetryPolicy,
    disable: &DisablePolicy,
    now: Timestamp,
    jitter: f64,
) -> Decision {
    let AttemptResult::Failed { class, retry_after } = result else {
        return Decision { next: NextState::Delivered, disable: None, pause_destination_until: None };
    };
    let (next, mut disable_reason, pause) = match class {
        ErrorClass::Gone => (NextState::Dead, Some(DisableReason::Gone), None),
        ErrorClass::Permanent => (NextState::Dead, None, None),
        ErrorClass::Throttled => {
            let until = retry.throttled(now, retry_after.unwrap_or_default());
            (NextState::RetryAt { at: until, counts: false }, None, Some(until))
        }
        ErrorClass::Transient => match retry.next(facts.attempts_before + 1, now, retry_after, jitter) {
            RetryDecision::RetryAt(at) => (NextState::RetryAt { at, counts: true }, None, None),
            RetryDecision::GiveUp => (NextState::Dead, None, None),
        },
    };
    let failing_since = facts.failing_since.unwrap_or(facts.started_at);
    if disable_reason.is_none() && disable.should_disable(Some(failing_since), facts.consecutive_failures + 1, now) {
        disable_reason = Some(DisableReason::FailingSince(failing_since));
    }
    Decision { next, disable: disable_reason, pause_destination_until: pause }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    fn facts(attempts_before: u32) -> AttemptFacts {
        AttemptFacts { attempts_before, failing_since: None, consecutive_failures: 0, started_at: NOW }
    }

    fn failed(class: ErrorClass, retry_after: Option<u64>) -> AttemptResult {
        AttemptResult::Failed { class, retry_after: retry_after.map(Duration::from_secs) }
    }

    fn class() -> impl Strategy<Value = ErrorClass> {
        prop_oneof![
            Just(ErrorClass::Transient),
            Just(ErrorClass::Throttled),
            Just(ErrorClass::Permanent),
            Just(ErrorClass::Gone)
        ]
    }

    #[test]
    fn gone_dead_letters_and_disables_and_permanent_only_dead_letters() {
        let (r, d) = (RetryPolicy::default(), DisablePolicy::default());
        let gone = decide(failed(ErrorClass::Gone, None), facts(0), &r, &d, NOW, 0.0);
        assert_eq!((gone.next, gone.disable), (NextState::Dead, Some(DisableReason::Gone)));
        let permanent = decide(failed(ErrorClass::Permanent, None), facts(0), &r, &d, NOW, 0.0);
        assert_eq!((permanent.next, permanent.disable), (NextState::Dead, None));
    }

    #[test]
    fn a_throttle_pauses_the_destination_for_the_receivers_wait_without_using_an_attempt() {
        let (r, d) = (RetryPolicy::default(), DisablePolicy::default());
        let t = decide(failed(ErrorClass::Throttled, Some(30)), facts(3), &r, &d, NOW, 0.7);
        let until = NOW.plus(Duration::from_secs(30));
        assert_eq!(t.next, NextState::RetryAt { at: until, counts: false });
        assert_eq!(t.pause_destination_until, Some(until));
    }

    #[test]
    fn five_days_of_failures_disable_the_destination() {
        let (r, d) = (RetryPolicy::default(), DisablePolicy::default());
        let since = NOW.minus(Duration::from_secs(5 * 86_400));
        let f = AttemptFacts { failing_since: Some(since), consecutive_failures: 19, ..facts(1) };
        let decision = decide(failed(ErrorClass::Transient, None), f, &r, &d, NOW, 0.0);
        assert_eq!(decision.disable, Some(DisableReason::FailingSince(since)));
        let success = decide(AttemptResult::Delivered, f, &r, &d, NOW, 0.0);
        assert_eq!(success, Decision { next: NextState::Delivered, disable: None, pause_destination_until: None });
    }

    #[test]
    fn each_decision_has_its_name() {
        let (r, d) = (RetryPolicy::default(), DisablePolicy::default());
        let name = |result, f| decide(result, f, &r, &d, NOW, 0.0).name();
        assert_eq!(name(AttemptResult::Delivered, facts(0)), "delivered");
        assert_eq!(name(failed(ErrorClass::Transient, None), facts(0)), "retry");
        assert_eq!(name(failed(ErrorClass::Transient, None), facts(r.max_attempts())), "dead_letter");
        assert_eq!(name(failed(ErrorClass::Throttled, Some(30)), facts(0)), "throttled");
        assert_eq!(name(failed(ErrorClass::Permanent, None), facts(0)), "dead_letter");
        assert_eq!(name(failed(ErrorClass::Gone, None), facts(0)), "disabled");
        let failing = AttemptFacts {
            failing_since: Some(NOW.minus(Duration::from_secs(5 * 86_400))),
            consecutive_failures: 19,
            ..facts(1)
        };
        assert_eq!(name(failed(ErrorClass::Transient, None), failing), "disabled", "even while it would retry");
    }

    proptest! {
        #[test]
        fn every_decision_keeps_the_rules(
            class in class(),
            attempts_before in 0u32..20,
            retry_after in proptest::option::of(0u64..200_000),
            jitter in -1.0f64..=1.0,
            failing_for_s in proptest::option::of(0u64..1_000_000),
            consecutive in 0u32..100,
        ) {
            let (r, d) = (RetryPolicy::default(), DisablePolicy::default());
            let f = AttemptFacts {
                attempts_before,
                failing_since: failing_for_s.map(|s| NOW.minus(Duration::from_secs(s))),
                consecutive_failures: consecutive,
                started_at: NOW,
            };
            let decision = decide(failed(class, retry_after), f, &r, &d, NOW, jitter);
            match decision.next {
                NextState::RetryAt { at, counts } => {
                    prop_assert!(at > NOW, "a retry is always later than now");
                    prop_assert!(at <= NOW.plus(r.max_retry_after.max(Duration::from_secs(36_000 * 2))));
                    prop_assert_eq!(counts, class == ErrorClass::Transient);
                    prop_assert!(class == ErrorClass::Transient || class == ErrorClass::Throttled);
                }
                NextState::Dead => prop_assert!(
                    class == ErrorClass::Permanent || class == ErrorClass::Gone || attempts_before + 1 >= r.max_attempts()
                ),
                NextState::Delivered => prop_assert!(false, "a failure is never delivered"),
            }
            prop_assert_eq!(decision.pause_destination_until.is_some(), class == ErrorClass::Throttled);
            if class == ErrorClass::Throttled {
                prop_assert_ne!(decision.next, NextState::Dead, "throttling never gives up a lead");
            }
            if class == ErrorClass::Gone {
                prop_assert_eq!(decision.disable, Some(DisableReason::Gone));
            }
        }

        #[test]
        fn a_success_never_disables_pauses_or_dead_letters(attempts_before in 0u32..20, consecutive in 0u32..100) {
            let f = AttemptFacts { failing_since: Some(Timestamp::from_millis(0)), consecutive_failures: consecutive, ..facts(attempts_before) };
            let decision = decide(AttemptResult::Delivered, f, &RetryPolicy::default(), &DisablePolicy::default(), NOW, 0.0);
            prop_assert_eq!(decision, Decision { next: NextState::Delivered, disable: None, pause_destination_until: None });
        }
    }
}
