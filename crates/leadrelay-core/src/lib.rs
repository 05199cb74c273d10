//! The leadrelay domain: what a lead is, how marketplace strings parse, which destinations get
//! a lead, when a failed delivery is tried again, and the traits that storage backends and
//! destination connectors implement. Pure code: no network, no files, no clock of its own.

pub mod access;
pub mod audit;
pub mod clock;
pub mod customer;
pub mod destination;
pub mod health;
pub mod ids;
pub mod lead;
pub mod marketplace;
pub mod offer;
pub mod outcome;
pub mod retry;
pub mod routing;
pub mod sales;
pub mod signing;
pub mod source;
pub mod stage;
pub mod storage;
pub mod stored;
pub mod test_lead;
pub mod vault;

pub use clock::{Clock, SystemClock, Timestamp};
pub use customer::Customer;
pub use ids::{
    ActivityId, AuditId, CustomerId, DeliveryId, DestinationId, IngestKeyId, LeadId, OpportunityId, PublisherId,
    TokenId, UserId,
};
pub use lead::{Lead, LeadDraft, LeadError, LeadField, LeadRules};
pub use offer::{OfferId, OfferType};
pub use source::{ActionCode, LeadSource, Source};
pub use stage::{Stage, StageTable};
