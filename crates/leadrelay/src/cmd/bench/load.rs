//! The benchmark's load generator: HTTP/1.1 keep-alive over many connections on one thread
//! (as `wrk -t1`), the same client for the bare ceiling and for leadrelay, so their ratio means
//! something.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::io::Write as _;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Writes the body of request number `seq` (unique across the whole run) into `out`.
pub type BodyFn = Arc<dyn Fn(u64, &mut Vec<u8>) + Send + Sync>;

/// Where and what to post.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub path: String,
    pub body: BodyFn,
    /// Numbers requests from here, so two runs against one server never repeat a body.
    pub first_seq: u64,
}

/// What a closed-loop run did.
#[derive(Debug, Default)]
pub struct ClosedRun {
    /// Answers that arrived inside the measured window.
    pub measured: u64,
    pub measured_secs: f64,
    /// Every answer, warm-up included, by status.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that got no answer (connection errors).
    pub errors: u64,
    /// Requests sent in all (the next run's `first_seq` offset).
    pub sent: u64,
}

impl ClosedRun {
    pub fn per_second(&self) -> f64 {
        if self.measured_secs > 0.0 { self.measured as f64 / self.measured_secs } else { 0.0 }
    }

    /// Answers with a status other than `expected`, and requests with no answer.
    pub fn failures(&self, expected: u16) -> u64 {
        self.errors + self.statuses.iter().filter(|(s, _)| **s != expected).map(|(_, n)| n).sum::<u64>()
    }
}

/// How long a closed-loop run goes on.
#[derive(Debug, Clone, Copy)]
pub enum Length {
    /// Warm up, then count answers for this long.
    Timed { warmup: Duration, measure: Duration },
    /// Exactly this many requests; the whole run is measured.
    Requests(u64),
}

/// One answered request of an open-loop run.
#[derive(Debug)]
pub struct Acked {
    /// When the request was due (the schedule, not the send).
    pub due: Instant,
    pub answered: Instant,
    pub status: u16,
    pub body: Vec<u8>,
}

/// Runs a closed loop with `connections` keep-alive connections on a thread of its own: a
/// connection sends its next request when its answer arrives, which finds the most a server
/// sustains.
pub fn closed_loop(target: Target, connections: usize, length: Length) -> anyhow::Result<ClosedRun> {
    on_own_thread(move || async move {
        let next = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let (window_start, end) = match length {
            Length::Timed { warmup, measure } => (start + warmup, Some(start + warmup + measure)),
            Length::Requests(_) => (start, None),
        };
        let limit = match length {
            Length::Requests(n) => n,
            Length::Timed { .. } => u64::MAX,
        };
        let mut tasks = Vec::with_capacity(connections);
        for _ in 0..connections {
            let (target, next) = (target.clone(), Arc::clone(&next));
            tasks.push(tokio::task::spawn_local(async move {
                let mut run = ClosedRun::default();
                let mut conn: Option<Connection> = None;
                let mut body = Vec::with_capacity(1024);
                loop {
                    if end.is_some_and(|e| Instant::now() >= e) {
                        break;
                    }
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    if seq >= limit {
                        break;
                    }
                    body.clear();
                    (target.body)(target.first_seq + seq, &mut body);
                    match post(&mut conn, &target, &body).await {
                        Ok((status, _)) => {
                            *run.statuses.entry(status).or_default() += 1;
                            let now = Instant::now();
                            if now >= window_start && end.is_none_or(|e| now < e) {
                                run.measured += 1;
                            }
                        }
                        Err(_) => {
                            run.errors += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
                run
            }));
        }
        let mut total = ClosedRun::default();
        for t in tasks {
            let run = t.await.context("a load connection panicked")?;
            total.measured += run.measured;
            total.errors += run.errors;
            for (s, n) in run.statuses {
                *total.statuses.entry(s).or_default() += n;
            }
        }
        let finished = Instant::now();
        total.measured_secs = end.unwrap_or(finished).min(finished).duration_since(window_start).as_secs_f64();
        total.sent = next.load(Ordering::Relaxed).min(limit);
        Ok(total)
    })
}

/// Sends `rate` requests a second for `length`, on schedule, over up to `connections`
/// connections, and returns every answer with the time it was due.
///
/// Open loop: requests go out on a fixed schedule whatever the answers do, so a slow answer
/// cannot hide itself (no coordinated omission), and each is timed from when it was due.
pub fn open_loop(target: Target, rate: u32, length: Duration, connections: usize) -> anyhow::Result<Vec<Acked>> {
    if rate == 0 {
        bail!("the open-loop rate must be at least 1 request a second");
    }
    let total = (length.as_secs_f64() * f64::from(rate)).round() as u64;
    on_own_thread(move || async move {
        let next = Arc::new(AtomicU64::new(0));
        let start = Instant::now() + Duration::from_millis(200);
        let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
        let mut tasks = Vec::with_capacity(connections);
        for _ in 0..connections {
            let (target, next) = (target.clone(), Arc::clone(&next));
            tasks.push(tokio::task::spawn_local(async move {
                let mut acked = Vec::new();
                // Connected before the schedule starts, so no request pays for a TCP handshake.
                let mut conn = Connection::open(target.addr).await.ok();
                let mut body = Vec::with_capacity(1024);
                loop {
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    if seq >= total {
                        break;
                    }
                    let due = start + interval.mul_f64(seq as f64);
                    tokio::time::sleep_until(due.into()).await;
                    body.clear();
                    (target.body)(target.first_seq + seq, &mut body);
                    let (status, answer) = post(&mut conn, &target, &body).await.unwrap_or((0, Vec::new()));
                    acked.push(Acked { due, answered: Instant::now(), status, body: answer });
                }
                acked
            }));
        }
        let mut all = Vec::with_capacity(total as usize);
        for t in tasks {
            all.extend(t.await.context("a load connection panicked")?);
        }
        Ok(all)
    })
}

/// Runs the generator on a fresh thread with a single-threaded runtime, away from the caller's.
fn on_own_thread<F, Fut, T>(f: F) -> anyhow::Result<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
    T: Send + 'static,
{
    std::thread::Builder::new()
        .name("bench-load".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            tokio::task::LocalSet::new().block_on(&rt, f())
        })
        .context("starting the load thread")?
        .join()
        .map_err(|_| anyhow::anyhow!("the load generator panicked"))?
}

/// One keep-alive connection and what it has read past the last answer.
struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
    request: Vec<u8>,
}

impl Connection {
    async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, buf: Vec::with_capacity(4096), request: Vec::with_capacity(1024) })
    }
}

