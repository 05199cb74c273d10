//! Destinations: create, read, enable/disable, validate, replay.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use leadrelay_core::access::Scope;
use leadrelay_core::destination::DestinationRecord;
use leadrelay_core::storage::ReplayRequest;
use leadrelay_core::{DestinationId, OfferId, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::http::error::ApiError;
use crate::http::extract::{Caller, OptionalJson, PathParams, ValidJson};
use crate::http::publishers::publisher_from_path;
use crate::state::AppState;

/// `POST /v1/publishers/{publisher}/destinations` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationIn {
    /// 1-200 characters.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// The connector (`https`, `email`, `azure_table`, `salesforce`, `dynamics365`, `marketo`,
    /// and any this build adds; the document lists this server's).
    kind: String,
    /// The kind's settings (see docs/API.md); secrets are write-only.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    settings: Value,
    /// Registered offers of this publisher it applies to; absent: every offer.
    offers: Option<Vec<String>>,
}

/// A destination as the API shows it: secrets left out.
#[derive(Debug, Serialize, ToSchema)]
pub struct DestinationOut {
    id: String,
    publisher: String,
    name: String,
    kind: String,
    /// The settings without their secrets.
    #[schema(value_type = Object)]
    settings: Value,
    offers: Option<Vec<String>>,
    enabled: bool,
    disabled_reason: Option<String>,
    consecutive_failures: u32,
    #[schema(format = DateTime)]
    failing_since: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

impl DestinationOut {
    fn new(state: &AppState, d: &DestinationRecord) -> Self {
        Self {
            id: d.id.to_string(),
            publisher: d.publisher.to_string(),
            name: d.name.clone(),
            kind: d.kind.clone(),
            settings: state.ops.destinations().public_settings(&d.kind, &d.settings),
            offers: d.offers.as_ref().map(|o| o.iter().map(OfferId::to_string).collect()),
            enabled: d.enabled,
            disabled_reason: d.disabled_reason.clone(),
            consecutive_failures: d.consecutive_failures,
            failing_since: d.failing_since.map(Timestamp::to_rfc3339),
            created_at: d.created_at.to_rfc3339(),
            updated_at: d.updated_at.to_rfc3339(),
        }
    }
}

/// A new destination: a secret the server generated is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedDestinationOut {
    #[serde(flatten)]
    destination: DestinationOut,
    /// A secret the server generated (a webhook's `whsec_…`), shown only now.
    #[serde(skip_serializing_if = "Option::is_none")]
    generated_secret: Option<String>,
}

/// A publisher's destinations.
#[derive(Debug, Serialize, ToSchema)]
pub struct DestinationListOut {
    items: Vec<DestinationOut>,
}

/// `POST /v1/publishers/{publisher}/destinations` → 201.
#[utoipa::path(
    post, path = "/v1/publishers/{publisher}/destinations", tag = "destinations",
    params(("publisher" = String, Path)),
    request_body = DestinationIn,
    responses((status = 201, description = "Created", body = CreatedDestinationOut)),
    security(("bearer" = []))
)]
pub async fn create_destination(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(publisher): PathParams<String>,
    ValidJson(input): ValidJson<DestinationIn>,
) -> Result<(StatusCode, Json<CreatedDestinationOut>), ApiError> {
    let publisher = publisher_from_path(&publisher)?;
    caller.check(&publisher, Scope::Write, "publisher")?;
    let offers = input
        .offers
        .map(|list| {
            list.iter()
                .enumerate()
                .map(|(i, o)| OfferId::parse(o).map_err(|rule| ApiError::field(format!("offers[{i}]"), rule)))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let settings = if input.settings.is_null() { Value::Object(serde_json::Map::new()) } else { input.settings };
    let (record, generated_secret) =
        state.ops.create_destination(&caller.actor(), &publisher, input.name, &input.kind, settings, offers).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedDestinationOut { destination: DestinationOut::new(&state, &record), generated_secret }),
    ))
}

/// `GET /v1/publishers/{publisher}/destinations`
#[utoipa::path(
    get, path = "/v1/publishers/{publisher}/destinations", tag = "destinations",
    params(("publisher" = String, Path)),
    responses((status = 200, description = "The publisher's destinations", body = DestinationListOut)),
    security(("bearer" = []))
)]
pub async fn list_destinations(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(publisher): PathParams<String>,
) -> Result<Json<DestinationListOut>, ApiError> {
    let publisher = publisher_from_path(&publisher)?;
    caller.check(&publisher, Scope::Read, "publisher")?;
    let list = state.ops.list_destinations(&publisher).await?;
    Ok(Json(DestinationListOut { items: list.iter().map(|d| DestinationOut::new(&state, d)).collect() }))
}

