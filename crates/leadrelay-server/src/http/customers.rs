//! Customers: the merged timeline of one buyer's leads, and undoing a wrong merge.

use axum::Json;
use axum::extract::State;
use leadrelay_core::access::Scope;
use leadrelay_core::audit::{AuditAction, AuditObject};
use leadrelay_core::storage::CustomerDetail;
use leadrelay_core::{CustomerId, LeadId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::error::ApiError;
use crate::http::extract::{Caller, PathParams, ValidJson};
use crate::http::leads::LeadOut;
use crate::state::AppState;

/// A customer with its leads, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerDetailOut {
    id: String,
    publisher: String,
    #[schema(format = DateTime)]
    created_at: String,
    lead_count: usize,
    timeline: Vec<LeadOut>,
}

impl From<&CustomerDetail> for CustomerDetailOut {
    fn from(c: &CustomerDetail) -> Self {
        Self {
            id: c.id.to_string(),
            publisher: c.publisher.to_string(),
            created_at: c.created_at.to_rfc3339(),
            lead_count: c.leads.len(),
            timeline: c.leads.iter().map(LeadOut::from).collect(),
        }
    }
}

fn customer_id(raw: &str) -> Result<CustomerId, ApiError> {
    CustomerId::parse(raw).ok_or(ApiError::NotFound("customer"))
}

/// `GET /v1/customers/{id}`: the customer with its leads across offers, oldest first.
#[utoipa::path(
    get, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "`cus_…`")),
    responses((status = 200, description = "The customer", body = CustomerDetailOut)),
    security(("bearer" = []))
)]
pub async fn get_customer(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<CustomerDetailOut>, ApiError> {
    let customer = state.ops.get_customer(&customer_id(&id)?).await?;
    caller.check(&customer.publisher, Scope::Read, "customer")?;
    let entry = state.ops.audit_entry(&caller.actor(), Some(&customer.publisher), AuditAction::CustomerRead);
    state.ops.record(entry.object(AuditObject::Customer(customer.id.clone()))).await?;
    Ok(Json(CustomerDetailOut::from(&customer)))
}

/// `POST /v1/customers/{id}/split` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitIn {
    /// Leads of this customer (`lead_…`) that move to a new customer.
    lead_ids: Vec<String>,
}

/// `POST /v1/customers/{id}/split` → 200 with the new customer holding `lead_ids`.
#[utoipa::path(
    post, path = "/v1/customers/{id}/split", tag = "customers",
    params(("id" = String, Path, description = "`cus_…`")),
    request_body = SplitIn,
    responses(
        (status = 200, description = "The new customer", body = CustomerDetailOut),
        (status = 409, description = "The customer changed meanwhile", body = crate::http::error::ErrorOut),
    ),
    security(("bearer" = []))
)]
pub async fn split_customer(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    ValidJson(input): ValidJson<SplitIn>,
) -> Result<Json<CustomerDetailOut>, ApiError> {
    let id = customer_id(&id)?;
    caller.check(&state.ops.get_customer(&id).await?.publisher, Scope::Write, "customer")?;
    let leads = input
        .lead_ids
        .iter()
        .enumerate()
        .map(|(i, l)| {
            LeadId::parse(l).ok_or_else(|| ApiError::field(format!("lead_ids[{i}]"), "is not a lead id (lead_…)"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(CustomerDetailOut::from(&state.ops.split_customer(&caller.actor(), &id, leads).await?)))
}
