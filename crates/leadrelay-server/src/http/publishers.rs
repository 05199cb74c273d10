//! Publishers, offers, ingest keys and tokens.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use leadrelay_core::access::Scope;
use leadrelay_core::audit::Actor;
use leadrelay_core::storage::{ApiToken, Offer, Upserted};
use leadrelay_core::{IngestKeyId, OfferId, OfferType, PublisherId, TokenId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::error::ApiError;
use crate::http::extract::{AdminCaller, Caller, OptionalJson, PathParams, ValidJson};
use crate::http::openapi::string_enum;
use crate::ops::DestinationTest;
use crate::state::AppState;

/// Parses a publisher id from the path.
///
/// # Errors
/// 404: an id that breaks the rule names no publisher.
pub fn publisher_from_path(raw: &str) -> Result<PublisherId, ApiError> {
    PublisherId::parse(raw).map_err(|_| ApiError::NotFound("publisher"))
}

/// `POST /v1/publishers` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublisherIn {
    /// Lowercase letters, digits, `-` and `_` (the marketplace's publisher id).
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    id: String,
    /// 1-200 characters.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
}

/// A publisher.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublisherOut {
    id: String,
    name: String,
    #[schema(format = DateTime)]
    created_at: String,
}

/// `POST /v1/publishers` (admin token).
#[utoipa::path(
    post, path = "/v1/publishers", tag = "publishers",
    request_body = PublisherIn,
    responses(
        (status = 201, description = "Created", body = PublisherOut),
        (status = 409, description = "The id is taken", body = crate::http::error::ErrorOut),
    ),
    security(("bearer" = []))
)]
pub async fn create_publisher(
    _admin: AdminCaller,
    State(state): State<AppState>,
    ValidJson(input): ValidJson<PublisherIn>,
) -> Result<(StatusCode, Json<PublisherOut>), ApiError> {
    let id = PublisherId::parse(&input.id).map_err(|rule| ApiError::field("id", rule))?;
    let p = state.ops.create_publisher(id, input.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(PublisherOut { id: p.id.to_string(), name: p.name, created_at: p.created_at.to_rfc3339() }),
    ))
}

/// `PUT /v1/publishers/{publisher}/offers/{offer_id}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferIn {
    /// 1-200 characters; leads whose `LeadSource` names no offer id match it (any case).
    #[schema(min_length = 1, max_length = 200)]
    title: String,
    #[serde(rename = "type")]
    #[schema(schema_with = offer_types)]
    offer_type: String,
}

fn offer_types() -> utoipa::openapi::Object {
    string_enum(OfferType::ALL.map(OfferType::as_str))
}

/// One destination's answer to the test lead of a publish.
#[derive(Debug, Serialize, ToSchema)]
pub struct DestinationTestOut {
    destination: String,
    name: String,
    kind: String,
    ok: bool,
    status_code: Option<u16>,
    test_lead_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

impl From<DestinationTest> for DestinationTestOut {
    fn from(t: DestinationTest) -> Self {
        Self {
            destination: t.destination,
            name: t.name,
            kind: t.kind,
            ok: t.ok,
            status_code: t.status_code,
            test_lead_id: t.test_lead_id,
            error: t.error,
            hint: t.hint,
            note: t.note,
        }
    }
}

/// An offer.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfferOut {
    id: String,
    publisher: String,
    title: String,
    #[serde(rename = "type")]
    #[schema(schema_with = offer_types)]
    offer_type: &'static str,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    #[schema(schema_with = publish_states)]
    publish_state: &'static str,
    #[schema(format = DateTime)]
    published_at: Option<String>,
    /// Each destination's answer to the last publish's test lead; `null` before the first.
    last_validation: Option<Vec<DestinationTestOut>>,
}

fn publish_states() -> utoipa::openapi::Object {
    string_enum(["draft", "published"])
}

impl From<&Offer> for OfferOut {
    fn from(o: &Offer) -> Self {
        Self {
            id: o.id.to_string(),
            publisher: o.publisher.to_string(),
            title: o.title.clone(),
            offer_type: o.offer_type.as_str(),
            created_at: o.created_at.to_rfc3339(),
            updated_at: o.updated_at.to_rfc3339(),
            publish_state: if o.published_at.is_some() { "published" } else { "draft" },
            published_at: o.published_at.map(|t| t.to_rfc3339()),
            last_validation: DestinationTest::recorded(o)
                .map(|tests| tests.into_iter().map(DestinationTestOut::from).collect()),
        }
    }
}

/// An offer after a publish, with each destination's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublishedOut {
    #[serde(flatten)]
    offer: OfferOut,
    /// Every destination took its test lead.
    all_ok: bool,
    results: Vec<DestinationTestOut>,
}

