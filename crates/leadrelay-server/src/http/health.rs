//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::http::error::ApiError;
use crate::state::AppState;

/// `GET /healthz`: the process answers.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: storage answers too.
///
/// # Errors
/// 503 when storage does not answer.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.ops.storage().ping().await.map_err(|_| ApiError::Unavailable)?;
    Ok(Json(json!({ "status": "ready" })))
}
