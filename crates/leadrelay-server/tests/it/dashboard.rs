//! The dashboard over plain HTTP (its walk in a real browser is `tests/it/browser.rs`): who
//! may see a page, the CSRF token on every form, the CSP and the escaping, word searches kept
//! out of addresses, another publisher's data out of reach, and a refused change shown with
//! its reason.

use reqwest::header::{HeaderMap, LOCATION};
use serde_json::json;

use crate::people::add_user;
use crate::support::{TestApp, example_for};

pub(crate) const ANA: &str = "ana.lindqvist@contoso.com";
pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// A browser without a browser: a cookie, and redirects seen rather than followed.
pub(crate) struct Visitor {
    client: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

/// A page as fetched.
pub(crate) struct Seen {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Seen {
    pub fn location(&self) -> &str {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// The value of the first hidden `csrf` field.
    pub fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").expect("a form with the CSRF token") + 19;
        self.body[at..].split('"').next().unwrap().to_owned()
    }
}

impl Visitor {
    pub fn new(app: &TestApp) -> Self {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { client, base: app.base.clone(), cookie: None }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Seen {
        let req = match &self.cookie {
            Some(c) => req.header("cookie", c),
            None => req,
        };
        let res = req.send().await.unwrap();
        let (status, headers) = (res.status().as_u16(), res.headers().clone());
        Seen { status, headers, body: res.text().await.unwrap() }
    }

    pub async fn get(&self, path: &str) -> Seen {
        self.send(self.client.get(format!("{}{path}", self.base))).await
    }

    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Seen {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        let req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(req).await
    }

    /// Signs in through the form, which must succeed.
    pub async fn sign_in(&mut self, email: &str, password: &str) {
        let seen = self.post("/ui/login", &[("email", email), ("password", password)]).await;
        assert_eq!((seen.status, seen.location()), (303, "/ui/"), "{}", seen.body);
        let set = seen.headers["set-cookie"].to_str().unwrap();
        self.cookie = Some(set.split(';').next().unwrap().to_owned());
    }
}

/// Contoso with Ana (admin) signed in, and one lead of a buyer; the visitor and the lead's
/// opportunity id.
async fn contoso_with_a_lead(app: &TestApp, first_name: &str) -> (Visitor, String) {
    app.contoso().await;
    add_user(app, "contoso", ANA, "admin", Some(PASSWORD)).await;
    let path = app.ingest_path(Some("contoso.crm")).await;
    let mut lead = example_for("jo@fabrikam.com");
    lead["UserDetails"]["FirstName"] = json!(first_name);
    lead["UserDetails"]["Company"] = json!("Fabrikam Ltd");
    assert_eq!(app.ingest(&path, lead).await.status, 202);
    let list = app.get("/v1/publishers/contoso/opportunities").await.body;
    let opportunity = list["items"][0]["id"].as_str().expect("the lead opened an opportunity").to_owned();
    let mut visitor = Visitor::new(app);
    visitor.sign_in(ANA, PASSWORD).await;
    (visitor, opportunity)
}

const PAGES: [&str; 9] = [
    "/ui/",
    "/ui/opportunities",
    "/ui/leads",
    "/ui/destinations",
    "/ui/destinations/new/https",
    "/ui/deliveries",
    "/ui/kpis",
    "/ui/team",
    "/ui/audit",
];

#[tokio::test]
async fn the_root_leads_to_the_dashboard_and_every_page_asks_to_sign_in_first() {
    let app = TestApp::spawn().await;
    let nobody = Visitor::new(&app);
    let root = nobody.get("/").await;
    assert_eq!((root.status, root.location()), (303, "/ui/"));
    for page in PAGES {
        let seen = nobody.get(page).await;
        assert_eq!((seen.status, seen.location()), (303, "/ui/login"), "{page}");
    }
    let login = nobody.get("/ui/login").await;
    assert_eq!(login.status, 200);
    assert!(login.body.contains("leadrelay users add"), "the sign-in page says how the first person is made");
    let missing = nobody.get("/ui/no-such-page").await;
    assert_eq!(missing.status, 404);
    assert!(missing.headers["content-type"].to_str().unwrap().starts_with("text/html"));
}

#[tokio::test]
async fn a_wrong_password_gets_the_form_again_and_signing_out_ends_the_session() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    add_user(&app, "contoso", ANA, "admin", Some(PASSWORD)).await;
    let mut visitor = Visitor::new(&app);
    let wrong = visitor.post("/ui/login", &[("email", ANA), ("password", "not the password")]).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("The e-mail address or the password is wrong."));
    assert!(!wrong.body.contains("not the password"), "the password is never echoed");
    for (header, value) in [("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")] {
        let req = visitor
            .client
            .post(format!("{}/ui/login", visitor.base))
            .header(header, value)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs([("email", ANA), ("password", PASSWORD)])
                    .finish(),
            );
        let elsewhere = visitor.send(req).await;
        assert_eq!(elsewhere.status, 403, "a sign-in posted from another site ({header}) is refused");
        assert!(!elsewhere.headers.contains_key("set-cookie"));
    }

