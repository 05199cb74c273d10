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

/// A browser without a browser: a cookie jar, and redirects seen rather than followed.
pub(crate) struct Visitor {
    client: reqwest::Client,
    base: String,
    cookies: std::sync::Mutex<Vec<(String, String)>>,
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

    /// The value of the first hidden field `name`.
    pub fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let at = self.body.find(&marker).unwrap_or_else(|| panic!("a form with {name}: {}", self.body)) + marker.len();
        self.body[at..].split('"').next().unwrap().to_owned()
    }

    /// The value of the first hidden `csrf` field.
    pub fn csrf(&self) -> String {
        self.hidden("csrf")
    }
}

impl Visitor {
    pub fn new(app: &TestApp) -> Self {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { client, base: app.base.clone(), cookies: std::sync::Mutex::new(Vec::new()) }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Seen {
        let jar = self.cookies.lock().unwrap().iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let req = if jar.is_empty() { req } else { req.header("cookie", jar) };
        let res = req.send().await.unwrap();
        let (status, headers) = (res.status().as_u16(), res.headers().clone());
        for set in headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()) {
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let mut jar = self.cookies.lock().unwrap();
            jar.retain(|(k, _)| k != name);
            if !value.is_empty() && !attributes.contains("Max-Age=0") {
                jar.push((name.to_owned(), value.to_owned()));
            }
        }
        Seen { status, headers, body: res.text().await.unwrap() }
    }

    pub async fn get(&self, path: &str) -> Seen {
        self.send(self.client.get(format!("{}{path}", self.base))).await
    }

    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Seen {
        self.post_with(path, fields, &[]).await
    }

