//! A public listener meets idle, slow and half-sent clients: they must not use up the process's
//! connections, and must not hold shutdown hostage.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{serve, start};

fn addr(base: &str) -> String {
    base.trim_start_matches("http://").to_owned()
}

/// Whether the server closed this connection within `within` (a read returns end of stream).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    matches!(tokio::time::timeout(within, stream.read(&mut buf)).await, Ok(Ok(0) | Err(_)))
}

#[tokio::test]
async fn idle_and_half_sent_connections_are_closed_and_healthz_keeps_answering() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("LEADRELAY_SERVER__HEADER_READ_TIMEOUT_MS", "1000"), ("LEADRELAY_SERVER__MAX_CONNECTIONS", "40")];
    let mut server = start(serve(dir.path(), &env)).await;
    let target = addr(&server.base);
    let mut idle = Vec::new();
    for i in 0..60 {
        let mut s = TcpStream::connect(&target).await.unwrap();
        if i % 2 == 0 {
            s.write_all(b"GET /healthz HTT").await.unwrap();
        }
        idle.push(s);
    }
    // The 20 beyond the cap are closed at once; the rest after the header timeout.
    let mut closed = 0;
    for s in &mut idle {
        if closed_within(s, Duration::from_secs(5)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 60, "every silent or half-sent connection is closed within seconds");
    let ok = crate::support::client().get(format!("{}/healthz", server.base)).send().await.unwrap();
    assert_eq!(ok.status(), 200, "the server still answers");

    // A keep-alive connection that goes idle after a request is closed too.
    let mut kept = TcpStream::connect(&target).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 1024];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(closed_within(&mut kept, Duration::from_secs(5)).await, "an idle keep-alive connection is closed");
    server.child.kill().await.unwrap();
}

#[tokio::test]
async fn sigterm_ends_within_its_bound_even_with_a_half_sent_request() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("LEADRELAY_SERVER__HEADER_READ_TIMEOUT_MS", "120000"), ("LEADRELAY_SERVER__SHUTDOWN_GRACE_MS", "2000")];
    let mut server = start(serve(dir.path(), &env)).await;
    let mut half = TcpStream::connect(addr(&server.base)).await.unwrap();
    half.write_all(b"GET /healthz HTT").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let pid = server.child.id().unwrap().to_string();
    assert!(tokio::process::Command::new("kill").args(["-TERM", &pid]).status().await.unwrap().success());
    let status = tokio::time::timeout(Duration::from_secs(15), server.child.wait())
        .await
        .expect("the process ends within its shutdown bound, whatever the client does")
        .unwrap();
    assert!(status.success(), "{status}");
    drop(half);
}
