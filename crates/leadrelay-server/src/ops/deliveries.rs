//! Deliveries: reading them, retrying one, replaying many.

use leadrelay_core::audit::{Actor, AuditAction, AuditObject};
use leadrelay_core::storage::{Delivery, DeliveryFilter, Page, PageRequest, ReplayPlan, ReplayRequest, StorageError};
use leadrelay_core::{DeliveryId, LeadId, routing};

use super::{Ops, OpsError, OpsResult};

/// Leads read and queued per storage call during a replay.
const REPLAY_PAGE: u32 = 500;

impl Ops {
    /// Sends one delivery again now, with a fresh attempt budget.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` while it is in flight.
    pub async fn retry_delivery(&self, actor: &Actor, id: &DeliveryId) -> OpsResult<Delivery> {
        let d = match self.storage.retry_delivery(id, self.clock.now()).await {
            Err(StorageError::NotFound) => return Err(OpsError::NotFound("delivery")),
            Err(StorageError::Conflict) => {
                return Err(OpsError::Conflict(
                    "the delivery is being attempted right now; try again in a moment".into(),
                ));
            }
            other => other?,
        };
        self.wake.notify_one();
        let entry = self.audit_entry(actor, Some(&d.publisher), AuditAction::DeliveryRetry);
        self.record(entry.object(AuditObject::Delivery(d.id.clone()))).await?;
        Ok(d)
    }

    /// Replays deliveries to a destination; returns how many were queued. The leads of the
    /// range are planned with `routing`, as at ingest, so a replay never sends a lead where
    /// ingest would not have (a lead whose personal data was withheld never reaches a CRM).
    /// Each page of leads is queued in one storage call; a replay cut short can simply be run
    /// again.
    ///
    /// # Errors
    /// `NotFound`; `Invalid` when `until` is before `since`.
    pub async fn replay(&self, actor: &Actor, request: ReplayRequest) -> OpsResult<u64> {
        if let (Some(s), Some(u)) = (request.since, request.until)
            && u <= s
        {
            return Err(OpsError::field("until", "must be later than since"));
        }
        let destination = self.get_destination(&request.destination).await?;
        let now = self.clock.now();
        let mut after: Option<LeadId> = None;
        let mut queued = 0;
        loop {
            let page = match self.storage.replay_candidates(&request, after.as_ref(), REPLAY_PAGE).await {
                Err(StorageError::NotFound) => return Err(OpsError::NotFound("destination")),
                other => other?,
            };
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            let leads: Vec<(LeadId, DeliveryId)> = page
                .iter()
                .filter(|lead| routing::applies(lead, &destination, &self.destinations))
                .map(|lead| (lead.id.clone(), DeliveryId::generate(now)))
                .collect();
            let full = page.len() == REPLAY_PAGE as usize;
            if !leads.is_empty() {
                let plan = ReplayPlan { destination: destination.id.clone(), leads };
                queued += match self.storage.replay(&plan, now).await {
                    Err(StorageError::NotFound) => return Err(OpsError::NotFound("destination")),
                    other => other?,
                };
                self.wake.notify_one();
            }
            if !full {
                break;
            }
        }
        let entry = self.audit_entry(actor, Some(&destination.publisher), AuditAction::DestinationReplay);
        self.record(entry.object(AuditObject::Destination(destination.id.clone())).count(queued)).await?;
        Ok(queued)
    }

    /// One delivery.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn get_delivery(&self, id: &DeliveryId) -> OpsResult<Delivery> {
        match self.storage.get_delivery(id).await {
            Err(StorageError::NotFound) => Err(OpsError::NotFound("delivery")),
            other => Ok(other?),
        }
    }

    /// Deliveries, newest first.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn list_deliveries(&self, filter: &DeliveryFilter, page: &PageRequest) -> OpsResult<Page<Delivery>> {
        Ok(self.storage.list_deliveries(filter, page).await?)
    }
}
