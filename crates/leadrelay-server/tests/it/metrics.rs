//! `GET /metrics`: the Prometheus text of a real app after real ingest and delivery.
//!
//! The recorder is one per process and every test of this binary shares it, so these tests
//! read series labelled with a publisher and destination of their own (no other test uses
//! them), or only check that a series exists.

use std::collections::BTreeMap;

use leadrelay_testkit::TestReceiver;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{ADMIN, TestApp, example_for};

/// Outbox depths are read on every scrape here, so a test sees them change at once.
const UNCACHED: &str = "\n[telemetry]\nmetrics_cache_ms = 0\n";

/// A publisher of the test's own with an https destination to `url` and an ingest key:
/// (destination id, ingest path).
async fn publisher_with_destination(app: &TestApp, publisher: &str, url: &str) -> (String, String) {
    assert_eq!(app.post("/v1/publishers", json!({"id": publisher, "name": publisher})).await.status, 201);
    let d = app
        .post(
            &format!("/v1/publishers/{publisher}/destinations"),
            json!({"name": "hook", "kind": "https", "settings": {"url": url}}),
        )
        .await;
    assert_eq!(d.status, 201, "{}", d.body);
    let key = app.post(&format!("/v1/publishers/{publisher}/ingest-keys"), json!({})).await;
    assert_eq!(key.status, 201, "{}", key.body);
    (d.body["id"].as_str().unwrap().to_owned(), key.body["path"].as_str().unwrap().to_owned())
}

/// A lead of a person whose name and address are unlike anything else in the metrics.
fn lead_of(email: &str) -> Value {
    let mut lead = example_for(email);
    lead["UserDetails"]["FirstName"] = json!("Zebulon");
    lead["UserDetails"]["LastName"] = json!("Quartermaine");
    lead
}

/// `GET /metrics` with the admin token: the body, checked to be the text format, and its samples.
async fn scrape(app: &TestApp) -> (String, Vec<Sample>) {
    let res = app.client.get(format!("{}/metrics", app.base)).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let body = res.text().await.unwrap();
    let samples = parse(&body);
    (body, samples)
}

/// The value of the one sample of `name` carrying these labels (and maybe others).
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<_> = samples
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
        .collect();
    assert!(matching.len() <= 1, "{name} {labels:?} names several series: {matching:?}");
    matching.first().map(|s| s.value)
}

#[tokio::test]
async fn metrics_count_ingest_delivery_and_commits_and_show_no_personal_data_or_secret() {
    let (app, _clock) = TestApp::spawn_stepped_with(UNCACHED).await;
    let receiver = TestReceiver::start().await;
    let (destination, path) = publisher_with_destination(&app, "metrics-seen", &receiver.url()).await;
    let d = [("publisher", "metrics-seen"), ("destination", destination.as_str())];
    let emails = ["zebulon.q@metrics-seen.example", "other.person@metrics-seen.example"];
    let mut ids = Vec::new();
    for email in [emails[0], emails[1], emails[0]] {
        let a = app.ingest(&path, lead_of(email)).await;
        assert_eq!(a.status, 202, "{}", a.body);
        ids.push(a.body["id"].as_str().unwrap().to_owned());
    }
    assert!(app.get(&format!("/v1/leads/{}", ids[2])).await.body["duplicate_of"].is_string(), "the repeat");
    assert_eq!(app.send(Method::GET, "/nowhere/metrics-seen-raw-path", None, false).await.status, 404);

    let (_, before) = scrape(&app).await;
    let accepted = [("publisher", "metrics-seen"), ("route", "ingest")];
    assert_eq!(value(&before, "leadrelay_leads_accepted_total", &accepted), Some(3.0), "duplicates included");
    assert_eq!(value(&before, "leadrelay_leads_duplicate_total", &d[..1]), Some(1.0));
    assert_eq!(value(&before, "leadrelay_outbox_depth", &d), Some(2.0), "the repeat makes no delivery");
    let ingested = [("route", "/v1/ingest/microsoft/{key}"), ("method", "POST"), ("status", "202")];
    assert!(value(&before, "leadrelay_http_requests_total", &ingested).unwrap() >= 3.0);
    let unmatched = [("route", "unmatched"), ("method", "GET"), ("status", "404")];
    assert!(value(&before, "leadrelay_http_requests_total", &unmatched).unwrap() >= 1.0);
    assert!(value(&before, "leadrelay_destinations", &[("state", "enabled")]).unwrap() >= 1.0);

    let step = app.worker.run_once().await.unwrap();
    assert_eq!(step.delivered, 2);
    assert_eq!(receiver.requests().len(), 2);

    let (body, after) = scrape(&app).await;
    assert_eq!(value(&after, "leadrelay_outbox_depth", &d), Some(0.0), "the depth drops after delivery");
    let delivered = [d[0], d[1], ("kind", "https"), ("outcome", "delivered"), ("class", "none")];
    assert_eq!(value(&after, "leadrelay_delivery_attempts_total", &delivered), Some(2.0));
    assert!(value(&after, "leadrelay_delivery_attempt_seconds_count", &[("kind", "https")]).unwrap() >= 1.0);
    let commits = value(&after, "leadrelay_storage_commit_batch_jobs_count", &[]).unwrap();
    assert!(commits >= 3.0, "every lead was committed: {commits}");
    assert!(value(&after, "leadrelay_storage_commit_batch_jobs_bucket", &[("le", "1024")]).unwrap() >= commits);
    assert!(value(&after, "leadrelay_storage_commit_seconds_sum", &[]).unwrap() > 0.0);
    assert!(
        value(&after, "leadrelay_http_request_duration_seconds_bucket", &[ingested[0], ingested[1], ("le", "10")])
            .is_some()
    );
    assert!(value(&after, "leadrelay_worker_in_flight", &[]).is_some());
    assert!(value(&after, "leadrelay_lease_expiries_total", &[]).is_some());

    let key = path.rsplit('/').next().unwrap();
    for secret in [key, emails[0], emails[1], "Zebulon", "Quartermaine", &receiver.url(), "metrics-seen-raw-path"] {
        assert!(!body.contains(secret), "the metrics show {secret:?}");
    }
}

