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

    /// What the publisher should do: the connector's hint, else a general one. Hints that
    /// depend on what a kind's receiver is (a webhook, a CRM) are set by the kind's connector.
    pub fn hint(&self) -> String {
        if let Some(h) = &self.hint {
            return h.clone();
        }
        match self.status {
            Some(s) => format!("the receiver answered {s}: check the destination's settings and the receiver's logs"),
            None => {
                "check that the destination's address is right and that it is reachable from this server".to_owned()
            }
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

/// Something the publisher must hear about that is not a new lead. Holds no personal data,
/// except in [`Notice::Sales`], whose owner address is only an envelope recipient and whose lead
/// a destination shows only where it opts in to personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Sales work for the team: an opportunity was assigned, or its first touch is overdue.
    Sales(Box<SalesMail>),
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

/// A sales notice: what happened to which opportunity, and who must hear it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesMail {
    /// Assigned, or SLA breached.
    pub kind: crate::storage::SalesNoticeKind,
    /// The opportunity.
    pub opportunity: crate::ids::OpportunityId,
    /// Its offer.
    pub offer: Option<crate::offer::OfferId>,
    /// When its first touch is (was) due.
    pub first_touch_due_at: crate::clock::Timestamp,
    /// The owner's address (an envelope recipient only), when the owner is to hear it.
    pub owner_email: Option<String>,
    /// Send to the destination's own recipients too (a breach; an assignment tells the owner only).
    pub to_publisher: bool,
    /// The lead that opened it, shown only by a destination that opts in to personal data.
    pub lead: Option<Box<Lead>>,
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

/// How a setting is entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingInput {
    /// One line of text.
    Text,
    /// An address (`https://…`).
    Url,
    /// A credential: write-only, never shown again.
    Secret,
    /// A whole number (stored as a JSON number).
    Number,
    /// On or off (stored as a JSON boolean).
    Toggle,
    /// One of these values.
    Choice(&'static [&'static str]),
    /// Several lines (a certificate, a list of addresses).
    LongText,
}

/// One key of a kind's settings, as a form shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingField {
    /// The key in `settings`.
    pub name: &'static str,
    /// What a person reads beside the control.
    pub label: &'static str,
    /// How it is entered.
    pub input: SettingInput,
    /// Whether the kind refuses settings without it.
    pub required: bool,
    /// One sentence: what it is for, where to find it, its default.
    pub help: &'static str,
}

impl SettingField {
    /// A field of this shape (then [`SettingField::required`] and [`SettingField::help`]).
    pub const fn new(name: &'static str, label: &'static str, input: SettingInput) -> Self {
        Self { name, label, input, required: false, help: "" }
    }

    /// The kind refuses settings without it.
    #[must_use]
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// With this help text.
    #[must_use]
    pub const fn help(mut self, help: &'static str) -> Self {
        self.help = help;
        self
    }

    /// Whether the value is a secret.
    pub fn is_secret(&self) -> bool {
        self.input == SettingInput::Secret
    }
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

    /// Every key `settings` may hold, in the order a form shows them: what each is, how it is
    /// entered, and which are secrets (stored, never returned). No default: a kind that does
    /// not describe its settings cannot be configured from the dashboard.
    fn settings_form(&self) -> &'static [SettingField];

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

/// Why a kind has no connector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KindError {
    /// No such kind, in this build or ever.
    #[error("must be one of: {}", known.join(", "))]
    Unknown {
        /// The kind asked for.
        kind: String,
        /// The kinds there are, sorted.
        known: Vec<&'static str>,
    },
    /// A kind that existed and was retired; `reason` says why and what to use instead.
    #[error("{kind} is not supported: {reason}")]
    Retired {
        /// The kind asked for.
        kind: String,
        /// Why it is gone, and what replaces it.
        reason: &'static str,
    },
}

