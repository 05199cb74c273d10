//! AuditStore on PostgreSQL. (Not yet written: every method refuses.)

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
impl AuditStore for PostgresStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        Err(StorageError::Other("AuditStore is not written yet".into()))
    }

    async fn list_audit(&self, filter: &AuditFilter, page: &PageRequest) -> Result<Page<AuditEntry>> {
        Err(StorageError::Other("AuditStore is not written yet".into()))
    }
}
