//! PostgreSQL storage: several `leadrelay serve` processes (nodes) on one database.
//!
//! Every use case is one transaction on a pooled connection ([`in_transaction!`]). Where
//! SQLite's single writer made a rule hold by itself, this backend takes the lock that makes it
//! hold across processes: row locks on the customer a lead joins, `FOR UPDATE SKIP LOCKED` for
//! claims, and leases that expire by themselves when a node dies. A transaction that loses a
//! serialization race or a deadlock runs again from the start, a few times, before its caller
//! hears of it. Work made due by one node wakes the others through `LISTEN/NOTIFY`
//! (`wakeups.rs`); each node's worker still polls, so a lost notification only delays.
//!
//! Values are stored in the same form as on SQLite (`leadrelay_core::stored`): ids as text, times
//! as milliseconds, personal data sealed by the vault. Every text column is `COLLATE "C"`, so
//! ids, cursors and titles sort byte-wise whatever the database's locale, as on SQLite.

mod access;
mod audit;
mod catalog;
mod deliveries;
mod erasure;
mod group_commit;
mod leads;
mod people;
mod rows;
mod sales;
mod sealing;
mod wakeups;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use leadrelay_core::storage::{Result, StorageError};
use leadrelay_core::vault::{Keyring, Vault};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

/// Migrations in order; the number is the schema version. The same names as SQLite's.
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

/// How many times a transaction that lost a serialization race or a deadlock runs again.
const MAX_RETRIES: u32 = 8;

/// The advisory lock that makes nodes starting together migrate one at a time: this constant and
/// a hash of the schema, so installations in other schemas of the database do not wait.
pub(crate) const MIGRATION_LOCK: i32 = 0x6c65_6164; // "lead"

/// How to open the store.
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    /// Apply pending migrations (otherwise refuse an out-of-date schema).
    pub migrate: bool,
    /// Connections this process keeps at most (one more is held for `LISTEN`).
    pub max_connections: usize,
    /// How long a use case waits for a free connection, or for a new one to open, before it
    /// fails with `Unavailable` (the API then answers 503 with `Retry-After`).
    pub acquire_timeout: Duration,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self { migrate: false, max_connections: 16, acquire_timeout: Duration::from_secs(5) }
    }
}

/// The PostgreSQL backend.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    vault: Arc<Vault>,
    wakeups: Arc<wakeups::Wakeups>,
    /// Where lead inserts go to share a transaction; `None` in the writers' own handle.
    group_commit: Option<Arc<group_commit::GroupCommit>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("pool", &self.pool.status()).finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(e.to_string())
}

/// Maps a driver error: unique violations become `Conflict`, foreign-key violations `NotFound`,
/// a lost connection or a server going away `Unavailable`. A serialization failure or a
/// deadlock stays the driver's error inside `Other`, so [`in_transaction!`] can tell it apart
/// and run the transaction again.
pub(crate) fn map_err(e: tokio_postgres::Error) -> StorageError {
    let Some(code) = e.code() else {
        // No SQLSTATE: the connection is closed or broken, the server could not be reached, or
        // (a bug of ours, not the database's) a value did not fit its parameter.
        use std::error::Error as _;
        let lost = e.is_closed() || e.source().is_some_and(|s| s.is::<std::io::Error>());
        return if lost { unavailable(e) } else { StorageError::Other(Box::new(e)) };
    };
    if *code == SqlState::UNIQUE_VIOLATION {
        StorageError::Conflict
    } else if *code == SqlState::FOREIGN_KEY_VIOLATION {
        StorageError::NotFound
    } else if code.code().starts_with("08")
        || code.code().starts_with("57P")
        || code.code().starts_with("53")
        || *code == SqlState::READ_ONLY_SQL_TRANSACTION
    {
        // Connection exceptions, the server shutting down or starting, out of resources, a
        // standby that cannot write.
        unavailable(e)
    } else {
        StorageError::Other(Box::new(e))
    }
}

