//! A data subject's requests: `GET /v1/privacy/export?email=` (everything held about one
//! person) and `POST /v1/privacy/erase` (its erasure). The admin token sees every publisher's data; a publisher token with `read`, its
//! own. The address is in the query because that is where the route takes it: the request log
//! records the route's template, never the query.

use axum::Json;
use axum::extract::{RawQuery, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::error::ApiError;
use crate::http::extract::{Caller, ValidJson};
use crate::http::leads::LeadDetailOut;
use crate::http::query::Query;
use crate::state::AppState;

/// `GET /v1/privacy/export` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SubjectExportQuery {
    /// The person's email address (any case).
    email: String,
    /// Only this publisher's data (a publisher token sees only its own).
    publisher: Option<String>,
}

/// Everything held about one person.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectExportOut {
    /// How many leads hold the address.
    pub lead_count: usize,
    /// Each lead with its deliveries (destination, status, times) and attempts, oldest first.
    pub leads: Vec<LeadDetailOut>,
}

/// `GET /v1/privacy/export` → 200 with every lead held about the address.
#[utoipa::path(
    get, path = "/v1/privacy/export", tag = "privacy",
    params(SubjectExportQuery),
    responses((status = 200, description = "Everything held about the address", body = SubjectExportOut)),
    security(("bearer" = []))
)]
pub async fn export_subject(
    caller: Caller,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<SubjectExportOut>, ApiError> {
    let q = Query::parse_for::<SubjectExportQuery>(raw.as_deref())?;
    let asked = q.parsed("publisher", leadrelay_core::PublisherId::parse)?;
    let publisher = caller.visible_publisher(asked)?;
    let email = q.text("email").ok_or_else(|| ApiError::field("email", "is required"))?;
    let export = state.ops.export_subject(&caller.actor(), publisher, email).await?;
    Ok(Json(SubjectExportOut {
        lead_count: export.leads.len(),
        leads: export.leads.iter().map(LeadDetailOut::from).collect(),
    }))
}

/// `POST /v1/privacy/erase` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseIn {
    /// The person's email address (any case).
    email: String,
    /// Only this publisher's data. A publisher token always erases in its own publisher; the
    /// admin erases in every publisher unless this names one.
    publisher: Option<String>,
}

/// What an erasure removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureOut {
    /// Leads whose personal data was removed.
    pub erased_leads: u64,
    /// Customers no longer matched by the address.
    pub erased_customers: u64,
    /// Pending deliveries cancelled before they sent the person's data.
    pub cancelled_deliveries: u64,
    /// Destinations that had already received the person: erase there too.
    pub delivered_to: Vec<String>,
}

/// `POST /v1/privacy/erase` → 200 with what was erased.
#[utoipa::path(
    post, path = "/v1/privacy/erase", tag = "privacy",
    request_body = EraseIn,
    responses((status = 200, description = "What was erased", body = ErasureOut)),
    security(("bearer" = []))
)]
pub async fn erase_person(
    caller: Caller,
    State(state): State<AppState>,
    ValidJson(input): ValidJson<EraseIn>,
) -> Result<Json<ErasureOut>, ApiError> {
    let asked = input
        .publisher
        .as_deref()
        .map(leadrelay_core::PublisherId::parse)
        .transpose()
        .map_err(|rule| ApiError::field("publisher", rule))?;
    let publisher = match &caller {
        Caller::Admin => asked,
        Caller::Publisher { id, .. } | Caller::User { publisher: id, .. } => {
            let own = asked.unwrap_or_else(|| id.clone());
            caller.check(&own, leadrelay_core::access::Scope::Write, "publisher")?;
            Some(own)
        }
        Caller::Marketplace { .. } => return Err(ApiError::NotFound("route")),
    };
    let report = state.ops.erase_person(&caller.actor(), publisher, &input.email).await?;
    Ok(Json(ErasureOut {
        erased_leads: report.leads,
        erased_customers: report.customers,
        cancelled_deliveries: report.cancelled_deliveries,
        delivered_to: report.delivered_to.iter().map(ToString::to_string).collect(),
    }))
}
