//! Destinations: create, read, enable/disable, replay.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use leadrelay_core::access::Scope;
use leadrelay_core::destination::DestinationRecord;
use leadrelay_core::storage::ReplayRequest;
use leadrelay_core::{DestinationId, OfferId, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::error::ApiError;
use crate::http::extract::{Body, Caller, parse_json, parse_optional_json};
use crate::http::publishers::publisher_from_path;
use crate::state::AppState;

/// `POST /v1/publishers/{publisher}/destinations` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationIn {
    name: String,
    kind: String,
    #[serde(default)]
    settings: Value,
    offers: Option<Vec<String>>,
}

/// A destination as the API shows it: secrets left out.
pub fn destination_out(state: &AppState, d: &DestinationRecord) -> Value {
    json!({
        "id": d.id.as_str(),
        "publisher": d.publisher.as_str(),
        "name": d.name,
        "kind": d.kind,
        "settings": state.ops.destinations().public_settings(&d.kind, &d.settings),
        "offers": d.offers.as_ref().map(|o| o.iter().map(OfferId::as_str).collect::<Vec<_>>()),
        "enabled": d.enabled,
        "disabled_reason": d.disabled_reason,
        "consecutive_failures": d.consecutive_failures,
        "failing_since": d.failing_since.map(Timestamp::to_rfc3339),
        "created_at": d.created_at.to_rfc3339(),
        "updated_at": d.updated_at.to_rfc3339(),
    })
}

/// `POST /v1/publishers/{publisher}/destinations` → 201. A secret the server generated is in
/// the answer this once.
pub async fn create_destination(
    caller: Caller,
    State(state): State<AppState>,
    Path(publisher): Path<String>,
    Body(body): Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let publisher = publisher_from_path(&publisher)?;
    caller.check(&publisher, Scope::Write, "publisher")?;
    let input: DestinationIn = parse_json(&body)?;
    let offers = input
        .offers
        .map(|list| {
            list.iter()
                .enumerate()
                .map(|(i, o)| OfferId::parse(o).map_err(|rule| ApiError::field(format!("offers[{i}]"), rule)))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let settings = if input.settings.is_null() { json!({}) } else { input.settings };
    let (record, generated) =
        state.ops.create_destination(&publisher, input.name, &input.kind, settings, offers).await?;
    let mut out = destination_out(&state, &record);
    if let Some(secret) = generated {
        out["generated_secret"] = json!(secret);
    }
    Ok((StatusCode::CREATED, Json(out)))
}

/// `GET /v1/publishers/{publisher}/destinations`
pub async fn list_destinations(
    caller: Caller,
    State(state): State<AppState>,
    Path(publisher): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let publisher = publisher_from_path(&publisher)?;
    caller.check(&publisher, Scope::Read, "publisher")?;
    let list = state.ops.list_destinations(&publisher).await?;
    Ok(Json(json!({ "items": list.iter().map(|d| destination_out(&state, d)).collect::<Vec<_>>() })))
}

fn destination_id(raw: &str) -> Result<DestinationId, ApiError> {
    DestinationId::parse(raw).ok_or(ApiError::NotFound("destination"))
}

/// The destination named in the path, if the caller may use it with `scope`.
async fn authorized(state: &AppState, caller: &Caller, raw: &str, scope: Scope) -> Result<DestinationRecord, ApiError> {
    let d = state.ops.get_destination(&destination_id(raw)?).await?;
    caller.check(&d.publisher, scope, "destination")?;
    Ok(d)
}

/// `GET /v1/destinations/{id}`
pub async fn get_destination(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let d = authorized(&state, &caller, &id, Scope::Read).await?;
    Ok(Json(destination_out(&state, &d)))
}

/// `POST /v1/destinations/{id}/enable`: resumes delivery, including the backlog.
pub async fn enable_destination(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let d = authorized(&state, &caller, &id, Scope::Write).await?;
    let d = state.ops.set_destination_enabled(&d.id, true).await?;
    Ok(Json(destination_out(&state, &d)))
}

/// `POST /v1/destinations/{id}/disable`: pauses delivery; leads keep queueing.
pub async fn disable_destination(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let d = authorized(&state, &caller, &id, Scope::Write).await?;
    let d = state.ops.set_destination_enabled(&d.id, false).await?;
    Ok(Json(destination_out(&state, &d)))
}

/// `POST /v1/destinations/{id}/validate` → 200 `{"ok": true}` or
/// `{"ok": false, "error": "...", "hint": "..."}` after sending a test lead now.
pub async fn validate_destination(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let d = authorized(&state, &caller, &id, Scope::Write).await?;
    let v = state.ops.validate_destination(&d.id).await?;
    let mut out = json!({ "ok": v.error.is_none(), "test_lead_id": v.lead_id.as_str(), "status_code": v.status });
    if let Some((error, hint)) = v.error {
        out["error"] = json!(error);
        out["hint"] = json!(hint);
    }
    if let Some(note) = v.note {
        out["note"] = json!(note);
    }
    Ok(Json(out))
}

/// `POST /v1/destinations/{id}/replay` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayIn {
    since: Option<String>,
    until: Option<String>,
    #[serde(default)]
    only_dead: bool,
}

/// `POST /v1/destinations/{id}/replay` → 202 `{"replayed": n}`.
pub async fn replay_destination(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(body): Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let destination = authorized(&state, &caller, &id, Scope::Write).await?.id;
    let input: ReplayIn = parse_optional_json(&body)?;
    let time = |name: &str, v: Option<String>| {
        v.as_deref().map(Timestamp::parse_rfc3339).transpose().map_err(|rule| ApiError::field(name, rule))
    };
    let request = ReplayRequest {
        destination,
        since: time("since", input.since)?,
        until: time("until", input.until)?,
        only_dead: input.only_dead,
    };
    let n = state.ops.replay(request).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "replayed": n }))))
}
