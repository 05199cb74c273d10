//! CRM destinations against in-process fakes that record the exact request.

use std::time::Duration;

use leadrelay_testkit::crm::salesforce::FakeWebToLead;
use serde_json::json;

use crate::support::{TestApp, example_for, status_of};

async fn salesforce(app: &TestApp, fake: &FakeWebToLead, extra: serde_json::Value) -> String {
    let mut settings = json!({"oid": "00Do0000000ZHog", "endpoint": fake.endpoint()});
    if let (Some(s), Some(e)) = (settings.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    let a = app
        .post("/v1/publishers/contoso/destinations", json!({"name": "sf", "kind": "salesforce", "settings": settings}))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    a.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_lead_reaches_salesforce_as_the_documented_web_to_lead_post() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let fake = FakeWebToLead::start().await;
    salesforce(&app, &fake, json!({})).await;
    let lead = json!({"publisher": "contoso", "lead_source": "AppSource (SPZA)-PLT|contoso.crm",
        "customer": {"first_name": "Zoë", "last_name": "O'Neil", "email": "zoe+crm@fabrikam.com", "phone": "+1 617 555 5555",
                     "country": "USA", "company": "Fabrikam & Sons", "title": "CTO"},
        "description": "Needs 50 seats\nCall after 3pm"});
    let id = app.post("/v1/leads", lead).await.body["id"].as_str().unwrap().to_owned();
    app.wait_for_lead(&id, "delivered", |d| status_of(d) == ["delivered"]).await;

    let post = &fake.posts()[0];
    assert_eq!((post.method.as_str(), post.path.as_str()), ("POST", "/servlet/servlet.WebToLead"));
    assert!(post.query.contains(&("encoding".into(), "UTF-8".into())), "encoding in the query: {:?}", post.query);
    assert_eq!(post.content_type, "application/x-www-form-urlencoded; charset=UTF-8");
    let names: Vec<&str> = post.fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "oid",
            "first_name",
            "last_name",
            "email",
            "company",
            "title",
            "phone",
            "country",
            "description",
            "lead_source",
            "encoding"
        ]
    );
    for (field, value) in [
        ("oid", "00Do0000000ZHog"),
        ("first_name", "Zoë"),
        ("last_name", "O'Neil"),
        ("email", "zoe+crm@fabrikam.com"),
        ("company", "Fabrikam & Sons"),
        ("title", "CTO"),
        ("phone", "+1 617 555 5555"),
        ("country", "USA"),
        ("description", "Needs 50 seats\nCall after 3pm"),
        ("lead_source", "AppSource (SPZA)-PLT|contoso.crm"),
        ("encoding", "UTF-8"),
    ] {
        assert_eq!(post.field(field), Some(value), "{field}");
    }
    let detail = app.get(&format!("/v1/leads/{id}")).await.body;
    assert_eq!(detail["deliveries"][0]["attempt_log"][0]["status_code"], 200);
}

#[tokio::test]
async fn validate_sends_the_marketplace_test_lead_and_says_what_cannot_be_verified() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let fake = FakeWebToLead::start().await;
    let dest = salesforce(&app, &fake, json!({})).await;
    let a = app.post(&format!("/v1/destinations/{dest}/validate"), json!({})).await;
    assert_eq!(a.body["ok"], true, "{}", a.body);
    let note = a.body["note"].as_str().unwrap();
    assert!(note.contains("reCAPTCHA") && note.contains("picklist") && note.contains("MSFT_TEST"), "{note}");
    let post = &fake.posts()[0];
    let marker = post.field("first_name").unwrap().to_owned();
    assert!(marker.starts_with("MSFT_TEST_"));
    assert_eq!(post.field("lead_source").unwrap(), format!("{marker}-{marker}|Contoso CRM"));
    assert_eq!(post.field("email").unwrap(), format!("{marker}@test.com"));
    assert_eq!((post.field("phone"), post.field("country")), (Some("1234567890"), Some("US")));

    fake.respond_with(404);
    let a = app.post(&format!("/v1/destinations/{dest}/validate"), json!({})).await;
    assert_eq!(a.body["ok"], false);
    assert!(a.body["hint"].as_str().unwrap().contains("Web-to-Lead is enabled"), "{}", a.body);
}

#[tokio::test]
async fn salesforce_settings_are_checked_field_by_field() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let a = app
        .post(
            "/v1/publishers/contoso/destinations",
            json!({"name": "sf", "kind": "salesforce", "settings": {"oid": "12345", "daily_cap": 0, "url": "x"}}),
        )
        .await;
    assert_eq!(a.status, 422);
    let mut paths: Vec<&str> =
        a.body["error"]["fields"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["settings.daily_cap", "settings.oid", "settings.url"]);
    let a = app
        .post(
            "/v1/publishers/contoso/destinations",
            json!({"name": "sf", "kind": "salesforce", "settings": {"oid": "00Do0000000ZHog"}}),
        )
        .await;
    assert_eq!(a.body["settings"]["endpoint"], "https://webto.salesforce.com/servlet/servlet.WebToLead?encoding=UTF-8");
    assert_eq!(a.body["settings"]["daily_cap"], 500);
}

async fn wait_for_posts(fake: &FakeWebToLead, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while fake.posts().len() < n {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {n} posts");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn leads_beyond_the_daily_cap_are_held_not_dropped_and_an_outage_is_retried() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let fake = FakeWebToLead::start().await;
    salesforce(&app, &fake, json!({"daily_cap": 2})).await;
    let path = app.ingest_path(None).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            app.ingest(&path, example_for(&format!("cap{i}@fabrikam.com"))).await.body["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    wait_for_posts(&fake, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.posts().len(), 2, "only the cap's worth is posted");
    let mut delivered = 0;
    for id in &ids {
        let lead = app.get(&format!("/v1/leads/{id}")).await.body;
        match status_of(lead["deliveries"].as_array().unwrap()).as_slice() {
            ["delivered"] => delivered += 1,
            ["pending"] => {
                let d = &lead["deliveries"][0];
                assert_eq!(d["attempt_log"][0]["error_class"], "throttled", "{lead:#}");
                assert_eq!(d["attempts"], 0, "holding does not use up attempts");
                let next = leadrelay_core::Timestamp::parse_rfc3339(d["next_attempt_at"].as_str().unwrap()).unwrap();
                let now = leadrelay_core::Clock::now(&leadrelay_core::SystemClock);
                assert!(next.since(now) > Duration::from_secs(23 * 3600), "held until the 24-hour window opens");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(delivered, 2);

    let outage = FakeWebToLead::start().await;
    outage.respond_with(503);
    let settings = json!({"oid": "00Do0000000ZHog", "endpoint": outage.endpoint()});
    let a = app
        .post("/v1/publishers/contoso/destinations", json!({"name": "sf2", "kind": "salesforce", "settings": settings}))
        .await;
    assert_eq!(a.status, 201);
    let id = app.ingest(&path, example_for("outage@fabrikam.com")).await.body["id"].as_str().unwrap().to_owned();
    wait_for_posts(&outage, 1).await;
    outage.respond_with(200);
    let lead = app
        .wait_for_lead(&id, "delivered once the org recovers", |d| d.iter().any(|x| x["status"] == "delivered"))
        .await;
    assert!(outage.posts().len() >= 2, "the 503 was retried");
    let statuses = status_of(lead["deliveries"].as_array().unwrap());
    assert!(statuses.contains(&"pending"), "the capped org still holds its copy: {statuses:?}");
}
