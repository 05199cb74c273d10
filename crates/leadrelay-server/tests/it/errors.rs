//! Bad input gets a clear 4xx naming the problem, and nothing is stored.

use reqwest::Method;
use serde_json::json;

use crate::support::{TestApp, documented_example};

#[tokio::test]
async fn malformed_json_wrong_types_unknown_keys_and_oversized_bodies_are_refused_and_store_nothing() {
    let app = TestApp::spawn_with(&format!("{}\n[server]\nmax_body_bytes = 4096\n", crate::support::FAST)).await;
    app.contoso().await;
    let path = app.ingest_path(None).await;

    let a = app.send(Method::POST, &path, Some(b"{\"UserDetails\": {".to_vec()), false).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.body["error"]["code"], "invalid_json");

    let a = app.ingest(&path, json!({"UserDetails": {"Email": 42}, "ActionCode": true})).await;
    assert_eq!(a.status, 422);
    assert_eq!(a.body["error"]["code"], "validation_failed");
    let mut paths: Vec<&str> =
        a.body["error"]["fields"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["ActionCode", "UserDetails.Email"]);

    let a = app.ingest("/v1/ingest/microsoft/not-a-real-key", documented_example()).await;
    assert_eq!(a.status, 404);
    assert!(a.body["error"]["message"].as_str().unwrap().contains("ingest key"));

    let mut big = documented_example();
    big["Description"] = json!("x".repeat(5000));
    let a = app.ingest(&path, big).await;
    assert_eq!(a.status, 413);
    assert_eq!(a.body["error"]["code"], "payload_too_large");

    let a = app
        .post("/v1/leads", json!({"publisher": "contoso", "lead_source": "AzureMarketplace", "customer": {"email": 7}}))
        .await;
    assert_eq!(a.status, 422);
    assert_eq!(a.body["error"]["fields"][0]["path"], "customer.email");
    assert!(!a.body.to_string().contains('7'), "the value is never echoed: {}", a.body);

    assert_eq!(app.lead_count().await, 0, "nothing was stored");
}

#[tokio::test]
async fn a_batch_with_one_bad_lead_names_it_and_stores_none() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let batch = json!([
        {"publisher": "contoso", "lead_source": "AzureMarketplace-INS", "customer": {"email": "a@b.com"}},
        {"publisher": "contoso", "lead_source": "AzureMarketplace-INS", "customer": {"email": "not an email"}},
    ]);
    let a = app.post("/v1/leads", batch).await;
    assert_eq!(a.status, 422, "{}", a.body);
    assert_eq!(a.body["error"]["fields"][0]["path"], "[1].customer.email");
    let too_many: Vec<_> = (0..1001).map(|_| json!({"publisher": "contoso", "lead_source": "SPZA"})).collect();
    assert_eq!(app.post("/v1/leads", json!(too_many)).await.status, 422);
    assert_eq!(app.lead_count().await, 0);
}

#[tokio::test]
async fn a_lead_for_an_unknown_publisher_is_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let a = app.post("/v1/leads", json!({"publisher": "nobody", "lead_source": "AzureMarketplace-INS"})).await;
    assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("publisher")), "{}", a.body);
    assert_eq!(app.lead_count().await, 0);
}

