//! When a destination that keeps failing is switched off. Disabled destinations keep their
//! queue (paused), so nothing is lost; re-enabling delivers the backlog.

use std::time::Duration;

use crate::clock::Timestamp;

/// Thresholds for the automatic disable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisablePolicy {
    /// How long a destination may fail without one success.
    pub failing_for: Duration,
    /// And how many failed attempts in a row that takes at least.
    pub min_consecutive_failures: u32,
}

impl Default for DisablePolicy {
    /// SPEC §4: five days of continuous failure (and at least 20 failures, so that a
    /// destination that is rarely used is not disabled by two attempts five days apart).
    fn default() -> Self {
        Self { failing_for: Duration::from_secs(5 * 86_400), min_consecutive_failures: 20 }
    }
}

impl DisablePolicy {
    /// Whether a destination failing since `failing_since` with `consecutive_failures` failed
    /// attempts (the latest included) should now be disabled.
    pub fn should_disable(&self, failing_since: Option<Timestamp>, consecutive_failures: u32, now: Timestamp) -> bool {
        failing_since.is_some_and(|since| now.since(since) >= self.failing_for)
            && consecutive_failures >= self.min_consecutive_failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_days_of_failures_disable_a_destination() {
        let p = DisablePolicy::default();
        let start = Timestamp::from_millis(0);
        let later = start.plus(Duration::from_secs(5 * 86_400));
        assert!(p.should_disable(Some(start), 20, later));
        assert!(!p.should_disable(Some(start), 19, later));
        assert!(!p.should_disable(Some(start), 100, later.minus(Duration::from_secs(1))));
        assert!(!p.should_disable(None, 100, later));
    }
}
