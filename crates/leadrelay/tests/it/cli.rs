//! Startup output and the CLI.

use std::time::Duration;

use crate::support::{ADMIN, admin_get, admin_post, binary, serve, start};

#[tokio::test]
async fn serve_with_no_settings_prints_where_it_listens_the_data_dir_and_the_admin_token_once() {
    let cwd = tempfile::tempdir().unwrap();
    let mut cmd = binary();
    cmd.current_dir(cwd.path()).args(["serve", "--listen", "127.0.0.1:0"]);
    let mut server = start(cmd).await;
    let banner = server.banner.join("\n");
    assert!(banner.contains("leadrelay listening on http://127.0.0.1:"), "{banner}");
    assert!(banner.contains("data directory:") && banner.contains("leadrelay-data"), "{banner}");
    assert!(banner.contains("dashboard: http://127.0.0.1:") && banner.contains("users add"), "{banner}");
    let token = banner
        .lines()
        .find_map(|l| l.strip_prefix("admin token (shown once, stored hashed): "))
        .expect("token printed");
    let client = crate::support::client();
    let ok = client.get(format!("{}/v1/leads", server.base)).bearer_auth(token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(cwd.path().join("leadrelay-data/leadrelay.db").exists());
    assert!(!cwd.path().join("leadrelay-data/admin-token.sha256").exists(), "the hash lives in the database");
    let db = std::fs::read(cwd.path().join("leadrelay-data/leadrelay.db")).unwrap();
    let wal = std::fs::read(cwd.path().join("leadrelay-data/leadrelay.db-wal")).unwrap_or_default();
    let plain = token.as_bytes();
    assert!(![db, wal].iter().any(|bytes| bytes.windows(plain.len()).any(|w| w == plain)), "only the hash is stored");
    server.child.kill().await.unwrap();

    let mut cmd = binary();
    cmd.current_dir(cwd.path()).args(["serve", "--listen", "127.0.0.1:0"]);
    let mut again = start(cmd).await;
    assert!(!again.banner.join("\n").contains(token), "the token is printed only on first start");
    let ok = client.get(format!("{}/v1/leads", again.base)).bearer_auth(token).send().await.unwrap();
    assert_eq!(ok.status(), 200, "the stored hash still accepts the token");
    again.child.kill().await.unwrap();
}

#[tokio::test]
async fn a_second_serve_on_the_same_data_dir_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = start(serve(dir.path(), &[])).await;
    let out = serve(dir.path(), &[]).output().await.unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another leadrelay is already serving"), "{err}");
    first.child.kill().await.unwrap();
}

#[tokio::test]
async fn two_data_dirs_with_one_storage_url_cannot_both_serve() {
    let (a, b, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let url = format!("sqlite://{}", db.path().join("shared.db").display());
    let mut first = serve(a.path(), &[]);
    first.env("LEADRELAY_STORAGE__URL", &url);
    let mut first = start(first).await;
    let mut second = serve(b.path(), &[]);
    second.env("LEADRELAY_STORAGE__URL", &url);
    let out = second.output().await.unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another leadrelay is already serving from") && err.contains("shared.db"), "{err}");
    first.child.kill().await.unwrap();
}

#[tokio::test]
async fn a_bad_setting_stops_startup_naming_the_key() {
    let out = binary().args(["serve"]).env("LEADRELAY_WORKER__CONCURENCY", "4").output().await.unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("concurency"), "{err}");
    let out = binary().args(["serve"]).env("LEADRELAY_WORKER__LEASE_MS", "1000").output().await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("worker.lease_ms (1000) must exceed delivery.request_timeout_ms"), "{err}");
    let out = binary()
        .args(["config"])
        .env("LEADRELAY_STORAGE__URL", "postgres://u:hunter2@db/leads")
        .output()
        .await
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("REDACTED") && !printed.contains("hunter2"), "{printed}");
}

