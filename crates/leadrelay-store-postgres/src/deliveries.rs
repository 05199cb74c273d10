//! OutboxStore on PostgreSQL. (Not yet written: every method refuses.)

#![allow(unused_variables)]
#![allow(unused_imports)]
use leadrelay_core::audit::*;
use leadrelay_core::destination::DestinationRecord;
use leadrelay_core::sales::kpi::*;
use leadrelay_core::sales::*;
use leadrelay_core::storage::*;
use leadrelay_core::*;
use std::time::Duration;

use crate::PostgresStore;

#[async_trait::async_trait]
impl OutboxStore for PostgresStore {
    async fn claim_due_deliveries(&self, request: &ClaimRequest) -> Result<Vec<Claimed>> {
        Err(StorageError::Other("OutboxStore is not written yet".into()))
    }

    async fn record_attempts(&self, records: &[AttemptRecord]) -> Result<()> {
        Err(StorageError::Other("OutboxStore is not written yet".into()))
    }

    async fn next_due_at(&self) -> Result<Option<Timestamp>> {
        Err(StorageError::Other("OutboxStore is not written yet".into()))
    }

    async fn outbox_depths(&self) -> Result<Vec<OutboxDepth>> {
        Err(StorageError::Other("OutboxStore is not written yet".into()))
    }

    async fn get_delivery(&self, id: &DeliveryId) -> Result<Delivery> {
        Err(StorageError::Other("OutboxStore is not written yet".into()))
    }

    async fn list_deliveries(&self, filter: &DeliveryFilter, page: &PageRequest) -> Result<Page<Delivery>> {
        Err(StorageError::Other("OutboxStore is not written yet".into()))
    }

    async fn retry_delivery(&self, id: &DeliveryId, now: Timestamp) -> Result<Delivery> {
        Err(StorageError::Other("OutboxStore is not written yet".into()))
    }

    async fn replay_candidates(
        &self,
        request: &ReplayRequest,
        after: Option<&LeadId>,
        limit: u32,
    ) -> Result<Vec<Lead>> {
        Err(StorageError::Other("OutboxStore is not written yet".into()))
    }

    async fn replay(&self, plan: &ReplayPlan, now: Timestamp) -> Result<u64> {
        Err(StorageError::Other("OutboxStore is not written yet".into()))
    }
}
