//! The people of a publisher's team: added by the admin (with a password or an invitation),
//! signed in with a session cookie and a CSRF token, limited by their role and their publisher,
//! rate-limited when the password is wrong, signed out, expired on the clock, and recorded as
//! themselves in the audit log; no password or address in an answer that should not hold it,
//! in the audit log or in the log.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::support::TestApp;

const ANA: &str = "ana.lindqvist@contoso.com";
const ANA_PASSWORD: &str = "correct horse battery staple";
const HTTPS: &str = "[server]\npublic_url = \"https://leads.example.com\"\n";

/// A signed-in person: the `Cookie` header to send and the CSRF token.
pub(crate) struct Person {
    cookie: String,
    csrf: String,
    id: String,
}

/// Adds a user to `publisher` with the admin token; the answer's body.
pub(crate) async fn add_user(app: &TestApp, publisher: &str, email: &str, role: &str, password: Option<&str>) -> Value {
    let mut body = json!({"email": email, "name": format!("Name of {email}"), "role": role});
    if let Some(p) = password {
        body["password"] = json!(p);
    }
    let a = app.post(&format!("/v1/publishers/{publisher}/users"), body).await;
    assert_eq!(a.status, 201, "{}", a.body);
    a.body
}

/// `POST /v1/sessions`: status, headers, body.
async fn sign_in(app: &TestApp, email: &str, password: &str) -> (u16, HeaderMap, Value) {
    let res = app
        .client
        .post(format!("{}/v1/sessions", app.base))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    (status, headers, res.json().await.unwrap_or(Value::Null))
}

/// Signs in, which must succeed.
pub(crate) async fn signed_in(app: &TestApp, email: &str, password: &str) -> Person {
    let (status, headers, body) = sign_in(app, email, password).await;
    assert_eq!(status, 201, "{body}");
    let set = headers["set-cookie"].to_str().unwrap();
    let cookie = set.split(';').next().unwrap().to_owned();
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    Person { cookie, csrf, id: body["user"]["id"].as_str().unwrap().to_owned() }
}

/// A request with a cookie (no bearer token) and, when given, an `X-CSRF-Token`.
async fn as_cookie(
    app: &TestApp,
    cookie: &str,
    csrf: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, HeaderMap, Value) {
    let mut req = app.client.request(method, format!("{}{path}", app.base)).header("cookie", cookie);
    if let Some(token) = csrf {
        req = req.header("x-csrf-token", token);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    (status, headers, res.json().await.unwrap_or(Value::Null))
}

impl Person {
    /// Any request with the cookie and the CSRF token.
    pub(crate) async fn call(&self, app: &TestApp, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, _, body) = as_cookie(app, &self.cookie, Some(&self.csrf), method, path, body).await;
        (status, body)
    }

    async fn get(&self, app: &TestApp, path: &str) -> (u16, Value) {
        let (status, _, body) = as_cookie(app, &self.cookie, None, Method::GET, path, None).await;
        (status, body)
    }

    /// A change with the cookie and the CSRF token.
    async fn change(&self, app: &TestApp, method: Method, path: &str, body: Value) -> (u16, Value) {
        let (status, _, body) = as_cookie(app, &self.cookie, Some(&self.csrf), method, path, Some(body)).await;
        (status, body)
    }
}

fn offer(title: &str) -> Value {
    json!({"title": title, "type": "saas"})
}

