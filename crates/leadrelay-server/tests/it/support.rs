//! `TestApp`: the real application on 127.0.0.1:0 with SQLite in a temp dir, or, in the
//! `on_postgres` target (these same tests again), PostgreSQL in a schema of the test's own.

use std::sync::Arc;
use std::time::Duration;

use leadrelay_core::SystemClock;
use leadrelay_core::storage::Storage;
use leadrelay_destinations::NetworkOptions;
use leadrelay_server::auth::AdminToken;
use leadrelay_server::config::Config;
use leadrelay_server::{Application, Parts};
use leadrelay_store_postgres::PostgresStore;
use leadrelay_store_sqlite::{OpenOptions, SqliteStore};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub const ADMIN: &str = "test-admin-token";

/// Fast retries for tests; everything else is the shipped default.
pub const FAST: &str = r#"
[delivery]
allow_private_destinations = true
retry_delays_ms = [100, 200, 300, 400, 500]
jitter_percent = 0
request_timeout_ms = 5000
[worker]
lease_ms = 15000
poll_interval_ms = 50
"#;

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// The app's worker; with `worker.enabled = false` a test drives it with `run_once`.
    pub worker: leadrelay_server::worker::Worker,
    /// The app's use cases, for what a background task does on its own schedule (sales notices).
    pub ops: Arc<leadrelay_server::ops::Ops>,
    _dir: tempfile::TempDir,
    _schema: Option<leadrelay_testkit::postgres::TestSchema>,
    shutdown: CancellationToken,
}

/// True when this target of the suite is on PostgreSQL.
pub fn on_postgres() -> bool {
    crate::ON_POSTGRES
}

