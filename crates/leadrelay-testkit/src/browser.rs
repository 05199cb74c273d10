//! A real headless Chromium driven over WebDriver (Debian's chromedriver, through `fantoccini`),
//! so the dashboard is tested as a person sees it: at a given width, checked by axe-core, with
//! a screenshot left behind when a test fails. `scripts/test` installs all three.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use fantoccini::elements::Element;
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use hyper_util::client::legacy::connect::HttpConnector;
use rustix::process::{Pid, Signal, kill_process_group};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::python::workspace_root;

/// Every window is this tall; only the width varies between test runs.
const WINDOW_HEIGHT: u32 = 900;
/// How long a helper waits for an element or a text before it fails the test.
const PATIENCE: Duration = Duration::from_secs(10);
const POLL_EVERY: Duration = Duration::from_millis(100);

/// One Chromium session behind its own chromedriver. Each test starts its own, so tests run in
/// parallel; the helpers panic with what the page showed instead of returning errors.
pub struct Browser {
    client: Client,
    /// The leader of a process group that Chromium joins. Drop kills the whole group: Chromium
    /// outlives a chromedriver killed alone, and one browser left per failed test adds up.
    chromedriver: Child,
    /// Chromium's profile and chromedriver's log; dropped after the group is killed.
    _scratch: tempfile::TempDir,
    width: u32,
}

