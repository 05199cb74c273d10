//! Group commit of lead inserts: the leads of many concurrent requests go into one transaction,
//! so ingest pays one commit (one WAL flush) and one set of multi-row statements for a whole
//! group instead of for every request. Each caller is answered only after the transaction that
//! holds its leads committed, so a `202` still means stored.
//!
//! A few writer tasks share one queue. While one runs a transaction, the next gathers what
//! arrived meanwhile, so groups grow with the load and a lone request waits for nobody. When a
//! group's transaction fails for a reason of its own (not the database being away), each
//! caller's leads run again alone, so one caller's bad lead fails only that caller.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use leadrelay_core::storage::{Accepted, Result, StorageError};
use tokio::sync::{Mutex, mpsc, oneshot};

use leadrelay_core::stored::leads::ReadyLead;

use crate::leads;
use crate::{Mode, PostgresStore, in_transaction};

/// The most leads one transaction takes.
const MAX_GROUP_LEADS: usize = 512;
/// Requests that may wait for a writer before callers wait to enqueue.
const QUEUE_DEPTH: usize = 4096;

struct Job {
    leads: Vec<ReadyLead>,
    window: Duration,
    answer: oneshot::Sender<Result<Vec<Accepted>>>,
}

/// The queue of lead inserts; the writers stop when it is dropped.
pub(crate) struct GroupCommit {
    queue: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Starts `writers` writer tasks on `store` (a clone that holds no group commit itself, so
    /// dropping the last handle of the real store stops them).
    pub(crate) fn start(store: PostgresStore, writers: usize) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE_DEPTH);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..writers.max(1) {
            tokio::spawn(write_groups(store.clone(), Arc::clone(&rx)));
        }
        Self { queue }
    }

    /// Inserts `leads` in the next group and answers after its commit.
    pub(crate) async fn insert(&self, leads: Vec<ReadyLead>, window: Duration) -> Result<Vec<Accepted>> {
        let (answer, answered) = oneshot::channel();
        let stopped = || StorageError::Unavailable("the PostgreSQL writers have stopped".into());
        self.queue.send(Job { leads, window, answer }).await.map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

async fn write_groups(store: PostgresStore, rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let group = {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { return };
            let mut size = first.leads.len();
            let mut group = vec![first];
            while size < MAX_GROUP_LEADS {
                match rx.try_recv() {
                    Ok(job) => {
                        size += job.leads.len();
                        group.push(job);
                    }
                    Err(_) => break,
                }
            }
            group
        };
        // One duplicate window per transaction (it is one setting, so in practice one group).
        let mut rest = group;
        while !rest.is_empty() {
            let window = rest[0].window;
            let (same, other): (Vec<Job>, Vec<Job>) = rest.into_iter().partition(|j| j.window == window);
            // A panic answers this group's callers (their channels close: `Unavailable`) and
            // leaves the writer running for the next group.
            let _ = AssertUnwindSafe(commit_group(&store, same, window)).catch_unwind().await;
            rest = other;
        }
    }
}

async fn commit_group(store: &PostgresStore, group: Vec<Job>, window: Duration) {
    let jobs = group.len();
    let mut answers = Vec::with_capacity(jobs);
    let mut all: Vec<ReadyLead> = Vec::new();
    for job in group {
        answers.push((job.leads.len(), job.answer));
        all.extend(job.leads);
    }
    let started = std::time::Instant::now();
    let outcome = insert(store, &all, window).await;
    record(jobs, started);
    match outcome {
        Ok(accepted) => {
            let mut accepted = accepted.into_iter();
            for (n, answer) in answers {
                let _ = answer.send(Ok(accepted.by_ref().take(n).collect()));
            }
        }
        Err(e) if jobs == 1 || matches!(e, StorageError::Unavailable(_)) => {
            let message = e.to_string();
            let mut first = Some(e);
            for (_, answer) in answers {
                let _ = answer.send(Err(first.take().unwrap_or_else(|| StorageError::Unavailable(message.clone()))));
            }
        }
        Err(_) => {
            let mut rest = all.into_iter();
            for (n, answer) in answers {
                let mine: Vec<ReadyLead> = rest.by_ref().take(n).collect();
                let alone = insert(store, &mine, window).await;
                let _ = answer.send(alone);
            }
        }
    }
}

/// The leads in one transaction, run again after a serialization failure or a deadlock.
async fn insert(store: &PostgresStore, leads: &[ReadyLead], window: Duration) -> Result<Vec<Accepted>> {
    in_transaction!(store, Mode::Write, |db| leads::insert(db, leads, window))
}

/// The callers and time of a group's transaction, as SQLite's writer reports its commits.
fn record(jobs: usize, started: std::time::Instant) {
    use leadrelay_core::storage::metric_names::{COMMIT_BATCH_JOBS, COMMIT_SECONDS};
    metrics::histogram!(COMMIT_BATCH_JOBS).record(jobs as f64);
    metrics::histogram!(COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
}
