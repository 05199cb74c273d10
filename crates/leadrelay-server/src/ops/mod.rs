//! The use cases, one concern per module. Handlers, the CLI and the dashboard call these;
//! nobody reimplements one. Each use case makes one storage call that changes state, so it is
//! atomic; an audited one then appends its audit entry (see `audit`). Errors speak of the domain (fields, rules, things not found), never of routes, so
//! every caller can show them.

mod access;
mod audit;
mod cache;
mod customers;
mod deliveries;
mod destinations;
mod events;
mod keys;
pub mod lead_csv;
mod leads;
pub mod login_limit;
mod metrics;
pub mod people;
mod privacy;
mod publishers;
mod sales;

pub use cache::TtlCache;
pub use destinations::Validation;
pub use events::MarketplaceEvent;
pub use keys::reseal_task;
pub use lead_csv::{CsvImport, CsvRows, RowFailure, read_leads_csv};
pub use leads::{LeadOrigin, LeadSubmission};
pub use people::{AddedUser, Invitation, NewUser, Password, SignedIn};
pub use privacy::{SubjectExport, retention_task};
pub use publishers::DestinationTest;
pub use sales::{DueList, NewActivity, OpportunityPatch, OpportunityView, owner_filter, sales_notice_task};

use std::sync::Arc;
use std::time::Duration;

use leadrelay_core::destination::{DestinationRecord, Destinations, FieldError, NetworkPolicy};
use leadrelay_core::storage::{ApiToken, IngestKey, Offer, OutboxDepth, Storage, StorageError};
use leadrelay_core::{Clock, LeadRules, OfferType, PublisherId};
use tokio::sync::Notify;

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
    /// A sign-in named an unknown address, a user still invited, or a wrong password (which
    /// one is never told).
    #[error("the e-mail address or the password is wrong")]
    InvalidCredentials,
    /// Too many failed sign-ins of this address or from this client; try again after this long.
    #[error("too many failed sign-ins; try again in {} s", .0.as_secs())]
    TooManyAttempts(Duration),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl OpsError {
    fn field(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(path, message)])
    }
}

/// Result of the use cases.
pub type OpsResult<T> = Result<T, OpsError>;

/// How long a publisher's offers and destinations, a token or an ingest key are reused before
/// re-reading. Changes made through this process are seen at once; other processes' within this time.
const CACHE_TTL: Duration = Duration::from_secs(2);

/// The most entries one cache holds.
const CACHE_CAPACITY: usize = 10_000;

/// A publisher's offers and destinations, for offer resolution and routing.
struct Catalog {
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
    /// The most destinations one publisher may have (each lead makes a delivery per destination).
    pub max_destinations_per_publisher: usize,
    /// How long `/metrics` reuses the outbox depths it read.
    pub metrics_cache: Duration,
    /// How long a sign-in's session lasts.
    pub session_lifetime: Duration,
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
            max_destinations_per_publisher: config.delivery.max_destinations_per_publisher,
            metrics_cache: Duration::from_millis(config.telemetry.metrics_cache_ms),
            session_lifetime: Duration::from_secs(u64::from(config.workspace.session_hours) * 3600),
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
    catalogs: TtlCache<PublisherId, Arc<Catalog>>,
    ingest_keys: TtlCache<String, IngestKey>,
    tokens: TtlCache<String, ApiToken>,
    outbox_depths: TtlCache<(), Arc<Vec<OutboxDepth>>>,
    logins: login_limit::LoginLimiter,
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
            outbox_depths: TtlCache::new(policy.metrics_cache, 1),
            storage,
            destinations,
            clock,
            policy,
            wake,
            catalogs: TtlCache::new(CACHE_TTL, CACHE_CAPACITY),
            ingest_keys: TtlCache::new(CACHE_TTL, CACHE_CAPACITY),
            tokens: TtlCache::new(CACHE_TTL, CACHE_CAPACITY),
            logins: login_limit::LoginLimiter::default(),
        }
    }

    /// Now, by the clock every use case reads.
    pub fn now(&self) -> leadrelay_core::Timestamp {
        self.clock.now()
    }

    /// The storage behind the use cases.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The connector registry.
    pub fn destinations(&self) -> &Destinations {
        &self.destinations
    }

    fn forget_catalog(&self, publisher: &PublisherId) {
        self.catalogs.remove(publisher);
    }

    async fn catalog(&self, publisher: &PublisherId) -> OpsResult<Arc<Catalog>> {
        if let Some(c) = self.catalogs.get(publisher) {
            return Ok(c);
        }
        let (known, offers, destinations) = tokio::join!(
            self.storage.get_publisher(publisher),
            self.storage.list_offers(publisher),
            self.storage.list_destinations(publisher)
        );
        match known {
            Err(StorageError::NotFound) => {
                return Err(OpsError::field("publisher", "is not a known publisher"));
            }
            other => drop(other?),
        }
        let (offers, destinations) = (offers?, destinations?);
        let catalog = Arc::new(Catalog { offers, destinations });
        self.catalogs.insert(publisher.clone(), Arc::clone(&catalog));
        Ok(catalog)
    }
}
