//! The ways in: the marketplace's HTTPS-endpoint JSON and the native API.

use std::time::Duration;

use leadrelay_testkit::TestReceiver;
use reqwest::Method;
use serde_json::json;

use crate::support::{TestApp, documented_example, status_of};

#[tokio::test]
async fn the_documented_example_reaches_an_https_destination_signed_and_byte_compatible() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let receiver = TestReceiver::start().await;
    let (_, secret) = app.https_destination(&receiver.url(), None).await;
    let path = app.ingest_path(None).await;

    let a = app.ingest(&path, documented_example()).await;
    assert_eq!(a.status, 202, "{}", a.body);
    let id = a.body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("lead_"));

    receiver.wait_until(Duration::from_secs(10), "one delivery", |r| !r.is_empty()).await;
    let got = &receiver.requests()[0];
    assert_eq!(got.json(), documented_example(), "the body must carry exactly the documented fields and values");
    assert_eq!(got.headers["content-type"], "application/json");
    assert_eq!(got.headers["webhook-id"], id, "webhook-id is the lead id");
    let output = leadrelay_testkit::python::verify_signatures(&secret, &receiver.requests());
    assert!(output.contains("verified 1 of 1"), "{output}");
}

#[tokio::test]
async fn keys_in_any_case_and_the_2018_form_are_accepted() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let path = app.ingest_path(None).await;
    let upper_key_path =
        path.replace(path.rsplit('/').next().unwrap(), &path.rsplit('/').next().unwrap().to_uppercase());
    let a = app.ingest(&upper_key_path, json!({"LeadSource": "SPZA"})).await;
    assert_eq!(a.status, 202, "the ingest key matches in any case: {}", a.body);
    let lower = json!({"userDetails": {"firstName": "Some", "email": "Someone@Contoso.com"}, "leadSource": "AppSource (SPZA)-PLT|contoso.crm"});
    let a = app.ingest(&path, lower).await;
    assert_eq!(a.status, 202, "{}", a.body);
    let lead = app.get(&format!("/v1/leads/{}", a.body["id"].as_str().unwrap())).await.body;
    assert_eq!(lead["offer"], "contoso.crm", "offer resolved from the LeadSource offer part");
    assert_eq!(lead["offer_title"], "Contoso CRM");
    assert_eq!(lead["source"], "AppSource (SPZA)");
    assert_eq!(lead["action_code"], "PLT");
    assert_eq!(lead["stage"], "initial_interest");
    assert_eq!(lead["customer"]["email"], "Someone@Contoso.com", "raw values are kept");

    let cpp_2018 = json!({"OfferTitle": "Test Microsoft", "LeadSource": "Test run through MS Flow",
        "UserDetails": {"Company": "Contoso", "Country": "USA", "Email": "someone@contoso.com", "FirstName": "Some",
                        "LastName": "One", "Phone": "16175555555", "Title": "Esquire"}});
    let a = app.ingest(&path, cpp_2018).await;
    assert_eq!(a.status, 202, "{}", a.body);
    let lead = app.get(&format!("/v1/leads/{}", a.body["id"].as_str().unwrap())).await.body;
    assert_eq!(lead["stage"], "unclassified");
    assert_eq!(lead["offer"], serde_json::Value::Null);
}

#[tokio::test]
async fn the_offer_comes_from_the_key_binding_else_the_title() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let bound = app.ingest_path(Some("contoso.erp")).await;
    let a = app
        .ingest(&bound, json!({"LeadSource": "AzureMarketplace", "ActionCode": "INS", "OfferTitle": "Contoso CRM"}))
        .await;
    let lead = app.get(&format!("/v1/leads/{}", a.body["id"].as_str().unwrap())).await.body;
    assert_eq!(lead["offer"], "contoso.erp", "the key's binding wins");

    let unbound = app.ingest_path(None).await;
    let a = app
        .ingest(&unbound, json!({"LeadSource": "AzureMarketplace", "ActionCode": "INS", "OfferTitle": "contoso crm"}))
        .await;
    let lead = app.get(&format!("/v1/leads/{}", a.body["id"].as_str().unwrap())).await.body;
    assert_eq!(lead["offer"], "contoso.crm", "matched by title");
}

#[tokio::test]
async fn a_lead_for_an_unknown_offer_is_kept_and_goes_only_to_all_offer_destinations() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let all = TestReceiver::start().await;
    let crm_only = TestReceiver::start().await;
    app.https_destination(&all.url(), None).await;
    app.https_destination(&crm_only.url(), Some(&["contoso.crm"])).await;
    let path = app.ingest_path(None).await;
    let a = app
        .ingest(&path, json!({"LeadSource": "AzureMarketplace", "ActionCode": "INS", "OfferTitle": "Something New"}))
        .await;
    assert_eq!(a.status, 202);
    let id = a.body["id"].as_str().unwrap();
    let lead = app.wait_for_lead(id, "delivery", |d| status_of(d) == ["delivered"]).await;
    assert_eq!(lead["offer_title"], "Something New");
    assert_eq!(all.requests().len(), 1);
    assert!(crm_only.requests().is_empty());

    let a = app.ingest(&path, json!({"LeadSource": "AzureMarketplace-INS|contoso.crm"})).await;
    app.wait_for_lead(a.body["id"].as_str().unwrap(), "two deliveries", |d| status_of(d) == ["delivered", "delivered"])
        .await;
    assert_eq!(crm_only.requests().len(), 1);
}

