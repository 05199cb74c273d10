//! The audit log: every audited action leaves one entry naming its actor and object, a
//! publisher's token sees only its own publisher's entries, the filters and pages work, and no
//! entry holds personal data.

use std::collections::BTreeSet;
use std::time::Duration;

use leadrelay_testkit::TestReceiver;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{ADMIN, TestApp};

const EMAIL: &str = "grace.hopper@fabrikam.com";
const FIRST: &str = "Grace";
const LAST: &str = "Hopperworth";

async fn call(app: &TestApp, token: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    app.call_as(token, method, path, body).await
}

async fn csv(app: &TestApp, token: &str, method: Method, path: &str, body: Option<String>) -> (u16, String) {
    let mut req = app.client.request(method, format!("{}{path}", app.base)).bearer_auth(token);
    if let Some(b) = body {
        req = req.header("content-type", "text/csv").body(b);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// A lead of `publisher` for a known person; returns its id.
async fn lead_of(app: &TestApp, publisher: &str, offer: &str, email: &str) -> String {
    let a = app
        .post(
            "/v1/leads",
            json!({"publisher": publisher, "lead_source": format!("AzureMarketplace-INS|{offer}"),
                   "customer": {"email": email, "first_name": FIRST, "last_name": LAST}}),
        )
        .await;
    assert_eq!(a.status, 202, "{}", a.body);
    a.body["id"].as_str().unwrap().to_owned()
}

/// A publisher with one offer `{id}.crm`.
async fn publisher(app: &TestApp, id: &str) {
    assert_eq!(app.post("/v1/publishers", json!({"id": id, "name": id})).await.status, 201);
    let a = app.put(&format!("/v1/publishers/{id}/offers/{id}.crm"), json!({"title": "CRM", "type": "other"})).await;
    assert_eq!(a.status, 201, "{}", a.body);
}

/// A token of `publisher`; returns (id, token).
async fn token(app: &TestApp, publisher: &str, scopes: &[&str]) -> (String, String) {
    let a = app.post(&format!("/v1/publishers/{publisher}/tokens"), json!({"scopes": scopes})).await;
    assert_eq!(a.status, 201, "{}", a.body);
    (a.body["id"].as_str().unwrap().to_owned(), a.body["token"].as_str().unwrap().to_owned())
}

/// Every entry the admin sees, following the cursor.
async fn every_entry(app: &TestApp, query: &str) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if query.is_empty() { "?" } else { "&" };
        let path = match &cursor {
            Some(c) => format!("/v1/audit{query}{sep}limit=3&cursor={c}"),
            None => format!("/v1/audit{query}{sep}limit=3"),
        };
        let a = app.get(&path).await;
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        entries.extend(a.body["items"].as_array().unwrap().iter().cloned());
        match a.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return entries,
        }
    }
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries.iter().map(|e| e["action"].as_str().unwrap()).collect()
}

fn find<'a>(entries: &'a [Value], action: &str) -> &'a Value {
    let mut found = entries.iter().filter(|e| e["action"] == action);
    let first = found.next().unwrap_or_else(|| panic!("no {action} entry in {entries:#?}"));
    assert!(found.next().is_none(), "more than one {action} entry");
    first
}

