//! The outbound network layer seen from the API: the SSRF guard for every kind including SMTP,
//! bounded response bodies, and settings that can no longer name a server path.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{TestApp, status_of};

/// A receiver that answers every request with 200 and a chunked body that never ends. Returns
/// its base URL and the count of bytes it managed to write in all.
async fn endless_receiver() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let written = Arc::new(AtomicUsize::new(0));
    let total = Arc::clone(&written);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let total = Arc::clone(&total);
            tokio::spawn(async move {
                let mut request = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("{:x}\r\n{{\"a\":\"{}\"}}\r\n", 64 * 1024 + 8, "x".repeat(64 * 1024));
                while socket.write_all(chunk.as_bytes()).await.is_ok() {
                    total.fetch_add(chunk.len(), Ordering::Relaxed);
                }
            });
        }
    });
    (url, written)
}

#[tokio::test]
async fn an_https_receiver_streaming_an_endless_body_gets_its_lead_and_a_capped_excerpt() {
    let (url, written) = endless_receiver().await;
    let app = TestApp::spawn().await;
    app.contoso().await;
    app.https_destination(&format!("{url}/hook"), None).await;
    let started = Instant::now();
    let id = app
        .post(
            "/v1/leads",
            json!({"publisher": "contoso", "lead_source": "AzureMarketplace-INS|contoso.crm",
        "customer": {"email": "someone@contoso.com"}}),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let lead = app.wait_for_lead(&id, "delivered", |d| status_of(d) == ["delivered"]).await;
    assert!(started.elapsed() < Duration::from_secs(4), "delivered at the cap, not at the 5 s request timeout");
    let attempt = &lead["deliveries"][0]["attempt_log"][0];
    assert_eq!(attempt["status_code"], 200, "{attempt}");
    let excerpt = attempt["response_excerpt"].as_str().unwrap();
    assert!(excerpt.len() <= 512 + '…'.len_utf8() && excerpt.ends_with('…'), "{} bytes", excerpt.len());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = written.load(Ordering::Relaxed);
    assert!(sent < 32 * 1024 * 1024, "the receiver could not push more once we stopped reading ({sent} bytes)");
}

#[tokio::test]
async fn a_token_endpoint_streaming_an_endless_body_fails_validate_quickly_with_a_hint() {
    let (url, _) = endless_receiver().await;
    let app = TestApp::spawn().await;
    app.contoso().await;
    let settings = json!({"url": "https://contoso.crm4.dynamics.com", "tenant_id": "contoso.onmicrosoft.com",
        "client_id": "23456052-aaaa-bbbb-8662-1234df56788f", "client_secret": "s3cret~value",
        "token_url": format!("{url}/token")});
    let a = app
        .post("/v1/publishers/contoso/destinations", json!({"name": "d", "kind": "dynamics365", "settings": settings}))
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let started = Instant::now();
    let v = app.post(&format!("/v1/destinations/{}/validate", a.body["id"].as_str().unwrap()), json!({})).await;
    assert!(started.elapsed() < Duration::from_secs(4), "answered at the cap, not at the request timeout");
    assert_eq!((v.body["ok"].as_bool(), v.body["status_code"].as_u64()), (Some(false), Some(200)), "{}", v.body);
    assert!(v.body["error"].as_str().unwrap().contains("too large to be a token"), "{}", v.body);
    assert!(v.body["hint"].as_str().unwrap().contains("token_url"), "{}", v.body);
}

/// Names, other than the `localhost` ones, that this machine resolves to addresses that are
/// not global: its `/etc/hosts` aliases and its own host name.
async fn names_of_private_addresses() -> Vec<String> {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let mut names: Vec<String> = hosts
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let ip: IpAddr = words.next()?.parse().ok()?;
            (!leadrelay_destinations::network::is_global(ip)).then_some(words.map(str::to_owned))
        })
        .flatten()
        .chain(std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_owned()))
        .filter(|n| !n.is_empty() && !n.to_ascii_lowercase().trim_end_matches('.').ends_with("localhost"))
        .collect();
    names.sort();
    names.dedup();
    let mut private = Vec::new();
    for name in names {
        let resolved: Vec<IpAddr> =
            tokio::net::lookup_host((name.as_str(), 25)).await.map(|a| a.map(|a| a.ip()).collect()).unwrap_or_default();
        if !resolved.is_empty() && resolved.iter().all(|ip| !leadrelay_destinations::network::is_global(*ip)) {
            private.push(name);
        }
    }
    private
}

