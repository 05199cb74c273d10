//! A full disk, for real: the data dir is a small tmpfs that the test fills. `/readyz` must
//! say "not ready" as soon as free space drops below `storage.min_free_bytes`, every lead must
//! get a 202 (stored) or a 503 (retry), never anything else, and once space is freed the same
//! process is ready again with every acknowledged lead still there after a restart.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use crate::support::{Server, serve, start_logging_to};

/// A tmpfs mounted for the test and unmounted when dropped. Mounting needs root, which CI and
/// the development machine have; anywhere else the test fails saying so rather than skipping.
struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(bytes: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes},mode=0700"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs to fill it and needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { path: dir.path().to_owned(), _dir: dir }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Bytes free on the filesystem of `path`, as `stat -f` reports them.
fn free_bytes(path: &Path) -> u64 {
    let out = std::process::Command::new("stat").args(["-f", "-c", "%a %S"]).arg(path).output().expect("run stat");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut parts = text.split_whitespace().map(|p| p.parse::<u64>().unwrap());
    parts.next().unwrap() * parts.next().unwrap()
}

/// Writes a file of zeros that leaves about `left` bytes free.
fn fill_leaving(path: &Path, left: u64) {
    let size = free_bytes(path.parent().unwrap()).saturating_sub(left);
    std::fs::write(path, vec![0u8; usize::try_from(size).unwrap()]).unwrap();
}

/// Writes zeros into `path` until the filesystem refuses (ENOSPC).
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if let Err(e) = f.write_all(&chunk).and_then(|()| f.sync_all()) {
            assert_eq!(e.raw_os_error(), Some(28), "filling stopped for another reason: {e}");
            return;
        }
    }
}

async fn readyz(client: &reqwest::Client, server: &Server) -> u16 {
    client.get(format!("{}/readyz", server.base)).send().await.unwrap().status().as_u16()
}

async fn post_lead(client: &reqwest::Client, server: &Server, path: &str, n: usize) -> (u16, Option<String>) {
    let body = json!({
        "UserDetails": {"FirstName": "Disk", "Email": format!("disk{n}@contoso.com")},
        "LeadSource": "AzureMarketplace", "ActionCode": "INS", "OfferTitle": "Contoso CRM",
        "Description": "x".repeat(4000),
    });
    let r = client.post(format!("{}{path}", server.base)).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    let id = if status == 202 {
        r.json::<serde_json::Value>().await.unwrap()["id"].as_str().map(str::to_owned)
    } else {
        None
    };
    (status, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_makes_the_process_unready_and_loses_no_acknowledged_lead() {
    let disk = SmallDisk::mount(24 * 1024 * 1024);
    let data = disk.path.join("data");
    let env = [("LEADRELAY_STORAGE__MIN_FREE_BYTES", "4194304")];
    let client = crate::support::client();
    let mut server = start_logging_to(serve(&data, &env), std::process::Stdio::null()).await;
    assert_eq!(readyz(&client, &server).await, 200);
    let path = crate::support::contoso_with_ingest_key(&client, &server).await;

    let mut acked = BTreeSet::new();
    let (status, id) = post_lead(&client, &server, &path, 0).await;
    assert_eq!(status, 202);
    acked.extend(id);

    // Nearly full: below storage.min_free_bytes the process leaves rotation while it can still
    // write, so leads in flight are not refused.
    fill_leaving(&disk.path.join("ballast"), 2 * 1024 * 1024);
    assert_eq!(readyz(&client, &server).await, 503, "2 MiB free is below the 4 MiB minimum");
    let (status, id) = post_lead(&client, &server, &path, 1).await;
    assert_eq!(status, 202, "a nearly full disk still takes leads");
    acked.extend(id);

    fill(&disk.path.join("filler"));
    assert_eq!(readyz(&client, &server).await, 503, "a full disk must take the process out of rotation");
    let mut refused = 0;
    for n in 2..=300 {
        match post_lead(&client, &server, &path, n).await {
            (202, id) => acked.extend(id),
            (503, _) => refused += 1,
            (other, _) => panic!("lead {n} on a full disk was answered {other}; only 202 or 503 are allowed"),
        }
    }
    assert!(refused > 0, "299 leads of 4 KB fitted on a full disk: the test did not fill it");

    std::fs::remove_file(disk.path.join("filler")).unwrap();
    std::fs::remove_file(disk.path.join("ballast")).unwrap();
    let mut ready = false;
    for _ in 0..50 {
        if readyz(&client, &server).await == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the process did not become ready again once space was freed");
    let (status, id) = post_lead(&client, &server, &path, 1000).await;
    assert_eq!(status, 202, "a lead after space was freed");
    acked.extend(id);

    server.child.kill().await.unwrap();
    server = start_logging_to(serve(&data, &env), std::process::Stdio::null()).await;
    let stored = crate::support::all_lead_ids(&client, &server).await;
    let missing: Vec<_> = acked.difference(&stored).collect();
    assert!(missing.is_empty(), "acknowledged leads lost on a full disk: {missing:?}");
    println!("disk full: {} leads acknowledged, {refused} refused with 503, all stored", acked.len());
    server.child.kill().await.unwrap();
}
