//! Marketplace events, customers and de-duplication.

use std::time::Duration;

use leadrelay_testkit::TestReceiver;
use serde_json::{Value, json};

use crate::support::{TestApp, status_of};

fn event(marketplace: &str, action: &str, email: &str) -> Value {
    json!({
        "offer": "contoso.crm", "marketplace": marketplace, "action": action, "consent": true,
        "customer": {"first_name": "Some", "last_name": "One", "email": email, "company": "Fabrikam"},
        "notes": "Please call after 3pm", "campaign": "blogpost_12"
    })
}

#[tokio::test]
async fn every_marketplace_action_produces_the_documented_lead_source_and_stage() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let sources =
        [("AzureMarketplace", "AzureMarketplace"), ("AzurePortal", "AzurePortal"), ("AppSource", "AppSource (SPZA)")];
    let actions = [
        ("contact_me", "PLT", "initial_interest"),
        ("get_it_now", "INS", "active"),
        ("create", "Create", "active"),
        ("subscribe", "Create", "active"),
        ("test_drive", "StartTestDrive", "trial"),
        ("free_trial", "FreeTrial", "trial"),
        ("partner_contact", "DNC", "do_not_contact"),
    ];
    let mut checked = 0;
    for (marketplace, source) in sources {
        for (action, code, stage) in actions {
            let email = format!("{marketplace}.{action}@fabrikam.com").to_lowercase();
            let a = app.post("/v1/marketplace/events", event(marketplace, action, &email)).await;
            assert_eq!(a.status, 202, "{marketplace}/{action}: {}", a.body);
            assert_eq!(a.body["lead_source"], format!("{source}-{code}|contoso.crm"), "{marketplace}/{action}");
            assert_eq!(a.body["action_code"], code, "{marketplace}/{action}");
            assert_eq!(a.body["stage"], stage, "{marketplace}/{action}");
            assert!(a.body["customer_id"].as_str().unwrap().starts_with("cus_"));
            assert!(a.body["duplicate_of"].is_null());
            let lead = app.get(&format!("/v1/leads/{}", a.body["id"].as_str().unwrap())).await.body;
            assert_eq!((lead["source"].as_str(), lead["offer"].as_str()), (Some(source), Some("contoso.crm")));
            assert_eq!(lead["description"], "Please call after 3pm");
            assert_eq!(lead["campaign"], "blogpost_12");
            checked += 1;
        }
    }
    assert_eq!(checked, 21);
}

#[tokio::test]
async fn events_without_consent_for_unknown_offers_or_with_bad_values_are_refused() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let mut no_consent = event("AppSource", "contact_me", "a@b.com");
    no_consent["consent"] = json!(false);
    let a = app.post("/v1/marketplace/events", no_consent.clone()).await;
    assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("consent")));
    no_consent.as_object_mut().unwrap().remove("consent");
    assert_eq!(app.post("/v1/marketplace/events", no_consent).await.status, 422);
    let mut unknown = event("AppSource", "contact_me", "a@b.com");
    unknown["offer"] = json!("contoso.nothing");
    let a = app.post("/v1/marketplace/events", unknown).await;
    assert_eq!((a.status, a.body["error"]["message"].as_str()), (404, Some("offer not found")));
    let a = app.post("/v1/marketplace/events", event("Steam", "contact_me", "a@b.com")).await;
    assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("marketplace")));
    let a = app.post("/v1/marketplace/events", event("AppSource", "buy", "a@b.com")).await;
    assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("action")));
    let a = app.post("/v1/marketplace/events", event("AppSource", "contact_me", "not-an-email")).await;
    assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("customer.email")));
    assert_eq!(app.lead_count().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_events_for_one_new_email_create_exactly_one_customer() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let receiver = TestReceiver::start().await;
    app.https_destination(&receiver.url(), None).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (client, url) = (app.client.clone(), format!("{}/v1/marketplace/events", app.base));
        let body = event("AzureMarketplace", "get_it_now", "Race@Fabrikam.com");
        tasks.spawn(async move {
            let r = client.post(url).bearer_auth(crate::support::ADMIN).json(&body).send().await.unwrap();
            assert_eq!(r.status(), 202);
            r.json::<Value>().await.unwrap()
        });
    }
    let answers: Vec<Value> = tasks.join_all().await;
    let customers: std::collections::BTreeSet<&str> =
        answers.iter().map(|a| a["customer_id"].as_str().unwrap()).collect();
    assert_eq!(customers.len(), 1, "{customers:?}");
    let originals: Vec<_> = answers.iter().filter(|a| a["duplicate_of"].is_null()).collect();
    assert_eq!(originals.len(), 1, "one original, nine duplicates");
    let customer = app.get(&format!("/v1/customers/{}", customers.first().unwrap())).await.body;
    assert_eq!(customer["lead_count"], 10);
    receiver.wait_until(Duration::from_secs(10), "the original's delivery", |r| !r.is_empty()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.requests().len(), 1, "duplicates are not delivered again");
    let listed = app.get(&format!("/v1/leads?customer={}", customers.first().unwrap())).await.body;
    assert_eq!(listed["items"].as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn the_timeline_orders_a_customers_leads_across_offers_and_a_split_undoes_a_wrong_merge() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let receiver = TestReceiver::start().await;
    app.https_destination(&receiver.url(), None).await;
    let first = app.post("/v1/marketplace/events", event("AppSource", "contact_me", "shared@fabrikam.com")).await.body;
    let mut erp = event("AzureMarketplace", "test_drive", "SHARED@fabrikam.com");
    erp["offer"] = json!("contoso.erp");
    let second = app.post("/v1/marketplace/events", erp).await.body;
    let repeat = app.post("/v1/marketplace/events", event("AppSource", "contact_me", "shared@fabrikam.com")).await.body;
    assert_eq!(repeat["duplicate_of"], first["id"]);
    let customer_id = first["customer_id"].as_str().unwrap().to_owned();
    assert_eq!(second["customer_id"], customer_id.as_str());

    let customer = app.get(&format!("/v1/customers/{customer_id}")).await.body;
    let timeline = customer["timeline"].as_array().unwrap();
    let ids: Vec<&str> = timeline.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [first["id"].as_str().unwrap(), second["id"].as_str().unwrap(), repeat["id"].as_str().unwrap()]);
    assert_eq!(timeline[1]["offer"], "contoso.erp");
    assert_eq!(timeline[1]["merge_reason"], "same email address");
    receiver.wait_until(Duration::from_secs(10), "two deliveries", |r| r.len() == 2).await;

    // The first lead was really someone else: split it off; the repeat is no longer a duplicate.
    let a = app.post(&format!("/v1/customers/{customer_id}/split"), json!({"lead_ids": [first["id"]]})).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_ne!(a.body["id"], customer_id.as_str());
    assert_eq!(a.body["timeline"][0]["merge_reason"], format!("split from {customer_id}"));
    let released = app
        .wait_for_lead(repeat["id"].as_str().unwrap(), "the released lead delivered", |d| status_of(d) == ["delivered"])
        .await;
    assert!(released["duplicate_of"].is_null());
    assert_eq!(receiver.requests().len(), 3);

    let a = app.post(&format!("/v1/customers/{customer_id}/split"), json!({"lead_ids": [first["id"]]})).await;
    assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("lead_ids[0]")));
    assert_eq!(app.get("/v1/customers/cus_01a20a0762607c72a156aa91071bfdac").await.status, 404);
}