#[tokio::test]
async fn migrate_and_leads_list_work_on_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let out = binary().arg("migrate").arg("--data-dir").arg(dir.path()).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains(&format!("{n} migration(s) applied", n = leadrelay_store_sqlite::MIGRATIONS.len())),
        "{printed}"
    );

    let mut server = start(serve(dir.path(), &[])).await;
    let client = crate::support::client();
    let post = |path: &str, body: serde_json::Value| {
        client.post(format!("{}{path}", server.base)).bearer_auth(ADMIN).json(&body).send()
    };
    assert_eq!(
        post("/v1/publishers", serde_json::json!({"id": "contoso", "name": "Contoso"})).await.unwrap().status(),
        201
    );
    let lead = serde_json::json!({"publisher": "contoso", "lead_source": "AzureMarketplace-INS|contoso.crm"});
    let id = post("/v1/leads", lead).await.unwrap().json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let out = binary().args(["leads", "list", "--json", "--data-dir"]).arg(dir.path()).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains(&id), "{listed}");
    let out = binary().args(["leads", "list", "--offer", "Nope", "--data-dir"]).arg(dir.path()).output().await.unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--offer must be"));
    server.child.kill().await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test]
async fn a_full_run_leaves_no_personal_data_or_secret_in_the_trace_log_the_metrics_or_the_database_files() {
    use leadrelay_testkit::TestReceiver;
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let receiver = TestReceiver::start().await;
    receiver.fail_for(Duration::from_millis(300), 503);
    // A receiver that echoes personal data in its answer: the attempt's excerpt keeps it.
    receiver.answer_body("accepted lead of canary.person@contoso.com Canaryfirst");
    let data = dir.path().join("data");
    let mut cmd = serve(&data, &[("LEADRELAY_DELIVERY__ALLOW_PRIVATE_DESTINATIONS", "true")]);
    cmd.env("RUST_LOG", "trace");
    let mut server = crate::support::start_logging_to(cmd, log.into()).await;
    let client = crate::support::client();
    let base = server.base.clone();
    let post = |path: String, body: serde_json::Value| {
        client.post(format!("{base}{path}")).bearer_auth(ADMIN).json(&body).send()
    };
    post("/v1/publishers".into(), serde_json::json!({"id": "contoso", "name": "Contoso"})).await.unwrap();
    let secret = leadrelay_core::signing::WebhookSecret::from_bytes(vec![7; 32]).unwrap().to_whsec();
    let hook = format!("{}?sig=canarysig123", receiver.url());
    let d = post(
        "/v1/publishers/contoso/destinations".into(),
        serde_json::json!({"name": "h", "kind": "https", "settings": {"url": hook, "secret": secret}}),
    )
    .await
    .unwrap();
    assert_eq!(d.status(), 201);
    // A CRM whose token endpoint puts the customer's details into its error text.
    let dynamics = leadrelay_testkit::crm::dynamics::FakeDynamics::start().await;
    dynamics.fail_tokens(401, "invalid_client canary.person@contoso.com Canaryfirst", 7_000_215);
    let settings = serde_json::json!({"url": dynamics.url(), "tenant_id": "contoso.onmicrosoft.com",
        "client_id": "23456052-aaaa-bbbb-8662-1234df56788f", "client_secret": "canarysecret~value",
        "token_url": dynamics.token_url("contoso.onmicrosoft.com")});
    let d = post(
        "/v1/publishers/contoso/destinations".into(),
        serde_json::json!({"name": "d365", "kind": "dynamics365", "settings": settings}),
    )
    .await
    .unwrap();
    assert_eq!(d.status(), 201);
    let key: serde_json::Value =
        post("/v1/publishers/contoso/ingest-keys".into(), serde_json::json!({})).await.unwrap().json().await.unwrap();
    let path = key["path"].as_str().unwrap().to_owned();
    let pii = serde_json::json!({
        "UserDetails": {"FirstName": "Canaryfirst", "LastName": "Canarylast", "Email": "canary.person@contoso.com",
                        "Phone": "15550001111", "Company": "Canarycorp", "Title": "Canarytitle"},
        "LeadSource": "AzureMarketplace", "ActionCode": "INS", "Description": "Canarynotes"
    });
    let ok = client.post(format!("{base}{path}")).json(&pii).send().await.unwrap();
    assert_eq!(ok.status(), 202);
    let bad = client
        .post(format!("{base}{path}"))
        .json(&serde_json::json!({"UserDetails": {"Email": ["canary.person@contoso.com"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    receiver
        .wait_until(Duration::from_secs(10), "the delivery after a 503", |r| r.iter().any(|x| x.answered == 200))
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log_path).unwrap().contains("delivery dead-lettered") {
        assert!(tokio::time::Instant::now() < deadline, "the refused CRM delivery was never logged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!dynamics.token_requests().is_empty());
    // The person asks to be forgotten: the erasure runs through the same log.
    let erased =
        post("/v1/privacy/erase".into(), serde_json::json!({"email": "canary.person@contoso.com"})).await.unwrap();
    assert_eq!(erased.status(), 200);
    let report: serde_json::Value = erased.json().await.unwrap();
    assert_eq!(report["erased_leads"], 1, "{report}");
    // What a Prometheus scraper of this run sees.
    let scraped = client.get(format!("{base}/metrics")).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(scraped.status(), 200);
    let metrics = scraped.text().await.unwrap();
    assert!(metrics.contains(r#"leadrelay_leads_accepted_total{publisher="contoso",route="ingest"} 1"#), "{metrics}");
    server.child.kill().await.unwrap();

    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(text.contains("delivery"), "the log must not be empty: {text}");
    let key_value = key["key"].as_str().unwrap();
    let needles =
        ["Canary", "canary.person", "15550001111", "canarysig123", &secret[6..], key_value, ADMIN, "lr_admin_"];
    for needle in needles {
        assert!(!text.contains(needle), "the log contains {needle:?}:\n{text}");
    }
    let (hook_url, crm_url) = (receiver.url(), dynamics.url());
    for needle in needles.iter().chain(&["canarysecret", hook_url.as_str(), crm_url.as_str()]) {
        assert!(!metrics.contains(needle), "the metrics contain {needle:?}:\n{metrics}");
    }
    // At rest: the database and its WAL, read as bytes, hold none of it either (the values are
    // sealed, the match keys and search terms keyed hashes, tokens hashed).
    let mut scanned = 0;
    for file in ["leadrelay.db", "leadrelay.db-wal", "leadrelay.db-shm"] {
        let Ok(bytes) = std::fs::read(data.join(file)) else { continue };
        scanned += bytes.len();
        let lower = String::from_utf8_lossy(&bytes).to_lowercase();
        for needle in needles.iter().chain(&["canarysecret", "canarycorp", "canarynotes"]) {
            assert!(!lower.contains(&needle.to_lowercase()), "{file} holds {needle:?}");
        }
    }
    assert!(scanned > 100_000, "the database files were not found or are empty ({scanned} bytes)");
}

#[tokio::test]
async fn a_server_started_with_the_wrong_encryption_key_refuses_and_says_which_key_it_needs() {
    use leadrelay_core::vault::Keyring;
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (Keyring::generate_key(), Keyring::generate_key());
    let with_key = |key: &str| serve(dir.path(), &[("LEADRELAY_SECURITY__ENCRYPTION_KEY", key)]);
    let mut server = start(with_key(&first)).await;
    server.child.kill().await.unwrap();
    let out = with_key(&second).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let needed = Keyring::from_base64(&first, []).unwrap().primary().to_string();
    assert!(stderr.contains("encryption key") && stderr.contains(&needed), "{stderr}");
    assert!(!stderr.contains(&first) && !stderr.contains(&second), "keys are never printed");
    let mut again = start(with_key(&first)).await;
    again.child.kill().await.unwrap();
}

#[tokio::test]
async fn the_generated_key_file_is_private_and_a_missing_one_is_refused_not_replaced() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = crate::support::start_logging_to(serve(&data, &[]), std::process::Stdio::piped()).await;
    let key_file = data.join("encryption.key");
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    server.child.kill().await.unwrap();
    let mut warned = String::new();
    use tokio::io::AsyncReadExt;
    server.child.stderr.take().unwrap().read_to_string(&mut warned).await.unwrap();
    assert!(warned.contains("BACK IT UP"), "{warned}");
    let kept = data.join("kept.key");
    std::fs::rename(&key_file, &kept).unwrap();
    let out = serve(&data, &[]).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a keyed database must not start with a new key");
    assert!(stderr.contains("restore that file from your backup"), "{stderr}");
    assert!(!key_file.exists(), "the stray new key file was removed");
    std::fs::rename(&kept, &key_file).unwrap();
    let mut again = start(serve(&data, &[])).await;
    again.child.kill().await.unwrap();
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully_and_a_restart_serves_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(serve(dir.path(), &[])).await;
    let client = crate::support::client();
    let created = client
        .post(format!("{}/v1/publishers", server.base))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"id": "contoso", "name": "Contoso"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let pid = server.child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
    assert!(killed.success());
    let status =
        tokio::time::timeout(Duration::from_secs(15), server.child.wait()).await.expect("exits within 15 s").unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");

    let again = start(serve(dir.path(), &[])).await;
    let dup = client
        .post(format!("{}/v1/publishers", again.base))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"id": "contoso", "name": "Contoso"}))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), 409, "the publisher survived the restart");
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_dir_and_the_database_files_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(r#"umask 000; exec "$0" serve --listen 127.0.0.1:0 --data-dir "$1""#)
        .arg(env!("CARGO_BIN_EXE_leadrelay"))
        .arg(&data)
        .env("LEADRELAY_ADMIN_TOKEN", ADMIN)
        .env("RUST_LOG", "warn");
    let mut server = start(cmd).await;
    let created = crate::support::client()
        .post(format!("{}/v1/publishers", server.base))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"id": "contoso", "name": "Contoso"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data directory");
    for file in ["leadrelay.db", "leadrelay.db-wal", "leadrelay.db-shm", "encryption.key"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    server.child.kill().await.unwrap();
}

#[tokio::test]
async fn a_damaged_empty_or_foreign_database_is_refused_at_start_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = binary().args(["migrate", "--data-dir"]).arg(dir.path()).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let db = dir.path().join("leadrelay.db");
    let healthy = std::fs::read(&db).unwrap();
    let refuse = |contents: Vec<u8>| {
        let (db, dir) = (db.clone(), dir.path().to_owned());
        async move {
            std::fs::write(&db, &contents).unwrap();
            let out = serve(&dir, &[]).output().await.unwrap();
            assert!(!out.status.success(), "serve must refuse it");
            assert_eq!(std::fs::read(&db).unwrap(), contents, "the file is never overwritten");
            String::from_utf8_lossy(&out.stderr).into_owned()
        }
    };
    let err = refuse(healthy[..healthy.len() / 2].to_vec()).await;
    assert!(err.contains("damaged") && err.contains("restore it from a backup"), "{err}");
    let err = refuse(Vec::new()).await;
    assert!(err.contains("is empty (0 bytes)"), "{err}");
    let err = refuse(b"these are someone's notes, not a database\n".repeat(100)).await;
    assert!(err.contains("is not a SQLite database"), "{err}");
}

#[cfg(unix)]
#[tokio::test]
async fn serving_from_a_data_dir_others_can_read_warns_how_to_fix_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = crate::support::start_logging_to(serve(dir.path(), &[]), log.into()).await;
    server.child.kill().await.unwrap();
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(text.contains("can be read by other users") && text.contains("chmod 700"), "{text}");
}

#[tokio::test]
async fn a_key_rotation_mid_load_loses_nothing_and_the_old_key_can_be_retired() {
    use leadrelay_core::vault::Keyring;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let client = crate::support::client();
    let keys = |args: &[&str]| {
        let mut c = binary();
        c.arg("keys").args(args).arg("--data-dir").arg(&data);
        c
    };
    let mut server = start(serve(&data, &[])).await;
    let path = crate::support::contoso_with_ingest_key(&client, &server).await;
    let old_key = std::fs::read_to_string(data.join("encryption.key")).unwrap();
    let old_key = old_key.lines().find(|l| !l.starts_with('#')).unwrap().to_owned();
    let old_id = Keyring::from_base64(&old_key, []).unwrap().primary().to_string();
    let mut acked = std::collections::BTreeSet::new();
    let mut post = async |server: &crate::support::Server, n: usize| {
        let body = serde_json::json!({"UserDetails": {"FirstName": "Rotation", "Email": format!("rot{n}@contoso.com")},
                                      "LeadSource": "AzureMarketplace", "ActionCode": "INS"});
        let r = client.post(format!("{}{path}", server.base)).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 202);
        acked.insert(r.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
    };
    for n in 0..20 {
        post(&server, n).await;
    }
    // Rotate while the server takes leads: it keeps sealing with the key it started with.
    let out = keys(&["rotate"]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for n in 20..40 {
        post(&server, n).await;
    }
    server.child.kill().await.unwrap();
    // Restarted, it seals with the new key and re-seals the older values in the background.
    server = start(serve(&data, &[])).await;
    for n in 40..60 {
        post(&server, n).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let out = keys(&["status"]).output().await.unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let old_left: u64 = text
            .lines()
            .find(|l| l.starts_with(&old_id))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if old_left == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "re-sealing never finished:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = keys(&["retire", &old_id]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!std::fs::read_to_string(data.join("encryption.key")).unwrap().contains(&old_key));
    server.child.kill().await.unwrap();
    // Without the old key, everything still opens.
    let server = start(serve(&data, &[])).await;
    let stored = crate::support::all_lead_ids(&client, &server).await;
    assert_eq!(stored, acked, "every acknowledged lead is there, readable");
    let first = stored.iter().next().unwrap();
    let lead = crate::support::admin_get(&client, &server, &format!("/v1/leads/{first}")).await;
    assert!(lead["customer"]["email"].as_str().unwrap().starts_with("rot"), "{lead}");
    let audit = crate::support::admin_get(&client, &server, "/v1/audit?action=keys.rotate").await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
}

#[tokio::test]
async fn the_sales_commands_list_show_assign_and_report_kpis() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(serve(dir.path(), &[])).await;
    let client = crate::support::client();
    let contoso = serde_json::json!({"id": "contoso", "name": "Contoso"});
    assert_eq!(admin_post(&client, &server, "/v1/publishers", contoso).await.0, 201);
    let lead = serde_json::json!({"publisher": "contoso", "lead_source": "AzureMarketplace-PLT|contoso.crm",
                                  "customer": {"email": "ada@quillworks.com"}});
    assert_eq!(admin_post(&client, &server, "/v1/leads", lead).await.0, 202);
    let listed = admin_get(&client, &server, "/v1/publishers/contoso/opportunities").await;
    let id = listed["items"][0]["id"].as_str().unwrap().to_owned();
    let run = |args: &[&str]| {
        let mut cmd = binary();
        cmd.args(args).arg("--data-dir").arg(dir.path());
        cmd.output()
    };

    let out = run(&["opportunities", "list", "--publisher", "contoso", "--json"]).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&id));
    let out = run(&["opportunities", "list", "--publisher", "contoso", "--due", "overdue"]).await.unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&id), "not overdue yet");
    let out = run(&["opportunities", "show", &id]).await.unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((shown["status"].as_str(), shown["stage"].as_str()), (Some("new"), Some("initial_interest")));
    let out = run(&["opportunities", "assign", &id, "--owner", "none"]).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["opportunities", "assign", &id, "--owner", "ana"]).await.unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--owner must be a user id"));

    let out = run(&["kpis", "--publisher", "contoso", "--group-by", "source"]).await.unwrap();
    let kpis: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(kpis["opportunities"], 1);
    assert_eq!(kpis["by"]["AzureMarketplace"]["funnel"]["new"], 1);
    let out = run(&["kpis", "--publisher", "contoso", "--csv"]).await.unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("scope,key,opportunities,"));
    let out = run(&["kpis", "--publisher", "nobody"]).await.unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("publisher not found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["kpis", "--publisher", "contoso", "--group-by", "weather"]).await.unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--group-by must be offer, source or action"));
    server.child.kill().await.unwrap();
}

