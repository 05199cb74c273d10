//! The published contract: `GET /openapi.json` (OpenAPI 3.1) and `GET /docs` (the same
//! document as a page for people, rendered here, with no script and nothing fetched from
//! elsewhere).
//!
//! The document is generated from the handlers' `#[utoipa::path]` attributes and the `…In` /
//! `…Out` types, collected by the router itself (`utoipa_axum::routes!`), so a route cannot be
//! served without being described. [`finish`] then adds what every route shares, by rule: the
//! bearer scheme, and the error answers each operation can give (all in the error envelope).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Extension;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Map, Value, json};
use utoipa::OpenApi;
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};

/// The base document the routes are added to.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "leadrelay",
        description = "Receives Microsoft commercial marketplace leads and relays them to the destinations each \
                       publisher configured. Every error answers the envelope `ErrorOut`; see docs/API.md for the rules."
    ),
    tags(
        (name = "ingest", description = "The marketplace's HTTPS-endpoint route"),
        (name = "leads", description = "Native lead API, the lead list and CSV"),
        (name = "publishers", description = "Publishers, offers, ingest keys and tokens"),
        (name = "destinations", description = "Where leads go"),
        (name = "deliveries", description = "Delivery state, dead letters, retry"),
        (name = "customers", description = "Merged buyers"),
        (name = "marketplace", description = "The marketplace operator's routes"),
        (name = "audit", description = "Who read, exported or changed what"),
        (name = "privacy", description = "A person's data: export or erase everything held about an address"),
        (name = "people", description = "A publisher's sales team: users, sign-in sessions (cookie and CSRF token), invitations"),
        (name = "health", description = "Liveness and readiness"),
        (name = "metrics", description = "Prometheus metrics"),
        (name = "docs", description = "This document"),
    ),
    components(schemas(crate::http::error::ErrorOut))
)]
pub struct ApiDoc;

/// The finished document, as served.
pub struct ApiDocument {
    /// `/openapi.json`
    pub json: String,
    /// `/docs`
    pub html: String,
}

/// A string schema limited to `values`.
pub fn string_enum<'a>(values: impl IntoIterator<Item = &'a str>) -> Object {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values.into_iter().collect::<Vec<_>>())).build()
}

/// Lets `schema` also be `null`.
pub fn make_nullable(schema: &mut Object) {
    schema.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
    if let Some(values) = &mut schema.enum_values {
        values.push(Value::Null);
    }
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
    })
}

/// Adds the bearer scheme and, to every operation, the error answers it can give:
/// 500/503 (a bug, storage down or the request timeout), 414/431 (request head too large)
/// everywhere; 401/403 where a token is needed; 404 where a token or a path parameter names
/// something; 400/413/415/422 where there is a body; 422 where there are query parameters.
/// `kinds` are this build's destination kinds (the `kind` of a new destination).
pub fn finish(api: utoipa::openapi::OpenApi, kinds: &[&str]) -> ApiDocument {
    let mut doc = serde_json::to_value(&api).expect("the document serialises");
    doc["components"]["securitySchemes"] = json!({
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "The admin token, a publisher token (lr_pub_…) or a marketplace token (lr_mkt_…)"},
        "session": {"type": "apiKey", "in": "cookie", "name": "leadrelay_session",
                    "description": "A person's session from POST /v1/sessions. Every route a publisher token may call \
                                    accepts it in place of a bearer token, within the person's role; a change (POST, \
                                    PUT, PATCH, DELETE) must also send X-CSRF-Token with the session's csrf_token."}
    });
    if let Some(kind) = doc.pointer_mut("/components/schemas/DestinationIn/properties/kind") {
        kind["enum"] = json!(kinds);
    }
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else { continue };
            for op in item.values_mut() {
                add_errors(path, op);
            }
        }
    }
    let json = serde_json::to_string_pretty(&doc).expect("the document serialises");
    ApiDocument { html: render_html(&doc), json }
}

fn add_errors(path: &str, op: &mut Value) {
    let secured = op.get("security").and_then(Value::as_array).is_some_and(|s| !s.is_empty());
    let params = op.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
    let has_query = params.iter().any(|p| p["in"] == "query");
    let has_body = op.get("requestBody").is_some();
    let mut add = |status: &str, description: &str| {
        let responses = op["responses"].as_object_mut().expect("every operation has responses");
        responses.entry(status.to_owned()).or_insert_with(|| error_response(description));
    };
    if has_body {
        add("400", "The body is not JSON");
        add("413", "The body is larger than the route accepts (after decompression)");
        add("415", "The body's Content-Type or Content-Encoding is not accepted");
        add("422", "The body breaks a rule; `fields` names each path");
    }
    if has_query {
        add("422", "A query parameter is unknown or breaks a rule");
    }
    if secured {
        add("401", "Missing, wrong or revoked bearer token, or no live session");
        add(
            "403",
            "The token or the person's role may not do this, or a change made with the session cookie lacks X-CSRF-Token",
        );
    }
    if secured || path.contains('{') {
        add("404", "Not found (or not yours)");
    }
    add("414", "The path and query are too long");
    add("431", "The request's headers are too large");
    add("500", "A bug; the log has the cause");
    add("503", "Storage unavailable, or the request took too long; retry");
}

