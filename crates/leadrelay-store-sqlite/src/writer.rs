//! The writer thread: group commit with one savepoint per batch rather than per caller, since
//! SQLite copies each page a savepoint first touches and every caller touches the same hot
//! pages; `run_batch` keeps each caller's failure its own.

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
    /// Replaces its result with `Unavailable`: the transaction it ran in is gone.
    fn refuse(&mut self, reason: &str);
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

    fn refuse(&mut self, reason: &str) {
        self.result = Some(Err(crate::unavailable(reason)));
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
        let commit_error = match run_batch(&conn, &db, &mut batch) {
            Ok(()) => step(&conn, "COMMIT").err().map(|e| e.to_string()),
            Err(Broken(reason)) => {
                // SQLite may have rolled the transaction back by itself (a full disk, an I/O
                // error): no write of this batch may then be reported as stored, and none runs
                // again outside a transaction, where each would commit on its own.
                tracing::error!(error = %reason, "sqlite writer abandoned a transaction");
                for job in &mut batch {
                    job.refuse(&format!("the transaction was rolled back: {reason}"));
                }
                Some(reason)
            }
        };
        if commit_error.is_some() {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
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

/// The open transaction can no longer be trusted; why.
struct Broken(String);

/// Runs every write of `batch` in the open transaction so that each one that succeeds is in it
/// and each one that fails left nothing. Optimistic: all in one savepoint; when write `k` fails,
/// all is rolled back, the writes before `k` are run again the same way (they succeeded on the
/// same state), `k` keeps its failure, and the rest carry on.
fn run_batch(conn: &Connection, db: &Db<'_>, batch: &mut [Job]) -> Result<(), Broken> {
    let mut rest = batch;
    while !rest.is_empty() {
        match run_together(conn, db, rest)? {
            None => return Ok(()),
            Some(k) => {
                run_batch(conn, db, &mut rest[..k])?;
                rest = &mut rest[k + 1..];
            }
        }
    }
    Ok(())
}

/// Runs `jobs` in one savepoint: `None` when all succeeded (and are kept), or the index of the
/// first that failed (and nothing of any of them is kept).
fn run_together(conn: &Connection, db: &Db<'_>, jobs: &mut [Job]) -> Result<Option<usize>, Broken> {
    let broken = |e: rusqlite::Error| Broken(e.to_string());
    step(conn, "SAVEPOINT batch").map_err(broken)?;
    let mut failed = None;
    for (i, job) in jobs.iter_mut().enumerate() {
        let ok = job.run(db);
        if conn.is_autocommit() {
            return Err(Broken("SQLite ended the transaction after a failed statement".into()));
        }
        if !ok {
            failed = Some(i);
            break;
        }
    }
    match failed {
        None => step(conn, "RELEASE batch").map_err(broken)?,
        Some(_) => rollback_to(conn, "batch").map_err(broken)?,
    }
    Ok(failed)
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
    loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        if alive.upgrade().is_none() {
            return;
        }
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "sqlite checkpoint failed; the writer checkpoints instead");
        }
    }
}

#[cfg(test)]
mod tests {

    use leadrelay_core::storage::StorageError;
    use leadrelay_core::vault::Keyring;
    use rusqlite::params;

    use crate::{OpenOptions, SqliteStore, map_err};

    fn store(dir: &tempfile::TempDir) -> SqliteStore {
        let options = OpenOptions { migrate: true, exclusive: false, min_free_bytes: 0 };
        SqliteStore::open(&dir.path().join("w.db"), options, Keyring::for_tests()).unwrap()
    }

    type Answer = tokio::sync::oneshot::Receiver<leadrelay_core::storage::Result<()>>;

