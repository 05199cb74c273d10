//! CatalogStore on PostgreSQL. (Not yet written: every method refuses.)

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
impl CatalogStore for PostgresStore {
    async fn create_publisher(&self, publisher: &Publisher) -> Result<()> {
        Err(StorageError::Other("CatalogStore is not written yet".into()))
    }

    async fn get_publisher(&self, id: &PublisherId) -> Result<Publisher> {
        Err(StorageError::Other("CatalogStore is not written yet".into()))
    }

    async fn upsert_offer(&self, offer: &Offer) -> Result<Upserted> {
        Err(StorageError::Other("CatalogStore is not written yet".into()))
    }

    async fn get_offer(&self, id: &OfferId) -> Result<Offer> {
        Err(StorageError::Other("CatalogStore is not written yet".into()))
    }

    async fn record_publication(&self, id: &OfferId, at: Timestamp, results: &serde_json::Value) -> Result<()> {
        Err(StorageError::Other("CatalogStore is not written yet".into()))
    }

    async fn list_offers(&self, publisher: &PublisherId) -> Result<Vec<Offer>> {
        Err(StorageError::Other("CatalogStore is not written yet".into()))
    }

    async fn create_destination(&self, destination: &DestinationRecord) -> Result<()> {
        Err(StorageError::Other("CatalogStore is not written yet".into()))
    }

    async fn get_destination(&self, id: &DestinationId) -> Result<DestinationRecord> {
        Err(StorageError::Other("CatalogStore is not written yet".into()))
    }

    async fn list_destinations(&self, publisher: &PublisherId) -> Result<Vec<DestinationRecord>> {
        Err(StorageError::Other("CatalogStore is not written yet".into()))
    }

    async fn set_destination_enabled(
        &self,
        id: &DestinationId,
        enabled: bool,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<()> {
        Err(StorageError::Other("CatalogStore is not written yet".into()))
    }
}