#[tokio::test]
async fn a_person_added_by_the_admin_signs_in_with_a_cookie_and_changes_things_only_with_the_csrf_token() {
    let (app, _clock) = TestApp::spawn_stepped_with(HTTPS).await;
    app.contoso().await;
    let added = add_user(&app, "contoso", " Ana.Lindqvist@Contoso.com ", "admin", Some(ANA_PASSWORD)).await;
    let mut keys: Vec<&str> = added.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["created_at", "email", "id", "invitation", "name", "publisher", "role"]);
    assert!(added["id"].as_str().unwrap().starts_with("usr_"));
    assert_eq!(
        (added["email"].as_str(), added["invitation"].is_null()),
        (Some(ANA), true),
        "normalised, no invitation"
    );
    assert!(!added.to_string().contains(ANA_PASSWORD) && !added.to_string().contains("argon2"));

    let (status, headers, session) = sign_in(&app, ANA, ANA_PASSWORD).await;
    assert_eq!(status, 201, "{session}");
    let set = headers["set-cookie"].to_str().unwrap();
    let attributes: Vec<&str> = set.split(';').map(str::trim).collect();
    assert!(attributes[0].starts_with("leadrelay_session=lrs_"), "{set}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200", "Secure"] {
        assert!(attributes.contains(&attribute), "{attribute} missing from {set}");
    }
    let csrf = session["csrf_token"].as_str().unwrap();
    assert!(csrf.len() == 64 && !attributes[0].contains(csrf), "a token of its own: {session}");
    assert_eq!(session["user"]["id"], added["id"]);
    assert_eq!(session["user"]["role"], "admin");
    assert_eq!(session["expires_at"], "2027-01-15T20:00:00.000Z", "12 hours after the clock's now");
    let ana = signed_in(&app, ANA, ANA_PASSWORD).await;

    let (status, users) = ana.get(&app, "/v1/publishers/contoso/users").await;
    assert_eq!(status, 200, "{users}");
    assert_eq!(users["items"][0]["email"], ANA);
    assert_eq!(ana.get(&app, "/v1/publishers/contoso/destinations").await.0, 200, "any read route of the publisher");
    let (status, current) = ana.get(&app, "/v1/sessions/current").await;
    assert_eq!((status, current["csrf_token"].as_str()), (200, Some(ana.csrf.as_str())));

    let path = "/v1/publishers/contoso/offers/contoso.new";
    let (status, _, refused) = as_cookie(&app, &ana.cookie, None, Method::PUT, path, Some(offer("New"))).await;
    assert_eq!(status, 403, "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("X-CSRF-Token"), "{refused}");
    let wrong = as_cookie(&app, &ana.cookie, Some(csrf), Method::PUT, path, Some(offer("New"))).await;
    assert_eq!(wrong.0, 403, "another session's token is no token: {}", wrong.2);
    let (status, body) = ana.change(&app, Method::PUT, path, offer("New")).await;
    assert_eq!(status, 201, "{body}");
    let new = json!({"email": "ben@contoso.com", "name": "Ben", "role": "member", "password": "another long password"});
    let (status, _, refused) =
        as_cookie(&app, &ana.cookie, None, Method::POST, "/v1/publishers/contoso/users", Some(new.clone())).await;
    assert_eq!(status, 403, "{refused}");
    let (status, ben) = ana.change(&app, Method::POST, "/v1/publishers/contoso/users", new).await;
    assert_eq!(status, 201, "an admin of the team adds people: {ben}");

    assert_eq!(app.get("/v1/publishers/contoso/users").await.status, 200, "bearer tokens keep working");
    let a = app.post("/v1/publishers/contoso/tokens", json!({"scopes": ["read"]})).await;
    let reader = a.body["token"].as_str().unwrap().to_owned();
    let (status, listed) = app.call_as(&reader, Method::GET, "/v1/publishers/contoso/users", None).await;
    assert_eq!((status, listed["items"].as_array().map(Vec::len)), (200, Some(2)));
    let zoe = json!({"email": "zoe@contoso.com", "name": "Zoe", "role": "viewer"});
    let (status, _) = app.call_as(&reader, Method::POST, "/v1/publishers/contoso/users", Some(zoe)).await;
    assert_eq!(status, 403, "adding people needs the admin scope");
}

