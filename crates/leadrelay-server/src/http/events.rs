//! `POST /v1/marketplace/events`: the marketplace operator reports a customer action; it becomes
//! a lead in the marketplace's own format for the offer's publisher (`ops::report_event`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use leadrelay_core::marketplace::{CustomerAction, Marketplace};
use leadrelay_core::{LeadId, OfferId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::error::ApiError;
use crate::http::extract::{EventReporter, ValidJson, object};
use crate::http::leads::CustomerIn;
use crate::http::openapi::string_enum;
use crate::ops::MarketplaceEvent;
use crate::state::AppState;

/// A marketplace event.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    /// `publisherid.offerid` of a registered offer.
    #[schema(pattern = "^[a-z0-9_-]{1,64}\\.[a-z0-9_-]{1,128}$")]
    offer: String,
    /// Where the customer acted.
    #[schema(schema_with = marketplaces)]
    marketplace: String,
    /// What the customer did.
    #[schema(schema_with = actions)]
    action: String,
    #[serde(default, deserialize_with = "object")]
    customer: CustomerIn,
    /// Must be `true`: the customer agreed to share their details with the publisher.
    consent: Option<bool>,
    /// The customer's notes (the lead's `description`).
    notes: Option<String>,
    campaign: Option<String>,
}

fn marketplaces() -> utoipa::openapi::Object {
    string_enum(Marketplace::ALL.map(Marketplace::as_str))
}

fn actions() -> utoipa::openapi::Object {
    string_enum(CustomerAction::ALL.map(CustomerAction::as_str))
}

impl EventIn {
    /// The event this body reports.
    ///
    /// # Errors
    /// 422 naming `marketplace`, `action` or `offer` when one is not a known value.
    pub fn into_event(self) -> Result<MarketplaceEvent, ApiError> {
        let marketplace = Marketplace::parse(&self.marketplace)
            .ok_or_else(|| one_of("marketplace", Marketplace::ALL.map(Marketplace::as_str)))?;
        let action = CustomerAction::parse(&self.action)
            .ok_or_else(|| one_of("action", CustomerAction::ALL.map(CustomerAction::as_str)))?;
        let offer = OfferId::parse(&self.offer).map_err(|rule| ApiError::field("offer", rule))?;
        Ok(MarketplaceEvent {
            offer,
            marketplace,
            action,
            customer: self.customer.into(),
            consent: self.consent,
            notes: self.notes,
            campaign: self.campaign,
        })
    }
}

/// The lead an event became.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventOut {
    id: String,
    lead_source: String,
    action_code: Option<String>,
    stage: String,
    customer_id: Option<String>,
    duplicate_of: Option<String>,
}

fn one_of(name: &str, all: impl IntoIterator<Item = &'static str>) -> ApiError {
    ApiError::field(name, format!("must be one of: {}", all.into_iter().collect::<Vec<_>>().join(", ")))
}

/// `POST /v1/marketplace/events` → 202 with the lead it became.
#[utoipa::path(
    post, path = "/v1/marketplace/events", tag = "marketplace",
    request_body = EventIn,
    responses((status = 202, description = "The lead it became", body = EventOut)),
    security(("bearer" = []))
)]
pub async fn create_event(
    _reporter: EventReporter,
    State(state): State<AppState>,
    ValidJson(input): ValidJson<EventIn>,
) -> Result<(StatusCode, Json<EventOut>), ApiError> {
    let lead = state.ops.report_event(input.into_event()?).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(EventOut {
            id: lead.id.to_string(),
            lead_source: lead.lead_source_string(),
            action_code: lead.action.as_ref().map(|a| a.as_str().to_owned()),
            stage: lead.stage.as_str().to_owned(),
            customer_id: lead.customer_id.as_ref().map(|c| c.to_string()),
            duplicate_of: lead.duplicate_of.as_ref().map(LeadId::to_string),
        }),
    ))
}
