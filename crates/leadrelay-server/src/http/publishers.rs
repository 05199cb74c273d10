//! Publishers, offers and ingest keys.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use leadrelay_core::access::Scope;
use leadrelay_core::storage::{Offer, Upserted};
use leadrelay_core::{IngestKeyId, OfferId, OfferType, PublisherId};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::error::ApiError;
use crate::http::extract::{Body, Caller, parse_json, parse_optional_json};
use crate::state::AppState;

/// Parses a publisher id from the path.
///
/// # Errors
/// 404: an id that breaks the rule names no publisher.
pub fn publisher_from_path(raw: &str) -> Result<PublisherId, ApiError> {
    PublisherId::parse(raw).map_err(|_| ApiError::NotFound("publisher"))
}

/// `POST /v1/publishers` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublisherIn {
    id: String,
    name: String,
}

/// `POST /v1/publishers`
pub async fn create_publisher(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_admin()?;
    let input: PublisherIn = parse_json(&body)?;
    let id = PublisherId::parse(&input.id).map_err(|rule| ApiError::field("id", rule))?;
    let p = state.ops.create_publisher(id, input.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": p.id.as_str(), "name": p.name, "created_at": p.created_at.to_rfc3339() })),
    ))
}

/// `PUT /v1/publishers/{publisher}/offers/{offer_id}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferIn {
    title: String,
    #[serde(rename = "type")]
    offer_type: String,
}

fn offer_out(o: &Offer) -> Value {
    json!({
        "id": o.id.as_str(), "publisher": o.publisher.as_str(), "title": o.title, "type": o.offer_type.as_str(),
        "created_at": o.created_at.to_rfc3339(), "updated_at": o.updated_at.to_rfc3339(),
        "publish_state": if o.published_at.is_some() { "published" } else { "draft" },
        "published_at": o.published_at.map(|t| t.to_rfc3339()),
        "last_validation": o.last_validation,
    })
}

/// `POST /v1/publishers/{publisher}/offers/{offer_id}/publish` → 200 with the offer and each
/// destination's answer to its test lead; 422 naming the rule when a destination is required.
pub async fn publish_offer(
    caller: Caller,
    State(state): State<AppState>,
    Path((publisher, offer_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let publisher = publisher_from_path(&publisher)?;
    caller.check(&publisher, Scope::Write, "publisher")?;
    let id = OfferId::parse(&offer_id).map_err(|_| ApiError::NotFound("offer"))?;
    let offer = state.ops.publish_offer(&publisher, &id).await?;
    let results = offer.last_validation.clone().unwrap_or(json!([]));
    let mut out = offer_out(&offer);
    out["all_ok"] = json!(results.as_array().is_some_and(|r| r.iter().all(|v| v["ok"] == true)));
    out["results"] = results;
    Ok(Json(out))
}

/// `PUT /v1/publishers/{publisher}/offers/{offer_id}`: 201 when created, 200 when replaced.
pub async fn put_offer(
    caller: Caller,
    State(state): State<AppState>,
    Path((publisher, offer_id)): Path<(String, String)>,
    Body(body): Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let publisher = publisher_from_path(&publisher)?;
    caller.check(&publisher, Scope::Write, "publisher")?;
    let input: OfferIn = parse_json(&body)?;
    let id = OfferId::parse(&offer_id).map_err(|rule| ApiError::field("offer_id", rule))?;
    let offer_type = OfferType::parse(&input.offer_type).ok_or_else(|| {
        let all: Vec<&str> = OfferType::ALL.iter().map(|t| t.as_str()).collect();
        ApiError::field("type", format!("must be one of: {}", all.join(", ")))
    })?;
    let (offer, upserted) = state.ops.put_offer(&publisher, id, input.title, offer_type).await?;
    let status = if upserted == Upserted::Created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(offer_out(&offer))))
}

