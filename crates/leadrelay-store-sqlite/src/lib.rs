//! SQLite storage: one writer thread that commits many callers' writes in one transaction
//! (group commit), and a small pool of reader connections. WAL with `synchronous=FULL`, so an
//! acknowledged write survives a crash or power loss.
//!
//! Why a writer thread rather than a connection pool: SQLite allows one writer at a time, so a
//! pool of writers only queues on the file lock. One thread that drains every waiting write into
//! a single transaction pays one fsync for the whole batch; each caller is answered only after
//! that commit. One caller's failure rolls back only its own writes (`writer.rs` says how
//! without a savepoint per caller). WAL checkpoints run on a thread of their own.

mod access;
mod audit;
mod catalog;
mod deliveries;
mod erasure;
mod leads;
mod people;
mod report;
mod rows;
mod sales;
mod sealing;
mod writer;

use rusqlite::Connection;

pub use report::{DatabaseReport, database_report};

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leadrelay_core::storage::{Result, StorageError};
use leadrelay_core::vault::{Keyring, Vault};
use rusqlite::OpenFlags;
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Migrations in order; the number is the schema version.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_initial", include_str!("../migrations/0001_initial.sql")),
    ("0002_customers", include_str!("../migrations/0002_customers.sql")),
    ("0003_offer_publication", include_str!("../migrations/0003_offer_publication.sql")),
    ("0004_api_tokens", include_str!("../migrations/0004_api_tokens.sql")),
    ("0005_fair_claims_and_instance", include_str!("../migrations/0005_fair_claims_and_instance.sql")),
    ("0006_sealed_personal_data", include_str!("../migrations/0006_sealed_personal_data.sql")),
    ("0007_audit", include_str!("../migrations/0007_audit.sql")),
    ("0008_erasure", include_str!("../migrations/0008_erasure.sql")),
    ("0009_people", include_str!("../migrations/0009_people.sql")),
    ("0010_sales", include_str!("../migrations/0010_sales.sql")),
    (
        "0011_leads_by_received_covers_the_daily_counts",
        include_str!("../migrations/0011_leads_by_received_covers_the_daily_counts.sql"),
    ),
];

/// How many writes may wait for the writer before callers wait to enqueue.
const QUEUE_DEPTH: usize = 8192;
/// Reader connections.
const READERS: usize = 4;

/// A connection with the vault its values are sealed with: what every query function gets.
/// It derefs to the connection, so SQL is written as usual.
pub(crate) struct Db<'a> {
    conn: &'a Connection,
    /// Seals and opens personal data and secrets; hashes match keys and search terms.
    pub(crate) vault: &'a Vault,
}

impl std::ops::Deref for Db<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// The SQLite backend.
#[derive(Clone)]
pub struct SqliteStore {
    writer: mpsc::Sender<writer::Job>,
    readers: Arc<ReaderPool>,
    path: PathBuf,
    vault: Arc<Vault>,
    min_free_bytes: u64,
    /// Held while a serving process uses the file (see [`OpenOptions::exclusive`]).
    _lock: Option<Arc<std::fs::File>>,
}

struct ReaderPool {
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(e.to_string())
}

/// Maps a driver error: constraint violations become `Conflict` / `NotFound`, busy and I/O
/// errors `Unavailable`, the rest `Other`.
pub(crate) fn map_err(e: rusqlite::Error) -> StorageError {
    use rusqlite::ErrorCode;
    match &e {
        rusqlite::Error::QueryReturnedNoRows => StorageError::NotFound,
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ErrorCode::ConstraintViolation if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
                StorageError::NotFound
            }
            ErrorCode::ConstraintViolation => StorageError::Conflict,
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::SystemIoFailure | ErrorCode::DiskFull => {
                unavailable(e)
            }
            _ => StorageError::Other(Box::new(e)),
        },
        _ => StorageError::Other(Box::new(e)),
    }
}