#[tokio::test]
async fn a_dead_letter_is_counted_with_its_destination_and_class() {
    let (app, _clock) = TestApp::spawn_stepped_with(UNCACHED).await;
    let receiver = TestReceiver::start().await;
    receiver.respond_with(400, None);
    let (destination, path) = publisher_with_destination(&app, "metrics-dead", &receiver.url()).await;
    assert_eq!(app.ingest(&path, lead_of("refused@metrics-dead.example")).await.status, 202);
    assert_eq!(app.worker.run_once().await.unwrap().dead, 1);

    let (_, samples) = scrape(&app).await;
    let d = [("publisher", "metrics-dead"), ("destination", destination.as_str())];
    assert_eq!(value(&samples, "leadrelay_dead_letters_total", &d), Some(1.0));
    let attempt = [d[0], d[1], ("outcome", "dead_letter"), ("class", "permanent")];
    assert_eq!(value(&samples, "leadrelay_delivery_attempts_total", &attempt), Some(1.0));
    assert_eq!(value(&samples, "leadrelay_outbox_depth", &d), Some(0.0), "a dead letter waits no more");
}

#[tokio::test]
async fn metrics_need_the_admin_token() {
    let app = TestApp::spawn().await;
    let receiver = TestReceiver::start().await;
    publisher_with_destination(&app, "metrics-denied", &receiver.url()).await;
    let token = app.post("/v1/publishers/metrics-denied/tokens", json!({"scopes": ["read", "admin"]})).await;
    let token = token.body["token"].as_str().unwrap().to_owned();

    let anonymous = app.send(Method::GET, "/metrics", None, false).await;
    assert_eq!((anonymous.status, anonymous.body["error"]["code"].as_str()), (401, Some("unauthorized")));
    let (status, body) = app.call_as(&token, Method::GET, "/metrics", None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    let (status, _) = app.call_as("not-a-token", Method::GET, "/metrics", None).await;
    assert_eq!(status, 401);
}

/// One sample: the metric's name, its labels and its value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the text exposition format, failing on any line that is neither a comment nor
/// `name{label="value",…} value`.
fn parse(body: &str) -> Vec<Sample> {
    body.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| parse_line(l).unwrap_or_else(|| panic!("not a sample line: {l:?}")))
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let b = line.as_bytes();
    let word = |from: usize, extra: &[u8]| {
        let mut end = from;
        while b.get(end).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || extra.contains(c)) {
            end += 1;
        }
        end
    };
    let mut i = word(0, b":");
    let name = &line[..i];
    if name.is_empty() || b[0].is_ascii_digit() {
        return None;
    }
    let mut labels = BTreeMap::new();
    if b.get(i) == Some(&b'{') {
        i += 1;
        while b.get(i) != Some(&b'}') {
            let end = word(i, b"");
            let key = &line[i..end];
            if key.is_empty() || line.get(end..end + 2) != Some("=\"") {
                return None;
            }
            i = end + 2;
            let mut value = Vec::new();
            loop {
                match *b.get(i)? {
                    b'\\' => {
                        value.push(match *b.get(i + 1)? {
                            b'n' => b'\n',
                            c @ (b'\\' | b'"') => c,
                            _ => return None,
                        });
                        i += 2;
                    }
                    b'"' => {
                        i += 1;
                        break;
                    }
                    c => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
            labels.insert(key.to_owned(), String::from_utf8(value).ok()?);
            if b.get(i) == Some(&b',') {
                i += 1;
            }
        }
        i += 1;
    }
    let value = match line[i..].strip_prefix(' ')? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().ok()?,
    };
    Some(Sample { name: name.to_owned(), labels, value })
}
