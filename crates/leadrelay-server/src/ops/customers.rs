//! Customers and their timelines; undoing a wrong merge.

use leadrelay_core::audit::{Actor, AuditAction, AuditObject};
use leadrelay_core::storage::{CustomerDetail, NewDelivery, SplitRequest, StorageError};
use leadrelay_core::{CustomerId, DeliveryId, Lead, LeadId, routing};

use super::{Ops, OpsError, OpsResult};

impl Ops {
    /// A customer with its timeline.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn get_customer(&self, id: &CustomerId) -> OpsResult<CustomerDetail> {
        match self.storage.get_customer(id).await {
            Err(StorageError::NotFound) => Err(OpsError::NotFound("customer")),
            other => Ok(other?),
        }
    }

    /// Undoes a wrong merge: `lead_ids` move to a new customer. Leads that were held back as
    /// duplicates only because of the merge are delivered now. Returns the new customer.
    ///
    /// # Errors
    /// `NotFound`; `Invalid` when a lead is not this customer's or the list is empty.
    pub async fn split_customer(
        &self,
        actor: &Actor,
        id: &CustomerId,
        lead_ids: Vec<LeadId>,
    ) -> OpsResult<CustomerDetail> {
        let customer = self.get_customer(id).await?;
        if lead_ids.is_empty() {
            return Err(OpsError::field("lead_ids", "must name at least one lead of this customer"));
        }
        for (i, l) in lead_ids.iter().enumerate() {
            if !customer.leads.iter().any(|c| &c.id == l) {
                return Err(OpsError::field(format!("lead_ids[{i}]"), "is not a lead of this customer"));
            }
        }
        let moving = |l: &LeadId| lead_ids.contains(l);
        // A duplicate stays one only if it and its original end up on the same side.
        let released: Vec<&Lead> = customer
            .leads
            .iter()
            .filter(|l| l.duplicate_of.as_ref().is_some_and(|orig| moving(orig) != moving(&l.id)))
            .collect();
        let catalog = self.catalog(&customer.publisher).await?;
        let now = self.clock.now();
        let released = released
            .into_iter()
            .map(|l| {
                let deliveries = routing::plan(l, &catalog.destinations, &self.destinations)
                    .into_iter()
                    .map(|destination| NewDelivery { id: DeliveryId::generate(now), destination })
                    .collect();
                (l.id.clone(), deliveries)
            })
            .collect();
        let new_customer = CustomerId::generate(now);
        let moved = lead_ids.len() as u64;
        let request =
            SplitRequest { customer: id.clone(), new_customer: new_customer.clone(), leads: lead_ids, released, now };
        match self.storage.split_customer(&request).await {
            Err(StorageError::NotFound) => {
                return Err(OpsError::Conflict("the customer changed meanwhile; read it again and retry".into()));
            }
            other => other?,
        }
        self.wake.notify_one();
        let entry = self.audit_entry(actor, Some(&customer.publisher), AuditAction::CustomerSplit);
        self.record(entry.object(AuditObject::Customer(id.clone())).count(moved)).await?;
        self.get_customer(&new_customer).await
    }
}
