//! The HTTP API. `router.rs` lists every route; one module per resource holds its handlers and
//! wire types (`…In` for requests, `…Out` for answers); `openapi.rs` publishes the contract
//! generated from them. Handlers translate HTTP to the use cases in `ops` and back, nothing more.

pub mod audit;
pub mod customers;
pub mod deliveries;
pub mod destinations;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod ingest;
pub mod lead_csv;
pub mod leads;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod people;
pub mod privacy;
pub mod publishers;
pub mod query;
pub mod router;
pub mod sales;
