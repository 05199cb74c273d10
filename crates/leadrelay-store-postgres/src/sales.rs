//! SalesStore on PostgreSQL. (Not yet written: every method refuses.)

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
impl SalesStore for PostgresStore {
    async fn sales_settings(&self, publisher: &PublisherId) -> Result<SalesSettings> {
        Err(StorageError::Other("SalesStore is not written yet".into()))
    }

    async fn put_sales_settings(&self, publisher: &PublisherId, settings: &SalesSettings) -> Result<()> {
        Err(StorageError::Other("SalesStore is not written yet".into()))
    }

    async fn get_opportunity(&self, id: &OpportunityId) -> Result<Opportunity> {
        Err(StorageError::Other("SalesStore is not written yet".into()))
    }

    async fn list_opportunities(&self, filter: &OpportunityFilter, page: &PageRequest) -> Result<Page<Opportunity>> {
        Err(StorageError::Other("SalesStore is not written yet".into()))
    }

    async fn update_opportunity(&self, update: &OpportunityUpdate) -> Result<Opportunity> {
        Err(StorageError::Other("SalesStore is not written yet".into()))
    }

    async fn add_activity(&self, opportunity: &OpportunityId, activity: &Activity) -> Result<Opportunity> {
        Err(StorageError::Other("SalesStore is not written yet".into()))
    }

    async fn tick_checklist(&self, tick: &ChecklistTick) -> Result<Opportunity> {
        Err(StorageError::Other("SalesStore is not written yet".into()))
    }

    async fn take_sales_notices(&self, now: Timestamp, limit: u32) -> Result<Vec<SalesNotice>> {
        Err(StorageError::Other("SalesStore is not written yet".into()))
    }

    async fn kpis(&self, query: &KpiQuery) -> Result<KpiReport> {
        Err(StorageError::Other("SalesStore is not written yet".into()))
    }
}
