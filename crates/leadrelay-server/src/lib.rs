//! leadrelay's server: configuration, the HTTP API, the use cases (`ops`) and the delivery
//! worker. It names no storage backend or connector: the binary passes them in as [`Parts`].

pub mod auth;
pub mod config;
pub mod dashboard;
pub mod http;
pub mod ops;
pub mod serve;
pub mod state;
pub mod telemetry;
pub mod worker;

use std::sync::Arc;

use leadrelay_core::Clock;
use leadrelay_core::destination::Destinations;
use leadrelay_core::storage::Storage;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::auth::AdminToken;
use crate::config::Config;
use crate::ops::Ops;
use crate::state::AppState;
use crate::worker::{Worker, WorkerSettings};

/// The adapters the binary chose.
pub struct Parts {
    /// Storage backend.
    pub storage: Arc<dyn Storage>,
    /// Connector registry.
    pub destinations: Destinations,
    /// Clock.
    pub clock: Arc<dyn Clock>,
}

/// A built application: the router state and the worker, not yet running.
pub struct Application {
    /// Shared state (for in-process tests).
    pub state: AppState,
    /// The worker.
    pub worker: Worker,
}

impl Application {
    /// Wires the parts together.
    ///
    /// # Errors
    /// An invalid stage table.
    pub fn build(config: Config, parts: Parts, admin: AdminToken) -> anyhow::Result<Self> {
        let wake = Arc::new(Notify::new());
        // Work made due by another process on the same database wakes this worker too.
        let woken = Arc::clone(&wake);
        parts.storage.watch_for_work(Arc::new(move || woken.notify_one()));
        let policy = ops::Policy::from_config(&config).map_err(anyhow::Error::msg)?;
        let ops = Ops::new(
            Arc::clone(&parts.storage),
            parts.destinations.clone(),
            Arc::clone(&parts.clock),
            policy,
            Arc::clone(&wake),
        );
        let worker =
            Worker::new(parts.storage, parts.destinations, parts.clock, wake, WorkerSettings::from_config(&config));
        let metrics = telemetry::metrics::recorder();
        let state = AppState { config: Arc::new(config), admin, ops: Arc::new(ops), metrics };
        Ok(Self { state, worker })
    }

    /// Serves the API (and runs the worker, if enabled) until `shutdown`; then stops accepting,
    /// finishes in-flight requests and attempts, and returns.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run(self, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
        // The worker stops with the server whichever ends first: a shutdown signal, or the server
        // failing (then the error is returned after the worker has finished its attempts).
        let stop = shutdown.child_token();
        let worker = self.state.config.worker.enabled.then(|| tokio::spawn(self.worker.clone().run(stop.clone())));
        let reseal = ops::reseal_task(std::sync::Arc::clone(&self.state.ops), stop.clone());
        // Sales notices are delivery work too: a process that delivers nothing tells nobody.
        let sales_notices = self
            .state
            .config
            .worker
            .enabled
            .then(|| ops::sales_notice_task(std::sync::Arc::clone(&self.state.ops), stop.clone()));
        let upkeep = tokio::spawn(telemetry::metrics::upkeep(self.state.metrics.clone(), stop.clone()));
        let retention =
            ops::retention_task(&self.state.config.privacy, std::sync::Arc::clone(&self.state.ops), stop.clone());
        let server = &self.state.config.server;
        let limits = serve::ConnectionLimits {
            max_connections: server.max_connections,
            header_read_timeout: std::time::Duration::from_millis(server.header_read_timeout_ms),
            shutdown_grace: std::time::Duration::from_millis(server.shutdown_grace_ms),
        };
        let app = http::router::router(self.state);
        let served = serve::serve(listener, app, limits, stop.clone()).await;
        stop.cancel();
        if let Some(w) = worker {
            w.await??;
        }
        if let Some(r) = retention {
            let _ = r.await;
        }
        let _ = reseal.await;
        if let Some(n) = sales_notices {
            let _ = n.await;
        }
        let _ = upkeep.await;
        served?;
        Ok(())
    }
}
