//! Configuration: the embedded `config/default.toml`, then an optional TOML file, then
//! `LEADRELAY_*` environment variables (`__` separates sections). Unknown keys are errors, and
//! [`Config::validate`] reports every cross-field problem at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use leadrelay_core::StageTable;
use leadrelay_core::health::DisablePolicy;
use leadrelay_core::retry::RetryPolicy;
use serde::Deserialize;

/// The built-in defaults, with comments.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// HTTP server.
    pub server: ServerConfig,
    /// Storage.
    pub storage: StorageConfig,
    /// Delivery policy.
    pub delivery: DeliveryConfig,
    /// Workers.
    pub worker: WorkerConfig,
    /// Lead rules.
    pub leads: LeadsConfig,
    /// Offer rules.
    pub offers: OffersConfig,
    /// Logging.
    pub telemetry: TelemetryConfig,
    /// Encryption at rest.
    pub security: SecurityConfig,
    /// Retention of personal data.
    pub privacy: PrivacyConfig,
    /// The sales workspace: sessions of people.
    pub workspace: WorkspaceConfig,
}

/// `[workspace]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceConfig {
    /// How long a session lasts, in hours.
    pub session_hours: u32,
    /// Take the client's address for sign-in rate limiting from the last `X-Forwarded-For` entry.
    pub trust_forwarded_for: bool,
}

/// `[privacy]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// Leads older than this many days lose their personal data (0: kept until erased).
    pub retain_personal_data_days: u32,
    /// How often the retention task looks for such leads.
    pub retention_interval_ms: u64,
}

/// `[security]`
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// The key that seals personal data and secrets (base64 of 32 bytes); empty: the key in
    /// `<data_dir>/encryption.key`, generated on first start.
    pub encryption_key: String,
    /// Older keys still needed to open values sealed before a rotation.
    pub previous_encryption_keys: Vec<String>,
}

impl std::fmt::Debug for SecurityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityConfig")
            .field("encryption_key", &if self.encryption_key.is_empty() { "(key file)" } else { "<redacted>" })
            .field("previous_encryption_keys", &self.previous_encryption_keys.len())
            .finish()
    }
}

/// `[offers]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffersConfig {
    /// Offer types that need a destination to be published.
    pub destination_required_for: Vec<String>,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address.
    pub listen: String,
    /// Body size limit.
    pub max_body_bytes: usize,
    /// Base URL for links to leads.
    pub public_url: String,
    /// Request timeout.
    pub request_timeout_ms: u64,
    /// Open connections at most.
    pub max_connections: usize,
    /// Time to send a request head; also how long an idle keep-alive connection is kept.
    pub header_read_timeout_ms: u64,
    /// On shutdown, how long requests in progress may take.
    pub shutdown_grace_ms: u64,
}

/// `[storage]`
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Which database; empty = SQLite in the data dir.
    pub url: StorageUrl,
    /// Migrate when serving starts.
    pub migrate_on_start: bool,
    /// Not ready while the SQLite database's filesystem has less free space than this.
    pub min_free_bytes: u64,
    /// PostgreSQL: connections this process keeps at most.
    pub max_connections: usize,
    /// PostgreSQL: how long a use case waits for a connection.
    pub acquire_timeout_ms: u64,
}

impl std::fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageConfig")
            .field("data_dir", &self.data_dir)
            .field("url", &self.url)
            .field("migrate_on_start", &self.migrate_on_start)
            .field("min_free_bytes", &self.min_free_bytes)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout_ms", &self.acquire_timeout_ms)
            .finish()
    }
}

/// `storage.url`, parsed once when the configuration is read.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum StorageUrl {
    /// Empty: SQLite at `<data_dir>/leadrelay.db`.
    #[default]
    InDataDir,
    /// `sqlite:///path/to/file.db`.
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`.
    Postgres(PostgresUrl),
}

/// A PostgreSQL connection URL. Its `Debug` and `Display` hide the password.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl(String);

impl PostgresUrl {
    /// The URL with its password, for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl std::fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl std::fmt::Debug for StorageUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InDataDir => f.write_str("\"\" (SQLite in data_dir)"),
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(url) => write!(f, "{url}"),
        }
    }
}

impl StorageUrl {
    /// Parses the setting.
    ///
    /// # Errors
    /// What the value must look like.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(Self::InDataDir);
        }
        if let Some(path) = raw.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("sqlite:// needs a file path, e.g. sqlite:///var/lib/leadrelay/leads.db".to_owned());
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            url::Url::parse(raw).map_err(|e| format!("is not a valid PostgreSQL URL ({e})"))?;
            return Ok(Self::Postgres(PostgresUrl(raw.to_owned())));
        }
        Err("must be empty (SQLite in data_dir), sqlite:///path/to/file.db or postgres://user@host/db".to_owned())
    }
}

impl<'de> Deserialize<'de> for StorageUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Where the configured database is, with `storage.url` resolved against `data_dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageLocation {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(PostgresUrl),
}

