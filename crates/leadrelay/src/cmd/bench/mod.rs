//! `leadrelay bench`: the SPEC §9 benchmark in one run on one machine, each figure beside a
//! ceiling measured in the same run, because absolute rates drift on shared machines.

mod ceiling;
mod child;
mod load;
mod postgres;
mod receiver;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use child::Server;
use load::{Length, Target};
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use ceiling::serve as serve_ceiling;

/// The publisher each phase posts as, so the database can be checked phase by phase.
const INGEST: &str = "bench-ingest";
const BACKLOG: &str = "bench-delivery";
const LATENCY: &str = "bench-latency";

/// What to run and for how long.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Seconds each throughput figure is measured for (after a warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Keep-alive connections of the load generator.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Destinations per publisher (each lead writes one outbox row per destination).
    #[arg(long, default_value_t = 2)]
    pub destinations: usize,
    /// Leads in the delivery backlog (each makes one delivery per destination).
    #[arg(long, default_value_t = 20_000)]
    pub backlog: u64,
    /// Leads per second of the open-loop latency run.
    #[arg(long, default_value_t = 1_000)]
    pub latency_rate: u32,
    /// Seconds of the latency run.
    #[arg(long, default_value_t = 10.0)]
    pub latency_seconds: f64,
    /// Also measure PostgreSQL: ingest with one node and with two, and delivery, in a schema
    /// the bench creates (and drops) in this database.
    #[arg(long)]
    pub postgres: Option<String>,
    /// Write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Measure this `leadrelay` binary's `serve` instead of this one's (a before/after of two
    /// builds with the same load generator and ceilings).
    #[arg(long)]
    pub serve_binary: Option<PathBuf>,
}

