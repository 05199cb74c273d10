//! Delivery: retries, dead letters, 410, pausing, replay.

use std::time::Duration;

use leadrelay_testkit::TestReceiver;
use serde_json::json;

use crate::support::{TestApp, documented_example, example_for, status_of};

#[tokio::test]
async fn a_receiver_that_fails_for_a_while_still_gets_the_lead_once_recovered() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let receiver = TestReceiver::start().await;
    receiver.fail_for(Duration::from_millis(600), 503);
    app.https_destination(&receiver.url(), None).await;
    let path = app.ingest_path(None).await;
    let id = app.ingest(&path, documented_example()).await.body["id"].as_str().unwrap().to_owned();
    let lead = app.wait_for_lead(&id, "delivered after retries", |d| status_of(d) == ["delivered"]).await;
    let log = lead["deliveries"][0]["attempt_log"].as_array().unwrap();
    assert!(log.len() >= 2, "failed attempts are recorded: {log:#?}");
    assert_eq!(log[0]["status_code"], 503);
    assert_eq!(log[0]["error_class"], "transient");
    assert_eq!(log.last().unwrap()["status_code"], 200);
    let ids: Vec<_> = receiver.requests().iter().map(|r| r.webhook_id().unwrap().to_owned()).collect();
    assert!(ids.iter().all(|i| i == &id), "webhook-id is stable across retries");
}

#[tokio::test]
async fn retry_after_is_honoured_without_using_up_attempts() {
    let (app, clock) = TestApp::spawn_stepped().await;
    app.contoso().await;
    let receiver = TestReceiver::start().await;
    receiver.respond_with(429, Some("30"));
    app.https_destination(&receiver.url(), None).await;
    let path = app.ingest_path(None).await;
    let id = app.ingest(&path, documented_example()).await.body["id"].as_str().unwrap().to_owned();
    let step = app.worker.run_once().await.unwrap();
    assert_eq!((step.claimed, step.retrying), (1, 1));
    clock.advance(Duration::from_secs(29));
    assert!(app.worker.run_once().await.unwrap().is_idle(), "no second attempt before Retry-After (30 s)");
    assert_eq!(receiver.requests().len(), 1, "although the schedule says 100 ms");
    let lead = app.get(&format!("/v1/leads/{id}")).await.body;
    assert_eq!(lead["deliveries"][0]["attempts"], 0, "a throttled attempt does not count");
    assert_eq!(lead["deliveries"][0]["attempt_log"][0]["error_class"], "throttled");
    receiver.respond_with(200, None);
    clock.advance(Duration::from_secs(2));
    assert_eq!(app.worker.run_once().await.unwrap().delivered, 1);
    assert_eq!(
        status_of(app.get(&format!("/v1/leads/{id}")).await.body["deliveries"].as_array().unwrap()),
        ["delivered"]
    );
}