#[tokio::test]
async fn a_marketplace_test_lead_is_flagged() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let path = app.ingest_path(None).await;
    let m = "MSFT_TEST_636573304831318844";
    let test_lead = json!({
        "UserDetails": {"FirstName": m, "LastName": m, "Email": format!("{m}@test.com"), "Phone": "1234567890",
                        "Country": "US", "Company": m, "Title": m},
        "LeadSource": "AzureMarketplace", "ActionCode": "INS", "OfferTitle": "Contoso Test", "Description": m
    });
    let a = app.ingest(&path, test_lead).await;
    let lead = app.get(&format!("/v1/leads/{}", a.body["id"].as_str().unwrap())).await.body;
    assert_eq!(lead["is_test"], true);
    assert_eq!(lead["customer"]["country_code"], "US");
}

#[tokio::test]
async fn the_native_api_takes_one_lead_or_a_batch_and_filters_the_list() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let one = json!({"publisher": "contoso", "lead_source": "AzurePortal-Create|contoso.erp", "customer": {"email": "a@fabrikam.com"}});
    let a = app.post("/v1/leads", one).await;
    assert_eq!(a.status, 202, "{}", a.body);
    assert!(a.body["id"].as_str().unwrap().starts_with("lead_"));

    let batch: Vec<_> = (0..3)
        .map(|i| json!({"publisher": "contoso", "source": "AzureMarketplace", "action": "StartTestDrive", "offer": "contoso.crm",
                         "customer": {"email": format!("user{i}@fabrikam.com")}}))
        .collect();
    let a = app.post("/v1/leads", json!(batch)).await;
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(a.body["ids"].as_array().unwrap().len(), 3);

    let trial = app.get("/v1/leads?stage=trial").await.body;
    assert_eq!(trial["items"].as_array().unwrap().len(), 3);
    let erp = app.get("/v1/leads?offer=contoso.erp&action=create").await.body;
    assert_eq!(erp["items"].as_array().unwrap().len(), 1);
    assert_eq!(erp["items"][0]["stage"], "active");
    let page = app.get("/v1/leads?limit=2").await.body;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let rest = app.get(&format!("/v1/leads?limit=2&cursor={}", page["next_cursor"].as_str().unwrap())).await.body;
    assert_eq!(rest["items"].as_array().unwrap().len(), 2);
    assert!(rest["next_cursor"].is_null());
    let future = app.get("/v1/leads?since=2999-01-01").await.body;
    assert!(future["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn an_edu_lead_is_stored_without_personal_data_and_not_sent_to_a_crm() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let receiver = TestReceiver::start().await;
    app.https_destination(&receiver.url(), None).await;
    let path = app.ingest_path(None).await;
    let student = json!({
        "UserDetails": {"FirstName": "Ada", "LastName": "Lovelace", "Email": "ada@math.university.EDU", "Phone": "123",
                        "Country": "UK", "Company": "University", "Title": "Student"},
        "LeadSource": "AppSource (SPZA)-PLT|contoso.crm", "Description": "please call me at home"
    });
    let a = app.ingest(&path, student).await;
    assert_eq!(a.status, 202, "{}", a.body);
    let lead = app.get(&format!("/v1/leads/{}", a.body["id"].as_str().unwrap())).await.body;
    assert_eq!(lead["pii_withheld"], true);
    let text = lead.to_string();
    for personal in ["Ada", "Lovelace", "ada@", "University", "Student", "call me"] {
        assert!(!text.contains(personal), "{personal} was stored: {text}");
    }
    assert_eq!(lead["customer"]["country"], "UK");
    assert_eq!(lead["offer"], "contoso.crm");
    assert!(lead["deliveries"].as_array().unwrap().is_empty(), "no CRM delivery for a withheld lead");
    let ordinary = app.ingest(&path, documented_example()).await;
    app.wait_for_lead(ordinary.body["id"].as_str().unwrap(), "delivery", |d| status_of(d) == ["delivered"]).await;
    assert_eq!(receiver.requests().len(), 1, "only the ordinary lead reached the receiver");
}

#[tokio::test]
async fn raw_values_reach_the_destination_exactly_as_received() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let receiver = TestReceiver::start().await;
    app.https_destination(&receiver.url(), None).await;
    let path = app.ingest_path(None).await;
    let mut lead = documented_example();
    lead["Description"] = json!("Campaigns: ");
    lead["UserDetails"]["Company"] = json!(" ");
    lead["UserDetails"]["FirstName"] = json!("  Some ");
    let a = app.ingest(&path, lead.clone()).await;
    assert_eq!(a.status, 202, "{}", a.body);
    receiver.wait_until(Duration::from_secs(10), "one delivery", |r| !r.is_empty()).await;
    let got = receiver.requests()[0].json();
    assert_eq!(got["Description"], "Campaigns: ");
    assert_eq!(got["UserDetails"]["Company"], " ");
    assert_eq!(got["UserDetails"]["FirstName"], "  Some ");
    let stored = app.get(&format!("/v1/leads/{}", a.body["id"].as_str().unwrap())).await.body;
    assert_eq!(stored["description"], "Campaigns: ");
    assert!(stored["customer_id"].is_string(), "matching still normalises: {stored}");
}

