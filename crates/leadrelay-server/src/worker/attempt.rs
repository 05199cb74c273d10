//! One attempt: send, classify, decide the next state, record it all in one storage call.

use std::time::Instant;

use leadrelay_core::destination::{Delivered, DestinationError, Notice, SendContext};
use leadrelay_core::outcome::{self, AttemptFacts, AttemptResult};
use leadrelay_core::storage::{Attempt, AttemptRecord, Claimed, NextState};
use leadrelay_core::{DestinationId, PublisherId, routing};
use rand::Rng;
use tracing::Instrument;

use super::{StepOutcome, Worker};
use crate::telemetry::metrics::{
    DEAD_LETTERS, DELIVERY_ATTEMPT_SECONDS, DELIVERY_ATTEMPTS, DESTINATION_THROTTLES, DESTINATIONS_DISABLED,
    WORKER_IN_FLIGHT,
};

impl Worker {
    /// Attempts claimed deliveries of one destination (in one call when it takes batches) and
    /// records every result in one storage call. Never fails: a storage error while recording
    /// leaves the leases to expire, and the deliveries are attempted again.
    pub(crate) async fn attempt_batch_and_record(&self, batch: Vec<Claimed>) -> StepOutcome {
        let Some(first) = batch.first() else { return StepOutcome::default() };
        let span = tracing::info_span!(
            "delivery",
            destination.id = %first.destination.id,
            destination.kind = %first.destination.kind,
            batch.size = batch.len(),
        );
        async {
            let _in_flight = InFlight::start(batch.len());
            let started_at = self.inner.clock.now();
            let t0 = Instant::now();
            let results = self.send_all(&batch, started_at).await;
            let elapsed = t0.elapsed();
            metrics::histogram!(DELIVERY_ATTEMPT_SECONDS, "kind" => first.destination.kind.clone())
                .record(elapsed.as_secs_f64());
            let duration_ms = elapsed.as_millis() as u64;
            let mut records = Vec::with_capacity(batch.len());
            let mut decided = Vec::with_capacity(batch.len());
            let mut notices = Vec::new();
            let mut outcome = StepOutcome { claimed: batch.len(), ..StepOutcome::default() };
            for (c, result) in batch.iter().zip(results) {
                let (record, mut n, name) = self.decide(c, result, started_at, duration_ms);
                decided.push(name);
                match &record.next {
                    NextState::Delivered => outcome.delivered += 1,
                    NextState::RetryAt { .. } => outcome.retrying += 1,
                    NextState::Dead => outcome.dead += 1,
                }
                match &record.next {
                    NextState::Delivered => tracing::debug!(delivery.id = %c.delivery.id, lead.id = %c.lead.id, "delivered"),
                    NextState::RetryAt { at, .. } => {
                        tracing::info!(delivery.id = %c.delivery.id, lead.id = %c.lead.id, retry_at = %at, error.class = error_class(&record), http.status_code = record.attempt.status_code, "attempt failed; will retry");
                    }
                    NextState::Dead => {
                        tracing::warn!(delivery.id = %c.delivery.id, lead.id = %c.lead.id, error.class = error_class(&record), http.status_code = record.attempt.status_code, "delivery dead-lettered");
                    }
                }
                records.push(record);
                notices.append(&mut n);
            }
            if let Err(e) = self.inner.storage.record_attempts(&records).await {
                tracing::error!(error = %e, "recording attempts failed; the leases will expire and they will be retried");
                return StepOutcome { claimed: batch.len(), ..StepOutcome::default() };
            }
            count_recorded(first, &records, &decided);
            if !notices.is_empty() {
                let worker = self.clone();
                let (publisher, except) = (first.destination.publisher.clone(), first.destination.id.clone());
                self.inner.tasks.spawn(async move { worker.notify_publisher(&publisher, &except, &notices).await });
            }
            outcome
        }
        .instrument(span)
        .await
    }

    /// One result per delivery. A panicking connector fails them all, it does not kill the worker.
    async fn send_all(
        &self,
        batch: &[Claimed],
        now: leadrelay_core::Timestamp,
    ) -> Vec<Result<Delivered, DestinationError>> {
        let n = batch.len();
        let destination = match self.destination_for(&batch[0]) {
            Ok(d) => d,
            Err(e) => return vec![Err(e); n],
        };
        let leads: Vec<_> = batch.iter().map(|c| c.lead.clone()).collect();
        let ctx = SendContext { attempt: batch[0].delivery.attempts + 1, now };
        match tokio::spawn(async move { destination.send_batch(&leads, ctx).await }).await {
            Ok(results) if results.len() == n => results,
            Ok(_) => {
                vec![Err(DestinationError::transient("the connector answered for a different number of leads")); n]
            }
            Err(_) => vec![Err(DestinationError::transient("the connector panicked")); n],
        }
    }

