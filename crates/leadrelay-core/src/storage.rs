//! The storage trait. Methods are use cases, not table CRUD, and each one is atomic on its own:
//! when two writes must succeed together they are one method. Backends map their driver errors
//! to [`StorageError`] so nothing above them sees SQL.

use std::time::Duration;

use crate::audit::{AuditEntry, AuditFilter};
use crate::clock::Timestamp;
use crate::destination::{DestinationRecord, ErrorClass};
use crate::ids::{CustomerId, DeliveryId, DestinationId, IngestKeyId, LeadId, PublisherId};
use crate::ids::{OpportunityId, UserId};
use crate::lead::Lead;
use crate::offer::{OfferId, OfferType};
use crate::sales::kpi::{KpiQuery, KpiReport};
use crate::sales::{Activity, Opportunity, OpportunityStatus, SalesSettings, Session, User};

/// Names of the metrics every backend reports through the `metrics` facade (the server gives
/// them their histogram buckets). Values are counts and seconds, never labelled with data.
pub mod metric_names {
    /// Histogram: how many callers' writes one commit carried (group commit).
    pub const COMMIT_BATCH_JOBS: &str = "leadrelay_storage_commit_batch_jobs";
    /// Histogram: seconds from the start of a write transaction to its durable commit.
    pub const COMMIT_SECONDS: &str = "leadrelay_storage_commit_seconds";
}

/// Errors a backend reports.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The thing asked for does not exist.
    #[error("not found")]
    NotFound,
    /// A unique key is taken.
    #[error("already exists")]
    Conflict,
    /// The database cannot be reached or is shutting down; try again later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Anything else (a bug or corruption).
    #[error("storage error")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// `Result` with [`StorageError`].
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// A publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publisher {
    /// Id.
    pub id: PublisherId,
    /// Display name.
    pub name: String,
    /// Created.
    pub created_at: Timestamp,
}

/// An offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// `publisherid.offerid`.
    pub id: OfferId,
    /// Owner.
    pub publisher: PublisherId,
    /// Display title (what the marketplace sends as `OfferTitle`).
    pub title: String,
    /// Type.
    pub offer_type: OfferType,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
    /// When it was last published (`None`: a draft).
    pub published_at: Option<Timestamp>,
    /// Each destination's answer to the test lead of the last publish, as JSON.
    pub last_validation: Option<serde_json::Value>,
}

/// Whether an upsert created or replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    /// It did not exist.
    Created,
    /// It existed and was replaced.
    Updated,
}

/// An ingest key: the secret itself is stored only as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestKey {
    /// Id.
    pub id: IngestKeyId,
    /// SHA-256 of the key, hex.
    pub key_hash: String,
    /// Owner.
    pub publisher: PublisherId,
    /// Offer every lead through this key belongs to, if bound.
    pub offer: Option<OfferId>,
    /// Created.
    pub created_at: Timestamp,
    /// Revoked keys authenticate nothing.
    pub revoked_at: Option<Timestamp>,
}

/// An API token: the secret itself is stored only as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Id.
    pub id: crate::ids::TokenId,
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// The publisher it is bound to; `None` for marketplace tokens.
    pub publisher: Option<PublisherId>,
    /// What it allows.
    pub scopes: Vec<crate::access::Scope>,
    /// Created.
    pub created_at: Timestamp,
    /// Revoked tokens authenticate nothing.
    pub revoked_at: Option<Timestamp>,
}

/// A delivery's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or in flight under a lease).
    Pending,
    /// Delivered.
    Delivered,
    /// Given up: in the dead-letter list, replayable.
    Dead,
}

impl DeliveryStatus {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Dead].into_iter().find(|v| v.as_str() == s)
    }
}

/// A new outbox row, written with its lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// Id.
    pub id: DeliveryId,
    /// Target.
    pub destination: DestinationId,
}

/// A lead with the outbox rows planned for it.
#[derive(Debug, Clone)]
pub struct LeadWithDeliveries {
    /// The lead.
    pub lead: Lead,
    /// One row per destination that must get it.
    pub deliveries: Vec<NewDelivery>,
}