/// Posts `body` on the connection, opening it first when there is none; a broken or closed
/// connection is dropped so the next request opens a fresh one.
async fn post(conn: &mut Option<Connection>, target: &Target, body: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
    if conn.is_none() {
        *conn = Some(Connection::open(target.addr).await?);
    }
    let Some(c) = conn.as_mut() else { unreachable!("opened above") };
    match exchange(c, target, body).await {
        Ok((status, answer, keep)) => {
            if !keep {
                *conn = None;
            }
            Ok((status, answer))
        }
        Err(e) => {
            *conn = None;
            Err(e)
        }
    }
}

async fn exchange(c: &mut Connection, target: &Target, body: &[u8]) -> anyhow::Result<(u16, Vec<u8>, bool)> {
    // The connection's buffer is reused: the generator must cost as little as it can, since
    // it shares the machine with the servers it measures.
    c.request.clear();
    write!(
        c.request,
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        target.path,
        target.addr,
        body.len()
    )?;
    c.request.extend_from_slice(body);
    c.stream.write_all(&c.request).await?;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head) = response.parse(&c.buf)? {
            let status = response.code.unwrap_or(0);
            let mut length = None;
            // HTTP/1.0 closes after each answer unless it says otherwise; we never ask it to.
            let mut keep = response.version == Some(1);
            for h in response.headers.iter() {
                if h.name.eq_ignore_ascii_case("content-length") {
                    length = Some(std::str::from_utf8(h.value)?.trim().parse::<usize>()?);
                } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                    bail!("a chunked answer (the load generator reads Content-Length answers only)");
                } else if h.name.eq_ignore_ascii_case("connection") && h.value.eq_ignore_ascii_case(b"close") {
                    keep = false;
                }
            }
            let length = match length {
                Some(n) => n,
                None if status == 204 || status == 304 => 0,
                None => bail!("an answer without Content-Length (status {status})"),
            };
            while c.buf.len() < head + length {
                read_more(c).await?;
            }
            let answer = c.buf[head..head + length].to_vec();
            c.buf.drain(..head + length);
            return Ok((status, answer, keep));
        }
        read_more(c).await?;
    }
}

async fn read_more(c: &mut Connection) -> anyhow::Result<()> {
    let mut chunk = [0u8; 4096];
    let n = c.stream.read(&mut chunk).await?;
    if n == 0 {
        bail!("the server closed the connection");
    }
    c.buf.extend_from_slice(&chunk[..n]);
    Ok(())
}
