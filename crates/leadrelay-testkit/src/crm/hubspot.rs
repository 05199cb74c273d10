//! A fake HubSpot CRM API serving `POST /crm/v3/objects/contacts/batch/upsert`, the one call
//! the `hubspot` destination makes. It holds the request to what HubSpot documents (method,
//! path, `Authorization: Bearer <private app token>`, a JSON body of `inputs` with `idProperty:
//! "email"`, `id` and string `properties` that exist in the portal), keeps contacts by email so a
//! second upsert updates the first, records every request, and can be told to answer each
//! documented error. Anything HubSpot would refuse as malformed is answered 400 and listed in
//! [`FakeHubspot::violations`], so a test can assert there were none.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// The private app token the fake accepts (shaped like HubSpot's).
pub const ACCESS_TOKEN: &str = "pat-na1-3f6c2a10-7d4e-4b8e-9a51-0c2d8e4f6a7b";
/// The one path it serves.
pub const UPSERT_PATH: &str = "/crm/v3/objects/contacts/batch/upsert";
/// Default contact properties every portal has (a subset of HubSpot's).
pub const DEFAULT_PROPERTIES: [&str; 14] = [
    "email",
    "firstname",
    "lastname",
    "phone",
    "company",
    "jobtitle",
    "country",
    "message",
    "website",
    "city",
    "state",
    "zip",
    "lifecyclestage",
    "hs_lead_status",
];

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: HashMap<String, String>,
    /// Raw body.
    pub body: String,
}

impl Recorded {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

/// A contact as the fake portal holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// HubSpot's record id.
    pub id: u64,
    /// Property values, merged over every upsert.
    pub properties: BTreeMap<String, String>,
}

#[derive(Clone)]
struct Scripted {
    status: u16,
    retry_after: Option<u64>,
}

#[derive(Default)]
struct State {
    requests: Vec<Recorded>,
    violations: Vec<String>,
    contacts: HashMap<String, Contact>,
    custom_properties: HashSet<String>,
    next_id: u64,
    once: VecDeque<Scripted>,
    always: Option<Scripted>,
}

/// The fake; stops when dropped.
pub struct FakeHubspot {
    state: Arc<Mutex<State>>,
    addr: std::net::SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FakeHubspot {
    /// Starts on a free port, with a portal that has HubSpot's default contact properties.
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State { next_id: 501, ..State::default() }));
        let s = Arc::clone(&state);
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let s = Arc::clone(&s);
            async move { handle(&mut s.lock().unwrap(), &method, &uri, &headers, &body) }
        });
        let (addr, stop) = crate::serve(app).await;
        Self { state, addr, _stop: stop }
    }

    /// The base URL to configure.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates a custom contact property in the portal.
    pub fn define_property(&self, name: &str) {
        self.state.lock().unwrap().custom_properties.insert(name.to_owned());
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// What HubSpot would have refused as malformed, one line per problem.
    pub fn violations(&self) -> Vec<String> {
        self.state.lock().unwrap().violations.clone()
    }

    /// The contact with this email, if the portal has one.
    pub fn contact(&self, email: &str) -> Option<Contact> {
        self.state.lock().unwrap().contacts.get(&email.to_lowercase()).cloned()
    }

    /// How many contacts the portal has.
    pub fn contact_count(&self) -> usize {
        self.state.lock().unwrap().contacts.len()
    }

    /// Answer the next well-formed, authorised upsert with HubSpot's documented error for
    /// `status` (400 invalid email, 401, 403 missing scopes, 409 conflict, 429 rate limit, 5xx),
    /// with `Retry-After` when given.
    pub fn respond_next(&self, status: u16, retry_after: Option<u64>) {
        self.state.lock().unwrap().once.push_back(Scripted { status, retry_after });
    }

    /// Answer every well-formed, authorised upsert that way until [`FakeHubspot::heal`].
    pub fn respond_always(&self, status: u16, retry_after: Option<u64>) {
        self.state.lock().unwrap().always = Some(Scripted { status, retry_after });
    }

    /// Back to normal answers.
    pub fn heal(&self) {
        let mut st = self.state.lock().unwrap();
        st.once.clear();
        st.always = None;
    }
}

