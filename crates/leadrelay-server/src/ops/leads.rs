//! Accepting leads from every way in, and reading them back.

use std::collections::HashMap;
use std::sync::Arc;

use leadrelay_core::destination::FieldError;
use leadrelay_core::storage::{
    LeadDetail, LeadFilter, LeadWithDeliveries, NewDelivery, Offer, Page, PageRequest, StorageError,
};
use leadrelay_core::{DeliveryId, Lead, LeadDraft, LeadId, OfferId, PublisherId, routing};

use super::{Catalog, Ops, OpsError, OpsResult};

/// A lead from the native API, before its offer is resolved.
#[derive(Clone)]
pub struct LeadSubmission {
    /// The draft (publisher set).
    pub draft: LeadDraft,
    /// Offer part of `LeadSource` or an explicit offer, for resolution.
    pub offer_hint: Option<String>,
}

impl Ops {
    /// Resolves a lead's offer: the key's binding, else an offer id in the hint, else an offer
    /// whose title equals the hint or `OfferTitle`. `None` when nothing matches: the lead is
    /// still accepted and goes to the destinations that apply to every offer.
    fn resolve_offer<'c>(
        catalog: &'c Catalog,
        bound: Option<&OfferId>,
        hint: Option<&str>,
        title: Option<&str>,
    ) -> Option<&'c Offer> {
        if let Some(b) = bound {
            return catalog.offers.iter().find(|o| &o.id == b);
        }
        let by_id =
            hint.and_then(|h| OfferId::parse(h.trim()).ok()).and_then(|id| catalog.offers.iter().find(|o| o.id == id));
        by_id.or_else(|| {
            [hint, title]
                .into_iter()
                .flatten()
                .map(str::trim)
                .find_map(|t| catalog.offers.iter().find(|o| o.title.eq_ignore_ascii_case(t)))
        })
    }

    /// Accepts leads: resolves offers, plans deliveries, stores everything in one atomic call
    /// (which also merges each lead into its customer and spots duplicates), wakes the worker.
    /// Returns the stored leads after the commit.
    ///
    /// # Errors
    /// `Invalid` naming the first bad field (prefixed `[i].` in a batch); nothing is stored.
    pub async fn accept_leads(
        &self,
        submissions: Vec<LeadSubmission>,
        bound_offer: Option<&OfferId>,
    ) -> OpsResult<Vec<Lead>> {
        let now = self.clock.now();
        let batch = submissions.len() > 1;
        let mut catalogs: HashMap<PublisherId, Arc<Catalog>> = HashMap::new();
        let mut planned = Vec::with_capacity(submissions.len());
        for (i, mut sub) in submissions.into_iter().enumerate() {
            let prefix = |e: OpsError| match e {
                OpsError::Invalid(fields) if batch => OpsError::Invalid(
                    fields.into_iter().map(|f| FieldError::new(format!("[{i}].{}", f.path), f.message)).collect(),
                ),
                other => other,
            };
            let publisher =
                sub.draft.publisher.clone().ok_or_else(|| prefix(OpsError::field("publisher", "is required")))?;
            let catalog = match catalogs.get(&publisher) {
                Some(c) => Arc::clone(c),
                None => {
                    let c = self.catalog(&publisher).await?;
                    catalogs.insert(publisher.clone(), Arc::clone(&c));
                    c
                }
            };
            let offer =
                Self::resolve_offer(&catalog, bound_offer, sub.offer_hint.as_deref(), sub.draft.offer_title.as_deref());
            if let Some(o) = offer {
                sub.draft.offer = Some(o.id.clone());
                if sub.draft.offer_title.as_deref().is_none_or(|t| t.trim().is_empty()) {
                    sub.draft.offer_title = Some(o.title.clone());
                }
            }
            let lead = Lead::from_draft(sub.draft, LeadId::generate(now), now, &self.policy.rules)
                .map_err(|e| prefix(e.into()))?;
            let deliveries = routing::plan(&lead, &catalog.destinations, &self.destinations)
                .into_iter()
                .map(|destination| NewDelivery { id: DeliveryId::generate(now), destination })
                .collect();
            planned.push(LeadWithDeliveries { lead, deliveries });
        }
        let accepted = self.storage.insert_leads(&planned, self.policy.duplicate_window).await?;
        if planned.iter().zip(&accepted).any(|(p, a)| a.duplicate_of.is_none() && !p.deliveries.is_empty()) {
            self.wake.notify_one();
        }
        Ok(planned
            .into_iter()
            .zip(accepted)
            .map(|(p, a)| Lead { customer_id: a.customer_id, duplicate_of: a.duplicate_of, ..p.lead })
            .collect())
    }

    /// Leads, newest first.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn list_leads(&self, filter: &LeadFilter, page: &PageRequest) -> OpsResult<Page<Lead>> {
        Ok(self.storage.list_leads(filter, page).await?)
    }

    /// One lead with its deliveries and attempts.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn get_lead(&self, id: &LeadId) -> OpsResult<LeadDetail> {
        match self.storage.get_lead(id).await {
            Err(StorageError::NotFound) => Err(OpsError::NotFound("lead")),
            other => Ok(other?),
        }
    }
}
