//! The benchmark's local receiver (what a publisher's webhook endpoint would be) and the bare
//! client→receiver loop that is the delivery ceiling.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio_util::sync::CancellationToken;

/// Counts what arrives and, while recording, when each lead first arrived at each path.
#[derive(Default)]
pub struct Received {
    count: AtomicU64,
    recording: Mutex<Option<HashMap<(String, String), Instant>>>,
    sample: Mutex<Option<(HeaderMap, Bytes)>>,
}

impl Received {
    /// Deliveries received so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Starts recording arrival times (forgetting earlier ones).
    pub fn record(&self) {
        *self.recording.lock().unwrap_or_else(|p| p.into_inner()) = Some(HashMap::new());
    }

    /// Stops recording and returns, per (path, `webhook-id`), the first arrival.
    pub fn take_recorded(&self) -> HashMap<(String, String), Instant> {
        self.recording.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or_default()
    }

    /// One delivery as leadrelay sent it (headers and body), for the ceiling to repeat.
    pub fn sample(&self) -> Option<(HeaderMap, Bytes)> {
        self.sample.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until `count` reaches `target` or `timeout` passes; true when it did.
    pub async fn wait_for(&self, target: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.count() < target {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        true
    }
}

/// The receiver, answering 200 to every POST on its runtime until `stop`.
pub async fn start(stop: CancellationToken) -> anyhow::Result<(SocketAddr, Arc<Received>)> {
    let received = Arc::new(Received::default());
    let app = Router::new().route("/{*path}", post(receive)).with_state(Arc::clone(&received));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("starting the receiver")?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
    });
    Ok((addr, received))
}

async fn receive(
    State(received): State<Arc<Received>>,
    axum::extract::Path(path): axum::extract::Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let now = Instant::now();
    if let Some(map) = received.recording.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
        let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        map.entry((path, id)).or_insert(now);
    }
    {
        let mut sample = received.sample.lock().unwrap_or_else(|p| p.into_inner());
        if sample.is_none() {
            *sample = Some((headers, body));
        }
    }
    received.count.fetch_add(1, Ordering::Relaxed);
    StatusCode::OK
}

/// The delivery ceiling: `in_flight` tasks post `sample` (a real delivery's headers and body)
/// to the receiver with a reqwest client set up as leadrelay's, for `length`; posts/s.
pub async fn delivery_ceiling(
    receiver: SocketAddr,
    received: &Received,
    sample: (HeaderMap, Bytes),
    in_flight: usize,
    length: Duration,
) -> anyhow::Result<f64> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .build()
        .context("building the ceiling's HTTP client")?;
    let url = format!("http://{receiver}/ceiling");
    let (headers, body) = sample;
    let before = received.count();
    let start = Instant::now();
    let end = start + length;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let (client, url, headers, body) = (client.clone(), url.clone(), headers.clone(), body.clone());
        tasks.spawn(async move {
            while Instant::now() < end {
                let mut request = client.post(&url).body(body.clone());
                for name in ["content-type", "webhook-id", "webhook-timestamp", "webhook-signature"] {
                    if let Some(v) = headers.get(name) {
                        request = request.header(name, v.clone());
                    }
                }
                let answer = request.send().await.context("the ceiling's post failed")?;
                // As leadrelay does: the answer is read (an excerpt kept), not just its status.
                answer.bytes().await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a ceiling task panicked")??;
    }
    let posts = received.count() - before;
    Ok(posts as f64 / start.elapsed().as_secs_f64())
}