fn answer(status: u16, body: &serde_json::Value, retry_after: Option<u64>) -> Response {
    let mut r = (StatusCode::from_u16(status).expect("a valid status"), axum::Json(body.clone())).into_response();
    if let Some(s) = retry_after {
        r.headers_mut().insert("retry-after", HeaderValue::from_str(&s.to_string()).expect("digits"));
    }
    r
}

fn error_body(category: &str, message: &str) -> serde_json::Value {
    serde_json::json!({"status": "error", "message": message, "correlationId": "1f6b3b4e-9c2a-4d0e-8f21-6a7c5d3e2b10", "category": category})
}

/// HubSpot's v3 validation error: the per-property results are a JSON string in the message.
fn property_errors(results: &[serde_json::Value]) -> serde_json::Value {
    let detail = serde_json::Value::Array(results.to_vec()).to_string();
    error_body("VALIDATION_ERROR", &format!("Property values were not valid: {detail}"))
}

/// The documented answer for a scripted status.
fn documented(status: u16, email: &str) -> serde_json::Value {
    match status {
        400 => property_errors(&[
            serde_json::json!({"isValid": false, "message": format!("Email address {email} is invalid"),
            "error": "INVALID_EMAIL", "name": "email"}),
        ]),
        401 => error_body(
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        ),
        403 => {
            let mut b = error_body(
                "MISSING_SCOPES",
                "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.",
            );
            b["errors"] = serde_json::json!([{"message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": ["crm.objects.contacts.write"]}}]);
            b
        }
        409 => error_body("CONFLICT", "Contact already exists. Existing ID: 501"),
        429 => serde_json::json!({"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT", "correlationId": "c033cdaa-2c40-4a64-ae48-b4cec88dad24",
            "policyName": "TEN_SECONDLY_ROLLING", "groupName": "publicapi:private-app:api-calls"}),
        _ => error_body("INTERNAL_ERROR", "internal error"),
    }
}

fn malformed(st: &mut State, status: u16, rule: &str) -> Response {
    st.violations.push(rule.to_owned());
    answer(status, &error_body("VALIDATION_ERROR", &format!("fake HubSpot: {rule}")), None)
}

fn handle(st: &mut State, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Response {
    st.requests.push(Recorded {
        method: method.to_string(),
        path: uri.path_and_query().map_or_else(|| uri.path().to_owned(), ToString::to_string),
        headers: headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect(),
        body: String::from_utf8_lossy(body).into_owned(),
    });
    if uri.path() != UPSERT_PATH {
        st.violations.push(format!("no route for {}", uri.path()));
        return answer(404, &error_body("OBJECT_NOT_FOUND", "resource not found"), None);
    }
    if method != Method::POST {
        return malformed(st, 405, "the batch upsert takes POST");
    }
    if uri.query().is_some() {
        return malformed(st, 400, "the batch upsert takes no query parameters (and tokens never go in URLs)");
    }
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {ACCESS_TOKEN}")) {
        return answer(401, &documented(401, ""), None);
    }
    if !headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("application/json")) {
        return malformed(st, 415, "Content-Type must be application/json");
    }
    let json: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return malformed(st, 400, "the body is not JSON"),
    };
    let inputs = match check_shape(&json) {
        Ok(inputs) => inputs,
        Err(rule) => return malformed(st, 400, &rule),
    };
    let missing: Vec<serde_json::Value> = inputs
        .iter()
        .flat_map(|(_, props)| props.keys())
        .filter(|k| !DEFAULT_PROPERTIES.contains(&k.as_str()) && !st.custom_properties.contains(*k))
        .map(|k| {
            serde_json::json!({"isValid": false, "message": format!("Property \"{k}\" does not exist"),
                "error": "PROPERTY_DOESNT_EXIST", "name": k, "localizedErrorMessage": format!("Property \"{k}\" does not exist")})
        })
        .collect();
    if !missing.is_empty() {
        return answer(400, &property_errors(&missing), None);
    }
    let first_email = inputs[0].0.clone();
    let scripted = st.once.pop_front().or_else(|| st.always.clone());
    if let Some(Scripted { status, retry_after }) = scripted {
        return answer(status, &documented(status, &first_email), retry_after);
    }
    if let Some((email, _)) = inputs.iter().find(|(email, _)| !email_shaped(email)) {
        return answer(400, &documented(400, email), None);
    }
    let mut results = Vec::new();
    for (email, props) in inputs {
        let key = email.to_lowercase();
        let is_new = !st.contacts.contains_key(&key);
        if is_new {
            let id = st.next_id;
            st.next_id += 1;
            st.contacts.insert(key.clone(), Contact { id, properties: BTreeMap::new() });
        }
        let contact = st.contacts.get_mut(&key).expect("just inserted");
        contact.properties.insert("email".to_owned(), email.clone());
        contact.properties.extend(props);
        results.push(serde_json::json!({"id": contact.id.to_string(), "new": is_new, "properties": contact.properties,
            "createdAt": "2026-11-23T10:00:00.000Z", "updatedAt": "2026-11-23T10:00:00.000Z", "archived": false}));
    }
    answer(
        200,
        &serde_json::json!({"status": "COMPLETE", "results": results,
            "startedAt": "2026-11-23T10:00:00.000Z", "completedAt": "2026-11-23T10:00:00.100Z"}),
        None,
    )
}

