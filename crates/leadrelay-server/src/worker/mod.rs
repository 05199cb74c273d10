//! The delivery worker: claims due deliveries under a lease, sends each under a concurrency
//! cap, and records every attempt with the delivery's next state.
//!
//! Wake-ups: a `Notify` permit is stored by `notify_one`, so a lead committed while the worker
//! is busy is still seen on the next turn; between wake-ups the worker sleeps until the
//! earliest due retry or the poll interval, whichever is sooner.

mod attempt;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use leadrelay_core::destination::{Destination, DestinationError, Destinations};
use leadrelay_core::health::DisablePolicy;
use leadrelay_core::retry::RetryPolicy;
use leadrelay_core::storage::{ClaimRequest, Claimed, Storage};
use leadrelay_core::{Clock, DestinationId};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;

/// Worker settings.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Deliveries in flight.
    pub concurrency: u32,
    /// Deliveries in flight to one destination (across every process).
    pub per_destination: u32,
    /// Lease length.
    pub lease: Duration,
    /// Longest idle sleep.
    pub poll_interval: Duration,
    /// Shutdown grace.
    pub shutdown_grace: Duration,
    /// Retry schedule.
    pub retry: RetryPolicy,
    /// Auto-disable thresholds.
    pub disable: DisablePolicy,
}

impl WorkerSettings {
    /// From configuration.
    pub fn from_config(c: &Config) -> Self {
        Self {
            concurrency: c.worker.concurrency,
            per_destination: c.worker.per_destination_concurrency,
            lease: Duration::from_millis(c.worker.lease_ms),
            poll_interval: Duration::from_millis(c.worker.poll_interval_ms),
            shutdown_grace: Duration::from_millis(c.worker.shutdown_grace_ms),
            retry: c.retry_policy(),
            disable: c.disable_policy(),
        }
    }
}

/// The delivery worker.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    storage: Arc<dyn Storage>,
    destinations: Destinations,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    permits: Arc<Semaphore>,
    settings: WorkerSettings,
    /// Every task the worker starts (attempts and notices), so shutdown can wait for them.
    tasks: TaskTracker,
}

/// What one step of the worker did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StepOutcome {
    /// Deliveries claimed (and attempted).
    pub claimed: usize,
    /// Of those, delivered.
    pub delivered: usize,
    /// Of those, due again later (failed or throttled).
    pub retrying: usize,
    /// Of those, dead-lettered.
    pub dead: usize,
}

impl StepOutcome {
    /// Nothing was due.
    pub fn is_idle(&self) -> bool {
        self.claimed == 0
    }

    fn add(&mut self, other: Self) {
        self.claimed += other.claimed;
        self.delivered += other.delivered;
        self.retrying += other.retrying;
        self.dead += other.dead;
    }
}

impl Worker {
    /// A worker over these parts.
    pub fn new(
        storage: Arc<dyn Storage>,
        destinations: Destinations,
        clock: Arc<dyn Clock>,
        wake: Arc<Notify>,
        settings: WorkerSettings,
    ) -> Self {
        let permits = Arc::new(Semaphore::new(settings.concurrency as usize));
        Self {
            inner: Arc::new(Inner { storage, destinations, clock, wake, permits, settings, tasks: TaskTracker::new() }),
        }
    }

    /// One step: claims what is due now (up to the free concurrency), attempts it, records
    /// every result, and says what it did. Tests drive the worker with this and a manual clock.
    ///
    /// # Errors
    /// When claiming fails (recording failures leave the leases to expire, as in [`Worker::run`]).
    pub async fn run_once(&self) -> leadrelay_core::storage::Result<StepOutcome> {
        let free = self.inner.permits.available_permits();
        let groups = self.claim(free).await?;
        let mut running = tokio::task::JoinSet::new();
        for group in groups {
            let permit = Arc::clone(&self.inner.permits).acquire_owned().await.expect("the semaphore is never closed");
            let worker = self.clone();
            running.spawn(async move {
                let outcome = worker.attempt_batch_and_record(group).await;
                drop(permit);
                outcome
            });
        }
        let mut total = StepOutcome::default();
        while let Some(done) = running.join_next().await {
            total.add(done.unwrap_or_default());
        }
        Ok(total)
    }

