//! What a person may ask of the data held about them (GDPR articles 15 and 17): everything held
//! about an email address, found through the blind index (the address itself is stored only
//! sealed), and its erasure; and retention, which strips personal data from old leads.

use leadrelay_core::PublisherId;
use leadrelay_core::audit::{Actor, AuditAction};
use leadrelay_core::customer::is_email_shaped;
use leadrelay_core::storage::{ErasureReport, ErasureRequest, LeadDetail, LeadFilter, PageRequest};

use super::{Ops, OpsError, OpsResult};

/// Everything held about one person.
#[derive(Debug, Clone)]
pub struct SubjectExport {
    /// Each lead with that email, with its deliveries (their destinations and times) and
    /// attempts, oldest first.
    pub leads: Vec<LeadDetail>,
}

/// The address as matching reads it, or the error that names the field.
fn subject_email(email: &str) -> OpsResult<String> {
    let e = email.trim().to_lowercase();
    if is_email_shaped(&e) { Ok(e) } else { Err(OpsError::field("email", "is not an email address")) }
}

impl Ops {
    /// Everything held about `email` in `publisher`'s data (`None`: every publisher's, for the
    /// admin). The export is audited with its count, never the address.
    ///
    /// # Errors
    /// `Invalid` (path `email`) for a value that is not an address; storage failures.
    pub async fn export_subject(
        &self,
        actor: &Actor,
        publisher: Option<PublisherId>,
        email: &str,
    ) -> OpsResult<SubjectExport> {
        let email = subject_email(email)?;
        let filter = LeadFilter { publisher: publisher.clone(), text: Some(email.clone()), ..LeadFilter::default() };
        let mut page = PageRequest { limit: 500, cursor: None };
        let mut leads = Vec::new();
        loop {
            let found = self.storage.list_leads(&filter, &page).await?;
            for lead in found.items {
                // The index keeps 12 bytes of each keyed hash: the address itself decides.
                if lead.customer.normalized_email().as_deref() == Some(email.as_str()) {
                    leads.push(self.get_lead(&lead.id).await?);
                }
            }
            match found.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        leads.reverse();
        let entry = self.audit_entry(actor, publisher.as_ref(), AuditAction::SubjectExport);
        self.record(entry.count(leads.len() as u64)).await?;
        Ok(SubjectExport { leads })
    }
}

impl Ops {
    /// Erases everything personal held about `email` in `publisher`'s data (`None`: every
    /// publisher's), in one storage call, and keeps a tombstone that flags the address if it
    /// comes back. Audited with the count of leads, never the address.
    ///
    /// # Errors
    /// `Invalid` (path `email`) for a value that is not an address; storage failures.
    pub async fn erase_person(
        &self,
        actor: &Actor,
        publisher: Option<PublisherId>,
        email: &str,
    ) -> OpsResult<ErasureReport> {
        let email = subject_email(email)?;
        let now = self.clock.now();
        let request = ErasureRequest {
            publisher: publisher.clone(),
            email,
            requested_by: actor.id.as_str().to_owned(),
            now,
            id: leadrelay_core::AuditId::generate(now).as_str().replacen("aud_", "era_", 1),
        };
        let report = self.storage.erase_person(&request).await?;
        let entry = self.audit_entry(actor, publisher.as_ref(), AuditAction::Erase);
        self.record(entry.count(report.leads)).await?;
        Ok(report)
    }
}

/// Leads stripped per storage call: one write transaction stays short while ingest goes on.
const RETENTION_BATCH: u32 = 500;

impl Ops {
    /// Strips the personal data of every lead received more than `retain` ago, a batch per
    /// storage call; returns how many leads it stripped and logs the count.
    ///
    /// # Errors
    /// Storage failures (what was stripped before stays stripped).
    pub async fn apply_retention(&self, retain: std::time::Duration) -> OpsResult<u64> {
        let now = self.clock.now();
        let cutoff = now.minus(retain);
        let mut stripped = 0;
        loop {
            let n = self.storage.strip_personal_data(cutoff, now, RETENTION_BATCH).await?;
            stripped += n;
            if n < u64::from(RETENTION_BATCH) {
                break;
            }
        }
        if stripped > 0 {
            tracing::info!(
                leads = stripped,
                retain_days = retain.as_secs() / 86_400,
                "retention stripped personal data"
            );
        }
        Ok(stripped)
    }
}

/// The background task of `[privacy]`: applies retention at start and then every interval,
/// until `stop`. `None` when retention is off.
pub fn retention_task(
    config: &crate::config::PrivacyConfig,
    ops: std::sync::Arc<Ops>,
    stop: tokio_util::sync::CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    if config.retain_personal_data_days == 0 {
        return None;
    }
    let retain = std::time::Duration::from_secs(u64::from(config.retain_personal_data_days) * 86_400);
    let every = std::time::Duration::from_millis(config.retention_interval_ms.max(1_000));
    Some(tokio::spawn(async move {
        loop {
            if let Err(e) = ops.apply_retention(retain).await {
                tracing::warn!(error = %e, "retention could not run; it will try again");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }))
}
