//! A data subject's export and erasure: everything held about one address, found through the
//! keyed index, limited to what the caller may see, and audited without the address.

use reqwest::Method;
use serde_json::json;

use crate::support::TestApp;

async fn lead(app: &TestApp, publisher: &str, email: &str, action: &str) -> String {
    let body = json!({"publisher": publisher, "lead_source": format!("AzureMarketplace-{action}"),
                      "customer": {"first_name": "Ada", "last_name": "Quillfeather", "email": email}});
    let a = app.post("/v1/leads", body).await;
    assert_eq!(a.status, 202, "{}", a.body);
    a.body["items"][0]["id"].as_str().or(a.body["id"].as_str()).unwrap().to_owned()
}

#[tokio::test]
async fn the_export_holds_every_lead_of_the_address_with_its_deliveries_and_only_what_the_caller_may_see() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    assert_eq!(app.post("/v1/publishers", json!({"id": "fabrikam", "name": "Fabrikam"})).await.status, 201);
    let (destination, _) = app.https_destination("https://example.com/hook", None).await;
    let first = lead(&app, "contoso", "ada@quillworks.io", "INS").await;
    let second = lead(&app, "contoso", "ADA@Quillworks.io", "PLT").await;
    lead(&app, "contoso", "someone.else@quillworks.io", "INS").await;
    let theirs = lead(&app, "fabrikam", "ada@quillworks.io", "INS").await;

    let all = app.get("/v1/privacy/export?email=Ada%40QuillWorks.io").await;
    assert_eq!(all.status, 200, "{}", all.body);
    let ids: Vec<&str> = all.body["leads"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [first.as_str(), second.as_str(), theirs.as_str()], "oldest first, every publisher for the admin");
    assert_eq!(all.body["lead_count"], 3);
    let deliveries = &all.body["leads"][0]["deliveries"];
    assert_eq!(deliveries[0]["destination"], destination.as_str(), "{deliveries}");
    assert_eq!(all.body["leads"][0]["customer"]["last_name"], "Quillfeather");

    let a = app.post("/v1/publishers/fabrikam/tokens", json!({"scopes": ["read"]})).await;
    let token = a.body["token"].as_str().unwrap().to_owned();
    let (status, mine) = app.call_as(&token, Method::GET, "/v1/privacy/export?email=ada%40quillworks.io", None).await;
    assert_eq!(status, 200);
    assert_eq!(mine["lead_count"], 1, "a publisher sees only its own leads of the person");
    assert_eq!(mine["leads"][0]["id"], theirs.as_str());
    let (status, _) =
        app.call_as(&token, Method::GET, "/v1/privacy/export?email=ada%40quillworks.io&publisher=contoso", None).await;
    assert_eq!(status, 404);

    let bad = app.get("/v1/privacy/export?email=not-an-address").await;
    assert_eq!((bad.status, bad.body["error"]["fields"][0]["path"].as_str()), (422, Some("email")));
    assert_eq!(app.get("/v1/privacy/export").await.status, 422);

    let audit = app.get("/v1/audit?action=subject.export").await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    let entries = audit.body["items"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "each export is audited: {entries:?}");
    let text = audit.body.to_string().to_lowercase();
    assert!(!text.contains("quillworks") && !text.contains("ada@"), "the audit never holds the address: {text}");
}

