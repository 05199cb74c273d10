//! A fake Salesforce Web-to-Lead servlet at `/servlet/servlet.WebToLead`. Like the real one it
//! answers 200 with an HTML page whatever it receives (unless told to fail), so tests prove we
//! never treat that 200 as a confirmed lead.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse};

/// One recorded post.
#[derive(Debug, Clone)]
pub struct WebToLeadPost {
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Query pairs, in order.
    pub query: Vec<(String, String)>,
    /// `content-type` header.
    pub content_type: String,
    /// Form fields, in order, percent-decoded.
    pub fields: Vec<(String, String)>,
}

impl WebToLeadPost {
    /// The first value of a form field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// The fake; stops when dropped.
pub struct FakeWebToLead {
    posts: Arc<Mutex<Vec<WebToLeadPost>>>,
    status: Arc<Mutex<u16>>,
    addr: std::net::SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FakeWebToLead {
    /// Starts on a free port.
    pub async fn start() -> Self {
        let posts = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(Mutex::new(200u16));
        let (p, s) = (Arc::clone(&posts), Arc::clone(&status));
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes| {
            let (p, s) = (Arc::clone(&p), Arc::clone(&s));
            async move {
                p.lock().unwrap().push(WebToLeadPost {
                    method: method.to_string(),
                    path: uri.path().to_owned(),
                    query: super::form_pairs(q.unwrap_or_default().as_bytes()),
                    content_type: headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned(),
                    fields: super::form_pairs(&body),
                });
                let code = *s.lock().unwrap();
                let page = Html("<html><head><meta http-equiv=\"refresh\" content=\"0;URL=https://www.salesforce.com\"></head></html>");
                (StatusCode::from_u16(code).unwrap_or(StatusCode::OK), page).into_response()
            }
        });
        let (addr, stop) = crate::serve(app).await;
        Self { posts, status, addr, _stop: stop }
    }

    /// The endpoint to configure: the servlet path with `encoding=UTF-8`, as Salesforce gives it.
    pub fn endpoint(&self) -> String {
        format!("http://{}/servlet/servlet.WebToLead?encoding=UTF-8", self.addr)
    }

    /// Answer this status from now on.
    pub fn respond_with(&self, status: u16) {
        *self.status.lock().unwrap() = status;
    }

    /// Every post so far.
    pub fn posts(&self) -> Vec<WebToLeadPost> {
        self.posts.lock().unwrap().clone()
    }
}
