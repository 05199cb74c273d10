//! The processes the benchmark measures: this same binary started again, either as a real
//! `leadrelay serve` on a fresh data directory or as the bare ceiling server. A child process
//! (not a task in ours) so its memory, threads and runtime are exactly a production server's.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The admin token the benchmark's servers start with (they hold only benchmark data).
const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdef0123456789abcdef";

/// A running child server.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    http: reqwest::Client,
}

impl Server {
    /// `binary serve` on `data_dir`, with SQLite or the storage URL given, reaching private
    /// addresses (the receiver is on loopback) and logging warnings only.
    pub async fn leadrelay(binary: &Path, data_dir: &Path, storage_url: Option<&str>) -> anyhow::Result<Self> {
        Self::leadrelay_keyed(binary, data_dir, storage_url, &leadrelay_core::vault::Keyring::generate_key()).await
    }

    /// As [`Server::leadrelay`], with this encryption key: nodes sharing one database need one.
    pub async fn leadrelay_keyed(
        binary: &Path,
        data_dir: &Path,
        storage_url: Option<&str>,
        encryption_key: &str,
    ) -> anyhow::Result<Self> {
        let mut cmd = Command::new(binary);
        cmd.arg("serve").arg("--listen").arg("127.0.0.1:0").arg("--data-dir").arg(data_dir);
        clean_env(&mut cmd);
        // A fresh key through the environment rather than the generated key file, whose
        // "back it up" notice means nothing for a database deleted after the run.
        cmd.env("LEADRELAY_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("LEADRELAY_SECURITY__ENCRYPTION_KEY", encryption_key)
            .env("LEADRELAY_DELIVERY__ALLOW_PRIVATE_DESTINATIONS", "true")
            .env("LEADRELAY_TELEMETRY__FILTER", "warn");
        if let Some(url) = storage_url {
            cmd.env("LEADRELAY_STORAGE__URL", url);
        }
        Self::start(cmd, "leadrelay listening on http://").await
    }

    /// The bare ceiling server (`leadrelay bench-ceiling`).
    pub async fn ceiling() -> anyhow::Result<Self> {
        let mut cmd = Command::new(std::env::current_exe().context("finding this binary")?);
        cmd.arg("bench-ceiling");
        clean_env(&mut cmd);
        Self::start(cmd, super::ceiling::LISTENING).await
    }

    async fn start(mut cmd: Command, banner: &str) -> anyhow::Result<Self> {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        let mut child = cmd.spawn().context("starting a server process")?;
        let stdout = child.stdout.take().context("the server's output")?;
        let stderr = child.stderr.take().context("the server's log")?;
        // Its log goes on to ours; the last line is kept to say why it did not start.
        let log = tokio::spawn(async move {
            let (mut lines, mut last) = (BufReader::new(stderr).lines(), String::new());
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("{line}");
                last = line;
            }
            last
        });
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.strip_prefix(banner) {
                    return Ok(Some(rest.trim().parse::<SocketAddr>().context("the server's listen address")?));
                }
            }
            anyhow::Ok(None)
        })
        .await
        .context("the server did not start within 60 s")??;
        let Some(addr) = addr else {
            let last = tokio::time::timeout(Duration::from_secs(5), log).await.ok().and_then(Result::ok);
            bail!("the server exited before it listened: {}", last.unwrap_or_default());
        };
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let http = reqwest::Client::builder().build().context("building the admin client")?;
        Ok(Self { child, addr, http })
    }

    /// Peak resident memory of the server so far (`VmHWM`), in bytes.
    pub fn peak_rss_bytes(&self) -> anyhow::Result<u64> {
        let pid = self.child.id().context("the server has exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading the server's memory")?;
        let kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .context("no VmHWM in /proc/PID/status")?;
        Ok(kb * 1024)
    }

    /// Stops the server as an operator would (SIGTERM) and waits for it to exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            let pid = rustix::process::Pid::from_raw(i32::try_from(pid)?).context("the server's pid")?;
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                self.child.kill().await?;
            }
        }
        Ok(())
    }

    /// An admin API call; the answer's JSON (or `null` for an empty body).
    pub async fn admin(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let answer = self
            .http
            .post(format!("http://{}{path}", self.addr))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = answer.status();
        let text = answer.text().await?;
        if !status.is_success() {
            bail!("POST {path} answered {status}: {text}");
        }
        Ok(if text.is_empty() { Value::Null } else { serde_json::from_str(&text)? })
    }

    /// A publisher with `destinations` https destinations posting to `receiver` under
    /// `/<publisher>/<n>`, disabled when `enabled` is false (their deliveries wait, parked),
    /// and an ingest key. Returns the destination ids and the ingest path.
    pub async fn publisher(
        &self,
        id: &str,
        destinations: usize,
        receiver: SocketAddr,
        enabled: bool,
    ) -> anyhow::Result<(Vec<String>, String)> {
        self.admin("/v1/publishers", json!({"id": id, "name": id})).await?;
        let mut ids = Vec::with_capacity(destinations);
        for n in 1..=destinations {
            let url = format!("http://{receiver}/{id}/{n}");
            let created = self
                .admin(
                    &format!("/v1/publishers/{id}/destinations"),
                    json!({"name": format!("{id} {n}"), "kind": "https", "settings": {"url": url}}),
                )
                .await?;
            let dest = created["id"].as_str().context("a destination id")?.to_owned();
            if !enabled {
                self.admin(&format!("/v1/destinations/{dest}/disable"), Value::Null).await?;
            }
            ids.push(dest);
        }
        let key = self.admin(&format!("/v1/publishers/{id}/ingest-keys"), json!({})).await?;
        let path = key["path"].as_str().context("an ingest path")?.to_owned();
        Ok((ids, path))
    }
}

/// Nothing of the caller's leadrelay settings reaches the child: the benchmark is hermetic.
fn clean_env(cmd: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LEADRELAY_") || name == "RUST_LOG" {
            cmd.env_remove(name);
        }
    }
}