/// Runs every phase and prints the table; `Err` when a phase failed or a check did not hold.
///
/// leadrelay runs as a child `serve` on a fresh SQLite database with durable commits. The run
/// enforces rather than trusts what makes its figures honest: a unique e-mail per lead (so none
/// is a duplicate and each writes its outbox rows, counted afterwards), a 202 for every
/// request, open-loop latency.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    check(&args)?;
    leadrelay_destinations::install_crypto_provider();
    let measure = Duration::from_secs_f64(args.seconds);
    let timed = Length::Timed { warmup: measure.div_f64(4.0).min(Duration::from_secs(1)), measure };
    let body = lead_bodies();
    let mut next_seq = 0u64;
    let mut problems: Vec<String> = Vec::new();

    eprintln!("bench: ceiling (bare HTTP server, parse only) ...");
    let bare = Server::ceiling().await?;
    let target =
        Target { addr: bare.addr, path: "/v1/ingest/microsoft/bench".into(), body: body.clone(), first_seq: 0 };
    let ceiling_run = drive(target, args.connections, timed).await?;
    expect_all_202("the ceiling", &ceiling_run)?;
    bare.stop().await?;

    let stop = CancellationToken::new();
    let _stop_receiver = stop.clone().drop_guard();
    let (receiver_addr, received) = receiver::start(stop.clone()).await?;
    let data = private_temp_dir("leadrelay-bench-")?;
    let server = Server::leadrelay(&serve_binary(&args)?, data.path(), None).await?;

    eprintln!("bench: ingest (SQLite, durable, {} destinations per lead) ...", args.destinations);
    let (_, path) = server.publisher(INGEST, args.destinations, receiver_addr, false).await?;
    let ingest_run =
        drive(Target { addr: server.addr, path, body: body.clone(), first_seq: next_seq }, args.connections, timed)
            .await?;
    next_seq += ingest_run.sent;
    expect_all_202("ingest", &ingest_run)?;

    eprintln!("bench: delivery of a backlog of {} leads ...", args.backlog);
    let (dests, path) = server.publisher(BACKLOG, args.destinations, receiver_addr, false).await?;
    let fill = drive(
        Target { addr: server.addr, path, body: body.clone(), first_seq: next_seq },
        args.connections,
        Length::Requests(args.backlog),
    )
    .await?;
    next_seq += fill.sent;
    expect_all_202("the backlog", &fill)?;
    let expected = args.backlog * args.destinations as u64;
    let before = received.count();
    let started = Instant::now();
    for d in &dests {
        server.admin(&format!("/v1/destinations/{d}/enable"), Value::Null).await?;
    }
    let drained = received.wait_for(before + expected, Duration::from_secs(300)).await;
    let drain_secs = started.elapsed().as_secs_f64();
    let delivered = received.count() - before;
    if !drained {
        problems.push(format!("the backlog did not drain: {delivered} of {expected} deliveries in {drain_secs:.0} s"));
    }
    let delivery_per_s = delivered as f64 / drain_secs;

    eprintln!("bench: delivery ceiling (bare client -> receiver) ...");
    let sample = received.sample().context("the receiver never got a delivery to copy")?;
    // The server runs with the built-in settings, so the ceiling gets the same deliveries in
    // flight as leadrelay may have: per destination, and in all.
    let worker = leadrelay_server::config::Config::built_in().map_err(anyhow::Error::msg)?.worker;
    let in_flight = (args.destinations * worker.per_destination_concurrency as usize).min(worker.concurrency as usize);
    let ceiling_delivery_per_s =
        receiver::delivery_ceiling(receiver_addr, &received, sample, in_flight, measure).await?;

    eprintln!("bench: latency at {} leads/s, open loop ...", args.latency_rate);
    let (_, path) = server.publisher(LATENCY, args.destinations, receiver_addr, true).await?;
    let latency = latency_run(&args, &server, &received, path, body.clone(), next_seq).await?;
    next_seq += latency.acknowledged + latency.failed;
    if latency.missing > 0 {
        problems.push(format!("{} deliveries of the latency run never arrived", latency.missing));
    }
    if latency.failed > 0 {
        problems.push(format!("{} requests of the latency run were not answered 202", latency.failed));
    }

    let peak_rss_bytes = server.peak_rss_bytes()?;
    server.stop().await?;
    let report = leadrelay_store_sqlite::database_report(&data.path().join("leadrelay.db"))?;
    let leads = report.leads();
    let storage_bytes_per_lead = report.bytes_except(&["attempts"]).checked_div(leads).unwrap_or(0);
    let rows = report.deliveries_of(INGEST);
    let ingested = report.leads_of(INGEST);
    let dests = args.destinations as u64;
    let acked = |run: &load::ClosedRun| run.statuses.get(&202).copied().unwrap_or(0);
    problems.extend(stored_as_acknowledged(&report, INGEST, acked(&ingest_run), dests, None));
    problems.extend(stored_as_acknowledged(&report, BACKLOG, acked(&fill), dests, Some(acked(&fill) * dests)));
    problems.extend(stored_as_acknowledged(&report, LATENCY, latency.acknowledged, dests, None));

    let postgres = match &args.postgres {
        None => None,
        Some(url) => {
            let run = postgres::run(url, &args, timed, body.clone(), next_seq, receiver_addr, &received).await;
            Some(run.map_err(|e| format!("{e:#}")))
        }
    };

    let figures = Figures {
        ceiling_http_per_s: ceiling_run.per_second(),
        ingest_per_s: ingest_run.per_second(),
        ceiling_delivery_per_s,
        delivery_per_s,
        latency,
        peak_rss_bytes,
        storage_bytes_per_lead,
        postgres,
        tables: report.tables.clone(),
        outbox_rows_per_lead: if ingested > 0 { rows as f64 / ingested as f64 } else { 0.0 },
        leads_stored: leads,
        latency_rate: args.latency_rate,
    };
    print!("{}", figures.table());
    if let Some(file) = &args.json {
        write_json(file, &figures.report(&args, &problems))?;
    }
    if !problems.is_empty() {
        bail!("the run is not valid:\n  {}", problems.join("\n  "));
    }
    Ok(())
}

/// The binary whose `serve` is measured.
fn serve_binary(args: &BenchArgs) -> anyhow::Result<PathBuf> {
    match &args.serve_binary {
        Some(path) if path.is_file() => Ok(path.clone()),
        Some(path) => bail!("--serve-binary {}: no such file", path.display()),
        None => std::env::current_exe().context("finding this binary"),
    }
}

/// What is wrong, if anything, with what `publisher`'s phase left in the database: one lead per
/// acknowledged request, one outbox row per lead and destination, and (when given) that many
/// delivered.
fn stored_as_acknowledged(
    report: &leadrelay_store_sqlite::DatabaseReport,
    publisher: &str,
    acknowledged: u64,
    destinations: u64,
    delivered: Option<u64>,
) -> Option<String> {
    let (leads, rows, done) =
        (report.leads_of(publisher), report.deliveries_of(publisher), report.delivered_of(publisher));
    let wrong = leads != acknowledged || rows != leads * destinations || delivered.is_some_and(|d| d != done);
    wrong.then(|| {
        format!(
            "{publisher}: {acknowledged} leads acknowledged, {leads} stored with {rows} outbox rows, {done} delivered"
        )
    })
}

