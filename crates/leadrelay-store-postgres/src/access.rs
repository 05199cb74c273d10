//! AccessStore on PostgreSQL. (Not yet written: every method refuses.)

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
impl AccessStore for PostgresStore {
    async fn create_ingest_key(&self, key: &IngestKey) -> Result<()> {
        Err(StorageError::Other("AccessStore is not written yet".into()))
    }

    async fn find_ingest_key(&self, key_hash: &str) -> Result<IngestKey> {
        Err(StorageError::Other("AccessStore is not written yet".into()))
    }

    async fn revoke_ingest_key(&self, publisher: &PublisherId, id: &IngestKeyId, now: Timestamp) -> Result<()> {
        Err(StorageError::Other("AccessStore is not written yet".into()))
    }

    async fn create_api_token(&self, token: &ApiToken) -> Result<()> {
        Err(StorageError::Other("AccessStore is not written yet".into()))
    }

    async fn find_api_token(&self, token_hash: &str) -> Result<ApiToken> {
        Err(StorageError::Other("AccessStore is not written yet".into()))
    }

    async fn revoke_api_token(
        &self,
        publisher: &PublisherId,
        id: &leadrelay_core::ids::TokenId,
        now: Timestamp,
    ) -> Result<()> {
        Err(StorageError::Other("AccessStore is not written yet".into()))
    }

    async fn admin_token_hash(&self) -> Result<Option<String>> {
        Err(StorageError::Other("AccessStore is not written yet".into()))
    }

    async fn set_admin_token_hash(&self, hash: &str, only_if_unset: bool) -> Result<bool> {
        Err(StorageError::Other("AccessStore is not written yet".into()))
    }
}