/// A database URL with any password replaced, for printing.
pub fn redact_url(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else { return url.to_owned() };
    if u.password().is_some() {
        let _ = u.set_password(Some("REDACTED"));
    }
    // PostgreSQL also takes the password as a query parameter.
    if u.query_pairs().any(|(k, _)| k == "password") {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" { "REDACTED".to_owned() } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

/// `[delivery]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Disable the SSRF guard.
    pub allow_private_destinations: bool,
    /// Destinations one publisher may have.
    pub max_destinations_per_publisher: usize,
    /// Attempt timeout.
    pub request_timeout_ms: u64,
    /// Connect timeout.
    pub connect_timeout_ms: u64,
    /// Retry delays.
    pub retry_delays_ms: Vec<u64>,
    /// Jitter, percent.
    pub jitter_percent: u8,
    /// Retry-After cap.
    pub max_retry_after_ms: u64,
    /// Statuses that dead-letter at once.
    pub permanent_statuses: Vec<u16>,
    /// Auto-disable: failing for.
    pub disable_after_failing_ms: u64,
    /// Auto-disable: consecutive failures.
    pub disable_after_failures: u32,
}

/// `[worker]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Run workers here.
    pub enabled: bool,
    /// Deliveries in flight.
    pub concurrency: u32,
    /// Deliveries in flight to one destination, across every process.
    pub per_destination_concurrency: u32,
    /// Lease length.
    pub lease_ms: u64,
    /// Poll interval.
    pub poll_interval_ms: u64,
    /// Shutdown grace.
    pub shutdown_grace_ms: u64,
}

/// `[leads]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadsConfig {
    /// De-duplication window.
    pub duplicate_window_ms: u64,
    /// Privacy rule suffixes.
    pub withheld_email_suffixes: Vec<String>,
    /// Action code → stage.
    pub stages: BTreeMap<String, String>,
}

/// `[telemetry]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `compact` or `json`.
    pub format: String,
    /// EnvFilter directive.
    pub filter: String,
    /// How long `GET /metrics` reuses the outbox depths it read from storage (0: every scrape reads).
    pub metrics_cache_ms: u64,
}

/// Environment variables that start with `LEADRELAY_` but are not settings.
const NOT_SETTINGS: &[&str] = &["admin_token"];

impl Config {
    /// Loads defaults, then `file`, then the process environment, and validates.
    ///
    /// # Errors
    /// A message naming the key that is wrong and how to fix it.
    pub fn load(file: Option<&Path>) -> Result<Self, String> {
        Self::load_from(file, Env::prefixed("LEADRELAY_"))
    }

    /// The built-in defaults alone: what `serve` runs with when no file or variable overrides
    /// them.
    ///
    /// # Errors
    /// As [`Config::load`] (never, for the shipped defaults).
    pub fn built_in() -> Result<Self, String> {
        Self::for_tests("")
    }