#[tokio::test]
async fn each_audited_action_leaves_one_entry_with_its_actor_and_object() {
    let (app, _clock) = TestApp::spawn_stepped().await;
    app.contoso().await;
    let receiver = TestReceiver::start().await;
    let (destination, _) = app.https_destination(&receiver.url(), None).await;
    let lead = lead_of(&app, "contoso", "contoso.crm", EMAIL).await;
    lead_of(&app, "contoso", "contoso.erp", EMAIL).await;
    let before = every_entry(&app, "").await;
    assert_eq!(actions(&before), ["destination.create"], "a lead batch through the native API is not audited");

    let detail = app.get(&format!("/v1/leads/{lead}")).await.body;
    let delivery = detail["deliveries"][0]["id"].as_str().unwrap().to_owned();
    let customer = detail["customer_id"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/v1/leads?publisher=contoso").await.status, 200);
    assert_eq!(csv(&app, ADMIN, Method::GET, "/v1/leads/export.csv?publisher=contoso", None).await.0, 200);
    let (status, imported) = csv(
        &app,
        ADMIN,
        Method::POST,
        "/v1/leads/import.csv?publisher=contoso",
        Some("lead_source,email\nAzureMarketplace-INS|contoso.crm,imported@woodgrove.com\n".to_owned()),
    )
    .await;
    assert_eq!(status, 200, "{imported}");
    assert_eq!(app.get(&format!("/v1/customers/{customer}")).await.status, 200);
    for step in ["disable", "enable", "validate"] {
        let a = app.post(&format!("/v1/destinations/{destination}/{step}"), json!({})).await;
        assert_eq!(a.status, 200, "{step}: {}", a.body);
    }
    assert_eq!(app.post(&format!("/v1/destinations/{destination}/replay"), json!({})).await.status, 202);
    let a = app.post(&format!("/v1/deliveries/{delivery}/retry"), json!({})).await;
    assert_eq!(a.status, 202, "{}", a.body);
    let a = app.post(&format!("/v1/customers/{customer}/split"), json!({"lead_ids": [lead]})).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let (token_id, publisher_token) = token(&app, "contoso", &["read"]).await;
    let key = app.post("/v1/publishers/contoso/ingest-keys", json!({})).await.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.send(Method::DELETE, &format!("/v1/publishers/contoso/ingest-keys/{key}"), None, true).await.status,
        204
    );
    assert_eq!(call(&app, &publisher_token, Method::GET, &format!("/v1/leads/{lead}"), None).await.0, 200);
    let revoke = format!("/v1/publishers/contoso/tokens/{token_id}");
    assert_eq!(app.send(Method::DELETE, &revoke, None, true).await.status, 204);

    let entries = every_entry(&app, "").await;
    let mut got: Vec<&str> = actions(&entries);
    got.sort_unstable();
    let mut expected = vec![
        "destination.create",
        "lead.read",
        "lead.read",
        "lead.list",
        "lead.export",
        "lead.import",
        "customer.read",
        "destination.disable",
        "destination.enable",
        "destination.validate",
        "destination.replay",
        "delivery.retry",
        "customer.split",
        "token.create",
        "ingest_key.create",
        "ingest_key.revoke",
        "token.revoke",
    ];
    expected.sort_unstable();
    assert_eq!(got, expected, "{entries:#?}");
    assert!(entries.iter().all(|e| e["publisher"] == "contoso"), "every action was on contoso's data");

    let by_token: Vec<&Value> = entries.iter().filter(|e| e["actor"] != "admin").collect();
    assert_eq!(by_token.len(), 1, "{entries:#?}");
    assert_eq!(
        (&by_token[0]["action"], &by_token[0]["actor"], &by_token[0]["actor_publisher"], &by_token[0]["object"]),
        (&json!("lead.read"), &json!(token_id), &json!("contoso"), &json!(lead))
    );
    assert!(entries.iter().filter(|e| e["actor"] == "admin").all(|e| e["actor_publisher"].is_null()));
    for (action, object) in [
        ("destination.validate", &destination),
        ("delivery.retry", &delivery),
        ("customer.split", &customer),
        ("customer.read", &customer),
        ("token.revoke", &token_id),
        ("ingest_key.revoke", &key),
    ] {
        assert_eq!(find(&entries, action)["object"], json!(object), "{action}");
    }
    assert_eq!(find(&entries, "lead.list")["count"], 2);
    assert_eq!(find(&entries, "lead.import")["count"], 1);
    assert_eq!(find(&entries, "customer.split")["count"], 1);
    assert!(find(&entries, "destination.replay")["count"].as_u64().is_some());
}

#[tokio::test]
async fn creating_a_destination_and_a_marketplace_token_is_audited_too() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let (destination, _) = app.https_destination("http://127.0.0.1:9/hook", None).await;
    let a = app.post("/v1/marketplace/tokens", json!({"scopes": ["marketplace"]})).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let entries = every_entry(&app, "").await;
    let created = find(&entries, "destination.create");
    assert_eq!((&created["object"], &created["publisher"]), (&json!(destination), &json!("contoso")));
    let token = find(&entries, "token.create");
    assert_eq!(
        (&token["object"], &token["publisher"], &token["actor"]),
        (&a.body["id"], &Value::Null, &json!("admin"))
    );
}