    /// Tells the publisher's enabled notification destinations (other than `except`) about
    /// dead letters and disabled destinations. Best effort: a failure is logged, the lead itself
    /// is safe either way.
    async fn notify_publisher(&self, publisher: &PublisherId, except: &DestinationId, notices: &[Notice]) {
        let destinations = match self.inner.storage.list_destinations(publisher).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "could not list destinations to send notices");
                return;
            }
        };
        let notifiers =
            destinations.iter().filter(|d| &d.id != except && routing::hears_notices(d, &self.inner.destinations));
        for d in notifiers {
            let destination = match self.inner.destinations.build(d) {
                Ok(destination) => destination,
                Err(e) => {
                    tracing::warn!(destination.id = %d.id, error.class = e.class.as_str(), "a notification destination could not be built");
                    continue;
                }
            };
            for notice in notices {
                if let Err(e) = destination.notify(notice).await {
                    tracing::warn!(destination.id = %d.id, error.class = e.class.as_str(), http.status_code = e.status, "a notice could not be sent");
                }
            }
        }
    }

    /// The next state of one delivery after its attempt (decided by `core::outcome`), the
    /// notices it calls for, and the decision's name (for the metrics).
    fn decide(
        &self,
        c: &Claimed,
        result: Result<Delivered, DestinationError>,
        started_at: leadrelay_core::Timestamp,
        duration_ms: u64,
    ) -> (AttemptRecord, Vec<Notice>, &'static str) {
        let now = self.inner.clock.now();
        let settings = &self.inner.settings;
        let facts = AttemptFacts {
            attempts_before: c.delivery.attempts,
            failing_since: c.destination.failing_since,
            consecutive_failures: c.destination.consecutive_failures,
            started_at,
        };
        let outcome = match &result {
            Ok(_) => AttemptResult::Delivered,
            Err(e) => AttemptResult::Failed { class: e.class, retry_after: e.retry_after },
        };
        let jitter: f64 = rand::rng().random_range(-1.0..=1.0);
        let decision = outcome::decide(outcome, facts, &settings.retry, &settings.disable, now, jitter);
        let name = decision.name();
        let mut notices = Vec::new();
        let (status_code, error_class, message, excerpt) = match result {
            Ok(ok) => (ok.status, None, None, ok.excerpt),
            Err(e) => {
                if decision.is_dead_letter() {
                    notices.push(Notice::DeadLetter {
                        lead: c.lead.id.clone(),
                        destination: c.destination.id.clone(),
                        destination_name: c.destination.name.clone(),
                        error: e.message.clone(),
                        hint: e.hint(),
                    });
                }
                (e.status, Some(e.class), Some(e.message), e.excerpt)
            }
        };
        if let Some(reason) = &decision.disable {
            notices.push(Notice::Disabled {
                destination: c.destination.id.clone(),
                destination_name: c.destination.name.clone(),
                reason: reason.to_string(),
            });
        }
        let record = AttemptRecord {
            attempt: Attempt {
                delivery_id: c.delivery.id.clone(),
                number: 0,
                started_at,
                duration_ms,
                status_code,
                error_class,
                message,
                excerpt,
            },
            lease_token: c.lease_token.clone(),
            next: decision.next,
            destination: c.destination.id.clone(),
            disable_destination: decision.disable.map(|r| r.to_string()),
            throttle_destination_until: decision.pause_destination_until,
        };
        (record, notices, name)
    }
}

/// Counts recorded attempts of one destination's batch: each attempt with what was decided and
/// its error class, each dead letter, and at most one throttle pause and one disable (they act
/// on the destination once, however many of its deliveries the batch held).
fn count_recorded(first: &Claimed, records: &[AttemptRecord], decided: &[&'static str]) {
    let d = &first.destination;
    let (publisher, destination, kind) = (d.publisher.to_string(), d.id.to_string(), d.kind.clone());
    let labels = || [("publisher", publisher.clone()), ("destination", destination.clone())];
    for (record, name) in records.iter().zip(decided) {
        metrics::counter!(
            DELIVERY_ATTEMPTS,
            "publisher" => publisher.clone(),
            "destination" => destination.clone(),
            "kind" => kind.clone(),
            "outcome" => *name,
            "class" => error_class(record),
        )
        .increment(1);
        if record.next == NextState::Dead {
            metrics::counter!(DEAD_LETTERS, &labels()).increment(1);
        }
    }
    if records.iter().any(|r| r.throttle_destination_until.is_some()) {
        metrics::counter!(DESTINATION_THROTTLES, &labels()).increment(1);
    }
    if records.iter().any(|r| r.disable_destination.is_some()) {
        metrics::counter!(DESTINATIONS_DISABLED, &labels()).increment(1);
    }
}

/// Deliveries in flight in the `leadrelay_worker_in_flight` gauge, for as long as this lives
/// (a cancelled or panicking attempt leaves the gauge too).
struct InFlight(f64);

impl InFlight {
    fn start(deliveries: usize) -> Self {
        let n = deliveries as f64;
        metrics::gauge!(WORKER_IN_FLIGHT).increment(n);
        Self(n)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!(WORKER_IN_FLIGHT).decrement(self.0);
    }
}

/// The error class of a recorded attempt, for logs. Logs carry our classification of a
/// receiver's answer, never its text: the text is the receiver's, and can hold anything
/// (an e-mail, a name); it is kept only in the stored attempt.
fn error_class(record: &AttemptRecord) -> &'static str {
    record.attempt.error_class.map_or("none", |c| c.as_str())
}
