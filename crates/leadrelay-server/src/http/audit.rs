//! `GET /v1/audit`: the audit log, newest first. The admin token sees every entry; a publisher
//! token with the `read` scope sees only the entries about its own publisher's data.

use axum::Json;
use axum::extract::{RawQuery, State};
use leadrelay_core::audit::{ActorId, AuditAction, AuditEntry, AuditFilter, AuditObject};
use leadrelay_core::{AuditId, PublisherId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::error::ApiError;
use crate::http::extract::Caller;
use crate::http::openapi::string_enum;
use crate::http::query::Query;
use crate::state::AppState;
use leadrelay_core::storage::PageRequest;

/// The audit filter and page from query parameters, limited to what the caller may see.
///
/// # Errors
/// 422 naming a bad parameter; 404/403 from the caller's limits.
pub fn audit_filter(q: &Query, caller: &Caller) -> Result<(AuditFilter, PageRequest), ApiError> {
    let filter = AuditFilter {
        publisher: caller.visible_publisher(q.parsed("publisher", PublisherId::parse)?)?,
        action: q.parsed("action", |a| AuditAction::parse(a).ok_or("is not an audited action"))?,
        actor: q.parsed("actor", ActorId::parse)?,
        since: q.time("since")?,
        until: q.time("until")?,
    };
    let page = q.page()?;
    q.parsed("cursor", |c| AuditId::parse(c).ok_or("must be the next_cursor of a previous page"))?;
    Ok((filter, page))
}

/// `GET /v1/audit` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AuditListQuery {
    /// Only entries about this publisher's data (a publisher token sees only its own).
    publisher: Option<String>,
    /// Only this action.
    #[param(inline, schema_with = actions)]
    action: Option<String>,
    /// Only this actor: `admin`, a token id (`tok_…`) or a user id (`usr_…`).
    actor: Option<String>,
    /// RFC 3339 time or a date: entries at or after it.
    since: Option<String>,
    /// RFC 3339 time or a date: entries before it.
    until: Option<String>,
    /// Page size.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

fn actions() -> utoipa::openapi::Object {
    string_enum(AuditAction::ALL.iter().map(|a| a.as_str()))
}

/// One entry: ids, counts and action names only, never personal data.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryOut {
    /// `aud_…`
    id: String,
    #[schema(format = DateTime)]
    at: String,
    /// `admin`, the id of the token used (`tok_…`, never the token itself), or of the signed-in
    /// person (`usr_…`, never their address).
    actor: String,
    /// The publisher the token or person belongs to (`null` for the admin and marketplace tokens).
    actor_publisher: Option<String>,
    /// Whose data it concerned (`null` for actions across publishers).
    publisher: Option<String>,
    #[schema(schema_with = actions)]
    action: &'static str,
    /// The id of the object acted on (`lead_…`, `cus_…`, `dst_…`, `dlv_…`, `tok_…`, `ik_…`, `usr_…`).
    object: Option<String>,
    /// How many items: leads listed or imported, deliveries replayed, leads moved by a split.
    count: Option<u64>,
    /// The read was filtered by a search text (which is not kept).
    text_search: bool,
}

impl From<&AuditEntry> for AuditEntryOut {
    fn from(e: &AuditEntry) -> Self {
        Self {
            id: e.id.to_string(),
            at: e.at.to_rfc3339(),
            actor: e.actor.id.to_string(),
            actor_publisher: e.actor.publisher.as_ref().map(PublisherId::to_string),
            publisher: e.publisher.as_ref().map(PublisherId::to_string),
            action: e.action.as_str(),
            object: e.object.as_ref().map(|o| AuditObject::as_str(o).to_owned()),
            count: e.count,
            text_search: e.text_search,
        }
    }
}

/// A page of audit entries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPageOut {
    items: Vec<AuditEntryOut>,
    /// Pass back as `cursor`; `null` at the end.
    next_cursor: Option<String>,
}

/// `GET /v1/audit?publisher=…&action=…&actor=…&since=…&until=…`
#[utoipa::path(
    get, path = "/v1/audit", tag = "audit",
    params(AuditListQuery),
    responses((status = 200, description = "A page of audit entries", body = AuditPageOut)),
    security(("bearer" = []))
)]
pub async fn list_audit(
    caller: Caller,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<AuditPageOut>, ApiError> {
    let q = Query::parse_for::<AuditListQuery>(raw.as_deref())?;
    let (filter, page) = audit_filter(&q, &caller)?;
    let page = state.ops.list_audit(&filter, &page).await?;
    Ok(Json(AuditPageOut {
        items: page.items.iter().map(AuditEntryOut::from).collect(),
        next_cursor: page.next_cursor,
    }))
}