    visitor.sign_in(ANA, PASSWORD).await;
    for page in PAGES {
        let seen = visitor.get(page).await;
        assert_eq!(seen.status, 200, "{page}: {}", seen.body);
        assert!(seen.body.contains("Ana") || seen.body.contains("Name of"), "{page} names who is signed in");
    }
    let inbox = visitor.get("/ui/").await;
    let out = visitor.post("/ui/logout", &[("csrf", &inbox.csrf())]).await;
    assert_eq!((out.status, out.location()), (303, "/ui/login"));
    let after = visitor.get("/ui/").await;
    assert_eq!((after.status, after.location()), (303, "/ui/login"), "the old cookie no longer works");
}

#[tokio::test]
async fn every_change_needs_the_sessions_csrf_token() {
    let app = TestApp::spawn().await;
    let (visitor, opportunity) = contoso_with_a_lead(&app, "Jo").await;
    let page = visitor.get(&format!("/ui/opportunities/{opportunity}")).await;
    let path = format!("/ui/opportunities/{opportunity}/status");
    for csrf in ["", "not-the-token"] {
        let refused = visitor.post(&path, &[("csrf", csrf), ("status", "contacted")]).await;
        assert_eq!(refused.status, 403, "{}", refused.body);
    }
    assert_eq!(app.get(&format!("/v1/opportunities/{opportunity}")).await.body["status"], "new", "nothing changed");
    let done = visitor.post(&path, &[("csrf", &page.csrf()), ("status", "contacted")]).await;
    assert_eq!((done.status, done.location()), (303, format!("/ui/opportunities/{opportunity}?done=status").as_str()));
    assert_eq!(app.get(&format!("/v1/opportunities/{opportunity}")).await.body["status"], "contacted");
}