#[tokio::test]
async fn an_offer_id_in_the_lead_source_is_the_offer_even_when_it_is_not_registered() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let path = app.ingest_path(None).await;
    let offer_of = |body: serde_json::Value| {
        let app = &app;
        let path = path.clone();
        async move {
            let a = app.ingest(&path, body).await;
            assert_eq!(a.status, 202, "{}", a.body);
            app.get(&format!("/v1/leads/{}", a.body["id"].as_str().unwrap())).await.body
        }
    };
    let lead =
        offer_of(json!({"LeadSource": "AzureMarketplace-INS|contoso.unregistered", "OfferTitle": "Contoso CRM"})).await;
    assert_eq!(lead["offer"], "contoso.unregistered", "the named id wins over a title match");
    assert_eq!(lead["offer_title"], "Contoso CRM");
    let lead = offer_of(json!({"LeadSource": "AzureMarketplace-INS|fabrikam.crm", "OfferTitle": "Contoso ERP"})).await;
    assert_eq!(lead["offer"], "contoso.erp", "another publisher's id is ignored, the title still matches");
    let lead = offer_of(json!({"LeadSource": "AzureMarketplace-INS", "OfferTitle": " contoso erp "})).await;
    assert_eq!(lead["offer"], "contoso.erp", "with no offer named, the title decides");
    assert_eq!(lead["offer_title"], " contoso erp ", "and the title is kept as sent");
}

#[tokio::test]
async fn bodies_as_real_senders_write_them_are_read() {
    use std::io::Write;
    let app = TestApp::spawn().await;
    app.contoso().await;
    let path = app.ingest_path(None).await;
    let mut bom_json = b"\xEF\xBB\xBF".to_vec();
    bom_json.extend(crate::support::example_for("bom@fabrikam.com").to_string().into_bytes());
    let json_utf8 = ("content-type", "application/json; charset=utf-8");

    let a = crate::errors::send_with(&app, Method::POST, &path, &[json_utf8], bom_json.clone(), false).await;
    assert_eq!(a.status, 202, "a byte-order mark and a charset: {}", a.body);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&bom_json).unwrap();
    let gzip = gz.finish().unwrap();
    for coding in ["gzip", "GZIP ", "x-gzip"] {
        let a = crate::errors::send_with(
            &app,
            Method::POST,
            &path,
            &[json_utf8, ("content-encoding", coding)],
            gzip.clone(),
            false,
        )
        .await;
        assert_eq!(a.status, 202, "{coding}: {}", a.body);
    }
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zlib.write_all(&bom_json).unwrap();
    let a = crate::errors::send_with(
        &app,
        Method::POST,
        &path,
        &[("content-encoding", "deflate")],
        zlib.finish().unwrap(),
        false,
    )
    .await;
    assert_eq!(a.status, 202, "deflate: {}", a.body);

    let a = crate::errors::send_with(&app, Method::POST, &path, &[("content-encoding", "br")], bom_json.clone(), false)
        .await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (415, Some("unsupported_media_type")));

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"\xEF\xBB\xBFnot json at all").unwrap();
    let a = crate::errors::send_with(
        &app,
        Method::POST,
        &path,
        &[("content-encoding", "gzip")],
        gz.finish().unwrap(),
        false,
    )
    .await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (400, Some("invalid_json")), "{}", a.body);
    let a = crate::errors::send_with(
        &app,
        Method::POST,
        &path,
        &[("content-encoding", "gzip")],
        b"not gzip".to_vec(),
        false,
    )
    .await;
    assert_eq!(a.status, 400, "a body that does not inflate: {}", a.body);

    let native = json!({"publisher": "contoso", "lead_source": "SPZA", "customer": {"email": "gz@fabrikam.com"}});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(native.to_string().as_bytes()).unwrap();
    let a = crate::errors::send_with(
        &app,
        Method::POST,
        "/v1/leads",
        &[("content-encoding", "gzip")],
        gz.finish().unwrap(),
        true,
    )
    .await;
    assert_eq!(a.status, 202, "every JSON route inflates: {}", a.body);
    assert_eq!(app.lead_count().await, 6);
}