    /// Runs until `shutdown` is cancelled, then waits up to the grace period for attempts in
    /// flight. Unfinished attempts keep their lease and are retried after it expires. Built on
    /// the same claim and attempt as [`Worker::run_once`], but starts attempts without waiting
    /// for them, so a slow receiver never holds up the next claim.
    ///
    /// # Errors
    /// Never on its own: storage errors are logged and retried after a pause.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let inner = &self.inner;
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let free = inner.permits.available_permits();
            if free == 0 {
                tokio::select! {
                    () = inner.wake.notified() => {}
                    () = shutdown.cancelled() => break,
                }
                continue;
            }
            let groups = match self.claim(free).await {
                Ok(g) => g,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming deliveries failed; retrying shortly");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(500)) => {}
                        () = shutdown.cancelled() => break,
                    }
                    continue;
                }
            };
            let claimed: usize = groups.iter().map(Vec::len).sum();
            for group in groups {
                let permit = Arc::clone(&inner.permits).acquire_owned().await.expect("the semaphore is never closed");
                let worker = self.clone();
                inner.tasks.spawn(async move {
                    worker.attempt_batch_and_record(group).await;
                    drop(permit);
                    worker.inner.wake.notify_one();
                });
            }
            if claimed == free {
                continue;
            }
            // Attempts just started wake the loop when they end, so only an idle worker needs
            // to know when the next retry falls due.
            let sleep = if claimed > 0 { inner.settings.poll_interval } else { self.idle_sleep().await };
            tokio::select! {
                () = inner.wake.notified() => {}
                () = tokio::time::sleep(sleep) => {}
                () = shutdown.cancelled() => break,
            }
        }
        inner.tasks.close();
        if tokio::time::timeout(inner.settings.shutdown_grace, inner.tasks.wait()).await.is_err() {
            tracing::warn!(
                in_flight = inner.tasks.len(),
                "shutdown grace elapsed; unfinished attempts will be retried after their lease"
            );
        }
        Ok(())
    }

    /// Claims up to `free` due deliveries and groups them into attempts.
    async fn claim(&self, free: usize) -> leadrelay_core::storage::Result<Vec<Vec<Claimed>>> {
        if free == 0 {
            return Ok(Vec::new());
        }
        let claimed = self.inner.storage.claim_due_deliveries(&self.claim_request(free)).await?;
        let expired = claimed.iter().filter(|c| c.lease_expired).count();
        if expired > 0 {
            metrics::counter!(crate::telemetry::metrics::LEASE_EXPIRIES).increment(expired as u64);
        }
        Ok(self.group(claimed))
    }

    fn claim_request(&self, free: usize) -> ClaimRequest {
        let settings = &self.inner.settings;
        ClaimRequest {
            now: self.inner.clock.now(),
            limit: u32::try_from(free).unwrap_or(u32::MAX),
            lease: settings.lease,
            per_destination: settings.per_destination,
        }
    }

    async fn idle_sleep(&self) -> Duration {
        let poll = self.inner.settings.poll_interval;
        match self.inner.storage.next_due_at().await {
            Ok(Some(due)) => due.since(self.inner.clock.now()).min(poll),
            _ => poll,
        }
    }

    /// Splits claimed deliveries into attempts: one per delivery, except for destinations that
    /// take several leads per call, whose deliveries go together up to their limit.
    fn group(&self, claimed: Vec<Claimed>) -> Vec<Vec<Claimed>> {
        let mut groups = Vec::new();
        let mut batches: HashMap<DestinationId, (usize, Vec<Claimed>)> = HashMap::new();
        for c in claimed {
            match self.destination_for(&c).map(|d| d.batch_limit()) {
                Ok(limit) if limit > 1 => {
                    batches.entry(c.destination.id.clone()).or_insert_with(|| (limit, Vec::new())).1.push(c)
                }
                _ => groups.push(vec![c]),
            }
        }
        for (limit, mut list) in batches.into_values() {
            while !list.is_empty() {
                let rest = list.split_off(list.len().min(limit));
                groups.push(std::mem::replace(&mut list, rest));
            }
        }
        groups
    }

    fn destination_for(&self, c: &Claimed) -> Result<Arc<dyn Destination>, DestinationError> {
        self.inner.destinations.build(&c.destination)
    }
}
