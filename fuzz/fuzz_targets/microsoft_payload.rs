//! The marketplace's lead JSON, read as `POST /v1/ingest/microsoft/{key}` reads it, up to the
//! lead it becomes: never a panic, whatever the bytes.
#![no_main]

use leadrelay_server::http::extract::parse_json_value;
use leadrelay_server::http::ingest::MicrosoftLeadIn;
use leadrelay_server::ops::{LeadOrigin, LeadSubmission};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = parse_json_value(data) else { return };
    let Ok(input) = MicrosoftLeadIn::from_json(&value) else { return };
    let submission = LeadSubmission::new(LeadOrigin::Marketplace, leadrelay_fuzz::publisher())
        .lead_source(input.lead_source.or_else(|| Some("Unknown".to_owned())))
        .offer_title(input.offer_title)
        .action_code(input.action_code)
        .customer(input.customer)
        .description(input.description);
    let _ = leadrelay_fuzz::into_lead(submission);
});
