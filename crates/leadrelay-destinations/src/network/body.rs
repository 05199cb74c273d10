//! Bounded answers. A receiver is untrusted: it may answer 200 with a body that never ends. So
//! a body is read chunk by chunk and reading stops at the bound its kind needs (an excerpt, or
//! a CRM's JSON answer); the rest is never read, and dropping the response closes the stream.

use std::time::{Duration, SystemTime};

/// Enough for any JSON answer a CRM or token endpoint gives to one call (a token, a created
/// record's id, an error envelope, a batch's per-lead results).
pub const JSON_CAP: usize = 64 * 1024;

/// A response whose body was read up to a cap.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body, at most the cap.
    pub body: Vec<u8>,
    /// Whether the body went on past the cap (or broke off before its end).
    pub truncated: bool,
}

impl Answer {
    /// The receiver's `Retry-After`, when it sent a valid one.
    pub fn retry_after(&self) -> Option<Duration> {
        self.headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after)
    }

    /// The body as JSON; `Null` when it is not JSON or was cut at the cap (a cut document is
    /// not the receiver's answer, and a half-read one must not be half-trusted).
    pub fn json(&self) -> serde_json::Value {
        if self.truncated {
            return serde_json::Value::Null;
        }
        serde_json::from_slice(&self.body).unwrap_or_default()
    }

    /// The start of the body, at most `max` bytes, for the attempt log.
    pub fn excerpt(&self, max: usize) -> Option<String> {
        excerpt(&self.body, max, self.truncated)
    }
}

/// Reads at most `cap` bytes of a response's body.
pub(crate) async fn read(mut response: reqwest::Response, cap: usize) -> Answer {
    let status = response.status().as_u16();
    let headers = std::mem::take(response.headers_mut());
    let mut body = Vec::new();
    let mut truncated = false;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = cap - body.len();
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    truncated = true;
                    break;
                }
                body.extend_from_slice(&chunk);
                if body.len() == cap && cap > 0 {
                    // Full: one more chunk would only say whether there is more; do not wait for it.
                    truncated = response.content_length().is_none_or(|n| n > cap as u64);
                    break;
                }
            }
            Ok(None) => break,
            Err(_) => {
                truncated = true;
                break;
            }
        }
    }
    Answer { status, headers, body, truncated }
}

/// Cuts a body to at most `max` bytes on a character boundary, marking a cut with `…`.
pub fn excerpt(body: &[u8], max: usize, truncated: bool) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    let cut = &body[..body.len().min(max)];
    let mut s = match std::str::from_utf8(cut) {
        Ok(s) => s.to_owned(),
        // A multi-byte character cut at the end is dropped, not replaced.
        Err(e) if e.error_len().is_none() => String::from_utf8_lossy(&cut[..e.valid_up_to()]).into_owned(),
        Err(_) => String::from_utf8_lossy(cut).into_owned(),
    };
    if truncated || body.len() > max {
        s.push('…');
    }
    Some(s)
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn excerpts_are_cut_on_a_character_boundary_and_marked() {
        assert_eq!(excerpt(b"", 10, false), None);
        assert_eq!(excerpt(b"ok", 10, false).as_deref(), Some("ok"));
        assert_eq!(excerpt(b"ok", 10, true).as_deref(), Some("ok…"));
        assert_eq!(excerpt("aé".as_bytes(), 2, false).as_deref(), Some("a…"));
    }

    /// A receiver that answers 200 and then streams chunks for as long as anyone reads;
    /// returns its URL and the count of bytes it managed to write.
    async fn endless_receiver() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&written);
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = format!("{:x}\r\n{}\r\n", 16 * 1024, "x".repeat(16 * 1024));
            while socket.write_all(chunk.as_bytes()).await.is_ok() {
                counter.fetch_add(chunk.len(), std::sync::atomic::Ordering::Relaxed);
            }
        });
        (url, written)
    }

    #[tokio::test]
    async fn an_endless_body_is_read_only_up_to_the_cap() {
        let (url, written) = endless_receiver().await;
        let net = super::super::Network::new(super::super::NetworkOptions {
            allow_private: true,
            ..super::super::NetworkOptions::default()
        });
        let started = std::time::Instant::now();
        let answer = net.send(net.post(&url), 1000).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(2), "returned at the cap, not at a timeout");
        assert_eq!((answer.status, answer.body.len(), answer.truncated), (200, 1000, true));
        assert_eq!(answer.json(), serde_json::Value::Null, "a cut document is not trusted");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent = written.load(std::sync::atomic::Ordering::Relaxed);
        assert!(sent < 16 * 1024 * 1024, "the receiver stopped once we stopped reading ({sent} bytes)");
    }
}
