//! Which destinations get a lead. Pure, so the rule is tested once and shared by every way in.

use crate::destination::{DestinationRecord, DestinationRole, Destinations};
use crate::ids::DestinationId;
use crate::lead::Lead;

/// The destinations that must get `lead`, from the publisher's destinations.
///
/// A destination that lists offers gets only leads whose resolved offer is listed; one that
/// lists none applies to every offer, including leads whose offer could not be resolved.
/// Disabled destinations still get their outbox row: their queue waits until re-enabled.
/// A lead whose personal data was withheld goes only to destinations whose kind declares
/// [`DestinationRole::NotifiesPeople`]; a kind the registry does not know gets none of them.
///
/// Every path that creates outbox rows (ingest, replay, split, publish) plans with this one
/// function.
pub fn plan(lead: &Lead, destinations: &[DestinationRecord], kinds: &Destinations) -> Vec<DestinationId> {
    destinations.iter().filter(|d| applies(lead, d, kinds)).map(|d| d.id.clone()).collect()
}

/// Whether one destination must get `lead` (the rule of [`plan`]).
pub fn applies(lead: &Lead, destination: &DestinationRecord, kinds: &Destinations) -> bool {
    let d = destination;
    if d.publisher != lead.publisher {
        return false;
    }
    if lead.pii_withheld && kinds.role(&d.kind) != Some(DestinationRole::NotifiesPeople) {
        return false;
    }
    takes_offer(d, lead.offer.as_ref())
}

/// Whether a destination takes leads of `offer` (`None`: a lead whose offer is not known): one
/// that lists no offers takes every lead, one that lists offers only theirs. Publishing an
/// offer tests exactly the destinations this names.
pub fn takes_offer(destination: &DestinationRecord, offer: Option<&crate::offer::OfferId>) -> bool {
    match (&destination.offers, offer) {
        (None, _) => true,
        (Some(list), Some(offer)) => list.contains(offer),
        (Some(_), None) => false,
    }
}

/// Whether a destination should hear about dead letters and disables: an enabled one whose
/// kind notifies people.
pub fn hears_notices(destination: &DestinationRecord, kinds: &Destinations) -> bool {
    destination.enabled && kinds.role(&destination.kind) == Some(DestinationRole::NotifiesPeople)
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

    struct Kind(&'static str, DestinationRole);

    impl crate::destination::Connector for Kind {
        fn kind(&self) -> &'static str {
            self.0
        }
        fn role(&self) -> DestinationRole {
            self.1
        }
        fn settings_form(&self) -> &'static [crate::destination::SettingField] {
            &[]
        }
        fn prepare(
            &self,
            _: serde_json::Value,
            _: crate::destination::NetworkPolicy,
        ) -> Result<crate::destination::PreparedSettings, Vec<crate::destination::FieldError>> {
            unreachable!("routing never prepares settings")
        }
        fn build(
            &self,
            _: &serde_json::Value,
        ) -> Result<std::sync::Arc<dyn crate::destination::Destination>, crate::destination::DestinationError> {
            unreachable!("routing never builds connectors")
        }
    }

    fn kinds() -> Destinations {
        Destinations::new()
            .with(std::sync::Arc::new(Kind("https", DestinationRole::StoresLeads)))
            .with(std::sync::Arc::new(Kind("email", DestinationRole::NotifiesPeople)))
    }

    #[test]
    fn a_lead_goes_to_all_offer_destinations_and_to_those_listing_its_offer() {
        let all = dest("contoso", None);
        let crm = dest("contoso", Some(&["contoso.crm"]));
        let other = dest("contoso", Some(&["contoso.erp"]));
        let foreign = dest("fabrikam", None);
        let ds = [all.clone(), crm.clone(), other, foreign];
        assert_eq!(plan(&lead(Some("contoso.crm")), &ds, &kinds()), vec![all.id.clone(), crm.id]);
        assert_eq!(plan(&lead(None), &ds, &kinds()), vec![all.id]);
    }

    #[test]
    fn a_lead_without_personal_data_goes_only_to_notification_destinations() {
        let crm = dest("contoso", None);
        let mut email = dest("contoso", None);
        email.kind = "email".into();
        let mut withheld = lead(None);
        withheld.pii_withheld = true;
        assert_eq!(plan(&withheld, &[crm, email.clone()], &kinds()), vec![email.id]);
    }

    #[test]
    fn a_lead_without_personal_data_goes_to_no_kind_the_registry_does_not_know() {
        let mut unknown = dest("contoso", None);
        unknown.kind = "carrier_pigeon".into();
        let mut withheld = lead(None);
        withheld.pii_withheld = true;
        assert!(plan(&withheld, std::slice::from_ref(&unknown), &kinds()).is_empty());
        assert_eq!(plan(&lead(None), std::slice::from_ref(&unknown), &kinds()), vec![unknown.id]);
    }

    proptest::proptest! {
        /// The rule, whatever the mix: only the lead's own publisher's destinations; a withheld
        /// lead only to kinds that notify people (never to an unknown kind); a destination listing
        /// offers only for leads of those offers; and `plan` is exactly the destinations `applies` names.
        #[test]
        fn routing_keeps_its_rule_for_any_mix_of_destinations(
            specs in proptest::collection::vec(
                (0usize..2, 0usize..3, proptest::option::of(proptest::collection::vec(0usize..3, 0..3))),
                0..12,
            ),
            lead_offer in proptest::option::of(0usize..3),
            withheld: bool,
        ) {
            let publishers = ["contoso", "fabrikam"];
            let kind_names = ["https", "email", "carrier_pigeon"];
            let offers = ["contoso.crm", "contoso.erp", "contoso.bi"];
            let ds: Vec<DestinationRecord> = specs
                .iter()
                .map(|(p, k, listed)| {
                    let listed: Option<Vec<&str>> = listed.as_ref().map(|l| l.iter().map(|i| offers[*i]).collect());
                    let mut d = dest(publishers[*p], listed.as_deref());
                    d.kind = kind_names[*k].into();
                    d
                })
                .collect();
            let mut l = lead(lead_offer.map(|i| offers[i]));
            l.pii_withheld = withheld;
            let planned = plan(&l, &ds, &kinds());
            let expected: Vec<DestinationId> = ds.iter().filter(|d| applies(&l, d, &kinds())).map(|d| d.id.clone()).collect();
            proptest::prop_assert_eq!(&planned, &expected);
            for d in ds.iter().filter(|d| planned.contains(&d.id)) {
                proptest::prop_assert_eq!(d.publisher.as_str(), "contoso");
                if withheld {
                    proptest::prop_assert_eq!(d.kind.as_str(), "email");
                }
                if let Some(list) = &d.offers {
                    proptest::prop_assert!(l.offer.as_ref().is_some_and(|o| list.contains(o)));
                }
            }
            for d in ds.iter().filter(|d| !planned.contains(&d.id)) {
                let foreign = d.publisher.as_str() != "contoso";
                let private = withheld && d.kind != "email";
                let other_offer = d.offers.as_ref().is_some_and(|list| l.offer.as_ref().is_none_or(|o| !list.contains(o)));
                proptest::prop_assert!(foreign || private || other_offer, "{:?} was left out for no reason", d);
            }
        }
    }
}
