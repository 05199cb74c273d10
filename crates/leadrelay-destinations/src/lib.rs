//! Destination connectors. Each file is one kind: its settings (a typed struct, checked the
//! same way on create, on Validate and in the worker), a pure mapping from a lead to the kind's
//! wire format, and a thin [`leadrelay_core::destination::Destination`] that does the I/O
//! through [`network`], the one outbound layer.

pub mod azure_table;
pub mod dynamics;
pub mod email;
pub mod https;
pub mod hubspot;
pub mod marketo;
pub mod network;
pub mod pacing;
pub mod salesforce;
mod settings;

use std::sync::Arc;

use leadrelay_core::destination::Destinations;

pub use https::HttpsConnector;
pub use network::{Network, NetworkOptions};

/// Why `azure_blob` is refused: the kind the marketplace used before Azure Table.
pub const AZURE_BLOB_RETIRED: &str = "the marketplace retired Azure Blob lead destinations in 2019 (they stopped \
     delivering); use azure_table instead";

/// The registry of every connector this build ships, all on one [`Network`]. Notifications link
/// to leads under `link_base` (the address people reach leadrelay at).
pub fn registry(options: NetworkOptions, link_base: String) -> Destinations {
    let net = Network::new(options);
    Destinations::new()
        .with(Arc::new(HttpsConnector::new(net.clone())))
        .with(Arc::new(salesforce::SalesforceConnector::new(net.clone())))
        .with(Arc::new(azure_table::AzureTableConnector::new(net.clone())))
        .with(Arc::new(email::EmailConnector::new(net.clone(), link_base)))
        .with(Arc::new(dynamics::DynamicsConnector::new(net.clone())))
        .with(Arc::new(marketo::MarketoConnector::new(net.clone())))
        .with(Arc::new(hubspot::HubspotConnector::new(net.clone())))
        .retired("azure_blob", AZURE_BLOB_RETIRED)
}

/// Installs the process-wide TLS crypto provider (ring). Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