/// `GET /openapi.json`: this document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "docs",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
pub async fn openapi_json(Extension(doc): Extension<Arc<ApiDocument>>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], doc.json.clone()).into_response()
}

/// `GET /docs`: this document as a page.
#[utoipa::path(
    get, path = "/docs", tag = "docs",
    responses((status = 200, description = "Every route and schema, as HTML", content_type = "text/html", body = String))
)]
pub async fn docs_page(Extension(doc): Extension<Arc<ApiDocument>>) -> Html<String> {
    Html(doc.html.clone())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `#/components/schemas/X` as a link to X's section; anything else as compact JSON.
fn schema_ref(schema: &Value) -> String {
    if let Some(name) = schema.get("$ref").and_then(Value::as_str).and_then(|r| r.rsplit('/').next()) {
        return format!("<a href=\"#schema-{0}\">{0}</a>", esc(name));
    }
    if schema.get("type") == Some(&json!("array"))
        && let Some(items) = schema.get("items")
    {
        return format!("array of {}", schema_ref(items));
    }
    format!("<code>{}</code>", esc(&schema.to_string()))
}

fn content_list(content: Option<&Value>) -> String {
    let Some(content) = content.and_then(Value::as_object) else { return String::new() };
    content
        .iter()
        .map(|(ty, media)| {
            format!("<code>{}</code> {}", esc(ty), media.get("schema").map(schema_ref).unwrap_or_default())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn render_html(doc: &Value) -> String {
    let mut out = String::new();
    let title = doc.pointer("/info/title").and_then(Value::as_str).unwrap_or("API");
    let version = doc.pointer("/info/version").and_then(Value::as_str).unwrap_or("");
    let intro = doc.pointer("/info/description").and_then(Value::as_str).unwrap_or("");
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} API</title>\
         <style>body{{font:15px/1.45 system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;color:#222}}\
         h2{{border-bottom:1px solid #ccc;margin-top:2em}}.op{{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;margin:1em 0}}\
         .m{{font-weight:bold;text-transform:uppercase;display:inline-block;min-width:4.5em}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}}\
         pre{{background:#f6f6f6;padding:.6em;overflow:auto}}code{{background:#f3f3f3}}</style></head><body>\
         <h1>{t} API <small>{v}</small></h1><p>{i}</p>\
         <p>The machine-readable document is at <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI 3.1).</p><h2>Routes</h2>",
        t = esc(title),
        v = esc(version),
        i = esc(intro)
    );
    let empty = Map::new();
    let paths = doc["paths"].as_object().unwrap_or(&empty);
    for (path, item) in paths {
        let Some(item) = item.as_object() else { continue };
        for (method, op) in item {
            let summary = op.get("summary").and_then(Value::as_str).unwrap_or("");
            let description = op.get("description").and_then(Value::as_str).unwrap_or("");
            let secured = op.get("security").and_then(Value::as_array).is_some_and(|s| !s.is_empty());
            let _ = write!(
                out,
                "<div class=\"op\"><span class=\"m\">{}</span> <code>{}</code>{}<p>{}</p>",
                esc(method),
                esc(path),
                if secured { " &middot; bearer token" } else { " &middot; no token" },
                esc(&format!("{summary} {description}").replace('`', ""))
            );
            if let Some(params) = op.get("parameters").and_then(Value::as_array) {
                out.push_str("<table><tr><th>Parameter</th><th>In</th><th>Schema</th><th>About</th></tr>");
                for p in params {
                    let _ = write!(
                        out,
                        "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(p["name"].as_str().unwrap_or("")),
                        if p["required"] == true { " (required)" } else { "" },
                        esc(p["in"].as_str().unwrap_or("")),
                        p.get("schema").map(schema_ref).unwrap_or_default(),
                        esc(p["description"].as_str().unwrap_or(""))
                    );
                }
                out.push_str("</table>");
            }
            if let Some(body) = op.get("requestBody") {
                let _ = write!(out, "<p>Body: {}</p>", content_list(body.get("content")));
            }
            out.push_str("<table><tr><th>Status</th><th>Answer</th><th>Body</th></tr>");
            if let Some(responses) = op.get("responses").and_then(Value::as_object) {
                for (status, r) in responses {
                    let _ = write!(
                        out,
                        "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(status),
                        esc(r["description"].as_str().unwrap_or("")),
                        content_list(r.get("content"))
                    );
                }
            }
            out.push_str("</table></div>");
        }
    }
    out.push_str("<h2>Schemas</h2>");
    if let Some(schemas) = doc.pointer("/components/schemas").and_then(Value::as_object) {
        for (name, schema) in schemas {
            let pretty = serde_json::to_string_pretty(schema).unwrap_or_default();
            let _ = write!(out, "<h3 id=\"schema-{0}\">{0}</h3><pre>{1}</pre>", esc(name), esc(&pretty));
        }
    }
    out.push_str("</body></html>");
    out
}
