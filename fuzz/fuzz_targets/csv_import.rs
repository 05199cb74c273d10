//! CSV import: any file is read without a panic, and the leads it yields survive the export's
//! round trip (exported, then imported again, they are the same leads).
#![no_main]

use leadrelay_core::Lead;
use leadrelay_server::ops::lead_csv::render;
use leadrelay_server::ops::read_leads_csv;
use libfuzzer_sys::fuzz_target;

fn import(file: &[u8]) -> Vec<Lead> {
    let Ok(read) = read_leads_csv(&leadrelay_fuzz::publisher(), file) else { return Vec::new() };
    read.rows.into_iter().filter_map(|(_, s)| leadrelay_fuzz::into_lead(s)).collect()
}

/// What a lead's import depends on (ids and times are new on every import).
fn facts(l: &Lead) -> impl PartialEq + std::fmt::Debug {
    let c = &l.customer;
    (
        [&c.first_name, &c.last_name, &c.email, &c.phone, &c.country, &c.company, &c.title].map(Clone::clone),
        l.lead_source_string(),
        l.offer.clone(),
        l.offer_title.clone(),
        l.action.clone(),
        l.stage.clone(),
        l.description.clone(),
        l.campaign.clone(),
        l.pii_withheld,
        l.is_test,
    )
}

fuzz_target!(|data: &[u8]| {
    let first = import(data);
    if first.is_empty() {
        return;
    }
    let again = import(&render(&first, true));
    assert_eq!(first.iter().map(facts).collect::<Vec<_>>(), again.iter().map(facts).collect::<Vec<_>>());
});
