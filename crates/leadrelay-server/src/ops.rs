//! The use cases. Handlers, the CLI and (later) the dashboard call these; nobody reimplements
//! one. Each use case makes one storage call that changes state, so it is atomic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use leadrelay_core::access::Scope;
use leadrelay_core::destination::{DestinationRecord, Destinations, FieldError, NetworkPolicy};
use leadrelay_core::storage::{
    ApiToken, CustomerDetail, Delivery, DeliveryFilter, IngestKey, LeadDetail, LeadFilter, LeadWithDeliveries,
    NewDelivery, Offer, Page, PageRequest, Publisher, ReplayRequest, SplitRequest, Storage, StorageError, Upserted,
};
use leadrelay_core::{
    Clock, CustomerId, DeliveryId, DestinationId, IngestKeyId, Lead, LeadDraft, LeadError, LeadId, LeadRules, OfferId,
    OfferType, PublisherId, TokenId, routing,
};
use tokio::sync::Notify;

use crate::auth::{generate_secret, hash_secret};

/// Why a use case failed. Handlers map it to a status in one place (`http::error`).
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// Input breaks rules.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// No such thing.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Conflicts with current state.
    #[error("{0}")]
    Conflict(String),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl OpsError {
    fn field(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(path, message)])
    }
}

impl From<LeadError> for OpsError {
    fn from(e: LeadError) -> Self {
        let text = e.to_string();
        let message = text.split_once(": ").map_or(text.as_str(), |(_, m)| m).to_owned();
        Self::field(e.field(), message)
    }
}

/// Result of the use cases.
pub type OpsResult<T> = Result<T, OpsError>;

/// How long a publisher's offers and destinations are reused for routing before re-reading.
/// Changes made through this process are seen at once; other processes' within this time.
const CATALOG_TTL: Duration = Duration::from_secs(2);

/// A publisher's offers and destinations, for offer resolution and routing.
struct Catalog {
    loaded: Instant,
    offers: Vec<Offer>,
    destinations: Vec<DestinationRecord>,
}

/// The rules the use cases apply, from configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Stage table and privacy rule.
    pub rules: LeadRules,
    /// De-duplication window.
    pub duplicate_window: Duration,
    /// Offer types that need a destination to be published.
    pub destination_required_for: Vec<OfferType>,
    /// Which addresses destinations may reach.
    pub network: NetworkPolicy,
}

impl Policy {
    /// From configuration.
    ///
    /// # Errors
    /// A bad stage table or offer type (already reported by `Config::validate`).
    pub fn from_config(config: &crate::config::Config) -> Result<Self, String> {
        Ok(Self {
            rules: config.lead_rules()?,
            duplicate_window: Duration::from_millis(config.leads.duplicate_window_ms),
            destination_required_for: config.destination_required_for()?,
            network: NetworkPolicy { allow_private: config.delivery.allow_private_destinations },
        })
    }
}

/// The use cases and what they need.
pub struct Ops {
    storage: Arc<dyn Storage>,
    destinations: Destinations,
    clock: Arc<dyn Clock>,
    policy: Policy,
    wake: Arc<Notify>,
    catalogs: Mutex<HashMap<PublisherId, Arc<Catalog>>>,
    ingest_keys: Mutex<HashMap<String, (Instant, IngestKey)>>,
    tokens: Mutex<HashMap<String, (Instant, ApiToken)>>,
}

/// The outcome of Validate.
#[derive(Debug, Clone)]
pub struct Validation {
    /// The test lead that was sent.
    pub lead_id: LeadId,
    /// The receiver's HTTP status, if it answered.
    pub status: Option<u16>,
    /// `(error, hint)` when it failed.
    pub error: Option<(String, String)>,
    /// What to check by hand when the destination cannot confirm the write.
    pub note: Option<String>,
}

