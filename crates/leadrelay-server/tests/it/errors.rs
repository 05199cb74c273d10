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

/// Sends `body` with exactly these headers (and the admin token when `auth`).
pub async fn send_with(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    auth: bool,
) -> crate::support::Answer {
    let mut req = app.client.request(method, format!("{}{path}", app.base)).body(body);
    if auth {
        req = req.bearer_auth(crate::support::ADMIN);
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let content_type = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    let bytes = res.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    if status >= 400 {
        assert_eq!(content_type.as_deref(), Some("application/json"), "{status} {path} answered without the envelope");
        assert!(body["error"]["code"].is_string(), "{status} {path}: {body}");
    }
    crate::support::Answer { status, body }
}

/// Every route that reads a JSON body, with a body it would accept.
async fn json_routes(app: &TestApp) -> Vec<(Method, String, serde_json::Value)> {
    app.contoso().await;
    let dst = app
        .post(
            "/v1/publishers/contoso/destinations",
            json!({"name": "h", "kind": "https", "settings": {"url": "http://127.0.0.1:9/h"}}),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let lead = app
        .post("/v1/leads", json!({"publisher": "contoso", "lead_source": "SPZA", "customer": {"email": "a@b.co"}}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let customer = app.get(&format!("/v1/leads/{lead}")).await.body["customer_id"].as_str().unwrap().to_owned();
    vec![
        (Method::POST, "/v1/publishers".into(), json!({"id": "fabrikam", "name": "Fabrikam"})),
        (Method::PUT, "/v1/publishers/contoso/offers/contoso.new".into(), json!({"title": "New", "type": "saas"})),
        (
            Method::POST,
            "/v1/publishers/contoso/destinations".into(),
            json!({"name": "x", "kind": "https", "settings": {"url": "http://127.0.0.1:9/x"}}),
        ),
        (Method::POST, "/v1/publishers/contoso/ingest-keys".into(), json!({"offer": "contoso.crm"})),
        (Method::POST, "/v1/publishers/contoso/tokens".into(), json!({"scopes": ["read"]})),
        (Method::POST, "/v1/marketplace/tokens".into(), json!({"scopes": ["marketplace"]})),
        (
            Method::POST,
            "/v1/marketplace/events".into(),
            json!({"offer": "contoso.crm", "marketplace": "AppSource", "action": "contact_me", "consent": true}),
        ),
        (Method::POST, "/v1/leads".into(), json!({"publisher": "contoso", "lead_source": "SPZA"})),
        (Method::POST, format!("/v1/destinations/{dst}/replay"), json!({"only_dead": true})),
        (Method::POST, format!("/v1/customers/{customer}/split"), json!({"lead_ids": [lead]})),
    ]
}

#[tokio::test]
async fn a_body_that_is_not_json_is_400_invalid_json_on_every_route() {
    let app = TestApp::spawn().await;
    let routes = json_routes(&app).await;
    let ingest = app.ingest_path(None).await;
    for (method, path, _) in routes.iter().cloned().chain([(Method::POST, ingest, json!({}))]) {
        for broken in [&b"{\"a\":"[..], b"{\"id\": \"x\"", b"not json", b"{} {}"] {
            let a =
                send_with(&app, method.clone(), &path, &[("content-type", "application/json")], broken.to_vec(), true)
                    .await;
            assert_eq!(
                (a.status, a.body["error"]["code"].as_str()),
                (400, Some("invalid_json")),
                "{method} {path} with {:?}: {}",
                String::from_utf8_lossy(broken),
                a.body
            );
        }
    }
}

#[tokio::test]
async fn a_json_array_where_an_object_is_expected_is_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    for (method, path, body) in json_routes(&app).await {
        let values: Vec<serde_json::Value> = body.as_object().unwrap().values().cloned().collect();
        let a = app.send(method.clone(), &path, Some(json!(values).to_string().into_bytes()), true).await;
        if path == "/v1/leads" {
            assert_eq!(a.status, 422, "{path}: {}", a.body);
            assert_eq!(a.body["error"]["fields"][0]["path"], "[0]", "{}", a.body);
        } else {
            assert_eq!(
                (a.status, a.body["error"]["fields"][0]["path"].as_str()),
                (422, Some("body")),
                "{method} {path}: {}",
                a.body
            );
        }
    }
    let a = app.post("/v1/leads", json!({"publisher": "contoso", "lead_source": "SPZA", "customer": ["a@b.co"]})).await;
    assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("customer")), "{}", a.body);
    assert!(a.body["error"]["fields"][0]["message"].as_str().unwrap().contains("object"), "{}", a.body);
}

#[tokio::test]
async fn a_content_type_other_than_json_is_415_and_what_curl_sends_by_default_is_read() {
    let app = TestApp::spawn().await;
    let routes = json_routes(&app).await;
    for (method, path, body) in &routes {
        for refused in
            ["text/plain", "text/csv", "multipart/form-data; boundary=x", "application/json; charset=iso-8859-1"]
        {
            let a = send_with(
                &app,
                method.clone(),
                path,
                &[("content-type", refused)],
                body.to_string().into_bytes(),
                true,
            )
            .await;
            assert_eq!(
                (a.status, a.body["error"]["code"].as_str()),
                (415, Some("unsupported_media_type")),
                "{method} {path} as {refused}: {}",
                a.body
            );
        }
    }
    let publisher = |id: &str| json!({"id": id, "name": id}).to_string().into_bytes();
    let curl_default = [("content-type", "application/x-www-form-urlencoded")];
    assert_eq!(send_with(&app, Method::POST, "/v1/publishers", &curl_default, publisher("p1"), true).await.status, 201);
    assert_eq!(
        send_with(&app, Method::POST, "/v1/publishers", &[], publisher("p2"), true).await.status,
        201,
        "no type"
    );
    let utf8 = [("content-type", "application/json; charset=utf-8")];
    assert_eq!(send_with(&app, Method::POST, "/v1/publishers", &utf8, publisher("p3"), true).await.status, 201);

    let ingest = app.ingest_path(None).await;
    let lead = documented_example().to_string().into_bytes();
    let a = send_with(&app, Method::POST, &ingest, &[("content-type", "text/plain")], lead, false).await;
    assert_eq!(a.status, 202, "the marketplace's route reads any type: {}", a.body);
}

#[tokio::test]
async fn oversized_request_heads_are_answered_414_and_431_in_the_envelope() {
    let app = TestApp::spawn().await;
    let long = format!("/v1/leads?q={}", "x".repeat(10 * 1024));
    let a = send_with(&app, Method::GET, &long, &[], Vec::new(), true).await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (414, Some("uri_too_long")));

    let names: Vec<String> = (0..70).map(|i| format!("x-extra-{i}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1")).collect();
    let a = send_with(&app, Method::GET, "/healthz", &many, Vec::new(), false).await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (431, Some("headers_too_large")));

    let big = "y".repeat(40 * 1024);
    let a = send_with(&app, Method::GET, "/healthz", &[("x-big", big.as_str())], Vec::new(), false).await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (431, Some("headers_too_large")));
}

