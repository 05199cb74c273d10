//! Every route of the API, in one place. Routes are registered with `routes!`, which takes
//! each handler's `#[utoipa::path]` along, so the OpenAPI document describes exactly what is
//! served.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::{Extension, Router, middleware};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::http::error::ApiError;
use crate::http::extract::BodyLimit;
use crate::http::middleware::{self as mw, REQUEST_ID};
use crate::http::openapi::{self, ApiDoc};
use crate::http::{
    audit, customers, deliveries, destinations, events, health, ingest, lead_csv, leads, metrics, people, privacy,
    publishers, sales,
};
use crate::state::AppState;

/// The routes and the OpenAPI document describing them (before [`openapi::finish`]).
fn routes() -> OpenApiRouter<AppState> {
    let import = routes!(lead_csv::import_leads).map(|r| {
        r.layer::<_, Infallible>(DefaultBodyLimit::max(lead_csv::MAX_IMPORT_BYTES))
            .layer::<_, Infallible>(Extension(BodyLimit(lead_csv::MAX_IMPORT_BYTES)))
    });
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::get_metrics))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(openapi::docs_page))
        .routes(routes!(publishers::create_publisher))
        .routes(routes!(publishers::put_offer, publishers::get_offer))
        .routes(routes!(destinations::create_destination, destinations::list_destinations))
        .routes(routes!(publishers::publish_offer))
        .routes(routes!(publishers::create_ingest_key))
        .routes(routes!(publishers::create_token))
        .routes(routes!(publishers::revoke_token))
        .routes(routes!(publishers::create_marketplace_token))
        .routes(routes!(publishers::revoke_ingest_key))
        .routes(routes!(ingest::ingest_microsoft))
        .routes(routes!(events::create_event))
        .routes(routes!(leads::create_leads, leads::list_leads))
        .routes(routes!(lead_csv::export_leads))
        .routes(import)
        .routes(routes!(leads::get_lead))
        .routes(routes!(customers::get_customer))
        .routes(routes!(customers::split_customer))
        .routes(routes!(destinations::get_destination))
        .routes(routes!(destinations::enable_destination))
        .routes(routes!(destinations::disable_destination))
        .routes(routes!(destinations::replay_destination))
        .routes(routes!(destinations::validate_destination))
        .routes(routes!(deliveries::list_deliveries))
        .routes(routes!(deliveries::get_delivery))
        .routes(routes!(deliveries::retry_delivery))
        .routes(routes!(audit::list_audit))
        .routes(routes!(privacy::export_subject))
        .routes(routes!(privacy::erase_person))
        .routes(routes!(sales::get_sales_settings, sales::put_sales_settings))
        .routes(routes!(sales::list_opportunities))
        .routes(routes!(sales::get_opportunity, sales::patch_opportunity))
        .routes(routes!(sales::add_activity))
        .routes(routes!(sales::tick_checklist))
        .routes(routes!(sales::get_kpis))
        .routes(routes!(people::create_user, people::list_users))
        .routes(routes!(people::create_session))
        .routes(routes!(people::get_current_session, people::delete_current_session))
        .routes(routes!(people::accept_invitation))
}

/// The OpenAPI document of this build's API, `kinds` being its destination kinds.
pub fn document(kinds: &[&str]) -> openapi::ApiDocument {
    let (_, api) = routes().split_for_parts();
    openapi::finish(api, kinds)
}

/// The application router with its middleware.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.server.max_body_bytes;
    let timeout = Duration::from_millis(state.config.server.request_timeout_ms);
    let (routes, api) = routes().split_for_parts();
    let kinds: Vec<&str> = state.ops.destinations().kinds().collect();
    let doc = Arc::new(openapi::finish(api, &kinds));
    routes
        .merge(crate::dashboard::router())
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(Extension(doc))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(RequestDecompressionLayer::new())
        .layer(middleware::from_fn(mw::check_content_encoding))
        .layer(CatchPanicLayer::custom(|_| ApiError::Internal("handler panicked".into()).into_response()))
        .layer(middleware::from_fn_with_state(timeout, mw::timeout))
        .layer(middleware::from_fn(mw::limit_request_head))
        .layer(middleware::from_fn(mw::log_request))
        .layer(middleware::from_fn(mw::record_metrics))
        .layer(middleware::from_fn(mw::envelope_bare_errors))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(middleware::from_fn(mw::secure_headers))
        .with_state(state)
}
