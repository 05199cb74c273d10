//! When a failed delivery is tried again. A pure function of the attempt count, the receiver's
//! `Retry-After` and a jitter sample that the caller draws, so it is tested without randomness.

use std::time::Duration;

use crate::clock::Timestamp;

/// The retry schedule and its limits.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delay before attempt n+1 after attempt n failed (n = 1…). Its length + 1 is the attempt cap.
    pub delays: Vec<Duration>,
    /// Uniform jitter as a fraction of each delay (0.2 = ±20 %).
    pub jitter: f64,
    /// The longest wait a `Retry-After` header can impose.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// SPEC §4: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, ±20 % jitter.
    fn default() -> Self {
        let s = Duration::from_secs;
        Self {
            delays: vec![s(5), s(300), s(1800), s(7200), s(18_000), s(36_000), s(36_000)],
            jitter: 0.2,
            max_retry_after: s(24 * 3600),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Try again at this time.
    RetryAt(Timestamp),
    /// The attempts are used up: dead letter.
    GiveUp,
}

impl RetryPolicy {
    /// The most attempts a delivery gets.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len()).unwrap_or(u32::MAX).saturating_add(1)
    }

    /// The decision after `attempts_made` counted attempts have failed (the one just made
    /// included). `jitter_sample` is uniform in `[-1, 1]`; `retry_after` is the receiver's wish.
    /// A `Retry-After` never shortens the schedule and is capped at `max_retry_after`.
    pub fn next(
        &self,
        attempts_made: u32,
        now: Timestamp,
        retry_after: Option<Duration>,
        jitter_sample: f64,
    ) -> RetryDecision {
        let Some(base) = attempts_made.checked_sub(1).and_then(|i| self.delays.get(i as usize)) else {
            return RetryDecision::GiveUp;
        };
        let factor = 1.0 + self.jitter * jitter_sample.clamp(-1.0, 1.0);
        let mut delay = base.mul_f64(factor.max(0.0));
        if let Some(wish) = retry_after {
            delay = delay.max(wish.min(self.max_retry_after));
        }
        RetryDecision::RetryAt(now.plus(delay))
    }

    /// The wait after a throttled attempt (`429`/`503` with `Retry-After`), which does not
    /// consume an attempt: the receiver's wish, at least one second, capped.
    pub fn throttled(&self, now: Timestamp, retry_after: Duration) -> Timestamp {
        now.plus(retry_after.clamp(Duration::from_secs(1), self.max_retry_after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: Timestamp = Timestamp::from_millis(1_000_000);

    fn at(d: RetryDecision) -> Duration {
        match d {
            RetryDecision::RetryAt(t) => t.since(NOW),
            RetryDecision::GiveUp => panic!("gave up"),
        }
    }

    #[test]
    fn the_default_schedule_follows_the_spec_without_jitter() {
        let p = RetryPolicy::default();
        let got: Vec<u64> = (1..=7).map(|n| at(p.next(n, NOW, None, 0.0)).as_secs()).collect();
        assert_eq!(got, [5, 300, 1800, 7200, 18_000, 36_000, 36_000]);
        assert_eq!(p.next(8, NOW, None, 0.0), RetryDecision::GiveUp);
        assert_eq!(p.max_attempts(), 8);
    }

    #[test]
    fn jitter_moves_the_delay_by_at_most_twenty_percent() {
        let p = RetryPolicy::default();
        assert_eq!(at(p.next(2, NOW, None, 1.0)).as_secs(), 360);
        assert_eq!(at(p.next(2, NOW, None, -1.0)).as_secs(), 240);
    }

    #[test]
    fn retry_after_lengthens_but_never_shortens_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(at(p.next(1, NOW, Some(Duration::from_secs(60)), 0.0)).as_secs(), 60);
        assert_eq!(at(p.next(2, NOW, Some(Duration::from_secs(60)), 0.0)).as_secs(), 300);
        assert_eq!(at(p.next(1, NOW, Some(Duration::from_secs(10 * 86_400)), 0.0)).as_secs(), 86_400);
        assert_eq!(p.throttled(NOW, Duration::ZERO).since(NOW).as_secs(), 1);
    }

    proptest! {
        #[test]
        fn delays_stay_within_the_jitter_band_and_the_cap_holds(n in 0u32..20, j in -1.0f64..=1.0, ra in proptest::option::of(0u64..200_000)) {
            let p = RetryPolicy::default();
            match p.next(n, NOW, ra.map(Duration::from_secs), j) {
                RetryDecision::GiveUp => prop_assert!(n == 0 || n >= p.max_attempts()),
                RetryDecision::RetryAt(t) => {
                    prop_assert!(n >= 1 && n < p.max_attempts());
                    let base = p.delays[(n - 1) as usize];
                    let d = t.since(NOW);
                    prop_assert!(d >= base.mul_f64(0.8).saturating_sub(Duration::from_millis(1)));
                    let upper = base.mul_f64(1.2).max(p.max_retry_after);
                    prop_assert!(d <= upper + Duration::from_millis(1));
                }
            }
        }

        #[test]
        fn delays_never_shrink_from_one_attempt_to_the_next_before_jitter(n in 1u32..7) {
            let p = RetryPolicy::default();
            prop_assert!(at(p.next(n + 1, NOW, None, 0.0)) >= at(p.next(n, NOW, None, 0.0)));
        }
    }
}
