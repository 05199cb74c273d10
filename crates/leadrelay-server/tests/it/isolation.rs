//! Publisher tokens: a publisher's token sees only its own data. Every route that names another
//! publisher's resource answers 404 (hiding that it exists), checked route by route.

use leadrelay_testkit::TestReceiver;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::TestApp;

/// Ids of one publisher's resources.
struct Resources {
    publisher: String,
    offer: String,
    destination: String,
    ingest_key: String,
    token: String,
    lead: String,
    delivery: String,
    customer: String,
    opportunity: String,
}

async fn resources(app: &TestApp, publisher: &str, receiver: &TestReceiver) -> Resources {
    assert_eq!(app.post("/v1/publishers", json!({"id": publisher, "name": publisher})).await.status, 201);
    let offer = format!("{publisher}.crm");
    let a =
        app.put(&format!("/v1/publishers/{publisher}/offers/{offer}"), json!({"title": "CRM", "type": "other"})).await;
    assert_eq!(a.status, 201);
    let d = app
        .post(
            &format!("/v1/publishers/{publisher}/destinations"),
            json!({"name": "h", "kind": "https", "settings": {"url": receiver.url()}}),
        )
        .await;
    let key = app.post(&format!("/v1/publishers/{publisher}/ingest-keys"), json!({})).await;
    let token = app.post(&format!("/v1/publishers/{publisher}/tokens"), json!({"scopes": ["read"]})).await;
    assert_eq!(token.status, 201, "{}", token.body);
    let lead = app
        .post("/v1/leads", json!({"publisher": publisher, "lead_source": format!("AzureMarketplace-INS|{offer}"), "customer": {"email": format!("buyer@{publisher}.com")}}))
        .await;
    let lead_id = lead.body["id"].as_str().unwrap().to_owned();
    let detail = app.get(&format!("/v1/leads/{lead_id}")).await.body;
    let opportunities = app.get(&format!("/v1/publishers/{publisher}/opportunities")).await.body;
    let opportunity = opportunities["items"][0]["id"].as_str().expect("the lead opened an opportunity").to_owned();
    Resources {
        opportunity,
        publisher: publisher.to_owned(),
        offer,
        destination: d.body["id"].as_str().unwrap().to_owned(),
        ingest_key: key.body["id"].as_str().unwrap().to_owned(),
        token: token.body["id"].as_str().unwrap().to_owned(),
        delivery: detail["deliveries"][0]["id"].as_str().unwrap().to_owned(),
        customer: detail["customer_id"].as_str().unwrap().to_owned(),
        lead: lead_id,
    }
}

/// Every route that acts on one publisher's resources, with a body that would succeed.
fn matrix(r: &Resources) -> Vec<(Method, String, Option<Value>)> {
    let p = &r.publisher;
    vec![
        (Method::GET, format!("/v1/publishers/{p}/offers/{}", r.offer), None),
        (Method::PUT, format!("/v1/publishers/{p}/offers/{}", r.offer), Some(json!({"title": "CRM", "type": "other"}))),
        (Method::POST, format!("/v1/publishers/{p}/offers/{}/publish", r.offer), Some(json!({}))),
        (Method::GET, format!("/v1/publishers/{p}/destinations"), None),
        (
            Method::POST,
            format!("/v1/publishers/{p}/destinations"),
            Some(json!({"name": "x", "kind": "https", "settings": {"url": "http://127.0.0.1:9/x"}})),
        ),
        (Method::POST, format!("/v1/publishers/{p}/ingest-keys"), Some(json!({}))),
        (Method::POST, format!("/v1/publishers/{p}/tokens"), Some(json!({"scopes": ["read"]}))),
        (Method::GET, format!("/v1/leads/{}", r.lead), None),
        (Method::GET, format!("/v1/leads?publisher={p}"), None),
        (Method::POST, "/v1/leads".to_owned(), Some(json!({"publisher": p, "lead_source": "AzureMarketplace-INS"}))),
        (Method::GET, format!("/v1/leads/export.csv?publisher={p}"), None),
        (Method::GET, format!("/v1/destinations/{}", r.destination), None),
        (Method::POST, format!("/v1/destinations/{}/validate", r.destination), Some(json!({}))),
        (Method::POST, format!("/v1/destinations/{}/replay", r.destination), Some(json!({"only_dead": true}))),
        (Method::POST, format!("/v1/destinations/{}/disable", r.destination), Some(json!({}))),
        (Method::POST, format!("/v1/destinations/{}/enable", r.destination), Some(json!({}))),
        (Method::GET, format!("/v1/deliveries/{}", r.delivery), None),
        (Method::GET, format!("/v1/deliveries?publisher={p}"), None),
        (Method::GET, format!("/v1/audit?publisher={p}"), None),
        (Method::GET, format!("/v1/privacy/export?publisher={p}&email=someone%40contoso.com"), None),
        (Method::POST, "/v1/privacy/erase".to_owned(), Some(json!({"publisher": p, "email": "someone@contoso.com"}))),
        (Method::POST, format!("/v1/deliveries/{}/retry", r.delivery), Some(json!({}))),
        (Method::GET, format!("/v1/customers/{}", r.customer), None),
        (Method::POST, format!("/v1/customers/{}/split", r.customer), Some(json!({"lead_ids": [r.lead]}))),
        (Method::DELETE, format!("/v1/publishers/{p}/ingest-keys/{}", r.ingest_key), None),
        (Method::GET, format!("/v1/publishers/{p}/settings/sales"), None),
        (Method::PUT, format!("/v1/publishers/{p}/settings/sales"), Some(json!({"first_touch_sla_hours": 8}))),
        (Method::GET, format!("/v1/publishers/{p}/opportunities?status=new"), None),
        (Method::GET, format!("/v1/opportunities/{}", r.opportunity), None),
        (Method::PATCH, format!("/v1/opportunities/{}", r.opportunity), Some(json!({"next_touch_at": "2030-01-02"}))),
        (Method::POST, format!("/v1/opportunities/{}/activities", r.opportunity), Some(json!({"kind": "call"}))),
        (Method::POST, format!("/v1/opportunities/{}/checklist/budget", r.opportunity), Some(json!({}))),
        (Method::GET, format!("/v1/publishers/{p}/kpis?group_by=source"), None),
        (Method::GET, format!("/v1/publishers/{p}/kpis?format=csv"), None),
        (Method::GET, format!("/v1/publishers/{p}/users"), None),
        (
            Method::POST,
            format!("/v1/publishers/{p}/users"),
            Some(json!({"email": format!("new-hire@{p}.example"), "name": "New Hire", "role": "member"})),
        ),
        (Method::DELETE, format!("/v1/publishers/{p}/tokens/{}", r.token), None),
    ]
}