/// A lead from the native API, before its offer is resolved.
#[derive(Clone)]
pub struct LeadSubmission {
    /// The draft (publisher set).
    pub draft: LeadDraft,
    /// Offer part of `LeadSource` or an explicit offer, for resolution.
    pub offer_hint: Option<String>,
}

impl Ops {
    /// Assembles the use cases.
    pub fn new(
        storage: Arc<dyn Storage>,
        destinations: Destinations,
        clock: Arc<dyn Clock>,
        policy: Policy,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            storage,
            destinations,
            clock,
            policy,
            wake,
            catalogs: Mutex::new(HashMap::new()),
            ingest_keys: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// The storage (for read-only callers such as the CLI).
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The connector registry.
    pub fn destinations(&self) -> &Destinations {
        &self.destinations
    }

    fn forget_catalog(&self, publisher: &PublisherId) {
        self.catalogs.lock().expect("catalog cache").remove(publisher);
    }

    async fn catalog(&self, publisher: &PublisherId) -> OpsResult<Arc<Catalog>> {
        if let Some(c) = self.catalogs.lock().expect("catalog cache").get(publisher)
            && c.loaded.elapsed() < CATALOG_TTL
        {
            return Ok(Arc::clone(c));
        }
        let (known, offers, destinations) = tokio::join!(
            self.storage.get_publisher(publisher),
            self.storage.list_offers(publisher),
            self.storage.list_destinations(publisher)
        );
        match known {
            Err(StorageError::NotFound) => {
                return Err(OpsError::field(
                    "publisher",
                    "is not a known publisher; create it with POST /v1/publishers",
                ));
            }
            other => drop(other?),
        }
        let (offers, destinations) = (offers?, destinations?);
        let catalog = Arc::new(Catalog { loaded: Instant::now(), offers, destinations });
        self.catalogs.lock().expect("catalog cache").insert(publisher.clone(), Arc::clone(&catalog));
        Ok(catalog)
    }

    /// One publisher.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn require_publisher(&self, publisher: &PublisherId) -> OpsResult<Publisher> {
        match self.storage.get_publisher(publisher).await {
            Err(StorageError::NotFound) => Err(OpsError::NotFound("publisher")),
            other => Ok(other?),
        }
    }

    /// Creates a publisher.
    ///
    /// # Errors
    /// `Conflict` when the id is taken.
    pub async fn create_publisher(&self, id: PublisherId, name: String) -> OpsResult<Publisher> {
        let name = name.trim().to_owned();
        if name.is_empty() || name.len() > 200 {
            return Err(OpsError::field("name", "must be 1-200 characters"));
        }
        let p = Publisher { id, name, created_at: self.clock.now() };
        match self.storage.create_publisher(&p).await {
            Err(StorageError::Conflict) => Err(OpsError::Conflict(format!("publisher '{}' already exists", p.id))),
            other => other.map(|()| p).map_err(Into::into),
        }
    }

    /// Creates or replaces an offer.
    ///
    /// # Errors
    /// `Invalid` when the offer id's publisher part is not `publisher`; `NotFound` for an
    /// unknown publisher.
    pub async fn put_offer(
        &self,
        publisher: &PublisherId,
        id: OfferId,
        title: String,
        offer_type: OfferType,
    ) -> OpsResult<(Offer, Upserted)> {
        if !id.belongs_to(publisher) {
            return Err(OpsError::field(
                "offer_id",
                format!("must start with '{publisher}.' (the publisher part must match)"),
            ));
        }
        let title = title.trim().to_owned();
        if title.is_empty() || title.len() > 200 {
            return Err(OpsError::field("title", "must be 1-200 characters"));
        }
        self.require_publisher(publisher).await?;
        let now = self.clock.now();
        let (created_at, published_at, last_validation) = match self.storage.get_offer(&id).await {
            Ok(existing) => (existing.created_at, existing.published_at, existing.last_validation),
            Err(StorageError::NotFound) => (now, None, None),
            Err(e) => return Err(e.into()),
        };
        let offer = Offer {
            id,
            publisher: publisher.clone(),
            title,
            offer_type,
            created_at,
            updated_at: now,
            published_at,
            last_validation,
        };
        let upserted = self.storage.upsert_offer(&offer).await?;
        self.forget_catalog(publisher);
        Ok((offer, upserted))
    }

