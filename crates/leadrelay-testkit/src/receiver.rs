//! A webhook receiver on 127.0.0.1 that records every request and answers with the status the
//! test chooses (and optionally a `Retry-After`), so tests can play a healthy, failing or
//! throttling endpoint.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Header names lowercased.
    pub headers: HashMap<String, String>,
    /// The exact body bytes.
    pub body: Vec<u8>,
    /// The status answered.
    pub answered: u16,
}

impl Recorded {
    /// The `webhook-id` header.
    pub fn webhook_id(&self) -> Option<&str> {
        self.headers.get("webhook-id").map(String::as_str)
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("body is JSON")
    }
}

#[derive(Debug)]
struct Behaviour {
    status: u16,
    retry_after: Option<String>,
    fail_until: Option<(Instant, u16)>,
    body: String,
}

#[derive(Debug)]
struct Shared {
    requests: Mutex<Vec<Recorded>>,
    behaviour: Mutex<Behaviour>,
    notify: tokio::sync::Notify,
}

/// The receiver; it stops when dropped.
pub struct TestReceiver {
    shared: Arc<Shared>,
    addr: std::net::SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl TestReceiver {
    /// Starts on a free port, answering 200.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            behaviour: Mutex::new(Behaviour {
                status: 200,
                retry_after: None,
                fail_until: None,
                body: "ok".to_owned(),
            }),
            notify: tokio::sync::Notify::new(),
        });
        let s = Arc::clone(&shared);
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let s = Arc::clone(&s);
            async move { handle(&s, headers, body) }
        });
        let (addr, stop) = crate::serve(app).await;
        Self { shared, addr, _stop: stop }
    }

    /// The URL to configure as a destination.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answer every request with `status` from now on.
    pub fn respond_with(&self, status: u16, retry_after: Option<&str>) {
        let mut b = self.shared.behaviour.lock().unwrap();
        b.status = status;
        b.retry_after = retry_after.map(str::to_owned);
    }

    /// Answer with `body` (instead of `ok`) from now on: a receiver that echoes what it got.
    pub fn answer_body(&self, body: &str) {
        self.shared.behaviour.lock().unwrap().body = body.to_owned();
    }

    /// Answer `status` until `for_how_long` has passed, then the normal status.
    pub fn fail_for(&self, for_how_long: Duration, status: u16) {
        self.shared.behaviour.lock().unwrap().fail_until = Some((Instant::now() + for_how_long, status));
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Distinct `webhook-id`s of requests answered with a 2xx.
    pub fn delivered_ids(&self) -> BTreeSet<String> {
        delivered_ids(&self.shared.requests.lock().unwrap())
    }

    /// Waits until `pred` holds for the recorded requests, or panics after `timeout`. `pred`
    /// runs under the receiver's lock: use the slice it gets, not the receiver's methods.
    pub async fn wait_until(&self, timeout: Duration, what: &str, pred: impl Fn(&[Recorded]) -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.notify.notified();
            if pred(&self.shared.requests.lock().unwrap()) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let n = self.shared.requests.lock().unwrap().len();
                panic!("receiver: timed out after {timeout:?} waiting for {what} ({n} requests so far)");
            }
        }
    }
}

/// Distinct `webhook-id`s of the requests answered with a 2xx.
pub fn delivered_ids(requests: &[Recorded]) -> BTreeSet<String> {
    requests
        .iter()
        .filter(|r| (200..300).contains(&r.answered))
        .filter_map(|r| r.webhook_id().map(str::to_owned))
        .collect()
}

fn handle(shared: &Shared, headers: HeaderMap, body: Bytes) -> axum::response::Response {
    let (status, retry_after, answer) = {
        let b = shared.behaviour.lock().unwrap();
        match b.fail_until {
            Some((until, status)) if Instant::now() < until => (status, b.retry_after.clone(), b.body.clone()),
            _ => (b.status, b.retry_after.clone(), b.body.clone()),
        }
    };
    let headers =
        headers.iter().map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.to_str().unwrap_or("").to_owned())).collect();
    shared.requests.lock().unwrap().push(Recorded { headers, body: body.to_vec(), answered: status });
    shared.notify.notify_waiters();
    let mut response = (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), answer).into_response();
    if let Some(ra) = retry_after.filter(|_| status >= 400) {
        response.headers_mut().insert("retry-after", HeaderValue::from_str(&ra).unwrap());
    }
    response
}