fn check(args: &BenchArgs) -> anyhow::Result<()> {
    if !(args.seconds.is_finite()
        && args.seconds > 0.0
        && args.latency_seconds.is_finite()
        && args.latency_seconds > 0.0)
    {
        bail!("--seconds and --latency-seconds must be positive numbers of seconds");
    }
    if args.connections == 0 || args.destinations == 0 || args.backlog == 0 || args.latency_rate == 0 {
        bail!("--connections, --destinations, --backlog and --latency-rate must be at least 1");
    }
    if args.destinations > 50 {
        bail!("--destinations must be at most 50 (delivery.max_destinations_per_publisher)");
    }
    Ok(())
}

/// The marketplace's documented HTTPS-endpoint example, with a unique e-mail per request.
fn lead_bodies() -> load::BodyFn {
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    Arc::new(move |seq, out| {
        let _ = write!(
            out,
            r#"{{"UserDetails":{{"FirstName":"Some","LastName":"One","Email":"lead{run:x}-{seq}@contoso.com","Phone":"16175555555","Country":"USA","Company":"Contoso","Title":"Esquire"}},"LeadSource":"AzureMarketplace","ActionCode":"INS","OfferTitle":"Test Microsoft","Description":"Test run through Power Automate"}}"#
        );
    })
}

async fn drive(target: Target, connections: usize, length: Length) -> anyhow::Result<load::ClosedRun> {
    tokio::task::spawn_blocking(move || load::closed_loop(target, connections, length)).await?
}

fn expect_all_202(what: &str, run: &load::ClosedRun) -> anyhow::Result<()> {
    if run.failures(202) > 0 {
        bail!("{what}: not every answer was 202: {:?} and {} without an answer", run.statuses, run.errors);
    }
    Ok(())
}

/// Ack → receiver latency, in milliseconds (rounded to 0.01), as the report has it.
#[derive(Debug, Default, Serialize)]
struct Latency {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    /// Due → ack of the ingest requests (the server's own answer time under the schedule).
    ack_p99: f64,
    samples: usize,
    #[serde(skip)]
    missing: usize,
    /// Requests answered 202, and the others.
    #[serde(skip)]
    acknowledged: u64,
    #[serde(skip)]
    failed: u64,
}

async fn latency_run(
    args: &BenchArgs,
    server: &Server,
    received: &receiver::Received,
    path: String,
    body: load::BodyFn,
    first_seq: u64,
) -> anyhow::Result<Latency> {
    let target = Target { addr: server.addr, path, body, first_seq };
    let (rate, length, conns) = (args.latency_rate, Duration::from_secs_f64(args.latency_seconds), args.connections);
    received.record();
    let before = received.count();
    let acked = tokio::task::spawn_blocking(move || load::open_loop(target, rate, length, conns)).await??;
    let ok: Vec<_> = acked.iter().filter(|a| a.status == 202).collect();
    let expected = ok.len() as u64 * args.destinations as u64;
    received.wait_for(before + expected, Duration::from_secs(30)).await;
    let arrived = received.take_recorded();
    let mut delays = Vec::with_capacity(expected as usize);
    let mut missing = 0;
    for a in &ok {
        let id = serde_json::from_slice::<Value>(&a.body)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_owned))
            .context("a 202 without a lead id")?;
        for n in 1..=args.destinations {
            match arrived.get(&(format!("{LATENCY}/{n}"), id.clone())) {
                Some(at) => delays.push(at.saturating_duration_since(a.answered).as_secs_f64() * 1e3),
                None => missing += 1,
            }
        }
    }
    let mut acks: Vec<f64> = ok.iter().map(|a| a.answered.duration_since(a.due).as_secs_f64() * 1e3).collect();
    delays.sort_by(f64::total_cmp);
    acks.sort_by(f64::total_cmp);
    Ok(Latency {
        p50: percentile(&delays, 0.50),
        p90: percentile(&delays, 0.90),
        p99: percentile(&delays, 0.99),
        max: percentile(&delays, 1.0),
        ack_p99: percentile(&acks, 0.99),
        samples: delays.len(),
        missing,
        acknowledged: ok.len() as u64,
        failed: (acked.len() - ok.len()) as u64,
    })
}