    /// An offer by id, whoever its publisher (for the marketplace operator).
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn find_offer(&self, id: &OfferId) -> OpsResult<Offer> {
        match self.storage.get_offer(id).await {
            Err(StorageError::NotFound) => Err(OpsError::NotFound("offer")),
            other => Ok(other?),
        }
    }

    /// One offer of a publisher.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn get_offer(&self, publisher: &PublisherId, id: &OfferId) -> OpsResult<Offer> {
        match self.storage.get_offer(id).await {
            Ok(o) if &o.publisher == publisher => Ok(o),
            Ok(_) | Err(StorageError::NotFound) => Err(OpsError::NotFound("offer")),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates a destination after its connector checked the settings. Returns it and a secret
    /// the connector generated (to show once).
    ///
    /// # Errors
    /// `Invalid` naming each wrong field.
    pub async fn create_destination(
        &self,
        publisher: &PublisherId,
        name: String,
        kind: &str,
        settings: serde_json::Value,
        offers: Option<Vec<OfferId>>,
    ) -> OpsResult<(DestinationRecord, Option<String>)> {
        let mut errors = Vec::new();
        let name = name.trim().to_owned();
        if name.is_empty() || name.len() > 200 {
            errors.push(FieldError::new("name", "must be 1-200 characters"));
        }
        if kind == "azure_blob" {
            return Err(OpsError::field(
                "kind",
                "azure_blob is not supported: the marketplace retired Azure Blob lead destinations in 2019 (they stopped delivering); use azure_table instead",
            ));
        }
        let Some(connector) = self.destinations.get(kind) else {
            let kinds: Vec<&str> = self.destinations.kinds().collect();
            return Err(OpsError::field("kind", format!("must be one of: {}", kinds.join(", "))));
        };
        self.require_publisher(publisher).await?;
        let catalog = self.catalog(publisher).await?;
        if let Some(list) = &offers {
            for (i, o) in list.iter().enumerate() {
                if !o.belongs_to(publisher) {
                    errors.push(FieldError::new(
                        format!("offers[{i}]"),
                        format!("must be an offer of publisher '{publisher}'"),
                    ));
                } else if !catalog.offers.iter().any(|known| &known.id == o) {
                    errors.push(FieldError::new(
                        format!("offers[{i}]"),
                        "is not a known offer; create it first with PUT .../offers/{offer_id}",
                    ));
                }
            }
        }
        let prepared = match connector.prepare(settings, self.policy.network) {
            Ok(p) => Some(p),
            Err(mut field_errors) => {
                errors.append(&mut field_errors);
                None
            }
        };
        if !errors.is_empty() {
            return Err(OpsError::Invalid(errors));
        }
        let prepared = prepared.expect("no errors means settings were prepared");
        let now = self.clock.now();
        let record = DestinationRecord {
            id: DestinationId::generate(now),
            publisher: publisher.clone(),
            name,
            kind: kind.to_owned(),
            settings: prepared.stored,
            offers,
            enabled: true,
            disabled_reason: None,
            consecutive_failures: 0,
            failing_since: None,
            created_at: now,
            updated_at: now,
        };
        self.storage.create_destination(&record).await?;
        self.forget_catalog(publisher);
        Ok((record, prepared.generated_secret))
    }

    /// One destination.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn get_destination(&self, id: &DestinationId) -> OpsResult<DestinationRecord> {
        match self.storage.get_destination(id).await {
            Err(StorageError::NotFound) => Err(OpsError::NotFound("destination")),
            other => Ok(other?),
        }
    }

