//! A marketplace event body, read as `POST /v1/marketplace/events` reads it, up to the lead it
//! becomes for a registered offer: never a panic, whatever the bytes.
#![no_main]

use leadrelay_server::http::events::EventIn;
use leadrelay_server::http::extract::parse_json;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = parse_json::<EventIn>(data) else { return };
    let Ok(event) = body.into_event() else { return };
    let offer = leadrelay_fuzz::offer(&event.offer.to_string(), "Contoso CRM");
    let Ok(submission) = event.into_submission(&offer) else { return };
    let _ = leadrelay_fuzz::into_lead(submission);
});
