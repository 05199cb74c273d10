//! Integration tests of the API and worker, in process: real startup path, SQLite in a temp
//! dir, a real HTTP receiver, the real HTTPS connector. `tests/on_postgres.rs` runs these same
//! files again on PostgreSQL.

/// The test apps of this target store in SQLite.
const ON_POSTGRES: bool = false;

mod audit;
mod browser;
mod crm;
mod customers;
mod dashboard;
mod delivery;
mod errors;
mod events;
mod fairness;
mod hubspot;
mod ingest;
mod isolation;
mod lead_csv;
mod leads;
mod metrics;
mod network;
mod openapi;
mod people;
mod privacy;
mod sales;
mod support;