/// What storage decided for an accepted lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The customer it belongs to.
    pub customer_id: Option<CustomerId>,
    /// The earlier lead it repeats, if it is a duplicate (then it got no deliveries).
    pub duplicate_of: Option<LeadId>,
    /// The address was erased before (an erasure tombstone matches it).
    pub previously_erased: bool,
    /// The opportunity the lead opened or joined (`None`: it is no sales work, see
    /// `sales::opens_opportunity`, or a duplicate).
    pub opportunity: Option<OpportunityId>,
}

/// Erase one person's personal data (see [`LeadStore::erase_person`]).
#[derive(Debug, Clone)]
pub struct ErasureRequest {
    /// Only this publisher's data; `None`: every publisher's.
    pub publisher: Option<PublisherId>,
    /// The address, normalised (trimmed, lowercase).
    pub email: String,
    /// Who asked (an audit actor id: `admin` or a token id).
    pub requested_by: String,
    /// When.
    pub now: Timestamp,
    /// The tombstone's id.
    pub id: String,
}

/// What an erasure did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErasureReport {
    /// Leads whose personal data was removed.
    pub leads: u64,
    /// Customers no longer matched by the address.
    pub customers: u64,
    /// Deliveries still pending, cancelled (they would have sent the person's data).
    pub cancelled_deliveries: u64,
    /// Destinations that had already received the person, to erase there too.
    pub delivered_to: Vec<DestinationId>,
}

/// A customer and its timeline.
#[derive(Debug, Clone)]
pub struct CustomerDetail {
    /// Id.
    pub id: CustomerId,
    /// Owner.
    pub publisher: PublisherId,
    /// Created (its first lead).
    pub created_at: Timestamp,
    /// Its leads, oldest first.
    pub leads: Vec<Lead>,
}

/// Undoing a wrong merge: `leads` move from `customer` to the new customer `new_customer`.
/// Leads that were suppressed only because of the merge are `released`: they stop being
/// duplicates and get these outbox rows.
#[derive(Debug, Clone)]
pub struct SplitRequest {
    /// The customer to split.
    pub customer: CustomerId,
    /// The new customer's id.
    pub new_customer: CustomerId,
    /// The leads that move.
    pub leads: Vec<LeadId>,
    /// Leads that are no longer duplicates, with their deliveries.
    pub released: Vec<(LeadId, Vec<NewDelivery>)>,
    /// Now.
    pub now: Timestamp,
}

/// A delivery (outbox row) as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Id.
    pub id: DeliveryId,
    /// The lead.
    pub lead_id: LeadId,
    /// The destination.
    pub destination: DestinationId,
    /// Owner.
    pub publisher: PublisherId,
    /// State.
    pub status: DeliveryStatus,
    /// Attempts counted against the schedule.
    pub attempts: u32,
    /// When it is due (pending only).
    pub next_attempt_at: Option<Timestamp>,
    /// The last error, if the last attempt failed.
    pub last_error: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// One recorded attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The delivery.
    pub delivery_id: DeliveryId,
    /// 1-based, in order.
    pub number: u32,
    /// When it started.
    pub started_at: Timestamp,
    /// How long it took.
    pub duration_ms: u64,
    /// HTTP status, if any.
    pub status_code: Option<u16>,
    /// `None` on success.
    pub error_class: Option<ErrorClass>,
    /// Short description (no personal data).
    pub message: Option<String>,
    /// Start of the response body.
    pub excerpt: Option<String>,
}

/// A lead with its deliveries and their attempts.
#[derive(Debug, Clone)]
pub struct LeadDetail {
    /// The lead.
    pub lead: Lead,
    /// Its deliveries with their attempts, oldest first.
    pub deliveries: Vec<(Delivery, Vec<Attempt>)>,
}

/// A delivery claimed by a worker, with everything needed to send it.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The delivery.
    pub delivery: Delivery,
    /// Its lead.
    pub lead: Lead,
    /// Its destination.
    pub destination: DestinationRecord,
    /// Identifies this claim; the result is recorded only while the lease is ours.
    pub lease_token: String,
    /// An earlier claim leased this delivery and its lease ran out with no result recorded
    /// (its worker died, hung, or could not record): this claim is a lease expiry.
    pub lease_expired: bool,
}

/// What an attempt led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextState {
    /// Delivered.
    Delivered,
    /// Pending again, due at this time. `counts` says whether the attempt used up a retry.
    RetryAt {
        /// Due time.
        at: Timestamp,
        /// Whether it counted against the schedule (throttling does not).
        counts: bool,
    },
    /// Dead letter.
    Dead,
}