#[tokio::test]
async fn a_viewer_only_reads_and_a_member_cannot_add_people() {
    let (app, _clock) = TestApp::spawn_stepped().await;
    app.contoso().await;
    add_user(&app, "contoso", "vera@contoso.com", "viewer", Some("viewer password 1")).await;
    add_user(&app, "contoso", "max@contoso.com", "member", Some("member password 1")).await;
    let vera = signed_in(&app, "vera@contoso.com", "viewer password 1").await;
    let max = signed_in(&app, "max@contoso.com", "member password 1").await;
    let path = "/v1/publishers/contoso/offers/contoso.crm";

    assert_eq!(vera.get(&app, path).await.0, 200);
    let (status, body) = vera.change(&app, Method::PUT, path, offer("Renamed")).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("'viewer' role"), "{body}");

    let (status, body) = max.change(&app, Method::PUT, path, offer("Renamed")).await;
    assert_eq!(status, 200, "a member changes the publisher's things: {body}");
    let new = json!({"email": "zoe@contoso.com", "name": "Zoe", "role": "admin"});
    let (status, body) = max.change(&app, Method::POST, "/v1/publishers/contoso/users", new).await;
    assert_eq!(status, 403, "only the admin role adds people: {body}");
    let (status, body) =
        max.change(&app, Method::POST, "/v1/publishers/contoso/tokens", json!({"scopes": ["read"]})).await;
    assert_eq!(status, 403, "nor makes tokens: {body}");
    let (status, _) = max.change(&app, Method::POST, "/v1/publishers", json!({"id": "mine", "name": "Mine"})).await;
    assert_eq!(status, 403, "a person is never the admin token");
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_address_get_the_same_answer_and_the_sixth_failure_waits() {
    let (app, clock) = TestApp::spawn_stepped().await;
    app.contoso().await;
    add_user(&app, "contoso", ANA, "member", Some(ANA_PASSWORD)).await;
    let (status, _, wrong) = sign_in(&app, ANA, "not the password at all").await;
    let (status_unknown, _, unknown) = sign_in(&app, "nobody@contoso.com", ANA_PASSWORD).await;
    assert_eq!((status, status_unknown), (401, 401));
    assert_eq!(wrong, unknown, "nothing tells which it was");
    assert_eq!(wrong["error"]["code"], "invalid_credentials");
    let (status, _, invalid) = sign_in(&app, "not an address", ANA_PASSWORD).await;
    assert_eq!((status, invalid["error"]["fields"][0]["path"].as_str()), (422, Some("email")));

    for attempt in 2..=5 {
        let (status, _, body) = sign_in(&app, &ANA.to_uppercase(), "still not the password").await;
        assert_eq!(status, 401, "failure {attempt}: {body}");
        clock.advance(Duration::from_secs(60));
    }
    let (status, headers, body) = sign_in(&app, ANA, ANA_PASSWORD).await;
    assert_eq!(status, 429, "five failures of the address: even the right password waits: {body}");
    assert_eq!(body["error"]["code"], "too_many_requests");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(wait, 15 * 60 - 4 * 60, "until the first failure is 15 minutes old");
    let (status, _, _) = sign_in(&app, "nobody@contoso.com", "whatever it is here").await;
    assert_eq!(status, 401, "another address is not held up");

    clock.advance(Duration::from_secs(wait));
    let (status, _, body) = sign_in(&app, ANA, ANA_PASSWORD).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn signing_out_ends_the_session_and_clears_the_cookie() {
    let (app, _clock) = TestApp::spawn_stepped().await;
    app.contoso().await;
    add_user(&app, "contoso", ANA, "member", Some(ANA_PASSWORD)).await;
    let ana = signed_in(&app, ANA, ANA_PASSWORD).await;
    let other = signed_in(&app, ANA, ANA_PASSWORD).await;

    let (status, _, body) = as_cookie(&app, &ana.cookie, None, Method::DELETE, "/v1/sessions/current", None).await;
    assert_eq!(status, 403, "signing out is a change: {body}");
    let (status, headers, _) =
        as_cookie(&app, &ana.cookie, Some(&ana.csrf), Method::DELETE, "/v1/sessions/current", None).await;
    assert_eq!(status, 204);
    let cleared = headers["set-cookie"].to_str().unwrap();
    assert!(cleared.starts_with("leadrelay_session=;") && cleared.contains("Max-Age=0"), "{cleared}");
    assert!(!cleared.contains("Secure"), "no Secure without an https public_url");
    for path in ["/v1/sessions/current", "/v1/publishers/contoso/users"] {
        let (status, body) = ana.get(&app, path).await;
        assert_eq!(status, 401, "{path}: {body}");
    }
    assert_eq!(other.get(&app, "/v1/sessions/current").await.0, 200, "another session of the person lives on");
    let (status, _, _) =
        as_cookie(&app, "leadrelay_session=lrs_made_up", None, Method::GET, "/v1/sessions/current", None).await;
    assert_eq!(status, 401);
    assert_eq!(app.get("/v1/sessions/current").await.status, 401, "a bearer token is no session");
}

#[tokio::test]
async fn a_session_ends_after_session_hours_on_the_clock() {
    let (app, clock) = TestApp::spawn_stepped_with("[workspace]\nsession_hours = 2\n").await;
    app.contoso().await;
    add_user(&app, "contoso", ANA, "viewer", Some(ANA_PASSWORD)).await;
    let (_, headers, _) = sign_in(&app, ANA, ANA_PASSWORD).await;
    assert!(headers["set-cookie"].to_str().unwrap().contains("Max-Age=7200"));
    let ana = signed_in(&app, ANA, ANA_PASSWORD).await;
    clock.advance(Duration::from_secs(2 * 3600 - 1));
    assert_eq!(ana.get(&app, "/v1/publishers/contoso/users").await.0, 200);
    clock.advance(Duration::from_secs(1));
    assert_eq!(ana.get(&app, "/v1/publishers/contoso/users").await.0, 401, "expired");
    assert_eq!(ana.get(&app, "/v1/sessions/current").await.0, 401);
}

#[tokio::test]
async fn an_invitation_is_accepted_once_for_seven_days_then_its_person_signs_in() {
    let (app, clock) = TestApp::spawn_stepped().await;
    app.contoso().await;
    let invited = add_user(&app, "contoso", "ben@contoso.com", "member", None).await;
    let token = invited["invitation"]["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("lri_"), "{invited}");
    assert_eq!(invited["invitation"]["expires_at"], "2027-01-22T08:00:00.000Z", "7 days from now");
    let (status, _, body) = sign_in(&app, "ben@contoso.com", "a password he has not set").await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("invalid_credentials")), "no password yet");

    let accept = |token: String, password: &str| {
        let body = json!({"token": token, "password": password});
        app.send(Method::POST, "/v1/invitations/accept", Some(body.to_string().into_bytes()), false)
    };
    let short = accept(token.clone(), "too short").await;
    assert_eq!((short.status, short.body["error"]["fields"][0]["path"].as_str()), (422, Some("password")));
    assert!(short.body["error"]["fields"][0]["message"].as_str().unwrap().contains("12 to 128"), "{}", short.body);
    let accepted = accept(token.clone(), "bens own password").await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    assert_eq!((&accepted.body["id"], accepted.body["role"].as_str()), (&invited["id"], Some("member")));
    assert!(accepted.body.get("password").is_none() && accepted.body.get("invitation").is_none());
    let again = accept(token.clone(), "another password").await;
    assert_eq!(again.status, 404, "a token works once: {}", again.body);
    signed_in(&app, "ben@contoso.com", "bens own password").await;
    assert_eq!(sign_in(&app, "ben@contoso.com", "another password").await.0, 401);

    let late = add_user(&app, "contoso", "cy@contoso.com", "viewer", None).await;
    clock.advance(Duration::from_secs(7 * 24 * 3600));
    let expired = accept(late["invitation"]["token"].as_str().unwrap().to_owned(), "cys own password").await;
    assert_eq!(expired.status, 404, "expired: {}", expired.body);
    assert_eq!(accept("lri_never_issued".to_owned(), "some password here").await.status, 404);
}

