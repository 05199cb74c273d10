//! Destinations: create with the connector's checks, enable and disable, and Validate (a test lead sent now).

use leadrelay_core::audit::{Actor, AuditAction, AuditObject};
use leadrelay_core::destination::{DestinationRecord, FieldError};
use leadrelay_core::storage::{Offer, StorageError};
use leadrelay_core::{DestinationId, LeadId, OfferId, PublisherId};

use super::{Ops, OpsError, OpsResult};

/// The outcome of Validate.
#[derive(Debug, Clone)]
pub struct Validation {
    /// The test lead that was sent.
    pub lead_id: LeadId,
    /// The receiver's HTTP status, if it answered.
    pub status: Option<u16>,
    /// `(error, hint)` when it failed.
    pub error: Option<(String, String)>,
    /// What to check by hand when the destination cannot confirm the write.
    pub note: Option<String>,
}

impl Ops {
    /// Creates a destination after its connector checked the settings. Returns it and a secret
    /// the connector generated (to show once).
    ///
    /// # Errors
    /// `Invalid` naming each wrong field.
    pub async fn create_destination(
        &self,
        actor: &Actor,
        publisher: &PublisherId,
        name: String,
        kind: &str,
        settings: serde_json::Value,
        offers: Option<Vec<OfferId>>,
    ) -> OpsResult<(DestinationRecord, Option<String>)> {
        let mut errors = Vec::new();
        let name = name.trim().to_owned();
        if name.is_empty() || name.len() > 200 {
            errors.push(FieldError::new("name", "must be 1-200 characters"));
        }
        // A retired kind and an unknown one get the registry's own answers.
        let connector = self.destinations.connector(kind).map_err(|e| OpsError::field("kind", e.to_string()))?;
        self.require_publisher(publisher).await?;
        let max = self.policy.max_destinations_per_publisher;
        if self.storage.list_destinations(publisher).await?.len() >= max {
            return Err(OpsError::field(
                "destinations",
                format!(
                    "a publisher may have at most {max} destinations (rule: delivery.max_destinations_per_publisher); \
                     one destination can take the leads of several offers"
                ),
            ));
        }
        let catalog = self.catalog(publisher).await?;
        if let Some(list) = &offers {
            for (i, o) in list.iter().enumerate() {
                if !o.belongs_to(publisher) {
                    errors.push(FieldError::new(
                        format!("offers[{i}]"),
                        format!("must be an offer of publisher '{publisher}'"),
                    ));
                } else if !catalog.offers.iter().any(|known| &known.id == o) {
                    errors.push(FieldError::new(format!("offers[{i}]"), "is not a known offer of this publisher"));
                }
            }
        }
        let prepared = match connector.prepare(settings, self.policy.network) {
            Ok(p) => Some(p),
            Err(mut field_errors) => {
                errors.append(&mut field_errors);
                None
            }
        };
        if !errors.is_empty() {
            return Err(OpsError::Invalid(errors));
        }
        let prepared = prepared.expect("no errors means settings were prepared");
        let now = self.clock.now();
        let record = DestinationRecord {
            id: DestinationId::generate(now),
            publisher: publisher.clone(),
            name,
            kind: kind.to_owned(),
            settings: prepared.stored,
            offers,
            enabled: true,
            disabled_reason: None,
            consecutive_failures: 0,
            failing_since: None,
            created_at: now,
            updated_at: now,
        };
        self.storage.create_destination(&record).await?;
        self.forget_catalog(publisher);
        let entry = self.audit_entry(actor, Some(publisher), AuditAction::DestinationCreate);
        self.record(entry.object(AuditObject::Destination(record.id.clone()))).await?;
        Ok((record, prepared.generated_secret))
    }

    /// One destination.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn get_destination(&self, id: &DestinationId) -> OpsResult<DestinationRecord> {
        match self.storage.get_destination(id).await {
            Err(StorageError::NotFound) => Err(OpsError::NotFound("destination")),
            other => Ok(other?),
        }
    }

    /// A publisher's destinations.
    ///
    /// # Errors
    /// `NotFound` for an unknown publisher.
    pub async fn list_destinations(&self, publisher: &PublisherId) -> OpsResult<Vec<DestinationRecord>> {
        self.require_publisher(publisher).await?;
        Ok(self.storage.list_destinations(publisher).await?)
    }

    /// Enables or disables a destination. Disabling keeps its queue; enabling delivers it.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn set_destination_enabled(
        &self,
        actor: &Actor,
        id: &DestinationId,
        enabled: bool,
    ) -> OpsResult<DestinationRecord> {
        let d = self.get_destination(id).await?;
        let reason = (!enabled).then_some("disabled by an operator");
        self.storage.set_destination_enabled(id, enabled, reason, self.clock.now()).await?;
        self.forget_catalog(&d.publisher);
        self.wake.notify_one();
        let action = if enabled { AuditAction::DestinationEnable } else { AuditAction::DestinationDisable };
        let entry = self.audit_entry(actor, Some(&d.publisher), action);
        self.record(entry.object(AuditObject::Destination(id.clone()))).await?;
        self.get_destination(id).await
    }

    /// Sends a test lead in the marketplace's test format to one destination now and reports
    /// the destination's answer. The test lead is stored (flagged `is_test`) so it can be found.
    ///
    /// # Errors
    /// `NotFound` for an unknown destination; storage failures.
    pub async fn validate_destination(&self, actor: &Actor, id: &DestinationId) -> OpsResult<Validation> {
        let record = self.get_destination(id).await?;
        let catalog = self.catalog(&record.publisher).await?;
        let offer = match &record.offers {
            Some(list) => catalog.offers.iter().find(|o| list.contains(&o.id)),
            None => catalog.offers.first(),
        };
        let validation = self.send_test_lead(&record, offer).await?;
        let entry = self.audit_entry(actor, Some(&record.publisher), AuditAction::DestinationValidate);
        self.record(entry.object(AuditObject::Destination(id.clone()))).await?;
        Ok(validation)
    }

    pub(super) async fn send_test_lead(
        &self,
        record: &DestinationRecord,
        offer: Option<&Offer>,
    ) -> OpsResult<Validation> {
        let now = self.clock.now();
        let lead = self.store_test_lead(&record.publisher, offer).await?;
        let result = match self.destinations.build(record) {
            Ok(destination) => {
                destination.send(&lead, leadrelay_core::destination::SendContext { attempt: 1, now }).await
            }
            Err(e) => Err(e),
        };
        Ok(match result {
            Ok(ok) => Validation { lead_id: lead.id, status: ok.status, error: None, note: ok.note },
            Err(e) => Validation {
                lead_id: lead.id,
                status: e.status,
                error: Some((e.message.clone(), e.hint())),
                note: None,
            },
        })
    }
}