/// An attempt's result, written together with the delivery's next state and the
/// destination's health.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// The attempt.
    pub attempt: Attempt,
    /// The lease this worker holds.
    pub lease_token: String,
    /// The delivery's next state.
    pub next: NextState,
    /// The destination.
    pub destination: DestinationId,
    /// Disable the destination with this reason (410 Gone, failing for days).
    pub disable_destination: Option<String>,
    /// Pause the whole destination until then (the receiver throttled us); `None` ends a pause.
    pub throttle_destination_until: Option<Timestamp>,
}

/// Filters for the lead list.
#[derive(Debug, Clone, Default)]
pub struct LeadFilter {
    /// Only this publisher's leads.
    pub publisher: Option<PublisherId>,
    /// Only this offer.
    pub offer: Option<OfferId>,
    /// Only this customer's leads.
    pub customer: Option<CustomerId>,
    /// Only this source (its marketplace spelling).
    pub source: Option<String>,
    /// Whole words (or whole email addresses) that must all appear in the first name, last
    /// name, email or company, any case (see `vault::search_words`). A backend answers it from
    /// its blind index of keyed hashes, never from plaintext; a text with no word matches
    /// nothing.
    pub text: Option<String>,
    /// Only test leads (`true`) or only real ones (`false`).
    pub is_test: Option<bool>,
    /// Only this action code (as stored, compared case-insensitively).
    pub action: Option<String>,
    /// Only this stage.
    pub stage: Option<String>,
    /// Received at or after.
    pub since: Option<Timestamp>,
    /// Received before.
    pub until: Option<Timestamp>,
}

/// Filters for the delivery list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// Only this publisher's deliveries.
    pub publisher: Option<PublisherId>,
    /// Only this status.
    pub status: Option<DeliveryStatus>,
    /// Only this destination.
    pub destination: Option<DestinationId>,
}

/// A page request: newest first, after `cursor` (an id from a previous page).
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// How many items at most.
    pub limit: u32,
    /// Continue after this id.
    pub cursor: Option<String>,
}

/// A page of results.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// Items, newest first.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `None` at the end.
    pub next_cursor: Option<String>,
}

/// What a worker asks of [`OutboxStore::claim_due_deliveries`].
#[derive(Debug, Clone, Copy)]
pub struct ClaimRequest {
    /// Now, from the worker's clock: deliveries due at or before it may be claimed.
    pub now: Timestamp,
    /// How many deliveries at most.
    pub limit: u32,
    /// How long the claim hides them from other claims.
    pub lease: Duration,
    /// How many deliveries of one destination may be leased at once, counting those already
    /// leased by any worker: a receiver that hangs holds at most this many.
    pub per_destination: u32,
}

/// One destination's outbox, as [`OutboxStore::outbox_depths`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxDepth {
    /// The destination's publisher.
    pub publisher: PublisherId,
    /// The destination.
    pub destination: DestinationId,
    /// Whether it is enabled (a disabled one keeps its queue, parked).
    pub enabled: bool,
    /// The end of its throttle pause, if one was set (it may have passed).
    pub paused_until: Option<Timestamp>,
    /// Its deliveries neither delivered nor dead: due, scheduled for a retry, in flight under a
    /// lease, or parked while it is disabled.
    pub waiting: u64,
}

/// Which deliveries a replay sends again.
#[derive(Debug, Clone)]
pub struct ReplayRequest {
    /// The destination.
    pub destination: DestinationId,
    /// Leads received at or after.
    pub since: Option<Timestamp>,
    /// Leads received before.
    pub until: Option<Timestamp>,
    /// Only dead letters; otherwise every lead of the range that the destination applies to,
    /// including leads received before it existed.
    pub only_dead: bool,
}

/// What a replay writes, after routing chose the leads: for each lead, its delivery to the
/// destination is made due now with a fresh attempt budget, or created (with `delivery` as id)
/// when it has none.
#[derive(Debug, Clone)]
pub struct ReplayPlan {
    /// The destination.
    pub destination: DestinationId,
    /// The leads, each with the id a new delivery would get.
    pub leads: Vec<(LeadId, DeliveryId)>,
}

