//! Test support shared by every crate's tests: a recording webhook receiver, a manual clock,
//! the bridge to the Python `standardwebhooks` verifier, and a real browser for the dashboard.
//! Only ever a dev-dependency.

pub mod azurite;
pub mod browser;
pub mod clock;
pub mod crm;
pub mod postgres;
pub mod python;
pub mod receiver;
pub mod smtp;
pub mod storage_contract;

pub use clock::ManualClock;
pub use receiver::{Recorded, TestReceiver};

/// Serves `app` on a free loopback port until the returned sender is dropped.
pub async fn serve(app: axum::Router) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    (addr, stop)
}