/// The nearest-rank percentile (`q` in 0..=1) of `sorted`, to 0.01; 0 when empty.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    (sorted[rank - 1] * 100.0).round() / 100.0
}

/// The `--json` file: SPEC §9's figures under the keys the issue names, then the details.
#[derive(Serialize)]
struct Report<'a> {
    ceiling_http_per_s: f64,
    ingest_per_s: f64,
    ingest_ratio: f64,
    ceiling_delivery_per_s: f64,
    delivery_per_s: f64,
    delivery_ratio: f64,
    latency_ms: &'a Latency,
    peak_rss_bytes: u64,
    storage_bytes_per_lead: u64,
    storage_bytes_by_table: BTreeMap<String, u64>,
    outbox_rows_per_lead: f64,
    leads_stored: u64,
    postgres: Option<&'a postgres::PostgresFigures>,
    postgres_error: Option<String>,
    targets: BTreeMap<&'static str, TargetReport>,
    problems: &'a [String],
    run: RunReport<'a>,
}

#[derive(Serialize)]
struct TargetReport {
    /// `None` when the run was not the one the target is set for.
    met: Option<bool>,
    target: &'static str,
}

#[derive(Serialize)]
struct RunReport<'a> {
    seconds: f64,
    connections: usize,
    destinations: usize,
    backlog: u64,
    latency_rate: u32,
    latency_seconds: f64,
    cores: usize,
    version: &'static str,
    serve_binary: Option<&'a Path>,
}

struct Figures {
    ceiling_http_per_s: f64,
    ingest_per_s: f64,
    ceiling_delivery_per_s: f64,
    delivery_per_s: f64,
    latency: Latency,
    peak_rss_bytes: u64,
    storage_bytes_per_lead: u64,
    postgres: Option<Result<postgres::PostgresFigures, String>>,
    tables: Vec<(String, u64)>,
    outbox_rows_per_lead: f64,
    leads_stored: u64,
    /// The latency run's rate: its target holds at 1,000 leads/s only.
    latency_rate: u32,
}

