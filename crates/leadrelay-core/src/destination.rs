//! Destinations: where leads go. A [`Connector`] knows one kind (`https`, `salesforce`, …): it
//! checks settings and builds a configured [`Destination`] that sends a lead. The
//! [`Destinations`] registry maps kinds to connectors; only the binary decides which exist.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Timestamp;
use crate::ids::{DestinationId, PublisherId};
use crate::lead::Lead;
use crate::offer::OfferId;

/// A configured destination as stored. `settings` holds secrets: never log or return it whole.
#[derive(Clone, PartialEq)]
pub struct DestinationRecord {
    /// Id.
    pub id: DestinationId,
    /// Owner.
    pub publisher: PublisherId,
    /// The publisher's name for it.
    pub name: String,
    /// Connector kind.
    pub kind: String,
    /// Kind-specific settings, as the connector normalised them.
    pub settings: serde_json::Value,
    /// Offers it applies to; `None` = all the publisher's offers.
    pub offers: Option<Vec<OfferId>>,
    /// Paused destinations keep their queue but get no attempts.
    pub enabled: bool,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// Failed attempts since the last success.
    pub consecutive_failures: u32,
    /// First failure since the last success.
    pub failing_since: Option<Timestamp>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed (settings or state); connectors' built instances are cached by it.
    pub updated_at: Timestamp,
}

impl std::fmt::Debug for DestinationRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DestinationRecord")
            .field("id", &self.id)
            .field("publisher", &self.publisher)
            .field("kind", &self.kind)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// How a failure should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Try again on the schedule (network error, 5xx, timeout).
    Transient,
    /// The receiver asked us to slow down (`429`, `503` + `Retry-After`): retry without using up an attempt.
    Throttled,
    /// Retrying cannot help (`400`, `401`, `403`, `404`, `422`, bad credentials): dead letter now.
    Permanent,
    /// The receiver wants no more leads (`410 Gone`): dead letter and disable the destination.
    Gone,
}

impl ErrorClass {
    /// Stable name for storage and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::Throttled => "throttled",
            Self::Permanent => "permanent",
            Self::Gone => "gone",
        }
    }
}

/// A failed send. `message` must hold no personal data or secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DestinationError {
    /// How to handle it.
    pub class: ErrorClass,
    /// HTTP status, when there was a response.
    pub status: Option<u16>,
    /// What went wrong, for the attempt log and Validate.
    pub message: String,
    /// The receiver's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
    /// The start of the response body (truncated), for the attempt log.
    pub excerpt: Option<String>,
    /// What the publisher should do about it, when the connector knows better than the status.
    pub hint: Option<String>,
}

impl DestinationError {
    /// A transient error with no response (connect failure, timeout).
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Transient,
            status: None,
            message: message.into(),
            retry_after: None,
            excerpt: None,
            hint: None,
        }
    }

    /// A permanent error with no response (bad settings).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self { class: ErrorClass::Permanent, ..Self::transient(message) }
    }

    /// The same error with a hint for the publisher.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// What the publisher should do: the connector's hint, else one derived from the status.
    pub fn hint(&self) -> String {
        if let Some(h) = &self.hint {
            return h.clone();
        }
        match (self.class, self.status) {
            (_, Some(401 | 403)) => {
                "the receiver refused the credentials: check the secret, or the token in the URL (for a Power Automate \
                 trigger, copy the whole URL including its sig= parameter)"
                    .to_owned()
            }
            (_, Some(404)) => "the receiver has no such path: check the URL's path".to_owned(),
            (_, Some(410)) => {
                "the receiver says this endpoint is gone: point the destination at its new URL".to_owned()
            }
            (_, Some(s)) if (300..400).contains(&s) => {
                "the URL redirects, and redirects are not followed: use the final URL".to_owned()
            }
            (_, Some(400 | 422)) => {
                "the receiver rejected the lead's content: check that it accepts the marketplace's JSON format"
                    .to_owned()
            }
            (_, Some(429)) => "the receiver is rate limiting: leads will be retried when it allows".to_owned(),
            (_, Some(s)) if s >= 500 => {
                "the receiver failed while handling the lead: check its logs; leads will be retried".to_owned()
            }
            _ => "check that the destination's address is right and that it is reachable from this server".to_owned(),
        }
    }
}

/// A successful send.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Delivered {
    /// HTTP status, when the transport has one.
    pub status: Option<u16>,
    /// The start of the response body (truncated).
    pub excerpt: Option<String>,
    /// What the publisher should still check, when the destination cannot confirm the write
    /// (Salesforce Web-to-Lead answers 200 even when it drops a lead).
    pub note: Option<String>,
}

/// Facts about the attempt a destination may need.
#[derive(Debug, Clone, Copy)]
pub struct SendContext {
    /// The attempt number (1-based).
    pub attempt: u32,
    /// Now, from the injected clock.
    pub now: Timestamp,
}