/// Publishers, their offers and their destinations: what routing reads.
#[async_trait::async_trait]
pub trait CatalogStore: Send + Sync + 'static {
    /// Creates a publisher. [`StorageError::Conflict`] if the id is taken.
    ///
    /// Obligation: of any number of concurrent creates of one id, exactly one succeeds.
    async fn create_publisher(&self, publisher: &Publisher) -> Result<()>;
    /// One publisher (`NotFound` if unknown).
    async fn get_publisher(&self, id: &PublisherId) -> Result<Publisher>;
    /// Creates an offer or replaces its title, type and `updated_at`, and says which. Replacing
    /// keeps its `created_at` and its publication, which only
    /// [`CatalogStore::record_publication`] writes. `NotFound` if its publisher does not exist.
    async fn upsert_offer(&self, offer: &Offer) -> Result<Upserted>;
    /// One offer (`NotFound` if unknown).
    async fn get_offer(&self, id: &OfferId) -> Result<Offer>;
    /// Marks an offer published at `at`, with the validation results of its destinations,
    /// replacing the previous publication. `NotFound` if the offer does not exist.
    async fn record_publication(&self, id: &OfferId, at: Timestamp, results: &serde_json::Value) -> Result<()>;
    /// A publisher's offers, by id.
    async fn list_offers(&self, publisher: &PublisherId) -> Result<Vec<Offer>>;
    /// Creates a destination. `Conflict` if the id is taken, `NotFound` if its publisher does
    /// not exist.
    async fn create_destination(&self, destination: &DestinationRecord) -> Result<()>;
    /// One destination (`NotFound` if unknown).
    async fn get_destination(&self, id: &DestinationId) -> Result<DestinationRecord>;
    /// A publisher's destinations, oldest first.
    async fn list_destinations(&self, publisher: &PublisherId) -> Result<Vec<DestinationRecord>>;
    /// Enables or disables a destination (`NotFound` if unknown). Disabling records `reason`
    /// and parks its waiting deliveries, scheduled retries included (no claim returns them and
    /// [`OutboxStore::next_due_at`] ignores them), without touching one in flight: its result
    /// is recorded, and a retry it asks for is parked too. Re-enabling clears the reason and
    /// the failure count and makes every parked delivery due at `now`.
    async fn set_destination_enabled(
        &self,
        id: &DestinationId,
        enabled: bool,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<()>;
}

/// Credentials: ingest keys and API tokens, stored only as hashes.
#[async_trait::async_trait]
pub trait AccessStore: Send + Sync + 'static {
    /// Stores an ingest key. `Conflict` if its id or its hash is taken: one hash names one key.
    async fn create_ingest_key(&self, key: &IngestKey) -> Result<()>;
    /// The key with this hash (revoked keys included; the caller checks); `NotFound` if none.
    async fn find_ingest_key(&self, key_hash: &str) -> Result<IngestKey>;
    /// Revokes a publisher's key; revoking twice keeps the first time. `NotFound` if the
    /// publisher has no such key.
    async fn revoke_ingest_key(&self, publisher: &PublisherId, id: &IngestKeyId, now: Timestamp) -> Result<()>;
    /// Stores an API token. `Conflict` if its id or its hash is taken: one hash names one token.
    async fn create_api_token(&self, token: &ApiToken) -> Result<()>;
    /// The token with this hash (revoked ones included; the caller checks); `NotFound` if none.
    async fn find_api_token(&self, token_hash: &str) -> Result<ApiToken>;
    /// Revokes a publisher's token, as [`AccessStore::revoke_ingest_key`].
    async fn revoke_api_token(&self, publisher: &PublisherId, id: &crate::ids::TokenId, now: Timestamp) -> Result<()>;
    /// The SHA-256 (hex) of the admin token, shared by every process on this database; `None`
    /// before the first start.
    async fn admin_token_hash(&self) -> Result<Option<String>>;
    /// Sets the admin token's hash and answers whether `hash` was stored. With `only_if_unset`,
    /// keeps an existing one and answers `false`; without, replaces it (a rotation).
    ///
    /// Obligation: of any number of concurrent first starts with `only_if_unset`, exactly one
    /// stores its hash (answers `true`) and all of them then read that one.
    async fn set_admin_token_hash(&self, hash: &str, only_if_unset: bool) -> Result<bool>;
}