#[tokio::test]
async fn publishing_needs_a_destination_for_the_required_types_and_sends_each_a_test_lead() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let a = app.post("/v1/publishers/contoso/offers/contoso.crm/publish", json!({})).await;
    assert_eq!(a.status, 422, "{}", a.body);
    assert_eq!(a.body["error"]["fields"][0]["path"], "destinations");
    assert!(a.body["error"]["message"].as_str().unwrap().contains("'saas' needs a lead destination"), "{}", a.body);
    assert_eq!(app.get("/v1/publishers/contoso/offers/contoso.crm").await.body["publish_state"], "draft");

    let vm = app
        .put("/v1/publishers/contoso/offers/contoso.vm", json!({"title": "Contoso VM", "type": "virtual-machine"}))
        .await;
    assert_eq!(vm.status, 201);
    let a = app.post("/v1/publishers/contoso/offers/contoso.vm/publish", json!({})).await;
    assert_eq!(
        (a.status, a.body["publish_state"].as_str()),
        (200, Some("published")),
        "not required for VMs: {}",
        a.body
    );

    let receiver = TestReceiver::start().await;
    let broken = TestReceiver::start().await;
    broken.respond_with(404, None);
    app.https_destination(&receiver.url(), Some(&["contoso.crm"])).await;
    app.https_destination(&broken.url(), None).await;
    let a = app.post("/v1/publishers/contoso/offers/contoso.crm/publish", json!({})).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["publish_state"], "published");
    assert_eq!(a.body["all_ok"], false);
    let results = a.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results.iter().filter(|r| r["ok"] == true).count(), 1);
    let failed = results.iter().find(|r| r["ok"] == false).unwrap();
    assert!(failed["hint"].as_str().unwrap().contains("path"), "{failed}");

    let test_lead = receiver.requests()[0].json();
    let marker = test_lead["Description"].as_str().unwrap();
    assert!(marker.starts_with("MSFT_TEST_"));
    assert_eq!(test_lead["UserDetails"]["Email"], format!("{marker}@test.com"));
    assert_eq!(test_lead["OfferTitle"], "Contoso CRM");
    let offer = app.get("/v1/publishers/contoso/offers/contoso.crm").await.body;
    assert_eq!(offer["publish_state"], "published");
    assert_eq!(offer["last_validation"].as_array().unwrap().len(), 2);
    let renamed =
        app.put("/v1/publishers/contoso/offers/contoso.crm", json!({"title": "Contoso CRM 2", "type": "saas"})).await;
    assert_eq!(renamed.body["publish_state"], "published", "an edit keeps the publish state");
}
