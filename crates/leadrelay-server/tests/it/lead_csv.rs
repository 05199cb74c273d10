//! Lead list filters, CSV export and CSV import.

use reqwest::Method;
use serde_json::json;

use crate::support::{ADMIN, TestApp};

async fn export(app: &TestApp, query: &str) -> (String, Vec<csv::StringRecord>) {
    let res =
        app.client.get(format!("{}/v1/leads/export.csv{query}", app.base)).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = res.text().await.unwrap();
    let rows = csv::Reader::from_reader(text.as_bytes()).records().map(Result::unwrap).collect();
    (text, rows)
}

async fn import(app: &TestApp, query: &str, body: &str) -> serde_json::Value {
    let res = app
        .client
        .post(format!("{}/v1/leads/import.csv{query}", app.base))
        .bearer_auth(ADMIN)
        .header("content-type", "text/csv")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[tokio::test]
async fn the_list_filters_by_source_text_and_test_flag() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let post = |source: &str, email: &str, company: &str| json!({"publisher": "contoso", "lead_source": source, "customer": {"email": email, "company": company}});
    app.post("/v1/leads", post("AzurePortal-Create", "a@fabrikam.com", "Fabrikam 100%")).await;
    app.post("/v1/leads", post("AppSource (SPZA)-PLT", "b@woodgrove.com", "Woodgrove")).await;
    app.post(
        "/v1/leads",
        post("MSFT_TEST_636573304831318844-MSFT_TEST_636573304831318844|Contoso CRM", "c@x.com", "X"),
    )
    .await;
    let count = |body: serde_json::Value| body["items"].as_array().unwrap().len();
    assert_eq!(count(app.get("/v1/leads?source=AzurePortal").await.body), 1);
    assert_eq!(count(app.get("/v1/leads?source=AppSource").await.body), 1, "AppSource means AppSource (SPZA)");
    assert_eq!(count(app.get("/v1/leads?q=WOODGROVE").await.body), 1);
    assert_eq!(count(app.get("/v1/leads?q=100%25").await.body), 1, "whole words: 100");
    assert_eq!(count(app.get("/v1/leads?q=woodgrove%20b%40woodgrove.com").await.body), 1, "every word must match");
    assert_eq!(count(app.get("/v1/leads?q=woodgrove%20fabrikam").await.body), 0);
    assert_eq!(count(app.get("/v1/leads?q=wood").await.body), 0, "a part of a word is not a word");
    let no_word = app.get("/v1/leads?q=%25").await;
    assert_eq!((no_word.status, no_word.body["error"]["fields"][0]["path"].as_str()), (422, Some("q")));
    assert_eq!(count(app.get("/v1/leads?is_test=true").await.body), 1);
    assert_eq!(count(app.get("/v1/leads?is_test=false").await.body), 2);
    assert_eq!(app.get("/v1/leads?is_test=maybe").await.status, 422);
}

#[tokio::test]
async fn the_export_streams_every_matching_lead_across_pages_and_defuses_formulas() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    for batch in 0..3 {
        let leads: Vec<_> = (0..800)
            .map(|i| {
                json!({"publisher": "contoso", "lead_source": "AzureMarketplace-INS|contoso.crm",
                             "customer": {"email": format!("b{batch}-{i}@fabrikam.com")}})
            })
            .collect();
        assert_eq!(app.post("/v1/leads", json!(leads)).await.status, 202);
    }
    let tricky = json!({"publisher": "contoso", "lead_source": "AppSource (SPZA)-PLT|contoso.erp",
        "customer": {"email": "tricky@fabrikam.com", "company": "=HYPERLINK(\"http://x\")", "first_name": "Zoë"},
        "description": "line one, with a comma\nline \"two\""});
    assert_eq!(app.post("/v1/leads", tricky).await.status, 202);

    let (text, rows) = export(&app, "").await;
    assert_eq!(rows.len(), 2401, "every lead, past the 1,000-row page size");
    assert!(text.starts_with("id,received_at,publisher,offer,offer_title,lead_source,"));
    let t = rows.iter().find(|r| &r[11] == "tricky@fabrikam.com").unwrap();
    assert_eq!(&t[14], "'=HYPERLINK(\"http://x\")", "a formula is defused");
    assert_eq!(&t[16], "line one, with a comma\nline \"two\"");
    assert_eq!(&t[9], "Zoë");
    assert_eq!(&t[5], "AppSource (SPZA)-PLT|contoso.erp");

    let (_, erp) = export(&app, "?offer=contoso.erp").await;
    assert_eq!(erp.len(), 1);

    // Round trip: importing our own export again stores every row, each as a duplicate.
    let (small, _) = export(&app, "?offer=contoso.erp").await;
    let answer = import(&app, "?publisher=contoso", &small).await;
    assert_eq!((answer["imported"].as_u64(), answer["duplicates"].as_u64()), (Some(1), Some(1)), "{answer}");
    let lead = &app.get("/v1/leads?offer=contoso.erp&limit=1").await.body["items"][0];
    assert_eq!(lead["customer"]["company"], "=HYPERLINK(\"http://x\")", "the apostrophe is removed again");
}

