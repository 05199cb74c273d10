//! The `hubspot` destination through the real API and worker, against the in-process fake that
//! holds each request to HubSpot's documented batch upsert.

use std::time::Duration;

use leadrelay_testkit::crm::hubspot::{ACCESS_TOKEN, FakeHubspot, UPSERT_PATH};
use serde_json::{Value, json};

use crate::support::{TestApp, example_for, status_of};

const PROPERTY: &str = "marketplace_lead_source";

async fn create(app: &TestApp, settings: Value) -> crate::support::Answer {
    app.post("/v1/publishers/contoso/destinations", json!({"name": "hub", "kind": "hubspot", "settings": settings}))
        .await
}

/// A hubspot destination on the fake; returns its id.
async fn hubspot(app: &TestApp, fake: &FakeHubspot, extra: Value) -> String {
    let mut settings = json!({"access_token": ACCESS_TOKEN, "base_url": fake.base_url()});
    if let (Some(s), Some(e)) = (settings.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    let a = create(app, settings).await;
    assert_eq!(a.status, 201, "{}", a.body);
    a.body["id"].as_str().unwrap().to_owned()
}

/// The lead's delivery to `dest`, once it is dead-lettered.
async fn dead_delivery(app: &TestApp, id: &str, dest: &str) -> Value {
    let to_dest = |d: &Value| d["destination"] == dest;
    let lead = app.wait_for_lead(id, "a dead letter", |d| d.iter().any(|x| to_dest(x) && x["status"] == "dead")).await;
    lead["deliveries"].as_array().unwrap().iter().find(|x| to_dest(x)).unwrap().clone()
}

fn now() -> leadrelay_core::Timestamp {
    leadrelay_core::Clock::now(&leadrelay_core::SystemClock)
}

#[tokio::test]
async fn a_hubspot_destination_is_created_without_its_token_ever_being_echoed_back() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let fake = FakeHubspot::start().await;
    let settings = json!({"access_token": ACCESS_TOKEN, "base_url": fake.base_url(), "lead_source_property": PROPERTY});
    let a = create(&app, settings).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["settings"], json!({"base_url": fake.base_url(), "lead_source_property": PROPERTY}));
    assert!(a.body.get("generated_secret").is_none_or(Value::is_null), "{}", a.body);
    let id = a.body["id"].as_str().unwrap();
    for path in [format!("/v1/destinations/{id}"), "/v1/publishers/contoso/destinations".to_owned()] {
        let answer = app.get(&path).await;
        assert_eq!(answer.status, 200);
        assert!(!answer.body.to_string().contains(ACCESS_TOKEN), "{path}: {}", answer.body);
    }
    assert!(!a.body.to_string().contains(ACCESS_TOKEN));

    let default = create(&app, json!({"access_token": ACCESS_TOKEN})).await;
    assert_eq!(default.status, 201, "{}", default.body);
    assert_eq!(default.body["settings"]["base_url"], "https://api.hubapi.com");
}

