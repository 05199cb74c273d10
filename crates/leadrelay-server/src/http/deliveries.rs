//! Deliveries: the dead-letter list and manual retry.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use leadrelay_core::access::Scope;
use leadrelay_core::storage::{DeliveryFilter, DeliveryStatus};
use leadrelay_core::{DeliveryId, DestinationId, PublisherId};
use serde_json::{Value, json};

use crate::http::error::ApiError;
use crate::http::extract::Caller;
use crate::http::leads::delivery_out;
use crate::http::query::Query;
use crate::state::AppState;

/// `GET /v1/deliveries?status=dead&destination=…`
pub async fn list_deliveries(
    caller: Caller,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &["status", "destination", "publisher", "limit", "cursor"])?;
    let filter = DeliveryFilter {
        publisher: caller.visible_publisher(q.parsed("publisher", PublisherId::parse)?)?,
        status: q.parsed("status", |s| DeliveryStatus::parse(s).ok_or("must be pending, delivered or dead"))?,
        destination: q.parsed("destination", |s| DestinationId::parse(s).ok_or("is not a destination id (dst_…)"))?,
    };
    let page = state.ops.list_deliveries(&filter, &q.page()?).await?;
    Ok(Json(
        json!({ "items": page.items.iter().map(delivery_out).collect::<Vec<_>>(), "next_cursor": page.next_cursor }),
    ))
}

/// `GET /v1/deliveries/{id}`
pub async fn get_delivery(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = DeliveryId::parse(&id).ok_or(ApiError::NotFound("delivery"))?;
    let delivery = state.ops.get_delivery(&id).await?;
    caller.check(&delivery.publisher, Scope::Read, "delivery")?;
    Ok(Json(delivery_out(&delivery)))
}

/// `POST /v1/deliveries/{id}/retry` → 202 with the delivery, due now.
pub async fn retry_delivery(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = DeliveryId::parse(&id).ok_or(ApiError::NotFound("delivery"))?;
    caller.check(&state.ops.get_delivery(&id).await?.publisher, Scope::Write, "delivery")?;
    let d = state.ops.retry_delivery(&id).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery_out(&d))))
}
