//! The dashboard in a real headless Chromium (Debian's, driven over WebDriver), at a desktop
//! width and a phone's: what a sales rep does with a new lead, and what an admin does with a
//! destination that refuses leads. Every main screen is checked by axe-core (no serious or
//! critical violation) and captured under `target/ui-screenshots/<width>/`; a failing walk
//! leaves a screenshot under `target/ui-screenshots/failures/`.

use leadrelay_testkit::TestReceiver;
use leadrelay_testkit::browser::{self, Browser};
use serde_json::json;

use crate::dashboard::{ANA, PASSWORD};
use crate::people::add_user;
use crate::support::{TestApp, example_for};

const ADA: &str = "ada.admin@contoso.com";

/// Every main screen: checked by axe and captured. The issue asks for no serious or critical
/// violation; the pages have none of any impact, and keep it so.
async fn check(b: &Browser, page: &str) {
    let report = b.axe(page).await;
    report.assert_no_serious();
    let found: Vec<_> = report.violations.iter().map(|v| (&v.id, &v.impact)).collect();
    assert!(found.is_empty(), "axe-core found on {page} at {} px: {found:?}", b.width());
    b.capture(page).await;
}

async fn sign_in(b: &Browser, app: &TestApp, email: &str) {
    b.goto(&format!("{}/ui/", app.base)).await;
    b.wait_for("#email").await;
    check(b, "login").await;
    b.fill("#email", email).await;
    b.fill("#password", PASSWORD).await;
    b.click("form[action='/ui/login'] button[type=submit]").await;
    b.wait_for_text("h1", "Inbox").await;
}

async fn ingest(app: &TestApp, email: &str, first: &str, company: &str) {
    let path = app.ingest_path(Some("contoso.crm")).await;
    let mut lead = example_for(email);
    lead["UserDetails"]["FirstName"] = json!(first);
    lead["UserDetails"]["Company"] = json!(company);
    assert_eq!(app.ingest(&path, lead).await.status, 202);
}

