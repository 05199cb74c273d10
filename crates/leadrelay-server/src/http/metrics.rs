//! `GET /metrics`: the Prometheus text exposition. Admin token only: the labels name every
//! publisher and destination of the installation.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::http::extract::AdminCaller;
use crate::state::AppState;
use crate::telemetry::metrics::CONTENT_TYPE;

/// `GET /metrics` (admin token): every metric of this process, with the outbox depths and
/// destination counts read from storage at most once per `telemetry.metrics_cache_ms`.
#[utoipa::path(
    get, path = "/metrics", tag = "metrics",
    responses((
        status = 200,
        description = "The Prometheus text exposition format (version 0.0.4)",
        content_type = "text/plain",
        body = String
    )),
    security(("bearer" = []))
)]
pub async fn get_metrics(_admin: AdminCaller, State(state): State<AppState>) -> Response {
    state.ops.publish_outbox_gauges().await;
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], state.metrics.render()).into_response()
}
