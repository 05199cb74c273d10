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
    for id in &ids {
        app.wait_for_lead(id, "an attempt recorded", |d| d[0]["attempt_log"].as_array().is_some_and(|l| !l.is_empty()))
            .await;
    }
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

/// Reads one entity back from the Table service (signed with our signer; Azurite checks it).
async fn read_entity(
    azurite: &leadrelay_testkit::azurite::Azurite,
    table: &str,
    pk: &str,
    rk: &str,
) -> serde_json::Value {
    use leadrelay_destinations::azure_table::ConnectionString;
    let cs = ConnectionString::parse(&azurite.connection_string()).unwrap();
    let url = format!("{}/{table}(PartitionKey='{pk}',RowKey='{rk}')", azurite.endpoint());
    let path = reqwest::Url::parse(&url).unwrap().path().to_owned();
    let date = httpdate_now();
    let res = reqwest::Client::new()
        .get(&url)
        .header("x-ms-date", &date)
        .header("x-ms-version", "2019-02-02")
        .header("accept", "application/json;odata=nometadata")
        .header("authorization", cs.authorization("GET", "", &date, &path))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{url}");
    res.json().await.unwrap()
}

fn httpdate_now() -> String {
    let t = time::OffsetDateTime::now_utc();
    t.format(&time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    ))
    .unwrap()
}

#[tokio::test]
async fn a_lead_lands_in_azure_table_with_the_marketplace_columns() {
    let azurite = leadrelay_testkit::azurite::Azurite::start();
    let app = TestApp::spawn().await;
    app.contoso().await;
    let a = app
        .post("/v1/publishers/contoso/destinations", json!({"name": "table", "kind": "azure_table", "settings": {"connection_string": azurite.connection_string()}}))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert!(a.body["settings"].get("connection_string").is_none(), "the connection string is write-only");
    assert_eq!(a.body["settings"]["table"], "MarketplaceLeads");
    let dest = a.body["id"].as_str().unwrap().to_owned();

    let lead = json!({"publisher": "contoso", "lead_source": "AzureMarketplace-INS|contoso.crm",
        "customer": {"first_name": "Some", "last_name": "One", "email": "someone@contoso.com", "phone": "16175555555",
                     "country": "USA", "company": "Contoso", "title": "Esquire"},
        "description": "Campaigns: blogpost_12"});
    let id = app.post("/v1/leads", lead).await.body["id"].as_str().unwrap().to_owned();
    let detail = app.wait_for_lead(&id, "delivered to the table", |d| status_of(d) == ["delivered"]).await;
    let received = leadrelay_core::Timestamp::parse_rfc3339(detail["received_at"].as_str().unwrap()).unwrap();
    let pk = leadrelay_destinations::azure_table::partition_key(received);
    let (y, m, d) = received.date();
    assert_eq!(pk, format!("{m}:2F{d}:2F{y}"));

    let entity = read_entity(&azurite, "MarketplaceLeads", &pk, &id).await;
    assert_eq!(entity["PartitionKey"], pk.as_str());
    assert_eq!(entity["RowKey"], id.as_str());
    assert_eq!(entity["ActionCode"], "INS");
    assert_eq!(entity["LeadSource"], "AzureMarketplace");
    assert_eq!(entity["OfferDisplayName"], "Contoso CRM");
    assert_eq!(entity["OfferId"], "contoso.crm");
    assert_eq!(entity["Description"], "Campaigns: blogpost_12");
    let created = leadrelay_core::Timestamp::parse_rfc3339(entity["CreatedTime"].as_str().unwrap()).unwrap();
    assert_eq!(created.as_secs(), received.as_secs());
    let info: serde_json::Value = serde_json::from_str(entity["CustomerInfo"].as_str().unwrap()).unwrap();
    assert_eq!(
        info,
        json!({"FirstName": "Some", "LastName": "One", "Email": "someone@contoso.com", "Phone": "16175555555",
                            "Country": "USA", "Company": "Contoso", "Title": "Esquire"})
    );

    // A replay re-sends the same RowKey: the table answers 409 and the delivery counts as done.
    let a = app.post(&format!("/v1/destinations/{dest}/replay"), json!({"since": "2020-01-01"})).await;
    assert_eq!(a.body["replayed"], 1);
    let again = app
        .wait_for_lead(&id, "the replay recorded", |d| d[0]["attempt_log"].as_array().is_some_and(|l| l.len() == 2))
        .await;
    let log = &again["deliveries"][0]["attempt_log"][1];
    assert_eq!((log["status_code"].as_u64(), log["error_class"].as_str()), (Some(409), None), "{log}");

    let v = app.post(&format!("/v1/destinations/{dest}/validate"), json!({})).await;
    assert_eq!(v.body["ok"], true, "{}", v.body);
}

