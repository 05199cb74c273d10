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

#[cfg(test)]
mod tests {
    use leadrelay_core::destination::NetworkPolicy;

    use super::*;

    /// The dashboard builds its forms from `settings_form`: a field it shows must be a setting
    /// of the kind, and a field it marks optional must not be one the kind insists on.
    #[test]
    fn every_kind_describes_exactly_the_settings_it_takes() {
        let registry = registry(NetworkOptions::default(), "http://127.0.0.1:8080".into());
        for kind in registry.kinds() {
            let connector = registry.get(kind).unwrap();
            let form = connector.settings_form();
            assert!(!form.is_empty(), "{kind} describes no settings");
            let Err(errors) = connector.prepare(serde_json::json!({}), NetworkPolicy::default()) else {
                panic!("{kind} accepts empty settings");
            };
            for field in form {
                let path = format!("settings.{}", field.name);
                let missing = errors.iter().any(|e| e.path == path);
                assert_eq!(
                    missing, field.required,
                    "{kind}.{}: required in the form = refused when absent",
                    field.name
                );
                let alone = serde_json::json!({ field.name: serde_json::Value::Null });
                let errors = connector.prepare(alone, NetworkPolicy::default()).err().unwrap_or_default();
                assert!(
                    !errors.iter().any(|e| e.path == path && e.message.contains("is not a setting")),
                    "{kind} does not take the form's {}",
                    field.name
                );
            }
            assert!(errors.iter().all(|e| form.iter().any(|f| format!("settings.{}", f.name) == e.path)));
        }
    }
}