fn email_shaped(e: &str) -> bool {
    e.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.contains('@'))
}

type Inputs = Vec<(String, BTreeMap<String, String>)>;

/// The documented body: `{"inputs": [...]}` with 1-100 inputs, each `{"idProperty": "email",
/// "id": <email>, "properties": {<name>: <string>}}` (and optionally `objectWriteTraceId`).
fn check_shape(json: &serde_json::Value) -> Result<Inputs, String> {
    let top = json.as_object().ok_or("the body must be a JSON object")?;
    if let Some(k) = top.keys().find(|k| k.as_str() != "inputs") {
        return Err(format!("unknown top-level key {k}"));
    }
    let inputs = top.get("inputs").and_then(|i| i.as_array()).ok_or("inputs must be an array")?;
    if inputs.is_empty() || inputs.len() > 100 {
        return Err(format!("a batch holds 1-100 inputs, not {}", inputs.len()));
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (i, input) in inputs.iter().enumerate() {
        let input = input.as_object().ok_or(format!("inputs[{i}] must be an object"))?;
        if let Some(k) =
            input.keys().find(|k| !["idProperty", "id", "properties", "objectWriteTraceId"].contains(&k.as_str()))
        {
            return Err(format!("inputs[{i}] has an unknown key {k}"));
        }
        if input.get("idProperty").and_then(|v| v.as_str()) != Some("email") {
            return Err(format!("inputs[{i}].idProperty must be \"email\" to upsert by email"));
        }
        let id = input.get("id").and_then(|v| v.as_str()).filter(|v| !v.is_empty());
        let id = id.ok_or(format!("inputs[{i}].id must be the contact's email"))?;
        if !seen.insert(id.to_lowercase()) {
            return Err("Duplicate IDs found in batch input".to_owned());
        }
        let props = input.get("properties").and_then(|v| v.as_object());
        let props = props.ok_or(format!("inputs[{i}].properties must be an object"))?;
        let mut values = BTreeMap::new();
        for (k, v) in props {
            let v = v.as_str().ok_or(format!("inputs[{i}].properties.{k} must be a string"))?;
            values.insert(k.clone(), v.to_owned());
        }
        if values.get("email").is_some_and(|e| !e.eq_ignore_ascii_case(id)) {
            return Err(format!("inputs[{i}].properties.email differs from its id"));
        }
        out.push((id.to_owned(), values));
    }
    Ok(out)
}
