//! Backend-neutral rules of the outbox: what a recorded attempt does to its delivery's row, to
//! the delivery's attempt log and to its destination's health and pause, and the token a claim
//! leases with. Each backend reads the current values under its own locks, applies these rules
//! and writes the result, so both store the same outcome of the same records.

use crate::destination::ErrorClass;
use crate::storage::{Attempt, AttemptRecord, NextState};
use crate::{DeliveryId, Timestamp};

/// A fresh lease token for a claim made at `now`: unique, and no delivery id.
pub fn lease_token(now: Timestamp) -> String {
    DeliveryId::generate(now).as_str().trim_start_matches(DeliveryId::PREFIX).to_owned()
}

/// When an attempt ended: the time its delivery and destination were last changed by it.
pub fn attempt_ended(a: &Attempt) -> i64 {
    a.started_at.plus(std::time::Duration::from_millis(a.duration_ms)).as_millis()
}

/// A delivery row after an attempt whose lease was still the delivery's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextRow {
    /// `status`.
    pub status: &'static str,
    /// Added to `attempts`: 1 when the attempt used up a retry.
    pub counts: i64,
    /// `next_attempt_at` while the destination is enabled (a pending row of a disabled one is
    /// parked instead: no due time).
    pub due: Option<i64>,
    /// `last_error`: the attempt's sealed message, unless it delivered.
    pub last_error: Option<String>,
    /// `updated_at`: when the attempt ended.
    pub updated_at: i64,
}

impl NextRow {
    /// The row `record` leaves, its message already sealed (`sealed_message`).
    pub fn of(record: &AttemptRecord, sealed_message: Option<&str>) -> Self {
        let (status, counts, due) = match &record.next {
            NextState::Delivered => ("delivered", 1, None),
            NextState::RetryAt { at, counts } => ("pending", i64::from(*counts), Some(at.as_millis())),
            NextState::Dead => ("dead", 1, None),
        };
        let last_error = match record.next {
            NextState::Delivered => None,
            _ => sealed_message.map(str::to_owned),
        };
        Self { status, counts, due, last_error, updated_at: attempt_ended(&record.attempt) }
    }
}

/// The number an attempt gets in its delivery's log, given the latest row there (its number and
/// error class): a run of throttled tries shares one row (the latest try replaces it), so a
/// receiver that keeps answering 429 cannot grow the log; anything else takes the next number.
pub fn attempt_number(latest: Option<(u32, Option<ErrorClass>)>, class: Option<ErrorClass>) -> u32 {
    match latest {
        Some((n, Some(ErrorClass::Throttled))) if class == Some(ErrorClass::Throttled) => n,
        Some((n, _)) => n.saturating_add(1),
        None => 1,
    }
}

/// The columns of a destination that recorded attempts change, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationHealth {
    /// `enabled`.
    pub enabled: bool,
    /// `disabled_reason`.
    pub disabled_reason: Option<String>,
    /// `consecutive_failures`.
    pub consecutive_failures: i64,
    /// `failing_since`.
    pub failing_since: Option<i64>,
    /// `throttled_until`: the end of its pause.
    pub throttled_until: Option<i64>,
    /// `updated_at` (changed only when an attempt disables it).
    pub updated_at: i64,
}

impl DestinationHealth {
    /// Applies an attempt whose lease was still its delivery's. A success ends a pause and a
    /// run of failures; any other answer sets or ends the pause as the record says, and a
    /// failure adds one to the run (starting `failing_since`). Returns true when the record
    /// disabled the destination, whose waiting deliveries the caller then parks.
    pub fn record(&mut self, r: &AttemptRecord) -> bool {
        let a = &r.attempt;
        if a.error_class.is_none() && r.throttle_destination_until.is_none() {
            self.throttled_until = None;
            self.consecutive_failures = 0;
            self.failing_since = None;
        } else {
            self.throttled_until = r.throttle_destination_until.map(Timestamp::as_millis);
        }
        if a.error_class.is_some() {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            self.failing_since = self.failing_since.or(Some(a.started_at.as_millis()));
        }
        match &r.disable_destination {
            Some(reason) if self.enabled => {
                self.enabled = false;
                self.disabled_reason = Some(reason.clone());
                self.updated_at = attempt_ended(a);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttled_tries_share_the_latest_throttled_row_and_anything_else_takes_the_next() {
        let t = Some(ErrorClass::Throttled);
        assert_eq!(attempt_number(None, t), 1);
        assert_eq!(attempt_number(Some((3, t)), t), 3);
        assert_eq!(attempt_number(Some((3, t)), None), 4);
        assert_eq!(attempt_number(Some((3, Some(ErrorClass::Transient))), t), 4);
        assert_eq!(attempt_number(Some((3, None)), Some(ErrorClass::Transient)), 4);
    }
}