/// A fresh, migrated store of the backend this run is on, and what keeps it alive.
async fn fresh_store(dir: &std::path::Path) -> (Arc<dyn Storage>, Option<leadrelay_testkit::postgres::TestSchema>) {
    let keys = leadrelay_core::vault::Keyring::for_tests();
    if on_postgres() {
        let schema = leadrelay_testkit::postgres::TestSchema::create("server").await;
        let options = leadrelay_store_postgres::OpenOptions { migrate: true, ..Default::default() };
        let store = PostgresStore::open(&schema.url, options, keys).await.unwrap();
        return (Arc::new(store), Some(schema));
    }
    let options = OpenOptions { migrate: true, exclusive: true, ..Default::default() };
    (Arc::new(SqliteStore::open(&dir.join("leadrelay.db"), options, keys).unwrap()), None)
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(FAST).await
    }

    pub async fn spawn_with(overrides: &str) -> Self {
        Self::spawn_with_clock(overrides, Arc::new(SystemClock)).await
    }

    /// The app with its worker stopped, on a clock the test moves: the test drives delivery
    /// with `app.worker.run_once()` and `clock.advance(..)`, never by waiting.
    pub async fn spawn_stepped() -> (Self, Arc<leadrelay_testkit::ManualClock>) {
        Self::spawn_stepped_with("").await
    }

    /// As [`TestApp::spawn_stepped`], with more settings (whole TOML sections FAST lacks).
    pub async fn spawn_stepped_with(more: &str) -> (Self, Arc<leadrelay_testkit::ManualClock>) {
        let clock =
            Arc::new(leadrelay_testkit::ManualClock::new(leadrelay_core::Timestamp::from_millis(1_800_000_000_000)));
        let config = FAST.replacen("[worker]", "[worker]\nenabled = false", 1) + more;
        (Self::spawn_with_clock(&config, clock.clone()).await, clock)
    }

    /// The app on a clock the test moves (the worker's due times and the leads' times).
    pub async fn spawn_with_clock(overrides: &str, clock: Arc<dyn leadrelay_core::Clock>) -> Self {
        leadrelay_server::telemetry::init_for_tests();
        let dir = tempfile::tempdir().unwrap();
        let config = Config::for_tests(overrides).unwrap();
        let (store, schema) = fresh_store(dir.path()).await;
        let network = NetworkOptions {
            allow_private: config.delivery.allow_private_destinations,
            request_timeout: Duration::from_millis(config.delivery.request_timeout_ms),
            permanent_statuses: config.delivery.permanent_statuses.clone(),
            ..NetworkOptions::default()
        };
        let parts = Parts {
            storage: store,
            destinations: leadrelay_destinations::registry(network, "https://leads.example.com".to_owned()),
            clock,
        };
        let app = Application::build(config, parts, AdminToken::from_plain(ADMIN)).unwrap();
        let worker = app.worker.clone();
        let ops = Arc::clone(&app.state.ops);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        tokio::spawn(app.run(listener, shutdown.clone()));
        Self { base, client: reqwest::Client::new(), worker, ops, _dir: dir, _schema: schema, shutdown }
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Vec<u8>>, auth: bool) -> Answer {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if auth {
            req = req.bearer_auth(ADMIN);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let bytes = res.bytes().await.unwrap();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        Answer { status, body }
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(reqwest::Method::POST, path, Some(body.to_string().into_bytes()), true).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.send(reqwest::Method::PUT, path, Some(body.to_string().into_bytes()), true).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        self.send(reqwest::Method::PATCH, path, Some(body.to_string().into_bytes()), true).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None, true).await
    }

    /// A request with another bearer token (a publisher's, a marketplace's); the JSON answer.
    pub async fn call_as(&self, token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Publisher `contoso` with offers `contoso.crm` ("Contoso CRM") and `contoso.erp`.
    pub async fn contoso(&self) {
        assert_eq!(self.post("/v1/publishers", json!({"id": "contoso", "name": "Contoso"})).await.status, 201);
        for (id, title) in [("contoso.crm", "Contoso CRM"), ("contoso.erp", "Contoso ERP")] {
            let a =
                self.put(&format!("/v1/publishers/contoso/offers/{id}"), json!({"title": title, "type": "saas"})).await;
            assert_eq!(a.status, 201, "{}", a.body);
        }
    }

    /// An https destination; returns (id, secret).
    pub async fn https_destination(&self, url: &str, offers: Option<&[&str]>) -> (String, String) {
        let secret = leadrelay_core::signing::WebhookSecret::from_bytes(vec![42; 32]).unwrap().to_whsec();
        let mut body = json!({"name": "crm-hook", "kind": "https", "settings": {"url": url, "secret": secret}});
        if let Some(o) = offers {
            body["offers"] = json!(o);
        }
        let a = self.post("/v1/publishers/contoso/destinations", body).await;
        assert_eq!(a.status, 201, "{}", a.body);
        (a.body["id"].as_str().unwrap().to_owned(), secret)
    }

    /// An ingest key path, optionally bound to an offer.
    pub async fn ingest_path(&self, offer: Option<&str>) -> String {
        let body = offer.map_or(json!({}), |o| json!({"offer": o}));
        let a = self.post("/v1/publishers/contoso/ingest-keys", body).await;
        assert_eq!(a.status, 201, "{}", a.body);
        a.body["path"].as_str().unwrap().to_owned()
    }

    pub async fn ingest(&self, path: &str, body: Value) -> Answer {
        self.send(reqwest::Method::POST, path, Some(body.to_string().into_bytes()), false).await
    }

    pub async fn lead_count(&self) -> usize {
        self.get("/v1/leads?limit=1000").await.body["items"].as_array().unwrap().len()
    }

    /// Polls `GET /v1/leads/{id}` until `pred` holds for its deliveries.
    pub async fn wait_for_lead(&self, id: &str, what: &str, pred: impl Fn(&[Value]) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let lead = self.get(&format!("/v1/leads/{id}")).await.body;
            if pred(lead["deliveries"].as_array().map_or(&[][..], Vec::as_slice)) {
                return lead;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}: {lead:#}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The marketplace's documented HTTPS-endpoint example (2020+ docs), exactly.
pub fn documented_example() -> Value {
    json!({
        "UserDetails": {
            "FirstName": "Some", "LastName": "One", "Email": "someone@contoso.com", "Phone": "16175555555",
            "Country": "USA", "Company": "Contoso", "Title": "Esquire"
        },
        "LeadSource": "AzureMarketplace",
        "ActionCode": "INS",
        "OfferTitle": "Test Microsoft",
        "Description": "Test run through Power Automate"
    })
}

pub fn status_of(deliveries: &[Value]) -> Vec<&str> {
    deliveries.iter().map(|d| d["status"].as_str().unwrap()).collect()
}

/// The documented example for another customer (so it is not a duplicate of the first).
pub fn example_for(email: &str) -> Value {
    let mut v = documented_example();
    v["UserDetails"]["Email"] = json!(email);
    v
}