#[tokio::test]
async fn pages_have_a_strict_policy_are_not_cached_and_show_markup_in_a_lead_as_text() {
    let app = TestApp::spawn().await;
    let (visitor, opportunity) = contoso_with_a_lead(&app, "<script>alert(1)</script>").await;
    for path in ["/ui/".to_owned(), format!("/ui/opportunities/{opportunity}"), "/ui/leads".to_owned()] {
        let seen = visitor.get(&path).await;
        assert_eq!(seen.status, 200);
        let csp = seen.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("style-src 'self'") && !csp.contains("unsafe"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(seen.headers["cache-control"], "no-store");
        assert!(seen.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{path} shows the name as text");
        assert!(!seen.body.contains("<script>alert"), "{path}");
        assert!(!seen.body.contains("style=\""), "no inline style: the policy would block it");
    }
    let css = visitor.get("/ui/assets/app.css").await;
    assert_eq!(css.status, 200);
    assert!(css.headers["content-type"].to_str().unwrap().starts_with("text/css"));
}

#[tokio::test]
async fn a_word_search_is_posted_and_never_read_from_an_address() {
    let app = TestApp::spawn().await;
    let (visitor, opportunity) = contoso_with_a_lead(&app, "Jo").await;
    for page in ["/ui/leads?q=fabrikam", "/ui/opportunities?q=fabrikam"] {
        let refused = visitor.get(page).await;
        assert_eq!(refused.status, 422, "{page}");
    }
    let list = visitor.get("/ui/opportunities").await;
    let found = visitor.post("/ui/opportunities", &[("csrf", &list.csrf()), ("q", "fabrikam")]).await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert!(found.body.contains(&opportunity), "the opportunity is found by a word of the company");
    let none = visitor.post("/ui/opportunities", &[("csrf", &list.csrf()), ("q", "northwind")]).await;
    assert!(!none.body.contains(&opportunity));
    let leads = visitor.post("/ui/leads", &[("csrf", &list.csrf()), ("q", "Fabrikam")]).await;
    assert!(leads.body.contains("Fabrikam Ltd"));
    let bad = visitor.post("/ui/leads", &[("csrf", &list.csrf()), ("q", "!")]).await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("word"), "the rule is shown: {}", bad.body);
}

#[tokio::test]
async fn another_publishers_data_is_not_found_and_a_viewer_cannot_change_anything() {
    let app = TestApp::spawn().await;
    let (_, opportunity) = contoso_with_a_lead(&app, "Jo").await;
    assert_eq!(app.post("/v1/publishers", json!({"id": "fabrikam", "name": "Fabrikam"})).await.status, 201);
    add_user(&app, "fabrikam", "eve@fabrikam.com", "admin", Some(PASSWORD)).await;
    let mut eve = Visitor::new(&app);
    eve.sign_in("eve@fabrikam.com", PASSWORD).await;
    let seen = eve.get(&format!("/ui/opportunities/{opportunity}")).await;
    assert_eq!(seen.status, 404);
    assert!(!seen.body.contains("Fabrikam Ltd") && !seen.body.contains("jo@fabrikam.com"));
    let csrf = eve.get("/ui/").await.csrf();
    let changed =
        eve.post(&format!("/ui/opportunities/{opportunity}/status"), &[("csrf", &csrf), ("status", "won")]).await;
    assert_eq!(changed.status, 404);
    let found = eve.post("/ui/opportunities", &[("csrf", &csrf), ("q", "fabrikam")]).await;
    assert!(!found.body.contains(&opportunity), "a search sees only one's own publisher");

    add_user(&app, "contoso", "val@contoso.com", "viewer", Some(PASSWORD)).await;
    let mut val = Visitor::new(&app);
    val.sign_in("val@contoso.com", PASSWORD).await;
    let page = val.get(&format!("/ui/opportunities/{opportunity}")).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("Change status"), "a viewer is not offered changes");
    let refused = val
        .post(&format!("/ui/opportunities/{opportunity}/status"), &[("csrf", &page.csrf()), ("status", "won")])
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(app.get(&format!("/v1/opportunities/{opportunity}")).await.body["status"], "new");
}

#[tokio::test]
async fn a_refused_change_shows_the_page_again_with_the_rule() {
    let app = TestApp::spawn().await;
    let (visitor, opportunity) = contoso_with_a_lead(&app, "Jo").await;
    let page = visitor.get(&format!("/ui/opportunities/{opportunity}")).await;
    let refused = visitor
        .post(&format!("/ui/opportunities/{opportunity}/status"), &[("csrf", &page.csrf()), ("status", "lost")])
        .await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("Not done") && refused.body.contains("reason"), "{}", refused.body);
    assert!(refused.body.contains("Change status"), "the page is shown again to fix it");
    let bad_time = visitor
        .post(
            &format!("/ui/opportunities/{opportunity}/next-touch"),
            &[("csrf", &page.csrf()), ("next_touch_at", "soon")],
        )
        .await;
    assert_eq!(bad_time.status, 422);
    assert!(bad_time.body.contains("next_touch_at"));
}

#[tokio::test]
async fn the_live_inbox_answers_nothing_until_something_changes() {
    let app = TestApp::spawn().await;
    let (visitor, _) = contoso_with_a_lead(&app, "Jo").await;
    let first = visitor.get("/ui/inbox/live").await;
    assert_eq!(first.status, 200);
    let version = first.headers["x-inbox-version"].to_str().unwrap().to_owned();
    let same = visitor.get(&format!("/ui/inbox/live?seen={version}")).await;
    assert_eq!(same.status, 204);
    let path = app.ingest_path(Some("contoso.crm")).await;
    let mut lead = example_for("kim@northwind.com");
    lead["UserDetails"]["Company"] = json!("Northwind Traders");
    assert_eq!(app.ingest(&path, lead).await.status, 202);
    let changed = visitor.get(&format!("/ui/inbox/live?seen={version}")).await;
    assert_eq!(changed.status, 200);
    assert!(changed.body.contains("Northwind Traders"));
    assert_ne!(changed.headers["x-inbox-version"].to_str().unwrap(), version);
}