#[tokio::test]
async fn a_lead_is_upserted_by_email_as_documented_and_a_replay_updates_the_same_contact() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let fake = FakeHubspot::start().await;
    fake.define_property(PROPERTY);
    let dest = hubspot(&app, &fake, json!({"lead_source_property": PROPERTY})).await;
    let lead = json!({"publisher": "contoso", "lead_source": "AppSource (SPZA)-PLT|contoso.crm",
        "customer": {"first_name": "Zoë", "last_name": "O'Neil", "email": "Zoe+crm@Fabrikam.com", "phone": "+1 (617) 555-5555",
                     "country": "United States", "company": "Fabrikam & Sons", "title": "CTO"}});
    let id = app.post("/v1/leads", lead).await.body["id"].as_str().unwrap().to_owned();
    let detail = app.wait_for_lead(&id, "delivered", |d| status_of(d) == ["delivered"]).await;

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", UPSERT_PATH));
    assert_eq!(req.headers["authorization"], format!("Bearer {ACCESS_TOKEN}"));
    assert_eq!(req.headers["content-type"], "application/json");
    assert_eq!(
        req.json(),
        json!({"inputs": [{"idProperty": "email", "id": "Zoe+crm@Fabrikam.com", "properties": {
            "email": "Zoe+crm@Fabrikam.com", "firstname": "Zoë", "lastname": "O'Neil", "phone": "+1 (617) 555-5555",
            "company": "Fabrikam & Sons", "jobtitle": "CTO", "country": "United States",
            PROPERTY: "AppSource (SPZA)-PLT|contoso.crm"}}]}),
        "the exact values as received, under HubSpot's default property names"
    );
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    let attempt = &detail["deliveries"][0]["attempt_log"][0];
    assert_eq!(
        (attempt["status_code"].as_u64(), attempt["response_excerpt"].as_str()),
        (Some(200), Some("contact 501 created"))
    );

    let a = app.post(&format!("/v1/destinations/{dest}/replay"), json!({"since": "2020-01-01"})).await;
    assert_eq!(a.body["replayed"], 1, "{}", a.body);
    let detail = app
        .wait_for_lead(&id, "the replay delivered", |d| {
            d[0]["attempt_log"].as_array().is_some_and(|l| l.len() == 2) && status_of(d) == ["delivered"]
        })
        .await;
    let log = detail["deliveries"][0]["attempt_log"].as_array().unwrap();
    assert!(log.iter().any(|a| a["response_excerpt"] == "contact 501 updated"), "{log:?}");
    assert_eq!(fake.contact_count(), 1, "the replay updated the contact instead of adding one");
    assert_eq!(fake.contact("zoe+crm@fabrikam.com").unwrap().properties["company"], "Fabrikam & Sons");
}

#[tokio::test]
async fn validate_sends_the_test_lead_and_a_refused_token_gets_a_hint_to_copy_it_again() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let fake = FakeHubspot::start().await;
    let dest = hubspot(&app, &fake, json!({})).await;
    let v = app.post(&format!("/v1/destinations/{dest}/validate"), json!({})).await;
    assert_eq!((v.body["ok"].as_bool(), v.body["status_code"].as_u64()), (Some(true), Some(200)), "{}", v.body);
    let input = &fake.requests().last().unwrap().json()["inputs"][0];
    let marker = input["properties"]["firstname"].as_str().unwrap();
    assert!(marker.starts_with("MSFT_TEST_"), "{input}");
    assert_eq!(input["id"], format!("{marker}@test.com"));
    assert_eq!(
        (input["properties"]["phone"].as_str(), input["properties"]["country"].as_str()),
        (Some("1234567890"), Some("US"))
    );

    let wrong = "pat-na1-00000000-dead-beef-0000-000000000000";
    let bad = create(&app, json!({"access_token": wrong, "base_url": fake.base_url()})).await;
    let bad = bad.body["id"].as_str().unwrap().to_owned();
    let v = app.post(&format!("/v1/destinations/{bad}/validate"), json!({})).await;
    assert_eq!((v.body["ok"].as_bool(), v.body["status_code"].as_u64()), (Some(false), Some(401)), "{}", v.body);
    let hint = v.body["hint"].as_str().unwrap();
    assert!(hint.contains("access token") && hint.contains("Private Apps"), "{hint}");
    assert!(v.body["error"].as_str().unwrap().contains("INVALID_AUTHENTICATION"), "{}", v.body);
    assert!(!v.body.to_string().contains(wrong), "the token is never echoed: {}", v.body);
}