/// Runs `body` in a fresh browser `width` px wide. When the body panics, the page is saved to
/// `target/ui-screenshots/failures/<name>-<width>.png` (and `.html`) before the panic goes on.
pub async fn run(name: &str, width: u32, body: impl AsyncFnOnce(&Browser)) {
    let browser = Browser::start(width).await;
    if let Err(panic) = AssertUnwindSafe(body(&browser)).catch_unwind().await {
        browser.save_failure(name).await;
        // Unwinding drops the browser, which kills Chromium: no need to end the session politely.
        std::panic::resume_unwind(panic);
    }
    browser.close().await;
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a headless Chromium session with
    /// a fresh profile and a viewport `width` × 900 px. Below 768 px it is a phone: a mobile
    /// viewport (`<meta name=viewport>` is obeyed, scrollbars overlay the page) with touch.
    pub async fn start(width: u32) -> Self {
        let chromedriver_path = installed("LEADRELAY_TEST_CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium_path = installed("LEADRELAY_TEST_CHROMIUM", "/usr/bin/chromium");
        let scratch = tempfile::Builder::new().prefix("leadrelay-browser-").tempdir().expect("a scratch directory");
        let log = scratch.path().join("chromedriver.log");
        // Port 0: chromedriver picks a free port and prints it, so parallel tests never race for one.
        let mut chromedriver = Command::new(&chromedriver_path)
            .arg("--port=0")
            .arg(format!("--log-path={}", log.display()))
            .arg("--log-level=WARNING")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver_path.display()));
        let port = listening_port(&mut chromedriver, &log).await;

        let profile = scratch.path().join("chromium-profile");
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            // A desktop page then gets all `width` pixels, as a phone's does, and so does its screenshot.
            "--hide-scrollbars",
            &format!("--window-size={width},{WINDOW_HEIGHT}"),
            &format!("--user-data-dir={}", profile.display()),
        ];
        // Chromium's window cannot be narrower than 500 px, so the viewport comes from device
        // emulation at every width; the window size only keeps the window out of its way.
        let phone = width < 768;
        let device =
            json!({ "width": width, "height": WINDOW_HEIGHT, "pixelRatio": 1.0, "mobile": phone, "touch": phone });
        let mut capabilities = Capabilities::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": chromium_path, "args": args, "mobileEmulation": { "deviceMetrics": device } }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| {
                panic!("chromedriver did not open a Chromium session: {e}\nchromedriver's log:\n{}", read_log(&log))
            });
        let browser = Self { client, chromedriver, _scratch: scratch, width };
        // A page that asks for the device's width, as every dashboard page does, must get `width`.
        browser.goto("data:text/html,<meta name=viewport content='width=device-width'>").await;
        let viewport = browser.client.execute("return window.innerWidth", vec![]).await.expect("read the viewport");
        assert_eq!(viewport, json!(width), "Chromium's viewport is not {width} px wide");
        browser
    }

    /// Ends the session, so Chromium quits cleanly; dropping the `Browser` then kills
    /// chromedriver. Dropping it without closing kills Chromium too.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    /// The WebDriver client, for anything the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The window's width in CSS pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Opens `url` and waits until it has loaded.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("could not open {url}: {e}"));
    }

    /// The URL of the page shown now.
    pub async fn current_url(&self) -> url::Url {
        self.client.current_url().await.expect("read the current URL")
    }

    /// Waits for an element matching `css` and returns it.
    pub async fn wait_for(&self, css: &str) -> Element {
        self.retry(css, "find", async |e| Ok(e)).await
    }

    /// Waits until the element matching `css` contains `needle` and returns its whole text.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let doing = format!("see {needle:?} in");
        self.retry(css, &doing, async |e| {
            let text = e.text().await.map_err(|e| e.to_string())?;
            if text.contains(needle) { Ok(text) } else { Err(format!("it read {text:?}")) }
        })
        .await
    }

    /// The visible text of the element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.retry(css, "read", async |e| e.text().await.map_err(|e| e.to_string())).await
    }

    /// Clears the field matching `css`, then types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) {
        self.retry(css, "fill", async |e| {
            e.clear().await.map_err(|e| e.to_string())?;
            e.send_keys(text).await.map_err(|e| e.to_string())
        })
        .await;
    }

    /// Chooses the option whose value is `value` in the `<select>` matching `css`.
    pub async fn select(&self, css: &str, value: &str) {
        self.retry(css, "select a value in", async |e| e.select_by_value(value).await.map_err(|e| e.to_string())).await;
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        self.retry(css, "click", async |e| e.click().await.map_err(|e| e.to_string())).await;
    }

    /// Saves a PNG of the whole page (not only the window) to `path`, creating its folder.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.full_page_png().await.unwrap_or_else(|e| panic!("could not take a screenshot: {e}"));
        write(path, &png);
    }

    /// Saves the page to `target/ui-screenshots/<width>/<page>.png` and returns that path.
    pub async fn capture(&self, page: &str) -> PathBuf {
        let path = self.output_dir().join(format!("{page}.png"));
        self.screenshot(&path).await;
        path
    }

    /// Runs axe-core in the page and returns its violations; also writes them to
    /// `target/ui-screenshots/<width>/<page>.axe.json`.
    ///
    /// WebDriver scripts run outside the page's Content-Security-Policy, so this works on pages
    /// whose CSP forbids inline and injected scripts.
    pub async fn axe(&self, page: &str) -> AxeReport {
        self.client.execute(&axe_source(), vec![]).await.unwrap_or_else(|e| panic!("could not inject axe-core: {e}"));
        let answer = self.client.execute_async(RUN_AXE, vec![]).await.unwrap_or_else(|e| panic!("axe.run failed: {e}"));
        let violations = match serde_json::from_value(answer.clone()) {
            Ok(AxeAnswer::Ran { violations }) => violations,
            Ok(AxeAnswer::Failed { error }) => panic!("axe.run failed: {error}"),
            Err(e) => panic!("axe.run answered what the harness cannot read ({e}): {answer}"),
        };
        let report =
            AxeReport { page: page.to_owned(), width: self.width, url: self.current_url().await.into(), violations };
        let json = serde_json::to_vec_pretty(&report).expect("serialize the axe report");
        write(&self.output_dir().join(format!("{page}.axe.json")), &json);
        report
    }

    fn output_dir(&self) -> PathBuf {
        screenshots_dir().join(self.width.to_string())
    }

    /// Runs `action` on the element matching `css` until it succeeds, or panics after
    /// [`PATIENCE`] with the last failure and what the page showed.
    async fn retry<T>(&self, css: &str, doing: &str, action: impl AsyncFn(Element) -> Result<T, String>) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let failure = match self.client.find(Locator::Css(css)).await {
                Ok(element) => match action(element).await {
                    Ok(done) => return done,
                    Err(e) => e,
                },
                Err(e) => format!("no element matched ({e})"),
            };
            if Instant::now() >= deadline {
                panic!("could not {doing} `{css}` within {} s: {failure}\n{}", PATIENCE.as_secs(), self.seen().await);
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// The URL and the start of the visible text, for failure messages.
    async fn seen(&self) -> String {
        let url = self.client.current_url().await.map(String::from).unwrap_or_else(|e| format!("(no URL: {e})"));
        let text = self
            .client
            .execute("return document.body ? document.body.innerText.slice(0, 2000) : ''", vec![])
            .await
            .map(|t| t.as_str().unwrap_or_default().to_owned())
            .unwrap_or_else(|e| format!("(could not read the page: {e})"));
        format!("the page at {url} read:\n{text}")
    }

    /// Chromium's own full-page capture (`Page.captureScreenshot` beyond the viewport, through
    /// chromedriver's CDP bridge): WebDriver's screenshot stops at the window's bottom edge.
    async fn full_page_png(&self) -> Result<Vec<u8>, String> {
        let metrics = self.cdp("Page.getLayoutMetrics", json!({})).await?;
        let size = &metrics["cssContentSize"];
        let clip = json!({ "x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1 });
        let shot = self
            .cdp("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true, "clip": clip }))
            .await?;
        let data = shot["data"].as_str().ok_or_else(|| format!("no image in {shot}"))?;
        base64::engine::general_purpose::STANDARD.decode(data).map_err(|e| e.to_string())
    }

    async fn cdp(&self, command: &'static str, params: serde_json::Value) -> Result<serde_json::Value, String> {
        self.client.issue_cmd(ChromeDevTools { command, params }).await.map_err(|e| format!("{command}: {e}"))
    }

    /// Best effort, because the test has already failed: a second panic here would hide the first.
    async fn save_failure(&self, name: &str) {
        let png = screenshots_dir().join("failures").join(format!("{name}-{}.png", self.width));
        let html = png.with_extension("html");
        let shot = self.full_page_png().await.and_then(|bytes| try_write(&png, &bytes));
        let source = self.client.source().await.map_err(|e| e.to_string()).and_then(|s| try_write(&html, s.as_bytes()));
        for (path, saved) in [(&png, shot), (&html, source)] {
            match saved {
                Ok(()) => eprintln!("the failing page: {}", path.display()),
                Err(e) => eprintln!("could not save {}: {e}", path.display()),
            }
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // `id()` is `None` once the child has been reaped, so a recycled pid is never signalled.
        if let Some(group) = self.chromedriver.id().and_then(|id| Pid::from_raw(id.cast_signed())) {
            let _ = kill_process_group(group, Signal::KILL);
        }
    }
}

/// What axe-core found wrong in one page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AxeReport {
    /// The name the test gave the page.
    pub page: String,
    /// The window's width in CSS pixels.
    pub width: u32,
    /// The page's URL when axe ran.
    pub url: String,
    /// Every rule the page broke.
    pub violations: Vec<AxeViolation>,
}

/// One axe-core rule the page broke, with every element that broke it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AxeViolation {
    /// The rule, e.g. `label` or `color-contrast`.
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: Option<String>,
    /// What the rule asks for, in a sentence.
    pub help: String,
    /// Deque's page about the rule.
    pub help_url: String,
    /// The elements that break it.
    pub nodes: Vec<AxeNode>,
}

/// One element that breaks an axe-core rule.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AxeNode {
    /// CSS selectors that reach the element, one per frame (shadow roots joined with `>>>`).
    pub target: Vec<String>,
    /// The element's opening HTML.
    pub html: String,
    /// How to fix it.
    pub failure_summary: String,
}

impl AxeReport {
    /// The violations whose impact is serious or critical: the ones a page must not have.
    pub fn serious(&self) -> Vec<&AxeViolation> {
        self.violations.iter().filter(|v| matches!(v.impact.as_deref(), Some("serious" | "critical"))).collect()
    }

    /// Panics listing every serious or critical violation and the elements that cause it.
    pub fn assert_no_serious(&self) {
        let serious = self.serious();
        if serious.is_empty() {
            return;
        }
        let mut message = format!(
            "axe-core found serious or critical violations on {} at {} px ({}):",
            self.page, self.width, self.url
        );
        for v in serious {
            message.push_str(&format!(
                "\n  {} ({}): {} <{}>",
                v.id,
                v.impact.as_deref().unwrap_or("?"),
                v.help,
                v.help_url
            ));
            for node in &v.nodes {
                message.push_str(&format!("\n    {}  {}", node.target.join(" "), node.html));
            }
        }
        panic!("{message}");
    }
}

/// Runs axe over the whole document and answers only what the Rust side reads, so the WebDriver
/// answer stays small.
const RUN_AXE: &str = r"
const done = arguments[arguments.length - 1];
axe.run(document, { resultTypes: ['violations'] }).then(
  (results) => done({
    violations: results.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      help_url: v.helpUrl,
      nodes: v.nodes.map((n) => ({
        target: n.target.map((t) => (Array.isArray(t) ? t.join(' >>> ') : t)),
        html: n.html,
        failure_summary: n.failureSummary || '',
      })),
    })),
  }),
  (error) => done({ error: String(error) }),
);
";

