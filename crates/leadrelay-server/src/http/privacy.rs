//! `GET /v1/privacy/export?email=`: everything held about one person, for a data subject's
//! request. The admin token sees every publisher's data; a publisher token with `read`, its
//! own. The address is in the query because that is where the route takes it: the request log
//! records the route's template, never the query.

use axum::Json;
use axum::extract::{RawQuery, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::error::ApiError;
use crate::http::extract::Caller;
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
