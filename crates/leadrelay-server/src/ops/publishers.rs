//! Publishers and their offers, including publishing an offer (which tests its destinations).

use leadrelay_core::destination::DestinationRecord;
use leadrelay_core::storage::{Offer, Publisher, StorageError, Upserted};
use leadrelay_core::{OfferId, OfferType, PublisherId, routing};

use super::{Ops, OpsError, OpsResult};

/// One destination's answer to the test lead a publish sent it, as recorded on the offer
/// (`last_validation`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DestinationTest {
    /// The destination's id.
    pub destination: String,
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Whether it took the test lead.
    pub ok: bool,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<u16>,
    /// The test lead that was sent.
    pub test_lead_id: String,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What to fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// What to check by hand when the destination cannot confirm the write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl DestinationTest {
    /// The results recorded by the offer's last publish; `None` if it was never published (or
    /// the record cannot be read, which only a hand-edited database could cause).
    pub fn recorded(offer: &Offer) -> Option<Vec<Self>> {
        offer.last_validation.clone().and_then(|v| serde_json::from_value(v).ok())
    }
}

impl Ops {
    /// One publisher.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn require_publisher(&self, publisher: &PublisherId) -> OpsResult<Publisher> {
        match self.storage.get_publisher(publisher).await {
            Err(StorageError::NotFound) => Err(OpsError::NotFound("publisher")),
            other => Ok(other?),
        }
    }

    /// Creates a publisher.
    ///
    /// # Errors
    /// `Conflict` when the id is taken.
    pub async fn create_publisher(&self, id: PublisherId, name: String) -> OpsResult<Publisher> {
        let name = name.trim().to_owned();
        if name.is_empty() || name.len() > 200 {
            return Err(OpsError::field("name", "must be 1-200 characters"));
        }
        let p = Publisher { id, name, created_at: self.clock.now() };
        match self.storage.create_publisher(&p).await {
            Err(StorageError::Conflict) => Err(OpsError::Conflict(format!("publisher '{}' already exists", p.id))),
            other => other.map(|()| p).map_err(Into::into),
        }
    }

    /// Creates or replaces an offer.
    ///
    /// # Errors
    /// `Invalid` when the offer id's publisher part is not `publisher`; `NotFound` for an
    /// unknown publisher.
    pub async fn put_offer(
        &self,
        publisher: &PublisherId,
        id: OfferId,
        title: String,
        offer_type: OfferType,
    ) -> OpsResult<(Offer, Upserted)> {
        if !id.belongs_to(publisher) {
            return Err(OpsError::field(
                "offer_id",
                format!("must start with '{publisher}.' (the publisher part must match)"),
            ));
        }
        let title = title.trim().to_owned();
        if title.is_empty() || title.len() > 200 {
            return Err(OpsError::field("title", "must be 1-200 characters"));
        }
        self.require_publisher(publisher).await?;
        let now = self.clock.now();
        let (created_at, published_at, last_validation) = match self.storage.get_offer(&id).await {
            Ok(existing) => (existing.created_at, existing.published_at, existing.last_validation),
            Err(StorageError::NotFound) => (now, None, None),
            Err(e) => return Err(e.into()),
        };
        let offer = Offer {
            id,
            publisher: publisher.clone(),
            title,
            offer_type,
            created_at,
            updated_at: now,
            published_at,
            last_validation,
        };
        let upserted = self.storage.upsert_offer(&offer).await?;
        self.forget_catalog(publisher);
        Ok((offer, upserted))
    }

    /// An offer by id, whoever its publisher (for the marketplace operator).
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn find_offer(&self, id: &OfferId) -> OpsResult<Offer> {
        match self.storage.get_offer(id).await {
            Err(StorageError::NotFound) => Err(OpsError::NotFound("offer")),
            other => Ok(other?),
        }
    }

    /// One offer of a publisher.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn get_offer(&self, publisher: &PublisherId, id: &OfferId) -> OpsResult<Offer> {
        match self.storage.get_offer(id).await {
            Ok(o) if &o.publisher == publisher => Ok(o),
            Ok(_) | Err(StorageError::NotFound) => Err(OpsError::NotFound("offer")),
            Err(e) => Err(e.into()),
        }
    }

    /// Publishes an offer: refused when its type requires a lead destination and it has none;
    /// otherwise every destination of the offer gets a test lead now, and the results are
    /// recorded on the offer. Publishing succeeds even when a destination fails its test: its
    /// leads queue until it is fixed, and the results say what to fix.
    ///
    /// # Errors
    /// `NotFound`; `Invalid` naming the rule when a required destination is missing.
    pub async fn publish_offer(&self, publisher: &PublisherId, id: &OfferId) -> OpsResult<Offer> {
        let offer = self.get_offer(publisher, id).await?;
        self.forget_catalog(publisher);
        let catalog = self.catalog(publisher).await?;
        let destinations: Vec<&DestinationRecord> = catalog
            .destinations
            .iter()
            .filter(|d| d.publisher == offer.publisher && routing::takes_offer(d, Some(&offer.id)))
            .collect();
        if destinations.is_empty() && self.policy.destination_required_for.contains(&offer.offer_type) {
            return Err(OpsError::field(
                "destinations",
                format!(
                    "an offer of type '{}' needs a lead destination before it is published (rule: \
                     offers.destination_required_for); add a destination for it first",
                    offer.offer_type.as_str()
                ),
            ));
        }
        let mut results = Vec::with_capacity(destinations.len());
        for d in destinations {
            results.push((d, self.send_test_lead(d, Some(&offer)).await?));
        }
        let summary: Vec<DestinationTest> = results
            .into_iter()
            .map(|(d, v)| {
                let (error, hint) = v.error.map_or((None, None), |(e, h)| (Some(e), Some(h)));
                DestinationTest {
                    destination: d.id.to_string(),
                    name: d.name.clone(),
                    kind: d.kind.clone(),
                    ok: error.is_none(),
                    status_code: v.status,
                    test_lead_id: v.lead_id.to_string(),
                    error,
                    hint,
                    note: v.note,
                }
            })
            .collect();
        let summary = serde_json::to_value(summary).expect("plain fields always serialise");
        let now = self.clock.now();
        self.storage.record_publication(&offer.id, now, &summary).await?;
        self.get_offer(publisher, id).await
    }
}