#[tokio::test]
async fn a_request_slower_than_the_timeout_answers_503_in_the_envelope() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(&format!("{}\n[server]\nrequest_timeout_ms = 300\n", crate::support::FAST)).await;
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/publishers HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\n\
         content-length: 100\r\nconnection: close\r\n\r\n{{\"id\":",
        crate::support::ADMIN
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("content-type: application/json"), "{answer}");
    assert!(answer.contains("\"code\":\"unavailable\""), "{answer}");
}

#[tokio::test]
async fn a_gzip_bomb_is_refused_with_413_after_reading_no_more_than_the_limit() {
    use std::io::Write;
    let app = TestApp::spawn_with(&format!("{}\n[server]\nmax_body_bytes = 4096\n", crate::support::FAST)).await;
    app.contoso().await;
    let path = app.ingest_path(None).await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(b"{\"Description\": \"").unwrap();
    let zeros = vec![b'0'; 1024 * 1024];
    for _ in 0..64 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 1024 * 1024, "64 MiB inflate from {} bytes", bomb.len());
    let started = std::time::Instant::now();
    let a = send_with(&app, Method::POST, &path, &[("content-encoding", "gzip")], bomb, false).await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (413, Some("payload_too_large")), "{}", a.body);
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "it stopped at the limit instead of inflating");
    assert_eq!(app.lead_count().await, 0);
}