/// What [`RUN_AXE`] calls back with.
#[derive(Deserialize)]
#[serde(untagged)]
enum AxeAnswer {
    Ran { violations: Vec<AxeViolation> },
    Failed { error: String },
}

/// A ChromeDevTools Protocol command sent through chromedriver's `goog/cdp/execute` endpoint.
#[derive(Debug)]
struct ChromeDevTools {
    command: &'static str,
    params: serde_json::Value,
}

impl WebDriverCompatibleCommand for ChromeDevTools {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/goog/cdp/execute", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({ "cmd": self.command, "params": self.params }).to_string()))
    }
}

/// The program named by `variable`, else the one Debian installs at `default`.
fn installed(variable: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.exists(),
        "{} does not exist: run scripts/test (it installs Debian's chromium and chromium-driver) or set {variable}",
        path.display()
    );
    path
}

/// Reads chromedriver's "started successfully on port N" line.
async fn listening_port(chromedriver: &mut Child, log: &Path) -> u16 {
    let stdout = chromedriver.stdout.take().expect("chromedriver's stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let port = tokio::time::timeout(PATIENCE, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                return rest.trim_end_matches('.').parse::<u16>().ok();
            }
            seen.push(line);
        }
        None
    })
    .await;
    let Ok(Some(port)) = port else {
        panic!("chromedriver did not start; it printed:\n{}\nits log:\n{}", seen.join("\n"), read_log(log));
    };
    // Keep reading, so chromedriver never blocks (or dies) writing to a full or closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    port
}

fn read_log(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_else(|e| format!("(no log at {}: {e})", log.display()))
}

/// axe-core's browser build: `LEADRELAY_TEST_AXE`, else where `scripts/test` installs it.
fn axe_source() -> String {
    let path = std::env::var_os("LEADRELAY_TEST_AXE")
        .map_or_else(|| workspace_root().join("tools/axe/node_modules/axe-core/axe.min.js"), PathBuf::from);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core is not at {} ({e}): run scripts/test (it installs it with npm) or set LEADRELAY_TEST_AXE",
            path.display()
        )
    })
}

/// `target/ui-screenshots` in the build's target directory (`CARGO_TARGET_DIR`, taken relative to
/// the workspace root, else the workspace's own `target/`), so the files are never in git.
pub fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    workspace_root().join(target).join("ui-screenshots")
}

fn try_write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    std::fs::write(path, bytes).map_err(|e| e.to_string())
}

fn write(path: &Path, bytes: &[u8]) {
    try_write(path, bytes).unwrap_or_else(|e| panic!("could not write {}: {e}", path.display()));
}
