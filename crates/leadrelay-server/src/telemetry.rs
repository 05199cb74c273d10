//! Logging setup, and the Prometheus metrics (`metrics`). Log lines and metric labels carry
//! ids, counts and durations, never personal data or secrets (see docs/LOGGING.md).

pub mod metrics;

use tracing_subscriber::EnvFilter;

use crate::config::TelemetryConfig;

/// Targets whose debug output names full URLs (a destination URL can carry a secret such as a
/// Power Automate `sig=`), held at `info` whatever the filter says.
const URL_LOGGING_TARGETS: &[&str] = &["reqwest=info", "hyper=info", "hyper_util=info", "h2=info"];

/// Installs the global subscriber: `RUST_LOG` if set, else the configured filter.
pub fn init(config: &TelemetryConfig) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.filter));
    for directive in URL_LOGGING_TARGETS {
        if let Ok(d) = directive.parse() {
            filter = filter.add_directive(d);
        }
    }
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if config.format == "json" { builder.json().try_init() } else { builder.compact().try_init() };
}

/// For tests: silent unless `RUST_LOG` is set.
pub fn init_for_tests() {
    if let Ok(filter) = EnvFilter::try_from_default_env() {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
}