#[tokio::test]
async fn field_paths_follow_each_routes_own_shape() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let long = "x".repeat(600);
    let a = app
        .post("/v1/leads", json!({"publisher": "contoso", "lead_source": "SPZA", "customer": {"company": long}}))
        .await;
    assert_eq!(
        (a.status, a.body["error"]["fields"][0]["path"].as_str()),
        (422, Some("customer.company")),
        "{}",
        a.body
    );
    let a = app
        .post("/v1/leads", json!({"publisher": "contoso", "lead_source": "SPZA", "description": "x".repeat(9000)}))
        .await;
    assert_eq!(a.body["error"]["fields"][0]["path"], "description", "{}", a.body);

    let path = app.ingest_path(None).await;
    let a = app.ingest(&path, json!({"LeadSource": "SPZA", "UserDetails": {"Company": long}})).await;
    assert_eq!(
        (a.status, a.body["error"]["fields"][0]["path"].as_str()),
        (422, Some("UserDetails.Company")),
        "{}",
        a.body
    );

    let batch = json!([
        {"publisher": "contoso", "lead_source": "SPZA"},
        {"publisher": "nobody", "lead_source": "SPZA"},
    ]);
    let a = app.post("/v1/leads", batch).await;
    assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("[1].publisher")), "{}", a.body);
    assert_eq!(
        a.body["error"]["fields"][0]["message"], "is not a known publisher",
        "a domain message, no route: {}",
        a.body
    );
    let batch = json!([{"publisher": "contoso", "lead_source": "SPZA"}, {"publisher": "contoso", "lead_source": "SPZA", "customer": {"phone": 5}}]);
    let a = app.post("/v1/leads", batch).await;
    assert_eq!(a.body["error"]["fields"][0]["path"], "[1].customer.phone", "{}", a.body);
    assert_eq!(app.lead_count().await, 0);
}

#[tokio::test]
async fn every_answer_carries_the_browser_safety_headers_and_only_a_safe_request_id_is_kept() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    for path in ["/healthz", "/v1/leads", "/docs", "/no/such/route"] {
        let res = client.get(format!("{}{path}", app.base)).send().await.unwrap();
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert!(h["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"), "{path}");
    }
    let id_for = |sent: &'static str| {
        let req = client.get(format!("{}/healthz", app.base)).header("x-request-id", sent);
        async move { req.send().await.unwrap().headers()["x-request-id"].to_str().unwrap().to_owned() }
    };
    assert_eq!(id_for("trace-42_a.b").await, "trace-42_a.b", "a short safe id is kept");
    for hostile in [
        "a b",
        "x\"}{\"level\":\"ERROR",
        "<script>",
        "0123456789012345678901234567890123456789012345678901234567890123456789",
    ] {
        let got = id_for(hostile).await;
        assert_ne!(got, hostile);
        assert!(got.len() == 36 && got.matches('-').count() == 4, "replaced by a generated id: {got}");
    }
}

#[tokio::test]
async fn a_publisher_cannot_have_more_destinations_than_the_configured_cap() {
    let config = crate::support::FAST.replacen(
        "allow_private_destinations = true\n",
        "allow_private_destinations = true\nmax_destinations_per_publisher = 2\n",
        1,
    );
    let app = TestApp::spawn_with(&config).await;
    app.contoso().await;
    app.https_destination("http://127.0.0.1:9/a", None).await;
    app.https_destination("http://127.0.0.1:9/b", None).await;
    let body = json!({"name": "third", "kind": "https", "settings": {"url": "http://127.0.0.1:9/c"}});
    let a = app.post("/v1/publishers/contoso/destinations", body).await;
    assert_eq!(a.status, 422, "{}", a.body);
    assert_eq!(a.body["error"]["fields"][0]["path"], "destinations");
    assert!(a.body["error"]["message"].as_str().unwrap().contains("at most 2"), "{}", a.body);
    let listed = app.get("/v1/publishers/contoso/destinations").await.body;
    let items = listed.as_array().or_else(|| listed["items"].as_array()).expect("a list of destinations");
    assert_eq!(items.len(), 2, "the third was not stored");
}