/// Runs a (cached) query and converts every row: `row` reads the columns inside rusqlite,
/// `convert` turns them into domain values outside it, so conversion errors map cleanly.
pub(crate) fn query_rows<P, R, T>(
    c: &Connection,
    sql: &str,
    params: P,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<R>,
    mut convert: impl FnMut(R) -> Result<T>,
) -> Result<Vec<T>>
where
    P: rusqlite::Params,
{
    let mut stmt = c.prepare_cached(sql).map_err(map_err)?;
    let rows = stmt.query_map(params, row).map_err(map_err)?;
    rows.map(|r| r.map_err(map_err).and_then(&mut convert)).collect()
}

/// `temp_store` stays SQLite's default (files). In memory, a statement journal is a list of
/// 1 KiB chunks that SQLite truncates by walking it from its start, and the writer's batch runs
/// in one savepoint whose journal holds every page the batch touched: each journalled
/// statement then paid for the whole batch before it (leads went in 3.5 times slower in a
/// 30,000-lead seed). As a file, a statement journal past 64 KiB spills to an unlinked
/// temporary file, which holds page images of sealed values, like the database.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    plan_once(conn)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -16000;",
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Plans each statement once, whatever its parameters. Otherwise SQLite re-plans a cached
/// statement every time a parameter compared with a partial index's condition changes value (the
/// claim's `now`, say), which cost the writer a full parse on most outbox statements. Every
/// query names its partial index conditions with literals, so the plans stay the same.
fn plan_once(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map(drop)
}

/// The schema version recorded in the database (0 for a new file).
fn schema_version(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT;",
    )?;
    conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get::<_, i64>(0))
        .map(|v| usize::try_from(v).unwrap_or(0))
}

/// Applies pending migrations; refuses a database newer than this build.
///
/// # Errors
/// `Other` when the schema is newer than this binary or a migration fails.
fn migrate(conn: &mut Connection) -> Result<usize> {
    let current = schema_version(conn).map_err(map_err)?;
    if current > MIGRATIONS.len() {
        return Err(StorageError::Other(
            format!(
                "the database schema is version {current} but this leadrelay knows only up to {}; run a newer leadrelay",
                MIGRATIONS.len()
            )
            .into(),
        ));
    }
    let tx = conn.transaction().map_err(map_err)?;
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(current) {
        tx.execute_batch(sql).map_err(map_err)?;
        let now = leadrelay_core::Clock::now(&leadrelay_core::SystemClock).as_millis();
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![i64::try_from(i + 1).unwrap_or(i64::MAX), name, now],
        )
        .map_err(map_err)?;
    }
    tx.commit().map_err(map_err)?;
    Ok(MIGRATIONS.len() - current)
}

