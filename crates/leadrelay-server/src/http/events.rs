//! `POST /v1/marketplace/events`: the marketplace operator reports a customer action; it becomes
//! a lead in the marketplace's own format for the offer's publisher.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use leadrelay_core::marketplace::{CustomerAction, Marketplace};
use leadrelay_core::{LeadDraft, LeadId, LeadSource, OfferId};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::error::ApiError;
use crate::http::extract::{Body, Caller, parse_json};
use crate::http::leads::CustomerIn;
use crate::ops::LeadSubmission;
use crate::state::AppState;

/// A marketplace event.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    offer: String,
    marketplace: String,
    action: String,
    #[serde(default)]
    customer: CustomerIn,
    consent: Option<bool>,
    notes: Option<String>,
    campaign: Option<String>,
}

/// `POST /v1/marketplace/events` → 202
/// `{"id","lead_source","action_code","stage","customer_id","duplicate_of"}`.
pub async fn create_event(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if !matches!(caller, Caller::Admin | Caller::Marketplace) {
        return Err(ApiError::Forbidden("marketplace events need a marketplace token or the admin token".to_owned()));
    }
    let input: EventIn = parse_json(&body)?;
    let marketplace = Marketplace::parse(&input.marketplace).ok_or_else(|| {
        let all: Vec<&str> = Marketplace::ALL.iter().map(|m| m.as_str()).collect();
        ApiError::field("marketplace", format!("must be one of: {}", all.join(", ")))
    })?;
    let action = CustomerAction::parse(&input.action).ok_or_else(|| {
        let all: Vec<&str> = CustomerAction::ALL.iter().map(|a| a.as_str()).collect();
        ApiError::field("action", format!("must be one of: {}", all.join(", ")))
    })?;
    if input.consent != Some(true) {
        return Err(ApiError::field(
            "consent",
            "must be true: a lead is shared with the publisher only when the customer agreed to it",
        ));
    }
    let offer_id = OfferId::parse(&input.offer).map_err(|rule| ApiError::field("offer", rule))?;
    let customer = input.customer.into_customer("customer")?;
    let offer = state.ops.find_offer(&offer_id).await?;
    let lead_source = LeadSource {
        source: marketplace.source(),
        action: Some(action.action_code()),
        offer: Some(offer.id.to_string()),
    };
    let draft = LeadDraft {
        publisher: Some(offer.publisher.clone()),
        offer: None,
        offer_title: Some(offer.title.clone()),
        lead_source: Some(lead_source.to_string()),
        action_code: None,
        customer,
        description: input.notes,
        campaign: input.campaign,
        is_test: false,
    };
    let leads =
        state.ops.accept_leads(vec![LeadSubmission { draft, offer_hint: Some(offer.id.to_string()) }], None).await?;
    let lead = &leads[0];
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "id": lead.id.as_str(),
            "lead_source": lead.lead_source_string(),
            "action_code": lead.action.as_ref().map(|a| a.as_str()),
            "stage": lead.stage.as_str(),
            "customer_id": lead.customer_id.as_ref().map(|c| c.as_str()),
            "duplicate_of": lead.duplicate_of.as_ref().map(LeadId::as_str),
        })),
    ))
}
