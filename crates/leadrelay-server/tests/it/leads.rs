//! The native lead API: one builder behind every way in, typed answers, values kept as sent.

use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn a_native_lead_names_its_offer_even_an_unregistered_one_of_its_publisher() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let a = app
        .post("/v1/leads", json!({"publisher": "contoso", "lead_source": "SPZA-PLT", "offer": "contoso.future", "offer_title": "Contoso CRM"}))
        .await;
    assert_eq!(a.status, 202, "{}", a.body);
    let lead = app.get(&format!("/v1/leads/{}", a.body["id"].as_str().unwrap())).await.body;
    assert_eq!(lead["offer"], "contoso.future");
    assert_eq!(lead["lead_source"], "SPZA-PLT|contoso.future");

    let a =
        app.post("/v1/leads", json!({"publisher": "contoso", "lead_source": "SPZA", "offer": "fabrikam.crm"})).await;
    assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("offer")), "{}", a.body);
    assert_eq!(a.body["error"]["fields"][0]["message"], "must be an offer of publisher 'contoso'");
}

#[tokio::test]
async fn a_native_lead_keeps_every_value_as_sent_and_checks_the_email_without_its_spaces() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let a = app
        .post(
            "/v1/leads",
            json!({"publisher": "contoso", "lead_source": "AzureMarketplace-INS|contoso.crm", "description": " ",
                   "customer": {"email": " Some@Fabrikam.com ", "company": "Fabrikam "}}),
        )
        .await;
    assert_eq!(a.status, 202, "{}", a.body);
    let lead = app.get(&format!("/v1/leads/{}", a.body["id"].as_str().unwrap())).await.body;
    assert_eq!(lead["description"], " ");
    assert_eq!(lead["customer"]["email"], " Some@Fabrikam.com ");
    assert_eq!(lead["customer"]["company"], "Fabrikam ");
    assert_eq!(lead["raw_lead_source"], "AzureMarketplace-INS|contoso.crm");

    let again = app
        .post("/v1/leads", json!({"publisher": "contoso", "lead_source": "AzureMarketplace-INS|contoso.crm", "customer": {"email": "some@fabrikam.com"}}))
        .await;
    let again = app.get(&format!("/v1/leads/{}", again.body["id"].as_str().unwrap())).await.body;
    assert_eq!(again["customer_id"], lead["customer_id"], "matching normalises its own copy");
    assert_eq!(again["duplicate_of"], lead["id"]);

    let a = app
        .post("/v1/leads", json!({"publisher": "contoso", "lead_source": "SPZA", "customer": {"email": "a b@c.com"}}))
        .await;
    assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("customer.email")));
}

#[tokio::test]
async fn a_lead_missing_a_field_or_carrying_an_unknown_one_is_told_which() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let a = app.post("/v1/leads", json!({"lead_source": "SPZA"})).await;
    assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("publisher")), "{}", a.body);
    assert_eq!(a.body["error"]["fields"][0]["message"], "is required");
    let a =
        app.post("/v1/leads", json!({"publisher": "contoso", "lead_source": "SPZA", "customer": {"mail": "x"}})).await;
    assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("customer.mail")), "{}", a.body);
    assert!(a.body["error"]["fields"][0]["message"].as_str().unwrap().contains("email"), "{}", a.body);
    let a = app.post("/v1/leads", json!([])).await;
    assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("body")));
}