/// Leads and the customers they merge into.
#[async_trait::async_trait]
pub trait LeadStore: Send + Sync + 'static {
    /// Stores leads and their outbox rows, all or nothing, durably, before returning. In the
    /// same transaction each non-test lead is merged into its customer and checked for a
    /// duplicate: same customer, offer and action code within `duplicate_window`. A duplicate
    /// is stored with `duplicate_of` (the earliest original) and no deliveries. Answers one
    /// [`Accepted`] per lead, in order; a lead sees the leads before it in its own batch. A
    /// delivery whose destination is disabled is stored parked. `Conflict` if a lead id is
    /// taken (and then nothing of the batch is stored).
    ///
    /// Obligations, whatever the backend's concurrency: any number of concurrent calls with
    /// leads of one new buyer create **one** customer (never two), exactly one of those leads
    /// starts it (`merge_reason` unset) and the others merge into it; of any number of
    /// concurrent repeats of one (customer, offer, action) exactly one is the original and
    /// every other one its duplicate.
    ///
    /// Sales work, in the same transaction: a lead that `sales::opens_opportunity` and is not a
    /// duplicate joins its customer's latest opportunity for its offer unless that one was
    /// lost or disqualified (its stage moves forward by `sales::stage_rank`, never back), or
    /// opens a new one: status `new`, the first touch due by `sales::sla::first_touch_due`
    /// under the publisher's settings, and, with round-robin on, the next person of the team
    /// in order who owns fewer open opportunities than the cap (none, when all are at it).
    /// Obligation: concurrent leads of one customer and offer open one opportunity, and
    /// concurrent openings never give round-robin's turn to two of them.
    async fn insert_leads(&self, leads: &[LeadWithDeliveries], duplicate_window: Duration) -> Result<Vec<Accepted>>;
    /// A customer with its timeline, oldest first (`NotFound` if unknown).
    async fn get_customer(&self, id: &CustomerId) -> Result<CustomerDetail>;
    /// Moves leads to a new customer (see [`SplitRequest`]), all or nothing. `NotFound` if the
    /// customer or a lead of it does not exist (also when another split moved it meanwhile).
    ///
    /// Obligation: of concurrent splits naming the same leads exactly one succeeds; every other
    /// one is `NotFound` and leaves nothing behind (no customer of its own, no lead moved, no
    /// lead released a second time).
    async fn split_customer(&self, request: &SplitRequest) -> Result<()>;
    /// Removes one person's personal data, in one atomic call: every customer field but the
    /// country, the notes and the raw `LeadSource` of each lead with the address; its search
    /// terms; the customer match; the messages and excerpts of its attempts; its pending
    /// deliveries (cancelled: dead, with a note). Keeps a tombstone (the keyed hash of the
    /// address, when, who) so later leads with the address are flagged `previously_erased`.
    ///
    /// Obligation: all of it or nothing; a lead inserted concurrently is either erased or
    /// flagged, never left with the person's data and no flag.
    async fn erase_person(&self, request: &ErasureRequest) -> Result<ErasureReport>;
    /// Retention: removes the personal data (as [`LeadStore::erase_person`] does for one
    /// person, without a tombstone) of at most `limit` leads received before `cutoff` that
    /// still hold some, oldest first; returns how many. The non-personal facts (source,
    /// action, stage, offer, country, times, delivery outcomes) stay for the KPIs.
    async fn strip_personal_data(&self, cutoff: Timestamp, now: Timestamp, limit: u32) -> Result<u64>;
    /// One lead with its deliveries and attempts (`NotFound` if unknown).
    async fn get_lead(&self, id: &LeadId) -> Result<LeadDetail>;
    /// The leads of these ids that exist (unknown ids are left out), in no particular order:
    /// what a list of opportunities shows of each one's customer, read in one call.
    async fn get_leads(&self, ids: &[LeadId]) -> Result<Vec<Lead>>;
    /// Leads, newest first.
    async fn list_leads(&self, filter: &LeadFilter, page: &PageRequest) -> Result<Page<Lead>>;
}

