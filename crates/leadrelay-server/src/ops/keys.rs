//! Key rotation, the part that runs in a serving process: values sealed with an older key are
//! re-sealed with the primary key in the background, a batch per write, so ingest is never
//! held up; `leadrelay keys status` shows what is left.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Ops, OpsResult};

/// Rows re-sealed per storage call.
const BATCH: u32 = 500;

impl Ops {
    /// Re-seals one batch of rows holding older keys' values; returns how many (0: done).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn reseal_batch(&self) -> OpsResult<u64> {
        Ok(self.storage.reseal_stale(BATCH).await?)
    }

    /// Sealed values per key id.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn sealed_values_by_key(&self) -> OpsResult<Vec<(String, u64)>> {
        Ok(self.storage.sealed_values_by_key().await?)
    }
}

/// Re-seals everything an older key sealed, at start, until done or `stop`; logs the count.
pub fn reseal_task(ops: Arc<Ops>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut total = 0;
        loop {
            if stop.is_cancelled() {
                return;
            }
            match ops.reseal_batch().await {
                Ok(0) => break,
                Ok(n) => total += n,
                Err(e) => {
                    tracing::warn!(error = %e, "re-sealing with the new key stopped; it resumes at the next start");
                    return;
                }
            }
        }
        if total > 0 {
            tracing::info!(rows = total, "re-sealed every value of older keys with the primary key");
        }
    })
}
