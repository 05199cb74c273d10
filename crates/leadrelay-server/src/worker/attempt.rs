//! One attempt: send, classify, decide the next state, record it all in one storage call.

use std::time::Instant;

use leadrelay_core::destination::{DestinationError, ErrorClass, Notice, SendContext};
use leadrelay_core::retry::RetryDecision;
use leadrelay_core::routing::NOTIFICATION_KINDS;
use leadrelay_core::storage::{Attempt, AttemptRecord, Claimed, NextState};
use leadrelay_core::{DestinationId, PublisherId};
use rand::Rng;
use tracing::Instrument;

use super::Worker;

impl Worker {
    /// Attempts one claimed delivery and records the result. Never fails: a storage error while
    /// recording leaves the lease to expire, and the delivery is attempted again.
    pub(crate) async fn attempt_and_record(&self, c: Claimed) {
        let span = tracing::info_span!(
            "delivery",
            delivery.id = %c.delivery.id,
            lead.id = %c.lead.id,
            destination.id = %c.destination.id,
            destination.kind = %c.destination.kind,
            delivery.attempt = c.delivery.attempts + 1,
        );
        async {
            let (record, notices) = self.attempt(&c).await;
            match &record.next {
                NextState::Delivered => tracing::debug!("delivered"),
                NextState::RetryAt { at, .. } => tracing::info!(retry_at = %at, error = ?record.attempt.message, "attempt failed; will retry"),
                NextState::Dead => tracing::warn!(error = ?record.attempt.message, "delivery dead-lettered"),
            }
            if let Err(e) = self.inner.storage.record_attempts(std::slice::from_ref(&record)).await {
                tracing::error!(error = %e, "recording the attempt failed; the lease will expire and it will be retried");
                return;
            }
            if !notices.is_empty() {
                let worker = self.clone();
                let (publisher, except) = (c.destination.publisher.clone(), c.destination.id.clone());
                tokio::spawn(async move { worker.notify_publisher(&publisher, &except, &notices).await });
            }
        }
        .instrument(span)
        .await
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
        let notifiers = destinations
            .iter()
            .filter(|d| d.enabled && &d.id != except && NOTIFICATION_KINDS.contains(&d.kind.as_str()));
        for d in notifiers {
            let Some(destination) = self.inner.destinations.get(&d.kind).and_then(|c| c.build(&d.settings).ok()) else {
                continue;
            };
            for notice in notices {
                if let Err(e) = destination.notify(notice).await {
                    tracing::warn!(destination.id = %d.id, error = %e, "a notice could not be sent");
                }
            }
        }
    }

    async fn attempt(&self, c: &Claimed) -> (AttemptRecord, Vec<Notice>) {
        let started_at = self.inner.clock.now();
        let t0 = Instant::now();
        let ctx = SendContext { attempt: c.delivery.attempts + 1, now: started_at };
        let result = match self.destination_for(c) {
            Ok(destination) => {
                let lead = c.lead.clone();
                // A panicking connector becomes a failed attempt, not a dead worker.
                match tokio::spawn(async move { destination.send(&lead, ctx).await }).await {
                    Ok(r) => r,
                    Err(_) => Err(DestinationError::transient("the connector panicked")),
                }
            }
            Err(e) => Err(e),
        };
        let duration_ms = t0.elapsed().as_millis() as u64;
        let now = self.inner.clock.now();
        let settings = &self.inner.settings;
        let mut notices = Vec::new();
        let (next, disable, attempt_fields) = match result {
            Ok(ok) => (NextState::Delivered, None, (ok.status, None, None, ok.excerpt)),
            Err(e) => {
                let jitter: f64 = rand::rng().random_range(-1.0..=1.0);
                let (next, mut disable) = match e.class {
                    ErrorClass::Gone => (NextState::Dead, Some("the receiver answered 410 Gone".to_owned())),
                    ErrorClass::Permanent => (NextState::Dead, None),
                    ErrorClass::Throttled => {
                        let wait = e.retry_after.unwrap_or_default();
                        (NextState::RetryAt { at: settings.retry.throttled(now, wait), counts: false }, None)
                    }
                    ErrorClass::Transient => {
                        match settings.retry.next(c.delivery.attempts + 1, now, e.retry_after, jitter) {
                            RetryDecision::RetryAt(at) => (NextState::RetryAt { at, counts: true }, None),
                            RetryDecision::GiveUp => (NextState::Dead, None),
                        }
                    }
                };
                let failing_since = c.destination.failing_since.or(Some(started_at));
                if disable.is_none()
                    && settings.disable.should_disable(failing_since, c.destination.consecutive_failures + 1, now)
                {
                    disable = Some(format!("failing without a success since {}", failing_since.unwrap_or(started_at)));
                }
                if next == NextState::Dead {
                    notices.push(Notice::DeadLetter {
                        lead: c.lead.id.clone(),
                        destination: c.destination.id.clone(),
                        destination_name: c.destination.name.clone(),
                        error: e.message.clone(),
                        hint: e.hint(),
                    });
                }
                if let Some(reason) = &disable {
                    notices.push(Notice::Disabled {
                        destination: c.destination.id.clone(),
                        destination_name: c.destination.name.clone(),
                        reason: reason.clone(),
                    });
                }
                (next, disable, (e.status, Some(e.class), Some(e.message), e.excerpt))
            }
        };
        let (status_code, error_class, message, excerpt) = attempt_fields;
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
            next,
            destination: c.destination.id.clone(),
            disable_destination: disable,
        };
        (record, notices)
    }
}
