//! `leadrelay seed` (hidden): fills a database with a realistic sales history, for measuring the
//! sales queries at scale (the 1,000,000-lead run of issue 11), then times them.
//!
//! Everything goes through the storage traits, as the server would write it: leads through
//! `insert_leads` (so their customers, duplicates and opportunities are the real ones), the
//! follow-up through `add_activity`, `update_opportunity` and `tick_checklist`, deliveries
//! through claims and recorded attempts. Random choices come from a fixed seed, so two runs of
//! one size build the same history (ids and times aside).

use std::collections::{BinaryHeap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use leadrelay_core::destination::DestinationRecord;
use leadrelay_core::sales::kpi::{KpiGroup, KpiQuery};
use leadrelay_core::sales::{Activity, ActivityKind, OpportunityStatus, Role, SalesSettings, User};
use leadrelay_core::storage::{
    Attempt, AttemptRecord, ChecklistTick, ClaimRequest, DueFilter, LeadWithDeliveries, NewDelivery, NextState, Offer,
    OpportunityFilter, OpportunityUpdate, OwnerFilter, PageRequest, Publisher, Storage, StorageError,
};
use leadrelay_core::{
    ActivityId, Clock, Customer, DeliveryId, DestinationId, Lead, LeadDraft, LeadId, LeadRules, OfferId, OfferType,
    OpportunityId, PublisherId, SystemClock, Timestamp, UserId,
};
use leadrelay_server::config::Config;
use serde::Serialize;

/// What to seed.
#[derive(Debug, Clone, clap::Args)]
pub struct SeedArgs {
    /// How many leads to insert.
    #[arg(long, default_value_t = 0)]
    pub leads: u64,
    /// The publisher to create (it must not exist yet).
    #[arg(long, default_value = "seed")]
    pub publisher: String,
    /// Leads per `insert_leads` call.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Write the counts and timings as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Seed nothing: time the queries over the publisher a previous seed made.
    #[arg(long)]
    pub measure_only: bool,
}

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// How many times each measured query runs (the first run is reported apart from the median).
const RUNS: usize = 5;
/// Concurrent tasks working opportunities (their writes share group commits, as a team's do).
const WORKERS: usize = 64;
/// Streams of leads inserted side by side (see [`Timeline`]).
const STREAMS: u64 = 4;
/// Claim-and-record loops delivering side by side.
const DELIVERERS: u64 = 3;
/// The duplicate window the seeded leads are checked with (the default of `ingest`).
const WINDOW: Duration = Duration::from_secs(24 * 3600);

const FIRST: [&str; 32] = [
    "Ada", "Ben", "Carla", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jon", "Keiko", "Luis", "Maya", "Nils",
    "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wes", "Xia", "Yusuf", "Zoe", "Aiko", "Bruno",
    "Chloe", "Diego", "Emil", "Fatima",
];
const LAST: [&str; 32] = [
    "Almeida", "Brown", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito", "Jensen", "Kowalski",
    "Lopez", "Moreau", "Novak", "Okafor", "Petrov", "Quintero", "Rossi", "Silva", "Tanaka", "Ueda", "Varga", "Weber",
    "Xu", "Yilmaz", "Zhang", "Andersen", "Becker", "Castro", "Dias", "Evans", "Ferreira",
];
/// Company names; the first one is the word the text search is timed with.
const COMPANIES: [&str; 40] = [
    "Fabrikam",
    "Contoso",
    "Northwind",
    "Tailspin",
    "Adatum",
    "Litware",
    "Proseware",
    "Woodgrove",
    "Wingtip",
    "Alpine",
    "Coho",
    "Lucerne",
    "Margie",
    "Trey",
    "Relecloud",
    "Lamna",
    "Southridge",
    "Bellows",
    "Humongous",
    "VanArsdel",
    "Munson",
    "Datum",
    "Nod",
    "Olympia",
    "Pinecrest",
    "Quillworks",
    "Redwood",
    "Summit",
    "Tidewater",
    "Umbra",
    "Vertex",
    "Willow",
    "Xylo",
    "Yellowfin",
    "Zephyr",
    "Bluebell",
    "Copperline",
    "Driftwood",
    "Evergreen",
    "Foxglove",
];
const TITLES: [&str; 8] = ["CTO", "IT Manager", "Developer", "CFO", "Head of Sales", "Architect", "COO", "Analyst"];
const COUNTRIES: [&str; 8] = ["US", "GB", "DE", "FR", "PT", "BR", "IN", "JP"];
const OFFERS: [(&str, &str); 3] = [("crm", "Seed CRM"), ("erp", "Seed ERP"), ("bi", "Seed BI")];

/// splitmix64: a small, fast, seedable generator (no dependency for a dev command).
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// Uniform in `lo..hi` milliseconds.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + i64::try_from(self.below(u64::try_from(hi - lo).unwrap_or(1))).unwrap_or(0)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[usize::try_from(self.below(items.len() as u64)).unwrap_or(0)]
    }
}

