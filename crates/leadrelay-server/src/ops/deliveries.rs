//! Deliveries: reading them, retrying one, replaying many.

use leadrelay_core::DeliveryId;
use leadrelay_core::storage::{Delivery, DeliveryFilter, Page, PageRequest, ReplayRequest, StorageError};

use super::{Ops, OpsError, OpsResult};

impl Ops {
    /// Sends one delivery again now, with a fresh attempt budget.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` while it is in flight.
    pub async fn retry_delivery(&self, id: &DeliveryId) -> OpsResult<Delivery> {
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
        Ok(d)
    }

    /// Replays deliveries to a destination; returns how many were queued.
    ///
    /// # Errors
    /// `NotFound`; `Invalid` when `until` is before `since`.
    pub async fn replay(&self, request: ReplayRequest) -> OpsResult<u64> {
        if let (Some(s), Some(u)) = (request.since, request.until)
            && u <= s
        {
            return Err(OpsError::field("until", "must be later than since"));
        }
        let n = match self.storage.replay(&request, self.clock.now()).await {
            Err(StorageError::NotFound) => return Err(OpsError::NotFound("destination")),
            other => other?,
        };
        self.wake.notify_one();
        Ok(n)
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