/// The first Tab on a page reaches "Skip to content", drawn with a focus ring; Enter on it
/// puts the focus on the page's content.
async fn keyboard_reaches_the_content_with_a_visible_focus(b: &Browser) {
    const TAB: &str = "\u{e004}";
    const ENTER: &str = "\u{e007}";
    b.client().active_element().await.unwrap().send_keys(TAB).await.unwrap();
    let focused = b
        .client()
        .execute(
            "const e = document.activeElement, s = getComputedStyle(e); \
             return [e.className, e.getBoundingClientRect().left >= 0, s.outlineStyle, s.outlineWidth];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(focused, json!(["skip", true, "solid", "3px"]), "the skip link is focused, on screen, with a ring");
    b.client().active_element().await.unwrap().send_keys(ENTER).await.unwrap();
    let now = b.client().execute("return document.activeElement.id", vec![]).await.unwrap();
    assert_eq!(now, json!("main"), "Enter on the skip link moves the focus to the content");
}

/// Log in, see a new lead arrive in the open inbox, find it by a word of its company, open
/// it, log a call, tick the checklist, qualify it, assign it, and read the SLA clock.
async fn a_sales_rep_works_a_new_lead(width: u32) {
    let app = TestApp::spawn().await;
    app.contoso().await;
    let ana = add_user(&app, "contoso", ANA, "member", Some(PASSWORD)).await["id"].as_str().unwrap().to_owned();
    ingest(&app, "old@northwind.com", "Old", "Northwind Traders").await;
    browser::run("sales-rep", width, async |b| {
        sign_in(b, &app, ANA).await;
        keyboard_reaches_the_content_with_a_visible_focus(b).await;
        b.wait_for_text("#inbox", "Northwind Traders").await;
        ingest(&app, "jo@fabrikam.com", "Jo", "Fabrikam Ltd").await;
        b.wait_for_text("#inbox", "Fabrikam Ltd").await;
        check(b, "inbox").await;

        b.click("nav a[href='/ui/opportunities']").await;
        b.fill("#f-q", "fabrikam").await;
        b.click("form[role=search] button[type=submit]").await;
        // The list before the search holds Fabrikam too: wait for the answer to the search.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let found = loop {
            let found = b.wait_for_text("ul.cards", "Fabrikam Ltd").await;
            if !found.contains("Northwind") || tokio::time::Instant::now() > deadline {
                break found;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        assert!(!found.contains("Northwind"), "the search found only the Fabrikam lead: {found}");
        check(b, "opportunities").await;
        b.click("ul.cards a.title").await;
        b.wait_for_text("h1", "Jo").await;
        b.wait_for_text("#sla", "left").await;

        b.select("#f-kind", "call").await;
        b.fill("#f-outcome", "Left a voicemail").await;
        b.click("form[action$='/activities'] button[type=submit]").await;
        b.wait_for_text(".banner", "The follow-up is logged.").await;
        b.wait_for_text("#h-log", "1 of 5–12").await;
        b.wait_for_text("#sla", "first touch after").await;

        b.click("form[action$='/checklist'] button[type=submit]").await;
        b.wait_for_text(".banner", "The checklist is updated.").await;
        b.wait_for_text("section[aria-labelledby=h-checklist]", "done").await;

        b.select("#f-status", "qualified").await;
        b.click("form[action$='/status'] button[type=submit]").await;
        b.wait_for_text(".banner", "The status is changed.").await;
        b.wait_for_text("section[aria-labelledby=h-state]", "qualified").await;

        b.select("#f-owner", &ana).await;
        b.click("form[action$='/owner'] button[type=submit]").await;
        b.wait_for_text(".banner", "The owner is changed.").await;
        b.wait_for_text("#owner", "Name of").await;
        check(b, "opportunity").await;

        b.click("section[aria-labelledby=h-customer] a").await;
        b.wait_for_text("table", "first lead").await;
        check(b, "customer").await;
        b.click("nav a[href='/ui/leads']").await;
        b.wait_for_text("table", "Fabrikam Ltd").await;
        check(b, "leads").await;
        b.click("tbody a").await;
        b.wait_for_text("#h-deliveries", "Deliveries").await;
        check(b, "lead").await;
    })
    .await;
    let detail = app.get("/v1/publishers/contoso/opportunities?q=fabrikam").await.body;
    let o = &detail["items"][0];
    assert_eq!((o["status"].as_str(), o["owner"].as_str()), (Some("qualified"), Some(ana.as_str())), "{o:#}");
}

#[tokio::test]
async fn a_sales_rep_works_a_new_lead_at_1280_px() {
    a_sales_rep_works_a_new_lead(1280).await;
}

#[tokio::test]
async fn a_sales_rep_works_a_new_lead_at_390_px() {
    a_sales_rep_works_a_new_lead(390).await;
}

/// The funnel's count of one status, as its table of numbers shows it.
async fn funnel_count(b: &Browser, status: &str) -> u64 {
    let text = b.text("section[aria-labelledby=h-funnel] details table").await;
    let line =
        text.lines().find(|l| l.trim_start().starts_with(status)).unwrap_or_else(|| panic!("no {status} in {text}"));
    line.split_whitespace().last().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no count in {line:?}"))
}

/// An admin adds an https destination whose receiver refuses leads, validates it and reads
/// the hint, sees the lead become a dead letter, replays it once the receiver is fixed, and
/// sees the funnel change on the KPI page.
async fn an_admin_fixes_a_destination(width: u32) {
    let app = TestApp::spawn().await;
    app.contoso().await;
    add_user(&app, "contoso", ADA, "admin", Some(PASSWORD)).await;
    let receiver = TestReceiver::start().await;
    receiver.respond_with(400, None);
    browser::run("admin", width, async |b| {
        sign_in(b, &app, ADA).await;
        b.click("nav a[href='/ui/offers']").await;
        b.fill("#f-offer", "portal").await;
        b.fill("#f-title", "Contoso Portal").await;
        b.click("form[action='/ui/offers'] button[type=submit]").await;
        b.wait_for_text(".banner", "The offer is saved.").await;
        b.wait_for_text("table", "contoso.portal").await;
        check(b, "offers").await;
        b.click("nav a[href='/ui/kpis']").await;
        b.click("section[aria-labelledby=h-funnel] details summary").await;
        assert_eq!(funnel_count(b, "new").await, 0);

        b.click("nav a[href='/ui/destinations']").await;
        check(b, "destinations").await;
        b.click("a[href='/ui/destinations/new/https']").await;
        b.fill("#f-name", "CRM hook").await;
        b.fill("#f-settings-url", &receiver.url()).await;
        check(b, "destination-new").await;
        b.click("form[action='/ui/destinations'] button[type=submit]").await;
        b.wait_for_text("p.secret", "whsec_").await;

        b.click("form[action$='/validate'] button[type=submit]").await;
        b.wait_for_text("#validation", "failed").await;
        let hint = b.text("#hint").await;
        assert!(hint.len() > "Hint: ".len() + 10, "a hint to act on: {hint}");
        check(b, "destination").await;

        ingest(&app, "jo@fabrikam.com", "Jo", "Fabrikam Ltd").await;
        receiver.wait_until(std::time::Duration::from_secs(10), "the lead's attempt", |r| r.len() >= 2).await;
        b.click("nav a[href='/ui/deliveries']").await;
        b.select("#f-status", "dead").await;
        b.click("form.filters button[type=submit]").await;
        b.wait_for_text("h1", "Dead letters").await;
        b.wait_for_text("table", "dead letter").await;
        check(b, "dead-letters").await;
        b.click("tbody a").await;
        b.wait_for_text("h1", "Delivery").await;
        b.wait_for_text("table", "HTTP 400").await;
        check(b, "delivery").await;

        receiver.respond_with(200, None);
        b.click("h2 a").await;
        b.click("#f-only-dead").await;
        b.client().execute("window.confirm = () => true", vec![]).await.unwrap();
        b.click("form[action$='/replay'] button[type=submit]").await;
        b.wait_for_text(".banner", "1 lead is queued").await;
        receiver
            .wait_until(std::time::Duration::from_secs(10), "the replayed lead", |r| {
                r.iter().filter(|x| x.json()["UserDetails"]["Company"] == "Fabrikam Ltd").count() >= 2
            })
            .await;

        b.click("nav a[href='/ui/kpis']").await;
        b.click("section[aria-labelledby=h-funnel] details summary").await;
        assert_eq!(funnel_count(b, "new").await, 1, "the new lead opened an opportunity");
        check(b, "kpis").await;

        b.click("nav a[href='/ui/team']").await;
        b.wait_for_text("table", ADA).await;
        check(b, "team").await;
        b.goto(&format!("{}/ui/invitation", app.base)).await;
        b.wait_for_text("h1", "Accept an invitation").await;
        check(b, "invitation").await;
        b.goto(&format!("{}/ui/", app.base)).await;
        b.click("nav a[href='/ui/audit']").await;
        b.wait_for_text("table", "destination.create").await;
        check(b, "audit").await;
    })
    .await;
}

#[tokio::test]
async fn an_admin_fixes_a_destination_at_1280_px() {
    an_admin_fixes_a_destination(1280).await;
}

#[tokio::test]
async fn an_admin_fixes_a_destination_at_390_px() {
    an_admin_fixes_a_destination(390).await;
}
