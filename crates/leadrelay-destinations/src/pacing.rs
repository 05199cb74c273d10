//! Pacing a destination to its vendor's documented rate: a sliding window of the calls made,
//! kept in memory per destination (after a restart the window starts empty). A call beyond the
//! cap is not made: the caller answers "throttled" with the wait, so the lead is held, not lost.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use leadrelay_core::Timestamp;

/// At most `cap` calls per `window`.
#[derive(Debug)]
pub struct Pacer {
    cap: u32,
    window: Duration,
    sent: Mutex<VecDeque<Timestamp>>,
}

impl Pacer {
    /// A pacer allowing `cap` calls per `window`.
    pub fn new(cap: u32, window: Duration) -> Self {
        Self { cap, window, sent: Mutex::new(VecDeque::new()) }
    }

    /// Takes a slot at `now`, or says how long until one frees up.
    ///
    /// # Errors
    /// The wait until the oldest call in the window leaves it.
    pub fn take(&self, now: Timestamp) -> Result<(), Duration> {
        let mut sent = self.sent.lock().expect("pacer");
        while sent.front().is_some_and(|t| now.since(*t) >= self.window) {
            sent.pop_front();
        }
        if sent.len() >= self.cap as usize {
            let oldest = *sent.front().expect("a full window has a first call");
            return Err(self.window.saturating_sub(now.since(oldest)));
        }
        sent.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_beyond_the_cap_wait_until_the_window_moves() {
        let day = Duration::from_secs(86_400);
        let p = Pacer::new(2, day);
        let t0 = Timestamp::from_millis(0);
        assert!(p.take(t0).is_ok());
        assert!(p.take(t0.plus(Duration::from_secs(60))).is_ok());
        assert_eq!(p.take(t0.plus(Duration::from_secs(120))), Err(day - Duration::from_secs(120)));
        assert!(p.take(t0.plus(day)).is_ok(), "the first call left the window");
    }
}