/// The outbox: deliveries, their leases and their attempts.
#[async_trait::async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// Leases due deliveries of enabled, unpaused destinations until `now + lease` (see
    /// [`ClaimRequest`]), each with its lead and destination. Fair: a claim takes the oldest due
    /// delivery of every destination (the destinations with the oldest first) before a second
    /// one of any, so a backlog at one destination cannot crowd out another.
    ///
    /// Obligations, across any number of processes: a leased delivery is returned by no other
    /// claim until its lease ends (concurrent claims never share a delivery); the
    /// per-destination cap holds across concurrent claims and counts the deliveries other
    /// claims still hold; a lease that ends without a recorded attempt makes the delivery due
    /// again by itself (a dead process's claims need no clean-up); each claim gets a fresh
    /// lease token, and says of each delivery whether it still carried an earlier claim's lease
    /// ([`Claimed::lease_expired`]), judged in the same atomic step as the claim.
    async fn claim_due_deliveries(&self, request: &ClaimRequest) -> Result<Vec<Claimed>>;
    /// Records attempts, each with its delivery's next state and its destination's health, in
    /// one transaction. Attempts are numbered from 1 per delivery. A success resets the
    /// destination's failure count, any failure adds one (starting `failing_since`), and
    /// `disable_destination` disables it and parks its queue as
    /// [`CatalogStore::set_destination_enabled`] does.
    ///
    /// A record's `throttle_destination_until` pauses its destination (no claim returns its
    /// deliveries until then; after it, at most one is leased at a time until an answer that is
    /// not a throttle ends the pause). Consecutive throttled attempts of one delivery share one
    /// attempt row, so a receiver that keeps throttling cannot grow the log.
    ///
    /// Obligation: an attempt whose lease token is no longer the delivery's (the lease expired
    /// and another claim took it) is logged but changes neither the delivery's state nor the
    /// destination's health, enabled state or pause, even when it races that claim. While no
    /// other claim took the delivery, a result recorded after its lease ended still counts
    /// (the send happened).
    async fn record_attempts(&self, records: &[AttemptRecord]) -> Result<()>;
    /// The earliest `next_attempt_at` among pending deliveries of enabled destinations; those of
    /// a paused destination count from the end of its pause.
    async fn next_due_at(&self) -> Result<Option<Timestamp>>;
    /// Every destination, by id, with its count of deliveries not yet delivered nor dead (0
    /// included) and its state, for the metrics. It reads the waiting deliveries only (through
    /// an index), never the delivered and dead history; callers still cache it, since a scraper
    /// may ask often.
    async fn outbox_depths(&self) -> Result<Vec<OutboxDepth>>;
    /// One delivery (`NotFound` if unknown).
    async fn get_delivery(&self, id: &DeliveryId) -> Result<Delivery>;
    /// Deliveries, newest first (by id).
    async fn list_deliveries(&self, filter: &DeliveryFilter, page: &PageRequest) -> Result<Page<Delivery>>;
    /// Makes one delivery due now with a fresh attempt budget, whatever its state but in
    /// flight (`Conflict` while leased, changing nothing); parked instead while its destination
    /// is disabled. `NotFound` if unknown.
    async fn retry_delivery(&self, id: &DeliveryId, now: Timestamp) -> Result<Delivery>;
    /// The leads a replay may send again (see [`ReplayRequest`]), by id after `after`, at most
    /// `limit`: leads of the destination's publisher received in the range, duplicates left
    /// out; with `only_dead`, only those whose delivery to the destination is dead. Storage
    /// does not decide which of them the destination applies to: the caller plans with
    /// `routing`, the rule every way in uses. `NotFound` if the destination does not exist.
    async fn replay_candidates(&self, request: &ReplayRequest, after: Option<&LeadId>, limit: u32)
    -> Result<Vec<Lead>>;
    /// Carries out a [`ReplayPlan`] in one transaction and returns how many deliveries were
    /// made due (or parked, when the destination is disabled). Deliveries in flight are left
    /// alone and not counted; a lead of another publisher is skipped. `NotFound` if the
    /// destination does not exist.
    async fn replay(&self, plan: &ReplayPlan, now: Timestamp) -> Result<u64>;
}

/// The audit log: append-only, so it has no method that changes or removes an entry.
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Appends one entry, durably, before returning. `Conflict` if its id is taken (an entry is
    /// never replaced).
    async fn append_audit(&self, entry: &AuditEntry) -> Result<()>;
    /// Entries, newest first (by id, which is time-ordered).
    async fn list_audit(&self, filter: &AuditFilter, page: &PageRequest) -> Result<Page<AuditEntry>>;
}

