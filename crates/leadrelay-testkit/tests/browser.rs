//! The browser harness against a tiny site served under the dashboard's Content-Security-Policy:
//! forms, waits, screenshots and axe-core work in a real Chromium at both widths.

use std::panic::AssertUnwindSafe;

use axum::Router;
use axum::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use leadrelay_testkit::browser::{self, Browser};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; \
                   base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Taller than the window, so a screenshot shows whether it covers the whole page.
const STYLE: &str = "main { min-height: 1600px; font-family: sans-serif; }";

const FORM: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Greeter</title><link rel="stylesheet" href="/style.css"></head>
<body><main><h1>Greeter</h1>
<form method="post" action="/greet">
  <label for="name">Name</label> <input id="name" name="name" value="someone">
  <label for="tone">Tone</label>
  <select id="tone" name="tone"><option value="warm">Warm</option><option value="formal">Formal</option></select>
  <button type="submit">Greet</button>
</form>
<p id="inline">The page's CSP blocked the inline script.</p>
<script>document.getElementById('inline').textContent = 'The inline script ran.';</script>
</main></body></html>"#;

const UNLABELLED: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Unlabelled</title></head>
<body><main><h1>Unlabelled</h1><form><input id="nameless" name="nameless"></form></main></body></html>"#;

fn page(html: String) -> impl IntoResponse {
    ([(CONTENT_SECURITY_POLICY, CSP)], Html(html))
}

async fn greet(form: String) -> impl IntoResponse {
    let field =
        |key: &str| url::form_urlencoded::parse(form.as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v.into_owned());
    let name = field("name").unwrap_or_default().replace('&', "&amp;").replace('<', "&lt;");
    let salutation = if field("tone").as_deref() == Some("formal") { "Good day" } else { "Hi" };
    page(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Greeted</title></head>
        <body><main><h1>Greeted</h1><p id="greeting">{salutation}, {name}.</p></main></body></html>"#
    ))
}

async fn site() -> (String, tokio::sync::oneshot::Sender<()>) {
    let app = Router::new()
        .route("/", get(|| async { page(FORM.to_owned()) }))
        .route("/greet", axum::routing::post(greet))
        .route("/unlabelled", get(|| async { page(UNLABELLED.to_owned()) }))
        .route("/style.css", get(|| async { ([(CONTENT_TYPE, "text/css"), (CONTENT_SECURITY_POLICY, CSP)], STYLE) }));
    let (addr, stop) = leadrelay_testkit::serve(app).await;
    (format!("http://{addr}"), stop)
}

/// The width and height of a PNG, from its IHDR chunk.
fn png_size(path: &std::path::Path) -> (u32, u32) {
    let png = std::fs::read(path).expect("read the screenshot");
    assert_eq!(&png[1..4], b"PNG", "{} is not a PNG", path.display());
    let word = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().expect("four bytes"));
    (word(16), word(20))
}

async fn submit_the_form_and_run_axe(width: u32) {
    let (site, _stop) = site().await;
    browser::run("harness", width, async |b: &Browser| {
        b.goto(&format!("{site}/")).await;
        assert_eq!(b.text("#inline").await, "The page's CSP blocked the inline script.");
        b.fill("#name", "Ana <Lindqvist>").await;
        b.select("#tone", "formal").await;
        b.click("button[type=submit]").await;
        let greeting = b.wait_for_text("#greeting", "Good day").await;
        assert_eq!(greeting, "Good day, Ana <Lindqvist>.");
        assert_eq!(b.current_url().await.path(), "/greet");

        b.goto(&format!("{site}/")).await;
        let shot = b.capture("harness-form").await;
        let (shot_width, shot_height) = png_size(&shot);
        assert_eq!(shot_width, width, "the screenshot is as wide as the window");
        assert!(shot_height >= 1600, "the screenshot covers the whole page, not only the window: {shot_height} px");
        let clean = b.axe("harness-form").await;
        assert!(clean.violations.is_empty(), "{clean:#?}");
        clean.assert_no_serious();

        b.goto(&format!("{site}/unlabelled")).await;
        let report = b.axe("harness-unlabelled").await;
        let label = report.violations.iter().find(|v| v.id == "label").expect("a `label` violation");
        assert_eq!(label.impact.as_deref(), Some("critical"));
        assert_eq!(label.nodes[0].target, ["#nameless"]);
        let refused = std::panic::catch_unwind(|| report.assert_no_serious()).expect_err("a critical violation fails");
        let message = refused.downcast_ref::<String>().expect("a formatted panic message");
        assert!(message.contains("label (critical)") && message.contains("#nameless"), "{message}");
        let json =
            std::fs::read_to_string(browser::screenshots_dir().join(format!("{width}/harness-unlabelled.axe.json")))
                .expect("the report is written beside the screenshots");
        assert!(json.contains("\"label\""), "{json}");
    })
    .await;
}

#[tokio::test]
async fn a_form_is_submitted_and_axe_runs_under_a_strict_csp_at_1280_px() {
    submit_the_form_and_run_axe(1280).await;
}

#[tokio::test]
async fn a_form_is_submitted_and_axe_runs_under_a_strict_csp_at_390_px() {
    submit_the_form_and_run_axe(390).await;
}

/// A plain `#[test]` with its own runtime, dropped while the panic unwinds, because that is how a
/// failing `#[tokio::test]` ends: no task gets to close the session afterwards.
#[test]
fn a_failing_body_leaves_a_screenshot_and_the_html_and_no_chromium() {
    let failures = browser::screenshots_dir().join("failures");
    let png = failures.join("harness-failure-390.png");
    let html = failures.join("harness-failure-390.html");
    let _ = std::fs::remove_file(&png);
    let _ = std::fs::remove_file(&html);

    let mut profile = None;
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(async {
            let (site, _stop) = site().await;
            browser::run("harness-failure", 390, async |b: &Browser| {
                let capabilities = b.client().capabilities().expect("the session's capabilities");
                profile = capabilities["chrome"]["userDataDir"].as_str().map(str::to_owned);
                b.goto(&format!("{site}/")).await;
                panic!("failing on purpose");
            })
            .await;
        });
    }));

    assert!(outcome.is_err(), "the body's panic is passed on");
    assert_eq!(png_size(&png).0, 390);
    assert!(std::fs::read_to_string(&html).expect("the page's HTML").contains("Greeter"));
    let profile = profile.expect("chromedriver names Chromium's profile directory");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while processes_using(&profile) > 0 {
        assert!(std::time::Instant::now() < deadline, "Chromium outlived its Browser");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// How many live processes have `needle` in their command line.
fn processes_using(needle: &str) -> usize {
    let processes = std::fs::read_dir("/proc").expect("list /proc").flatten();
    processes
        .filter_map(|p| std::fs::read(p.path().join("cmdline")).ok())
        .filter(|cmdline| String::from_utf8_lossy(cmdline).contains(needle))
        .count()
}
