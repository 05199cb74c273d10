//! One destination must not cost another its delivery time: a per-destination cap on deliveries
//! in flight, fair claims across destinations, and a throttling receiver that pauses only its
//! own destination.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use leadrelay_core::Timestamp;
use leadrelay_testkit::ManualClock;
use leadrelay_testkit::receiver::TestReceiver;
use serde_json::{Value, json};

use crate::support::{FAST, TestApp};

/// A receiver that accepts connections and never answers; counts the connections it holds.
async fn hanging_receiver() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let held = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&held);
    tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            sockets.push(socket);
        }
    });
    (url, held)
}

fn leads_for(publisher: &str, n: usize, tag: &str) -> Value {
    let leads: Vec<Value> = (0..n)
        .map(|i| {
            json!({"publisher": publisher, "lead_source": "AzureMarketplace-INS",
                   "customer": {"email": format!("{tag}{i}@example.com")}})
        })
        .collect();
    Value::Array(leads)
}

async fn fabrikam_destination(app: &TestApp, url: &str) {
    assert_eq!(app.post("/v1/publishers", json!({"id": "fabrikam", "name": "Fabrikam"})).await.status, 201);
    let secret = leadrelay_core::signing::WebhookSecret::from_bytes(vec![7; 32]).unwrap().to_whsec();
    let body = json!({"name": "hook", "kind": "https", "settings": {"url": url, "secret": secret}});
    let a = app.post("/v1/publishers/fabrikam/destinations", body).await;
    assert_eq!(a.status, 201, "{}", a.body);
}

#[tokio::test]
async fn a_hanging_receiver_holds_only_its_cap_and_another_publishers_lead_goes_out_at_once() {
    let config = FAST.replacen("request_timeout_ms = 5000", "request_timeout_ms = 30000", 1).replacen(
        "lease_ms = 15000",
        "lease_ms = 60000",
        1,
    ) + "per_destination_concurrency = 4\nconcurrency = 16\n";
    let app = TestApp::spawn_with(&config).await;
    app.contoso().await;
    let (hanging, held) = hanging_receiver().await;
    app.https_destination(&hanging, None).await;
    let accepted = app.post("/v1/leads", leads_for("contoso", 300, "stuck")).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while held.load(Ordering::SeqCst) < 4 {
        assert!(tokio::time::Instant::now() < deadline, "the hanging receiver never got its share");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let healthy = TestReceiver::start().await;
    fabrikam_destination(&app, &healthy.url()).await;
    let started = tokio::time::Instant::now();
    assert_eq!(app.post("/v1/leads", leads_for("fabrikam", 1, "buyer")).await.status, 202);
    healthy.wait_until(Duration::from_secs(5), "the other publisher's lead", |r| r.len() == 1).await;
    assert!(started.elapsed() < Duration::from_secs(5), "it waited {:?}", started.elapsed());
    assert_eq!(held.load(Ordering::SeqCst), 4, "the hanging destination never holds more than its cap");
}

#[tokio::test]
async fn a_throttling_receiver_pauses_its_destination_and_one_probe_goes_first() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_800_000_000_000)));
    let config = FAST.replacen("[worker]", "[worker]\nenabled = false\nper_destination_concurrency = 4", 1);
    let app = TestApp::spawn_with_clock(&config, clock.clone()).await;
    app.contoso().await;
    let receiver = TestReceiver::start().await;
    receiver.respond_with(429, Some("60"));
    app.https_destination(&receiver.url(), None).await;
    let accepted = app.post("/v1/leads", leads_for("contoso", 20, "lead")).await;
    let ids: Vec<String> =
        accepted.body["ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();

    let first = app.worker.run_once().await.unwrap();
    assert_eq!((first.claimed, first.retrying), (4, 4), "at most the cap is in flight when the 429s come");
    assert!(app.worker.run_once().await.unwrap().is_idle(), "the destination is paused, not each delivery");
    clock.advance(Duration::from_secs(30));
    assert!(app.worker.run_once().await.unwrap().is_idle());
    clock.advance(Duration::from_secs(31));
    let probe = app.worker.run_once().await.unwrap();
    assert_eq!((probe.claimed, probe.retrying), (1, 1), "after the pause one delivery probes");
    assert_eq!(receiver.requests().len(), 5);

    receiver.respond_with(200, None);
    clock.advance(Duration::from_secs(61));
    let probe = app.worker.run_once().await.unwrap();
    assert_eq!((probe.claimed, probe.delivered), (1, 1), "one probe first, even after the receiver recovered");
    let mut delivered = 1;
    while delivered < 20 {
        let step = app.worker.run_once().await.unwrap();
        assert!(step.claimed <= 4 && step.delivered == step.claimed, "{step:?}");
        assert!(!step.is_idle(), "the pause ended with the probe's success");
        delivered += step.delivered;
    }
    assert_eq!(receiver.delivered_ids().len(), 20);
    assert_eq!(receiver.requests().len(), 25, "20 deliveries, 4 throttled tries and one throttled probe");
    for id in ids {
        let lead = app.get(&format!("/v1/leads/{id}")).await.body;
        let log = lead["deliveries"][0]["attempt_log"].as_array().unwrap().len();
        assert!(log <= 2, "throttled tries of one delivery share an attempt row: {lead:#}");
        assert_eq!(lead["deliveries"][0]["attempts"], 1, "throttling uses up no attempt");
    }
}
