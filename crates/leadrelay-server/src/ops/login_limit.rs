//! How many failed sign-ins are allowed: per e-mail address and per client IP address, within a
//! sliding window, in the memory of this process (so each process of a deployment counts its
//! own; docs/OPERATIONS.md says so). Addresses are kept as SHA-256 digests, never as typed.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use leadrelay_core::Timestamp;

use crate::auth::hash_secret;

/// Failed sign-ins counted per address and per client within this window.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures of one address in the window after which it is refused until the oldest ages out.
pub const PER_ADDRESS: usize = 5;
/// Failures from one client IP address in the window (any addresses) before it is refused.
pub const PER_CLIENT: usize = 20;
/// Past this many counted keys, keys whose failures all aged out are dropped.
const PRUNE_ABOVE: usize = 50_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Address(String),
    Client(IpAddr),
}

/// The failures per key, oldest first, within the window.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<Key, VecDeque<Timestamp>>>,
}

impl LoginLimiter {
    fn keys(address: &str, client: Option<IpAddr>) -> impl Iterator<Item = (Key, usize)> {
        let address = (Key::Address(hash_secret(address)), PER_ADDRESS);
        std::iter::once(address).chain(client.map(|ip| (Key::Client(ip), PER_CLIENT)))
    }

    /// Whether a sign-in of `address` from `client` may be tried at `now`.
    ///
    /// # Errors
    /// How long until it may (whole seconds, at least one), when the address or the client
    /// used up its failures in the window.
    pub fn check(&self, address: &str, client: Option<IpAddr>, now: Timestamp) -> Result<(), Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut wait = Duration::ZERO;
        for (key, limit) in Self::keys(address, client) {
            let Some(times) = failures.get_mut(&key) else { continue };
            forget_old(times, now);
            if times.len() >= limit
                && let Some(oldest) = times.front()
            {
                let until = oldest.plus(WINDOW);
                wait = wait.max(Duration::from_millis(u64::try_from(until.as_millis() - now.as_millis()).unwrap_or(0)));
            }
        }
        if wait.is_zero() {
            return Ok(());
        }
        Err(Duration::from_secs(wait.as_millis().div_ceil(1000).max(1).try_into().unwrap_or(u64::MAX)))
    }

    /// Counts a failed sign-in of `address` from `client` at `now`.
    pub fn failed(&self, address: &str, client: Option<IpAddr>, now: Timestamp) {
        let mut failures = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if failures.len() > PRUNE_ABOVE {
            failures.retain(|_, times| {
                forget_old(times, now);
                !times.is_empty()
            });
        }
        for (key, limit) in Self::keys(address, client) {
            let times = failures.entry(key).or_default();
            forget_old(times, now);
            times.push_back(now);
            // Only the last `limit` failures decide anything: keep no more.
            while times.len() > limit {
                times.pop_front();
            }
        }
    }

    /// A sign-in of `address` succeeded: its failures are forgotten (the client's are not).
    pub fn succeeded(&self, address: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        failures.remove(&Key::Address(hash_secret(address)));
    }
}

fn forget_old(times: &mut VecDeque<Timestamp>, now: Timestamp) {
    while times.front().is_some_and(|t| t.plus(WINDOW) <= now) {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);
    const ADA: &str = "ada@quillworks.io";

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, last]))
    }

    #[test]
    fn an_address_is_refused_after_five_failures_until_the_oldest_ages_out() {
        let limiter = LoginLimiter::default();
        for i in 0..PER_ADDRESS {
            assert_eq!(limiter.check(ADA, ip(i as u8), T0), Ok(()));
            limiter.failed(ADA, ip(i as u8), T0.plus(Duration::from_secs(i as u64 * 60)));
        }
        let now = T0.plus(Duration::from_secs(300));
        assert_eq!(limiter.check(ADA, ip(99), now), Err(WINDOW - Duration::from_secs(300)), "from any client");
        assert_eq!(limiter.check("grace@quillworks.io", ip(99), now), Ok(()), "another address is not refused");
        assert_eq!(limiter.check(ADA, ip(99), T0.plus(WINDOW)), Ok(()), "the first failure aged out");
    }

    #[test]
    fn a_client_is_refused_after_twenty_failures_whatever_the_addresses() {
        let limiter = LoginLimiter::default();
        for i in 0..PER_CLIENT {
            limiter.failed(&format!("person{i}@quillworks.io"), ip(1), T0);
        }
        assert!(limiter.check("new@quillworks.io", ip(1), T0).is_err());
        assert_eq!(limiter.check("new@quillworks.io", ip(2), T0), Ok(()));
        assert_eq!(limiter.check("new@quillworks.io", None, T0), Ok(()), "no client address: only the address counts");
    }

    #[test]
    fn a_success_forgets_the_addresses_failures_and_waits_are_whole_seconds() {
        let limiter = LoginLimiter::default();
        for _ in 0..PER_ADDRESS {
            limiter.failed(ADA, ip(1), T0);
        }
        let wait = limiter.check(ADA, ip(1), T0.plus(Duration::from_millis(1500))).unwrap_err();
        assert_eq!(wait, Duration::from_secs(WINDOW.as_secs() - 1), "rounded up");
        limiter.succeeded(ADA);
        assert_eq!(limiter.check(ADA, ip(1), T0), Ok(()));
    }
}
