//! Accepting leads from every way in, and reading them back.
//!
//! Every way in (the marketplace's JSON, the native API, marketplace events, CSV rows, test
//! leads) describes its lead with one builder, [`LeadSubmission`], so the rules of a lead are
//! applied in one place: which offer it belongs to, the email check, the field limits, and how
//! an error names the field in the caller's own terms ([`LeadOrigin`]).

use std::collections::HashMap;
use std::sync::Arc;

use leadrelay_core::destination::FieldError;
use leadrelay_core::storage::{
    Accepted, LeadDetail, LeadFilter, LeadWithDeliveries, NewDelivery, Offer, Page, PageRequest, StorageError,
};
use leadrelay_core::{
    Customer, DeliveryId, Lead, LeadDraft, LeadError, LeadField, LeadId, LeadRules, LeadSource, OfferId, PublisherId,
    Timestamp, routing,
};

use super::{Catalog, Ops, OpsError, OpsResult};

/// The way a lead came in. It decides how errors name a field (each way in has its own shape:
/// `customer.email` in the native API, `UserDetails.Email` in the marketplace's JSON, `email` in
/// a CSV row) and whether an email must look like an address (the marketplace validated its
/// own, so its leads are never refused for one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeadOrigin {
    /// The native lead API.
    Native,
    /// The marketplace's HTTPS-endpoint JSON.
    Marketplace,
    /// A marketplace event reported by the operator.
    Event,
    /// A row of a CSV import (fields named by the export's columns).
    CsvRow,
    /// A test lead sent by Validate or Publish.
    TestLead,
}

impl LeadOrigin {
    /// How this way in names `field`.
    pub fn path(self, field: LeadField) -> &'static str {
        use LeadField as F;
        match (self, field) {
            (_, F::Publisher) => "publisher",
            (Self::Marketplace, F::Offer) => "offer",
            (Self::Marketplace, F::LeadSource) => "LeadSource",
            (Self::Marketplace, F::OfferTitle) => "OfferTitle",
            (Self::Marketplace, F::FirstName) => "UserDetails.FirstName",
            (Self::Marketplace, F::LastName) => "UserDetails.LastName",
            (Self::Marketplace, F::Email) => "UserDetails.Email",
            (Self::Marketplace, F::Phone) => "UserDetails.Phone",
            (Self::Marketplace, F::Country) => "UserDetails.Country",
            (Self::Marketplace, F::Company) => "UserDetails.Company",
            (Self::Marketplace, F::Title) => "UserDetails.Title",
            (Self::Marketplace, F::Description) => "Description",
            (Self::Marketplace, F::Campaign) => "campaign",
            (Self::CsvRow, F::FirstName) => "first_name",
            (Self::CsvRow, F::LastName) => "last_name",
            (Self::CsvRow, F::Email) => "email",
            (Self::CsvRow, F::Phone) => "phone",
            (Self::CsvRow, F::Country) => "country",
            (Self::CsvRow, F::Company) => "company",
            (Self::CsvRow, F::Title) => "title",
            (Self::Event, F::LeadSource) => "marketplace",
            (Self::Event, F::OfferTitle) => "offer",
            (Self::Event, F::Description) => "notes",
            (_, F::Offer) => "offer",
            (_, F::LeadSource) => "lead_source",
            (_, F::OfferTitle) => "offer_title",
            (_, F::FirstName) => "customer.first_name",
            (_, F::LastName) => "customer.last_name",
            (_, F::Email) => "customer.email",
            (_, F::Phone) => "customer.phone",
            (_, F::Country) => "customer.country",
            (_, F::Company) => "customer.company",
            (_, F::Title) => "customer.title",
            (_, F::Description) => "description",
            (_, F::Campaign) => "campaign",
        }
    }

    /// The way in's name in the metrics (the `route` label of `leadrelay_leads_accepted_total`).
    pub fn label(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Marketplace => "ingest",
            Self::Event => "event",
            Self::CsvRow => "csv_import",
            Self::TestLead => "test_lead",
        }
    }

    fn error(self, field: LeadField, message: impl Into<String>) -> FieldError {
        FieldError::new(self.path(field), message)
    }
}

