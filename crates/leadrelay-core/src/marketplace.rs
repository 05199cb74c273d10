//! Marketplace events (the operator side): a customer's action on a storefront, mapped to the
//! `LeadSource` source and action code the marketplace would have produced.

use crate::source::{ActionCode, Source};

/// Where the customer acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marketplace {
    /// azuremarketplace.microsoft.com
    AzureMarketplace,
    /// portal.azure.com
    AzurePortal,
    /// appsource.microsoft.com
    AppSource,
}

impl Marketplace {
    /// Every marketplace.
    pub const ALL: [Marketplace; 3] = [Self::AzureMarketplace, Self::AzurePortal, Self::AppSource];

    /// Parses the event's `marketplace` value.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// The event's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AzureMarketplace => "AzureMarketplace",
            Self::AzurePortal => "AzurePortal",
            Self::AppSource => "AppSource",
        }
    }

    /// The `LeadSource` source: AppSource leads say `AppSource (SPZA)`.
    pub fn source(self) -> Source {
        match self {
            Self::AzureMarketplace => Source::AzureMarketplace,
            Self::AzurePortal => Source::AzurePortal,
            Self::AppSource => Source::AppSource,
        }
    }
}

/// What the customer did on the storefront.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerAction {
    /// Contact me.
    ContactMe,
    /// Get it now.
    GetItNow,
    /// Create (Azure portal).
    Create,
    /// Subscribe (SaaS).
    Subscribe,
    /// Started a test drive.
    TestDrive,
    /// Started a free trial.
    FreeTrial,
    /// Asked a cross-listed partner to get in touch (do not contact).
    PartnerContact,
}

impl CustomerAction {
    /// Every action.
    pub const ALL: [CustomerAction; 7] = [
        Self::ContactMe,
        Self::GetItNow,
        Self::Create,
        Self::Subscribe,
        Self::TestDrive,
        Self::FreeTrial,
        Self::PartnerContact,
    ];

    /// Parses the event's `action` value.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The event's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ContactMe => "contact_me",
            Self::GetItNow => "get_it_now",
            Self::Create => "create",
            Self::Subscribe => "subscribe",
            Self::TestDrive => "test_drive",
            Self::FreeTrial => "free_trial",
            Self::PartnerContact => "partner_contact",
        }
    }

    /// The action code (SPEC §2): contact me `PLT`, get it now `INS`, create and subscribe
    /// `Create`, test drive `StartTestDrive`, free trial `FreeTrial` (our extension), partner
    /// contact `DNC`.
    pub fn action_code(self) -> ActionCode {
        match self {
            Self::ContactMe => ActionCode::Plt,
            Self::GetItNow => ActionCode::Ins,
            Self::Create | Self::Subscribe => ActionCode::Create,
            Self::TestDrive => ActionCode::StartTestDrive,
            Self::FreeTrial => ActionCode::FreeTrial,
            Self::PartnerContact => ActionCode::Dnc,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in Marketplace::ALL {
            assert_eq!(Marketplace::parse(m.as_str()), Some(m));
        }
        for a in CustomerAction::ALL {
            assert_eq!(CustomerAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(Marketplace::parse("appsource"), None);
    }

    #[test]
    fn appsource_leads_carry_the_spza_source() {
        assert_eq!(Marketplace::AppSource.source().as_str(), "AppSource (SPZA)");
        assert_eq!(CustomerAction::Subscribe.action_code(), ActionCode::Create);
    }
}
