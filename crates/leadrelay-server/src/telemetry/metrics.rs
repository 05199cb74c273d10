//! Prometheus metrics: their names (a contract: dashboards and alerts use them), help texts and
//! buckets, and the process-wide recorder that `GET /metrics` renders. Code records through the
//! `metrics` facade and never sees the exporter; the store crate records its own two
//! ([`metric_names`](leadrelay_core::storage::metric_names)).
//!
//! Labels hold ids, kinds, statuses and classes only, never personal data, tokens, ingest keys,
//! URLs or error texts. `docs/OPERATIONS.md` lists every metric with its labels.

use std::sync::OnceLock;
use std::time::Duration;

use leadrelay_core::storage::metric_names::{COMMIT_BATCH_JOBS, COMMIT_SECONDS};
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

/// Counter `{route, method, status}`: requests answered.
pub const HTTP_REQUESTS: &str = "leadrelay_http_requests_total";
/// Histogram `{route, method}`: seconds to answer a request.
pub const HTTP_REQUEST_DURATION: &str = "leadrelay_http_request_duration_seconds";
/// Counter `{publisher, route}`: leads stored, duplicates included.
pub const LEADS_ACCEPTED: &str = "leadrelay_leads_accepted_total";
/// Counter `{publisher}`: stored leads that repeat an earlier one (no deliveries).
pub const LEADS_DUPLICATE: &str = "leadrelay_leads_duplicate_total";
/// Gauge `{publisher, destination}`: deliveries neither delivered nor dead.
pub const OUTBOX_DEPTH: &str = "leadrelay_outbox_depth";
/// Gauge `{state}`: destinations `enabled`, `disabled` or `paused` (throttled).
pub const DESTINATIONS: &str = "leadrelay_destinations";
/// Counter `{publisher, destination, kind, outcome, class}`: delivery attempts recorded.
pub const DELIVERY_ATTEMPTS: &str = "leadrelay_delivery_attempts_total";
/// Histogram `{kind}`: seconds of one send (a batching destination's batch is one send).
pub const DELIVERY_ATTEMPT_SECONDS: &str = "leadrelay_delivery_attempt_seconds";
/// Counter `{publisher, destination}`: deliveries given up.
pub const DEAD_LETTERS: &str = "leadrelay_dead_letters_total";
/// Counter `{publisher, destination}`: throttle pauses of a destination.
pub const DESTINATION_THROTTLES: &str = "leadrelay_destination_throttles_total";
/// Counter `{publisher, destination}`: destinations switched off by the worker.
pub const DESTINATIONS_DISABLED: &str = "leadrelay_destinations_disabled_total";
/// Counter: deliveries claimed again because an earlier claim's lease ran out.
pub const LEASE_EXPIRIES: &str = "leadrelay_lease_expiries_total";
/// Gauge: deliveries this process is attempting right now.
pub const WORKER_IN_FLIGHT: &str = "leadrelay_worker_in_flight";

/// Seconds buckets for requests, attempts and commits: 0.5 ms to 10 s.
const SECONDS_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Jobs per group commit: powers of two up to the writer's batch limit, 1024.
const JOBS_BUCKETS: [f64; 11] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];

/// How often recorded histogram samples are folded into their buckets between scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The handle of this process's recorder, installed by the first call.
///
/// A recorder can be installed once per process, but a process may build many `Application`s
/// (the tests build one per test), so every call after the first shares the one recorder.
/// Counters of one application then include the others' in the same process: tests compare
/// series labelled with their own ids, or deltas. If another recorder was installed first,
/// this one records nothing and `/metrics` stays empty (a warning says so).
pub fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(install).clone()
}

fn install() -> PrometheusHandle {
    let buckets = |b: PrometheusBuilder, name: &str, values: &[f64]| {
        b.set_buckets_for_metric(Matcher::Full(name.to_owned()), values).expect("the buckets are not empty")
    };
    let mut builder = PrometheusBuilder::new();
    for name in [HTTP_REQUEST_DURATION, DELIVERY_ATTEMPT_SECONDS, COMMIT_SECONDS] {
        builder = buckets(builder, name, &SECONDS_BUCKETS);
    }
    let recorder = buckets(builder, COMMIT_BATCH_JOBS, &JOBS_BUCKETS).build_recorder();
    let handle = recorder.handle();
    if let Err(e) = metrics::set_global_recorder(recorder) {
        tracing::warn!(error = %e, "another metrics recorder was installed first; GET /metrics stays empty");
    }
    describe();
    handle
}

/// Help texts and units, and a first value for the series without labels, so a dashboard finds
/// them before anything happened.
fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "Requests answered, by matched route template (unmatched: none), method and status"
    );
    describe_histogram!(HTTP_REQUEST_DURATION, Unit::Seconds, "Time to answer a request, by route template and method");
    describe_counter!(LEADS_ACCEPTED, "Leads stored (duplicates included), by publisher and way in");
    describe_counter!(LEADS_DUPLICATE, "Stored leads that repeat an earlier one of the customer, by publisher");
    describe_gauge!(OUTBOX_DEPTH, "Deliveries neither delivered nor dead (due, retrying, in flight, parked)");
    describe_gauge!(DESTINATIONS, "Destinations by state: enabled, disabled, paused (throttled)");
    describe_counter!(DELIVERY_ATTEMPTS, "Delivery attempts recorded, by destination, kind, outcome and error class");
    describe_histogram!(DELIVERY_ATTEMPT_SECONDS, Unit::Seconds, "Time of one send to a destination, by kind");
    describe_counter!(DEAD_LETTERS, "Deliveries given up (dead letters), by destination");
    describe_counter!(DESTINATION_THROTTLES, "Times a receiver paused its destination (429/503 with Retry-After)");
    describe_counter!(DESTINATIONS_DISABLED, "Destinations switched off by an attempt (410 Gone, failing for days)");
    describe_counter!(LEASE_EXPIRIES, "Deliveries claimed again because an earlier claim's lease ran out unrecorded");
    describe_gauge!(WORKER_IN_FLIGHT, "Deliveries this process is attempting now");
    describe_histogram!(COMMIT_BATCH_JOBS, "Callers' writes carried by one storage commit (group commit)");
    describe_histogram!(
        COMMIT_SECONDS,
        Unit::Seconds,
        "Time of one storage write transaction, begin to durable commit"
    );
    metrics::counter!(LEASE_EXPIRIES).increment(0);
    metrics::gauge!(WORKER_IN_FLIGHT).increment(0.0);
}

/// Folds recorded histogram samples into their buckets every few seconds until `shutdown`, so
/// a process that nobody scrapes keeps bounded memory (a scrape does the same).
pub async fn upkeep(handle: PrometheusHandle, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(UPKEEP_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => handle.run_upkeep(),
            () = shutdown.cancelled() => return,
        }
    }
}

/// A standard method's name, else `other`: a client cannot mint label values with made-up
/// methods.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method as M;
    match *method {
        M::GET => "GET",
        M::POST => "POST",
        M::PUT => "PUT",
        M::DELETE => "DELETE",
        M::PATCH => "PATCH",
        M::HEAD => "HEAD",
        M::OPTIONS => "OPTIONS",
        M::TRACE => "TRACE",
        M::CONNECT => "CONNECT",
        _ => "other",
    }
}