    /// The defaults plus explicit overrides, ignoring the environment (for tests).
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn for_tests(overrides: &str) -> Result<Self, String> {
        let figment = Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(overrides));
        Self::extract(figment)
    }

    fn load_from(file: Option<&Path>, env: Env) -> Result<Self, String> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(path) = file {
            if !path.exists() {
                return Err(format!("config file {} does not exist", path.display()));
            }
            figment = figment.merge(Toml::file(path));
        }
        let env = env
            .filter(|k| {
                let k = k.as_str().to_ascii_lowercase();
                !NOT_SETTINGS.contains(&k.as_str()) && !k.starts_with("test_")
            })
            .split("__");
        Self::extract(figment.merge(env))
    }

    fn extract(figment: Figment) -> Result<Self, String> {
        let config: Config = figment.extract().map_err(|e| {
            let mut lines = Vec::new();
            for err in e {
                let key = err.path.join(".");
                let source = err.metadata.as_ref().map(|m| m.name.to_string()).unwrap_or_default();
                lines.push(format!(
                    "{}: {} (from {source})",
                    if key.is_empty() { "config".into() } else { key },
                    err.kind
                ));
            }
            format!("invalid configuration:\n  {}", lines.join("\n  "))
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Cross-field checks, all reported together.
    ///
    /// # Errors
    /// Every problem, one per line.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            problems.push(format!("server.listen ({:?}) must be an address like 127.0.0.1:8080", self.server.listen));
        }
        if !self.security.encryption_key.is_empty()
            && let Err(e) = leadrelay_core::vault::Keyring::from_base64(
                &self.security.encryption_key,
                self.security.previous_encryption_keys.iter().map(String::as_str),
            )
        {
            problems.push(format!("security.encryption_key (or previous_encryption_keys): {e}"));
        }
        if self.server.max_body_bytes < 1024 {
            problems.push("server.max_body_bytes must be at least 1024".to_owned());
        }
        if self.worker.lease_ms < self.delivery.request_timeout_ms + 10_000 {
            problems.push(format!(
                "worker.lease_ms ({}) must exceed delivery.request_timeout_ms ({}) by at least 10 s",
                self.worker.lease_ms, self.delivery.request_timeout_ms
            ));
        }
        if self.storage.max_connections == 0 {
            problems.push("storage.max_connections must be at least 1".to_owned());
        }
        if self.storage.acquire_timeout_ms == 0 {
            problems.push("storage.acquire_timeout_ms must be at least 1".to_owned());
        }
        if self.server.max_connections == 0 {
            problems.push("server.max_connections must be at least 1".to_owned());
        }
        if self.server.header_read_timeout_ms == 0 {
            problems.push("server.header_read_timeout_ms must be at least 1".to_owned());
        }
        if self.worker.concurrency == 0 {
            problems.push("worker.concurrency must be at least 1".to_owned());
        }
        if self.worker.per_destination_concurrency == 0 {
            problems.push("worker.per_destination_concurrency must be at least 1".to_owned());
        }
        if self.worker.poll_interval_ms == 0 {
            problems.push("worker.poll_interval_ms must be at least 1".to_owned());
        }
        if self.delivery.jitter_percent > 100 {
            problems.push("delivery.jitter_percent must be 0-100".to_owned());
        }
        if let Some(s) = self.delivery.permanent_statuses.iter().find(|s| !(400..600).contains(*s)) {
            problems.push(format!("delivery.permanent_statuses: {s} is not a 4xx or 5xx status"));
        }
        if let Err(e) = self.destination_required_for() {
            problems.push(e);
        }
        if let Err(e) = self.stage_table() {
            problems.push(format!("leads.stages: {e}"));
        }
        if !(1..=720).contains(&self.workspace.session_hours) {
            problems.push(format!("workspace.session_hours ({}) must be 1-720", self.workspace.session_hours));
        }
        if !matches!(self.telemetry.format.as_str(), "compact" | "json") {
            problems.push(format!("telemetry.format ({:?}) must be \"compact\" or \"json\"", self.telemetry.format));
        }
        if problems.is_empty() { Ok(()) } else { Err(format!("invalid configuration:\n  {}", problems.join("\n  "))) }
    }

    /// The stage table.
    ///
    /// # Errors
    /// The first bad entry.
    pub fn stage_table(&self) -> Result<StageTable, String> {
        StageTable::from_pairs(self.leads.stages.iter().map(|(a, s)| (a.clone(), s.clone())))
    }

    /// The lead rules (stage table and privacy rule).
    ///
    /// # Errors
    /// The first bad stage-table entry.
    pub fn lead_rules(&self) -> Result<leadrelay_core::LeadRules, String> {
        Ok(leadrelay_core::LeadRules {
            stages: self.stage_table()?,
            withheld_email_suffixes: self.leads.withheld_email_suffixes.clone(),
        })
    }

    /// The offer types that need a destination to be published.
    ///
    /// # Errors
    /// Names an unknown type.
    pub fn destination_required_for(&self) -> Result<Vec<leadrelay_core::OfferType>, String> {
        self.offers
            .destination_required_for
            .iter()
            .map(|t| {
                leadrelay_core::OfferType::parse(t)
                    .ok_or_else(|| format!("offers.destination_required_for: '{t}' is not an offer type"))
            })
            .collect()
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            delays: self.delivery.retry_delays_ms.iter().map(|ms| Duration::from_millis(*ms)).collect(),
            jitter: f64::from(self.delivery.jitter_percent) / 100.0,
            max_retry_after: Duration::from_millis(self.delivery.max_retry_after_ms),
        }
    }

    /// The auto-disable policy.
    pub fn disable_policy(&self) -> DisablePolicy {
        DisablePolicy {
            failing_for: Duration::from_millis(self.delivery.disable_after_failing_ms),
            min_consecutive_failures: self.delivery.disable_after_failures,
        }
    }

    /// The base URL links to leads start with.
    pub fn public_url(&self) -> String {
        if self.server.public_url.trim().is_empty() {
            format!("http://{}", self.server.listen)
        } else {
            self.server.public_url.trim().trim_end_matches('/').to_owned()
        }
    }

    /// The configured database: `storage.url`, or SQLite at `<data_dir>/leadrelay.db`.
    pub fn storage_location(&self) -> StorageLocation {
        match &self.storage.url {
            StorageUrl::InDataDir => StorageLocation::Sqlite(self.storage.data_dir.join("leadrelay.db")),
            StorageUrl::Sqlite(path) => StorageLocation::Sqlite(path.clone()),
            StorageUrl::Postgres(url) => StorageLocation::Postgres(url.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[expect(clippy::result_large_err, reason = "figment::Jail fixes the closure type")]
    fn env(vars: &[(&str, &str)]) -> Result<Config, String> {
        let mut out = None;
        figment::Jail::expect_with(|jail| {
            for (k, v) in vars {
                jail.set_env(k, v);
            }
            out = Some(Config::load(None));
            Ok(())
        });
        out.expect("the jail ran")
    }

    #[test]
    fn the_defaults_load_and_validate() {
        let c = Config::for_tests("").unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:8080");
        assert_eq!(c.retry_policy(), RetryPolicy::default());
        assert_eq!(c.disable_policy(), DisablePolicy::default());
        assert_eq!(c.stage_table().unwrap(), StageTable::default());
        assert_eq!(c.storage_location(), StorageLocation::Sqlite(PathBuf::from("./leadrelay-data/leadrelay.db")));
        assert_eq!(c.workspace.session_hours, 12);
        assert!(!c.workspace.trust_forwarded_for);
        let err = Config::for_tests("[workspace]\nsession_hours = 0").unwrap_err();
        assert!(err.contains("workspace.session_hours (0) must be 1-720"), "{err}");
    }

    #[test]
    fn environment_variables_override_nested_keys() {
        let c = env(&[
            ("LEADRELAY_SERVER__LISTEN", "127.0.0.1:9999"),
            ("LEADRELAY_DELIVERY__ALLOW_PRIVATE_DESTINATIONS", "true"),
            ("LEADRELAY_DELIVERY__RETRY_DELAYS_MS", "[10, 20]"),
            ("LEADRELAY_ADMIN_TOKEN", "not-a-setting"),
        ])
        .unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:9999");
        assert!(c.delivery.allow_private_destinations);
        assert_eq!(c.delivery.retry_delays_ms, [10, 20]);
    }

    #[test]
    fn an_unknown_or_mistyped_key_is_named() {
        let err = env(&[("LEADRELAY_SERVER__LISTN", "x")]).unwrap_err();
        assert!(err.contains("listn"), "{err}");
        let err = env(&[("LEADRELAY_WORKER__CONCURRENCY", "many")]).unwrap_err();
        assert!(err.contains("worker.concurrency"), "{err}");
    }

    #[test]
    fn cross_field_problems_are_reported_together() {
        let err =
            Config::for_tests("[worker]\nlease_ms = 1000\nconcurrency = 0\n[telemetry]\nformat = \"xml\"").unwrap_err();
        assert!(err.contains("worker.lease_ms (1000)"), "{err}");
        assert!(err.contains("worker.concurrency"), "{err}");
        assert!(err.contains("telemetry.format"), "{err}");
    }

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(redact_url("postgres://u:secret@h/db"), "postgres://u:REDACTED@h/db");
        let StorageUrl::Postgres(url) = StorageUrl::parse("postgres://u:secret@h/db").unwrap() else { panic!() };
        assert!(!format!("{url:?} {url}").contains("secret"));
        assert_eq!(url.expose(), "postgres://u:secret@h/db");
    }

    #[test]
    fn the_storage_url_is_parsed_once_into_a_backend_choice() {
        assert_eq!(StorageUrl::parse("").unwrap(), StorageUrl::InDataDir);
        assert_eq!(StorageUrl::parse("sqlite:///var/l.db").unwrap(), StorageUrl::Sqlite(PathBuf::from("/var/l.db")));
        assert!(matches!(StorageUrl::parse("postgresql://h/db").unwrap(), StorageUrl::Postgres(_)));
        let StorageUrl::Postgres(url) =
            StorageUrl::parse("postgres://u@h/db?password=hunter2&sslmode=require").unwrap()
        else {
            panic!()
        };
        assert!(!url.to_string().contains("hunter2") && url.to_string().contains("sslmode=require"), "{url}");
        assert!(StorageUrl::parse("mysql://h/db").unwrap_err().contains("postgres://"));
        assert!(StorageUrl::parse("sqlite://").is_err());
        let err = Config::for_tests("[storage]\nurl = \"redis://x\"").unwrap_err();
        assert!(err.contains("storage.url"), "{err}");
    }
}
