//! Destination connectors. Each file is one kind: a pure mapping from a lead to the kind's wire
//! format, and a thin [`leadrelay_core::destination::Destination`] that does the I/O.

pub mod azure_table;
pub mod dynamics;
pub mod email;
pub mod https;
pub mod marketo;
pub mod network;
pub mod pacing;
pub mod salesforce;

use std::sync::Arc;

use leadrelay_core::destination::{Destinations, FieldError};

pub use https::{HttpsConnector, HttpsOptions};

/// The registry of every connector this build ships. Notifications link to leads under
/// `link_base` (the address people reach leadrelay at).
pub fn registry(https: HttpsOptions, link_base: String) -> Destinations {
    let salesforce = salesforce::SalesforceConnector::new(&https);
    let azure_table = azure_table::AzureTableConnector::new(&https);
    let email = email::EmailConnector::new(&https, link_base);
    let dynamics = dynamics::DynamicsConnector::new(&https);
    let marketo = marketo::MarketoConnector::new(&https);
    Destinations::new()
        .with(Arc::new(HttpsConnector::new(https)))
        .with(Arc::new(salesforce))
        .with(Arc::new(azure_table))
        .with(Arc::new(email))
        .with(Arc::new(dynamics))
        .with(Arc::new(marketo))
}

/// Installs the process-wide TLS crypto provider (ring). Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Field errors for the keys of `settings` that `kind` does not know.
pub(crate) fn unknown_keys(
    settings: &serde_json::Map<String, serde_json::Value>,
    known: &[&str],
    kind: &str,
) -> Vec<FieldError> {
    settings
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|k| {
            FieldError::new(
                format!("settings.{k}"),
                format!("is not a setting of {kind} destinations (expected {})", known.join(", ")),
            )
        })
        .collect()
}

/// Cuts a response body to at most `max` bytes on a character boundary, for attempt logs.
pub fn excerpt(body: &[u8], max: usize) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(max)]);
    let mut s = text.into_owned();
    if body.len() > max {
        s.push('…');
    }
    Some(s)
}
