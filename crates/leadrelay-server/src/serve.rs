//! Accepting connections, with the bounds a public listener needs: a cap on open connections,
//! a timeout for reading a request head (which hyper also applies to an idle keep-alive
//! connection waiting for its next request), and a shutdown that ends within its bound whatever
//! the clients do. `axum::serve` offers none of these, so the loop is ours.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The connection bounds, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Open connections at most; one beyond it is closed at once.
    pub max_connections: usize,
    /// How long a client may take to send a request head, and how long an idle keep-alive
    /// connection is kept.
    pub header_read_timeout: Duration,
    /// After shutdown begins, how long requests in progress may take before their connections
    /// are dropped.
    pub shutdown_grace: Duration,
}

/// Serves `app` on `listener` until `shutdown`, then stops accepting, lets requests in progress
/// finish within `shutdown_grace`, and drops what is left.
///
/// # Errors
/// When accepting fails for a reason other than a passing resource shortage.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_transient(&e) => {
                // Out of file descriptors or a connection reset before accept: wait, go on.
                tracing::warn!(error = %e, "accepting a connection failed; retrying shortly");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(max_connections = limits.max_connections, "connection refused: too many open connections");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        // The peer's address, for handlers that ask (`ConnectInfo`: the sign-in rate limit).
        let with_peer = move |mut req: axum::http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            req
        };
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(app.clone(), with_peer));
        let stop = shutdown.clone();
        connections.spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(limits.shutdown_grace, connection).await;
                }
            }
            drop(slot);
        });
    }
    connections.close();
    if tokio::time::timeout(limits.shutdown_grace, connections.wait()).await.is_err() {
        tracing::warn!(open = connections.len(), "shutdown grace elapsed; closing the remaining connections");
    }
    Ok(())
}

fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(e.kind(), ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted)
        || e.raw_os_error().is_some_and(|code| code == 23 || code == 24) // ENFILE, EMFILE
}
