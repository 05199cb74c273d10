//! The writer thread: group commit with one savepoint per batch, not per caller.
//!
//! Every waiting write joins the next transaction, which pays one fsync for all of them. Each
//! caller must still be able to fail alone, without undoing its neighbours. A savepoint per
//! caller gives that, but costs on every write: SQLite copies each page a savepoint touches for
//! the first time into its sub-journal, and the hot pages (index roots, the last leaf of each
//! table) are touched by every caller. So the batch runs optimistically inside **one**
//! savepoint; only when a write fails is that savepoint rolled back and the batch run again one
//! savepoint per caller, which is why a write is a `Fn` (it must be able to run twice) and
//! keeps its answer until the commit.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use leadrelay_core::storage::{Result, StorageError};
use leadrelay_core::vault::Vault;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::Db;

/// How many writes at most share one transaction.
pub(crate) const MAX_BATCH: usize = 1024;

/// One caller's write, queued for the writer.
pub(crate) trait Write: Send {
    /// Runs the write and keeps its result; true when it succeeded.
    fn run(&mut self, db: &Db<'_>) -> bool;
    /// Answers the caller once the transaction is over (`commit_error` when it did not commit).
    fn answer(self: Box<Self>, commit_error: Option<&str>);
}

/// A closure's write and the channel its caller waits on.
pub(crate) struct Pending<F, R> {
    pub(crate) f: F,
    pub(crate) result: Option<Result<R>>,
    pub(crate) tx: oneshot::Sender<Result<R>>,
}

impl<F, R> Write for Pending<F, R>
where
    F: Fn(&Db<'_>) -> Result<R> + Send,
    R: Send,
{
    fn run(&mut self, db: &Db<'_>) -> bool {
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| (self.f)(db)))
            .unwrap_or_else(|_| Err(StorageError::Other("a write panicked".into())));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, commit_error: Option<&str>) {
        let result = self.result.unwrap_or_else(|| Err(StorageError::Other("the write never ran".into())));
        let outcome = match commit_error {
            Some(e) if result.is_ok() => Err(crate::unavailable(format!("commit failed: {e}"))),
            _ => result,
        };
        let _ = self.tx.send(outcome);
    }
}

pub(crate) type Job = Box<dyn Write>;

/// Takes every waiting write into one transaction, commits, answers; until every sender is gone.
/// Each commit reports its size and its BEGIN..COMMIT time
/// ([`metric_names`](leadrelay_core::storage::metric_names)).
pub(crate) fn run(conn: Connection, vault: Arc<Vault>, mut rx: mpsc::Receiver<Job>) {
    use leadrelay_core::storage::metric_names::{COMMIT_BATCH_JOBS, COMMIT_SECONDS};
    let db = Db { conn: &conn, vault: &vault };
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = step(&conn, "BEGIN IMMEDIATE") {
            // Dropping the jobs drops their answer channels: each caller gets `Unavailable`.
            batch.clear();
            tracing::error!(error = %e, "sqlite writer could not begin a transaction");
            continue;
        }
        let (jobs, started) = (batch.len(), std::time::Instant::now());
        if batch.len() == 1 || !run_together(&conn, &db, &mut batch) {
            run_one_by_one(&conn, &db, &mut batch);
        }
        let commit_error = step(&conn, "COMMIT").err().map(|e| e.to_string());
        if commit_error.is_some() {
            let _ = conn.execute_batch("ROLLBACK");
        } else {
            // Looked up at each commit, not once: the store opens before the server installs
            // the recorder, and a handle taken earlier would record nowhere.
            metrics::histogram!(COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
            metrics::histogram!(COMMIT_BATCH_JOBS).record(jobs as f64);
        }
        for job in batch.drain(..) {
            job.answer(commit_error.as_deref());
        }
    }
}

/// Runs the whole batch in one savepoint; false (and nothing kept) as soon as one write fails.
fn run_together(conn: &Connection, db: &Db<'_>, batch: &mut [Job]) -> bool {
    if step(conn, "SAVEPOINT batch").is_err() {
        return false;
    }
    let all_ok = batch.iter_mut().all(|job| job.run(db));
    let end = if all_ok { step(conn, "RELEASE batch") } else { rollback_to(conn, "batch") };
    if let Err(e) = &end {
        tracing::error!(error = %e, "sqlite writer could not end the batch savepoint");
    }
    all_ok && end.is_ok()
}