/// The destination named in the path, if the caller may use it with `scope`.
async fn authorized(state: &AppState, caller: &Caller, raw: &str, scope: Scope) -> Result<DestinationRecord, ApiError> {
    let id = DestinationId::parse(raw).ok_or(ApiError::NotFound("destination"))?;
    let d = state.ops.get_destination(&id).await?;
    caller.check(&d.publisher, scope, "destination")?;
    Ok(d)
}

/// `GET /v1/destinations/{id}`
#[utoipa::path(
    get, path = "/v1/destinations/{id}", tag = "destinations",
    params(("id" = String, Path, description = "`dst_…`")),
    responses((status = 200, description = "The destination", body = DestinationOut)),
    security(("bearer" = []))
)]
pub async fn get_destination(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<DestinationOut>, ApiError> {
    let d = authorized(&state, &caller, &id, Scope::Read).await?;
    Ok(Json(DestinationOut::new(&state, &d)))
}

/// `POST /v1/destinations/{id}/enable`: resumes delivery, including the backlog.
#[utoipa::path(
    post, path = "/v1/destinations/{id}/enable", tag = "destinations",
    params(("id" = String, Path, description = "`dst_…`")),
    responses((status = 200, description = "Enabled", body = DestinationOut)),
    security(("bearer" = []))
)]
pub async fn enable_destination(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<DestinationOut>, ApiError> {
    let d = authorized(&state, &caller, &id, Scope::Write).await?;
    let d = state.ops.set_destination_enabled(&caller.actor(), &d.id, true).await?;
    Ok(Json(DestinationOut::new(&state, &d)))
}

/// `POST /v1/destinations/{id}/disable`: pauses delivery; leads keep queueing.
#[utoipa::path(
    post, path = "/v1/destinations/{id}/disable", tag = "destinations",
    params(("id" = String, Path, description = "`dst_…`")),
    responses((status = 200, description = "Disabled", body = DestinationOut)),
    security(("bearer" = []))
)]
pub async fn disable_destination(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<DestinationOut>, ApiError> {
    let d = authorized(&state, &caller, &id, Scope::Write).await?;
    let d = state.ops.set_destination_enabled(&caller.actor(), &d.id, false).await?;
    Ok(Json(DestinationOut::new(&state, &d)))
}

/// The destination's answer to a test lead sent now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationOut {
    /// It took the test lead.
    ok: bool,
    test_lead_id: String,
    /// The receiver's HTTP status, if it answered.
    status_code: Option<u16>,
    /// What went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// What to fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
    /// What to check by hand when the destination cannot confirm the write.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

/// `POST /v1/destinations/{id}/validate`: sends a test lead now.
#[utoipa::path(
    post, path = "/v1/destinations/{id}/validate", tag = "destinations",
    params(("id" = String, Path, description = "`dst_…`")),
    responses((status = 200, description = "The destination's answer", body = ValidationOut)),
    security(("bearer" = []))
)]
pub async fn validate_destination(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<ValidationOut>, ApiError> {
    let d = authorized(&state, &caller, &id, Scope::Write).await?;
    let v = state.ops.validate_destination(&caller.actor(), &d.id).await?;
    let (error, hint) = v.error.map_or((None, None), |(e, h)| (Some(e), Some(h)));
    Ok(Json(ValidationOut {
        ok: error.is_none(),
        test_lead_id: v.lead_id.to_string(),
        status_code: v.status,
        error,
        hint,
        note: v.note,
    }))
}

/// `POST /v1/destinations/{id}/replay` body (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayIn {
    /// RFC 3339 time or a date: leads received from then.
    since: Option<String>,
    /// RFC 3339 time or a date: leads received before then.
    until: Option<String>,
    /// Only dead-lettered deliveries.
    #[serde(default)]
    only_dead: bool,
}

/// How many deliveries were queued again.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayedOut {
    replayed: u64,
}

/// `POST /v1/destinations/{id}/replay` → 202.
#[utoipa::path(
    post, path = "/v1/destinations/{id}/replay", tag = "destinations",
    params(("id" = String, Path, description = "`dst_…`")),
    request_body(content = Option<ReplayIn>, description = "Optional; an empty body replays every lead"),
    responses((status = 202, description = "Queued", body = ReplayedOut)),
    security(("bearer" = []))
)]
pub async fn replay_destination(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    OptionalJson(input): OptionalJson<ReplayIn>,
) -> Result<(StatusCode, Json<ReplayedOut>), ApiError> {
    let destination = authorized(&state, &caller, &id, Scope::Write).await?.id;
    let time = |name: &str, v: Option<String>| {
        v.as_deref().map(Timestamp::parse_rfc3339).transpose().map_err(|rule| ApiError::field(name, rule))
    };
    let request = ReplayRequest {
        destination,
        since: time("since", input.since)?,
        until: time("until", input.until)?,
        only_dead: input.only_dead,
    };
    let replayed = state.ops.replay(&caller.actor(), request).await?;
    Ok((StatusCode::ACCEPTED, Json(ReplayedOut { replayed })))
}