/// True for an error that a fresh run of the same transaction may not meet again.
pub(crate) fn is_retryable(e: &StorageError) -> bool {
    let StorageError::Other(inner) = e else { return false };
    inner
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(tokio_postgres::Error::code)
        .is_some_and(|c| *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED)
}

/// What a transaction does: reads see one snapshot of committed data (`REPEATABLE READ, READ
/// ONLY`); writes run `READ COMMITTED` and take the locks their rules need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Read,
    Write,
}

/// A transaction with the vault its values are sealed with: what every query function gets. It
/// derefs to the transaction, and its helpers prepare each statement once per connection.
pub(crate) struct Db<'a> {
    tx: &'a deadpool_postgres::Transaction<'a>,
    /// Seals and opens personal data and secrets; hashes match keys and search terms.
    pub(crate) vault: &'a Vault,
    /// The `NOTIFY` channel of this database's nodes ([`Db::work_is_due`]).
    channel: &'a str,
}

impl<'a> std::ops::Deref for Db<'a> {
    type Target = deadpool_postgres::Transaction<'a>;

    fn deref(&self) -> &Self::Target {
        self.tx
    }
}

impl Db<'_> {
    async fn statement(&self, sql: &str) -> Result<tokio_postgres::Statement> {
        self.tx.prepare_cached(sql).await.map_err(map_err)
    }

    /// Runs a statement; returns the number of rows it changed.
    pub(crate) async fn exec(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let stmt = self.statement(sql).await?;
        self.tx.execute(&stmt, params).await.map_err(map_err)
    }

    /// Every row of a query.
    pub(crate) async fn rows(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<tokio_postgres::Row>> {
        let stmt = self.statement(sql).await?;
        self.tx.query(&stmt, params).await.map_err(map_err)
    }

    /// The one row of a query, or `NotFound`.
    pub(crate) async fn one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<tokio_postgres::Row> {
        self.optional(sql, params).await?.ok_or(StorageError::NotFound)
    }

    /// The row of a query, if any (an error if there are several).
    pub(crate) async fn optional(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<tokio_postgres::Row>> {
        let stmt = self.statement(sql).await?;
        self.tx.query_opt(&stmt, params).await.map_err(map_err)
    }

    /// Tells every node (this one included) that deliveries may have become due: sent when the
    /// transaction commits, once however often it is called in it.
    pub(crate) async fn work_is_due(&self) -> Result<()> {
        self.exec("SELECT pg_notify($1, '')", &[&self.channel]).await.map(drop)
    }
}

/// Runs `$body` (an expression using `$db: &Db`, awaited here) in one transaction of `$mode`
/// on a pooled connection, commits, and answers. A serialization failure or a deadlock runs it
/// again from the start (at most [`MAX_RETRIES`] times), so `$body` must do nothing outside the
/// transaction that it cannot repeat.
macro_rules! in_transaction {
    ($store:expr, $mode:expr, |$db:ident| $body:expr) => {{
        let store: &$crate::PostgresStore = &$store;
        let mut tries = 0_u32;
        loop {
            let mut conn = store.connection().await?;
            let tx = $crate::begin(&mut conn, $mode).await?;
            let outcome = {
                let db = $crate::Db { tx: &tx, vault: &store.vault, channel: store.wakeups.channel() };
                let $db = &db;
                $body.await
            };
            let outcome = match outcome {
                Ok(value) => tx.commit().await.map(|()| value).map_err($crate::map_err),
                Err(e) => Err(e),
            };
            match outcome {
                Err(e) if $crate::is_retryable(&e) && tries < $crate::MAX_RETRIES => {
                    tries += 1;
                    $crate::back_off(tries).await;
                }
                other => break other,
            }
        }
    }};
}
pub(crate) use in_transaction;

/// Starts a transaction of `mode`.
pub(crate) async fn begin(
    conn: &mut deadpool_postgres::Object,
    mode: Mode,
) -> Result<deadpool_postgres::Transaction<'_>> {
    let builder = conn.build_transaction();
    let builder = match mode {
        Mode::Read => builder.isolation_level(tokio_postgres::IsolationLevel::RepeatableRead).read_only(true),
        Mode::Write => builder.isolation_level(tokio_postgres::IsolationLevel::ReadCommitted),
    };
    builder.start().await.map_err(map_err)
}

