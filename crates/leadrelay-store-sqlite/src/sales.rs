//! Opportunities, their follow-up, the sales settings and the KPI query.

use leadrelay_core::sales::kpi::{KpiQuery, KpiReport};
use leadrelay_core::sales::{Activity, Opportunity, SalesSettings};
use leadrelay_core::storage::{
    ChecklistTick, OpportunityFilter, OpportunityUpdate, Page, PageRequest, Result, SalesNotice, SalesStore,
};
use leadrelay_core::{OpportunityId, PublisherId, Timestamp};

use crate::SqliteStore;

#[async_trait::async_trait]
impl SalesStore for SqliteStore {
    async fn sales_settings(&self, _publisher: &PublisherId) -> Result<SalesSettings> {
        unimplemented!("sales store")
    }
    async fn put_sales_settings(&self, _publisher: &PublisherId, _settings: &SalesSettings) -> Result<()> {
        unimplemented!("sales store")
    }
    async fn get_opportunity(&self, _id: &OpportunityId) -> Result<Opportunity> {
        unimplemented!("sales store")
    }
    async fn list_opportunities(&self, _filter: &OpportunityFilter, _page: &PageRequest) -> Result<Page<Opportunity>> {
        unimplemented!("sales store")
    }
    async fn update_opportunity(&self, _update: &OpportunityUpdate) -> Result<Opportunity> {
        unimplemented!("sales store")
    }
    async fn add_activity(&self, _opportunity: &OpportunityId, _activity: &Activity) -> Result<Opportunity> {
        unimplemented!("sales store")
    }
    async fn tick_checklist(&self, _tick: &ChecklistTick) -> Result<Opportunity> {
        unimplemented!("sales store")
    }
    async fn take_sales_notices(&self, _now: Timestamp, _limit: u32) -> Result<Vec<SalesNotice>> {
        unimplemented!("sales store")
    }
    async fn kpis(&self, _query: &KpiQuery) -> Result<KpiReport> {
        unimplemented!("sales store")
    }
}
