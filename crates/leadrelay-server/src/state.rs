//! What every handler shares.

use std::sync::Arc;

use crate::auth::AdminToken;
use crate::config::Config;
use crate::ops::Ops;

/// Shared application state (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    /// Effective configuration.
    pub config: Arc<Config>,
    /// The admin credential.
    pub admin: AdminToken,
    /// The use cases.
    pub ops: Arc<Ops>,
    /// The process's metrics recorder, rendered by `GET /metrics`.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
}
