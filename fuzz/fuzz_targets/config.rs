//! The configuration loader: any TOML text either loads (and then every derived setting can be
//! read) or is refused with a message; never a panic. The storage URL parser and the URL
//! redaction see the same text.
#![no_main]

use leadrelay_server::config::{Config, StorageUrl, redact_url};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    let _ = StorageUrl::parse(data);
    let redacted = redact_url(data);
    assert!(!redacted.contains('\n') || data.contains('\n'));
    if let Ok(config) = Config::for_tests(data) {
        let _ = config.stage_table();
        let _ = config.lead_rules();
        let _ = config.destination_required_for();
        let _ = config.retry_policy();
        let _ = config.disable_policy();
        let _ = config.public_url();
        let _ = config.storage_location();
    }
});