#[tokio::test]
async fn a_wrong_account_key_is_a_configuration_error_with_a_hint() {
    let azurite = leadrelay_testkit::azurite::Azurite::start();
    let app = TestApp::spawn().await;
    app.contoso().await;
    let wrong = azurite.connection_string().replace("Eby8", "Xby8");
    let a = app
        .post(
            "/v1/publishers/contoso/destinations",
            json!({"name": "t", "kind": "azure_table", "settings": {"connection_string": wrong}}),
        )
        .await;
    assert_eq!(a.status, 201);
    let v = app.post(&format!("/v1/destinations/{}/validate", a.body["id"].as_str().unwrap()), json!({})).await;
    assert_eq!((v.body["ok"].as_bool(), v.body["status_code"].as_u64()), (Some(false), Some(403)), "{}", v.body);
    assert!(v.body["hint"].as_str().unwrap().contains("AccountKey"), "{}", v.body);
    let bad = app
        .post("/v1/publishers/contoso/destinations", json!({"name": "t", "kind": "azure_table", "settings": {"connection_string": "AccountName=x", "table": "1x"}}))
        .await;
    let mut paths: Vec<&str> =
        bad.body["error"]["fields"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["settings.connection_string", "settings.table"]);
}

pub(crate) fn email_settings(smtp: &leadrelay_testkit::smtp::SmtpServer, tls: &str) -> serde_json::Value {
    use leadrelay_testkit::smtp::{PASSWORD, USER};
    let mut s = json!({"host": "localhost", "port": smtp.port(), "tls": tls, "username": USER, "password": PASSWORD,
                       "from": "leadrelay@contoso.com", "to": "ops@contoso.com; Sales@Contoso.com ;ops@contoso.com"});
    if tls != "none" {
        s["ca_pem"] = json!(smtp.ca_pem());
    }
    s
}

