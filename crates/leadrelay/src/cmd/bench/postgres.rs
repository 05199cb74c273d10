//! The PostgreSQL phase of `leadrelay bench --postgres URL`: ingest with one node, then with two
//! nodes on the same database, then the delivery of a backlog by both, each figure checked
//! against what the database holds afterwards. It runs in a schema of its own, created in the
//! given database and dropped at the end, so a run never meets an earlier run's data.
//!
//! Both ingest runs use the same load generator: two closed loops of half the connections each.
//! With one node both loops post to it; with two nodes each loop posts to its own node. So the
//! ratio of the two figures is what the second node adds, not what a second client adds.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::Value;

use super::child::Server;
use super::load::{self, Length, Target};
use super::{BenchArgs, drive, expect_all_202, private_temp_dir, receiver};

/// What the PostgreSQL phase measured.
#[derive(Debug, Clone, Serialize)]
pub struct PostgresFigures {
    /// Leads per second acknowledged by one node.
    pub ingest_one_node_per_s: f64,
    /// Leads per second acknowledged by two nodes together.
    pub ingest_two_nodes_per_s: f64,
    /// Deliveries per second of a backlog drained by both nodes.
    pub delivery_per_s: f64,
}

/// The publishers of this phase.
const ONE_NODE: &str = "bench-pg-one";
const TWO_NODES: &str = "bench-pg-two";
const BACKLOG: &str = "bench-pg-delivery";

/// Runs the phase against the database at `url`.
pub async fn run(
    url: &str,
    args: &BenchArgs,
    length: Length,
    body: load::BodyFn,
    first_seq: u64,
    receiver_addr: SocketAddr,
    received: &receiver::Received,
) -> anyhow::Result<PostgresFigures> {
    let scratch = Scratch::create(url).await?;
    let outcome = measure(&scratch, args, length, body, first_seq, receiver_addr, received).await;
    scratch.drop_schema().await;
    outcome
}

async fn measure(
    scratch: &Scratch,
    args: &BenchArgs,
    length: Length,
    body: load::BodyFn,
    mut next_seq: u64,
    receiver_addr: SocketAddr,
    received: &receiver::Received,
) -> anyhow::Result<PostgresFigures> {
    let binary = super::serve_binary(args)?;
    let key = leadrelay_core::vault::Keyring::generate_key();
    let (dir_a, dir_b) = (private_temp_dir("leadrelay-bench-pg-a-")?, private_temp_dir("leadrelay-bench-pg-b-")?);
    eprintln!("bench: ingest on PostgreSQL, one node ...");
    let a = Server::leadrelay_keyed(&binary, dir_a.path(), Some(&scratch.url), &key).await?;
    let (_, path) = a.publisher(ONE_NODE, args.destinations, receiver_addr, false).await?;
    let halves = args.connections.div_ceil(2);
    let one = split_drive([(a.addr, path.clone()), (a.addr, path)], &body, next_seq, halves, length).await?;
    next_seq += one.sent;

    eprintln!("bench: ingest on PostgreSQL, two nodes ...");
    let b = Server::leadrelay_keyed(&binary, dir_b.path(), Some(&scratch.url), &key).await?;
    let (_, path) = a.publisher(TWO_NODES, args.destinations, receiver_addr, false).await?;
    let two = split_drive([(a.addr, path.clone()), (b.addr, path)], &body, next_seq, halves, length).await?;
    next_seq += two.sent;

    eprintln!("bench: delivery on PostgreSQL of a backlog of {} leads, two nodes ...", args.backlog);
    let (dests, path) = a.publisher(BACKLOG, args.destinations, receiver_addr, false).await?;
    let fill = split_drive(
        [(a.addr, path.clone()), (b.addr, path)],
        &body,
        next_seq,
        halves,
        Length::Requests(args.backlog.div_ceil(2)),
    )
    .await?;
    let expected = fill.acknowledged * args.destinations as u64;
    let before = received.count();
    let started = Instant::now();
    for d in &dests {
        a.admin(&format!("/v1/destinations/{d}/enable"), Value::Null).await?;
    }
    let drained = received.wait_for(before + expected, Duration::from_secs(300)).await;
    let drain_secs = started.elapsed().as_secs_f64();
    let delivered = received.count() - before;
    a.stop().await?;
    b.stop().await?;
    if !drained {
        bail!("the PostgreSQL backlog did not drain: {delivered} of {expected} deliveries in {drain_secs:.0} s");
    }
    let dests = args.destinations as u64;
    scratch.check_stored(ONE_NODE, one.acknowledged, dests, None).await?;
    scratch.check_stored(TWO_NODES, two.acknowledged, dests, None).await?;
    scratch.check_stored(BACKLOG, fill.acknowledged, dests, Some(expected)).await?;
    Ok(PostgresFigures {
        ingest_one_node_per_s: one.per_second.round(),
        ingest_two_nodes_per_s: two.per_second.round(),
        delivery_per_s: (delivered as f64 / drain_secs).round(),
    })
}