    /// A publisher's destinations.
    ///
    /// # Errors
    /// `NotFound` for an unknown publisher.
    pub async fn list_destinations(&self, publisher: &PublisherId) -> OpsResult<Vec<DestinationRecord>> {
        self.require_publisher(publisher).await?;
        Ok(self.storage.list_destinations(publisher).await?)
    }

    /// Enables or disables a destination. Disabling keeps its queue; enabling delivers it.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn set_destination_enabled(&self, id: &DestinationId, enabled: bool) -> OpsResult<DestinationRecord> {
        let d = self.get_destination(id).await?;
        let reason = (!enabled).then_some("disabled by an operator");
        self.storage.set_destination_enabled(id, enabled, reason, self.clock.now()).await?;
        self.forget_catalog(&d.publisher);
        self.wake.notify_one();
        self.get_destination(id).await
    }

    /// Sends a test lead in the marketplace's test format to one destination now and reports
    /// the destination's answer. The test lead is stored (flagged `is_test`) so it can be found.
    ///
    /// # Errors
    /// `NotFound` for an unknown destination; storage failures.
    pub async fn validate_destination(&self, id: &DestinationId) -> OpsResult<Validation> {
        let record = self.get_destination(id).await?;
        let catalog = self.catalog(&record.publisher).await?;
        let offer = match &record.offers {
            Some(list) => catalog.offers.iter().find(|o| list.contains(&o.id)),
            None => catalog.offers.first(),
        };
        self.send_test_lead(&record, offer).await
    }

    /// Publishes an offer: refused when its type requires a lead destination and it has none;
    /// otherwise every destination of the offer gets a test lead now, and the results are
    /// recorded on the offer. Publishing succeeds even when a destination fails its test: its
    /// leads queue until it is fixed, and the results say what to fix.
    ///
    /// # Errors
    /// `NotFound`; `Invalid` naming the rule when a required destination is missing.
    pub async fn publish_offer(&self, publisher: &PublisherId, id: &OfferId) -> OpsResult<Offer> {
        let offer = self.get_offer(publisher, id).await?;
        self.forget_catalog(publisher);
        let catalog = self.catalog(publisher).await?;
        let destinations: Vec<&DestinationRecord> = catalog
            .destinations
            .iter()
            .filter(|d| d.offers.as_ref().is_none_or(|list| list.contains(&offer.id)))
            .collect();
        if destinations.is_empty() && self.policy.destination_required_for.contains(&offer.offer_type) {
            return Err(OpsError::field(
                "destinations",
                format!(
                    "an offer of type '{}' needs a lead destination before it is published (rule: \
                     offers.destination_required_for); add one with POST /v1/publishers/{publisher}/destinations",
                    offer.offer_type.as_str()
                ),
            ));
        }
        let mut results = Vec::with_capacity(destinations.len());
        for d in destinations {
            results.push((d, self.send_test_lead(d, Some(&offer)).await?));
        }
        let summary: Vec<serde_json::Value> = results
            .iter()
            .map(|(d, v)| {
                let mut r = serde_json::json!({
                    "destination": d.id.as_str(), "name": d.name, "kind": d.kind, "ok": v.error.is_none(),
                    "status_code": v.status, "test_lead_id": v.lead_id.as_str(),
                });
                if let Some((error, hint)) = &v.error {
                    r["error"] = serde_json::json!(error);
                    r["hint"] = serde_json::json!(hint);
                }
                if let Some(note) = &v.note {
                    r["note"] = serde_json::json!(note);
                }
                r
            })
            .collect();
        let now = self.clock.now();
        self.storage.record_publication(&offer.id, now, &serde_json::Value::Array(summary)).await?;
        self.get_offer(publisher, id).await
    }

    async fn send_test_lead(&self, record: &DestinationRecord, offer: Option<&Offer>) -> OpsResult<Validation> {
        let now = self.clock.now();
        let marker = leadrelay_core::test_lead::marker_at(now);
        let draft = LeadDraft {
            publisher: Some(record.publisher.clone()),
            offer: offer.map(|o| o.id.clone()),
            offer_title: Some(offer.map_or_else(|| "leadrelay test lead".to_owned(), |o| o.title.clone())),
            lead_source: Some("AzureMarketplace".to_owned()),
            action_code: Some("INS".to_owned()),
            customer: leadrelay_core::test_lead::test_customer(now),
            description: Some(marker),
            campaign: None,
            is_test: true,
        };
        let lead = Lead::from_draft(draft, LeadId::generate(now), now, &self.policy.rules)?;
        self.storage
            .insert_leads(
                &[LeadWithDeliveries { lead: lead.clone(), deliveries: Vec::new() }],
                self.policy.duplicate_window,
            )
            .await?;
        let result = match self.destinations.get(&record.kind) {
            None => Err(leadrelay_core::destination::DestinationError::permanent(format!(
                "this build has no connector for kind '{}'",
                record.kind
            ))),
            Some(connector) => match connector.build(&record.settings) {
                Ok(destination) => {
                    destination.send(&lead, leadrelay_core::destination::SendContext { attempt: 1, now }).await
                }
                Err(e) => Err(e),
            },
        };
        Ok(match result {
            Ok(ok) => Validation { lead_id: lead.id, status: ok.status, error: None, note: ok.note },
            Err(e) => Validation {
                lead_id: lead.id,
                status: e.status,
                error: Some((e.message.clone(), e.hint())),
                note: None,
            },
        })
    }

    /// Creates an ingest key; returns it with its plain value (shown once).
    ///
    /// # Errors
    /// `Invalid` for an offer of another publisher or an unknown offer.
    pub async fn create_ingest_key(
        &self,
        publisher: &PublisherId,
        offer: Option<OfferId>,
    ) -> OpsResult<(IngestKey, String)> {
        self.require_publisher(publisher).await?;
        if let Some(o) = &offer {
            if !o.belongs_to(publisher) {
                return Err(OpsError::field("offer", format!("must be an offer of publisher '{publisher}'")));
            }
            if matches!(self.storage.get_offer(o).await, Err(StorageError::NotFound)) {
                return Err(OpsError::field(
                    "offer",
                    "is not a known offer; create it first with PUT .../offers/{offer_id}",
                ));
            }
        }
        // Lowercase letters and digits only, so the key survives any URL handling.
        let plain: String =
            generate_secret("").chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
        let plain = format!("lk{plain}");
        let now = self.clock.now();
        let key = IngestKey {
            id: IngestKeyId::generate(now),
            key_hash: hash_secret(&plain),
            publisher: publisher.clone(),
            offer,
            created_at: now,
            revoked_at: None,
        };
        self.storage.create_ingest_key(&key).await?;
        Ok((key, plain))
    }

    /// Creates an API token; returns it with its plain value (shown once). `publisher` `None`
    /// makes a marketplace token (scope `marketplace` only).
    ///
    /// # Errors
    /// `Invalid` for scopes that do not fit the kind of token.
    pub async fn create_token(
        &self,
        publisher: Option<&PublisherId>,
        scopes: Vec<Scope>,
    ) -> OpsResult<(ApiToken, String)> {
        if scopes.is_empty() {
            return Err(OpsError::field("scopes", "must name at least one scope"));
        }
        for (i, s) in scopes.iter().enumerate() {
            if s.is_publisher_scope() != publisher.is_some() {
                let rule = if publisher.is_some() {
                    "must be ingest, read, write or admin (marketplace tokens are created with POST /v1/marketplace/tokens)"
                } else {
                    "must be marketplace"
                };
                return Err(OpsError::field(format!("scopes[{i}]"), rule));
            }
        }
        if let Some(p) = publisher {
            self.require_publisher(p).await?;
        }
        let prefix = if publisher.is_some() { "lr_pub_" } else { "lr_mkt_" };
        let plain = generate_secret(prefix);
        let now = self.clock.now();
        let mut scopes = scopes;
        scopes.sort_unstable();
        scopes.dedup();
        let token = ApiToken {
            id: TokenId::generate(now),
            token_hash: hash_secret(&plain),
            publisher: publisher.cloned(),
            scopes,
            created_at: now,
            revoked_at: None,
        };
        self.storage.create_api_token(&token).await?;
        Ok((token, plain))
    }

    /// The live API token for a presented bearer value.
    ///
    /// # Errors
    /// `NotFound` for unknown or revoked tokens.
    pub async fn authenticate_token(&self, plain: &str) -> OpsResult<ApiToken> {
        let hash = hash_secret(plain);
        if let Some((at, token)) = self.tokens.lock().expect("token cache").get(&hash)
            && at.elapsed() < CATALOG_TTL
        {
            return Ok(token.clone());
        }
        let token = match self.storage.find_api_token(&hash).await {
            Ok(t) if t.revoked_at.is_none() => t,
            Ok(_) | Err(StorageError::NotFound) => return Err(OpsError::NotFound("token")),
            Err(e) => return Err(e.into()),
        };
        let mut cache = self.tokens.lock().expect("token cache");
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(hash, (Instant::now(), token.clone()));
        Ok(token)
    }

    /// Revokes a publisher's token.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn revoke_token(&self, publisher: &PublisherId, id: &TokenId) -> OpsResult<()> {
        match self.storage.revoke_api_token(publisher, id, self.clock.now()).await {
            Err(StorageError::NotFound) => return Err(OpsError::NotFound("token")),
            other => other?,
        }
        self.tokens.lock().expect("token cache").clear();
        Ok(())
    }

    /// Revokes an ingest key.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn revoke_ingest_key(&self, publisher: &PublisherId, id: &IngestKeyId) -> OpsResult<()> {
        match self.storage.revoke_ingest_key(publisher, id, self.clock.now()).await {
            Err(StorageError::NotFound) => return Err(OpsError::NotFound("ingest key")),
            other => other?,
        }
        self.ingest_keys.lock().expect("key cache").clear();
        Ok(())
    }

    /// The live ingest key for a plain key value.
    ///
    /// # Errors
    /// `NotFound` for unknown or revoked keys.
    pub async fn authenticate_ingest_key(&self, plain: &str) -> OpsResult<IngestKey> {
        // Keys are generated in lowercase; matching in any case survives proxies that change it.
        let hash = hash_secret(&plain.trim().to_ascii_lowercase());
        if let Some((at, key)) = self.ingest_keys.lock().expect("key cache").get(&hash)
            && at.elapsed() < CATALOG_TTL
        {
            return Ok(key.clone());
        }
        let key = match self.storage.find_ingest_key(&hash).await {
            Ok(k) if k.revoked_at.is_none() => k,
            Ok(_) | Err(StorageError::NotFound) => return Err(OpsError::NotFound("ingest key")),
            Err(e) => return Err(e.into()),
        };
        let mut cache = self.ingest_keys.lock().expect("key cache");
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(hash, (Instant::now(), key.clone()));
        Ok(key)
    }

    /// Resolves a lead's offer: the key's binding, else an offer id in the hint, else an offer
    /// whose title equals the hint or `OfferTitle`. `None` when nothing matches: the lead is
    /// still accepted and goes to the destinations that apply to every offer.
    fn resolve_offer<'c>(
        catalog: &'c Catalog,
        bound: Option<&OfferId>,
        hint: Option<&str>,
        title: Option<&str>,
    ) -> Option<&'c Offer> {
        if let Some(b) = bound {
            return catalog.offers.iter().find(|o| &o.id == b);
        }
        let by_id =
            hint.and_then(|h| OfferId::parse(h.trim()).ok()).and_then(|id| catalog.offers.iter().find(|o| o.id == id));
        by_id.or_else(|| {
            [hint, title]
                .into_iter()
                .flatten()
                .map(str::trim)
                .find_map(|t| catalog.offers.iter().find(|o| o.title.eq_ignore_ascii_case(t)))
        })
    }

    /// Accepts leads: resolves offers, plans deliveries, stores everything in one atomic call
    /// (which also merges each lead into its customer and spots duplicates), wakes the worker.
    /// Returns the stored leads after the commit.
    ///
    /// # Errors
    /// `Invalid` naming the first bad field (prefixed `[i].` in a batch); nothing is stored.
    pub async fn accept_leads(
        &self,
        submissions: Vec<LeadSubmission>,
        bound_offer: Option<&OfferId>,
    ) -> OpsResult<Vec<Lead>> {
        let now = self.clock.now();
        let batch = submissions.len() > 1;
        let mut catalogs: HashMap<PublisherId, Arc<Catalog>> = HashMap::new();
        let mut planned = Vec::with_capacity(submissions.len());
        for (i, mut sub) in submissions.into_iter().enumerate() {
            let prefix = |e: OpsError| match e {
                OpsError::Invalid(fields) if batch => OpsError::Invalid(
                    fields.into_iter().map(|f| FieldError::new(format!("[{i}].{}", f.path), f.message)).collect(),
                ),
                other => other,
            };
            let publisher =
                sub.draft.publisher.clone().ok_or_else(|| prefix(OpsError::field("publisher", "is required")))?;
            let catalog = match catalogs.get(&publisher) {
                Some(c) => Arc::clone(c),
                None => {
                    let c = self.catalog(&publisher).await?;
                    catalogs.insert(publisher.clone(), Arc::clone(&c));
                    c
                }
            };
            let offer =
                Self::resolve_offer(&catalog, bound_offer, sub.offer_hint.as_deref(), sub.draft.offer_title.as_deref());
            if let Some(o) = offer {
                sub.draft.offer = Some(o.id.clone());
                if sub.draft.offer_title.as_deref().is_none_or(|t| t.trim().is_empty()) {
                    sub.draft.offer_title = Some(o.title.clone());
                }
            }
            let lead = Lead::from_draft(sub.draft, LeadId::generate(now), now, &self.policy.rules)
                .map_err(|e| prefix(e.into()))?;
            let deliveries = routing::plan(&lead, &catalog.destinations, &self.destinations)
                .into_iter()
                .map(|destination| NewDelivery { id: DeliveryId::generate(now), destination })
                .collect();
            planned.push(LeadWithDeliveries { lead, deliveries });
        }
        let accepted = self.storage.insert_leads(&planned, self.policy.duplicate_window).await?;
        if planned.iter().zip(&accepted).any(|(p, a)| a.duplicate_of.is_none() && !p.deliveries.is_empty()) {
            self.wake.notify_one();
        }
        Ok(planned
            .into_iter()
            .zip(accepted)
            .map(|(p, a)| Lead { customer_id: a.customer_id, duplicate_of: a.duplicate_of, ..p.lead })
            .collect())
    }

    /// A customer with its timeline.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn get_customer(&self, id: &CustomerId) -> OpsResult<CustomerDetail> {
        match self.storage.get_customer(id).await {
            Err(StorageError::NotFound) => Err(OpsError::NotFound("customer")),
            other => Ok(other?),
        }
    }

    /// Undoes a wrong merge: `lead_ids` move to a new customer. Leads that were held back as
    /// duplicates only because of the merge are delivered now. Returns the new customer.
    ///
    /// # Errors
    /// `NotFound`; `Invalid` when a lead is not this customer's or the list is empty.
    pub async fn split_customer(&self, id: &CustomerId, lead_ids: Vec<LeadId>) -> OpsResult<CustomerDetail> {
        let customer = self.get_customer(id).await?;
        if lead_ids.is_empty() {
            return Err(OpsError::field("lead_ids", "must name at least one lead of this customer"));
        }
        for (i, l) in lead_ids.iter().enumerate() {
            if !customer.leads.iter().any(|c| &c.id == l) {
                return Err(OpsError::field(format!("lead_ids[{i}]"), "is not a lead of this customer"));
            }
        }
        let moving = |l: &LeadId| lead_ids.contains(l);
        // A duplicate stays one only if it and its original end up on the same side.
        let released: Vec<&Lead> = customer
            .leads
            .iter()
            .filter(|l| l.duplicate_of.as_ref().is_some_and(|orig| moving(orig) != moving(&l.id)))
            .collect();
        let catalog = self.catalog(&customer.publisher).await?;
        let now = self.clock.now();
        let released = released
            .into_iter()
            .map(|l| {
                let deliveries = routing::plan(l, &catalog.destinations, &self.destinations)
                    .into_iter()
                    .map(|destination| NewDelivery { id: DeliveryId::generate(now), destination })
                    .collect();
                (l.id.clone(), deliveries)
            })
            .collect();
        let new_customer = CustomerId::generate(now);
        let request =
            SplitRequest { customer: id.clone(), new_customer: new_customer.clone(), leads: lead_ids, released, now };
        match self.storage.split_customer(&request).await {
            Err(StorageError::NotFound) => {
                return Err(OpsError::Conflict("the customer changed meanwhile; read it again and retry".into()));
            }
            other => other?,
        }
        self.wake.notify_one();
        self.get_customer(&new_customer).await
    }

    /// Leads, newest first.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn list_leads(&self, filter: &LeadFilter, page: &PageRequest) -> OpsResult<Page<Lead>> {
        Ok(self.storage.list_leads(filter, page).await?)
    }

    /// One lead with its deliveries and attempts.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn get_lead(&self, id: &LeadId) -> OpsResult<LeadDetail> {
        match self.storage.get_lead(id).await {
            Err(StorageError::NotFound) => Err(OpsError::NotFound("lead")),
            other => Ok(other?),
        }
    }

    /// Sends one delivery again now, with a fresh attempt budget.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` while it is in flight.
    pub async fn retry_delivery(&self, id: &DeliveryId) -> OpsResult<Delivery> {
        let d = match self.storage.retry_delivery(id, self.clock.now()).await {
            Err(StorageError::NotFound) => return Err(OpsError::NotFound("delivery")),
            Err(StorageError::Conflict) => {
                return Err(OpsError::Conflict(
                    "the delivery is being attempted right now; try again in a moment".into(),
                ));
            }
            other => other?,
        };
        self.wake.notify_one();
        Ok(d)
    }

    /// Replays deliveries to a destination; returns how many were queued.
    ///
    /// # Errors
    /// `NotFound`; `Invalid` when `until` is before `since`.
    pub async fn replay(&self, request: ReplayRequest) -> OpsResult<u64> {
        if let (Some(s), Some(u)) = (request.since, request.until)
            && u <= s
        {
            return Err(OpsError::field("until", "must be later than since"));
        }
        let n = match self.storage.replay(&request, self.clock.now()).await {
            Err(StorageError::NotFound) => return Err(OpsError::NotFound("destination")),
            other => other?,
        };
        self.wake.notify_one();
        Ok(n)
    }

    /// One delivery.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn get_delivery(&self, id: &DeliveryId) -> OpsResult<Delivery> {
        match self.storage.get_delivery(id).await {
            Err(StorageError::NotFound) => Err(OpsError::NotFound("delivery")),
            other => Ok(other?),
        }
    }

    /// Deliveries, newest first.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn list_deliveries(&self, filter: &DeliveryFilter, page: &PageRequest) -> OpsResult<Page<Delivery>> {
        Ok(self.storage.list_deliveries(filter, page).await?)
    }
}
