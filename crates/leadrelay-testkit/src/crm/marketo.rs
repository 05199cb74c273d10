//! A fake Marketo: `GET /identity/oauth/token` and `POST /rest/v1/leads/submitForm.json`. Like
//! Marketo it answers HTTP 200 with an error envelope for almost every failure; it refuses the
//! `access_token` query parameter (Adobe is removing it) and unknown bearer tokens (601).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};

/// The client id and secret the fake accepts.
pub const CLIENT_ID: &str = "marketo-client";
/// See [`CLIENT_ID`].
pub const CLIENT_SECRET: &str = "marketo-secret";

#[derive(Default)]
struct State {
    token_queries: Vec<HashMap<String, String>>,
    submissions: Vec<(HashMap<String, String>, serde_json::Value)>,
    valid: Vec<String>,
    issued: u32,
    scripted: VecDeque<serde_json::Value>,
}

/// The fake; stops when dropped.
pub struct FakeMarketo {
    state: Arc<Mutex<State>>,
    addr: std::net::SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn envelope_error(code: &str) -> serde_json::Value {
    serde_json::json!({"requestId": "e42b#14272d07d78", "success": false, "errors": [{"code": code, "message": "fake"}]})
}

impl FakeMarketo {
    /// Starts on a free port.
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let (s1, s2) = (Arc::clone(&state), Arc::clone(&state));
        let app = axum::Router::new()
            .route(
                "/identity/oauth/token",
                get(move |RawQuery(q): RawQuery| {
                    let s = Arc::clone(&s1);
                    async move {
                        let query: HashMap<String, String> = super::form_pairs(q.unwrap_or_default().as_bytes()).into_iter().collect();
                        let mut st = s.lock().unwrap();
                        st.token_queries.push(query.clone());
                        let ok = query.get("grant_type").map(String::as_str) == Some("client_credentials")
                            && query.get("client_id").map(String::as_str) == Some(CLIENT_ID)
                            && query.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET);
                        if !ok {
                            return (StatusCode::UNAUTHORIZED, axum::Json(serde_json::json!({"error": "unauthorized"}))).into_response();
                        }
                        st.issued += 1;
                        let token = format!("token-{}:int", st.issued);
                        st.valid.push(token.clone());
                        axum::Json(serde_json::json!({"access_token": token, "token_type": "bearer", "expires_in": 3599, "scope": "api@contoso.com"}))
                            .into_response()
                    }
                }),
            )
            .route(
                "/rest/v1/leads/submitForm.json",
                post(move |RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes| {
                    let s = Arc::clone(&s2);
                    async move {
                        let mut st = s.lock().unwrap();
                        let header_map = headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())).collect();
                        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                        let inputs = json["input"].as_array().map_or(0, Vec::len);
                        st.submissions.push((header_map, json));
                        if q.is_some_and(|q| q.contains("access_token")) {
                            return axum::Json(envelope_error("600")).into_response();
                        }
                        let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
                        if !bearer.is_some_and(|t| st.valid.iter().any(|v| v == t)) {
                            return axum::Json(envelope_error("601")).into_response();
                        }
                        if let Some(answer) = st.scripted.pop_front() {
                            return axum::Json(answer).into_response();
                        }
                        let base = 319_174 + 1000 * st.submissions.len();
                        let result: Vec<_> = (0..inputs).map(|k| serde_json::json!({"id": base + k, "status": "created"})).collect();
                        axum::Json(serde_json::json!({"requestId": "10667#173bc585ca5", "success": true, "result": result})).into_response()
                    }
                }),
            );
        let (addr, stop) = crate::serve(app).await;
        Self { state, addr, _stop: stop }
    }

    /// The base URL to configure.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Query parameters of every token request.
    pub fn token_queries(&self) -> Vec<HashMap<String, String>> {
        self.state.lock().unwrap().token_queries.clone()
    }

    /// Headers and body of every submission.
    pub fn submissions(&self) -> Vec<(HashMap<String, String>, serde_json::Value)> {
        self.state.lock().unwrap().submissions.clone()
    }

    /// Answer the next authorised submission with this envelope error code (`"606"`, …).
    pub fn next_error(&self, code: &str) {
        self.state.lock().unwrap().scripted.push_back(envelope_error(code));
    }

    /// Answer the next authorised submission with a skipped record and this reason code.
    pub fn next_skip(&self, reason: &str) {
        let body = serde_json::json!({"success": true, "result": [{"status": "skipped", "reasons": [{"code": reason, "message": "fake"}]}]});
        self.state.lock().unwrap().scripted.push_back(body);
    }

    /// Invalidate every issued token (Marketo then answers 601/602).
    pub fn expire_tokens(&self) {
        self.state.lock().unwrap().valid.clear();
    }
}
