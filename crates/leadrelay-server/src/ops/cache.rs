//! A small time-bounded cache for what every request reads and rarely changes (a publisher's
//! catalog, token and key lookups). Entries older than the TTL are read again, so changes made
//! by another process are seen within it; this process forgets entries itself when it changes them.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A map whose entries expire after `ttl`, holding at most `capacity` entries (when full it
/// starts over: the cache is an optimisation, and a flood of distinct keys must not grow it).
pub struct TtlCache<K, V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// An empty cache.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self { ttl, capacity, entries: Mutex::new(HashMap::new()) }
    }

    /// The value for `key`, if it is younger than the TTL.
    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().expect("cache lock");
        entries.get(key).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, v)| v.clone())
    }

    /// Stores `value` for `key`.
    pub fn insert(&self, key: K, value: V) {
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.len() >= self.capacity {
            entries.clear();
        }
        entries.insert(key, (Instant::now(), value));
    }

    /// Forgets `key`.
    pub fn remove(&self, key: &K) {
        self.entries.lock().expect("cache lock").remove(key);
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.entries.lock().expect("cache lock").clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_a_full_cache_starts_over() {
        let cache = TtlCache::new(Duration::from_millis(30), 2);
        cache.insert("a", 1);
        cache.insert("b", 2);
        assert_eq!(cache.get(&"a"), Some(1));
        cache.insert("c", 3);
        assert_eq!(cache.get(&"a"), None, "a full cache is cleared before the insert");
        assert_eq!(cache.get(&"c"), Some(3));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get(&"c"), None);
    }
}