#[tokio::test]
async fn a_rate_limited_upsert_waits_for_hubspot_and_is_delivered_without_a_dead_letter() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let fake = FakeHubspot::start().await;
    hubspot(&app, &fake, json!({})).await;
    let path = app.ingest_path(None).await;

    fake.respond_next(429, Some(1));
    let id = app.ingest(&path, example_for("throttled@contoso.com")).await.body["id"].as_str().unwrap().to_owned();
    let held = app
        .wait_for_lead(&id, "a throttled attempt", |d| d[0]["attempt_log"].as_array().is_some_and(|l| !l.is_empty()))
        .await;
    let d = &held["deliveries"][0];
    assert_eq!((d["attempt_log"][0]["error_class"].as_str(), d["attempts"].as_u64()), (Some("throttled"), Some(0)));
    app.wait_for_lead(&id, "delivered after the Retry-After", |d| status_of(d) == ["delivered"]).await;

    // Without Retry-After, HubSpot's ten-second window is waited out.
    fake.respond_next(429, None);
    let later = app.ingest(&path, example_for("later@contoso.com")).await.body["id"].as_str().unwrap().to_owned();
    let held = app
        .wait_for_lead(&later, "a throttled attempt", |d| d[0]["attempt_log"].as_array().is_some_and(|l| !l.is_empty()))
        .await;
    let d = &held["deliveries"][0];
    assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("pending"), Some(0)));
    let next = leadrelay_core::Timestamp::parse_rfc3339(d["next_attempt_at"].as_str().unwrap()).unwrap();
    assert!(next.since(now()) > Duration::from_secs(7), "waits about 10 s");
    let dead = app.get("/v1/deliveries?status=dead").await.body;
    assert!(dead["items"].as_array().unwrap().is_empty(), "nothing dead-lettered: {dead}");
}

#[tokio::test]
async fn a_conflict_and_an_outage_are_retried_until_hubspot_takes_the_contact() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let fake = FakeHubspot::start().await;
    hubspot(&app, &fake, json!({})).await;
    fake.respond_next(409, None);
    fake.respond_next(503, None);
    let path = app.ingest_path(None).await;
    let id = app.ingest(&path, example_for("racing@contoso.com")).await.body["id"].as_str().unwrap().to_owned();
    let lead = app.wait_for_lead(&id, "delivered after two failures", |d| status_of(d) == ["delivered"]).await;
    let log = lead["deliveries"][0]["attempt_log"].as_array().unwrap();
    let classes: Vec<&str> = log.iter().map(|a| a["error_class"].as_str().unwrap_or("none")).collect();
    assert_eq!(classes, ["transient", "transient", "none"], "{log:?}");
    assert_eq!((log[0]["status_code"].as_u64(), log[1]["status_code"].as_u64()), (Some(409), Some(503)));
    assert_eq!(fake.contact_count(), 1);
}

#[tokio::test]
async fn a_missing_scope_an_unknown_property_and_an_invalid_email_dead_letter_with_hints() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let fake = FakeHubspot::start().await;
    let path = app.ingest_path(None).await;

    // The lead source property was never created in the portal: dead at once, saying which.
    let unknown = hubspot(&app, &fake, json!({"lead_source_property": "mp_source_missing"})).await;
    let id = app.ingest(&path, example_for("property@contoso.com")).await.body["id"].as_str().unwrap().to_owned();
    let dead = dead_delivery(&app, &id, &unknown).await;
    assert_eq!(dead["attempts"], 1);
    let error = dead["last_error"].as_str().unwrap();
    assert!(
        error.contains("400") && error.contains("mp_source_missing") && error.contains("does not exist"),
        "{error}"
    );
    let v = app.post(&format!("/v1/destinations/{unknown}/validate"), json!({})).await;
    assert!(
        v.body["hint"].as_str().unwrap().contains("create the custom contact property mp_source_missing"),
        "{}",
        v.body
    );
    assert_eq!(app.post(&format!("/v1/destinations/{unknown}/disable"), json!({})).await.status, 200);

    // The private app lacks the contacts write scope.
    let scoped = hubspot(&app, &fake, json!({})).await;
    fake.respond_always(403, None);
    let id = app.ingest(&path, example_for("scope@contoso.com")).await.body["id"].as_str().unwrap().to_owned();
    let dead = dead_delivery(&app, &id, &scoped).await;
    assert!(dead["last_error"].as_str().unwrap().contains("crm.objects.contacts.write"), "{dead}");
    let v = app.post(&format!("/v1/destinations/{scoped}/validate"), json!({})).await;
    assert_eq!(v.body["status_code"], 403);
    let hint = v.body["hint"].as_str().unwrap();
    assert!(hint.contains("crm.objects.contacts.write") && hint.contains("Scopes"), "{hint}");
    fake.heal();

    // HubSpot refuses the address; its message quotes it, ours does not.
    fake.respond_next(400, None);
    let id = app.ingest(&path, example_for("odd@contoso.com")).await.body["id"].as_str().unwrap().to_owned();
    let dead = dead_delivery(&app, &id, &scoped).await;
    let error = dead["last_error"].as_str().unwrap();
    assert!(error.contains("email address invalid") && !error.contains("odd@contoso.com"), "{error}");
}