#[tokio::test]
async fn an_address_has_one_user_and_bad_fields_are_named() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    assert_eq!(app.post("/v1/publishers", json!({"id": "fabrikam", "name": "Fabrikam"})).await.status, 201);
    add_user(&app, "contoso", ANA, "member", None).await;
    let taken = app
        .post("/v1/publishers/fabrikam/users", json!({"email": ANA.to_uppercase(), "name": "Ana", "role": "viewer"}))
        .await;
    assert_eq!(taken.status, 409, "{}", taken.body);
    assert!(!taken.body.to_string().to_lowercase().contains("lindqvist"), "the address is not echoed");
    let unknown =
        app.post("/v1/publishers/nobody/users", json!({"email": "x@y.com", "name": "X", "role": "admin"})).await;
    assert_eq!(unknown.status, 404);
    for (body, field) in [
        (json!({"email": "nope", "name": "X", "role": "admin"}), "email"),
        (json!({"email": "x@y.com", "name": " ", "role": "admin"}), "name"),
        (json!({"email": "x@y.com", "name": "X", "role": "owner"}), "role"),
        (json!({"email": "x@y.com", "name": "X", "role": "admin", "password": "short"}), "password"),
        (json!({"email": "x@y.com", "name": "X", "role": "admin", "password_hash": "x"}), "password_hash"),
    ] {
        let a = app.post("/v1/publishers/contoso/users", body).await;
        assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some(field)), "{}", a.body);
    }
}