/// A short, growing, jittered pause before a transaction runs again, so the racers it lost to
/// are not met again in lockstep.
pub(crate) async fn back_off(tries: u32) {
    let jitter = u64::from(std::process::id() ^ tries.wrapping_mul(2_654_435_761)) % 5;
    tokio::time::sleep(Duration::from_millis(u64::from(tries) * 2 + jitter)).await;
}

impl PostgresStore {
    /// Connects to the database at `url` (a `postgres://` URL; add `sslmode=require` for TLS),
    /// migrates it when asked, unlocks the vault and starts listening for other nodes' work.
    ///
    /// # Errors
    /// `Unavailable` if the database cannot be reached; `Other` if the schema is out of date and
    /// `migrate` is off, newer than this build, or the keys are not the database's.
    pub async fn open(url: &str, options: OpenOptions, keys: Keyring) -> Result<Self> {
        let config = parse_url(url)?;
        let pool = pool(&config, options)?;
        {
            let mut conn = pool.get().await.map_err(pool_error)?;
            if options.migrate {
                migrate(&mut conn).await?;
            } else {
                // Read only: a role that may not create tables can serve a migrated database.
                let exists = conn
                    .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
                    .await
                    .map_err(map_err)?
                    .get::<_, bool>(0);
                let v = if exists {
                    let row = conn
                        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])
                        .await
                        .map_err(map_err)?;
                    usize::try_from(row.get::<_, i32>(0)).unwrap_or(0)
                } else {
                    0
                };
                if v > MIGRATIONS.len() {
                    return Err(newer_than_this_build(v));
                }
                if v != MIGRATIONS.len() {
                    return Err(out_of_date(v));
                }
            }
        }
        let wakeups = Arc::new(wakeups::Wakeups::start(config.clone(), pool.clone()).await?);
        let vault = {
            let mut conn = pool.get().await.map_err(pool_error)?;
            Arc::new(sealing::unlock(&mut conn, keys).await?)
        };
        let mut store = Self { pool, vault, wakeups, group_commit: None };
        // A quarter of the pool writes lead groups; the rest serves reads, claims and changes.
        let writers = (options.max_connections / 4).max(1);
        store.group_commit = Some(Arc::new(group_commit::GroupCommit::start(store.clone(), writers)));
        Ok(store)
    }

    /// Applies pending migrations to the database at `url` and returns how many ran and the
    /// schema version now. Nodes running meanwhile are safe: migrations take a lock of their own.
    ///
    /// # Errors
    /// `Unavailable` if the database cannot be reached; `Other` when the schema is newer than this
    /// build or a migration fails.
    pub async fn migrate_url(url: &str) -> Result<(usize, usize)> {
        let config = parse_url(url)?;
        let pool = pool(&config, OpenOptions { max_connections: 1, ..OpenOptions::default() })?;
        let mut conn = pool.get().await.map_err(pool_error)?;
        let applied = migrate(&mut conn).await?;
        Ok((applied, MIGRATIONS.len()))
    }

    /// A connection from the pool.
    pub(crate) async fn connection(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_error)
    }
}

/// The URL's settings, with the application name set so `pg_stat_activity` shows our sessions.
fn parse_url(url: &str) -> Result<tokio_postgres::Config> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| {
        StorageError::Other(
            format!("storage.url is not a PostgreSQL URL ({e}); write postgres://user:password@host:port/database")
                .into(),
        )
    })?;
    if !url.contains("sslmode=") {
        // The driver would try TLS first and fail on a server with a self-signed certificate
        // rather than fall back; TLS is asked for in the URL, and then insisted on.
        config.ssl_mode(tokio_postgres::config::SslMode::Disable);
    }
    if config.get_application_name().is_none() {
        config.application_name("leadrelay");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    // A database host that vanishes without closing its connections (a lost machine, a cut
    // network) must fail requests within seconds, not after TCP's own quarter of an hour.
    config
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(10))
        .keepalives_interval(Duration::from_secs(5))
        .keepalives_retries(3)
        .tcp_user_timeout(Duration::from_secs(20));
    Ok(config)
}