/// A lead as a way in describes it, before its offer is resolved: the one builder every way in
/// uses. Values are kept exactly as received.
#[derive(Clone)]
pub struct LeadSubmission {
    origin: LeadOrigin,
    draft: LeadDraft,
    offer: Option<OfferId>,
}

impl LeadSubmission {
    /// A lead of `publisher` arriving by `origin`.
    pub fn new(origin: LeadOrigin, publisher: PublisherId) -> Self {
        Self { origin, draft: LeadDraft { publisher: Some(publisher), ..LeadDraft::default() }, offer: None }
    }

    /// The `LeadSource` string as received (`Source-Action|Offer`).
    #[must_use]
    pub fn lead_source(mut self, raw: Option<String>) -> Self {
        self.draft.lead_source = raw;
        self
    }

    /// The `LeadSource` in parts, when the way in knows them instead of a string.
    #[must_use]
    pub fn lead_source_parts(mut self, parts: LeadSource) -> Self {
        self.draft.parsed_source = Some(parts);
        self
    }

    /// The offer, named by the caller (an ingest key's binding, the native `offer` field, a CSV
    /// column, the event's offer). It must be an offer id of the lead's publisher.
    #[must_use]
    pub fn offer(mut self, offer: Option<OfferId>) -> Self {
        self.offer = offer;
        self
    }

    /// `OfferTitle`.
    #[must_use]
    pub fn offer_title(mut self, title: Option<String>) -> Self {
        self.draft.offer_title = title;
        self
    }

    /// `ActionCode` (wins over the action part of `LeadSource`).
    #[must_use]
    pub fn action_code(mut self, action: Option<String>) -> Self {
        self.draft.action_code = action;
        self
    }

    /// The customer's details.
    #[must_use]
    pub fn customer(mut self, customer: Customer) -> Self {
        self.draft.customer = customer;
        self
    }

    /// `Description` (notes).
    #[must_use]
    pub fn description(mut self, description: Option<String>) -> Self {
        self.draft.description = description;
        self
    }

    /// The campaign id.
    #[must_use]
    pub fn campaign(mut self, campaign: Option<String>) -> Self {
        self.draft.campaign = campaign;
        self
    }

    /// Marks the lead as a test lead whatever its fields say.
    #[must_use]
    pub(super) fn test_lead(mut self) -> Self {
        self.draft.is_test = true;
        self
    }

    /// Keeps the marks an exported lead carried back into its import: a test lead stays a
    /// test lead, and a lead stored without personal data stays without it.
    #[must_use]
    pub(super) fn exported_marks(mut self, is_test: bool, pii_withheld: bool) -> Self {
        self.draft.is_test |= is_test;
        self.draft.pii_withheld |= pii_withheld;
        self
    }

    /// The lead's publisher.
    pub fn publisher(&self) -> &PublisherId {
        self.draft.publisher.as_ref().expect("a submission always has a publisher")
    }

    /// The rules that need no storage: the named offer is the publisher's, the email looks
    /// like an address (except for the marketplace's own leads).
    fn check(&self) -> Result<(), FieldError> {
        let publisher = self.publisher();
        if let Some(o) = &self.offer
            && !o.belongs_to(publisher)
        {
            return Err(self.origin.error(LeadField::Offer, format!("must be an offer of publisher '{publisher}'")));
        }
        if self.origin != LeadOrigin::Marketplace && !self.draft.customer.email_is_shaped() {
            return Err(self.origin.error(LeadField::Email, "is not an email address"));
        }
        Ok(())
    }

