//! Starting and killing the real `leadrelay` binary.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const ADMIN: &str = "crash-test-admin";

pub fn binary() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_leadrelay"));
    c.env_remove("LEADRELAY_ADMIN_TOKEN").env("RUST_LOG", "warn");
    c
}

/// A running `leadrelay serve`.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// Everything it printed on stdout before it was ready.
    pub banner: Vec<String>,
}

/// Starts `leadrelay serve` on a free port and waits for its "listening on" line.
pub async fn start(cmd: Command) -> Server {
    start_logging_to(cmd, Stdio::inherit()).await
}

/// As [`start`], with the server's log (stderr) sent to `stderr`.
pub async fn start_logging_to(mut cmd: Command, stderr: Stdio) -> Server {
    cmd.stdout(Stdio::piped()).stderr(stderr).kill_on_drop(true);
    let mut child = cmd.spawn().expect("start leadrelay");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut banner = Vec::new();
    let base = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let line = lines.next_line().await.expect("read stdout").expect("leadrelay exited before listening");
            banner.push(line.clone());
            if let Some(url) = line.strip_prefix("leadrelay listening on ") {
                return url.trim().to_owned();
            }
        }
    })
    .await
    .expect("leadrelay did not start within 30 s");
    // Keep reading the banner's remaining lines so the pipe never fills.
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        let mut rest = Vec::new();
        while rest.len() < 3 {
            match lines.next_line().await {
                Ok(Some(l)) => rest.push(l),
                _ => break,
            }
        }
        rest
    })
    .await
    .unwrap_or_default();
    banner.extend(rest);
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Server { child, base, banner }
}

/// `leadrelay serve --listen 127.0.0.1:0 --data-dir DIR` with test settings.
pub fn serve(data_dir: &Path, extra_env: &[(&str, &str)]) -> Command {
    let mut c = binary();
    c.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(data_dir).env("LEADRELAY_ADMIN_TOKEN", ADMIN);
    for (k, v) in extra_env {
        c.env(k, v);
    }
    c
}

/// An HTTP client for talking to the server under test.
pub fn client() -> reqwest::Client {
    leadrelay_destinations::install_crypto_provider();
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client")
}

/// Creates the publisher `contoso` and an ingest key for it on `server`; returns the key's
/// ingest path.
pub async fn contoso_with_ingest_key(client: &reqwest::Client, server: &Server) -> String {
    let (status, _) =
        admin_post(client, server, "/v1/publishers", serde_json::json!({"id": "contoso", "name": "Contoso"})).await;
    assert_eq!(status, 201);
    let (_, key) = admin_post(client, server, "/v1/publishers/contoso/ingest-keys", serde_json::json!({})).await;
    key["path"].as_str().unwrap().to_owned()
}

/// `POST path` with the admin token and a JSON body; the status and the JSON answer.
pub async fn admin_post(
    client: &reqwest::Client,
    server: &Server,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let res = client.post(format!("{}{path}", server.base)).bearer_auth(ADMIN).json(&body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

/// `GET path` with the admin token; the JSON answer.
pub async fn admin_get(client: &reqwest::Client, server: &Server, path: &str) -> serde_json::Value {
    client.get(format!("{}{path}", server.base)).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap()
}

/// Every stored lead id, across pages.
pub async fn all_lead_ids(client: &reqwest::Client, server: &Server) -> std::collections::BTreeSet<String> {
    let mut ids = std::collections::BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/v1/leads?limit=1000".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = admin_get(client, server, &path).await;
        for item in page["items"].as_array().unwrap() {
            ids.insert(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return ids,
        }
    }
}

/// `leadrelay serve` as one node of several sharing the PostgreSQL database at `url`: every
/// node gets the same encryption key (`key`, base64) and admin token, and a data dir of its own.
pub fn serve_node(data_dir: &Path, url: &str, key: &str, extra_env: &[(&str, &str)]) -> Command {
    let mut c = serve(data_dir, extra_env);
    c.env("LEADRELAY_STORAGE__URL", url).env("LEADRELAY_SECURITY__ENCRYPTION_KEY", key);
    c
}

/// The status `GET /readyz` answers.
pub async fn readyz(client: &reqwest::Client, server: &Server) -> u16 {
    client.get(format!("{}/readyz", server.base)).send().await.unwrap().status().as_u16()
}

/// Polls `GET /readyz` until it answers `status`, or panics after `timeout`.
pub async fn wait_for_readyz(client: &reqwest::Client, server: &Server, status: u16, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let now = readyz(client, server).await;
        if now == status {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}/readyz still answers {now} after {timeout:?}, not {status}",
            server.base
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Adds an https destination to `contoso` that posts to `url`.
pub async fn contoso_destination(client: &reqwest::Client, server: &Server, url: &str) {
    let (status, answer) = admin_post(
        client,
        server,
        "/v1/publishers/contoso/destinations",
        serde_json::json!({"name": "hook", "kind": "https", "settings": {"url": url}}),
    )
    .await;
    assert_eq!(status, 201, "creating the destination: {answer}");
}

/// Polls until no delivery is pending (each delivered or dead), or panics after `timeout`.
pub async fn wait_until_no_delivery_pending(client: &reqwest::Client, server: &Server, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let page = admin_get(client, server, "/v1/deliveries?status=pending&limit=100").await;
        let pending = page["items"].as_array().map_or(0, Vec::len);
        if pending == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{pending} or more deliveries still pending after {timeout:?}: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