async fn call(app: &TestApp, token: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    app.call_as(token, method, path, body).await
}

#[tokio::test]
async fn a_publisher_token_gets_404_for_every_route_on_another_publishers_data() {
    let app = TestApp::spawn().await;
    let receiver = TestReceiver::start().await;
    let contoso = resources(&app, "contoso", &receiver).await;
    let fabrikam = resources(&app, "fabrikam", &receiver).await;
    let token =
        app.post("/v1/publishers/contoso/tokens", json!({"scopes": ["ingest", "read", "write", "admin"]})).await;
    let token = token.body["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("lr_pub_"));

    let foreign = matrix(&fabrikam);
    let own = matrix(&contoso);
    assert_eq!(foreign.len(), own.len());
    for (method, path, body) in foreign {
        let (status, answer) = call(&app, &token, method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path} answered {status}: {answer}");
        assert!(!answer.to_string().contains("fabrikam.com"), "{method} {path} leaked: {answer}");
    }
    for (method, path, body) in own {
        let (status, answer) = call(&app, &token, method.clone(), &path, body).await;
        assert!((200..300).contains(&status), "{method} {path} on its own data answered {status}: {answer}");
    }

    let (status, _) = call(&app, &token, Method::POST, "/v1/leads/import.csv?publisher=fabrikam", None).await;
    assert_eq!(status, 404, "CSV import into another publisher");

    let (_, leads) = call(&app, &token, Method::GET, "/v1/leads", None).await;
    let publishers: std::collections::BTreeSet<&str> =
        leads["items"].as_array().unwrap().iter().map(|l| l["publisher"].as_str().unwrap()).collect();
    assert_eq!(publishers, ["contoso"].into(), "an unfiltered list shows only the token's publisher");
    let (_, deliveries) = call(&app, &token, Method::GET, "/v1/deliveries", None).await;
    assert!(!deliveries["items"].as_array().unwrap().is_empty());
    assert!(!deliveries.to_string().contains(&fabrikam.delivery));

    for (method, path) in [
        (Method::POST, "/v1/publishers"),
        (Method::POST, "/v1/marketplace/events"),
        (Method::POST, "/v1/marketplace/tokens"),
    ] {
        let (status, answer) = call(&app, &token, method.clone(), path, Some(json!({}))).await;
        assert_eq!(status, 403, "{method} {path}: {answer}");
    }
}

#[tokio::test]
async fn a_signed_in_admin_gets_404_for_every_route_on_another_publishers_data() {
    let app = TestApp::spawn().await;
    let receiver = TestReceiver::start().await;
    let contoso = resources(&app, "contoso", &receiver).await;
    let fabrikam = resources(&app, "fabrikam", &receiver).await;
    let (email, password) = ("lead-admin@contoso.example", "a long enough password");
    crate::people::add_user(&app, "contoso", email, "admin", Some(password)).await;
    let session = crate::people::signed_in(&app, email, password).await;

    let (foreign, own) = (matrix(&fabrikam), matrix(&contoso));
    assert_eq!(foreign.len(), own.len());
    for (method, path, body) in foreign {
        let (status, answer) = session.call(&app, method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path} answered {status}: {answer}");
        assert!(!answer.to_string().contains("fabrikam.com"), "{method} {path} leaked: {answer}");
    }
    for (method, path, body) in own {
        let (status, answer) = session.call(&app, method.clone(), &path, body).await;
        assert!((200..300).contains(&status), "{method} {path} on its own data answered {status}: {answer}");
    }
    let (_, opportunities) = session.call(&app, Method::GET, "/v1/publishers/contoso/opportunities", None).await;
    assert!(!opportunities.to_string().contains(&fabrikam.opportunity));
    for (method, path) in [(Method::POST, "/v1/publishers"), (Method::POST, "/v1/marketplace/tokens")] {
        let (status, answer) = session.call(&app, method.clone(), path, Some(json!({}))).await;
        assert_eq!(status, 403, "{method} {path}: {answer}");
    }
}

#[tokio::test]
async fn scopes_limit_what_a_token_may_do_and_revoked_tokens_stop_working() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let read = app.post("/v1/publishers/contoso/tokens", json!({"scopes": ["read"]})).await.body;
    let read_token = read["token"].as_str().unwrap().to_owned();
    let ingest = app.post("/v1/publishers/contoso/tokens", json!({"scopes": ["ingest"]})).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_eq!(call(&app, &read_token, Method::GET, "/v1/leads", None).await.0, 200);
    let (status, answer) =
        call(&app, &read_token, Method::POST, "/v1/publishers/contoso/ingest-keys", Some(json!({}))).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("forbidden")));
    let lead = json!({"publisher": "contoso", "lead_source": "AzureMarketplace-INS"});
    assert_eq!(call(&app, &read_token, Method::POST, "/v1/leads", Some(lead.clone())).await.0, 403);
    assert_eq!(call(&app, &ingest, Method::POST, "/v1/leads", Some(lead)).await.0, 202);
    assert_eq!(call(&app, &ingest, Method::GET, "/v1/leads", None).await.0, 403);
    assert_eq!(
        call(&app, &read_token, Method::POST, "/v1/publishers/contoso/tokens", Some(json!({"scopes": ["admin"]})))
            .await
            .0,
        403
    );

    let a = app.post("/v1/publishers/contoso/tokens", json!({"scopes": ["marketplace"]})).await;
    assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("scopes[0]")));
    let a = app.post("/v1/publishers/contoso/tokens", json!({"scopes": ["everything"]})).await;
    assert_eq!(a.status, 422);

    let revoked = app
        .send(Method::DELETE, &format!("/v1/publishers/contoso/tokens/{}", read["id"].as_str().unwrap()), None, true)
        .await;
    assert_eq!(revoked.status, 204);
    assert_eq!(call(&app, &read_token, Method::GET, "/v1/leads", None).await.0, 401);
    assert_eq!(call(&app, "lr_pub_made_up", Method::GET, "/v1/leads", None).await.0, 401);
}