#[tokio::test]
async fn a_permanent_failure_is_dead_lettered_at_once_and_can_be_retried() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let receiver = TestReceiver::start().await;
    receiver.respond_with(404, None);
    let (dest, _) = app.https_destination(&receiver.url(), None).await;
    let path = app.ingest_path(None).await;
    let id = app.ingest(&path, documented_example()).await.body["id"].as_str().unwrap().to_owned();
    let lead = app.wait_for_lead(&id, "dead letter", |d| status_of(d) == ["dead"]).await;
    assert_eq!(receiver.requests().len(), 1, "404 is not retried");
    assert!(lead["deliveries"][0]["last_error"].as_str().unwrap().contains("404"));

    let dead = app.get(&format!("/v1/deliveries?status=dead&destination={dest}")).await.body;
    assert_eq!(dead["items"].as_array().unwrap().len(), 1);
    let delivery = dead["items"][0]["id"].as_str().unwrap().to_owned();

    receiver.respond_with(200, None);
    let a = app.post(&format!("/v1/deliveries/{delivery}/retry"), json!({})).await;
    assert_eq!(a.status, 202, "{}", a.body);
    app.wait_for_lead(&id, "delivered after manual retry", |d| status_of(d) == ["delivered"]).await;
    assert!(
        app.get(&format!("/v1/deliveries?status=dead&destination={dest}")).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn exhausted_retries_dead_letter_and_a_replay_of_dead_letters_delivers_them() {
    let (app, clock) = TestApp::spawn_stepped().await;
    app.contoso().await;
    let receiver = TestReceiver::start().await;
    receiver.respond_with(500, None);
    let (dest, _) = app.https_destination(&receiver.url(), None).await;
    let path = app.ingest_path(None).await;
    let id = app.ingest(&path, documented_example()).await.body["id"].as_str().unwrap().to_owned();
    for attempt in 1..=5 {
        let step = app.worker.run_once().await.unwrap();
        assert_eq!((step.claimed, step.retrying), (1, 1), "attempt {attempt} is retried");
        assert!(app.worker.run_once().await.unwrap().is_idle(), "not before its due time");
        clock.advance(Duration::from_millis(500));
    }
    assert_eq!(app.worker.run_once().await.unwrap().dead, 1, "the sixth failure gives up");
    let lead = app.get(&format!("/v1/leads/{id}")).await.body;
    assert_eq!(status_of(lead["deliveries"].as_array().unwrap()), ["dead"]);
    assert_eq!(lead["deliveries"][0]["attempts"], 6, "the first attempt and five retries");
    assert_eq!(receiver.requests().len(), 6);

    receiver.respond_with(200, None);
    let a = app.post(&format!("/v1/destinations/{dest}/replay"), json!({"only_dead": true})).await;
    assert_eq!((a.status, a.body["replayed"].as_u64()), (202, Some(1)));
    assert_eq!(app.worker.run_once().await.unwrap().delivered, 1, "delivered after replay");
}

#[tokio::test]
async fn gone_disables_the_destination_and_its_queue_waits_until_enabled() {
    let (app, _clock) = TestApp::spawn_stepped().await;
    app.contoso().await;
    let receiver = TestReceiver::start().await;
    receiver.respond_with(410, None);
    let (dest, _) = app.https_destination(&receiver.url(), None).await;
    let path = app.ingest_path(None).await;
    app.ingest(&path, documented_example()).await;
    assert_eq!(app.worker.run_once().await.unwrap().dead, 1);
    let d = app.get(&format!("/v1/destinations/{dest}")).await.body;
    assert_eq!(d["enabled"], false);
    assert!(d["disabled_reason"].as_str().unwrap().contains("410"));

    receiver.respond_with(200, None);
    let second = app.ingest(&path, example_for("second@contoso.com")).await.body["id"].as_str().unwrap().to_owned();
    assert!(app.worker.run_once().await.unwrap().is_idle(), "nothing is sent to a disabled destination");
    assert_eq!(receiver.requests().len(), 1);
    assert_eq!(
        status_of(app.get(&format!("/v1/leads/{second}")).await.body["deliveries"].as_array().unwrap()),
        ["pending"]
    );

    assert_eq!(app.post(&format!("/v1/destinations/{dest}/enable"), json!({})).await.status, 200);
    assert_eq!(app.worker.run_once().await.unwrap().delivered, 1, "the backlog is delivered once enabled");
}

#[tokio::test]
async fn a_time_range_replay_sends_leads_a_new_destination_missed() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let path = app.ingest_path(None).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let lead = example_for(&format!("buyer{i}@contoso.com"));
        ids.push(app.ingest(&path, lead).await.body["id"].as_str().unwrap().to_owned());
    }
    let repeat = app.ingest(&path, example_for("buyer0@contoso.com")).await;
    assert_eq!(repeat.status, 202, "a duplicate is stored too, but never replayed");
    let receiver = TestReceiver::start().await;
    let (dest, secret) = app.https_destination(&receiver.url(), None).await;
    let a = app
        .post(
            &format!("/v1/destinations/{dest}/replay"),
            json!({"since": "2020-01-01T00:00:00Z", "until": "2999-01-01"}),
        )
        .await;
    assert_eq!((a.status, a.body["replayed"].as_u64()), (202, Some(3)), "{}", a.body);
    receiver.wait_until(Duration::from_secs(10), "three replayed leads", |r| r.len() == 3).await;
    let got: std::collections::BTreeSet<String> = receiver.delivered_ids().into_iter().collect();
    assert_eq!(got, ids.iter().cloned().collect());
    leadrelay_testkit::python::verify_signatures(&secret, &receiver.requests());

    let a = app
        .post(&format!("/v1/destinations/{dest}/replay"), json!({"since": "2030-01-01", "until": "2020-01-01"}))
        .await;
    assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("until")));
}

#[tokio::test]
async fn each_destination_gets_its_own_delivery_and_a_disabled_one_does_not_block_the_other() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let ok = TestReceiver::start().await;
    let paused = TestReceiver::start().await;
    app.https_destination(&ok.url(), None).await;
    let (p, _) = app.https_destination(&paused.url(), None).await;
    assert_eq!(app.post(&format!("/v1/destinations/{p}/disable"), json!({})).await.status, 200);
    let path = app.ingest_path(None).await;
    let id = app.ingest(&path, documented_example()).await.body["id"].as_str().unwrap().to_owned();
    app.wait_for_lead(&id, "one delivered, one waiting", |d| {
        let mut s = status_of(d);
        s.sort_unstable();
        s == ["delivered", "pending"]
    })
    .await;
    assert!(paused.requests().is_empty());
}