impl KindError {
    /// The one answer for a stored destination whose kind has no connector: a retired kind
    /// cannot come back (its leads are dead letters), an unknown one may be a build without it
    /// (its leads wait and are retried on the schedule).
    pub fn to_destination_error(&self) -> DestinationError {
        match self {
            Self::Retired { .. } => DestinationError::permanent(self.to_string())
                .with_hint("create a destination of a supported kind and replay the dead letters to it"),
            Self::Unknown { kind, .. } => {
                DestinationError::transient(format!("this build has no connector for kind '{kind}'")).with_hint(
                    "run a leadrelay build that has this kind, or create a destination of another kind; leads wait and are retried",
                )
            }
        }
    }
}

/// How many built destinations are kept before the least recently used ones are dropped.
const BUILT_CAPACITY: usize = 4096;

/// Built destinations by id, each with the `updated_at` it was built from. A destination keeps
/// its in-memory state (a cached token, a pacing window, a created table) for as long as its
/// record is unchanged.
#[derive(Default)]
struct BuiltCache {
    entries: std::collections::HashMap<DestinationId, Built>,
    tick: u64,
}

struct Built {
    version: Timestamp,
    destination: Arc<dyn Destination>,
    used: u64,
}

impl BuiltCache {
    fn get(&mut self, record: &DestinationRecord) -> Option<Arc<dyn Destination>> {
        self.tick += 1;
        let built = self.entries.get_mut(&record.id).filter(|b| b.version == record.updated_at)?;
        built.used = self.tick;
        Some(Arc::clone(&built.destination))
    }

    fn insert(&mut self, record: &DestinationRecord, destination: Arc<dyn Destination>, capacity: usize) {
        if self.entries.len() >= capacity && !self.entries.contains_key(&record.id) {
            // Drop the least recently used quarter at once, so a full cache is not scanned on
            // every insert.
            let mut ages: Vec<u64> = self.entries.values().map(|b| b.used).collect();
            ages.sort_unstable();
            let cutoff = ages[(ages.len() / 4).min(ages.len() - 1)];
            self.entries.retain(|_, b| b.used > cutoff);
        }
        self.entries.insert(record.id.clone(), Built { version: record.updated_at, destination, used: self.tick });
    }
}

/// Names of query parameters that carry credentials (Power Automate's `sig`, Azure Functions'
/// `code`, the usual `key`, `token`, `secret`…), compared case-insensitively as parts of the name.
const SECRET_QUERY_NAMES: &[&str] = &["sig", "code", "key", "token", "secret", "pass", "auth", "credential"];

/// `https://h/p?api-version=1&sig=abc` → `https://h/p?api-version=1&sig=…`; `None` when the
/// text is not an http(s) URL or none of its query parameters looks like a credential.
fn hide_query_values(text: &str) -> Option<String> {
    let lower = text.get(..8)?.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return None;
    }
    let (base, rest) = text.split_once('?')?;
    let (query, fragment) = rest.split_once('#').map_or((rest, None), |(q, f)| (q, Some(f)));
    let mut changed = false;
    let hidden: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if SECRET_QUERY_NAMES.iter().any(|s| name.to_ascii_lowercase().contains(s)) => {
                changed = true;
                format!("{name}=…")
            }
            _ => pair.to_owned(),
        })
        .collect();
    if !changed {
        return None;
    }
    let mut out = format!("{base}?{}", hidden.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    Some(out)
}

/// The registry of connectors, by kind, and of kinds that were retired. Clones share one cache
/// of built destinations ([`Destinations::build`]), so the worker and the use cases hold the
/// same built instances.
#[derive(Clone)]
pub struct Destinations {
    connectors: BTreeMap<&'static str, Arc<dyn Connector>>,
    retired: BTreeMap<&'static str, &'static str>,
    built: Arc<std::sync::Mutex<BuiltCache>>,
    capacity: usize,
}

impl Default for Destinations {
    fn default() -> Self {
        Self { connectors: BTreeMap::new(), retired: BTreeMap::new(), built: Arc::default(), capacity: BUILT_CAPACITY }
    }
}

