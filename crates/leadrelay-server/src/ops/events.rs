//! Marketplace events: the marketplace operator reports a customer's action on a storefront,
//! and it becomes a lead of the offer's publisher in the marketplace's own format. The
//! `LeadSource` is built in parts from the storefront and the action, never as a string.

use leadrelay_core::marketplace::{CustomerAction, Marketplace};
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

impl Ops {
    /// Turns an event into a lead of the offer's publisher (merged and routed like any lead).
    ///
    /// # Errors
    /// `Invalid` unless the customer consented; `NotFound` for an unknown offer.
    pub async fn report_event(&self, event: MarketplaceEvent) -> OpsResult<Lead> {
        if event.consent != Some(true) {
            return Err(OpsError::field(
                "consent",
                "must be true: a lead is shared with the publisher only when the customer agreed to it",
            ));
        }
        let offer = self.find_offer(&event.offer).await?;
        let lead_source = LeadSource {
            source: event.marketplace.source(),
            action: Some(event.action.action_code()),
            offer: Some(offer.id.to_string()),
        };
        let submission = LeadSubmission::new(LeadOrigin::Event, offer.publisher.clone())
            .lead_source_parts(lead_source)
            .offer(Some(offer.id.clone()))
            .offer_title(Some(offer.title.clone()))
            .customer(event.customer)
            .description(event.notes)
            .campaign(event.campaign);
        let mut leads = self.accept_leads(vec![submission]).await?;
        Ok(leads.remove(0))
    }
}
