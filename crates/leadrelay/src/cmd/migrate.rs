//! `leadrelay migrate`

use leadrelay_store_sqlite::MIGRATIONS;

use leadrelay_server::config::Config;

/// Applies pending migrations.
pub fn run(config: &Config) -> anyhow::Result<()> {
    let path = super::sqlite_path(config)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut conn = rusqlite_open(&path)?;
    let applied =
        leadrelay_store_sqlite::migrate(&mut conn).map_err(|e| anyhow::anyhow!("migrating {}: {e}", path.display()))?;
    println!("{}: {applied} migration(s) applied, schema version {}", path.display(), MIGRATIONS.len());
    Ok(())
}

fn rusqlite_open(path: &std::path::Path) -> anyhow::Result<leadrelay_store_sqlite::Connection> {
    leadrelay_store_sqlite::Connection::open(path).map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))
}