impl Destinations {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a connector (replacing one of the same kind).
    #[must_use]
    pub fn with(mut self, connector: Arc<dyn Connector>) -> Self {
        self.retired.remove(connector.kind());
        self.connectors.insert(connector.kind(), connector);
        self
    }

    /// Records a kind that is no longer supported, with why and what to use instead.
    #[must_use]
    pub fn retired(mut self, kind: &'static str, reason: &'static str) -> Self {
        self.connectors.remove(kind);
        self.retired.insert(kind, reason);
        self
    }

    /// Keeps at most `capacity` built destinations (at least 1).
    #[must_use]
    pub fn with_build_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// The connector for a kind.
    ///
    /// # Errors
    /// [`KindError::Retired`] for a retired kind, [`KindError::Unknown`] for any other.
    pub fn connector(&self, kind: &str) -> Result<&Arc<dyn Connector>, KindError> {
        if let Some(c) = self.connectors.get(kind) {
            return Ok(c);
        }
        Err(match self.retired.get_key_value(kind) {
            Some((k, reason)) => KindError::Retired { kind: (*k).to_owned(), reason },
            None => KindError::Unknown { kind: kind.to_owned(), known: self.kinds().collect() },
        })
    }

    /// The connector for a kind, if this build has one.
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
    /// Query-string values of URL settings are hidden too: receivers such as Power Automate put
    /// their credential in the URL (`sig=…`), and a `read` token must not learn it.
    pub fn public_settings(&self, kind: &str, settings: &serde_json::Value) -> serde_json::Value {
        let mut out = settings.clone();
        if let Some(map) = out.as_object_mut() {
            if let Some(c) = self.get(kind) {
                for field in c.settings_form().iter().filter(|f| f.is_secret()) {
                    map.remove(field.name);
                }
            }
            for value in map.values_mut() {
                if let serde_json::Value::String(text) = value
                    && let Some(hidden) = hide_query_values(text)
                {
                    *text = hidden;
                }
            }
        }
        out
    }

    /// The built destination for a record: the cached one while the record's `updated_at` is
    /// unchanged, else a new one from its connector.
    ///
    /// # Errors
    /// [`KindError::to_destination_error`] when the kind has no connector, or the connector's
    /// error when the stored settings no longer pass its checks.
    pub fn build(&self, record: &DestinationRecord) -> Result<Arc<dyn Destination>, DestinationError> {
        if let Some(d) = self.built.lock().expect("built destinations").get(record) {
            return Ok(d);
        }
        let connector = self.connector(&record.kind).map_err(|e| e.to_destination_error())?;
        // Built outside the lock: building may parse a certificate or a connection string.
        let destination = connector.build(&record.settings)?;
        self.built.lock().expect("built destinations").insert(record, Arc::clone(&destination), self.capacity);
        Ok(destination)
    }
}

#[cfg(test)]
mod url_tests {
    use super::hide_query_values;

    #[test]
    fn query_values_of_urls_are_hidden_and_other_text_is_left_alone() {
        assert_eq!(
            hide_query_values("https://prod.logic.azure.com/w?api-version=1&sig=s3cr3t").as_deref(),
            Some("https://prod.logic.azure.com/w?api-version=1&sig=…")
        );
        assert_eq!(
            hide_query_values("https://f.azurewebsites.net/api/x?CODE=abc").as_deref(),
            Some("https://f.azurewebsites.net/api/x?CODE=…")
        );
        assert_eq!(hide_query_values("https://example.com/hook"), None);
        assert_eq!(hide_query_values("https://webto.salesforce.com/servlet?encoding=UTF-8"), None);
        assert_eq!(hide_query_values("not a url?sig=1"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Nothing;

    #[async_trait::async_trait]
    impl Destination for Nothing {
        async fn send(&self, _: &Lead, _: SendContext) -> Result<Delivered, DestinationError> {
            Ok(Delivered::default())
        }
    }

    /// A connector that counts its builds.
    struct Counting(Arc<AtomicUsize>);

    impl Connector for Counting {
        fn kind(&self) -> &'static str {
            "counting"
        }
        fn role(&self) -> DestinationRole {
            DestinationRole::StoresLeads
        }
        fn settings_form(&self) -> &'static [SettingField] {
            &[]
        }
        fn prepare(&self, settings: serde_json::Value, _: NetworkPolicy) -> Result<PreparedSettings, Vec<FieldError>> {
            Ok(PreparedSettings { stored: settings, generated_secret: None })
        }
        fn build(&self, _: &serde_json::Value) -> Result<Arc<dyn Destination>, DestinationError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(Arc::new(Nothing))
        }
    }