/// Which opportunities a list shows. Only open ones (new, contacted, qualified) have a due time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueFilter {
    /// Open, and the next touch (the first touch while there is none, else `next_touch_at`) is
    /// due before this time: "due today" is the end of the publisher's day, "overdue" is now.
    Before(Timestamp),
    /// Open, never touched, and the first-touch SLA ended before this time (now).
    SlaBreached(Timestamp),
}

/// Whose opportunities a list shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerFilter {
    /// This person's.
    User(UserId),
    /// Nobody's yet.
    Unassigned,
}

/// Filters for the opportunity list (newest first, by id).
#[derive(Debug, Clone, Default)]
pub struct OpportunityFilter {
    /// Only this publisher's.
    pub publisher: Option<PublisherId>,
    /// Only this status.
    pub status: Option<OpportunityStatus>,
    /// Only this owner's, or only unassigned ones.
    pub owner: Option<OwnerFilter>,
    /// Only this offer's.
    pub offer: Option<OfferId>,
    /// Only those due (see [`DueFilter`]).
    pub due: Option<DueFilter>,
    /// Whole words that must all appear in one of its leads' names, e-mail or company, as for
    /// [`LeadFilter::text`] (answered from the same blind index).
    pub text: Option<String>,
}

/// A change to an opportunity, checked by the caller against the version it read (the rules
/// of `sales::StatusChange` need the current status). Fields left `None` stay as they are.
#[derive(Debug, Clone)]
pub struct OpportunityUpdate {
    /// Which.
    pub id: OpportunityId,
    /// The version the caller checked the change against; another one is `Conflict`.
    pub expected_version: i64,
    /// New status and its reason (the reason replaces the stored one, even with `None`).
    pub status: Option<(OpportunityStatus, Option<String>)>,
    /// New owner (`Some(None)`: unassigned). A new owner is told by e-mail (a notice).
    pub owner: Option<Option<UserId>>,
    /// New next-touch time (`Some(None)`: cleared).
    pub next_touch_at: Option<Option<Timestamp>>,
    /// Now: `updated_at`, and `qualified_at` when it is first qualified or won.
    pub now: Timestamp,
}

/// One checklist tick (or untick).
#[derive(Debug, Clone)]
pub struct ChecklistTick {
    /// Which opportunity.
    pub opportunity: OpportunityId,
    /// The item (the caller checked it is on the publisher's checklist).
    pub item: String,
    /// Ticked or not.
    pub done: bool,
    /// Who: an audit actor id.
    pub by: String,
    /// When.
    pub at: Timestamp,
}

/// A notice the sales team must get once: a new owner, or a first-touch SLA breach.
#[derive(Debug, Clone)]
pub struct SalesNotice {
    /// What happened.
    pub kind: SalesNoticeKind,
    /// The opportunity, as it is now (its `owner` is the person to tell).
    pub opportunity: Opportunity,
}

/// What a [`SalesNotice`] tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SalesNoticeKind {
    /// The owner was assigned (round-robin or by hand).
    Assigned,
    /// The first touch is overdue.
    SlaBreached,
}

/// The people of each publisher's sales team and their sessions.
#[async_trait::async_trait]
pub trait PeopleStore: Send + Sync + 'static {
    /// Creates a user. `Conflict` if the id or the address (normalised) is taken, whichever
    /// publisher has it; `NotFound` if the publisher does not exist.
    ///
    /// Obligation: of concurrent creates with one address, exactly one succeeds.
    async fn create_user(&self, user: &User) -> Result<()>;
    /// One user (`NotFound` if unknown).
    async fn get_user(&self, id: &UserId) -> Result<User>;
    /// The user with this normalised address (`NotFound` if none).
    async fn find_user_by_email(&self, email: &str) -> Result<User>;
    /// A publisher's users, oldest first.
    async fn list_users(&self, publisher: &PublisherId) -> Result<Vec<User>>;
    /// Accepts an open invitation: sets the password hash and closes the invitation, so its
    /// token works once. `NotFound` if no open invitation has this hash or it expired by `now`.
    async fn accept_invitation(&self, invite_hash: &str, password_hash: &str, now: Timestamp) -> Result<User>;
    /// Stores a session. `Conflict` if its hash is taken.
    async fn create_session(&self, session: &Session) -> Result<()>;
    /// The session with this token hash and its user; `NotFound` if unknown or expired at `now`.
    async fn find_session(&self, token_hash: &str, now: Timestamp) -> Result<(Session, User)>;
    /// Ends a session (signing out); ending an unknown one is not an error.
    async fn delete_session(&self, token_hash: &str) -> Result<()>;
}

