//! LeadStore on PostgreSQL. (Not yet written: every method refuses.)

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
impl LeadStore for PostgresStore {
    async fn insert_leads(&self, leads: &[LeadWithDeliveries], duplicate_window: Duration) -> Result<Vec<Accepted>> {
        Err(StorageError::Other("LeadStore is not written yet".into()))
    }

    async fn get_customer(&self, id: &CustomerId) -> Result<CustomerDetail> {
        Err(StorageError::Other("LeadStore is not written yet".into()))
    }

    async fn split_customer(&self, request: &SplitRequest) -> Result<()> {
        Err(StorageError::Other("LeadStore is not written yet".into()))
    }

    async fn erase_person(&self, request: &ErasureRequest) -> Result<ErasureReport> {
        Err(StorageError::Other("LeadStore is not written yet".into()))
    }

    async fn strip_personal_data(&self, cutoff: Timestamp, now: Timestamp, limit: u32) -> Result<u64> {
        Err(StorageError::Other("LeadStore is not written yet".into()))
    }

    async fn get_lead(&self, id: &LeadId) -> Result<LeadDetail> {
        Err(StorageError::Other("LeadStore is not written yet".into()))
    }

    async fn get_leads(&self, ids: &[LeadId]) -> Result<Vec<Lead>> {
        Err(StorageError::Other("LeadStore is not written yet".into()))
    }

    async fn list_leads(&self, filter: &LeadFilter, page: &PageRequest) -> Result<Page<Lead>> {
        Err(StorageError::Other("LeadStore is not written yet".into()))
    }
}