#[tokio::test]
async fn another_publishers_person_finds_nothing_of_this_publisher() {
    let (app, _clock) = TestApp::spawn_stepped().await;
    app.contoso().await;
    assert_eq!(app.post("/v1/publishers", json!({"id": "fabrikam", "name": "Fabrikam"})).await.status, 201);
    add_user(&app, "fabrikam", "fay@fabrikam.com", "admin", Some("fabrikam password")).await;
    let fay = signed_in(&app, "fay@fabrikam.com", "fabrikam password").await;
    assert_eq!(fay.get(&app, "/v1/publishers/fabrikam/users").await.0, 200);
    for path in [
        "/v1/publishers/contoso/users",
        "/v1/publishers/contoso/destinations",
        "/v1/publishers/contoso/offers/contoso.crm",
        "/v1/leads?publisher=contoso",
    ] {
        let (status, body) = fay.get(&app, path).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let new = json!({"email": "mole@fabrikam.com", "name": "Mole", "role": "admin", "password": "a planted password"});
    let (status, _) = fay.change(&app, Method::POST, "/v1/publishers/contoso/users", new).await;
    assert_eq!(status, 404);
    let (status, _) = fay.change(&app, Method::PUT, "/v1/publishers/contoso/offers/contoso.x", offer("X")).await;
    assert_eq!(status, 404);
    let contoso = app.get("/v1/publishers/contoso/users").await;
    assert_eq!(contoso.body["items"].as_array().map(Vec::len), Some(0), "nothing was added");
}

#[tokio::test]
async fn the_audit_log_records_each_person_as_the_actor_by_id_only() {
    let (app, clock) = TestApp::spawn_stepped().await;
    // Entries are ordered by time: each step a second after the last.
    let tick = || clock.advance(Duration::from_secs(1));
    app.contoso().await;
    let added = add_user(&app, "contoso", ANA, "admin", Some(ANA_PASSWORD)).await;
    tick();
    let ana = signed_in(&app, ANA, ANA_PASSWORD).await;
    tick();
    assert_eq!(ana.id, added["id"].as_str().unwrap());
    let new = json!({"email": "ben@contoso.com", "name": "Ben Invited", "role": "member"});
    let (status, ben) = ana.change(&app, Method::POST, "/v1/publishers/contoso/users", new).await;
    assert_eq!(status, 201);
    tick();
    let body = json!({"token": ben["invitation"]["token"], "password": "bens own password"});
    let a = app.send(Method::POST, "/v1/invitations/accept", Some(body.to_string().into_bytes()), false).await;
    assert_eq!(a.status, 200);
    tick();
    let (status, _, _) =
        as_cookie(&app, &ana.cookie, Some(&ana.csrf), Method::DELETE, "/v1/sessions/current", None).await;
    assert_eq!(status, 204);

    let all = app.get("/v1/audit?limit=1000").await;
    assert_eq!(all.status, 200);
    let entries = all.body["items"].as_array().unwrap();
    let of = |action: &str| -> Vec<(String, String)> {
        entries
            .iter()
            .filter(|e| e["action"] == action)
            .map(|e| (e["actor"].as_str().unwrap().to_owned(), e["object"].as_str().unwrap_or("").to_owned()))
            .collect()
    };
    let (ana_id, ben_id) = (ana.id.clone(), ben["id"].as_str().unwrap().to_owned());
    let mut created = of("user.create");
    created.sort_unstable();
    let mut expected = vec![("admin".to_owned(), ana_id.clone()), (ana_id.clone(), ben_id.clone())];
    expected.sort_unstable();
    assert_eq!(created, expected);
    assert_eq!(of("user.invite_accept"), [(ben_id.clone(), ben_id.clone())]);
    assert_eq!(of("session.create"), [(ana_id.clone(), ana_id.clone())]);
    assert_eq!(of("session.delete"), [(ana_id.clone(), ana_id.clone())]);
    let by_ana = app.get(&format!("/v1/audit?actor={ana_id}")).await;
    assert_eq!(by_ana.status, 200, "{}", by_ana.body);
    let actions: Vec<&str> =
        by_ana.body["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["session.delete", "user.create", "session.create"], "newest first");
    assert!(by_ana.body["items"].as_array().unwrap().iter().all(|e| e["actor_publisher"] == "contoso"));
    let text = all.body.to_string().to_lowercase();
    for personal in ["lindqvist", "ben@", "ben invited", "password", "lri_", "lrs_"] {
        assert!(!text.contains(personal), "the audit log holds {personal:?}: {text}");
    }
}

/// A log sink for this test's thread: the runtime of a `#[tokio::test]` runs the server's tasks
/// on the test's own thread, so a thread-local subscriber sees every request's log lines.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn no_password_address_or_name_reaches_the_log() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace,reqwest=info,hyper=info,hyper_util=info,h2=info"))
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    // With one registered dispatcher, tracing takes it for everyone's and caches a callsite first
    // reached on another test's thread (where there is none) as disabled for good. A second,
    // idle one makes it ask every registered dispatcher, this test's among them.
    let _idle = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let _guard = tracing::subscriber::set_default(subscriber);

    let (app, _clock) = TestApp::spawn_stepped().await;
    app.contoso().await;
    add_user(&app, "contoso", ANA, "admin", Some(ANA_PASSWORD)).await;
    let invited = add_user(&app, "contoso", "benedikt.canary@contoso.com", "member", None).await;
    let token = invited["invitation"]["token"].as_str().unwrap();
    let body = json!({"token": token, "password": "benedikts canary secret"});
    assert_eq!(
        app.send(Method::POST, "/v1/invitations/accept", Some(body.to_string().into_bytes()), false).await.status,
        200
    );
    assert_eq!(sign_in(&app, ANA, "a wrong canary password").await.0, 401);
    assert_eq!(sign_in(&app, "unknown.canary@contoso.com", ANA_PASSWORD).await.0, 401);
    let short = json!({"email": "x.canary@contoso.com", "name": "X", "role": "admin", "password": "canaryshort"});
    assert_eq!(app.post("/v1/publishers/contoso/users", short).await.status, 422);
    let ana = signed_in(&app, ANA, ANA_PASSWORD).await;
    assert_eq!(ana.get(&app, "/v1/publishers/contoso/users").await.0, 200);
    let (status, _, _) = as_cookie(&app, &ana.cookie, None, Method::DELETE, "/v1/sessions/current", None).await;
    assert_eq!(status, 403);
    drop(app);

    let text = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(
        text.contains("/v1/sessions") && text.contains("/v1/publishers/{publisher}/users"),
        "the log is empty:\n{text}"
    );
    let session_value = ana.cookie.trim_start_matches("leadrelay_session=");
    let needles =
        ["lindqvist", "canary", "correct horse", "Name of", token, session_value, ana.csrf.as_str(), "$argon2"];
    for needle in needles {
        assert!(!text.to_lowercase().contains(&needle.to_lowercase()), "the log holds {needle:?}:\n{text}");
    }
}