/// `POST /v1/publishers/{publisher}/offers/{offer_id}/publish`: every destination of the offer
/// gets a test lead now; publishing succeeds even when one fails (the results say what to fix).
#[utoipa::path(
    post, path = "/v1/publishers/{publisher}/offers/{offer_id}/publish", tag = "publishers",
    params(("publisher" = String, Path), ("offer_id" = String, Path, description = "`publisherid.offerid`")),
    responses((status = 200, description = "Published", body = PublishedOut)),
    security(("bearer" = []))
)]
pub async fn publish_offer(
    caller: Caller,
    State(state): State<AppState>,
    PathParams((publisher, offer_id)): PathParams<(String, String)>,
) -> Result<Json<PublishedOut>, ApiError> {
    let publisher = publisher_from_path(&publisher)?;
    caller.check(&publisher, Scope::Write, "publisher")?;
    let id = OfferId::parse(&offer_id).map_err(|_| ApiError::NotFound("offer"))?;
    let offer = state.ops.publish_offer(&publisher, &id).await?;
    let results = DestinationTest::recorded(&offer).unwrap_or_default();
    let all_ok = results.iter().all(|r| r.ok);
    Ok(Json(PublishedOut {
        offer: OfferOut::from(&offer),
        all_ok,
        results: results.into_iter().map(DestinationTestOut::from).collect(),
    }))
}

/// `PUT /v1/publishers/{publisher}/offers/{offer_id}`: 201 when created, 200 when replaced.
#[utoipa::path(
    put, path = "/v1/publishers/{publisher}/offers/{offer_id}", tag = "publishers",
    params(("publisher" = String, Path), ("offer_id" = String, Path, description = "`publisherid.offerid`")),
    request_body = OfferIn,
    responses(
        (status = 200, description = "Replaced", body = OfferOut),
        (status = 201, description = "Created", body = OfferOut),
    ),
    security(("bearer" = []))
)]
pub async fn put_offer(
    caller: Caller,
    State(state): State<AppState>,
    PathParams((publisher, offer_id)): PathParams<(String, String)>,
    ValidJson(input): ValidJson<OfferIn>,
) -> Result<(StatusCode, Json<OfferOut>), ApiError> {
    let publisher = publisher_from_path(&publisher)?;
    caller.check(&publisher, Scope::Write, "publisher")?;
    let id = OfferId::parse(&offer_id).map_err(|rule| ApiError::field("offer_id", rule))?;
    let offer_type = OfferType::parse(&input.offer_type).ok_or_else(|| {
        let all: Vec<&str> = OfferType::ALL.iter().map(|t| t.as_str()).collect();
        ApiError::field("type", format!("must be one of: {}", all.join(", ")))
    })?;
    let (offer, upserted) = state.ops.put_offer(&publisher, id, input.title, offer_type).await?;
    let status = if upserted == Upserted::Created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(OfferOut::from(&offer))))
}

/// `GET /v1/publishers/{publisher}/offers/{offer_id}`
#[utoipa::path(
    get, path = "/v1/publishers/{publisher}/offers/{offer_id}", tag = "publishers",
    params(("publisher" = String, Path), ("offer_id" = String, Path, description = "`publisherid.offerid`")),
    responses((status = 200, description = "The offer", body = OfferOut)),
    security(("bearer" = []))
)]
pub async fn get_offer(
    caller: Caller,
    State(state): State<AppState>,
    PathParams((publisher, offer_id)): PathParams<(String, String)>,
) -> Result<Json<OfferOut>, ApiError> {
    let publisher = publisher_from_path(&publisher)?;
    caller.check(&publisher, Scope::Read, "publisher")?;
    let id = OfferId::parse(&offer_id).map_err(|_| ApiError::NotFound("offer"))?;
    Ok(Json(OfferOut::from(&state.ops.get_offer(&publisher, &id).await?)))
}

/// `POST /v1/publishers/{publisher}/ingest-keys` body (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestKeyIn {
    /// Bind the key to this registered offer: its leads belong to it whatever they say.
    #[schema(pattern = "^[a-z0-9_-]{1,64}\\.[a-z0-9_-]{1,128}$")]
    offer: Option<String>,
}

/// A new ingest key, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestKeyOut {
    id: String,
    /// The key itself: shown only now.
    key: String,
    /// The route to give the marketplace.
    path: String,
    publisher: String,
    offer: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
}

/// `POST /v1/publishers/{publisher}/ingest-keys`: the key is shown once.
#[utoipa::path(
    post, path = "/v1/publishers/{publisher}/ingest-keys", tag = "publishers",
    params(("publisher" = String, Path)),
    request_body(content = Option<IngestKeyIn>, description = "Optional; an empty body means no binding"),
    responses((status = 201, description = "Created", body = IngestKeyOut)),
    security(("bearer" = []))
)]
pub async fn create_ingest_key(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(publisher): PathParams<String>,
    OptionalJson(input): OptionalJson<IngestKeyIn>,
) -> Result<(StatusCode, Json<IngestKeyOut>), ApiError> {
    let publisher = publisher_from_path(&publisher)?;
    caller.check(&publisher, Scope::Write, "publisher")?;
    let offer =
        input.offer.as_deref().map(OfferId::parse).transpose().map_err(|rule| ApiError::field("offer", rule))?;
    let (key, plain) = state.ops.create_ingest_key(&caller.actor(), &publisher, offer).await?;
    Ok((
        StatusCode::CREATED,
        Json(IngestKeyOut {
            id: key.id.to_string(),
            path: format!("/v1/ingest/microsoft/{plain}"),
            key: plain,
            publisher: key.publisher.to_string(),
            offer: key.offer.as_ref().map(OfferId::to_string),
            created_at: key.created_at.to_rfc3339(),
        }),
    ))
}

