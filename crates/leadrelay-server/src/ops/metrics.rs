//! What `/metrics` reads from storage when scraped: each destination's outbox depth and how many
//! destinations are in each state. Read at most once per `telemetry.metrics_cache_ms` (one
//! grouped query), so however often a scraper asks, the database is not loaded.

use std::sync::Arc;

use leadrelay_core::Timestamp;
use leadrelay_core::storage::OutboxDepth;

use super::Ops;
use crate::telemetry::metrics::{DESTINATIONS, OUTBOX_DEPTH};

impl Ops {
    /// Sets the outbox-depth and destination-state gauges from storage (or from the read
    /// cached within the TTL). A storage failure keeps the gauges as they were and is logged:
    /// the scrape still answers with every other metric, and `/readyz` reports the storage.
    pub async fn publish_outbox_gauges(&self) {
        let depths = match self.outbox_depths.get(&()) {
            Some(d) => d,
            None => match self.storage.outbox_depths().await {
                Ok(d) => {
                    let d = Arc::new(d);
                    self.outbox_depths.insert((), Arc::clone(&d));
                    d
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the outbox depths for /metrics failed");
                    return;
                }
            },
        };
        let now = self.clock.now();
        let mut states = [("enabled", 0_u32), ("disabled", 0), ("paused", 0)];
        for d in depths.iter() {
            metrics::gauge!(OUTBOX_DEPTH, "publisher" => d.publisher.to_string(), "destination" => d.destination.to_string())
                .set(d.waiting as f64);
            states[state(d, now)].1 += 1;
        }
        for (state, n) in states {
            metrics::gauge!(DESTINATIONS, "state" => state).set(n);
        }
    }
}

/// Index into the state list: disabled, else paused while a throttle pause runs, else enabled
/// (a destination probing after its pause ended is enabled).
fn state(d: &OutboxDepth, now: Timestamp) -> usize {
    if !d.enabled {
        1
    } else if d.paused_until.is_some_and(|until| until > now) {
        2
    } else {
        0
    }
}
