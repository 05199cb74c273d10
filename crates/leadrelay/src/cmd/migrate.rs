//! `leadrelay migrate`

use leadrelay_server::config::Config;

/// Applies pending migrations of the configured backend.
///
/// # Errors
/// When the database cannot be opened or migrated (with what to do).
pub async fn run(config: &Config) -> anyhow::Result<()> {
    let (location, applied, version) = super::migrate_storage(config).await?;
    println!("{location}: {applied} migration(s) applied, schema version {version}");
    Ok(())
}
