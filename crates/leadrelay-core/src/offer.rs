//! Offers: the `publisherid.offerid` identifier and the offer types of the marketplace.

use std::fmt;

use crate::ids::{PublisherId, is_id_part};

/// An offer id, `publisherid.offerid`: both parts non-empty, lowercase letters, digits, `-`, `_`.
/// Split on the first `.`; offer ids may contain hyphens and GUIDs
/// (`checkpoint.check-point-r77-10sg-byol`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OfferId {
    full: String,
    dot: usize,
}

impl OfferId {
    /// Checks the format.
    ///
    /// # Errors
    /// Returns the rule when `s` breaks it.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        const RULE: &str = "must be 'publisherid.offerid': two non-empty parts of lowercase letters, digits, '-' and '_' joined by '.'";
        let dot = s.find('.').ok_or(RULE)?;
        let (publisher, offer) = (&s[..dot], &s[dot + 1..]);
        if is_id_part(publisher)
            && !offer.is_empty()
            && offer.len() <= 128
            && offer.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            Ok(Self { full: s.to_owned(), dot })
        } else {
            Err(RULE)
        }
    }

    /// The publisher part.
    pub fn publisher_part(&self) -> &str {
        &self.full[..self.dot]
    }

    /// Whether the publisher part names `publisher`.
    pub fn belongs_to(&self, publisher: &PublisherId) -> bool {
        self.publisher_part() == publisher.as_str()
    }

    /// The whole id.
    pub fn as_str(&self) -> &str {
        &self.full
    }
}

impl fmt::Display for OfferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl fmt::Debug for OfferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

/// The offer types a publisher can list (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OfferType {
    /// Software as a service.
    Saas,
    /// Dynamics 365 Customer Engagement.
    Dynamics365CustomerEngagement,
    /// Dynamics 365 (Finance and) Operations.
    Dynamics365Operations,
    /// Dynamics 365 Business Central.
    Dynamics365BusinessCentral,
    /// A consulting service.
    ConsultingService,
    /// An Azure application.
    AzureApplication,
    /// A virtual machine image.
    VirtualMachine,
    /// A container image.
    Container,
    /// A managed service.
    ManagedService,
    /// A Power BI app.
    PowerBiApp,
    /// Anything else.
    Other,
}

impl OfferType {
    /// Every type, in the order the API documents them.
    pub const ALL: [OfferType; 11] = [
        Self::Saas,
        Self::Dynamics365CustomerEngagement,
        Self::Dynamics365Operations,
        Self::Dynamics365BusinessCentral,
        Self::ConsultingService,
        Self::AzureApplication,
        Self::VirtualMachine,
        Self::Container,
        Self::ManagedService,
        Self::PowerBiApp,
        Self::Other,
    ];

    /// The wire name (`saas`, `dynamics365-operations`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Saas => "saas",
            Self::Dynamics365CustomerEngagement => "dynamics365-customer-engagement",
            Self::Dynamics365Operations => "dynamics365-operations",
            Self::Dynamics365BusinessCentral => "dynamics365-business-central",
            Self::ConsultingService => "consulting-service",
            Self::AzureApplication => "azure-application",
            Self::VirtualMachine => "virtual-machine",
            Self::Container => "container",
            Self::ManagedService => "managed-service",
            Self::PowerBiApp => "power-bi-app",
            Self::Other => "other",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_offer_ids_parse() {
        for s in [
            "checkpoint.check-point-r77-10sg-byol",
            "bitnami.openedxcypress",
            "docusign.3701c77e-1cfa-4c56-91e6-3ed0b622145",
            "docusign.3701c77e-1cfa-4c56-91e6-3ed0b622145a",
        ] {
            let id = OfferId::parse(s).unwrap();
            assert_eq!(id.as_str(), s);
        }
        assert_eq!(OfferId::parse("checkpoint.check-point-r77-10sg-byol").unwrap().publisher_part(), "checkpoint");
    }

    #[test]
    fn malformed_offer_ids_are_refused() {
        for s in ["contoso", ".x", "contoso.", "Contoso.x", "contoso.X", "contoso.a.b", "con toso.x"] {
            assert!(OfferId::parse(s).is_err(), "{s} should be refused");
        }
    }

    #[test]
    fn offer_types_round_trip_through_their_wire_names() {
        for t in OfferType::ALL {
            assert_eq!(OfferType::parse(t.as_str()), Some(t));
        }
        assert_eq!(OfferType::parse("SaaS"), None);
    }
}
