//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::error::ApiError;
use crate::state::AppState;

/// `{"status": "ok"}` or `{"status": "ready"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthOut {
    #[schema(schema_with = states)]
    status: &'static str,
}

fn states() -> utoipa::openapi::Object {
    crate::http::openapi::string_enum(["ok", "ready"])
}

/// `GET /healthz`: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "Alive", body = HealthOut)))]
pub async fn healthz() -> Json<HealthOut> {
    Json(HealthOut { status: "ok" })
}

/// `GET /readyz`: storage answers, can be written, and (SQLite) has room to grow.
///
/// # Errors
/// 503 when it cannot; the log says why.
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200, description = "Ready", body = HealthOut)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<HealthOut>, ApiError> {
    state.ops.storage().ping().await.map_err(|e| {
        tracing::warn!(error = %e, "not ready: the storage check failed");
        ApiError::Unavailable
    })?;
    Ok(Json(HealthOut { status: "ready" }))
}