/// A message with its quoted-printable body decoded (soft line breaks joined, `=XX` bytes).
pub(crate) fn decoded(raw: &str) -> String {
    let joined = raw.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn wait_for_mail(smtp: &leadrelay_testkit::smtp::SmtpServer, n: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let m: Vec<String> = smtp.messages().iter().map(|raw| decoded(raw)).collect();
        if m.len() >= n {
            return m;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {n} messages, have {}", m.len());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn a_notification_email_goes_out_over_starttls_with_auth_and_no_personal_data() {
    let smtp = leadrelay_testkit::smtp::SmtpServer::start(true);
    let app = TestApp::spawn().await;
    app.contoso().await;
    let a = app
        .post(
            "/v1/publishers/contoso/destinations",
            json!({"name": "mail", "kind": "email", "settings": email_settings(&smtp, "starttls")}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert!(a.body["settings"].get("password").is_none(), "the password is write-only");
    let lead = json!({"publisher": "contoso", "lead_source": "AppSource (SPZA)-PLT|contoso.crm",
        "customer": {"first_name": "Carla", "last_name": "Canary", "email": "carla.canary@fabrikam.com", "phone": "15550001111"},
        "description": "Call Carla at home"});
    let id = app.post("/v1/leads", lead).await.body["id"].as_str().unwrap().to_owned();
    let mail = wait_for_mail(&smtp, 1).await.remove(0);
    assert!(mail.contains("Subject: New marketplace lead: Contoso CRM (PLT)"), "{mail}");
    assert!(mail.contains("From: leadrelay@contoso.com"), "{mail}");
    assert!(mail.contains("ops@contoso.com") && mail.contains("Sales@Contoso.com"), "{mail}");
    let envelope = mail.lines().find(|l| l.starts_with("X-RcptTo:")).unwrap();
    assert_eq!(envelope.matches('@').count(), 2, "each recipient once: {envelope}");
    assert!(mail.contains("Offer:    Contoso CRM (contoso.crm)"), "{mail}");
    assert!(mail.contains("Stage:    initial_interest"), "{mail}");
    assert!(mail.contains(&format!("Open it:  https://leads.example.com/v1/leads/{id}")), "{mail}");
    for personal in ["Carla", "Canary", "carla.canary", "15550001111", "home"] {
        assert!(!mail.contains(personal), "{personal} leaked into the email: {mail}");
    }
    app.wait_for_lead(&id, "delivered", |d| status_of(d) == ["delivered"]).await;
}

#[tokio::test]
async fn personal_data_is_included_only_when_asked_and_never_for_a_withheld_lead() {
    let smtp = leadrelay_testkit::smtp::SmtpServer::start(false);
    let app = TestApp::spawn().await;
    app.contoso().await;
    let mut settings = email_settings(&smtp, "none");
    settings["include_personal_data"] = json!(true);
    let a = app
        .post("/v1/publishers/contoso/destinations", json!({"name": "mail", "kind": "email", "settings": settings}))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let lead = |email: &str| {
        json!({"publisher": "contoso", "lead_source": "AzureMarketplace-INS|contoso.crm",
        "customer": {"first_name": "Carla", "last_name": "Canary", "email": email}})
    };
    app.post("/v1/leads", lead("carla@fabrikam.com")).await;
    let first = wait_for_mail(&smtp, 1).await.remove(0);
    assert!(first.contains("Name:     Carla Canary") && first.contains("carla@fabrikam.com"), "{first}");
    app.post("/v1/leads", lead("carla@university.edu")).await;
    let second = wait_for_mail(&smtp, 2).await.remove(1);
    assert!(second.contains("personal data was withheld"), "{second}");
    assert!(!second.contains("Carla") && !second.contains("university.edu"), "{second}");
}

#[tokio::test]
async fn validate_reports_wrong_smtp_credentials_and_sends_a_test_notification_when_right() {
    let smtp = leadrelay_testkit::smtp::SmtpServer::start(true);
    let app = TestApp::spawn().await;
    app.contoso().await;
    let mut wrong = email_settings(&smtp, "starttls");
    wrong["password"] = json!("not-it");
    let bad = app
        .post("/v1/publishers/contoso/destinations", json!({"name": "bad", "kind": "email", "settings": wrong}))
        .await;
    let v = app.post(&format!("/v1/destinations/{}/validate", bad.body["id"].as_str().unwrap()), json!({})).await;
    assert_eq!((v.body["ok"].as_bool(), v.body["status_code"].as_u64()), (Some(false), Some(535)), "{}", v.body);
    assert!(v.body["hint"].as_str().unwrap().contains("username and password"), "{}", v.body);

    let good = app
        .post(
            "/v1/publishers/contoso/destinations",
            json!({"name": "good", "kind": "email", "settings": email_settings(&smtp, "starttls")}),
        )
        .await;
    let v = app.post(&format!("/v1/destinations/{}/validate", good.body["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(v.body["ok"], true, "{}", v.body);
    let mail = wait_for_mail(&smtp, 1).await.remove(0);
    assert!(mail.contains("Subject: [TEST] New marketplace lead:"), "{mail}");
    assert!(mail.contains("This is a test lead: MSFT_TEST_"), "{mail}");

    let a = app
        .post("/v1/publishers/contoso/destinations", json!({"name": "x", "kind": "email", "settings": {"host": "", "port": 0, "tls": "ssl", "from": "nope", "to": "a@b.com; x"}}))
        .await;
    let mut paths: Vec<&str> =
        a.body["error"]["fields"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["settings.from", "settings.host", "settings.port", "settings.tls", "settings.to"]);
}

async fn dynamics(app: &TestApp, fake: &leadrelay_testkit::crm::dynamics::FakeDynamics) -> String {
    let settings = json!({"url": fake.url(), "tenant_id": "contoso.onmicrosoft.com", "client_id": "23456052-aaaa-bbbb-8662-1234df56788f",
                          "client_secret": "s3cret~value", "token_url": fake.token_url("contoso.onmicrosoft.com")});
    let a = app
        .post(
            "/v1/publishers/contoso/destinations",
            json!({"name": "d365", "kind": "dynamics365", "settings": settings}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert!(a.body["settings"].get("client_secret").is_none(), "the secret is write-only");
    a.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_lead_reaches_dynamics_with_a_cached_client_credentials_token() {
    let fake = leadrelay_testkit::crm::dynamics::FakeDynamics::start().await;
    let app = TestApp::spawn().await;
    app.contoso().await;
    dynamics(&app, &fake).await;
    let path = app.ingest_path(None).await;
    let first = app.ingest(&path, crate::support::documented_example()).await.body["id"].as_str().unwrap().to_owned();
    app.wait_for_lead(&first, "delivered", |d| status_of(d) == ["delivered"]).await;
    let second = app.ingest(&path, example_for("second@contoso.com")).await.body["id"].as_str().unwrap().to_owned();
    app.wait_for_lead(&second, "delivered", |d| status_of(d) == ["delivered"]).await;

    let tokens = fake.token_requests();
    assert_eq!(tokens.len(), 1, "the token is cached");
    assert_eq!(tokens[0].path, "/contoso.onmicrosoft.com/oauth2/v2.0/token");
    let form = tokens[0].form();
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["client_id"], "23456052-aaaa-bbbb-8662-1234df56788f");
    assert_eq!(form["client_secret"], "s3cret~value");
    assert_eq!(form["scope"], format!("{}/.default", fake.url()));

    let req = &fake.lead_requests()[0];
    assert_eq!(req.headers["authorization"], "Bearer fake-token-1");
    assert_eq!((req.headers["odata-version"].as_str(), req.headers["odata-maxversion"].as_str()), ("4.0", "4.0"));
    assert_eq!(req.headers["content-type"], "application/json; charset=utf-8");
    assert_eq!(req.headers["accept"], "application/json");
    assert_eq!(
        req.json(),
        json!({"subject": "AzureMarketplace - INS - Test Microsoft", "firstname": "Some", "lastname": "One",
               "emailaddress1": "someone@contoso.com", "telephone1": "16175555555", "companyname": "Contoso", "jobtitle": "Esquire",
               "address1_country": "USA", "description": "LeadSource: AzureMarketplace-INS|Test Microsoft\nTest run through Power Automate",
               "leadsourcecode": 8})
    );
    let detail = app.get(&format!("/v1/leads/{first}")).await.body;
    assert!(detail["deliveries"][0]["attempt_log"][0]["response_excerpt"].as_str().unwrap().starts_with("leadid "));

    // An expired token is refreshed once and the lead still lands.
    fake.expire_tokens();
    let third = app.ingest(&path, example_for("third@contoso.com")).await.body["id"].as_str().unwrap().to_owned();
    app.wait_for_lead(&third, "delivered after a token refresh", |d| status_of(d) == ["delivered"]).await;
    assert_eq!(fake.token_requests().len(), 2);
}

#[tokio::test]
async fn dynamics_failures_are_retried_or_dead_lettered_with_a_hint() {
    let fake = leadrelay_testkit::crm::dynamics::FakeDynamics::start().await;
    let app = TestApp::spawn().await;
    app.contoso().await;
    let dest = dynamics(&app, &fake).await;
    let validate_path = format!("/v1/destinations/{dest}/validate");
    let validate = || app.post(&validate_path, json!({}));
    for (aadsts, expect) in
        [(7_000_215, "client secret is wrong"), (700_016, "client id"), (90_002, "tenant was not found")]
    {
        fake.fail_tokens(401, "invalid_client", aadsts);
        let v = validate().await;
        assert_eq!(v.body["ok"], false);
        assert!(v.body["hint"].as_str().unwrap().contains(expect), "{aadsts}: {}", v.body);
        assert!(v.body["error"].as_str().unwrap().contains(&format!("AADSTS{aadsts}")), "{}", v.body);
    }
    fake.heal();
    fake.fail_leads(403, "0x80040220", None);
    let v = validate().await;
    assert!(v.body["hint"].as_str().unwrap().contains("Lead Writer"), "{}", v.body);
    fake.heal();
    let v = validate().await;
    assert_eq!(v.body["ok"], true, "{}", v.body);
    let test_lead = fake.lead_requests().last().unwrap().json();
    let marker = test_lead["subject"].as_str().unwrap();
    assert!(marker.starts_with("MSFT_TEST_"), "{test_lead}");
    assert_eq!(test_lead["emailaddress1"], format!("{marker}@test.com"));

    // Throttling waits for Retry-After without using attempts; a 503 is retried until it clears.
    let path = app.ingest_path(None).await;
    fake.fail_leads(429, "0x80072322", Some(1));
    let id = app.ingest(&path, example_for("throttled@contoso.com")).await.body["id"].as_str().unwrap().to_owned();
    let held = app
        .wait_for_lead(&id, "a throttled attempt", |d| d[0]["attempt_log"].as_array().is_some_and(|l| !l.is_empty()))
        .await;
    assert_eq!(held["deliveries"][0]["attempt_log"][0]["error_class"], "throttled");
    assert_eq!(held["deliveries"][0]["attempts"], 0);
    fake.fail_leads(503, "", None);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    fake.heal();
    app.wait_for_lead(&id, "delivered once Dynamics recovers", |d| status_of(d) == ["delivered"]).await;
}

async fn marketo(app: &TestApp, fake: &leadrelay_testkit::crm::marketo::FakeMarketo, secret: &str) -> String {
    use leadrelay_testkit::crm::marketo::CLIENT_ID;
    let settings = json!({"munchkin_id": "123-ABC-456", "client_id": CLIENT_ID, "client_secret": secret, "form_id": 1179, "base_url": fake.base_url()});
    let a = app
        .post("/v1/publishers/contoso/destinations", json!({"name": "mkto", "kind": "marketo", "settings": settings}))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert!(a.body["settings"].get("client_secret").is_none());
    a.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_lead_is_submitted_to_the_marketo_form_with_a_bearer_token() {
    use leadrelay_testkit::crm::marketo::{CLIENT_ID, CLIENT_SECRET, FakeMarketo};
    let fake = FakeMarketo::start().await;
    let app = TestApp::spawn().await;
    app.contoso().await;
    marketo(&app, &fake, CLIENT_SECRET).await;
    let path = app.ingest_path(None).await;
    let id = app.ingest(&path, crate::support::documented_example()).await.body["id"].as_str().unwrap().to_owned();
    app.wait_for_lead(&id, "delivered", |d| status_of(d) == ["delivered"]).await;

    let q = &fake.token_queries()[0];
    assert_eq!(
        (q["grant_type"].as_str(), q["client_id"].as_str(), q["client_secret"].as_str()),
        ("client_credentials", CLIENT_ID, CLIENT_SECRET)
    );
    let (headers, body) = &fake.submissions()[0];
    assert_eq!(headers["authorization"], "Bearer token-1:int");
    assert_eq!(
        body,
        &json!({"formId": 1179, "input": [{"leadFormFields": {"firstName": "Some", "lastName": "One", "email": "someone@contoso.com",
            "company": "Contoso", "title": "Esquire", "phone": "16175555555", "country": "USA", "leadSource": "AzureMarketplace-INS|Test Microsoft"}}]})
    );

    // 602 (expired token): one refresh, one retry, delivered; 606 (rate limit): held, not counted.
    fake.expire_tokens();
    let second = app.ingest(&path, example_for("second@contoso.com")).await.body["id"].as_str().unwrap().to_owned();
    app.wait_for_lead(&second, "delivered after a token refresh", |d| status_of(d) == ["delivered"]).await;
    assert_eq!(fake.token_queries().len(), 2);
    fake.next_error("606");
    let third = app.ingest(&path, example_for("third@contoso.com")).await.body["id"].as_str().unwrap().to_owned();
    let held = app
        .wait_for_lead(&third, "a throttled attempt", |d| d[0]["attempt_log"].as_array().is_some_and(|l| !l.is_empty()))
        .await;
    assert_eq!(held["deliveries"][0]["attempt_log"][0]["error_class"], "throttled");
    assert_eq!(held["deliveries"][0]["attempts"], 0);
    let next =
        leadrelay_core::Timestamp::parse_rfc3339(held["deliveries"][0]["next_attempt_at"].as_str().unwrap()).unwrap();
    let now = leadrelay_core::Clock::now(&leadrelay_core::SystemClock);
    assert!(next.since(now) > Duration::from_secs(15), "waits about 20 s");
}

#[tokio::test]
async fn marketo_configuration_errors_explain_what_to_fix() {
    use leadrelay_testkit::crm::marketo::{CLIENT_SECRET, FakeMarketo};
    let fake = FakeMarketo::start().await;
    let app = TestApp::spawn().await;
    app.contoso().await;
    let wrong = marketo(&app, &fake, "not-the-secret").await;
    let v = app.post(&format!("/v1/destinations/{wrong}/validate"), json!({})).await;
    assert_eq!((v.body["ok"].as_bool(), v.body["status_code"].as_u64()), (Some(false), Some(401)), "{}", v.body);
    assert!(v.body["hint"].as_str().unwrap().contains("LaunchPoint"), "{}", v.body);

    let right = marketo(&app, &fake, CLIENT_SECRET).await;
    fake.next_skip("1006");
    let v = app.post(&format!("/v1/destinations/{right}/validate"), json!({})).await;
    assert!(v.body["hint"].as_str().unwrap().contains("not on the form"), "{}", v.body);
    fake.next_error("610");
    let v = app.post(&format!("/v1/destinations/{right}/validate"), json!({})).await;
    assert!(v.body["hint"].as_str().unwrap().contains("form_id"), "{}", v.body);
    let v = app.post(&format!("/v1/destinations/{right}/validate"), json!({})).await;
    assert_eq!(v.body["ok"], true, "{}", v.body);
    let (_, body) = fake.submissions().pop().unwrap();
    let fields = &body["input"][0]["leadFormFields"];
    let marker = fields["firstName"].as_str().unwrap();
    assert!(marker.starts_with("MSFT_TEST_") && fields["email"] == format!("{marker}@test.com"), "{body}");

    let bad = app
        .post("/v1/publishers/contoso/destinations", json!({"name": "m", "kind": "marketo", "settings": {"munchkin_id": "123ABC456", "client_id": "x", "form_id": "1179"}}))
        .await;
    let mut paths: Vec<&str> =
        bad.body["error"]["fields"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["settings.client_secret", "settings.form_id", "settings.munchkin_id"]);
}

#[tokio::test]
async fn one_lead_reaches_all_six_destination_kinds_field_by_field() {
    use leadrelay_testkit::crm::dynamics::FakeDynamics;
    use leadrelay_testkit::crm::marketo::{CLIENT_SECRET, FakeMarketo};
    let (azurite, smtp) =
        (leadrelay_testkit::azurite::Azurite::start(), leadrelay_testkit::smtp::SmtpServer::start(true));
    let (receiver, sf, d365, mkto) = (
        leadrelay_testkit::TestReceiver::start().await,
        FakeWebToLead::start().await,
        FakeDynamics::start().await,
        FakeMarketo::start().await,
    );
    let app = TestApp::spawn().await;
    app.contoso().await;
    let (_, secret) = app.https_destination(&receiver.url(), Some(&["contoso.crm"])).await;
    salesforce(&app, &sf, json!({})).await;
    dynamics(&app, &d365).await;
    marketo(&app, &mkto, CLIENT_SECRET).await;
    let table = json!({"name": "t", "kind": "azure_table", "settings": {"connection_string": azurite.connection_string()}, "offers": ["contoso.crm"]});
    assert_eq!(app.post("/v1/publishers/contoso/destinations", table).await.status, 201);
    let mail = json!({"name": "m", "kind": "email", "settings": email_settings(&smtp, "starttls")});
    assert_eq!(app.post("/v1/publishers/contoso/destinations", mail).await.status, 201);

    let key = app.ingest_path(Some("contoso.crm")).await;
    let id = app.ingest(&key, crate::support::documented_example()).await.body["id"].as_str().unwrap().to_owned();
    let lead = app
        .wait_for_lead(&id, "six deliveries", |d| d.len() == 6 && d.iter().all(|x| x["status"] == "delivered"))
        .await;

    // https: the documented JSON, signed (verified by the Python library).
    assert_eq!(receiver.requests()[0].json(), crate::support::documented_example());
    leadrelay_testkit::python::verify_signatures(&secret, &receiver.requests());
    // salesforce: the Web-to-Lead form.
    let post = &sf.posts()[0];
    for (f, v) in [
        ("first_name", "Some"),
        ("last_name", "One"),
        ("email", "someone@contoso.com"),
        ("company", "Contoso"),
        ("title", "Esquire"),
        ("phone", "16175555555"),
        ("country", "USA"),
        ("description", "Test run through Power Automate"),
        ("lead_source", "AzureMarketplace-INS|contoso.crm"),
        ("oid", "00Do0000000ZHog"),
        ("encoding", "UTF-8"),
    ] {
        assert_eq!(post.field(f), Some(v), "salesforce {f}");
    }
    // dynamics: the Dataverse lead.
    let record = d365.lead_requests()[0].json();
    assert_eq!(record["subject"], "AzureMarketplace - INS - Test Microsoft");
    assert_eq!(
        (record["lastname"].as_str(), record["emailaddress1"].as_str()),
        (Some("One"), Some("someone@contoso.com"))
    );
    assert_eq!(record["description"], "LeadSource: AzureMarketplace-INS|contoso.crm\nTest run through Power Automate");
    // marketo: the form submission.
    let (_, body) = &mkto.submissions()[0];
    assert_eq!(body["input"][0]["leadFormFields"]["leadSource"], "AzureMarketplace-INS|contoso.crm");
    assert_eq!(body["input"][0]["leadFormFields"]["email"], "someone@contoso.com");
    // azure table: the entity.
    let received = leadrelay_core::Timestamp::parse_rfc3339(lead["received_at"].as_str().unwrap()).unwrap();
    let entity =
        read_entity(&azurite, "MarketplaceLeads", &leadrelay_destinations::azure_table::partition_key(received), &id)
            .await;
    assert_eq!(
        (entity["OfferId"].as_str(), entity["OfferDisplayName"].as_str()),
        (Some("contoso.crm"), Some("Test Microsoft"))
    );
    let info: serde_json::Value = serde_json::from_str(entity["CustomerInfo"].as_str().unwrap()).unwrap();
    assert_eq!(info, crate::support::documented_example()["UserDetails"]);
    // email: the notification without personal data.
    let message = wait_for_mail(&smtp, 1).await.remove(0);
    assert!(message.contains("Subject: New marketplace lead: Test Microsoft (INS)"), "{message}");
    assert!(message.contains(&format!("/v1/leads/{id}")) && !message.contains("someone@contoso.com"), "{message}");
}

#[tokio::test]
async fn dead_letters_and_disabled_destinations_are_emailed_to_the_publisher_without_personal_data() {
    let smtp = leadrelay_testkit::smtp::SmtpServer::start(true);
    let receiver = leadrelay_testkit::TestReceiver::start().await;
    let app = TestApp::spawn().await;
    app.contoso().await;
    let mail = json!({"name": "ops-mail", "kind": "email", "settings": email_settings(&smtp, "starttls")});
    assert_eq!(app.post("/v1/publishers/contoso/destinations", mail).await.status, 201);
    let (hook, _) = app.https_destination(&receiver.url(), None).await;
    let path = app.ingest_path(None).await;

    receiver.respond_with(404, None);
    let id = app.ingest(&path, example_for("carla.canary@fabrikam.com")).await.body["id"].as_str().unwrap().to_owned();
    let messages = wait_for_mail(&smtp, 2).await;
    let dead =
        messages.iter().find(|m| m.contains("Subject: Lead delivery failed: crm-hook")).expect("a dead-letter notice");
    assert!(dead.contains(&format!("Lead:     {id}")), "{dead}");
    assert!(dead.contains("receiver answered 404") && dead.contains("path"), "error and hint: {dead}");
    assert!(dead.contains(&format!("/v1/destinations/{hook}/replay")), "{dead}");
    assert!(!dead.contains("carla"), "{dead}");

    receiver.respond_with(410, None);
    app.ingest(&path, example_for("second@fabrikam.com")).await;
    let messages = wait_for_mail(&smtp, 5).await;
    let disabled =
        messages.iter().find(|m| m.contains("Subject: Destination disabled: crm-hook")).expect("a disable notice");
    assert!(disabled.contains("410") && disabled.contains(&format!("/v1/destinations/{hook}/enable")), "{disabled}");
}

#[tokio::test]
async fn a_crm_down_for_two_minutes_loses_nothing_on_the_default_retry_schedule() {
    use std::sync::Arc;
    let clock = Arc::new(leadrelay_testkit::ManualClock::new(leadrelay_core::Clock::now(&leadrelay_core::SystemClock)));
    // The shipped retry schedule (5 s, 5 min, …, ±20 %); only private addresses and a quick poll.
    let config = "[delivery]\nallow_private_destinations = true\n[worker]\npoll_interval_ms = 20\n";
    let app = TestApp::spawn_with_clock(config, clock.clone()).await;
    app.contoso().await;
    let fake = FakeWebToLead::start().await;
    fake.respond_with(503);
    salesforce(&app, &fake, json!({})).await;
    let path = app.ingest_path(None).await;
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(
            app.ingest(&path, example_for(&format!("outage{i}@fabrikam.com"))).await.body["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // Move the clock only once every attempt is recorded, or a late one would be scheduled from
    // the moved clock.
    let recorded =
        |n: usize| move |d: &[serde_json::Value]| d[0]["attempt_log"].as_array().is_some_and(|l| l.len() >= n);
    for id in &ids {
        app.wait_for_lead(id, "the first attempt recorded", recorded(1)).await;
    }
    clock.advance(Duration::from_secs(7));
    for id in &ids {
        app.wait_for_lead(id, "the second attempt recorded", recorded(2)).await;
    }
    clock.advance(Duration::from_secs(113)); // two minutes into the outage: nothing is due yet
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fake.posts().len(), 20, "two attempts each so far");
    fake.respond_with(200);
    clock.advance(Duration::from_secs(5 * 60)); // past the 5-minute retry (with +20 % jitter)
    for id in &ids {
        let lead = app.wait_for_lead(id, "delivered after the outage", |d| status_of(d) == ["delivered"]).await;
        assert_eq!(lead["deliveries"][0]["attempts"], 3);
    }
    let dead = app.get("/v1/deliveries?status=dead").await.body;
    assert!(dead["items"].as_array().unwrap().is_empty(), "nothing dead-lettered");
}

#[tokio::test]
async fn marketo_takes_several_leads_per_call_when_batching_is_on() {
    use leadrelay_testkit::crm::marketo::{CLIENT_ID, CLIENT_SECRET, FakeMarketo};
    let fake = FakeMarketo::start().await;
    let app = TestApp::spawn().await;
    app.contoso().await;
    let settings = json!({"munchkin_id": "123-ABC-456", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "form_id": 1179,
                          "base_url": fake.base_url(), "batch_size": 3});
    let a = app
        .post("/v1/publishers/contoso/destinations", json!({"name": "mkto", "kind": "marketo", "settings": settings}))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let dest = a.body["id"].as_str().unwrap().to_owned();
    // Leads queue while the destination is paused, then go out together.
    assert_eq!(app.post(&format!("/v1/destinations/{dest}/disable"), json!({})).await.status, 200);
    let path = app.ingest_path(None).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            app.ingest(&path, example_for(&format!("batch{i}@fabrikam.com"))).await.body["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(app.post(&format!("/v1/destinations/{dest}/enable"), json!({})).await.status, 200);
    for id in &ids {
        app.wait_for_lead(id, "delivered in a batch", |d| status_of(d) == ["delivered"]).await;
    }
    let mut sizes: Vec<usize> = fake.submissions().iter().map(|(_, b)| b["input"].as_array().unwrap().len()).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [2, 3], "five leads in two calls of at most three");
    let too_big =
        json!({"munchkin_id": "123-ABC-456", "client_id": "x", "client_secret": "y", "form_id": 1, "batch_size": 301});
    let a = app
        .post("/v1/publishers/contoso/destinations", json!({"name": "m", "kind": "marketo", "settings": too_big}))
        .await;
    assert_eq!(a.body["error"]["fields"][0]["path"], "settings.batch_size");
}