#[tokio::test]
async fn a_lead_without_an_email_is_dead_lettered_with_a_reason_and_never_sent() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let fake = FakeHubspot::start().await;
    let dest = hubspot(&app, &fake, json!({})).await;
    let lead = json!({"publisher": "contoso", "lead_source": "AzureMarketplace-INS|contoso.crm",
        "customer": {"first_name": "Ann", "last_name": "Lee", "company": "Fabrikam", "phone": "16175550100"}});
    let a = app.post("/v1/leads", lead).await;
    assert_eq!(a.status, 202, "{}", a.body);
    let dead = dead_delivery(&app, a.body["id"].as_str().unwrap(), &dest).await;
    assert_eq!(dead["attempts"], 1);
    assert!(dead["last_error"].as_str().unwrap().contains("no email"), "{dead}");
    assert!(fake.requests().is_empty(), "nothing was sent to HubSpot");
}

#[tokio::test]
async fn hubspot_settings_with_an_unknown_key_or_a_wrong_value_are_refused_by_field_path() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let paths = |a: &crate::support::Answer| {
        let mut p: Vec<String> = a.body["error"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap().to_owned())
            .collect();
        p.sort_unstable();
        p
    };
    let a = create(&app, json!({"access_token": ACCESS_TOKEN, "api_key": "legacy", "portal_id": 123})).await;
    assert_eq!(a.status, 422, "{}", a.body);
    assert_eq!(paths(&a), ["settings.api_key", "settings.portal_id"]);
    assert!(
        a.body["error"]["fields"][0]["message"].as_str().unwrap().contains("access_token"),
        "names what is expected"
    );
    assert!(!a.body.to_string().contains(ACCESS_TOKEN), "{}", a.body);

    let a = create(&app, json!({"base_url": "ftp://api.hubapi.com", "lead_source_property": "Lead Source"})).await;
    assert_eq!(a.status, 422, "{}", a.body);
    assert_eq!(paths(&a), ["settings.access_token", "settings.base_url", "settings.lead_source_property"]);
    let a = create(&app, json!({"access_token": ["not", "a", "string"]})).await;
    assert_eq!(paths(&a), ["settings.access_token"]);
}

#[tokio::test]
async fn a_lead_whose_personal_data_is_withheld_never_reaches_hubspot_not_even_by_replay() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let fake = FakeHubspot::start().await;
    let dest = hubspot(&app, &fake, json!({})).await;
    let path = app.ingest_path(None).await;
    let a = app.ingest(&path, example_for("stu@uni.edu")).await;
    let id = a.body["id"].as_str().unwrap().to_owned();
    let lead = app.get(&format!("/v1/leads/{id}")).await.body;
    assert_eq!(lead["pii_withheld"], true, "{lead}");
    assert!(lead["deliveries"].as_array().unwrap().is_empty(), "no delivery is planned to a CRM: {lead}");
    // A replay plans with the same routing rule as ingest: the withheld lead is not replayed.
    let replay = app.post(&format!("/v1/destinations/{dest}/replay"), json!({})).await;
    assert_eq!((replay.status, replay.body["replayed"].as_u64()), (202, Some(0)), "{}", replay.body);
    let lead = app.get(&format!("/v1/leads/{id}")).await.body;
    assert!(lead["deliveries"].as_array().unwrap().is_empty(), "nothing planned by the replay either: {lead}");
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}
