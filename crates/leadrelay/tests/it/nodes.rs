//! Several nodes on one PostgreSQL database, for real: `leadrelay serve` processes sharing one
//! schema (one storage URL, one encryption key, one admin token, a data dir each).
//!
//! - Concurrent clients send leads to two nodes while one is killed with SIGKILL and started
//!   again: every acknowledged lead reaches the receiver, and a lead arrives twice only when the
//!   killed node was delivering it (its lease expired and the other node delivered it again);
//!   a front for the receiver holds its answers around the kill, so the node dies mid-delivery.
//! - A node without workers takes a lead and a node whose worker polls only every 30 s delivers
//!   it within seconds: work made due on one node wakes the others (LISTEN/NOTIFY).
//! - The database itself stops under running nodes: they answer 503 (with `Retry-After`) to
//!   `/readyz` and to every lead instead of accepting what they cannot store, and once it is back
//!   they are ready again and take and deliver leads without being restarted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use leadrelay_core::vault::Keyring;
use leadrelay_testkit::postgres::{PrivateCluster, TestSchema};
use leadrelay_testkit::receiver::delivered_ids;
use leadrelay_testkit::{Recorded, TestReceiver};
use rand::Rng;
use serde_json::json;

use crate::support::{
    Server, all_lead_ids, client, contoso_destination, contoso_with_ingest_key, readyz, serve_node, start,
    wait_for_readyz, wait_until_no_delivery_pending,
};

const CLIENTS_PER_NODE: usize = 6;

/// `worker.per_destination_concurrency` in [`env`]: the most deliveries to the test's one
/// destination in flight at once, across both nodes: so also on the node that is killed, and
/// on both when the database stops.
const PER_DESTINATION: usize = 8;

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("LEADRELAY_DELIVERY__ALLOW_PRIVATE_DESTINATIONS", "true"),
        ("LEADRELAY_DELIVERY__RETRY_DELAYS_MS", "[200, 400, 800, 1000, 1000, 2000, 2000, 3000, 3000, 5000, 5000]"),
        ("LEADRELAY_DELIVERY__REQUEST_TIMEOUT_MS", "3000"),
        // The shortest lease the configuration allows with that timeout: what a killed node was
        // delivering is delivered again after this long.
        ("LEADRELAY_WORKER__LEASE_MS", "13000"),
        ("LEADRELAY_WORKER__POLL_INTERVAL_MS", "200"),
        ("LEADRELAY_WORKER__PER_DESTINATION_CONCURRENCY", "8"),
        ("LEADRELAY_STORAGE__ACQUIRE_TIMEOUT_MS", "2000"),
    ]
}

/// What the load clients saw, across nodes.
#[derive(Default)]
struct Load {
    acked: Mutex<BTreeSet<String>>,
    acked_by_node: [AtomicUsize; 2],
    /// 503 answers (each with `Retry-After`).
    unavailable: AtomicUsize,
    /// Requests that got no answer (the node was down).
    refused: AtomicUsize,
    stop: AtomicBool,
}

impl Load {
    fn acked_by(&self, node: usize) -> usize {
        self.acked_by_node[node].load(Ordering::Relaxed)
    }

    fn acked(&self) -> BTreeSet<String> {
        self.acked.lock().unwrap().clone()
    }