/// One lead still to be generated, ordered by time (earliest first out of the heap).
#[derive(Debug, PartialEq, Eq)]
struct Due {
    at: i64,
    seq: u64,
    buyer: u64,
    action: &'static str,
    test: bool,
}

impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The buyers and their leads, in time order: ~80 % send contact-me, free-trial and install,
/// ~10 % two of them, the rest one lead of any kind; 1 % ask not to be contacted, 2 % send a
/// contact-me twice within the hour (a duplicate), and 0.5 % of leads are test leads.
///
/// A timeline is one of `streams`: it holds the buyers `stream`, `stream + streams`, …, so
/// streams share no buyer and can be inserted side by side, each in its own time order.
struct Timeline {
    rng: Rng,
    heap: BinaryHeap<Due>,
    next_buyer: u64,
    streams: u64,
    step: i64,
    start: i64,
    seq: u64,
}

impl Timeline {
    fn new(leads: u64, start: i64, end: i64, stream: u64, streams: u64) -> Self {
        let buyers = (leads as f64 / 2.7).ceil().max(1.0);
        let step = (((end - start) as f64) / buyers).max(1.0) as i64;
        let rng = Rng(0x5eed ^ stream);
        Self { rng, heap: BinaryHeap::new(), next_buyer: stream, streams, step, start, seq: 0 }
    }

    fn push(&mut self, at: i64, buyer: u64, action: &'static str, test: bool) {
        self.seq += 1;
        self.heap.push(Due { at, seq: self.seq, buyer, action, test });
    }

    /// Schedules the next buyer's leads.
    fn arrive(&mut self) {
        let buyer = self.next_buyer;
        self.next_buyer += self.streams;
        let at = self.start + i64::try_from(buyer).unwrap_or(0) * self.step;
        let r = self.rng.below(1000);
        if r < 10 {
            self.push(at, buyer, "DNC", false);
        } else if r < 15 {
            self.push(at, buyer, "INS", true);
        } else if r < 815 {
            let trial = at + self.rng.between(HOUR, 72 * HOUR);
            let install = trial + self.rng.between(DAY, 14 * DAY);
            self.push(at, buyer, "PLT", false);
            self.push(trial, buyer, "FreeTrial", false);
            self.push(install, buyer, "INS", false);
            if self.rng.chance(0.02) {
                let repeat = at + self.rng.between(60_000, HOUR);
                self.push(repeat, buyer, "PLT", false);
            }
        } else if r < 915 {
            let install = at + self.rng.between(DAY, 10 * DAY);
            self.push(at, buyer, "PLT", false);
            self.push(install, buyer, "INS", false);
        } else {
            let action = *self.rng.pick(&["PLT", "INS", "FreeTrial", "Create", "StartTestDrive"]);
            self.push(at, buyer, action, false);
        }
    }

    /// The next lead in time order.
    fn next_due(&mut self) -> Due {
        loop {
            let next_arrival = self.start + i64::try_from(self.next_buyer).unwrap_or(0) * self.step;
            match self.heap.peek() {
                Some(d) if d.at <= next_arrival => return self.heap.pop().expect("peeked"),
                _ => self.arrive(),
            }
        }
    }
}

