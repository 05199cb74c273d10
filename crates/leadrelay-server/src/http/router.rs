//! Every route of the API, in one place.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;

use crate::http::error::{ApiError, InternalCause};
use crate::http::{customers, deliveries, destinations, events, health, ingest, lead_csv, leads, publishers};
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The application router with its middleware.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.server.max_body_bytes;
    let timeout = Duration::from_millis(state.config.server.request_timeout_ms);
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/v1/publishers", post(publishers::create_publisher))
        .route("/v1/publishers/{publisher}/offers/{offer_id}", put(publishers::put_offer).get(publishers::get_offer))
        .route(
            "/v1/publishers/{publisher}/destinations",
            post(destinations::create_destination).get(destinations::list_destinations),
        )
        .route("/v1/publishers/{publisher}/offers/{offer_id}/publish", post(publishers::publish_offer))
        .route("/v1/publishers/{publisher}/ingest-keys", post(publishers::create_ingest_key))
        .route("/v1/publishers/{publisher}/tokens", post(publishers::create_token))
        .route("/v1/publishers/{publisher}/tokens/{id}", axum::routing::delete(publishers::revoke_token))
        .route("/v1/marketplace/tokens", post(publishers::create_marketplace_token))
        .route("/v1/publishers/{publisher}/ingest-keys/{id}", axum::routing::delete(publishers::revoke_ingest_key))
        .route("/v1/ingest/microsoft/{key}", post(ingest::ingest_microsoft))
        .route("/v1/marketplace/events", post(events::create_event))
        .route("/v1/leads", post(leads::create_leads).get(leads::list_leads))
        .route("/v1/leads/export.csv", get(lead_csv::export_leads))
        .route(
            "/v1/leads/import.csv",
            post(lead_csv::import_leads).layer(DefaultBodyLimit::max(lead_csv::MAX_IMPORT_BYTES)),
        )
        .route("/v1/leads/{id}", get(leads::get_lead))
        .route("/v1/customers/{id}", get(customers::get_customer))
        .route("/v1/customers/{id}/split", post(customers::split_customer))
        .route("/v1/destinations/{id}", get(destinations::get_destination))
        .route("/v1/destinations/{id}/enable", post(destinations::enable_destination))
        .route("/v1/destinations/{id}/disable", post(destinations::disable_destination))
        .route("/v1/destinations/{id}/replay", post(destinations::replay_destination))
        .route("/v1/destinations/{id}/validate", post(destinations::validate_destination))
        .route("/v1/deliveries", get(deliveries::list_deliveries))
        .route("/v1/deliveries/{id}", get(deliveries::get_delivery))
        .route("/v1/deliveries/{id}/retry", post(deliveries::retry_delivery))
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(log_request))
        .layer(CatchPanicLayer::custom(|_| ApiError::Internal("handler panicked".into()).into_response()))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, timeout))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// One line per request: method, the *matched* route (never the raw path, which can hold an
/// ingest key), status, duration and request id; the cause of a 500 is logged here, once.
async fn log_request(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().map_or("<unmatched>", |p| p.as_str()).to_owned();
    let request_id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let duration_ms = started.elapsed().as_millis() as u64;
    if let Some(InternalCause(cause)) = response.extensions().get::<InternalCause>() {
        tracing::error!(request_id, %method, route, http.status_code = status, duration_ms, error = %cause, "request failed");
    } else if status >= 500 {
        tracing::warn!(request_id, %method, route, http.status_code = status, duration_ms, "request");
    } else {
        tracing::debug!(request_id, %method, route, http.status_code = status, duration_ms, "request");
    }
    response
}
