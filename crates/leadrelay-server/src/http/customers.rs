//! Customers: the merged timeline of one buyer's leads, and undoing a wrong merge.

use axum::Json;
use axum::extract::{Path, State};
use leadrelay_core::access::Scope;
use leadrelay_core::storage::CustomerDetail;
use leadrelay_core::{CustomerId, LeadId};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::error::ApiError;
use crate::http::extract::{Body, Caller, parse_json};
use crate::http::leads::lead_out;
use crate::state::AppState;

fn customer_out(c: &CustomerDetail) -> Value {
    json!({
        "id": c.id.as_str(),
        "publisher": c.publisher.as_str(),
        "created_at": c.created_at.to_rfc3339(),
        "lead_count": c.leads.len(),
        "timeline": c.leads.iter().map(lead_out).collect::<Vec<_>>(),
    })
}

fn customer_id(raw: &str) -> Result<CustomerId, ApiError> {
    CustomerId::parse(raw).ok_or(ApiError::NotFound("customer"))
}

/// `GET /v1/customers/{id}`: the customer with its leads across offers, oldest first.
pub async fn get_customer(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let customer = state.ops.get_customer(&customer_id(&id)?).await?;
    caller.check(&customer.publisher, Scope::Read, "customer")?;
    Ok(Json(customer_out(&customer)))
}

/// `POST /v1/customers/{id}/split` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitIn {
    lead_ids: Vec<String>,
}

/// `POST /v1/customers/{id}/split` → 200 with the new customer holding `lead_ids`.
pub async fn split_customer(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(body): Body,
) -> Result<Json<Value>, ApiError> {
    let id = customer_id(&id)?;
    caller.check(&state.ops.get_customer(&id).await?.publisher, Scope::Write, "customer")?;
    let input: SplitIn = parse_json(&body)?;
    let leads = input
        .lead_ids
        .iter()
        .enumerate()
        .map(|(i, l)| {
            LeadId::parse(l).ok_or_else(|| ApiError::field(format!("lead_ids[{i}]"), "is not a lead id (lead_…)"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(customer_out(&state.ops.split_customer(&id, leads).await?)))
}