    fn record(id: &DestinationId, kind: &str, updated_ms: i64) -> DestinationRecord {
        DestinationRecord {
            id: id.clone(),
            publisher: PublisherId::parse("contoso").unwrap(),
            name: "x".into(),
            kind: kind.into(),
            settings: serde_json::json!({}),
            offers: None,
            enabled: true,
            disabled_reason: None,
            consecutive_failures: 0,
            failing_since: None,
            created_at: Timestamp::from_millis(0),
            updated_at: Timestamp::from_millis(updated_ms),
        }
    }

    fn registry(builds: &Arc<AtomicUsize>) -> Destinations {
        Destinations::new()
            .with(Arc::new(Counting(Arc::clone(builds))))
            .retired("azure_blob", "it stopped delivering in 2019; use azure_table instead")
    }

    #[test]
    fn a_retired_kind_and_an_unknown_kind_get_different_answers() {
        let d = registry(&Arc::default());
        assert!(d.connector("counting").is_ok());
        let retired = d.connector("azure_blob").err().unwrap();
        assert_eq!(
            retired.to_string(),
            "azure_blob is not supported: it stopped delivering in 2019; use azure_table instead"
        );
        assert_eq!(retired.to_destination_error().class, ErrorClass::Permanent);
        let unknown = d.connector("carrier_pigeon").err().unwrap();
        assert_eq!(unknown.to_string(), "must be one of: counting");
        assert_eq!(unknown.to_destination_error().class, ErrorClass::Transient);
        assert_eq!(d.kinds().collect::<Vec<_>>(), ["counting"], "a retired kind is not offered");
    }

    #[test]
    fn a_destination_is_built_once_per_version_and_clones_share_the_cache() {
        let builds = Arc::default();
        let d = registry(&builds);
        let shared = d.clone();
        let (one, two) =
            (DestinationId::generate(Timestamp::from_millis(1)), DestinationId::generate(Timestamp::from_millis(2)));
        let first = d.build(&record(&one, "counting", 1)).unwrap();
        let again = shared.build(&record(&one, "counting", 1)).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        let changed = d.build(&record(&one, "counting", 2)).unwrap();
        assert!(!Arc::ptr_eq(&first, &changed), "a changed record is built again");
        assert_eq!(builds.load(Ordering::SeqCst), 2);
        let err = d.build(&record(&two, "carrier_pigeon", 1)).err().unwrap();
        assert!(err.message.contains("no connector for kind 'carrier_pigeon'"), "{}", err.message);
    }

    #[test]
    fn the_cache_stays_bounded_and_keeps_what_is_used() {
        let builds = Arc::default();
        let d = registry(&builds).with_build_capacity(8);
        let hot = record(&DestinationId::generate(Timestamp::from_millis(0)), "counting", 1);
        d.build(&hot).unwrap();
        for i in 0..100 {
            d.build(&record(&DestinationId::generate(Timestamp::from_millis(i)), "counting", 1)).unwrap();
            d.build(&hot).unwrap();
            assert!(d.built.lock().unwrap().entries.len() <= 8);
        }
        assert_eq!(builds.load(Ordering::SeqCst), 101, "the destination in use was never built again");
    }
}
