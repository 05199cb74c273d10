//! Subcommands. Each is thin: load config, open storage, call the server crate or `ops`.

pub mod leads;
pub mod migrate;
pub mod serve;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use leadrelay_server::config::Config;
use leadrelay_store_sqlite::{OpenOptions, SqliteStore};

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

/// The SQLite file, or a clear refusal for backends this build does not have yet.
pub fn sqlite_path(config: &Config) -> anyhow::Result<PathBuf> {
    match config.sqlite_path() {
        Some(p) => Ok(p),
        None => bail!(
            "storage.url {} is not supported by this build yet: PostgreSQL support is planned; leave storage.url empty to use SQLite",
            leadrelay_server::config::redact_url(&config.storage.url)
        ),
    }
}

/// Opens the SQLite store.
pub fn open_sqlite(config: &Config, options: OpenOptions) -> anyhow::Result<Arc<SqliteStore>> {
    let path = sqlite_path(config)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating the data directory {}", dir.display()))?;
    }
    let store = SqliteStore::open(&path, options).map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?;
    Ok(Arc::new(store))
}