/// SPEC §9's targets: (key, whether the figure is good enough (`None`: the run was not the one
/// the target is set for), the rule as text).
fn targets(f: &Figures) -> Vec<(&'static str, Option<bool>, &'static str)> {
    let mut t = vec![
        ("ingest_ratio", Some(ratio(f.ingest_per_s, f.ceiling_http_per_s) >= 0.60), ">= 0.60 of the HTTP ceiling"),
        ("delivery_per_s", Some(f.delivery_per_s >= 20_000.0), ">= 20,000 deliveries/s"),
        (
            "delivery_ratio",
            Some(ratio(f.delivery_per_s, f.ceiling_delivery_per_s) >= 0.50),
            ">= 0.50 of the delivery ceiling",
        ),
        ("latency_ms.p99", (f.latency_rate == 1_000).then_some(f.latency.p99 <= 20.0), "<= 20 ms at 1,000 leads/s"),
        ("peak_rss_bytes", Some(f.peak_rss_bytes <= 150 * 1024 * 1024), "<= 150 MB"),
        ("storage_bytes_per_lead", Some(f.storage_bytes_per_lead <= 1024), "<= 1 KB per lead"),
    ];
    if let Some(Ok(pg)) = &f.postgres {
        t.push(("postgres.ingest_one_node_per_s", Some(pg.ingest_one_node_per_s >= 20_000.0), ">= 20,000 leads/s"));
        t.push((
            "postgres.ingest_two_nodes_per_s",
            Some(pg.ingest_two_nodes_per_s > pg.ingest_one_node_per_s),
            "> one node's",
        ));
    }
    t
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

impl Figures {
    /// The figures as the `--json` file has them (rounded; `None` is `null`).
    fn report<'a>(&'a self, args: &'a BenchArgs, problems: &'a [String]) -> Report<'a> {
        let round = |x: f64, places: i32| (x * 10f64.powi(places)).round() / 10f64.powi(places);
        Report {
            ceiling_http_per_s: round(self.ceiling_http_per_s, 0),
            ingest_per_s: round(self.ingest_per_s, 0),
            ingest_ratio: round(ratio(self.ingest_per_s, self.ceiling_http_per_s), 3),
            ceiling_delivery_per_s: round(self.ceiling_delivery_per_s, 0),
            delivery_per_s: round(self.delivery_per_s, 0),
            delivery_ratio: round(ratio(self.delivery_per_s, self.ceiling_delivery_per_s), 3),
            latency_ms: &self.latency,
            peak_rss_bytes: self.peak_rss_bytes,
            storage_bytes_per_lead: self.storage_bytes_per_lead,
            storage_bytes_by_table: self.tables.iter().cloned().collect(),
            outbox_rows_per_lead: round(self.outbox_rows_per_lead, 3),
            leads_stored: self.leads_stored,
            postgres: match &self.postgres {
                Some(Ok(figures)) => Some(figures),
                _ => None,
            },
            postgres_error: match &self.postgres {
                Some(Err(e)) => Some(e.clone()),
                _ => None,
            },
            targets: targets(self).into_iter().map(|(key, met, target)| (key, TargetReport { met, target })).collect(),
            problems,
            run: RunReport {
                seconds: args.seconds,
                connections: args.connections,
                destinations: args.destinations,
                backlog: args.backlog,
                latency_rate: args.latency_rate,
                latency_seconds: args.latency_seconds,
                cores: std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
                version: env!("CARGO_PKG_VERSION"),
                serve_binary: args.serve_binary.as_deref(),
            },
        }
    }

    fn table(&self) -> String {
        let met: std::collections::HashMap<&str, (Option<bool>, &str)> =
            targets(self).into_iter().map(|(k, m, r)| (k, (m, r))).collect();
        let mut out = String::new();
        let mut row = |key: &str, value: String| {
            let (verdict, rule) = match met.get(key) {
                Some((Some(true), rule)) => ("met", *rule),
                Some((Some(false), rule)) => ("NOT MET", *rule),
                Some((None, rule)) => ("(not this run)", *rule),
                None => ("", ""),
            };
            out.push_str(&format!("{key:<26} {value:>16}   {rule:<32} {verdict}\n"));
        };
        row("ceiling_http_per_s", format!("{:.0}/s", self.ceiling_http_per_s));
        row("ingest_per_s", format!("{:.0}/s", self.ingest_per_s));
        row("ingest_ratio", format!("{:.3}", ratio(self.ingest_per_s, self.ceiling_http_per_s)));
        row("ceiling_delivery_per_s", format!("{:.0}/s", self.ceiling_delivery_per_s));
        row("delivery_per_s", format!("{:.0}/s", self.delivery_per_s));
        row("delivery_ratio", format!("{:.3}", ratio(self.delivery_per_s, self.ceiling_delivery_per_s)));
        row("latency_ms.p50", format!("{:.2} ms", self.latency.p50));
        row("latency_ms.p90", format!("{:.2} ms", self.latency.p90));
        row("latency_ms.p99", format!("{:.2} ms", self.latency.p99));
        row("latency_ms.max", format!("{:.2} ms", self.latency.max));
        row("peak_rss_bytes", format!("{:.1} MB", self.peak_rss_bytes as f64 / 1048576.0));
        row("storage_bytes_per_lead", format!("{} B", self.storage_bytes_per_lead));
        row("outbox_rows_per_lead", format!("{:.2}", self.outbox_rows_per_lead));
        match &self.postgres {
            None => row("postgres", "not run".to_owned()),
            Some(Ok(pg)) => {
                row("postgres.ingest_one_node_per_s", format!("{:.0}/s", pg.ingest_one_node_per_s));
                row("postgres.ingest_two_nodes_per_s", format!("{:.0}/s", pg.ingest_two_nodes_per_s));
                row("postgres.delivery_per_s", format!("{:.0}/s", pg.delivery_per_s));
            }
            Some(Err(e)) => {
                row("postgres", "failed".to_owned());
                out.push_str(&format!("  PostgreSQL: {e}\n"));
            }
        }
        out
    }
}

/// A temporary data directory only this user can read, as `serve` expects of one.
fn private_temp_dir(prefix: &str) -> anyhow::Result<tempfile::TempDir> {
    let permissions = std::fs::Permissions::from_mode(0o700);
    tempfile::Builder::new()
        .prefix(prefix)
        .permissions(permissions)
        .tempdir()
        .context("creating a temporary data directory")
}

fn write_json(file: &Path, report: &Report<'_>) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(file, text + "\n").with_context(|| format!("writing {}", file.display()))
}