/// Runs each write in its own savepoint, so a failing one rolls back alone.
fn run_one_by_one(conn: &Connection, db: &Db<'_>, batch: &mut [Job]) {
    for job in batch.iter_mut() {
        let savepoint = step(conn, "SAVEPOINT job");
        let ok = job.run(db);
        if savepoint.is_ok() {
            let end = if ok { step(conn, "RELEASE job") } else { rollback_to(conn, "job") };
            if let Err(e) = end {
                tracing::error!(error = %e, "sqlite writer could not end a savepoint");
            }
        }
    }
}

fn rollback_to(conn: &Connection, name: &str) -> rusqlite::Result<()> {
    step(conn, &format!("ROLLBACK TO {name}"))?;
    step(conn, &format!("RELEASE {name}"))
}

/// One transaction-control statement, prepared once per connection.
fn step(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// WAL pages after which the writer checkpoints itself: only when [`checkpoint_behind`] cannot
/// keep up (a checkpoint can only finish, and the WAL start over, between two writes).
pub(crate) const WRITER_CHECKPOINT_PAGES: u32 = 10_000;
/// How often the checkpointer copies the WAL back into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Copies committed WAL pages into the database file from a connection of its own, so the
/// writer does not stop every thousand pages to do it (SQLite's default), which held up every
/// caller of that commit. PASSIVE never blocks the writer. Ends when the store is dropped.
pub(crate) fn checkpoint_behind(conn: Connection, alive: mpsc::WeakSender<Job>) {
    while alive.upgrade().is_some() {
        std::thread::sleep(CHECKPOINT_EVERY);
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "sqlite checkpoint failed; the writer checkpoints instead");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use leadrelay_core::storage::StorageError;
    use leadrelay_core::vault::Keyring;
    use rusqlite::params;

    use crate::{OpenOptions, SqliteStore, map_err};

    fn store(dir: &tempfile::TempDir) -> SqliteStore {
        let options = OpenOptions { migrate: true, exclusive: false, min_free_bytes: 0 };
        SqliteStore::open(&dir.path().join("w.db"), options, Keyring::for_tests()).unwrap()
    }

    /// A write of one `instance_settings` row that then fails when `fail`, or panics when `panic`.
    async fn put(store: &SqliteStore, key: String, fail: bool, panic: bool) -> leadrelay_core::storage::Result<()> {
        store
            .write(move |c| {
                c.execute("INSERT INTO instance_settings (key, value) VALUES (?1, 'x')", params![key])
                    .map_err(map_err)?;
                assert!(!panic, "a write that panics after writing");
                if fail { Err(StorageError::Conflict) } else { Ok(()) }
            })
            .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_or_panicking_write_in_a_batch_rolls_back_alone_and_every_caller_gets_its_own_answer() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        // Hold the writer so that every write below waits and they all share the next batch.
        let blocker = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(|_| {
                        std::thread::sleep(Duration::from_millis(300));
                        Ok(())
                    })
                    .await
                    .unwrap();
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut calls = Vec::new();
        for i in 0..40 {
            let (fail, panic) = (i == 7 || i == 23, i == 31);
            let store = store.clone();
            calls.push(tokio::spawn(async move { (i, put(&store, format!("k{i}"), fail, panic).await) }));
        }
        blocker.await.unwrap();
        for call in calls {
            let (i, answer) = call.await.unwrap();
            match i {
                7 | 23 => assert!(matches!(answer, Err(StorageError::Conflict)), "{i}: {answer:?}"),
                31 => assert!(matches!(answer, Err(StorageError::Other(_))), "{i}: {answer:?}"),
                _ => assert!(answer.is_ok(), "{i}: {answer:?}"),
            }
        }
        let kept: Vec<String> = store
            .read(|c| {
                let mut s = c.prepare("SELECT key FROM instance_settings WHERE key LIKE 'k%' ORDER BY key").unwrap();
                Ok(s.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect())
            })
            .await
            .unwrap();
        let mut expected: Vec<String> = (0..40).filter(|i| ![7, 23, 31].contains(i)).map(|i| format!("k{i}")).collect();
        expected.sort();
        assert_eq!(kept, expected, "the failed and panicked writes left nothing, every other write is there once");
    }
}