#[tokio::test]
async fn validate_sends_a_test_lead_in_the_marketplace_format_and_explains_failures() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let receiver = TestReceiver::start().await;
    let (dest, secret) = app.https_destination(&receiver.url(), Some(&["contoso.crm"])).await;
    let a = app.post(&format!("/v1/destinations/{dest}/validate"), json!({})).await;
    assert_eq!((a.status, a.body["ok"].as_bool()), (200, Some(true)), "{}", a.body);
    let sent = receiver.requests()[0].json();
    let marker = sent["Description"].as_str().unwrap().to_owned();
    assert!(marker.starts_with("MSFT_TEST_") && marker.len() == "MSFT_TEST_636573304831318844".len(), "{marker}");
    for field in ["FirstName", "LastName", "Company", "Title"] {
        assert_eq!(sent["UserDetails"][field], marker.as_str());
    }
    assert_eq!(sent["UserDetails"]["Email"], format!("{marker}@test.com"));
    assert_eq!(sent["UserDetails"]["Phone"], "1234567890");
    assert_eq!(sent["UserDetails"]["Country"], "US");
    assert_eq!(sent["OfferTitle"], "Contoso CRM");
    leadrelay_testkit::python::verify_signatures(&secret, &receiver.requests());
    let stored = app.get(&format!("/v1/leads/{}", a.body["test_lead_id"].as_str().unwrap())).await.body;
    assert_eq!(stored["is_test"], true);

    for (status, expect) in [(401, "sig="), (404, "path"), (500, "logs")] {
        receiver.respond_with(status, None);
        let a = app.post(&format!("/v1/destinations/{dest}/validate"), json!({})).await;
        assert_eq!(a.body["ok"], false);
        assert_eq!(a.body["status_code"], status);
        assert!(a.body["hint"].as_str().unwrap().contains(expect), "{status}: {}", a.body);
    }

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (unreachable, _) = app.https_destination(&format!("http://127.0.0.1:{port}/hook"), None).await;
    let a = app.post(&format!("/v1/destinations/{unreachable}/validate"), json!({})).await;
    assert_eq!(a.body["ok"], false);
    assert!(a.body["hint"].as_str().unwrap().contains("port"), "{}", a.body);
    assert_eq!(app.post("/v1/destinations/dst_01a20a0762607c72a156aa91071bfdac/validate", json!({})).await.status, 404);
}

#[tokio::test]
async fn a_replay_never_sends_a_lead_without_personal_data_to_a_crm_destination() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let receiver = TestReceiver::start().await;
    let (dest, _) = app.https_destination(&receiver.url(), None).await;
    let path = app.ingest_path(None).await;
    let student = app.ingest(&path, example_for("stu@uni.edu")).await;
    assert_eq!(student.status, 202, "{}", student.body);
    let buyer = app.ingest(&path, example_for("buyer@contoso.com")).await.body["id"].as_str().unwrap().to_owned();
    receiver.wait_until(Duration::from_secs(10), "the buyer's lead", |r| r.len() == 1).await;
    // A replay leaves a delivery in flight alone: before each, wait until the last result is
    // recorded (the receiver has the lead a moment before that).
    let recorded = || async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while app.get(&format!("/v1/leads/{buyer}")).await.body["deliveries"][0]["status"] != "delivered" {
            assert!(tokio::time::Instant::now() < deadline, "the buyer's delivery was never recorded");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };

    let mut sent = 1;
    for (body, replayed) in
        [(json!({}), 1), (json!({"since": "2020-01-01T00:00:00Z"}), 1), (json!({"only_dead": true}), 0)]
    {
        recorded().await;
        let a = app.post(&format!("/v1/destinations/{dest}/replay"), body.clone()).await;
        assert_eq!((a.status, a.body["replayed"].as_u64()), (202, Some(replayed)), "{body}: {}", a.body);
        sent += replayed;
        receiver.wait_until(Duration::from_secs(10), "the buyer's lead again", |r| r.len() as u64 == sent).await;
    }
    let ids = receiver.delivered_ids();
    assert_eq!(ids.into_iter().collect::<Vec<_>>(), vec![buyer], "only the buyer's lead, never the student's");
    let student = app.get(&format!("/v1/leads/{}", student.body["id"].as_str().unwrap())).await.body;
    assert!(student["deliveries"].as_array().unwrap().is_empty(), "{student:#}");
}