/// The lead of a buyer: the same person, company and offer every time, deterministic by buyer.
fn lead_of(p: &PublisherId, due: &Due, rules: &LeadRules) -> anyhow::Result<Lead> {
    let mut r = Rng(due.buyer.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0xb0b);
    let (first, last, company) = (*r.pick(&FIRST), *r.pick(&LAST), *r.pick(&COMPANIES));
    let offer = r.pick(&OFFERS).0;
    let source = *r.pick(&[
        "AzureMarketplace",
        "AzureMarketplace",
        "AzureMarketplace",
        "AzureMarketplace",
        "AppSource (SPZA)",
        "AppSource (SPZA)",
        "AppSource (SPZA)",
        "AzurePortal",
        "SPZA",
    ]);
    let offer_id = OfferId::parse(&format!("{p}.{offer}")).map_err(anyhow::Error::msg)?;
    let email =
        format!("{}.{}.{}@{}.example", first.to_lowercase(), last.to_lowercase(), due.buyer, company.to_lowercase());
    let draft = LeadDraft {
        publisher: Some(p.clone()),
        offer: Some(offer_id.clone()),
        lead_source: Some(format!("{source}-{}|{offer_id}", due.action)),
        customer: Customer {
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            email: Some(email),
            phone: r.chance(0.4).then(|| format!("+1 555 {:04}", due.buyer % 10_000)),
            country: Some((*r.pick(&COUNTRIES)).into()),
            company: Some(company.into()),
            title: Some((*r.pick(&TITLES)).into()),
        },
        description: r.chance(0.3).then(|| "Interested in a demo for the whole team.".to_owned()),
        is_test: due.test,
        ..LeadDraft::default()
    };
    let at = Timestamp::from_millis(due.at);
    Lead::from_draft(draft, LeadId::generate(at), at, rules).map_err(|e| anyhow::anyhow!("seed lead: {e:?}"))
}

#[derive(Debug, Default, Serialize)]
struct Timing {
    first_ms: f64,
    median_ms: f64,
    items: usize,
}

#[derive(Debug, Default, Serialize)]
struct Report {
    leads: u64,
    publisher: String,
    opportunities: u64,
    activities: u64,
    status_updates: u64,
    checklist_ticks: u64,
    deliveries: u64,
    insert_seconds: f64,
    work_seconds: f64,
    deliver_seconds: f64,
    database_bytes: u64,
    kpis: Timing,
    kpis_by_offer: Timing,
    kpis_last_30_days: Timing,
    list_all: Timing,
    list_status_qualified: Timing,
    list_owner: Timing,
    list_unassigned: Timing,
    list_due_overdue: Timing,
    list_text: Timing,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Runs `f` [`RUNS`] times; the first run and the median, and how many items the last gave.
async fn time<F, Fut>(f: F) -> anyhow::Result<Timing>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<usize, StorageError>>,
{
    let mut runs = Vec::with_capacity(RUNS);
    let mut items = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        items = f().await?;
        runs.push(started.elapsed());
    }
    let first = runs[0];
    runs.sort();
    Ok(Timing { first_ms: ms(first), median_ms: ms(runs[RUNS / 2]), items })
}