#[tokio::test]
async fn users_add_makes_the_first_person_who_then_signs_in_and_says_clearly_what_is_wrong() {
    use std::process::Stdio;
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(serve(dir.path(), &[])).await;
    let client = crate::support::client();
    let contoso = serde_json::json!({"id": "contoso", "name": "Contoso"});
    assert_eq!(admin_post(&client, &server, "/v1/publishers", contoso).await.0, 201);
    let add = |publisher: &str, email: &str, stdin: Option<&str>| {
        let mut c = binary();
        c.args(["users", "add", "--publisher", publisher, "--email", email, "--name", "Ana Lindqvist", "--data-dir"])
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if stdin.is_some() {
            c.arg("--password-stdin");
        }
        let input = stdin.map(str::to_owned);
        async move {
            let mut child = c.spawn().unwrap();
            let mut pipe = child.stdin.take().unwrap();
            if let Some(text) = input {
                pipe.write_all(text.as_bytes()).await.unwrap();
            }
            drop(pipe);
            let out = child.wait_with_output().await.unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
            )
        }
    };

    let (ok, printed) = add("contoso", "Ana@Contoso.com", Some("a long enough password\n")).await;
    assert!(ok, "{printed}");
    assert!(printed.contains("added ana@contoso.com (usr_") && printed.contains("as admin"), "{printed}");
    assert!(!printed.contains("a long enough password"), "{printed}");
    let signed_in = client
        .post(format!("{}/v1/sessions", server.base))
        .json(&serde_json::json!({"email": "ana@contoso.com", "password": "a long enough password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 201, "the serving process signs in the person the CLI added");

    let (ok, printed) = add("contoso", "ana@contoso.com", Some("another long password\n")).await;
    assert!(!ok && printed.contains("already exists"), "{printed}");
    let (ok, printed) = add("nobody", "ben@contoso.com", Some("another long password\n")).await;
    assert!(
        !ok && printed.contains("publisher 'nobody' does not exist") && printed.contains("--new-publisher"),
        "{printed}"
    );
    let first_of = |publisher: &str, email: &str| {
        let mut c = binary();
        c.args(["users", "add", "--publisher", publisher, "--new-publisher", "Northwind Traders", "--email", email])
            .args(["--name", "Kim", "--password-stdin", "--data-dir"])
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        async move {
            let mut child = c.spawn().unwrap();
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(b"a long enough password\n").await.unwrap();
            drop(pipe);
            let out = child.wait_with_output().await.unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
            )
        }
    };
    let (ok, printed) = first_of("northwind", "kim@northwind.com").await;
    assert!(ok && printed.contains("created publisher northwind") && printed.contains("/ui/"), "{printed}");
    let (ok, printed) = first_of("northwind", "lee@northwind.com").await;
    assert!(!ok && printed.contains("already exists; leave out --new-publisher"), "{printed}");
    let (ok, printed) = add("contoso", "ben@contoso.com", Some("short\n")).await;
    assert!(!ok && printed.contains("the password must be 12 to 128 characters"), "{printed}");
    let (ok, printed) = add("contoso", "not-an-address", Some("another long password\n")).await;
    assert!(!ok && printed.contains("--email must be an e-mail address"), "{printed}");
    let (ok, printed) = add("contoso", "ben@contoso.com", None).await;
    assert!(!ok && printed.contains("--password-stdin"), "no terminal, no flag: {printed}");

    let out = binary()
        .args(["users", "list", "--publisher", "contoso", "--data-dir"])
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(listed.lines().count(), 2, "a header and Ana: {listed}");
    assert!(listed.contains("ana@contoso.com") && listed.contains("admin") && listed.contains("active"), "{listed}");
    server.child.kill().await.unwrap();
}
