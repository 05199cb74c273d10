//! Subcommands. Each is thin: load config, open storage, call the server crate or `ops`.

pub mod bench;
pub mod keys;
pub mod leads;
pub mod migrate;
pub mod sales;
pub mod seed;
pub mod serve;
pub mod users;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use leadrelay_core::SystemClock;
use leadrelay_core::destination::Destinations;
use leadrelay_core::storage::{Storage, StorageError};
use leadrelay_destinations::NetworkOptions;
use leadrelay_server::config::{Config, StorageLocation};
use leadrelay_server::ops::{Ops, Policy};
use leadrelay_store_postgres::{OpenOptions as PostgresOptions, PostgresStore};
use leadrelay_store_sqlite::{OpenOptions as SqliteOptions, SqliteStore};
use tokio::sync::Notify;

/// Loads configuration, applying `--data-dir`.
pub fn load_config(file: Option<&Path>, data_dir: Option<&Path>) -> anyhow::Result<Config> {
    let mut config = Config::load(file).map_err(anyhow::Error::msg)?;
    if let Some(d) = data_dir {
        config.storage.data_dir = d.to_owned();
    }
    Ok(config)
}

/// Prints the effective configuration with secrets redacted.
pub fn print_config(config: &Config) -> anyhow::Result<()> {
    println!("{config:#?}");
    Ok(())
}

/// Creates `dir` (and missing parents) readable by this user only (0700, whatever the umask):
/// it holds every customer's data. An existing directory others can read is left as the
/// operator made it, with a warning.
///
/// # Errors
/// When it cannot be created.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if let Ok(meta) = std::fs::metadata(dir) {
            let mode = meta.permissions().mode();
            if meta.is_dir() && mode & 0o077 != 0 {
                tracing::warn!(
                    path = %dir.display(),
                    mode = format!("{:o}", mode & 0o777),
                    "the data directory can be read by other users; it holds personal data: chmod 700 it"
                );
            }
            return Ok(());
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating the data directory {}", dir.display()))
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir).with_context(|| format!("creating the data directory {}", dir.display()))
}

/// How a command opens storage, whatever the backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct Opening {
    /// Apply pending migrations first (otherwise an out-of-date schema is refused).
    pub migrate: bool,
    /// A serving process: on SQLite, it takes the file for itself (a second one is refused);
    /// on PostgreSQL, any number of nodes serve from one database.
    pub serving: bool,
}

/// Opens the configured storage backend: the one place that picks one.
///
/// # Errors
/// A message that says what is wrong and what to do.
pub async fn open_storage(config: &Config, opening: Opening) -> anyhow::Result<Arc<dyn Storage>> {
    let (keys, location) = match config.storage_location() {
        StorageLocation::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                private_dir(dir)?;
            }
            (keys::keyring(config)?, StorageLocation::Sqlite(path))
        }
        postgres => {
            private_dir(&config.storage.data_dir)?;
            (keys::keyring(config)?, postgres)
        }
    };
    let opened: Result<Arc<dyn Storage>, StorageError> = match &location {
        StorageLocation::Sqlite(path) => {
            let options = SqliteOptions {
                migrate: opening.migrate,
                exclusive: opening.serving,
                min_free_bytes: if opening.serving { config.storage.min_free_bytes } else { 0 },
            };
            SqliteStore::open(path, options, keys.ring).map(|s| Arc::new(s) as Arc<dyn Storage>)
        }
        StorageLocation::Postgres(url) => {
            let options = PostgresOptions {
                migrate: opening.migrate,
                max_connections: config.storage.max_connections,
                acquire_timeout: Duration::from_millis(config.storage.acquire_timeout_ms),
            };
            PostgresStore::open(url.expose(), options, keys.ring).await.map(|s| Arc::new(s) as Arc<dyn Storage>)
        }
    };
    if let Some(created) = &keys.created {
        if opened.is_ok() {
            keys::announce(created);
        } else {
            // The database needs another key (or none could be tried): the new file must not
            // stay to be mistaken for the real one.
            let _ = std::fs::remove_file(created);
        }
    }
    let place = match &location {
        StorageLocation::Sqlite(path) => path.display().to_string(),
        StorageLocation::Postgres(url) => url.to_string(),
    };
    match opened {
        Ok(store) => Ok(store),
        Err(StorageError::Conflict) if matches!(location, StorageLocation::Sqlite(_)) => bail!(
            "another leadrelay is already serving from {place}; stop it, or point storage.url (or --data-dir) at another database"
        ),
        Err(e) if keys.created.is_some() && describe(&e).contains("encryption key") => {
            let key_file = config.storage.data_dir.join(keys::KEY_FILE);
            match location {
                StorageLocation::Postgres(_) => bail!(
                    "opening {place}: {}; every node on one database needs the same key: set security.encryption_key \
                     (or copy {} from the first node)",
                    describe(&e),
                    key_file.display()
                ),
                StorageLocation::Sqlite(_) => bail!(
                    "opening {place}: {}; no key was configured and {} was missing: restore that file from your backup, or set security.encryption_key",
                    describe(&e),
                    key_file.display()
                ),
            }
        }
        Err(StorageError::Unavailable(e)) => {
            bail!("opening {place}: the database cannot be reached ({e}); check storage.url and that it is running")
        }
        Err(e) => bail!("opening {place}: {}", describe(&e)),
    }
}

/// Applies the configured backend's pending migrations; returns (applied, schema version) and
/// where.
///
/// # Errors
/// As [`open_storage`].
pub async fn migrate_storage(config: &Config) -> anyhow::Result<(String, usize, usize)> {
    match config.storage_location() {
        StorageLocation::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                private_dir(dir)?;
            }
            match SqliteStore::migrate_file(&path) {
                Ok((applied, version)) => Ok((path.display().to_string(), applied, version)),
                Err(StorageError::Conflict) => {
                    bail!(
                        "{} is in use by a running leadrelay serve; stop it first (serve migrates on start)",
                        path.display()
                    )
                }
                Err(e) => bail!("migrating {}: {}", path.display(), describe(&e)),
            }
        }
        StorageLocation::Postgres(url) => match PostgresStore::migrate_url(url.expose()).await {
            Ok((applied, version)) => Ok((url.to_string(), applied, version)),
            Err(e) => bail!("migrating {url}: {}", describe(&e)),
        },
    }
}

/// A storage error with its cause, for a person at a terminal.
fn describe(e: &StorageError) -> String {
    match e {
        StorageError::Other(cause) => cause.to_string(),
        other => other.to_string(),
    }
}

/// The connector registry, configured from `[delivery]`.
pub fn destinations(config: &Config) -> Destinations {
    let network = NetworkOptions {
        allow_private: config.delivery.allow_private_destinations,
        request_timeout: Duration::from_millis(config.delivery.request_timeout_ms),
        connect_timeout: Duration::from_millis(config.delivery.connect_timeout_ms),
        permanent_statuses: config.delivery.permanent_statuses.clone(),
        ..NetworkOptions::default()
    };
    leadrelay_destinations::registry(network, config.public_url())
}

/// The use cases over the configured storage, for commands that run without the server.
///
/// # Errors
/// As [`open_storage`]; a bad rule in the configuration.
pub async fn open_ops(config: &Config) -> anyhow::Result<Ops> {
    let storage = open_storage(config, Opening::default()).await?;
    let policy = Policy::from_config(config).map_err(anyhow::Error::msg)?;
    Ok(Ops::new(storage, destinations(config), Arc::new(SystemClock), policy, Arc::new(Notify::new())))
}
