//! What the fuzz targets share: a publisher with registered offers, the lead rules, and the one
//! step every way in ends with (a submission becoming a lead, with no storage).

use leadrelay_core::storage::Offer;
use leadrelay_core::{Lead, LeadId, LeadRules, OfferId, OfferType, PublisherId, Timestamp};
use leadrelay_server::ops::LeadSubmission;

/// The publisher every target's leads belong to.
pub fn publisher() -> PublisherId {
    PublisherId::parse("contoso").expect("a valid id")
}

/// An offer of [`publisher`], registered.
pub fn offer(id: &str, title: &str) -> Offer {
    let now = Timestamp::from_millis(1_700_000_000_000);
    let id = OfferId::parse(id).expect("a valid offer id");
    Offer {
        publisher: PublisherId::parse(id.publisher_part()).expect("a valid publisher part"),
        id,
        title: title.to_owned(),
        offer_type: OfferType::Saas,
        created_at: now,
        updated_at: now,
        published_at: Some(now),
        last_validation: None,
    }
}

/// The registered offers offer resolution may find.
pub fn offers() -> Vec<Offer> {
    vec![offer("contoso.crm", "Contoso CRM"), offer("contoso.hr", "Contoso HR")]
}

/// The submission as a lead, as ingest would store it. A refusal is a fine outcome for hostile
/// input; a panic is not.
pub fn into_lead(submission: LeadSubmission) -> Option<Lead> {
    let now = Timestamp::from_millis(1_700_000_000_000);
    submission.into_lead(&offers(), LeadId::generate(now), now, &LeadRules::default()).ok()
}