    /// The offer this lead belongs to (SPEC §2): the named offer; else an offer id of this
    /// publisher in `LeadSource`'s offer part, registered or not; else (the offer part is a name,
    /// absent, or another publisher's id, which is ignored) a registered offer whose title
    /// equals the offer part or `OfferTitle` (ignoring case and surrounding spaces). `None` when
    /// nothing matches: the lead is kept and goes to the destinations for every offer.
    fn resolve_offer<'c>(&self, offers: &'c [Offer]) -> (Option<OfferId>, Option<&'c Offer>) {
        let registered = |id: &OfferId| offers.iter().find(|o| &o.id == id);
        if let Some(id) = &self.offer {
            return (Some(id.clone()), registered(id));
        }
        let parsed;
        let source = match (&self.draft.parsed_source, &self.draft.lead_source) {
            (Some(p), _) => Some(p),
            (None, Some(raw)) => {
                parsed = LeadSource::parse(raw).ok();
                parsed.as_ref()
            }
            (None, None) => None,
        };
        let mut part = source.and_then(|s| s.offer.as_deref()).map(str::trim);
        if let Some(Ok(id)) = part.map(OfferId::parse) {
            if id.belongs_to(self.publisher()) {
                let offer = registered(&id);
                return (Some(id), offer);
            }
            // Another publisher's offer id says nothing about this publisher's offers.
            part = None;
        }
        let by_title = [part, self.draft.offer_title.as_deref().map(str::trim)]
            .into_iter()
            .flatten()
            .find_map(|t| offers.iter().find(|o| o.title.eq_ignore_ascii_case(t)));
        (by_title.map(|o| o.id.clone()), by_title)
    }

    /// The lead this submission becomes, with its offer resolved against the publisher's
    /// registered `offers`: every rule of a lead that needs no storage, so it can be checked
    /// (and fuzzed) without a database.
    ///
    /// # Errors
    /// The first field that breaks a rule, named in the way in's own terms.
    pub fn into_lead(
        self,
        offers: &[Offer],
        id: LeadId,
        now: Timestamp,
        rules: &LeadRules,
    ) -> Result<Lead, FieldError> {
        self.check()?;
        let (offer, registered) = self.resolve_offer(offers);
        let origin = self.origin;
        let mut draft = self.draft;
        draft.offer = offer;
        if draft.offer_title.as_deref().is_none_or(str::is_empty)
            && let Some(o) = registered
        {
            draft.offer_title = Some(o.title.clone());
        }
        Lead::from_draft(draft, id, now, rules).map_err(|e: LeadError| origin.error(e.field(), e.to_string()))
    }
}

impl Ops {
    /// Accepts leads: resolves offers, plans deliveries, stores everything in one atomic call
    /// (which also merges each lead into its customer and spots duplicates), wakes the worker.
    /// Returns the stored leads after the commit.
    ///
    /// # Errors
    /// `Invalid` naming the first bad field, prefixed `[i].` in a batch (an unknown publisher
    /// too); nothing is stored.
    pub async fn accept_leads(&self, submissions: Vec<LeadSubmission>) -> OpsResult<Vec<Lead>> {
        let now = self.clock.now();
        let batch = submissions.len() > 1;
        let mut catalogs: HashMap<PublisherId, Arc<Catalog>> = HashMap::new();
        let mut planned = Vec::with_capacity(submissions.len());
        let mut origins = Vec::with_capacity(submissions.len());
        for (i, sub) in submissions.into_iter().enumerate() {
            origins.push(sub.origin);
            let prefix = |e: OpsError| match e {
                OpsError::Invalid(fields) if batch => OpsError::Invalid(
                    fields.into_iter().map(|f| FieldError::new(format!("[{i}].{}", f.path), f.message)).collect(),
                ),
                other => other,
            };
            let publisher = sub.publisher().clone();
            let catalog = match catalogs.get(&publisher) {
                Some(c) => Arc::clone(c),
                None => {
                    let c = self.catalog(&publisher).await.map_err(prefix)?;
                    catalogs.insert(publisher, Arc::clone(&c));
                    c
                }
            };
            let lead = sub
                .into_lead(&catalog.offers, LeadId::generate(now), now, &self.policy.rules)
                .map_err(|f| prefix(OpsError::Invalid(vec![f])))?;
            let deliveries = routing::plan(&lead, &catalog.destinations, &self.destinations)
                .into_iter()
                .map(|destination| NewDelivery { id: DeliveryId::generate(now), destination })
                .collect();
            planned.push(LeadWithDeliveries { lead, deliveries });
        }
        let accepted = self.storage.insert_leads(&planned, self.policy.duplicate_window).await?;
        for ((p, a), origin) in planned.iter().zip(&accepted).zip(origins) {
            count_stored(&p.lead, a, origin);
        }
        if planned.iter().zip(&accepted).any(|(p, a)| a.duplicate_of.is_none() && !p.deliveries.is_empty()) {
            self.wake.notify_one();
        }
        Ok(planned
            .into_iter()
            .zip(accepted)
            .map(|(p, a)| Lead {
                customer_id: a.customer_id,
                duplicate_of: a.duplicate_of,
                previously_erased: a.previously_erased,
                ..p.lead
            })
            .collect())
    }

