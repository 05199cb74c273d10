//! The inbox: what a sales rep opens in the morning. New opportunities, those due today, those
//! whose first-touch SLA is breached, and the person's own. While it is open, the page's
//! script asks `/ui/inbox/live` every few seconds with the version it shows; the answer is
//! `204` while nothing changed (nothing read is shown, nothing is audited), else the new
//! content, so a new lead appears within seconds without a reload.

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use leadrelay_core::access::Scope;
use leadrelay_core::audit::AuditAction;
use leadrelay_core::sales::{Opportunity, OpportunityStatus};
use leadrelay_core::storage::{OpportunityFilter, OwnerFilter, PageRequest};
use maud::{Markup, html};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::opportunities::{CardContext, card};
use super::page::{self, Section};
use super::session::{Member, PageQuery, UiError, check};
use crate::http::error::ApiError;
use crate::ops::DueList;
use crate::state::AppState;

/// How many opportunities each list of the inbox shows.
const PER_LIST: u32 = 8;

/// The header that carries the version of the inbox's content.
const VERSION_HEADER: &str = "x-inbox-version";

struct List {
    title: &'static str,
    id: &'static str,
    more: &'static str,
    items: Vec<Opportunity>,
    has_more: bool,
}

async fn lists(state: &AppState, member: &Member) -> Result<Vec<List>, UiError> {
    let publisher = &member.user.publisher;
    check(member, publisher, Scope::Read, "publisher")?;
    let base = || OpportunityFilter { publisher: Some(publisher.clone()), ..OpportunityFilter::default() };
    // The member's settings hold the zone "today" ends in: no read of them again per list.
    let now = state.ops.now();
    let today = DueList::Today.filter(now, member.zone());
    let breached = DueList::SlaBreached.filter(now, member.zone());
    let wanted = [
        (
            "New",
            "new",
            "/ui/opportunities?status=new",
            OpportunityFilter { status: Some(OpportunityStatus::New), ..base() },
        ),
        ("Due today", "due-today", "/ui/opportunities?due=today", OpportunityFilter { due: Some(today), ..base() }),
        (
            "SLA breaching",
            "sla",
            "/ui/opportunities?due=sla_breached",
            OpportunityFilter { due: Some(breached), ..base() },
        ),
        (
            "Mine",
            "mine",
            "/ui/opportunities?owner=me",
            OpportunityFilter { owner: Some(OwnerFilter::User(member.user.id.clone())), ..base() },
        ),
    ];
    let mut out = Vec::with_capacity(wanted.len());
    for (title, id, more, filter) in wanted {
        let page = state
            .ops
            .storage()
            .list_opportunities(&filter, &PageRequest { limit: PER_LIST, cursor: None })
            .await
            .map_err(ApiError::from)?;
        out.push(List { title, id, more, has_more: page.next_cursor.is_some(), items: page.items });
    }
    Ok(out)
}

/// A version of what the lists hold: changes when any opportunity in them changes.
fn version(lists: &[List]) -> String {
    let mut hash = Sha256::new();
    for l in lists {
        hash.update(l.id.as_bytes());
        for o in &l.items {
            hash.update(o.id.as_str().as_bytes());
            hash.update(o.version.to_le_bytes());
        }
    }
    hash.finalize().iter().take(12).map(|b| format!("{b:02x}")).collect()
}

async fn content(state: &AppState, member: &Member, lists: &[List]) -> Result<Markup, UiError> {
    let all: Vec<Opportunity> = lists.iter().flat_map(|l| l.items.iter().cloned()).collect();
    let users = state.ops.list_users(&member.user.publisher).await?;
    let rows = CardContext::read(state, &users, &all).await?;
    let entry = state.ops.audit_entry(&member.actor(), Some(&member.user.publisher), AuditAction::OpportunityList);
    state.ops.record(entry.count(all.len() as u64)).await?;
    Ok(html! {
        @for l in lists {
            section.panel aria-labelledby={ "h-" (l.id) } {
                h2 #{ "h-" (l.id) } { (l.title) " " span.count { "(" (l.items.len()) @if l.has_more { "+" } ")" } }
                @if l.items.is_empty() {
                    p.muted { "Nothing here." }
                } @else {
                    ul.cards { @for o in &l.items { (card(l.id, o, &rows, member)) } }
                }
                p { a href=(l.more) { "See all" span.muted { " (" (l.title) ")" } } }
            }
        }
    })
}

/// `GET /ui/`
pub async fn get(State(state): State<AppState>, member: Member) -> Result<Html<String>, UiError> {
    let lists = lists(&state, &member).await?;
    let seen = version(&lists);
    let inner = content(&state, &member, &lists).await?;
    let body = html! {
        p.muted { "Refreshes by itself while open. Times are in " (member.zone()) "." }
        p.muted #inbox-status role="status" {}
        div.inbox #inbox data-live="/ui/inbox/live" data-seen=(seen) data-status="inbox-status" { (inner) }
    };
    Ok(page::page(&member, Section::Inbox, "Inbox", None, body))
}

/// `?seen=` of a live refresh.
#[derive(Debug, Deserialize)]
pub struct Seen {
    seen: Option<String>,
}

/// `GET /ui/inbox/live?seen=<version>`: `204` while the inbox is as seen, else its content
/// with its new version in `X-Inbox-Version`.
pub async fn live(
    State(state): State<AppState>,
    member: Member,
    PageQuery(seen): PageQuery<Seen>,
) -> Result<Response, UiError> {
    let lists = lists(&state, &member).await?;
    let now = version(&lists);
    if seen.seen.as_deref() == Some(now.as_str()) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let inner = content(&state, &member, &lists).await?;
    let mut response = Html(inner.into_string()).into_response();
    if let Ok(v) = HeaderValue::from_str(&now) {
        response.headers_mut().insert(HeaderName::from_static(VERSION_HEADER), v);
    }
    Ok(response)
}
