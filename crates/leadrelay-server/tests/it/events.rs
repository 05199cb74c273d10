//! Marketplace events: the operator's report of a customer action becomes a lead.

use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn an_event_becomes_a_lead_whose_lead_source_is_built_in_parts() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let event = json!({"offer": "contoso.crm", "marketplace": "AppSource", "action": "contact_me", "consent": true,
                       "customer": {"email": "someone@fabrikam.com", "company": "Fabrikam "}, "notes": "Campaigns: "});
    let a = app.post("/v1/marketplace/events", event).await;
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.body["lead_source"], "AppSource (SPZA)-PLT|contoso.crm");
    assert_eq!(a.body["action_code"], "PLT");
    assert_eq!(a.body["stage"], "initial_interest");
    assert!(a.body["customer_id"].as_str().unwrap().starts_with("cus_"));
    let lead = app.get(&format!("/v1/leads/{}", a.body["id"].as_str().unwrap())).await.body;
    assert_eq!(lead["offer"], "contoso.crm");
    assert_eq!(lead["offer_title"], "Contoso CRM");
    assert_eq!(lead["raw_lead_source"], serde_json::Value::Null, "no string was received, none is invented");
    assert_eq!(lead["description"], "Campaigns: ");
    assert_eq!(lead["customer"]["company"], "Fabrikam ");
}

#[tokio::test]
async fn an_event_without_consent_or_for_an_unknown_offer_stores_nothing() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let base = json!({"offer": "contoso.crm", "marketplace": "AzurePortal", "action": "create"});
    let a = app.post("/v1/marketplace/events", base.clone()).await;
    assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("consent")), "{}", a.body);
    let mut refused = base.clone();
    refused["consent"] = json!(false);
    assert_eq!(app.post("/v1/marketplace/events", refused).await.status, 422);
    let mut unknown = base.clone();
    unknown["consent"] = json!(true);
    unknown["offer"] = json!("contoso.nope");
    let a = app.post("/v1/marketplace/events", unknown).await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (404, Some("not_found")));
    let mut bad = base.clone();
    bad["consent"] = json!(true);
    bad["marketplace"] = json!("appsource");
    let a = app.post("/v1/marketplace/events", bad).await;
    assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("marketplace")));
    assert!(a.body["error"]["message"].as_str().unwrap().contains("AppSource"), "{}", a.body);
    let mut long_notes = base;
    long_notes["consent"] = json!(true);
    long_notes["notes"] = json!("x".repeat(9000));
    long_notes["customer"] = json!({"email": "bad address"});
    let a = app.post("/v1/marketplace/events", long_notes.clone()).await;
    assert_eq!(a.body["error"]["fields"][0]["path"], "customer.email", "{}", a.body);
    long_notes["customer"] = json!({});
    let a = app.post("/v1/marketplace/events", long_notes).await;
    assert_eq!(a.body["error"]["fields"][0]["path"], "notes", "the event's own name for the field: {}", a.body);
    assert_eq!(app.lead_count().await, 0);
}