#[tokio::test]
async fn every_admin_route_wants_the_bearer_token() {
    let app = TestApp::spawn().await;
    for (method, path) in [
        (Method::POST, "/v1/publishers"),
        (Method::PUT, "/v1/publishers/contoso/offers/contoso.crm"),
        (Method::POST, "/v1/publishers/contoso/destinations"),
        (Method::GET, "/v1/publishers/contoso/destinations"),
        (Method::POST, "/v1/publishers/contoso/ingest-keys"),
        (Method::POST, "/v1/leads"),
        (Method::GET, "/v1/leads"),
        (Method::GET, "/v1/leads/lead_01a20a0762607c72a156aa91071bfdac"),
        (Method::GET, "/v1/destinations/dst_01a20a0762607c72a156aa91071bfdac"),
        (Method::POST, "/v1/destinations/dst_01a20a0762607c72a156aa91071bfdac/replay"),
        (Method::GET, "/v1/deliveries"),
        (Method::POST, "/v1/deliveries/dlv_01a20a0762607c72a156aa91071bfdac/retry"),
    ] {
        let a = app.send(method.clone(), path, Some(b"{}".to_vec()), false).await;
        assert_eq!(a.status, 401, "{method} {path}");
        assert_eq!(a.body["error"]["code"], "unauthorized");
    }
    assert_eq!(app.send(Method::GET, "/healthz", None, false).await.status, 200);
    assert_eq!(app.send(Method::GET, "/readyz", None, false).await.status, 200);
}

#[tokio::test]
async fn publishers_offers_and_destinations_check_their_rules() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.post("/v1/publishers", json!({"id": "Bad Id", "name": "x"})).await.body["error"]["fields"][0]["path"],
        "id"
    );
    app.contoso().await;
    assert_eq!(app.post("/v1/publishers", json!({"id": "contoso", "name": "again"})).await.status, 409);

    let a = app.put("/v1/publishers/contoso/offers/fabrikam.crm", json!({"title": "x", "type": "saas"})).await;
    assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("offer_id")));
    let a = app.put("/v1/publishers/contoso/offers/contoso.crm", json!({"title": "Renamed", "type": "nope"})).await;
    assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("type")));
    let a = app
        .put("/v1/publishers/contoso/offers/contoso.crm", json!({"title": "Renamed", "type": "consulting-service"}))
        .await;
    assert_eq!(a.status, 200, "an update answers 200");
    assert_eq!(app.get("/v1/publishers/contoso/offers/contoso.crm").await.body["title"], "Renamed");
    assert_eq!(
        app.put("/v1/publishers/nobody/offers/nobody.x", json!({"title": "x", "type": "saas"})).await.status,
        404
    );

    let a = app
        .post("/v1/publishers/contoso/destinations", json!({"name": "old", "kind": "azure_blob", "settings": {}}))
        .await;
    assert_eq!(a.status, 422);
    assert!(a.body["error"]["message"].as_str().unwrap().contains("azure_table"), "{}", a.body);
    let a = app
        .post("/v1/publishers/contoso/destinations", json!({"name": "x", "kind": "https", "settings": {"url": "https://example.com"}, "offers": ["contoso.nope"]}))
        .await;
    assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("offers[0]")));

    let a = app
        .post(
            "/v1/publishers/contoso/destinations",
            json!({"name": "gen", "kind": "https", "settings": {"url": "https://example.com/h"}}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let generated = a.body["generated_secret"].as_str().unwrap().to_owned();
    assert!(generated.starts_with("whsec_"));
    assert!(a.body["settings"].get("secret").is_none());
    let id = a.body["id"].as_str().unwrap();
    let shown = app.get(&format!("/v1/destinations/{id}")).await.body.to_string();
    assert!(!shown.contains(&generated[6..]), "the secret is never returned again");
    let listed = app.get("/v1/publishers/contoso/destinations").await.body.to_string();
    assert!(!listed.contains(&generated[6..]));
}

#[tokio::test]
async fn without_the_private_network_switch_loopback_destinations_are_refused() {
    let app = TestApp::spawn_with("").await;
    app.contoso().await;
    for url in [
        "http://127.0.0.1:9/hook",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://[::1]/x",
        "https://10.1.2.3/x",
    ] {
        let a = app
            .post(
                "/v1/publishers/contoso/destinations",
                json!({"name": "x", "kind": "https", "settings": {"url": url}}),
            )
            .await;
        assert_eq!(a.status, 422, "{url}");
        assert_eq!(a.body["error"]["fields"][0]["path"], "settings.url");
    }
}