/// Something the publisher must hear about that is not a new lead. Holds no personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A lead's delivery to a destination was given up (dead letter).
    DeadLetter {
        /// The lead.
        lead: crate::ids::LeadId,
        /// The destination that failed.
        destination: DestinationId,
        /// Its name.
        destination_name: String,
        /// The last error.
        error: String,
        /// What to fix.
        hint: String,
    },
    /// A destination was switched off (410 Gone, or failing for days); its leads wait.
    Disabled {
        /// The destination.
        destination: DestinationId,
        /// Its name.
        destination_name: String,
        /// Why.
        reason: String,
    },
}

/// A configured destination that can send leads.
#[async_trait::async_trait]
pub trait Destination: Send + Sync + 'static {
    /// Sends one lead.
    ///
    /// # Errors
    /// A classified [`DestinationError`]; the worker turns it into a retry or a dead letter.
    async fn send(&self, lead: &Lead, ctx: SendContext) -> Result<Delivered, DestinationError>;

    /// How many leads one call may carry (1: no batching).
    fn batch_limit(&self) -> usize {
        1
    }

    /// Sends several leads, in one call where the destination takes batches; one result per
    /// lead, in order. The default sends them one by one.
    async fn send_batch(&self, leads: &[Lead], ctx: SendContext) -> Vec<Result<Delivered, DestinationError>> {
        let mut out = Vec::with_capacity(leads.len());
        for lead in leads {
            out.push(self.send(lead, ctx).await);
        }
        out
    }

    /// Tells the publisher about a [`Notice`]. Only notification destinations (email) do
    /// anything; the rest ignore it.
    ///
    /// # Errors
    /// When the notification could not be sent.
    async fn notify(&self, _notice: &Notice) -> Result<(), DestinationError> {
        Ok(())
    }
}

/// One field of a request that is wrong, by its path, with the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path, e.g. `settings.url`.
    pub path: String,
    /// The rule, without echoing the value.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into() }
    }
}

/// Which network addresses destinations may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetworkPolicy {
    /// Allow loopback and private addresses and plain `http://` (tests and local use only).
    pub allow_private: bool,
}

/// Settings after a connector checked them.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedSettings {
    /// What to store.
    pub stored: serde_json::Value,
    /// A secret the connector generated, to show the publisher once.
    pub generated_secret: Option<String>,
}

/// What a destination kind is for. Rules keyed on it (the privacy rule, notices) ask the
/// connector, so a new kind cannot be added without saying which it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestinationRole {
    /// Keeps leads in a CRM, a table or another system (https, azure_table, the CRMs). A lead
    /// whose personal data was withheld has nothing to store and never goes to one.
    StoresLeads,
    /// Tells people about leads and about problems (email). Gets every lead of its offers,
    /// withheld ones without personal data, and the notices of dead letters and disables.
    NotifiesPeople,
}

/// One destination kind.
pub trait Connector: Send + Sync + 'static {
    /// The kind's wire name (`https`).
    fn kind(&self) -> &'static str;

    /// What the kind is for. No default: every kind must say.
    fn role(&self) -> DestinationRole;

    /// Keys of `settings` that are secrets: stored, never returned.
    fn secret_fields(&self) -> &'static [&'static str];

    /// Checks and normalises settings from the API.
    ///
    /// # Errors
    /// Every wrong field, with paths under `settings.`.
    fn prepare(&self, settings: serde_json::Value, policy: NetworkPolicy) -> Result<PreparedSettings, Vec<FieldError>>;

    /// Builds a sender from stored settings.
    ///
    /// # Errors
    /// A permanent error when stored settings no longer parse.
    fn build(&self, settings: &serde_json::Value) -> Result<Arc<dyn Destination>, DestinationError>;
}

/// The registry of connectors, by kind.
#[derive(Clone, Default)]
pub struct Destinations {
    connectors: BTreeMap<&'static str, Arc<dyn Connector>>,
}

impl Destinations {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a connector (replacing one of the same kind).
    #[must_use]
    pub fn with(mut self, connector: Arc<dyn Connector>) -> Self {
        self.connectors.insert(connector.kind(), connector);
        self
    }

    /// The connector for a kind.
    pub fn get(&self, kind: &str) -> Option<&Arc<dyn Connector>> {
        self.connectors.get(kind)
    }

    /// The role of a kind; `None` for a kind this build does not have, which every rule must
    /// treat as the most restrictive case.
    pub fn role(&self, kind: &str) -> Option<DestinationRole> {
        self.get(kind).map(|c| c.role())
    }

    /// The kinds registered, sorted.
    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.connectors.keys().copied()
    }

    /// `settings` without the kind's secret fields, for API answers.
    pub fn public_settings(&self, kind: &str, settings: &serde_json::Value) -> serde_json::Value {
        let mut out = settings.clone();
        if let (Some(c), Some(map)) = (self.get(kind), out.as_object_mut()) {
            for key in c.secret_fields() {
                map.remove(*key);
            }
        }
        out
    }
}