    /// A write of one `instance_settings` row that then fails when `fail`, or panics when `panic`.
    fn put(key: String, fail: bool, panic: bool) -> (super::Job, Answer) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let f = move |c: &crate::Db<'_>| {
            c.execute("INSERT INTO instance_settings (key, value) VALUES (?1, 'x')", params![key]).map_err(map_err)?;
            assert!(!panic, "a write that panics after writing");
            if fail { Err(StorageError::Conflict) } else { Ok(()) }
        };
        (Box::new(super::Pending { f, result: None, tx }), rx)
    }

    /// A write that ends the transaction the way SQLite does after some failures (a full disk,
    /// an I/O error), then fails, or says it succeeded (as a write that ignored the error would).
    fn end_transaction(says_ok: bool) -> (super::Job, Answer) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let f = move |c: &crate::Db<'_>| {
            c.execute_batch("ROLLBACK").map_err(map_err)?;
            if says_ok { Ok(()) } else { Err(StorageError::Unavailable("disk full".into())) }
        };
        (Box::new(super::Pending { f, result: None, tx }), rx)
    }

    fn keys(path: &std::path::Path) -> Vec<String> {
        let conn = rusqlite::Connection::open(path).unwrap();
        let mut s = conn.prepare("SELECT key FROM instance_settings WHERE key LIKE 'k%' ORDER BY key").unwrap();
        s.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    }

    #[test]
    fn when_the_transaction_ends_under_a_batch_no_write_of_it_is_reported_stored_or_runs_outside_it() {
        for says_ok in [false, true] {
            transaction_ended_under_a_batch(says_ok);
        }
    }

    fn transaction_ended_under_a_batch(says_ok: bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        drop(store(&dir));
        let (queue, rx) = tokio::sync::mpsc::channel(8);
        let mut answers = Vec::new();
        for job in [put("k0".into(), false, false), end_transaction(says_ok), put("k2".into(), false, false)] {
            queue.try_send(job.0).ok().unwrap();
            answers.push(job.1);
        }
        drop(queue);
        let conn = rusqlite::Connection::open(&path).unwrap();
        super::run(conn, std::sync::Arc::new(leadrelay_core::vault::Vault::for_tests()), rx);
        for (i, answer) in answers.into_iter().enumerate() {
            let answer = answer.blocking_recv().unwrap();
            assert!(matches!(answer, Err(StorageError::Unavailable(_))), "says_ok={says_ok}, write {i}: {answer:?}");
        }
        assert_eq!(keys(&path), Vec::<String>::new(), "says_ok={says_ok}: nothing committed, k2 not run on its own");
    }

    #[test]
    fn a_failing_or_panicking_write_in_a_batch_rolls_back_alone_and_every_caller_gets_its_own_answer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        drop(store(&dir));
        let conn = rusqlite::Connection::open(&path).unwrap();
        // Every write is queued before the writer starts, so all 40 are one batch.
        let (queue, rx) = tokio::sync::mpsc::channel(64);
        let mut answers = Vec::new();
        for i in 0..40 {
            let (job, answer) = put(format!("k{i}"), i == 7 || i == 23 || i == 24, i == 31);
            queue.try_send(job).ok().unwrap();
            answers.push(answer);
        }
        drop(queue);
        super::run(conn, std::sync::Arc::new(leadrelay_core::vault::Vault::for_tests()), rx);
        for (i, answer) in answers.into_iter().enumerate() {
            let answer = answer.blocking_recv().unwrap();
            match i {
                7 | 23 | 24 => assert!(matches!(answer, Err(StorageError::Conflict)), "{i}: {answer:?}"),
                31 => assert!(matches!(answer, Err(StorageError::Other(_))), "{i}: {answer:?}"),
                _ => assert!(answer.is_ok(), "{i}: {answer:?}"),
            }
        }
        let kept = keys(&path);
        let mut expected: Vec<String> =
            (0..40).filter(|i| ![7, 23, 24, 31].contains(i)).map(|i| format!("k{i}")).collect();
        expected.sort();
        assert_eq!(kept, expected, "the failed and panicked writes left nothing, every other write is there once");
    }
}
