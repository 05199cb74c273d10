//! The audit log: recording who did what, and reading it back.
//!
//! Where an entry is written: the audited use cases that change state (destinations, replay,
//! retry, split, tokens and keys, CSV import) take the caller's [`Actor`] and append their entry
//! themselves, so the CLI and the dashboard cannot forget it. Reads are authorized by the handler
//! after the read (another publisher's lead answers 404 only once it has been loaded), so the
//! handler records them through [`Ops::record`] once the caller was allowed to see them.
//!
//! When: the entry is appended after the use case succeeded, as its own storage call (one extra
//! write, shared with other callers' writes by the SQLite group commit), not inside the use
//! case's transaction: only a few use cases are one atomic storage call, and putting the entry
//! in each would spread the log over every store method. The cost is a gap: a crash between the
//! two writes keeps the change without its entry. When the append fails the call fails too, so
//! nothing is shown (a read) or confirmed (a change) without its entry.

use leadrelay_core::PublisherId;
use leadrelay_core::audit::{Actor, AuditAction, AuditEntry, AuditFilter};
use leadrelay_core::storage::{Page, PageRequest};

use super::{Ops, OpsResult};

impl Ops {
    /// A new entry for `action` by `actor`, concerning `publisher`'s data, stamped now; finish
    /// it with its object and count, then [`Ops::record`] it.
    pub fn audit_entry(&self, actor: &Actor, publisher: Option<&PublisherId>, action: AuditAction) -> AuditEntry {
        AuditEntry::new(self.clock.now(), actor, publisher, action)
    }

    /// Appends an entry to the audit log.
    ///
    /// # Errors
    /// Storage failures (the caller fails with them: see the module docs).
    pub async fn record(&self, entry: AuditEntry) -> OpsResult<()> {
        Ok(self.storage.append_audit(&entry).await?)
    }

    /// Audit entries, newest first.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn list_audit(&self, filter: &AuditFilter, page: &PageRequest) -> OpsResult<Page<AuditEntry>> {
        Ok(self.storage.list_audit(filter, page).await?)
    }
}