#[tokio::test]
async fn an_email_host_whose_name_resolves_to_a_private_address_is_refused_on_validate_without_connecting() {
    let names = names_of_private_addresses().await;
    assert!(!names.is_empty(), "this machine has no name for a private address in /etc/hosts or /etc/hostname");
    // Every local IPv4 address, loopback included, on one port: a connection to any of them lands here.
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = TestApp::spawn_with("").await;
    app.contoso().await;
    for name in &names {
        let settings = json!({"host": name, "port": port, "tls": "starttls", "from": "leadrelay@contoso.com",
                              "to": "ops@contoso.com"});
        let a = app
            .post("/v1/publishers/contoso/destinations", json!({"name": "mail", "kind": "email", "settings": settings}))
            .await;
        assert_eq!(a.status, 201, "a name is only judged by its addresses, at connection time: {}", a.body);
        let v = app.post(&format!("/v1/destinations/{}/validate", a.body["id"].as_str().unwrap()), json!({})).await;
        assert_eq!(v.body["ok"], false, "{name}: {}", v.body);
        assert!(v.body["error"].as_str().unwrap().contains("not publicly routable"), "{name}: {}", v.body);
        assert!(v.body["hint"].as_str().unwrap().contains("allow_private_destinations"), "{}", v.body);
    }
    let accepted = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
    assert!(accepted.is_err(), "no connection reached the listener");
}

#[tokio::test]
async fn without_the_private_switch_every_spelling_of_a_local_host_is_refused_on_create() {
    let app = TestApp::spawn_with("").await;
    app.contoso().await;
    for host in ["localhost.", "LOCALHOST", "foo.localhost.", "[::127.0.0.1]", "[::ffff:0:127.0.0.1]", "[fec0::1]"] {
        let https = json!({"name": "x", "kind": "https", "settings": {"url": format!("https://{host}/hook")}});
        let a = app.post("/v1/publishers/contoso/destinations", https).await;
        assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("settings.url")), "{host}");
        let email = json!({"name": "x", "kind": "email", "settings": {"host": host, "port": 587,
            "from": "leadrelay@contoso.com", "to": "ops@contoso.com"}});
        let a = app.post("/v1/publishers/contoso/destinations", email).await;
        assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("settings.host")), "{host}");
    }
}

#[tokio::test]
async fn a_ca_file_on_create_is_refused_with_a_field_error_that_points_to_ca_pem() {
    let app = TestApp::spawn().await;
    app.contoso().await;
    for path in ["/etc/shadow", "/proc/self/environ", "/dev/zero"] {
        let settings = json!({"host": "smtp.example.com", "port": 587, "from": "leadrelay@contoso.com",
                              "to": "ops@contoso.com", "ca_file": path});
        let started = Instant::now();
        let a = app
            .post("/v1/publishers/contoso/destinations", json!({"name": "m", "kind": "email", "settings": settings}))
            .await;
        assert!(started.elapsed() < Duration::from_secs(2), "{path} was not read");
        assert_eq!(a.status, 422, "{}", a.body);
        let field = &a.body["error"]["fields"][0];
        assert_eq!(field["path"], "settings.ca_file");
        assert!(field["message"].as_str().unwrap().contains("ca_pem"), "{}", a.body);
        assert!(!a.body.to_string().contains(path), "the path is not echoed");
    }
    let settings = json!({"host": "smtp.example.com", "port": 587, "from": "leadrelay@contoso.com",
                          "to": "ops@contoso.com", "ca_pem": "not a certificate"});
    let a = app
        .post("/v1/publishers/contoso/destinations", json!({"name": "m", "kind": "email", "settings": settings}))
        .await;
    assert_eq!((a.status, a.body["error"]["fields"][0]["path"].as_str()), (422, Some("settings.ca_pem")), "{}", a.body);
}
