//! The published contract: `/openapi.json` describes every route, `/docs` shows it.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;

use crate::support::TestApp;

/// Every route the router serves, as `METHOD path`.
const ROUTES: [&str; 50] = [
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "GET /openapi.json",
    "GET /docs",
    "POST /v1/publishers",
    "PUT /v1/publishers/{publisher}/offers/{offer_id}",
    "GET /v1/publishers/{publisher}/offers/{offer_id}",
    "POST /v1/publishers/{publisher}/offers/{offer_id}/publish",
    "POST /v1/publishers/{publisher}/destinations",
    "GET /v1/publishers/{publisher}/destinations",
    "POST /v1/publishers/{publisher}/ingest-keys",
    "DELETE /v1/publishers/{publisher}/ingest-keys/{id}",
    "POST /v1/publishers/{publisher}/tokens",
    "DELETE /v1/publishers/{publisher}/tokens/{id}",
    "POST /v1/marketplace/tokens",
    "POST /v1/ingest/microsoft/{key}",
    "POST /v1/marketplace/events",
    "POST /v1/leads",
    "GET /v1/leads",
    "GET /v1/leads/export.csv",
    "POST /v1/leads/import.csv",
    "GET /v1/leads/{id}",
    "GET /v1/customers/{id}",
    "POST /v1/customers/{id}/split",
    "GET /v1/destinations/{id}",
    "POST /v1/destinations/{id}/enable",
    "POST /v1/destinations/{id}/disable",
    "POST /v1/destinations/{id}/replay",
    "POST /v1/destinations/{id}/validate",
    "GET /v1/deliveries",
    "GET /v1/deliveries/{id}",
    "POST /v1/deliveries/{id}/retry",
    "GET /v1/audit",
    "GET /v1/privacy/export",
    "POST /v1/privacy/erase",
    "POST /v1/publishers/{publisher}/users",
    "GET /v1/publishers/{publisher}/users",
    "POST /v1/sessions",
    "GET /v1/sessions/current",
    "DELETE /v1/sessions/current",
    "POST /v1/invitations/accept",
    "GET /v1/publishers/{publisher}/settings/sales",
    "PUT /v1/publishers/{publisher}/settings/sales",
    "GET /v1/publishers/{publisher}/opportunities",
    "GET /v1/opportunities/{id}",
    "PATCH /v1/opportunities/{id}",
    "POST /v1/opportunities/{id}/activities",
    "POST /v1/opportunities/{id}/checklist/{item}",
    "GET /v1/publishers/{publisher}/kpis",
];

async fn document(app: &TestApp) -> Value {
    let a = app.send(Method::GET, "/openapi.json", None, false).await;
    assert_eq!(a.status, 200, "served without a token");
    a.body
}

#[tokio::test]
async fn the_document_describes_every_route_with_its_parameters_bodies_and_errors() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let mut described = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            described.insert(format!("{} {path}", method.to_uppercase()));
            for p in path.split('/').filter(|s| s.starts_with('{')) {
                let name = p.trim_matches(|c| c == '{' || c == '}');
                let params = op["parameters"].as_array().unwrap_or_else(|| panic!("{method} {path} has no parameters"));
                assert!(params.iter().any(|x| x["name"] == name && x["in"] == "path"), "{method} {path} lacks {name}");
            }
            let responses = op["responses"].as_object().unwrap();
            for (status, r) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        r.pointer("/content/application~1json/schema/$ref").and_then(Value::as_str),
                        Some("#/components/schemas/ErrorOut"),
                        "{method} {path} {status} is not the envelope"
                    );
                }
            }
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let public = [
                "/healthz",
                "/readyz",
                "/openapi.json",
                "/docs",
                "/v1/ingest/microsoft/{key}",
                "/v1/sessions",
                "/v1/invitations/accept",
            ];
            assert_eq!(secured, !public.contains(&path.as_str()), "{method} {path} security");
            if secured {
                assert!(responses.contains_key("401") && responses.contains_key("403"), "{method} {path}");
            }
            if op.get("requestBody").is_some() {
                for s in ["400", "413", "415", "422"] {
                    assert!(responses.contains_key(s), "{method} {path} lacks {s}");
                }
            }
        }
    }
    let expected: BTreeSet<String> = ROUTES.iter().map(|r| (*r).to_owned()).collect();
    assert_eq!(described, expected);
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let session = &doc["components"]["securitySchemes"]["session"];
    assert_eq!((session["in"].as_str(), session["name"].as_str()), (Some("cookie"), Some("leadrelay_session")));
    let sign_in = &doc["paths"]["/v1/sessions"]["post"]["responses"];
    for status in ["201", "401", "422", "429"] {
        assert!(sign_in.get(status).is_some(), "POST /v1/sessions lacks {status}");
    }
    assert!(sign_in["429"]["headers"].get("Retry-After").is_some(), "{sign_in}");
    let leads = &doc["paths"]["/v1/leads"]["get"]["parameters"];
    assert!(leads.as_array().unwrap().iter().any(|p| p["name"] == "limit" && p["in"] == "query"));
    let csv_in = &doc["paths"]["/v1/leads/import.csv"]["post"]["requestBody"]["content"];
    assert!(csv_in.get("text/csv").is_some(), "{csv_in}");
    let csv_out = &doc["paths"]["/v1/leads/export.csv"]["get"]["responses"]["200"]["content"];
    assert!(csv_out.get("text/csv").is_some(), "{csv_out}");
    let kinds = doc.pointer("/components/schemas/DestinationIn/properties/kind/enum").unwrap();
    assert!(kinds.as_array().unwrap().contains(&Value::from("https")), "this build's kinds: {kinds}");
    let code = doc.pointer("/components/schemas/ErrorCode/enum").unwrap();
    assert!(code.as_array().unwrap().contains(&Value::from("invalid_json")));
}

#[tokio::test]
async fn a_query_parameter_the_document_does_not_list_is_refused() {
    let app = TestApp::spawn().await;
    let a = app.get("/v1/leads?limt=5").await;
    assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("limt")));
    assert!(a.body["error"]["fields"][0]["message"].as_str().unwrap().contains("limit"), "{}", a.body);
    assert_eq!(app.get("/v1/leads/export.csv?limit=5").await.status, 422, "the export takes no limit");
}

#[tokio::test]
async fn the_docs_page_shows_every_route_and_schema_without_fetching_anything() {
    let app = TestApp::spawn().await;
    let res = app.client.get(format!("{}/docs", app.base)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = res.text().await.unwrap();
    for route in ROUTES {
        let (_, path) = route.split_once(' ').unwrap();
        assert!(html.contains(&format!("<code>{path}</code>")), "{route} missing from the page");
    }
    assert!(html.contains("id=\"schema-LeadOut\"") && html.contains("id=\"schema-ErrorOut\""));
    assert!(
        !html.contains("<script") && !html.contains("src=\"http") && !html.contains("href=\"http"),
        "self-contained"
    );
}