#[tokio::test]
async fn a_publisher_token_sees_only_its_own_publishers_entries() {
    let app = TestApp::spawn().await;
    publisher(&app, "contoso").await;
    publisher(&app, "fabrikam").await;
    let ours = lead_of(&app, "contoso", "contoso.crm", EMAIL).await;
    let theirs = lead_of(&app, "fabrikam", "fabrikam.crm", "buyer@woodgrove.com").await;
    let (_, contoso) = token(&app, "contoso", &["read"]).await;
    let (fabrikam_id, fabrikam) = token(&app, "fabrikam", &["read"]).await;
    assert_eq!(call(&app, &contoso, Method::GET, &format!("/v1/leads/{ours}"), None).await.0, 200);
    assert_eq!(call(&app, &fabrikam, Method::GET, &format!("/v1/leads/{theirs}"), None).await.0, 200);
    assert_eq!(call(&app, &fabrikam, Method::GET, "/v1/leads", None).await.0, 200);
    assert_eq!(app.get(&format!("/v1/leads/{theirs}")).await.status, 200);
    assert_eq!(call(&app, &contoso, Method::GET, &format!("/v1/leads/{theirs}"), None).await.0, 404);

    let (status, seen) = call(&app, &contoso, Method::GET, "/v1/audit", None).await;
    assert_eq!(status, 200, "{seen}");
    let items = seen["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(items.iter().all(|e| e["publisher"] == "contoso"), "{seen:#}");
    let text = seen.to_string();
    assert!(!text.contains("fabrikam") && !text.contains(&theirs) && !text.contains(&fabrikam_id), "{seen:#}");
    let mut seen_actions = actions(items);
    seen_actions.sort_unstable();
    assert_eq!(seen_actions, ["lead.read", "token.create"], "its own read and its token's creation");

    for path in ["/v1/audit?publisher=fabrikam", "/v1/audit?publisher=fabrikam&actor=admin"] {
        let (status, answer) = call(&app, &contoso, Method::GET, path, None).await;
        assert_eq!(status, 404, "{path}: {answer}");
    }
    let (status, answer) = call(&app, &contoso, Method::GET, &format!("/v1/audit?actor={fabrikam_id}"), None).await;
    assert_eq!((status, answer["items"].as_array().map(Vec::len)), (200, Some(0)), "{answer}");

    let (_, ingest_only) = token(&app, "contoso", &["ingest"]).await;
    assert_eq!(call(&app, &ingest_only, Method::GET, "/v1/audit", None).await.0, 403);
    let marketplace = app.post("/v1/marketplace/tokens", json!({"scopes": ["marketplace"]})).await.body;
    let (status, _) = call(&app, marketplace["token"].as_str().unwrap(), Method::GET, "/v1/audit", None).await;
    assert_eq!(status, 404);
    assert_eq!(app.send(Method::GET, "/v1/audit", None, false).await.status, 401);

    let everything = every_entry(&app, "").await;
    let publishers: BTreeSet<&str> = everything.iter().filter_map(|e| e["publisher"].as_str()).collect();
    assert_eq!(publishers, ["contoso", "fabrikam"].into(), "the admin sees every publisher's entries");
}

#[tokio::test]
async fn the_audit_list_is_filtered_by_publisher_action_actor_and_time_and_paged() {
    let (app, clock) = TestApp::spawn_stepped().await;
    publisher(&app, "contoso").await;
    publisher(&app, "fabrikam").await;
    let ours = lead_of(&app, "contoso", "contoso.crm", EMAIL).await;
    let theirs = lead_of(&app, "fabrikam", "fabrikam.crm", "buyer@woodgrove.com").await;
    let (token_id, contoso) = token(&app, "contoso", &["read"]).await;
    clock.advance(Duration::from_secs(60));
    let start = app.get(&format!("/v1/leads/{ours}")).await;
    assert_eq!(start.status, 200);
    let middle = leadrelay_core::Clock::now(&*clock);
    clock.advance(Duration::from_secs(60));
    for _ in 0..4 {
        assert_eq!(app.get(&format!("/v1/leads/{theirs}")).await.status, 200);
    }
    assert_eq!(call(&app, &contoso, Method::GET, "/v1/leads?limit=5", None).await.0, 200);
    clock.advance(Duration::from_secs(60));
    let end = leadrelay_core::Clock::now(&*clock);

    let all = every_entry(&app, "").await;
    assert_eq!(all.len(), 7, "one token created, six reads: {all:#?}");
    let ids: BTreeSet<&str> = all.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 7, "paging returns each entry once");

    let count = |entries: Vec<Value>| entries.len();
    assert_eq!(count(every_entry(&app, "?publisher=fabrikam").await), 4);
    assert_eq!(count(every_entry(&app, "?publisher=contoso").await), 3);
    assert_eq!(count(every_entry(&app, "?action=lead.read").await), 5);
    assert_eq!(count(every_entry(&app, "?action=lead.read&publisher=contoso").await), 1);
    let by_token = every_entry(&app, &format!("?actor={token_id}")).await;
    assert_eq!(actions(&by_token), ["lead.list"]);
    assert_eq!(count(every_entry(&app, "?actor=admin").await), 6);
    let since = middle.plus(Duration::from_secs(1)).to_rfc3339();
    assert_eq!(count(every_entry(&app, &format!("?since={since}")).await), 5);
    assert_eq!(count(every_entry(&app, &format!("?until={since}")).await), 2);
    assert_eq!(count(every_entry(&app, &format!("?since={since}&until={}", end.to_rfc3339())).await), 5);
    assert_eq!(count(every_entry(&app, &format!("?since={}", end.to_rfc3339())).await), 0);

    let first = app.get("/v1/audit?limit=7").await.body;
    assert_eq!(first["items"].as_array().unwrap().len(), 7);
    assert!(first["next_cursor"].is_null());
    let times: Vec<&str> = first["items"].as_array().unwrap().iter().map(|e| e["at"].as_str().unwrap()).collect();
    let mut newest_first = times.clone();
    newest_first.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(times, newest_first, "newest first");
}

#[tokio::test]
async fn bad_audit_filters_answer_422_naming_the_field() {
    let app = TestApp::spawn().await;
    for (query, field) in [
        ("publisher=Not%20A%20Publisher", "publisher"),
        ("action=lead.delete", "action"),
        ("actor=someone", "actor"),
        ("since=yesterday", "since"),
        ("until=2026-13-40", "until"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("cursor=lead_01", "cursor"),
        ("q=anything", "q"),
    ] {
        let a = app.get(&format!("/v1/audit?{query}")).await;
        assert_eq!(a.status, 422, "{query}: {}", a.body);
        assert_eq!(a.body["error"]["fields"][0]["path"], field, "{query}: {}", a.body);
    }
}

#[tokio::test]
async fn the_audit_log_holds_no_personal_data() {
    let (app, _clock) = TestApp::spawn_stepped().await;
    app.contoso().await;
    let lead = lead_of(&app, "contoso", "contoso.crm", EMAIL).await;
    let customer = app.get(&format!("/v1/leads/{lead}")).await.body["customer_id"].as_str().unwrap().to_owned();
    let searches = [
        format!("/v1/leads?q={EMAIL}"),
        format!("/v1/leads?q={FIRST}"),
        format!("/v1/leads?q={LAST}&publisher=contoso"),
    ];
    for path in &searches {
        let a = app.get(path).await;
        assert_eq!((a.status, a.body["items"].as_array().map(Vec::len)), (200, Some(1)), "{path}: {}", a.body);
    }
    assert_eq!(app.get(&format!("/v1/customers/{customer}")).await.status, 200);
    let (status, exported) = csv(&app, ADMIN, Method::GET, &format!("/v1/leads/export.csv?q={LAST}"), None).await;
    assert_eq!(status, 200);
    assert!(exported.contains(EMAIL), "the export itself carries the lead");
    let (status, _) = csv(
        &app,
        ADMIN,
        Method::POST,
        "/v1/leads/import.csv?publisher=contoso",
        Some(format!("lead_source,email,first_name\nAzureMarketplace-PLT|contoso.crm,other.{EMAIL},{FIRST}\n")),
    )
    .await;
    assert_eq!(status, 200);

    let res = app.client.get(format!("{}/v1/audit?limit=1000", app.base)).bearer_auth(ADMIN).send().await.unwrap();
    let body = res.text().await.unwrap();
    for personal in [EMAIL, "grace", "hopper", FIRST, LAST, "fabrikam.com"] {
        assert!(!body.to_lowercase().contains(&personal.to_lowercase()), "the audit log holds '{personal}': {body}");
    }
    let entries: Value = serde_json::from_str(&body).unwrap();
    let entries = entries["items"].as_array().unwrap();
    let mut searched: Vec<&str> =
        entries.iter().filter(|e| e["text_search"] == true).map(|e| e["action"].as_str().unwrap()).collect();
    searched.sort_unstable();
    assert_eq!(searched, ["lead.export", "lead.list", "lead.list", "lead.list"], "a search is recorded, not its text");
}
