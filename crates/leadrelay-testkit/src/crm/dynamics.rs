//! A fake Microsoft identity platform (`POST /{tenant}/oauth2/v2.0/token`) and Dataverse
//! (`POST /api/data/v9.2/leads`) on one port. It issues tokens, refuses unknown ones with 401,
//! records every request, and can answer the documented errors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Path.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: HashMap<String, String>,
    /// Raw body.
    pub body: String,
}

impl Recorded {
    /// The body as form pairs (token requests).
    pub fn form(&self) -> HashMap<String, String> {
        super::form_pairs(self.body.as_bytes()).into_iter().collect()
    }

    /// The body as JSON (lead requests).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

#[derive(Default)]
struct State {
    token_requests: Vec<Recorded>,
    lead_requests: Vec<Recorded>,
    valid_tokens: Vec<String>,
    issued: u32,
    token_error: Option<(u16, String, u64)>,
    lead_answer: Option<(u16, String, Option<u64>)>,
}

/// The fake; stops when dropped.
pub struct FakeDynamics {
    state: Arc<Mutex<State>>,
    addr: std::net::SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn record(path: String, headers: &HeaderMap, body: &Bytes) -> Recorded {
    Recorded {
        path,
        headers: headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect(),
        body: String::from_utf8_lossy(body).into_owned(),
    }
}

impl FakeDynamics {
    /// Starts on a free port.
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let (s1, s2) = (Arc::clone(&state), Arc::clone(&state));
        let app = axum::Router::new()
            .route(
                "/{tenant}/oauth2/v2.0/token",
                post(move |Path(tenant): Path<String>, headers: HeaderMap, body: Bytes| {
                    let s = Arc::clone(&s1);
                    async move {
                        let mut st = s.lock().unwrap();
                        st.token_requests.push(record(format!("/{tenant}/oauth2/v2.0/token"), &headers, &body));
                        if let Some((status, error, code)) = st.token_error.clone() {
                            let body = serde_json::json!({"error": error, "error_description": format!("AADSTS{code}: refused."), "error_codes": [code]});
                            return (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
                        }
                        st.issued += 1;
                        let token = format!("fake-token-{}", st.issued);
                        st.valid_tokens.push(token.clone());
                        axum::Json(serde_json::json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}))
                            .into_response()
                    }
                }),
            )
            .route(
                "/api/data/v9.2/leads",
                post(move |headers: HeaderMap, body: Bytes| {
                    let s = Arc::clone(&s2);
                    async move {
                        let mut st = s.lock().unwrap();
                        st.lead_requests.push(record("/api/data/v9.2/leads".to_owned(), &headers, &body));
                        let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
                        if !bearer.is_some_and(|t| st.valid_tokens.iter().any(|v| v == t)) {
                            return error(401, "0x80040220", None);
                        }
                        if let Some((status, code, retry_after)) = st.lead_answer.clone() {
                            return error(status, &code, retry_after);
                        }
                        let id = format!("00000000-0000-0000-0000-{:012}", st.lead_requests.len());
                        let mut r = (StatusCode::CREATED, axum::Json(serde_json::json!({"leadid": id}))).into_response();
                        r.headers_mut().insert("odata-version", HeaderValue::from_static("4.0"));
                        r
                    }
                }),
            );
        let (addr, stop) = crate::serve(app).await;
        Self { state, addr, _stop: stop }
    }

    /// The "instance URL" to configure.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The token URL for a tenant.
    pub fn token_url(&self, tenant: &str) -> String {
        format!("http://{}/{tenant}/oauth2/v2.0/token", self.addr)
    }

    /// Token requests so far.
    pub fn token_requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().token_requests.clone()
    }

    /// Lead requests so far.
    pub fn lead_requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().lead_requests.clone()
    }

    /// Make every issued token invalid (as when it expires or is revoked).
    pub fn expire_tokens(&self) {
        self.state.lock().unwrap().valid_tokens.clear();
    }

    /// Refuse token requests with this OAuth error and `AADSTS` code.
    pub fn fail_tokens(&self, status: u16, error: &str, aadsts: u64) {
        self.state.lock().unwrap().token_error = Some((status, error.to_owned(), aadsts));
    }

    /// Answer lead creation with this status and Dataverse error code (and `Retry-After`).
    pub fn fail_leads(&self, status: u16, code: &str, retry_after: Option<u64>) {
        self.state.lock().unwrap().lead_answer = Some((status, code.to_owned(), retry_after));
    }

    /// Back to normal answers.
    pub fn heal(&self) {
        let mut st = self.state.lock().unwrap();
        st.token_error = None;
        st.lead_answer = None;
    }
}

fn error(status: u16, code: &str, retry_after: Option<u64>) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": "refused by the fake"}});
    let mut r = (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
    if let Some(s) = retry_after {
        r.headers_mut().insert("retry-after", HeaderValue::from_str(&s.to_string()).unwrap());
    }
    r
}