/// Seeds, then measures; prints a table and, with `--json`, writes the report.
pub async fn run(config: &Config, args: SeedArgs) -> anyhow::Result<()> {
    if (args.leads == 0 && !args.measure_only) || args.batch == 0 {
        bail!("--leads and --batch must be at least 1");
    }
    let p = PublisherId::parse(&args.publisher).map_err(|rule| anyhow::anyhow!("--publisher {rule}"))?;
    let storage = super::open_storage(config, super::Opening { migrate: true, serving: true }).await?;
    let now = SystemClock.now();
    let mut report = Report { leads: args.leads, publisher: p.to_string(), ..Report::default() };
    let team = if args.measure_only {
        storage.sales_settings(&p).await.with_context(|| format!("reading the settings of {p}"))?.team
    } else {
        seed(config, &storage, &p, &args, now, &mut report).await?
    };
    measure(&storage, &p, &team, now, &mut report).await?;
    print_report(&report);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Builds the history; returns the team.
async fn seed(
    config: &Config,
    storage: &Arc<dyn Storage>,
    p: &PublisherId,
    args: &SeedArgs,
    now: Timestamp,
    report: &mut Report,
) -> anyhow::Result<Vec<UserId>> {
    let s = &**storage;
    let p = p.clone();
    let start = now.as_millis() - 195 * DAY;
    let end = now.as_millis() - 15 * DAY;

    // The publisher, its offers, two destinations, a team of three and round-robin.
    let created = Timestamp::from_millis(start - DAY);
    match s.create_publisher(&Publisher { id: p.clone(), name: format!("Seed {p}"), created_at: created }).await {
        Err(StorageError::Conflict) => {
            bail!("publisher {p} exists already; pick another --publisher or a fresh --data-dir")
        }
        other => other.context("creating the publisher")?,
    }
    for (offer, title) in OFFERS {
        let id = OfferId::parse(&format!("{p}.{offer}")).map_err(anyhow::Error::msg)?;
        let o = Offer {
            id,
            publisher: p.clone(),
            title: title.into(),
            offer_type: OfferType::Saas,
            created_at: created,
            updated_at: created,
            published_at: None,
            last_validation: None,
        };
        s.upsert_offer(&o).await.context("creating an offer")?;
    }
    let mut destinations = Vec::new();
    for name in ["crm-hook", "team-hook"] {
        let d = DestinationRecord {
            id: DestinationId::generate(created),
            publisher: p.clone(),
            name: name.into(),
            kind: "https".into(),
            settings: serde_json::json!({"url": format!("https://{name}.seed.example/leads"), "secret": "seed"}),
            offers: None,
            enabled: true,
            disabled_reason: None,
            consecutive_failures: 0,
            failing_since: None,
            created_at: created,
            updated_at: created,
        };
        s.create_destination(&d).await.context("creating a destination")?;
        destinations.push(d.id);
    }
    let mut team = Vec::new();
    for name in ["Ana", "Bea", "Caio"] {
        let id = UserId::generate(created);
        let user = User {
            id: id.clone(),
            publisher: p.clone(),
            email: format!("{}@{p}.seed.example", name.to_lowercase()),
            name: format!("{name} Seed"),
            role: Role::Member,
            password_hash: None,
            invite_hash: None,
            invite_expires_at: None,
            created_at: created,
        };
        s.create_user(&user).await.context("creating a team member")?;
        team.push(id);
    }
    let settings = SalesSettings { team: team.clone(), round_robin: true, ..SalesSettings::default() };
    s.put_sales_settings(&p, &settings).await.context("storing the sales settings")?;

    // The leads through the one insert every way in uses, in streams of disjoint buyers side by
    // side (each in time order), so sealing runs on every core while the writer commits.
    eprintln!("seed: inserting {} leads ...", args.leads);
    let started = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    let mut streams = Vec::new();
    for stream in 0..STREAMS {
        let share = args.leads / STREAMS + u64::from(stream < args.leads % STREAMS);
        let (storage, p, destinations, done) =
            (Arc::clone(storage), p.clone(), destinations.clone(), Arc::clone(&done));
        let (total, batch) = (args.leads, args.batch);
        let mut timeline = Timeline::new(total, start, end, stream, STREAMS);
        streams.push(tokio::spawn(async move {
            let rules = LeadRules::default();
            let mut opened: Vec<(OpportunityId, i64)> = Vec::new();
            let mut seen: HashSet<OpportunityId> = HashSet::new();
            let mut left = share;
            while left > 0 {
                let n = usize::try_from(left.min(batch as u64)).unwrap_or(batch);
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    let lead = lead_of(&p, &timeline.next_due(), &rules)?;
                    let deliveries = destinations
                        .iter()
                        .map(|d| NewDelivery { id: DeliveryId::generate(lead.received_at), destination: d.clone() })
                        .collect();
                    items.push(LeadWithDeliveries { lead, deliveries });
                }
                let accepted = storage.insert_leads(&items, WINDOW).await.context("inserting leads")?;
                for (item, a) in items.iter().zip(accepted) {
                    if let Some(o) = a.opportunity
                        && seen.insert(o.clone())
                    {
                        opened.push((o, item.lead.received_at.as_millis()));
                    }
                }
                left -= n as u64;
                let before = done.fetch_add(n as u64, Ordering::Relaxed);
                if (before + n as u64) / 100_000 > before / 100_000 {
                    eprintln!("seed: {} leads, {:.0} s", before + n as u64, started.elapsed().as_secs_f64());
                }
            }
            Ok::<_, anyhow::Error>(opened)
        }));
    }
    let mut opened: Vec<(OpportunityId, i64)> = Vec::new();
    for stream in streams {
        opened.extend(stream.await.context("a seeding task panicked")??);
    }
    report.insert_seconds = started.elapsed().as_secs_f64();
    report.opportunities = opened.len() as u64;

    // The team works them: touches, qualification, wins and losses, in 64 tasks at once.
    eprintln!("seed: working {} opportunities ...", opened.len());
    let started = Instant::now();
    let opened = Arc::new(opened);
    let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let cursor = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..WORKERS {
        let (storage, opened, counts, cursor) =
            (Arc::clone(storage), Arc::clone(&opened), Arc::clone(&counts), Arc::clone(&cursor));
        let checklist = settings.checklist.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = cursor.fetch_add(1, Ordering::Relaxed);
                let Some((id, opened_at)) = opened.get(i) else { return Ok::<_, anyhow::Error>(()) };
                work(&*storage, id, *opened_at, now.as_millis(), i as u64, &checklist, &counts).await?;
            }
        }));
    }
    for t in tasks {
        t.await.context("a seeding task panicked")??;
    }
    report.activities = counts[0].load(Ordering::Relaxed);
    report.status_updates = counts[1].load(Ordering::Relaxed);
    report.checklist_ticks = counts[2].load(Ordering::Relaxed);
    report.work_seconds = started.elapsed().as_secs_f64();

    // Deliveries: most delivered within seconds, some dead, a few still retrying.
    eprintln!("seed: delivering ...");
    let started = Instant::now();
    let mut loops = Vec::new();
    for n in 0..DELIVERERS {
        let storage = Arc::clone(storage);
        loops.push(tokio::spawn(async move { deliver(&*storage, now, n).await }));
    }
    for l in loops {
        report.deliveries += l.await.context("a delivering task panicked")??;
    }
    report.deliver_seconds = started.elapsed().as_secs_f64();
    report.database_bytes = database_bytes(config);
    Ok(team)
}