/// Two closed loops at once, each with its own target.
struct SplitRun {
    per_second: f64,
    acknowledged: u64,
    sent: u64,
}

async fn split_drive(
    targets: [(SocketAddr, String); 2],
    body: &load::BodyFn,
    first_seq: u64,
    connections: usize,
    length: Length,
) -> anyhow::Result<SplitRun> {
    // The second loop numbers its bodies after every one the first could send.
    let stride = match length {
        Length::Requests(n) => n,
        Length::Timed { .. } => 1 << 40,
    };
    let [(addr_1, path_1), (addr_2, path_2)] = targets;
    let first = Target { addr: addr_1, path: path_1, body: body.clone(), first_seq };
    let second = Target { addr: addr_2, path: path_2, body: body.clone(), first_seq: first_seq + stride };
    let (r1, r2) = tokio::join!(drive(first, connections, length), drive(second, connections, length));
    let (r1, r2) = (r1?, r2?);
    expect_all_202("PostgreSQL ingest", &r1)?;
    expect_all_202("PostgreSQL ingest", &r2)?;
    let acked = |r: &load::ClosedRun| r.statuses.get(&202).copied().unwrap_or(0);
    Ok(SplitRun {
        per_second: r1.per_second() + r2.per_second(),
        acknowledged: acked(&r1) + acked(&r2),
        sent: stride + r2.sent,
    })
}

/// A schema of the benchmark's own in the given database.
struct Scratch {
    client: tokio_postgres::Client,
    schema: String,
    /// The given URL with the schema as the search path.
    url: String,
}

impl Scratch {
    async fn create(url: &str) -> anyhow::Result<Self> {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .with_context(|| "connecting to --postgres (a database where the bench may create a schema)")?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let schema = format!("leadrelay_bench_{}", std::process::id());
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"))
            .await
            .context("creating the bench's schema")?;
        let separator = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{separator}options=-csearch_path%3D{schema}");
        Ok(Self { client, schema, url })
    }

    /// One lead per acknowledged request, one outbox row per lead and destination, and (when
    /// given) that many delivered.
    async fn check_stored(
        &self,
        publisher: &str,
        acknowledged: u64,
        destinations: u64,
        delivered: Option<u64>,
    ) -> anyhow::Result<()> {
        let q = |table: &str, extra: &str| {
            format!("SELECT COUNT(*) FROM {}.{table} WHERE publisher_id = $1{extra}", self.schema)
        };
        let count = |sql: String| async move {
            let row = self.client.query_one(&sql, &[&publisher]).await?;
            anyhow::Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
        };
        let leads = count(q("leads", "")).await?;
        let rows = count(q("deliveries", "")).await?;
        let done = count(q("deliveries", " AND status = 'delivered'")).await?;
        if leads != acknowledged || rows != leads * destinations || delivered.is_some_and(|d| d != done) {
            bail!(
                "{publisher}: {acknowledged} leads acknowledged, {leads} stored with {rows} outbox rows, {done} delivered"
            );
        }
        Ok(())
    }

    async fn drop_schema(&self) {
        let _ = self.client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema)).await;
    }
}
