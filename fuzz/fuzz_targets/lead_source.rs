//! `LeadSource` (`Source-Action|Offer`): reading never panics, and what is read writes back to
//! a string that reads the same (parse ∘ format is the identity on parsed values).
#![no_main]

use leadrelay_core::LeadSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    if let Ok(parsed) = LeadSource::parse(data) {
        let written = parsed.to_string();
        let again = LeadSource::parse(&written).expect("a formatted LeadSource reads back");
        assert_eq!(again, parsed, "round trip of {data:?} through {written:?}");
        assert_eq!(again.to_string(), written);
    }
});