    /// Stores a test lead of `publisher` for `offer` (in the marketplace's test format, without
    /// deliveries: the caller sends it itself) and returns it.
    ///
    /// # Errors
    /// Storage failures.
    pub(super) async fn store_test_lead(&self, publisher: &PublisherId, offer: Option<&Offer>) -> OpsResult<Lead> {
        let now = self.clock.now();
        let submission = LeadSubmission::new(LeadOrigin::TestLead, publisher.clone())
            .lead_source_parts(LeadSource {
                source: leadrelay_core::Source::AzureMarketplace,
                action: Some(leadrelay_core::ActionCode::Ins),
                offer: None,
            })
            .offer(offer.map(|o| o.id.clone()))
            .offer_title(Some(offer.map_or_else(|| "leadrelay test lead".to_owned(), |o| o.title.clone())))
            .customer(leadrelay_core::test_lead::test_customer(now))
            .description(Some(leadrelay_core::test_lead::marker_at(now)))
            .test_lead();
        let offers: Vec<Offer> = offer.into_iter().cloned().collect();
        let lead = submission
            .into_lead(&offers, LeadId::generate(now), now, &self.policy.rules)
            .map_err(|f| OpsError::Invalid(vec![f]))?;
        let accepted = self
            .storage
            .insert_leads(
                &[LeadWithDeliveries { lead: lead.clone(), deliveries: Vec::new() }],
                self.policy.duplicate_window,
            )
            .await?;
        for a in &accepted {
            count_stored(&lead, a, LeadOrigin::TestLead);
        }
        Ok(lead)
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

/// Counts a stored lead (and a duplicate) in the metrics, by its publisher and way in.
fn count_stored(lead: &Lead, accepted: &Accepted, origin: LeadOrigin) {
    use crate::telemetry::metrics::{LEADS_ACCEPTED, LEADS_DUPLICATE};
    let publisher = lead.publisher.to_string();
    if accepted.duplicate_of.is_some() {
        metrics::counter!(LEADS_DUPLICATE, "publisher" => publisher.clone()).increment(1);
    }
    metrics::counter!(LEADS_ACCEPTED, "publisher" => publisher, "route" => origin.label()).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_way_in_names_fields_in_its_own_shape() {
        assert_eq!(LeadOrigin::Native.path(LeadField::Email), "customer.email");
        assert_eq!(LeadOrigin::Marketplace.path(LeadField::Email), "UserDetails.Email");
        assert_eq!(LeadOrigin::Marketplace.path(LeadField::Description), "Description");
        assert_eq!(LeadOrigin::CsvRow.path(LeadField::Email), "email");
        assert_eq!(LeadOrigin::Event.path(LeadField::Description), "notes");
        assert_eq!(LeadOrigin::Native.path(LeadField::LeadSource), "lead_source");
    }
}