    /// Waits until `node` has acknowledged more than `than` leads, or panics after `timeout`.
    async fn wait_for_acks(&self, node: usize, than: usize, timeout: Duration, what: &str) {
        let deadline = Instant::now() + timeout;
        while self.acked_by(node) <= than {
            assert!(Instant::now() < deadline, "{what}: node {node} acknowledged no lead within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Starts `count` clients that send leads to the node at `base` (which may change, when the
/// node is started again) until `load.stop`. Any answer but 202, or 503 with `Retry-After`
/// when `may_be_unavailable`, fails the test.
fn spawn_clients(
    load: &Arc<Load>,
    client: &reqwest::Client,
    node: usize,
    base: &Arc<RwLock<String>>,
    path: &str,
    count: usize,
    may_be_unavailable: bool,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..count)
        .map(|c| {
            let (load, client, base, path) = (Arc::clone(load), client.clone(), Arc::clone(base), path.to_owned());
            tokio::spawn(async move {
                let mut n = 0u64;
                while !load.stop.load(Ordering::Relaxed) {
                    n += 1;
                    let url = format!("{}{path}", base.read().unwrap());
                    // A customer of its own per lead: none is a duplicate of another.
                    let body = json!({
                        "UserDetails": {"FirstName": "Node", "Email": format!("node{node}-client{c}-{n}@contoso.com")},
                        "LeadSource": "AzureMarketplace", "ActionCode": "INS", "OfferTitle": "Contoso CRM"
                    });
                    match client.post(url).json(&body).send().await {
                        Ok(r) if r.status().as_u16() == 202 => {
                            if let Ok(v) = r.json::<serde_json::Value>().await {
                                load.acked.lock().unwrap().insert(v["id"].as_str().unwrap().to_owned());
                                load.acked_by_node[node].fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Ok(r) if may_be_unavailable && r.status().as_u16() == 503 => {
                            assert!(
                                r.headers().contains_key(reqwest::header::RETRY_AFTER),
                                "node {node} answered 503 without Retry-After"
                            );
                            load.unavailable.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Ok(r) => {
                            let status = r.status();
                            panic!(
                                "node {node} answered {status} while loading: {}",
                                r.text().await.unwrap_or_default()
                            )
                        }
                        Err(_) => {
                            load.refused.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            })
        })
        .collect()
}

/// Stops the clients and waits for them (a client's failed assertion fails the test here).
async fn stop_clients(load: &Load, clients: Vec<tokio::task::JoinHandle<()>>) {
    load.stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
}

/// Each `webhook-id` answered 2xx more than once, with the positions of those requests.
fn duplicates(requests: &[Recorded]) -> BTreeMap<String, Vec<usize>> {
    let mut seen: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in requests.iter().enumerate() {
        if (200..300).contains(&r.answered)
            && let Some(id) = r.webhook_id()
        {
            seen.entry(id.to_owned()).or_default().push(i);
        }
    }
    seen.retain(|_, at| at.len() > 1);
    seen
}

/// A front for the receiver that passes each request on at once (so the receiver logs it) and,
/// while `holding`, keeps the sender waiting for the answer: a node killed then dies with
/// deliveries that the receiver has but whose answers it never got, the deliveries that may
/// arrive twice.
struct HoldingFront {
    url: String,
    holding: Arc<AtomicBool>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl HoldingFront {
    async fn start(receiver: &TestReceiver) -> Self {
        let holding = Arc::new(AtomicBool::new(false));
        let (target, held, forward) = (receiver.url(), Arc::clone(&holding), client());
        let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let (target, held, forward) = (target.clone(), Arc::clone(&held), forward.clone());
            async move {
                let mut request = forward.post(&target).body(body);
                for (name, value) in &headers {
                    if name.as_str().starts_with("webhook-") || name == axum::http::header::CONTENT_TYPE {
                        request = request.header(name.as_str(), value.as_bytes());
                    }
                }
                let status = request.send().await.map_or(502, |r| r.status().as_u16());
                let deadline = Instant::now() + Duration::from_secs(2);
                while held.load(Ordering::Relaxed) && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::BAD_GATEWAY)
            }
        });
        let (addr, stop) = leadrelay_testkit::serve(app).await;
        Self { url: format!("http://{addr}/hook"), holding, _stop: stop }
    }

    fn hold(&self, on: bool) {
        self.holding.store(on, Ordering::Relaxed);
    }
}

/// Waits until every acknowledged lead has reached the receiver, checks that each is stored,
/// then that exactly the stored leads reached it (a lead committed in the instant its node
/// died or lost the database may never have been acknowledged, but is delivered all the same),
/// and that no delivery is left pending: an attempt whose answer was never recorded has been
/// made again once its lease expired, so the receiver's log is complete. Returns the stored
/// leads.
async fn every_lead_delivered(
    receiver: &TestReceiver,
    client: &reqwest::Client,
    node: &Server,
    acked: &BTreeSet<String>,
) -> BTreeSet<String> {
    receiver
        .wait_until(Duration::from_secs(45), "every acknowledged lead", |r| delivered_ids(r).is_superset(acked))
        .await;
    let stored = all_lead_ids(client, node).await;
    let missing: Vec<_> = acked.difference(&stored).collect();
    assert!(missing.is_empty(), "{} acknowledged leads are not stored: {missing:?}", missing.len());
    receiver.wait_until(Duration::from_secs(30), "every stored lead", |r| delivered_ids(r) == stored).await;
    wait_until_no_delivery_pending(client, node, Duration::from_secs(30)).await;
    stored
}

/// Checks that every delivery that reached the receiver more than once is one whose answer
/// could not be recorded when `event` happened: its first success was logged before request
/// `cut` and the others from it on (made again after the lease expired). Returns how many
/// deliveries arrived again, at most `bound` (the most that can have been in flight).
fn duplicates_explained_by(requests: &[Recorded], cut: usize, event: &str, bound: usize) -> usize {
    let twice = duplicates(requests);
    for (id, at) in &twice {
        assert!(
            at[0] < cut && at[1..].iter().all(|&i| i >= cut),
            "{id} was delivered {} times (requests {at:?}; {event} at request {cut}): a duplicate that {event} \
             does not explain",
            at.len()
        );
    }
    let extra: usize = twice.values().map(|at| at.len() - 1).sum();
    assert!(extra <= bound, "{extra} duplicate deliveries, but at most {bound} can have been in flight at {event}");
    extra
}

async fn stop_nodes(nodes: [Server; 2]) {
    for mut node in nodes {
        node.child.kill().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_database_lose_no_acknowledged_lead_when_one_is_killed() {
    let schema = TestSchema::create("nodes_kill").await;
    let key = Keyring::generate_key();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let receiver = TestReceiver::start().await;
    let front = HoldingFront::start(&receiver).await;
    let mut a = start(serve_node(dir_a.path(), &schema.url, &key, &env())).await;
    let b = start(serve_node(dir_b.path(), &schema.url, &key, &env())).await;
    let client = client();
    // Set up on one node, used on both: there is one database.
    let path = contoso_with_ingest_key(&client, &a).await;
    contoso_destination(&client, &b, &front.url).await;
    receiver.fail_for(Duration::from_secs(1), 503);

    let load = Arc::new(Load::default());
    let base_a = Arc::new(RwLock::new(a.base.clone()));
    let base_b = Arc::new(RwLock::new(b.base.clone()));
    let mut clients = spawn_clients(&load, &client, 0, &base_a, &path, CLIENTS_PER_NODE, false);
    clients.extend(spawn_clients(&load, &client, 1, &base_b, &path, CLIENTS_PER_NODE, false));

    load.wait_for_acks(0, 0, Duration::from_secs(10), "before the kill").await;
    load.wait_for_acks(1, 0, Duration::from_secs(10), "before the kill").await;
    let wait = rand::rng().random_range(800..1600);
    tokio::time::sleep(Duration::from_millis(wait)).await;
    // The deliveries under way fill every slot of the destination and wait for their answers.
    front.hold(true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.child.start_kill().expect("SIGKILL");
    a.child.wait().await.unwrap();
    front.hold(false);
    // A request node A had sent just before it died can still be on its way into the receiver's
    // log; every request recorded from here on was sent after the kill.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let recorded_at_kill = receiver.requests().len();
    let acked_by_a_at_kill = load.acked_by(0);
    let acked_by_b_at_kill = load.acked_by(1);

    a = start(serve_node(dir_a.path(), &schema.url, &key, &env())).await;
    *base_a.write().unwrap() = a.base.clone();
    load.wait_for_acks(0, acked_by_a_at_kill, Duration::from_secs(10), "after its restart").await;
    load.wait_for_acks(1, acked_by_b_at_kill, Duration::from_secs(10), "after the kill").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_clients(&load, clients).await;
    let acked = load.acked();

    let stored = every_lead_delivered(&receiver, &client, &b, &acked).await;
    let requests = receiver.requests();
    // A delivery arrives again only if node A had sent it and died before recording the
    // answer: its first arrival precedes the kill, the next one follows the lease's expiry.
    let extra = duplicates_explained_by(&requests, recorded_at_kill, "the kill", PER_DESTINATION);
    let successes = requests.iter().filter(|r| (200..300).contains(&r.answered)).count();
    println!(
        "two nodes, one killed: {} acknowledged ({} by A, {} by B), {} stored ({} committed but unacknowledged), \
         {} delivered, {extra} duplicate deliveries (of at most {PER_DESTINATION} in flight on the killed node), \
         {} failed attempts, {} client requests refused while A was down",
        acked.len(),
        load.acked_by(0),
        load.acked_by(1),
        stored.len(),
        stored.len() - acked.len(),
        delivered_ids(&requests).len(),
        requests.len() - successes,
        load.refused.load(Ordering::Relaxed),
    );
    stop_nodes([a, b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_taken_by_one_node_wakes_the_worker_of_another() {
    const LEADS: usize = 5;
    const PROMPTLY: Duration = Duration::from_secs(5);
    let schema = TestSchema::create("nodes_wake").await;
    let key = Keyring::generate_key();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let receiver = TestReceiver::start().await;
    let private = ("LEADRELAY_DELIVERY__ALLOW_PRIVATE_DESTINATIONS", "true");
    let a =
        start(serve_node(dir_a.path(), &schema.url, &key, &[private, ("LEADRELAY_WORKER__ENABLED", "false")])).await;
    // B's worker would look on its own only every 30 s: a prompt delivery is a wake-up from A.
    let b =
        start(serve_node(dir_b.path(), &schema.url, &key, &[private, ("LEADRELAY_WORKER__POLL_INTERVAL_MS", "30000")]))
            .await;
    let client = client();
    let path = contoso_with_ingest_key(&client, &a).await;
    contoso_destination(&client, &a, &receiver.url()).await;

    let mut slowest = Duration::ZERO;
    for n in 0..LEADS {
        let body = json!({
            "UserDetails": {"FirstName": "Wake", "Email": format!("wake{n}@contoso.com")},
            "LeadSource": "AzureMarketplace", "ActionCode": "INS", "OfferTitle": "Contoso CRM"
        });
        let r = client.post(format!("{}{path}", a.base)).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 202, "lead {n} on node A");
        let acked = Instant::now();
        let id = r.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
        receiver
            .wait_until(PROMPTLY, &format!("lead {n} ({id}), taken by node A, delivered by node B"), |r| {
                delivered_ids(r).contains(&id)
            })
            .await;
        slowest = slowest.max(acked.elapsed());
    }
    assert_eq!(receiver.requests().len(), LEADS, "each lead delivered once, at the first attempt");
    println!(
        "cross-node wake-ups: {LEADS} leads taken by A delivered by B (polling every 30 s), the slowest in {slowest:?}"
    );
    stop_nodes([a, b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_refuse_leads_while_the_database_is_down_and_recover_by_themselves() {
    const CLIENTS: usize = 4;
    let mut cluster = tokio::task::block_in_place(PrivateCluster::start);
    let schema = TestSchema::create_on(&cluster.url(), "nodes_restart").await;
    let key = Keyring::generate_key();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let receiver = TestReceiver::start().await;
    // While the database is down every request would log a warning: errors only.
    let mut quiet = env();
    quiet.push(("RUST_LOG", "error"));
    let a = start(serve_node(dir_a.path(), &schema.url, &key, &quiet)).await;
    let b = start(serve_node(dir_b.path(), &schema.url, &key, &quiet)).await;
    let client = client();
    let path = contoso_with_ingest_key(&client, &a).await;
    contoso_destination(&client, &a, &receiver.url()).await;
    let nodes = [&a, &b];

    let load = Arc::new(Load::default());
    let base_a = Arc::new(RwLock::new(a.base.clone()));
    let base_b = Arc::new(RwLock::new(b.base.clone()));
    let mut clients = spawn_clients(&load, &client, 0, &base_a, &path, CLIENTS, true);
    clients.extend(spawn_clients(&load, &client, 1, &base_b, &path, CLIENTS, true));
    for node in 0..2 {
        load.wait_for_acks(node, 4, Duration::from_secs(10), "before the database stopped").await;
    }

    tokio::task::block_in_place(|| cluster.stop());
    for node in nodes {
        wait_for_readyz(&client, node, 503, Duration::from_secs(10)).await;
    }
    // Answers to requests that were committed before the stop have arrived by now; from here
    // on, nothing may be acknowledged until the database is back.
    let deadline = Instant::now() + Duration::from_secs(10);
    while load.unavailable.load(Ordering::Relaxed) < 2 * CLIENTS {
        assert!(Instant::now() < deadline, "the clients met no 503 while the database was down");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let acked_while_down = load.acked().len();
    for node in nodes {
        let body = json!({
            "UserDetails": {"FirstName": "Down", "Email": "down@contoso.com"},
            "LeadSource": "AzureMarketplace", "ActionCode": "INS", "OfferTitle": "Contoso CRM"
        });
        let r = client.post(format!("{}{path}", node.base)).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 503, "{}: a lead while the database is down", node.base);
        assert!(r.headers().contains_key(reqwest::header::RETRY_AFTER), "503 without Retry-After");
        assert_eq!(readyz(&client, node).await, 503);
    }
    let refused_while_down = load.unavailable.load(Ordering::Relaxed);
    assert_eq!(load.acked().len(), acked_while_down, "a lead was acknowledged while the database was down");
    let at_restart = [load.acked_by(0), load.acked_by(1)];
    // Attempts in flight when the database stopped have ended by now (the receiver answers at
    // once); their answers could not be recorded, so they are made again, but only once the
    // database is back and their leases have expired.
    let recorded_at_restart = receiver.requests().len();

    tokio::task::block_in_place(|| cluster.start_again());
    for node in nodes {
        wait_for_readyz(&client, node, 200, Duration::from_secs(20)).await;
    }
    for (node, &before) in at_restart.iter().enumerate() {
        load.wait_for_acks(node, before, Duration::from_secs(10), "after the database came back").await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_clients(&load, clients).await;
    assert_eq!(load.refused.load(Ordering::Relaxed), 0, "a node left requests unanswered");
    let acked = load.acked();
    let stored = every_lead_delivered(&receiver, &client, &b, &acked).await;

    let requests = receiver.requests();
    let extra = duplicates_explained_by(&requests, recorded_at_restart, "the database's restart", PER_DESTINATION);
    println!(
        "database restart: {} acknowledged ({acked_while_down} before the stop, {} after the restart), {} stored, \
         {} delivered, {extra} duplicate deliveries (answers that could not be recorded while it was down, of at \
         most {PER_DESTINATION} in flight), {refused_while_down} leads answered 503 while it was down, {} in all",
        acked.len(),
        acked.len() - acked_while_down,
        stored.len(),
        delivered_ids(&requests).len(),
        load.unavailable.load(Ordering::Relaxed),
    );
    stop_nodes([a, b]).await;
    drop(schema);
    drop(cluster);
}

/// `leadrelay migrate` on PostgreSQL applies every migration once; a node started with a key
/// of its own (none configured, so each data directory generates one) is refused, saying that
/// every node needs the same key, and leaves no key file behind to be mistaken for the real one.
#[tokio::test]
async fn migrate_runs_once_and_a_node_with_another_key_is_refused_saying_what_to_do() {
    let schema = TestSchema::create("cli").await;
    let migrate = || async {
        let out = crate::support::binary()
            .arg("migrate")
            .env("LEADRELAY_STORAGE__URL", &schema.url)
            .arg("--data-dir")
            .arg(tempfile::tempdir().unwrap().path())
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = migrate().await;
    let n = leadrelay_store_postgres::MIGRATIONS.len();
    assert!(first.contains(&format!("{n} migration(s) applied, schema version {n}")), "{first}");
    assert!(migrate().await.contains(&format!("0 migration(s) applied, schema version {n}")));

    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let node = |dir: &std::path::Path| {
        let mut c = crate::support::serve(dir, &[]);
        c.env("LEADRELAY_STORAGE__URL", &schema.url);
        c
    };
    let mut first_node = start(node(a.path())).await;
    let out = node(b.path()).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("every node on one database needs the same key"), "{stderr}");
    assert!(!b.path().join("encryption.key").exists(), "the refused key file is removed");
    first_node.child.kill().await.unwrap();
}