    /// A post with more headers (what a browser says of where it comes from).
    pub async fn post_with(&self, path: &str, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Seen {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }

    /// Posts the sign-in form (after getting it, and its token, as a browser does).
    pub async fn try_sign_in(&self, email: &str, password: &str) -> Seen {
        let form = self.get("/ui/login").await;
        let token = form.hidden("form_token");
        self.post("/ui/login", &[("form_token", &token), ("email", email), ("password", password)]).await
    }

    /// Signs in through the form, which must succeed.
    pub async fn sign_in(&self, email: &str, password: &str) {
        let seen = self.try_sign_in(email, password).await;
        assert_eq!((seen.status, seen.location()), (303, "/ui/"), "{}", seen.body);
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
    let visitor = Visitor::new(app);
    visitor.sign_in(ANA, PASSWORD).await;
    (visitor, opportunity)
}

const PAGES: [&str; 10] = [
    "/ui/",
    "/ui/offers",
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
    let wrong_method = nobody.get("/ui/logout").await;
    assert_eq!(wrong_method.status, 405);
    assert!(wrong_method.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    let missing = nobody.get("/ui/no-such-page").await;
    assert_eq!(missing.status, 404);
    assert!(missing.headers["content-type"].to_str().unwrap().starts_with("text/html"));
}

#[tokio::test]
async fn a_wrong_password_gets_the_form_again_and_signing_out_ends_the_session() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    add_user(&app, "contoso", ANA, "admin", Some(PASSWORD)).await;
    let visitor = Visitor::new(&app);
    let wrong = visitor.try_sign_in(ANA, "not the password").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("The e-mail address or the password is wrong."));
    assert!(!wrong.body.contains("not the password"), "the password is never echoed");
    let token = visitor.get("/ui/login").await.hidden("form_token");
    let fields = [("form_token", token.as_str()), ("email", ANA), ("password", PASSWORD)];
    for (header, value) in [("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")] {
        let elsewhere = visitor.post_with("/ui/login", &fields, &[(header, value)]).await;
        assert_eq!(elsewhere.status, 403, "a sign-in posted from another site ({header}) is refused");
        assert!(!elsewhere.headers.contains_key("set-cookie"));
    }
    let stranger = Visitor::new(&app);
    let forged = stranger.post("/ui/login", &fields).await;
    assert_eq!(forged.status, 403, "a form token without its cookie (a form made elsewhere) is refused");
    assert!(forged.body.contains("reload the page"));

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
    let receiver = leadrelay_testkit::TestReceiver::start().await;
    let (destination, _) = app.https_destination(&receiver.url(), None).await;
    let path = app.ingest_path(Some("contoso.crm")).await;
    let lead = app.ingest(&path, example_for("kim@northwind.com")).await.body["id"].as_str().unwrap().to_owned();
    let detail = app.wait_for_lead(&lead, "its delivery", |d| !d.is_empty()).await;
    let (customer, delivery) =
        (detail["customer_id"].as_str().unwrap(), detail["deliveries"][0]["id"].as_str().unwrap());
    let pages = [
        format!("/ui/opportunities/{opportunity}"),
        format!("/ui/customers/{customer}"),
        format!("/ui/leads/{lead}"),
        format!("/ui/destinations/{destination}"),
        format!("/ui/deliveries/{delivery}"),
    ];
    let changes_of_one = [
        format!("/ui/opportunities/{opportunity}/status"),
        format!("/ui/opportunities/{opportunity}/owner"),
        format!("/ui/opportunities/{opportunity}/activities"),
        format!("/ui/opportunities/{opportunity}/checklist"),
        format!("/ui/opportunities/{opportunity}/next-touch"),
        format!("/ui/customers/{customer}/split"),
        format!("/ui/destinations/{destination}/validate"),
        format!("/ui/destinations/{destination}/enable"),
        format!("/ui/destinations/{destination}/disable"),
        format!("/ui/destinations/{destination}/replay"),
        format!("/ui/deliveries/{delivery}/retry"),
    ];
    let changes_of_the_publisher =
        ["/ui/offers", "/ui/destinations", "/ui/ingest-keys", "/ui/team/users", "/ui/team/settings"];
    /// Every form field any of these changes reads, with values each accepts.
    async fn post(visitor: &Visitor, path: &str, csrf: &str, lead: &str) -> u16 {
        let fields = [
            ("csrf", csrf),
            ("status", "won"),
            ("owner", "none"),
            ("kind", "call"),
            ("item", "budget"),
            ("lead", lead),
        ];
        visitor.post(path, &fields).await.status
    }

    assert_eq!(app.post("/v1/publishers", json!({"id": "fabrikam", "name": "Fabrikam"})).await.status, 201);
    add_user(&app, "fabrikam", "eve@fabrikam.com", "admin", Some(PASSWORD)).await;
    let eve = Visitor::new(&app);
    eve.sign_in("eve@fabrikam.com", PASSWORD).await;
    let csrf = eve.get("/ui/").await.csrf();
    for page in &pages {
        let seen = eve.get(page).await;
        assert_eq!(seen.status, 404, "{page}");
        assert!(!seen.body.contains("Fabrikam Ltd") && !seen.body.contains("jo@fabrikam.com"), "{page}");
    }
    for change in &changes_of_one {
        assert_eq!(post(&eve, change, &csrf, &lead).await, 404, "{change}");
    }
    let found = eve.post("/ui/opportunities", &[("csrf", &csrf), ("q", "fabrikam")]).await;
    assert!(!found.body.contains(&opportunity), "a search sees only one's own publisher");

    add_user(&app, "contoso", "val@contoso.com", "viewer", Some(PASSWORD)).await;
    let val = Visitor::new(&app);
    val.sign_in("val@contoso.com", PASSWORD).await;
    let page = val.get(&format!("/ui/opportunities/{opportunity}")).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("Change status"), "a viewer is not offered changes");
    let csrf = page.csrf();
    for change in changes_of_one.iter().map(String::as_str).chain(changes_of_the_publisher) {
        assert_eq!(post(&val, change, &csrf, &lead).await, 403, "{change}");
    }
    let o = app.get(&format!("/v1/opportunities/{opportunity}")).await.body;
    assert_eq!(
        (o["status"].as_str(), o["activities"].as_array().map(Vec::len)),
        (Some("new"), Some(0)),
        "nothing changed"
    );
    assert_eq!(app.get(&format!("/v1/destinations/{destination}")).await.body["enabled"], true);
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

#[tokio::test]
async fn a_wrong_merge_is_split_from_the_customer_page() {
    let app = TestApp::spawn().await;
    let (visitor, _) = contoso_with_a_lead(&app, "Jo").await;
    let path = app.ingest_path(Some("contoso.erp")).await;
    assert_eq!(app.ingest(&path, example_for("jo@fabrikam.com")).await.status, 202);
    let leads = app.get("/v1/leads").await.body;
    let customer = leads["items"][0]["customer_id"].as_str().unwrap().to_owned();
    let newest = leads["items"][0]["id"].as_str().unwrap().to_owned();
    let page = visitor.get(&format!("/ui/customers/{customer}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("first lead") && page.body.contains("Split into a new customer"), "{}", page.body);
    let none = visitor.post(&format!("/ui/customers/{customer}/split"), &[("csrf", &page.csrf())]).await;
    assert_eq!(none.status, 422, "nothing chosen: {}", none.body);
    let split =
        visitor.post(&format!("/ui/customers/{customer}/split"), &[("csrf", &page.csrf()), ("lead", &newest)]).await;
    assert_eq!(split.status, 303, "{}", split.body);
    let new_page = visitor.get(split.location()).await;
    assert!(
        new_page.body.contains("The leads are split into a new customer.")
            && new_page.body.contains(&format!("split from {customer}"))
    );
    let moved = app.get(&format!("/v1/leads/{newest}")).await.body;
    assert_ne!(moved["customer_id"].as_str(), Some(customer.as_str()));
}

#[tokio::test]
async fn a_destination_is_added_from_its_kinds_form_disabled_enabled_and_its_dead_letter_retried() {
    let app = TestApp::spawn().await;
    let (visitor, _) = contoso_with_a_lead(&app, "Jo").await;
    let form = visitor.get("/ui/destinations/new/email").await;
    for label in ["SMTP host", "Port", "Security", "Password", "Include the customer's details", "CA certificate (PEM)"]
    {
        assert!(form.body.contains(label), "the email form has {label}");
    }
    assert!(form.body.contains("type=\"password\" name=\"settings.password\""), "a secret is typed as a password");
    let refused = visitor
        .post(
            "/ui/destinations",
            &[("csrf", &form.csrf()), ("kind", "email"), ("name", "Sales inbox"), ("settings.port", "many")],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.body.contains("settings.port") && refused.body.contains("Sales inbox"),
        "the rule, and the form kept"
    );

    let receiver = leadrelay_testkit::TestReceiver::start().await;
    receiver.respond_with(400, None);
    let added = visitor
        .post(
            "/ui/destinations",
            &[("csrf", &form.csrf()), ("kind", "https"), ("name", "CRM hook"), ("settings.url", &receiver.url())],
        )
        .await;
    assert_eq!(added.status, 200, "the generated secret is shown once: {}", added.body);
    assert!(added.body.contains("whsec_"));
    let destination =
        app.get("/v1/publishers/contoso/destinations").await.body["items"][0]["id"].as_str().unwrap().to_owned();
    let page = visitor.get(&format!("/ui/destinations/{destination}")).await;
    assert!(!page.body.contains("whsec_"), "and never again");

    let disabled = visitor.post(&format!("/ui/destinations/{destination}/disable"), &[("csrf", &page.csrf())]).await;
    assert_eq!(disabled.location(), format!("/ui/destinations/{destination}?done=disabled"));
    assert_eq!(app.get(&format!("/v1/destinations/{destination}")).await.body["enabled"], false);
    let enabled = visitor.post(&format!("/ui/destinations/{destination}/enable"), &[("csrf", &page.csrf())]).await;
    assert_eq!(enabled.status, 303);
    assert_eq!(app.get(&format!("/v1/destinations/{destination}")).await.body["enabled"], true);

    let path = app.ingest_path(Some("contoso.crm")).await;
    let lead = app.ingest(&path, example_for("kim@northwind.com")).await.body["id"].as_str().unwrap().to_owned();
    let lead = app.wait_for_lead(&lead, "a dead letter", |d| d.iter().any(|x| x["status"] == "dead")).await;
    let dead = lead["deliveries"].as_array().unwrap().iter().find(|x| x["status"] == "dead").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let letters = visitor.get(&format!("/ui/deliveries?status=dead&destination={destination}")).await;
    assert!(letters.body.contains("Dead letters") && letters.body.contains(&dead));
    receiver.respond_with(200, None);
    let retried = visitor.post(&format!("/ui/deliveries/{dead}/retry"), &[("csrf", &letters.csrf())]).await;
    assert_eq!(retried.location(), format!("/ui/deliveries/{dead}?done=retried"));
    receiver.wait_until(std::time::Duration::from_secs(10), "the retried lead", |r| r.len() >= 2).await;
}

#[tokio::test]
async fn an_admin_adds_a_person_by_invitation_saves_the_sales_settings_and_makes_an_ingest_address() {
    let app = TestApp::spawn().await;
    let (visitor, _) = contoso_with_a_lead(&app, "Jo").await;
    let team = visitor.get("/ui/team").await;
    let invited = visitor
        .post(
            "/ui/team/users",
            &[("csrf", &team.csrf()), ("email", "ben@contoso.com"), ("name", "Ben"), ("role", "member")],
        )
        .await;
    assert_eq!(invited.status, 200, "{}", invited.body);
    assert!(invited.body.contains("Ben is added.") && invited.body.contains("/ui/invitation"));
    let at = invited.body.find("<p class=\"secret\">").expect("the invitation is shown once") + 18;
    let invitation = invited.body[at..].split('<').next().unwrap().to_owned();
    let ben_browser = Visitor::new(&app);
    let form = ben_browser.get("/ui/invitation").await;
    let token = form.hidden("form_token");
    let differ = ben_browser
        .post(
            "/ui/invitation",
            &[("form_token", &token), ("invitation", &invitation), ("password", PASSWORD), ("again", "something else")],
        )
        .await;
    assert_eq!(differ.status, 422);
    let accepted = ben_browser
        .post(
            "/ui/invitation",
            &[("form_token", &token), ("invitation", &invitation), ("password", PASSWORD), ("again", PASSWORD)],
        )
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    assert!(accepted.body.contains("Your password is set, Ben."));
    ben_browser.sign_in("ben@contoso.com", PASSWORD).await;
    let again = ben_browser
        .post(
            "/ui/invitation",
            &[("form_token", &token), ("invitation", &invitation), ("password", PASSWORD), ("again", PASSWORD)],
        )
        .await;
    assert_eq!(again.status, 404, "an invitation works once");
    let ben = app.get("/v1/publishers/contoso/users").await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "ben@contoso.com")
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .unwrap();

    let saved = visitor
        .post(
            "/ui/team/settings",
            &[
                ("csrf", &team.csrf()),
                ("team", &ben),
                ("round_robin", "true"),
                ("max_open_per_owner", "30"),
                ("checklist", "budget\nauthority\ndemo_done"),
                ("first_touch_sla_hours", "8"),
                ("target_min", "3"),
                ("target_max", "9"),
                ("time_zone", "Europe/Lisbon"),
                ("business_hours", "true"),
                ("day", "mon"),
                ("day", "fri"),
                ("start", "09:00"),
                ("end", "17:30"),
            ],
        )
        .await;
    assert_eq!(saved.location(), "/ui/team?done=settings", "{}", saved.body);
    let s = app.get("/v1/publishers/contoso/settings/sales").await.body;
    assert_eq!(s["team"], json!([ben]));
    assert_eq!(s["checklist"], json!(["budget", "authority", "demo_done"]));
    assert_eq!((s["first_touch_sla_hours"].as_u64(), s["time_zone"].as_str()), (Some(8), Some("Europe/Lisbon")));
    assert_eq!(s["business_hours"], json!({"days": ["mon", "fri"], "start": "09:00", "end": "17:30"}));
    let wrong = visitor.post("/ui/team/settings", &[("csrf", &team.csrf()), ("time_zone", "Mars/Olympus")]).await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.body.contains("time_zone"));

    let offers = visitor.get("/ui/offers").await;
    assert!(offers.body.contains("Contoso CRM") && offers.body.contains("contoso.crm"));
    let saved = visitor
        .post(
            "/ui/offers",
            &[("csrf", &team.csrf()), ("offer", "portal"), ("title", "Contoso Portal"), ("type", "saas")],
        )
        .await;
    assert_eq!(saved.location(), "/ui/offers?done=offer", "{}", saved.body);
    assert_eq!(app.get("/v1/publishers/contoso/offers/contoso.portal").await.body["title"], "Contoso Portal");
    let bad = visitor
        .post("/ui/offers", &[("csrf", &team.csrf()), ("offer", "Not An Id"), ("title", "X"), ("type", "saas")])
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("lowercase letters"));

    let made = visitor.post("/ui/ingest-keys", &[("csrf", &team.csrf()), ("offer", "contoso.crm")]).await;
    assert_eq!(made.status, 200);
    let at = made.body.find("/v1/ingest/microsoft/").expect("the address is shown");
    let key_path: String =
        made.body[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '/' || *c == '_').collect();
    assert_eq!(app.ingest(&key_path, example_for("new@northwind.com")).await.status, 202, "the address takes leads");
}