/// How to open the store.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenOptions {
    /// Apply pending migrations (otherwise refuse an out-of-date schema).
    pub migrate: bool,
    /// Take the database file for this process alone (a serving process): a second process
    /// asking for it is refused with [`StorageError::Conflict`] while this store lives.
    /// Leases are never released at start: a dead process's leases expire by themselves.
    pub exclusive: bool,
    /// [`Storage::ping`] fails while the database's filesystem has less free space than this
    /// (0: no check), so a serving process is taken out of rotation before writes start
    /// failing with a full disk, not after.
    pub min_free_bytes: u64,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path` and starts the writer thread.
    ///
    /// # Errors
    /// `Unavailable` if the file cannot be opened; `Other` if the schema is out of date and
    /// `migrate` is off, or newer than this build.
    pub fn open(path: &Path, options: OpenOptions, keys: Keyring) -> Result<Self> {
        refuse_empty(path)?;
        create_private(path)?;
        let lock = if options.exclusive { Some(Arc::new(lock_exclusively(path)?)) } else { None };
        let mut conn = Connection::open(path).map_err(|e| damaged(path, e))?;
        configure(&conn).map_err(|e| damaged(path, e))?;
        check_integrity(&conn, path)?;
        if options.migrate {
            migrate(&mut conn)?;
        } else {
            let v = schema_version(&conn).map_err(map_err)?;
            if v != MIGRATIONS.len() {
                return Err(StorageError::Other(
                    format!(
                        "the database schema is version {v}, this leadrelay expects {}; run `leadrelay migrate`",
                        MIGRATIONS.len()
                    )
                    .into(),
                ));
            }
        }
        let vault = Arc::new(sealing::unlock(&mut conn, keys)?);
        let writer_vault = Arc::clone(&vault);
        let mut idle = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r =
                Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                    .map_err(map_err)?;
            r.busy_timeout(Duration::from_secs(10)).map_err(map_err)?;
            plan_once(&r).map_err(map_err)?;
            r.set_prepared_statement_cache_capacity(64);
            idle.push(r);
        }
        conn.pragma_update(None, "wal_autocheckpoint", writer::WRITER_CHECKPOINT_PAGES).map_err(map_err)?;
        let checkpointer = Connection::open(path).map_err(map_err)?;
        configure(&checkpointer).map_err(map_err)?;
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer::run(conn, writer_vault, rx))
            .map_err(unavailable)?;
        let alive = tx.downgrade();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || writer::checkpoint_behind(checkpointer, alive))
            .map_err(unavailable)?;
        Ok(Self {
            writer: tx,
            readers: Arc::new(ReaderPool { idle: Mutex::new(idle), permits: Semaphore::new(READERS) }),
            path: path.to_owned(),
            vault,
            min_free_bytes: options.min_free_bytes,
            _lock: lock,
        })
    }

    /// Applies pending migrations to the file at `path` (creating it if missing) and returns
    /// how many ran and the schema version now. Refused while a serving process holds the file.
    ///
    /// # Errors
    /// `Conflict` while another process serves from it; `Other` when the schema is newer than
    /// this build or a migration fails.
    pub fn migrate_file(path: &Path) -> Result<(usize, usize)> {
        refuse_empty(path)?;
        create_private(path)?;
        let _lock = lock_exclusively(path)?;
        let mut conn = Connection::open(path).map_err(|e| damaged(path, e))?;
        configure(&conn).map_err(|e| damaged(path, e))?;
        check_integrity(&conn, path)?;
        let applied = migrate(&mut conn)?;
        Ok((applied, MIGRATIONS.len()))
    }

    /// Runs `f` inside the next group-commit transaction and answers after the commit. `f` may
    /// run twice (see `writer`): what it did the first time is rolled back before.
    pub(crate) async fn write<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: Fn(&Db<'_>) -> Result<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: writer::Job = Box::new(writer::Pending { f, result: None, tx });
        self.writer.send(job).await.map_err(|_| unavailable("the SQLite writer has stopped"))?;
        rx.await.map_err(|_| unavailable("the SQLite writer has stopped"))?
    }

    /// Runs `f` on a reader connection (a consistent snapshot of committed data).
    pub(crate) async fn read<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Db<'_>) -> Result<R> + Send + 'static,
    {
        let _permit = self.readers.permits.acquire().await.map_err(unavailable)?;
        let pool = Arc::clone(&self.readers);
        let vault = Arc::clone(&self.vault);
        tokio::task::spawn_blocking(move || {
            let conn = pool.idle.lock().map_err(|_| unavailable("reader pool poisoned"))?.pop();
            let conn = conn.ok_or_else(|| unavailable("no idle reader"))?;
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(&Db { conn: &conn, vault: &vault })));
            if let Ok(mut idle) = pool.idle.lock() {
                idle.push(conn);
            }
            result.unwrap_or_else(|_| Err(StorageError::Other("a read panicked".into())))
        })
        .await
        .map_err(unavailable)?
    }
}

/// Refuses an existing file of 0 bytes: SQLite would take it for a new database and start empty,
/// and every ingest key would then be unknown, so leads would be refused. An empty file is not
/// what a leadrelay database ever looks like once created.
fn refuse_empty(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() && meta.len() == 0 => Err(StorageError::Other(
            format!(
                "{} is empty (0 bytes), not a leadrelay database; restore it from a backup, or move it away to start with a new, empty database",
                path.display()
            )
            .into(),
        )),
        _ => Ok(()),
    }
}

/// What opening a file that is not a healthy database means for the operator.
fn damaged(path: &Path, e: rusqlite::Error) -> StorageError {
    use rusqlite::ErrorCode;
    let what = match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => "is not a SQLite database",
        Some(ErrorCode::DatabaseCorrupt) => "is damaged (SQLite reports it malformed)",
        _ => return map_err(e),
    };
    StorageError::Other(
        format!("{} {what}; stop every leadrelay using it and restore it from a backup", path.display()).into(),
    )
}

/// `PRAGMA quick_check` at start: a file truncated or overwritten in part opens fine and fails
/// later on every request, so it is refused before serving, with what to do.
fn check_integrity(conn: &Connection, path: &Path) -> Result<()> {
    let mut stmt = conn.prepare("PRAGMA quick_check(5)").map_err(|e| damaged(path, e))?;
    let problems: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| damaged(path, e))?;
    if problems.len() == 1 && problems[0] == "ok" {
        return Ok(());
    }
    Err(StorageError::Other(
        format!(
            "{} is damaged (integrity check: {}); stop every leadrelay using it and restore it from a backup",
            path.display(),
            problems.first().map_or("no answer", String::as_str)
        )
        .into(),
    ))
}

/// Creates the database file, if missing, readable and writable by this user only (0600,
/// whatever the umask). SQLite gives its `-wal` and `-shm` files the database file's mode, so
/// they are private too. An existing file is never touched.
fn create_private(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(unavailable(format!("creating {}: {e}", path.display()))),
    }
}

impl SqliteStore {
    /// Fails when the filesystem holding the database has less than `min_free_bytes` free for
    /// unprivileged writers (what SQLite gets).
    fn check_free_space(&self) -> Result<()> {
        if self.min_free_bytes == 0 {
            return Ok(());
        }
        let stats = rustix::fs::statvfs(&self.path)
            .map_err(|e| unavailable(format!("reading the free space of {}: {e}", self.path.display())))?;
        let free = stats.f_bavail.saturating_mul(stats.f_frsize);
        if free < self.min_free_bytes {
            return Err(unavailable(format!(
                "only {free} bytes free on the filesystem of {} (storage.min_free_bytes is {}); free some space",
                self.path.display(),
                self.min_free_bytes
            )));
        }
        Ok(())
    }
}

/// Takes an advisory lock on the database file itself (`flock`, which is independent of the
/// POSIX locks SQLite uses), so two processes configured with one file, even from two data
/// directories, cannot both serve from it: the second would deliver the first's leads again.
fn lock_exclusively(path: &Path) -> Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| unavailable(format!("opening {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StorageError::Conflict),
        Err(std::fs::TryLockError::Error(e)) => Err(unavailable(format!("locking {}: {e}", path.display()))),
    }
}

#[async_trait::async_trait]
impl leadrelay_core::storage::Storage for SqliteStore {
    async fn reseal_stale(&self, limit: u32) -> Result<u64> {
        self.write(move |c| sealing::reseal_stale(c, limit)).await
    }

    async fn sealed_values_by_key(&self) -> Result<Vec<(String, u64)>> {
        self.read(|c| sealing::values_by_key(c)).await
    }

    /// A read, then a small durable write through the writer: a database that can be read but
    /// not written (disk full, read-only file system) is not ready to take leads.
    async fn ping(&self) -> Result<()> {
        self.check_free_space()?;
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(map_err)).await?;
        let now = leadrelay_core::Clock::now(&leadrelay_core::SystemClock).as_millis().to_string();
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO instance_settings (key, value) VALUES ('readiness_probe', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut s| s.execute([&now]))
            .map(drop)
            .map_err(map_err)
        })
        .await
    }
}

/// `EXPLAIN QUERY PLAN` of `sql` on the migrated schema, one detail line per step, for the
/// tests that pin a query to its index. Without statistics (and with the planner fixed by
/// `plan_once`), SQLite plans an empty database as it plans a full one.
#[cfg(test)]
pub(crate) fn query_plan(sql: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    plan_once(&conn).unwrap();
    for (_, migration) in MIGRATIONS {
        conn.execute_batch(migration).unwrap();
    }
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let params = vec![0_i64; stmt.parameter_count()];
    stmt.query_map(rusqlite::params_from_iter(params), |r| r.get::<_, String>(3)).unwrap().map(|r| r.unwrap()).collect()
}
