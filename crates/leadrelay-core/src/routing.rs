//! Which destinations get a lead. Pure, so the rule is tested once and shared by every way in.

use crate::destination::DestinationRecord;
use crate::ids::DestinationId;
use crate::lead::Lead;

/// Destination kinds that store leads in a CRM or a table (as opposed to notifying someone).
/// Leads whose personal data was withheld never go to them: there is nothing to store.
pub const CRM_KINDS: &[&str] = &["https", "azure_table", "salesforce", "dynamics365", "marketo"];

/// Destination kinds that notify people rather than store leads; they also hear about dead
/// letters and disabled destinations.
pub const NOTIFICATION_KINDS: &[&str] = &["email"];

/// The destinations that must get `lead`, from the publisher's destinations.
///
/// A destination that lists offers gets only leads whose resolved offer is listed; one that
/// lists none applies to every offer, including leads whose offer could not be resolved.
/// Disabled destinations still get their outbox row: their queue waits until re-enabled.
/// A lead whose personal data was withheld goes only to notification destinations.
pub fn plan(lead: &Lead, destinations: &[DestinationRecord]) -> Vec<DestinationId> {
    destinations
        .iter()
        .filter(|d| d.publisher == lead.publisher)
        .filter(|d| !(lead.pii_withheld && CRM_KINDS.contains(&d.kind.as_str())))
        .filter(|d| match (&d.offers, &lead.offer) {
            (None, _) => true,
            (Some(list), Some(offer)) => list.contains(offer),
            (Some(_), None) => false,
        })
        .map(|d| d.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::ids::{LeadId, PublisherId};
    use crate::lead::{LeadDraft, LeadRules};
    use crate::offer::OfferId;

    fn dest(publisher: &str, offers: Option<&[&str]>) -> DestinationRecord {
        DestinationRecord {
            id: DestinationId::generate(Timestamp::from_millis(1)),
            publisher: PublisherId::parse(publisher).unwrap(),
            name: "d".into(),
            kind: "https".into(),
            settings: serde_json::json!({}),
            offers: offers.map(|o| o.iter().map(|s| OfferId::parse(s).unwrap()).collect()),
            enabled: true,
            disabled_reason: None,
            consecutive_failures: 0,
            failing_since: None,
            created_at: Timestamp::from_millis(1),
            updated_at: Timestamp::from_millis(1),
        }
    }

    fn lead(offer: Option<&str>) -> Lead {
        let draft = LeadDraft {
            publisher: Some(PublisherId::parse("contoso").unwrap()),
            offer: offer.map(|o| OfferId::parse(o).unwrap()),
            lead_source: Some("AzureMarketplace-INS".into()),
            ..LeadDraft::default()
        };
        Lead::from_draft(
            draft,
            LeadId::generate(Timestamp::from_millis(1)),
            Timestamp::from_millis(1),
            &LeadRules::default(),
        )
        .unwrap()
    }

    #[test]
    fn a_lead_goes_to_all_offer_destinations_and_to_those_listing_its_offer() {
        let all = dest("contoso", None);
        let crm = dest("contoso", Some(&["contoso.crm"]));
        let other = dest("contoso", Some(&["contoso.erp"]));
        let foreign = dest("fabrikam", None);
        let ds = [all.clone(), crm.clone(), other, foreign];
        assert_eq!(plan(&lead(Some("contoso.crm")), &ds), vec![all.id.clone(), crm.id]);
        assert_eq!(plan(&lead(None), &ds), vec![all.id]);
    }

    #[test]
    fn a_lead_without_personal_data_goes_only_to_notification_destinations() {
        let crm = dest("contoso", None);
        let mut email = dest("contoso", None);
        email.kind = "email".into();
        let mut withheld = lead(None);
        withheld.pii_withheld = true;
        assert_eq!(plan(&withheld, &[crm, email.clone()]), vec![email.id]);
    }
}