/// Opportunities, their follow-up and the sales settings. Opportunities are opened and joined
/// by [`LeadStore::insert_leads`], in the lead's own transaction; these methods work them.
#[async_trait::async_trait]
pub trait SalesStore: Send + Sync + 'static {
    /// A publisher's sales settings (the defaults until some are stored); `NotFound` if the
    /// publisher does not exist.
    async fn sales_settings(&self, publisher: &PublisherId) -> Result<SalesSettings>;
    /// Replaces a publisher's sales settings (`NotFound` if the publisher does not exist). The
    /// round-robin position is kept when the team still holds the person it points at.
    async fn put_sales_settings(&self, publisher: &PublisherId, settings: &SalesSettings) -> Result<()>;
    /// One opportunity with its leads, checklist (in the publisher's checklist order, unticked
    /// items included) and follow-up log (`NotFound` if unknown).
    async fn get_opportunity(&self, id: &OpportunityId) -> Result<Opportunity>;
    /// Opportunities, newest first, each as [`SalesStore::get_opportunity`] gives it.
    async fn list_opportunities(&self, filter: &OpportunityFilter, page: &PageRequest) -> Result<Page<Opportunity>>;
    /// Applies an update and returns the opportunity after it. `Conflict` if the version is not
    /// `expected_version` (someone changed it since it was read), `NotFound` if unknown.
    async fn update_opportunity(&self, update: &OpportunityUpdate) -> Result<Opportunity>;
    /// Logs an activity. A touch (not a note) is the first touch if there was none (stopping
    /// the SLA clock) and moves a `new` opportunity to `contacted`; `next_touch_at`, when
    /// given, replaces the opportunity's. Returns the opportunity after it; `NotFound` if unknown.
    async fn add_activity(&self, opportunity: &OpportunityId, activity: &Activity) -> Result<Opportunity>;
    /// Ticks or unticks a checklist item; returns the opportunity after it. `NotFound` if unknown.
    async fn tick_checklist(&self, tick: &ChecklistTick) -> Result<Opportunity>;
    /// Takes the notices due at `now`, at most `limit`, and marks them taken in the same step,
    /// so each is handed out once: owners assigned and not yet told, and open opportunities
    /// never touched whose SLA ended before `now` and whose breach was not yet told.
    ///
    /// Obligation: concurrent calls never hand out one notice twice.
    async fn take_sales_notices(&self, now: Timestamp, limit: u32) -> Result<Vec<SalesNotice>>;
    /// The KPI report for a query (see `sales::kpi`), from opportunities opened, and real leads
    /// and their deliveries received, in the period.
    async fn kpis(&self, query: &KpiQuery) -> Result<KpiReport>;
}

/// Everything leadrelay stores. Hold it as `Arc<dyn Storage>`; a backend implements each part
/// and the obligations written on its methods: the rules it must keep race-free across
/// processes sharing one database, where SQLite's single writer proves nothing. The testkit's
/// contract suite (`storage_contract_tests!`) checks every method and races each obligation.
#[async_trait::async_trait]
pub trait Storage:
    CatalogStore + AccessStore + LeadStore + OutboxStore + AuditStore + PeopleStore + SalesStore
{
    /// A round trip that fails when the database cannot be read or written, for readiness.
    async fn ping(&self) -> Result<()>;
    /// Key rotation: re-seals with the primary key at most `limit` rows holding a value sealed
    /// with an older one; returns how many rows it re-sealed (0: none is left).
    async fn reseal_stale(&self, limit: u32) -> Result<u64>;
    /// How many sealed values each key holds, by key id (for `leadrelay keys status`).
    async fn sealed_values_by_key(&self) -> Result<Vec<(String, u64)>>;
    /// Calls `wake` whenever another process sharing this database may have made deliveries due,
    /// so this process's worker claims them without waiting for its next poll. A backend that
    /// one process holds alone (SQLite) has nothing to tell and keeps the default.
    fn watch_for_work(&self, wake: std::sync::Arc<dyn Fn() + Send + Sync>) {
        drop(wake);
    }
}