#[tokio::test]
async fn an_import_of_a_referrals_export_reports_bad_rows_and_keeps_the_good_ones() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let csv = "First Name,Last Name,Email Address,Company Name,Country/Region,Offer Name,Lead Source,Action Code,Notes\n\
               Some,One,someone@fabrikam.com,Fabrikam,USA,Contoso CRM,AzureMarketplace,INS,call me\n\
               Bad,Email,not-an-email,Fabrikam,USA,Contoso CRM,AzureMarketplace,INS,\n\
               No,Source,nosource@fabrikam.com,Fabrikam,USA,Contoso CRM,,INS,\n\
               \"Quoted, Name\",Two,two@fabrikam.com,Fabrikam,US,Contoso ERP,AppSource (SPZA),PLT,\n";
    let answer = import(&app, "?publisher=contoso", csv).await;
    assert_eq!(answer["imported"], 2, "{answer}");
    let failed = answer["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 2);
    assert_eq!((failed[0]["line"].as_u64(), failed[0]["errors"][0]["path"].as_str()), (Some(3), Some("email")));
    assert_eq!((failed[1]["line"].as_u64(), failed[1]["errors"][0]["path"].as_str()), (Some(4), Some("lead_source")));
    let leads = app.get("/v1/leads?q=fabrikam").await.body;
    let items = leads["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let quoted = items.iter().find(|l| l["customer"]["email"] == "two@fabrikam.com").unwrap();
    assert_eq!(quoted["customer"]["first_name"], "Quoted, Name");
    assert_eq!(quoted["offer"], "contoso.erp", "offer resolved from its name");
    assert_eq!(quoted["stage"], "initial_interest");

    let no_header = import_status(&app, "?publisher=contoso", "a,b\n1,2\n").await;
    assert_eq!(no_header, 422);
    assert_eq!(import_status(&app, "", csv).await, 422, "the admin must name the publisher");
    assert_eq!(import_status(&app, "?publisher=nobody", csv).await, 404);
}

async fn import_status(app: &TestApp, query: &str, body: &str) -> u16 {
    let headers = [("content-type", "text/csv")];
    let path = format!("/v1/leads/import.csv{query}");
    crate::errors::send_with(app, Method::POST, &path, &headers, body.as_bytes().to_vec(), true).await.status
}

#[tokio::test]
async fn an_import_keeps_cells_as_written_skips_a_byte_order_mark_and_refuses_json() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let csv =
        "\u{feff}Email,Lead Source,Notes,Company\nsome@fabrikam.com,AzureMarketplace-INS|contoso.crm,Campaigns: , \n";
    let answer = import(&app, "?publisher=contoso", csv).await;
    assert_eq!(answer["imported"], 1, "{answer}");
    let lead = &app.get("/v1/leads?q=fabrikam").await.body["items"][0];
    assert_eq!(lead["description"], "Campaigns: ");
    assert_eq!(lead["customer"]["company"], " ");
    assert_eq!(lead["offer"], "contoso.crm");

    let path = "/v1/leads/import.csv?publisher=contoso";
    let json = [("content-type", "application/json")];
    let a = crate::errors::send_with(&app, Method::POST, path, &json, csv.as_bytes().to_vec(), true).await;
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (415, Some("unsupported_media_type")));
    for lenient in ["text/plain; charset=utf-8", "application/vnd.ms-excel", "application/x-www-form-urlencoded"] {
        let a = crate::errors::send_with(
            &app,
            Method::POST,
            path,
            &[("content-type", lenient)],
            csv.as_bytes().to_vec(),
            true,
        )
        .await;
        assert_eq!(a.status, 200, "{lenient}: {}", a.body);
    }
    let bad_row = "email,lead_source\nnot-an-email,SPZA\nok@fabrikam.com,SPZA-PLT|fabrikam.crm\n";
    let answer = import(&app, "?publisher=contoso", bad_row).await;
    assert_eq!(answer["failed"][0]["errors"][0]["path"], "email", "{answer}");
    assert_eq!(answer["imported"], 1, "{answer}");
}