/// `GET /v1/publishers/{publisher}/offers/{offer_id}`
pub async fn get_offer(
    caller: Caller,
    State(state): State<AppState>,
    Path((publisher, offer_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let publisher = publisher_from_path(&publisher)?;
    caller.check(&publisher, Scope::Read, "publisher")?;
    let id = OfferId::parse(&offer_id).map_err(|_| ApiError::NotFound("offer"))?;
    Ok(Json(offer_out(&state.ops.get_offer(&publisher, &id).await?)))
}

/// `POST /v1/publishers/{publisher}/ingest-keys` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestKeyIn {
    offer: Option<String>,
}

/// `POST /v1/publishers/{publisher}/ingest-keys`: the key is shown once.
pub async fn create_ingest_key(
    caller: Caller,
    State(state): State<AppState>,
    Path(publisher): Path<String>,
    Body(body): Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let publisher = publisher_from_path(&publisher)?;
    caller.check(&publisher, Scope::Write, "publisher")?;
    let input: IngestKeyIn = parse_optional_json(&body)?;
    let offer =
        input.offer.as_deref().map(OfferId::parse).transpose().map_err(|rule| ApiError::field("offer", rule))?;
    let (key, plain) = state.ops.create_ingest_key(&publisher, offer).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": key.id.as_str(),
            "key": plain,
            "path": format!("/v1/ingest/microsoft/{plain}"),
            "publisher": key.publisher.as_str(),
            "offer": key.offer.as_ref().map(OfferId::as_str),
            "created_at": key.created_at.to_rfc3339(),
        })),
    ))
}

/// `DELETE /v1/publishers/{publisher}/ingest-keys/{id}`: revokes the key.
pub async fn revoke_ingest_key(
    caller: Caller,
    State(state): State<AppState>,
    Path((publisher, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let publisher = publisher_from_path(&publisher)?;
    caller.check(&publisher, Scope::Write, "publisher")?;
    let id = IngestKeyId::parse(&id).ok_or(ApiError::NotFound("ingest key"))?;
    state.ops.revoke_ingest_key(&publisher, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/publishers/{publisher}/tokens` and `POST /v1/marketplace/tokens` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenIn {
    scopes: Vec<String>,
}

fn scopes_in(input: TokenIn) -> Result<Vec<Scope>, ApiError> {
    input
        .scopes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Scope::parse(s).ok_or_else(|| {
                ApiError::field(format!("scopes[{i}]"), "must be one of: ingest, read, write, admin, marketplace")
            })
        })
        .collect()
}

fn token_out(t: &leadrelay_core::storage::ApiToken, plain: &str) -> Value {
    json!({
        "id": t.id.as_str(),
        "token": plain,
        "publisher": t.publisher.as_ref().map(PublisherId::as_str),
        "scopes": t.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "created_at": t.created_at.to_rfc3339(),
    })
}

/// `POST /v1/publishers/{publisher}/tokens` → 201 with the token, shown once. Needs the admin
/// token or a token of this publisher with the `admin` scope.
pub async fn create_token(
    caller: Caller,
    State(state): State<AppState>,
    Path(publisher): Path<String>,
    Body(body): Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let publisher = publisher_from_path(&publisher)?;
    caller.check(&publisher, Scope::Admin, "publisher")?;
    let scopes = scopes_in(parse_json(&body)?)?;
    let (token, plain) = state.ops.create_token(Some(&publisher), scopes).await?;
    Ok((StatusCode::CREATED, Json(token_out(&token, &plain))))
}

/// `DELETE /v1/publishers/{publisher}/tokens/{id}`: revokes the token.
pub async fn revoke_token(
    caller: Caller,
    State(state): State<AppState>,
    Path((publisher, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let publisher = publisher_from_path(&publisher)?;
    caller.check(&publisher, Scope::Admin, "publisher")?;
    let id = leadrelay_core::TokenId::parse(&id).ok_or(ApiError::NotFound("token"))?;
    state.ops.revoke_token(&publisher, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/marketplace/tokens` `{"scopes":["marketplace"]}` → 201: a token that may report
/// marketplace events for any publisher's offers. Admin only.
pub async fn create_marketplace_token(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_admin()?;
    let scopes = scopes_in(parse_json(&body)?)?;
    let (token, plain) = state.ops.create_token(None, scopes).await?;
    Ok((StatusCode::CREATED, Json(token_out(&token, &plain))))
}