/// `DELETE /v1/publishers/{publisher}/ingest-keys/{id}`: revokes the key.
#[utoipa::path(
    delete, path = "/v1/publishers/{publisher}/ingest-keys/{id}", tag = "publishers",
    params(("publisher" = String, Path), ("id" = String, Path, description = "`key_…`")),
    responses((status = 204, description = "Revoked; the key stops working")),
    security(("bearer" = []))
)]
pub async fn revoke_ingest_key(
    caller: Caller,
    State(state): State<AppState>,
    PathParams((publisher, id)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let publisher = publisher_from_path(&publisher)?;
    caller.check(&publisher, Scope::Write, "publisher")?;
    let id = IngestKeyId::parse(&id).ok_or(ApiError::NotFound("ingest key"))?;
    state.ops.revoke_ingest_key(&caller.actor(), &publisher, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/publishers/{publisher}/tokens` and `POST /v1/marketplace/tokens` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenIn {
    /// What the token allows: `ingest`, `read`, `write`, `admin` on a publisher token;
    /// `marketplace` on a marketplace token.
    #[schema(schema_with = scope_list)]
    scopes: Vec<String>,
}

fn scope_list() -> utoipa::openapi::Array {
    utoipa::openapi::Array::new(string_enum(Scope::ALL.map(Scope::as_str)))
}

fn scopes_in(input: TokenIn) -> Result<Vec<Scope>, ApiError> {
    let names: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
    input
        .scopes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Scope::parse(s)
                .ok_or_else(|| ApiError::field(format!("scopes[{i}]"), format!("must be one of: {}", names.join(", "))))
        })
        .collect()
}

/// A new token, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenOut {
    id: String,
    /// The token itself: shown only now.
    token: String,
    publisher: Option<String>,
    #[schema(schema_with = scope_list)]
    scopes: Vec<&'static str>,
    #[schema(format = DateTime)]
    created_at: String,
}

fn token_out(t: &ApiToken, plain: String) -> TokenOut {
    TokenOut {
        id: t.id.to_string(),
        token: plain,
        publisher: t.publisher.as_ref().map(PublisherId::to_string),
        scopes: t.scopes.iter().map(|s| s.as_str()).collect(),
        created_at: t.created_at.to_rfc3339(),
    }
}

/// `POST /v1/publishers/{publisher}/tokens` → 201 with the token, shown once. Needs the admin
/// token or a token of this publisher with the `admin` scope.
#[utoipa::path(
    post, path = "/v1/publishers/{publisher}/tokens", tag = "publishers",
    params(("publisher" = String, Path)),
    request_body = TokenIn,
    responses((status = 201, description = "Created", body = TokenOut)),
    security(("bearer" = []))
)]
pub async fn create_token(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(publisher): PathParams<String>,
    ValidJson(input): ValidJson<TokenIn>,
) -> Result<(StatusCode, Json<TokenOut>), ApiError> {
    let publisher = publisher_from_path(&publisher)?;
    caller.check(&publisher, Scope::Admin, "publisher")?;
    let scopes = scopes_in(input)?;
    let (token, plain) = state.ops.create_token(&caller.actor(), Some(&publisher), scopes).await?;
    Ok((StatusCode::CREATED, Json(token_out(&token, plain))))
}

/// `DELETE /v1/publishers/{publisher}/tokens/{id}`: revokes the token.
#[utoipa::path(
    delete, path = "/v1/publishers/{publisher}/tokens/{id}", tag = "publishers",
    params(("publisher" = String, Path), ("id" = String, Path, description = "`tok_…`")),
    responses((status = 204, description = "Revoked; the token stops working")),
    security(("bearer" = []))
)]
pub async fn revoke_token(
    caller: Caller,
    State(state): State<AppState>,
    PathParams((publisher, id)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let publisher = publisher_from_path(&publisher)?;
    caller.check(&publisher, Scope::Admin, "publisher")?;
    let id = TokenId::parse(&id).ok_or(ApiError::NotFound("token"))?;
    state.ops.revoke_token(&caller.actor(), &publisher, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/marketplace/tokens` `{"scopes":["marketplace"]}` → 201: a token that may report
/// marketplace events for any publisher's offers. Admin only.
#[utoipa::path(
    post, path = "/v1/marketplace/tokens", tag = "marketplace",
    request_body = TokenIn,
    responses((status = 201, description = "Created", body = TokenOut)),
    security(("bearer" = []))
)]
pub async fn create_marketplace_token(
    _admin: AdminCaller,
    State(state): State<AppState>,
    ValidJson(input): ValidJson<TokenIn>,
) -> Result<(StatusCode, Json<TokenOut>), ApiError> {
    let scopes = scopes_in(input)?;
    let (token, plain) = state.ops.create_token(&Actor::admin(), None, scopes).await?;
    Ok((StatusCode::CREATED, Json(token_out(&token, plain))))
}