/// Times the KPIs and the first page of each list.
async fn measure(
    storage: &Arc<dyn Storage>,
    p: &PublisherId,
    team: &[UserId],
    now: Timestamp,
    report: &mut Report,
) -> anyhow::Result<()> {
    let first_of_team = team.first().context("the publisher has no team")?.clone();
    eprintln!("seed: measuring ...");
    let kpi = |group_by: Option<KpiGroup>, since: Option<Timestamp>| KpiQuery {
        since,
        group_by,
        now,
        ..KpiQuery::new(p.clone())
    };
    let kpis = |q: KpiQuery| {
        let storage = Arc::clone(storage);
        move || {
            let (storage, q) = (Arc::clone(&storage), q.clone());
            async move { storage.kpis(&q).await.map(|r| usize::try_from(r.overall.opportunities).unwrap_or(0)) }
        }
    };
    report.kpis = time(kpis(kpi(None, None))).await?;
    report.kpis_by_offer = time(kpis(kpi(Some(KpiGroup::Offer), None))).await?;
    report.kpis_last_30_days = time(kpis(kpi(None, Some(Timestamp::from_millis(now.as_millis() - 30 * DAY))))).await?;
    let list = |filter: OpportunityFilter| {
        let storage = Arc::clone(storage);
        move || {
            let (storage, filter) = (Arc::clone(&storage), filter.clone());
            async move {
                storage
                    .list_opportunities(&filter, &PageRequest { limit: 50, cursor: None })
                    .await
                    .map(|p| p.items.len())
            }
        }
    };
    let of_p = OpportunityFilter { publisher: Some(p.clone()), ..OpportunityFilter::default() };
    report.list_all = time(list(of_p.clone())).await?;
    report.list_status_qualified =
        time(list(OpportunityFilter { status: Some(OpportunityStatus::Qualified), ..of_p.clone() })).await?;
    report.list_owner =
        time(list(OpportunityFilter { owner: Some(OwnerFilter::User(first_of_team)), ..of_p.clone() })).await?;
    report.list_unassigned =
        time(list(OpportunityFilter { owner: Some(OwnerFilter::Unassigned), ..of_p.clone() })).await?;
    report.list_due_overdue =
        time(list(OpportunityFilter { due: Some(DueFilter::Before(now)), ..of_p.clone() })).await?;
    report.list_text =
        time(list(OpportunityFilter { text: Some(COMPANIES[0].to_lowercase()), ..of_p.clone() })).await?;

    Ok(())
}