#[tokio::test]
async fn an_erasure_leaves_nothing_of_the_person_reports_where_it_went_and_flags_a_return() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let receiver = leadrelay_testkit::TestReceiver::start().await;
    let (destination, _) = app.https_destination(&receiver.url(), None).await;
    let first = lead(&app, "contoso", "ada@quillworks.io", "INS").await;
    app.wait_for_lead(&first, "the delivery", |d| d.iter().any(|x| x["status"] == "delivered")).await;
    lead(&app, "contoso", "grace@quillworks.io", "INS").await;

    let a = app.post("/v1/publishers/contoso/tokens", json!({"scopes": ["read"]})).await;
    let reader = a.body["token"].as_str().unwrap().to_owned();
    let (status, _) =
        app.call_as(&reader, Method::POST, "/v1/privacy/erase", Some(json!({"email": "ada@quillworks.io"}))).await;
    assert_eq!(status, 403, "erasing needs the write scope");
    let a = app.post("/v1/publishers/contoso/tokens", json!({"scopes": ["write"]})).await;
    let writer = a.body["token"].as_str().unwrap().to_owned();
    let (status, report) =
        app.call_as(&writer, Method::POST, "/v1/privacy/erase", Some(json!({"email": " ADA@quillworks.io "}))).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["erased_leads"], 1);
    assert_eq!(report["delivered_to"], json!([destination]), "where to erase next");

    let erased = app.get(&format!("/v1/leads/{first}")).await.body;
    let text = erased.to_string().to_lowercase();
    assert!(!text.contains("ada@") && !text.contains("quillfeather"), "nothing of the person is left: {erased}");
    assert_eq!(app.get("/v1/privacy/export?email=ada%40quillworks.io").await.body["lead_count"], 0);
    assert_eq!(app.get("/v1/leads?q=quillfeather").await.body["items"].as_array().unwrap().len(), 1, "grace only");
    let csv = app.client.get(format!("{}/v1/leads/export.csv", app.base)).bearer_auth(crate::support::ADMIN);
    let csv = csv.send().await.unwrap().text().await.unwrap().to_lowercase();
    assert!(csv.contains("grace@quillworks.io") && !csv.contains("ada@"), "the export holds only grace: {csv}");

    let back = lead(&app, "contoso", "ada@quillworks.io", "PLT").await;
    let lead_back = app.get(&format!("/v1/leads/{back}")).await.body;
    assert_eq!(lead_back["previously_erased"], true, "a return of the address is flagged: {lead_back}");

    let audit = app.get("/v1/audit?action=customer.erase").await.body;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1);
    assert_eq!(audit["items"][0]["count"], 1);
    assert!(!audit.to_string().to_lowercase().contains("quillworks"));
    let bad = app.post("/v1/privacy/erase", json!({"email": "nobody"})).await;
    assert_eq!((bad.status, bad.body["error"]["fields"][0]["path"].as_str()), (422, Some("email")));
}

#[tokio::test]
async fn retention_strips_personal_data_from_old_leads_and_keeps_what_kpis_need() {
    let retention = "\n[privacy]\nretain_personal_data_days = 30\nretention_interval_ms = 1000\n";
    let (app, clock) = TestApp::spawn_stepped_with(retention).await;
    app.contoso().await;
    let old = lead(&app, "contoso", "old.customer@quillworks.io", "INS").await;
    clock.advance(std::time::Duration::from_secs(29 * 86_400));
    let recent = lead(&app, "contoso", "recent.customer@quillworks.io", "PLT").await;
    clock.advance(std::time::Duration::from_secs(2 * 86_400));
    // The task runs every second of real time; the clock it reads says 31 days have passed.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let stripped = loop {
        let lead = app.get(&format!("/v1/leads/{old}")).await.body;
        if lead["customer"]["email"].is_null() {
            break lead;
        }
        assert!(tokio::time::Instant::now() < deadline, "retention never stripped the old lead: {lead}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(stripped["customer"]["last_name"].is_null() && stripped["pii_withheld"] == true, "{stripped}");
    assert_eq!(stripped["source"], "AzureMarketplace", "the facts KPIs need stay: {stripped}");
    assert_eq!(stripped["action_code"], "INS");
    assert!(stripped["stage"].is_string() && stripped["received_at"].is_string(), "{stripped}");
    let kept = app.get(&format!("/v1/leads/{recent}")).await.body;
    assert_eq!(kept["customer"]["email"], "recent.customer@quillworks.io", "a lead of 2 days keeps its data");
    assert_eq!(app.get("/v1/leads?q=old.customer%40quillworks.io").await.body["items"].as_array().unwrap().len(), 0);
}
