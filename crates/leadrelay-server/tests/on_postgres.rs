//! The integration tests of `it`, every one again with its application on PostgreSQL (a schema
//! per test) instead of SQLite: the API, the workspace, the dashboard and delivery must behave
//! the same on both backends. The same files, compiled a second time with `ON_POSTGRES` set.

/// Every test app of this target stores in PostgreSQL.
const ON_POSTGRES: bool = true;

#[path = "it/audit.rs"]
mod audit;
#[path = "it/browser.rs"]
mod browser;
#[path = "it/crm.rs"]
mod crm;
#[path = "it/customers.rs"]
mod customers;
#[path = "it/dashboard.rs"]
mod dashboard;
#[path = "it/delivery.rs"]
mod delivery;
#[path = "it/errors.rs"]
mod errors;
#[path = "it/events.rs"]
mod events;
#[path = "it/fairness.rs"]
mod fairness;
#[path = "it/hubspot.rs"]
mod hubspot;
#[path = "it/ingest.rs"]
mod ingest;
#[path = "it/isolation.rs"]
mod isolation;
#[path = "it/lead_csv.rs"]
mod lead_csv;
#[path = "it/leads.rs"]
mod leads;
#[path = "it/metrics.rs"]
mod metrics;
#[path = "it/network.rs"]
mod network;
#[path = "it/openapi.rs"]
mod openapi;
#[path = "it/people.rs"]
mod people;
#[path = "it/privacy.rs"]
mod privacy;
#[path = "it/sales.rs"]
mod sales;
#[path = "it/support.rs"]
mod support;