/// One opportunity's follow-up, as a team might do it: 22 % never touched; the rest touched
/// (most within hours, some after the SLA), followed up a few times; some qualified with
/// their checklist ticked, then won or lost; some lost or disqualified without it.
async fn work(
    s: &dyn Storage,
    id: &OpportunityId,
    opened_at: i64,
    now: i64,
    seed: u64,
    checklist: &[String],
    counts: &[AtomicU64; 3],
) -> anyhow::Result<()> {
    let mut r = Rng(seed.wrapping_mul(0x9e37_79b9) ^ 0x7ea7);
    if r.chance(0.22) {
        return Ok(());
    }
    let by = "usr_seed".to_owned();
    let mut at = opened_at
        + match r.below(10) {
            0..5 => r.between(5 * 60_000, 4 * HOUR),
            5..8 => r.between(4 * HOUR, 24 * HOUR),
            _ => r.between(24 * HOUR, 96 * HOUR),
        };
    let touches = 1 + r.below(6);
    let mut o = None;
    for k in 0..touches {
        if at >= now {
            break;
        }
        let kind = *r.pick(&[ActivityKind::Call, ActivityKind::Call, ActivityKind::Email, ActivityKind::Meeting]);
        let next = at + r.between(DAY, 5 * DAY);
        let a = Activity {
            id: ActivityId::generate(Timestamp::from_millis(at)),
            kind,
            outcome: Some(
                (*r.pick(&["left a voicemail", "spoke briefly", "demo booked", "sent the price list"])).into(),
            ),
            note: (k == 0 && r.chance(0.2)).then(|| "Prefers e-mail in the morning.".to_owned()),
            next_touch_at: Some(Timestamp::from_millis(next)),
            by: by.clone(),
            at: Timestamp::from_millis(at),
        };
        o = Some(s.add_activity(id, &a).await.context("logging an activity")?);
        counts[0].fetch_add(1, Ordering::Relaxed);
        at = next;
    }
    let Some(mut o) = o else { return Ok(()) };
    let at = Timestamp::from_millis(at.min(now - 1));
    let fate = r.below(100);
    let set =
        |o: &leadrelay_core::sales::Opportunity, status: OpportunityStatus, reason: Option<&str>| OpportunityUpdate {
            id: o.id.clone(),
            expected_version: o.version,
            status: Some((status, reason.map(str::to_owned))),
            owner: None,
            next_touch_at: status.is_closed().then_some(None),
            now: at,
        };
    if fate < 35 {
        for item in checklist.iter().take(2 + usize::try_from(r.below(3)).unwrap_or(0)) {
            let tick = ChecklistTick { opportunity: id.clone(), item: item.clone(), done: true, by: by.clone(), at };
            o = s.tick_checklist(&tick).await.context("ticking the checklist")?;
            counts[2].fetch_add(1, Ordering::Relaxed);
        }
        o = s.update_opportunity(&set(&o, OpportunityStatus::Qualified, None)).await.context("qualifying")?;
        counts[1].fetch_add(1, Ordering::Relaxed);
        let close = match r.below(100) {
            0..45 => Some((OpportunityStatus::Won, None)),
            45..65 => Some((OpportunityStatus::Lost, Some("chose another vendor"))),
            _ => None,
        };
        if let Some((status, reason)) = close {
            s.update_opportunity(&set(&o, status, reason)).await.context("closing")?;
            counts[1].fetch_add(1, Ordering::Relaxed);
        }
    } else if fate < 45 {
        s.update_opportunity(&set(&o, OpportunityStatus::Lost, Some("no answer"))).await.context("losing")?;
        counts[1].fetch_add(1, Ordering::Relaxed);
    } else if fate < 50 {
        let u = set(&o, OpportunityStatus::Disqualified, Some("a student"));
        s.update_opportunity(&u).await.context("disqualifying")?;
        counts[1].fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Claims every due delivery and records an answer: 96 % delivered 0.2–3 s after the lead
/// arrived (a few after a minute), 3 % dead, 1 % waiting for a retry. Returns how many.
async fn deliver(s: &dyn Storage, now: Timestamp, seed: u64) -> anyhow::Result<u64> {
    let mut r = Rng(0xde11 ^ seed);
    let mut total = 0u64;
    loop {
        let request = ClaimRequest { now, limit: 2000, lease: Duration::from_secs(600), per_destination: 1000 };
        let claimed = s.claim_due_deliveries(&request).await.context("claiming deliveries")?;
        if claimed.is_empty() {
            return Ok(total);
        }
        total += claimed.len() as u64;
        let records: Vec<AttemptRecord> = claimed
            .iter()
            .map(|c| {
                let lag = if r.chance(0.02) { r.between(60_000, 600_000) } else { r.between(200, 3000) };
                let started = c.lead.received_at.plus(Duration::from_millis(u64::try_from(lag).unwrap_or(0)));
                let roll = r.below(100);
                let (status, next) = match roll {
                    0..96 => (200, NextState::Delivered),
                    96..99 => (400, NextState::Dead),
                    _ => (503, NextState::RetryAt { at: now.plus(Duration::from_secs(3600)), counts: true }),
                };
                AttemptRecord {
                    attempt: Attempt {
                        delivery_id: c.delivery.id.clone(),
                        number: 0,
                        started_at: started,
                        duration_ms: 40,
                        status_code: Some(status),
                        error_class: match status {
                            200 => None,
                            400 => Some(leadrelay_core::destination::ErrorClass::Permanent),
                            _ => Some(leadrelay_core::destination::ErrorClass::Transient),
                        },
                        message: (status != 200).then(|| format!("receiver answered {status}")),
                        excerpt: None,
                    },
                    lease_token: c.lease_token.clone(),
                    next,
                    destination: c.destination.id.clone(),
                    disable_destination: None,
                    throttle_destination_until: None,
                }
            })
            .collect();
        s.record_attempts(&records).await.context("recording attempts")?;
    }
}

/// The database file and its WAL, in bytes (0 when it cannot be read).
fn database_bytes(config: &Config) -> u64 {
    match config.storage_location() {
        leadrelay_server::config::StorageLocation::Sqlite(path) => {
            let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            size(&path) + size(&PathBuf::from(format!("{}-wal", path.display())))
        }
        leadrelay_server::config::StorageLocation::Postgres(_) => 0,
    }
}

fn print_report(r: &Report) {
    println!("seeded publisher {}: {} leads, {} opportunities", r.publisher, r.leads, r.opportunities);
    println!(
        "  {} activities, {} status changes, {} checklist ticks, {} deliveries; database {:.1} MB",
        r.activities,
        r.status_updates,
        r.checklist_ticks,
        r.deliveries,
        r.database_bytes as f64 / 1e6
    );
    println!(
        "  seeding: insert {:.1} s, follow-up {:.1} s, deliveries {:.1} s",
        r.insert_seconds, r.work_seconds, r.deliver_seconds
    );
    println!("{:<34} {:>10} {:>11} {:>8}", "query", "first ms", "median ms", "items");
    for (name, t) in [
        ("kpis (all time)", &r.kpis),
        ("kpis group_by=offer", &r.kpis_by_offer),
        ("kpis last 30 days", &r.kpis_last_30_days),
        ("opportunities, first page", &r.list_all),
        ("  status=qualified", &r.list_status_qualified),
        ("  owner=<first of the team>", &r.list_owner),
        ("  owner=unassigned", &r.list_unassigned),
        ("  due=overdue", &r.list_due_overdue),
        ("  q=<a company name>", &r.list_text),
    ] {
        println!("{name:<34} {:>10.1} {:>11.1} {:>8}", t.first_ms, t.median_ms, t.items);
    }
}