#[tokio::test]
async fn a_marketplace_token_reports_events_for_any_publisher_and_reads_nothing() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let t = app.post("/v1/marketplace/tokens", json!({"scopes": ["marketplace"]})).await;
    assert_eq!(t.status, 201, "{}", t.body);
    let token = t.body["token"].as_str().unwrap().to_owned();
    let event = json!({"offer": "contoso.crm", "marketplace": "AppSource", "action": "contact_me", "consent": true,
                       "customer": {"email": "someone@fabrikam.com"}});
    let (status, answer) = call(&app, &token, Method::POST, "/v1/marketplace/events", Some(event)).await;
    assert_eq!(status, 202, "{answer}");
    let lead = answer["id"].as_str().unwrap();
    assert_eq!(call(&app, &token, Method::GET, &format!("/v1/leads/{lead}"), None).await.0, 404);
    assert_eq!(call(&app, &token, Method::GET, "/v1/leads", None).await.0, 404);
    assert_eq!(call(&app, &token, Method::GET, "/v1/publishers/contoso/destinations", None).await.0, 404);
}

#[tokio::test]
async fn a_credential_in_a_destination_url_is_never_shown_back() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let (id, _) =
        app.https_destination("http://127.0.0.1:9/workflows/run?api-version=2016-06-01&sig=canarysig", None).await;
    for path in [format!("/v1/destinations/{id}"), "/v1/publishers/contoso/destinations".to_owned()] {
        let body = app.get(&path).await.body.to_string();
        assert!(!body.contains("canarysig"), "{path}: {body}");
        assert!(body.contains("api-version=2016-06-01&sig=…"), "{path}: {body}");
    }
}
