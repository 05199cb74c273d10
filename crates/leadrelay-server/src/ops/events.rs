//! Marketplace events: the marketplace operator reports a customer's action on a storefront,
//! and it becomes a lead of the offer's publisher in the marketplace's own format. The
//! `LeadSource` is built in parts from the storefront and the action, never as a string.

use leadrelay_core::marketplace::{CustomerAction, Marketplace};
use leadrelay_core::storage::Offer;
use leadrelay_core::{Customer, Lead, LeadSource, OfferId};

use super::leads::{LeadOrigin, LeadSubmission};
use super::{Ops, OpsError, OpsResult};

/// A customer's action as the operator reports it.
#[derive(Debug, Clone)]
pub struct MarketplaceEvent {
    /// The offer the customer acted on (any publisher's).
    pub offer: OfferId,
    /// Where.
    pub marketplace: Marketplace,
    /// What the customer did.
    pub action: CustomerAction,
    /// The customer's details.
    pub customer: Customer,
    /// Whether the customer agreed to share their details with the publisher.
    pub consent: Option<bool>,
    /// The customer's notes.
    pub notes: Option<String>,
    /// The campaign id.
    pub campaign: Option<String>,
}

impl MarketplaceEvent {
    /// # Errors
    /// `Invalid` (path `consent`) unless the customer agreed to share their details.
    pub fn require_consent(&self) -> OpsResult<()> {
        if self.consent == Some(true) {
            return Ok(());
        }
        Err(OpsError::field(
            "consent",
            "must be true: a lead is shared with the publisher only when the customer agreed to it",
        ))
    }

    /// The lead this event becomes for `offer` (the registered offer it names).
    ///
    /// # Errors
    /// As [`MarketplaceEvent::require_consent`].
    pub fn into_submission(self, offer: &Offer) -> OpsResult<LeadSubmission> {
        self.require_consent()?;
        let lead_source = LeadSource {
            source: self.marketplace.source(),
            action: Some(self.action.action_code()),
            offer: Some(offer.id.to_string()),
        };
        Ok(LeadSubmission::new(LeadOrigin::Event, offer.publisher.clone())
            .lead_source_parts(lead_source)
            .offer(Some(offer.id.clone()))
            .offer_title(Some(offer.title.clone()))
            .customer(self.customer)
            .description(self.notes)
            .campaign(self.campaign))
    }
}

impl Ops {
    /// Turns an event into a lead of the offer's publisher (merged and routed like any lead).
    ///
    /// # Errors
    /// `Invalid` unless the customer consented; `NotFound` for an unknown offer.
    pub async fn report_event(&self, event: MarketplaceEvent) -> OpsResult<Lead> {
        event.require_consent()?;
        let offer = self.find_offer(&event.offer).await?;
        let mut leads = self.accept_leads(vec![event.into_submission(&offer)?]).await?;
        Ok(leads.remove(0))
    }
}
