//! Deliveries: the dead-letter list and manual retry.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use leadrelay_core::access::Scope;
use leadrelay_core::storage::{DeliveryFilter, DeliveryStatus};
use leadrelay_core::{DeliveryId, DestinationId, PublisherId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::error::ApiError;
use crate::http::extract::{Caller, PathParams};
use crate::http::leads::DeliveryOut;
use crate::http::query::Query;
use crate::state::AppState;

/// `GET /v1/deliveries` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct DeliveryListQuery {
    /// `pending`, `delivered` or `dead`.
    #[param(inline, schema_with = statuses)]
    status: Option<String>,
    /// `dst_…`
    destination: Option<String>,
    /// Only this publisher's (a publisher token sees only its own).
    publisher: Option<String>,
    /// Page size.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

fn statuses() -> utoipa::openapi::Object {
    crate::http::openapi::string_enum(["pending", "delivered", "dead"])
}

/// A page of deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPageOut {
    items: Vec<DeliveryOut>,
    /// Pass back as `cursor`; `null` at the end.
    next_cursor: Option<String>,
}

/// The delivery filter from query parameters, limited to what the caller may see.
///
/// # Errors
/// 422 naming a bad parameter; 404/403 from the caller's limits.
pub fn delivery_filter(q: &Query, caller: &Caller) -> Result<DeliveryFilter, ApiError> {
    Ok(DeliveryFilter {
        publisher: caller.visible_publisher(q.parsed("publisher", PublisherId::parse)?)?,
        status: q.parsed("status", |s| DeliveryStatus::parse(s).ok_or("must be pending, delivered or dead"))?,
        destination: q.parsed("destination", |s| DestinationId::parse(s).ok_or("is not a destination id (dst_…)"))?,
    })
}

/// `GET /v1/deliveries?status=dead&destination=…`
#[utoipa::path(
    get, path = "/v1/deliveries", tag = "deliveries",
    params(DeliveryListQuery),
    responses((status = 200, description = "A page of deliveries", body = DeliveryPageOut)),
    security(("bearer" = []))
)]
pub async fn list_deliveries(
    caller: Caller,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<DeliveryPageOut>, ApiError> {
    let q = Query::parse_for::<DeliveryListQuery>(raw.as_deref())?;
    let filter = delivery_filter(&q, &caller)?;
    let page = state.ops.list_deliveries(&filter, &q.page()?).await?;
    Ok(Json(DeliveryPageOut {
        items: page.items.iter().map(DeliveryOut::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// `GET /v1/deliveries/{id}`
#[utoipa::path(
    get, path = "/v1/deliveries/{id}", tag = "deliveries",
    params(("id" = String, Path, description = "`dlv_…`")),
    responses((status = 200, description = "The delivery", body = DeliveryOut)),
    security(("bearer" = []))
)]
pub async fn get_delivery(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<DeliveryOut>, ApiError> {
    let id = DeliveryId::parse(&id).ok_or(ApiError::NotFound("delivery"))?;
    let delivery = state.ops.get_delivery(&id).await?;
    caller.check(&delivery.publisher, Scope::Read, "delivery")?;
    Ok(Json(DeliveryOut::from(&delivery)))
}

/// `POST /v1/deliveries/{id}/retry` → 202 with the delivery, due now.
#[utoipa::path(
    post, path = "/v1/deliveries/{id}/retry", tag = "deliveries",
    params(("id" = String, Path, description = "`dlv_…`")),
    responses(
        (status = 202, description = "Due now, with a fresh attempt budget", body = DeliveryOut),
        (status = 409, description = "It is being attempted right now", body = crate::http::error::ErrorOut),
    ),
    security(("bearer" = []))
)]
pub async fn retry_delivery(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<(StatusCode, Json<DeliveryOut>), ApiError> {
    let id = DeliveryId::parse(&id).ok_or(ApiError::NotFound("delivery"))?;
    caller.check(&state.ops.get_delivery(&id).await?.publisher, Scope::Write, "delivery")?;
    let d = state.ops.retry_delivery(&caller.actor(), &id).await?;
    Ok((StatusCode::ACCEPTED, Json(DeliveryOut::from(&d))))
}