/// TLS when the URL asks for it (`sslmode=require`; without `sslmode`, none), the server's
/// certificate checked against the Mozilla root certificates.
pub(crate) fn tls() -> tokio_postgres_rustls::MakeRustlsConnect {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .unwrap_or_else(|_| unreachable!("ring supports the default protocol versions"));
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

fn pool(config: &tokio_postgres::Config, options: OpenOptions) -> Result<Pool> {
    let manager =
        Manager::from_config(config.clone(), tls(), ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager)
        .max_size(options.max_connections.max(1))
        .wait_timeout(Some(options.acquire_timeout))
        .create_timeout(Some(options.acquire_timeout))
        .recycle_timeout(Some(options.acquire_timeout))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| StorageError::Other(Box::new(e)))
}

/// A connection that could not be had: the database is down, unreachable, or every connection
/// is busy for longer than the acquire timeout.
fn pool_error(e: deadpool_postgres::PoolError) -> StorageError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => match map_err(e) {
            StorageError::Other(e) => unavailable(format!("connecting to PostgreSQL: {e}")),
            other => other,
        },
        other => unavailable(format!("no PostgreSQL connection: {other}")),
    }
}

fn newer_than_this_build(v: usize) -> StorageError {
    StorageError::Other(
        format!(
            "the database schema is version {v} but this leadrelay knows only up to {}; run a newer leadrelay",
            MIGRATIONS.len()
        )
        .into(),
    )
}

fn out_of_date(v: usize) -> StorageError {
    StorageError::Other(
        format!(
            "the database schema is version {v}, this leadrelay expects {}; run `leadrelay migrate`",
            MIGRATIONS.len()
        )
        .into(),
    )
}

/// The schema version recorded in the database (0 for a new one).
async fn schema_version(conn: &deadpool_postgres::Transaction<'_>) -> Result<usize> {
    conn.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await
    .map_err(map_err)?;
    let row = conn.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).await.map_err(map_err)?;
    Ok(usize::try_from(row.get::<_, i32>(0)).unwrap_or(0))
}

/// Applies pending migrations in one transaction, under a lock, so nodes starting together
/// migrate once; refuses a database newer than this build.
async fn migrate(conn: &mut deadpool_postgres::Object) -> Result<usize> {
    let tx = conn.transaction().await.map_err(map_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))", &[&MIGRATION_LOCK])
        .await
        .map_err(map_err)?;
    let current = schema_version(&tx).await?;
    if current > MIGRATIONS.len() {
        return Err(newer_than_this_build(current));
    }
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(current) {
        tx.batch_execute(sql).await.map_err(map_err)?;
        let now = leadrelay_core::Clock::now(&leadrelay_core::SystemClock).as_millis();
        let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[&version, name, &now],
        )
        .await
        .map_err(map_err)?;
    }
    tx.commit().await.map_err(map_err)?;
    Ok(MIGRATIONS.len() - current)
}

#[async_trait::async_trait]
impl leadrelay_core::storage::Storage for PostgresStore {
    async fn reseal_stale(&self, limit: u32) -> Result<u64> {
        in_transaction!(self, Mode::Write, |db| sealing::reseal_stale(db, limit))
    }

    async fn sealed_values_by_key(&self) -> Result<Vec<(String, u64)>> {
        in_transaction!(self, Mode::Read, |db| sealing::values_by_key(db))
    }

    /// A small durable write: a database that can be read but not written (a standby after a
    /// failover, a full disk) is not ready to take leads.
    async fn ping(&self) -> Result<()> {
        let now = leadrelay_core::Clock::now(&leadrelay_core::SystemClock).as_millis().to_string();
        in_transaction!(self, Mode::Write, |db| db.exec(
            "INSERT INTO instance_settings (key, value) VALUES ('readiness_probe', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&now],
        ))
        .map(drop)
    }

    fn watch_for_work(&self, wake: Arc<dyn Fn() + Send + Sync>) {
        self.wakeups.subscribe(wake);
    }
}
