//! The audit log: who read, exported, changed or erased what, newest first. Entries hold ids,
//! counts and action names, never personal data, so its filters may sit in the address.

use axum::extract::{RawQuery, State};
use axum::response::Html;
use leadrelay_core::UserId;
use leadrelay_core::access::Scope;
use leadrelay_core::audit::{AuditAction, AuditObject};
use maud::html;

use super::page::{self, Section, choice, time};
use super::session::{Member, UiError, check};
use crate::http::audit::{AuditListQuery, audit_filter};
use crate::http::query::Query;
use crate::state::AppState;

/// `GET /ui/audit?action=&actor=&since=&until=&cursor=`
pub async fn list(
    State(state): State<AppState>,
    member: Member,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, UiError> {
    let publisher = &member.user.publisher;
    check(&member, publisher, Scope::Read, "publisher")?;
    let q = Query::parse_for::<AuditListQuery>(raw.as_deref())?;
    let (filter, page_request) = audit_filter(&q, &member.caller())?;
    let entries = state.ops.list_audit(&filter, &page_request).await?;
    let users = state.ops.list_users(publisher).await?;
    let actor_name = |id: &str| {
        UserId::parse(id)
            .and_then(|u| users.iter().find(|x| x.id == u))
            .map_or_else(|| id.to_owned(), |u| u.name.clone())
    };
    let object_link = |o: &AuditObject| -> Option<String> {
        let id = o.as_str();
        [
            ("lead_", "leads"),
            ("cus_", "customers"),
            ("dst_", "destinations"),
            ("dlv_", "deliveries"),
            ("opp_", "opportunities"),
        ]
        .iter()
        .find(|(prefix, _)| id.starts_with(prefix))
        .map(|(_, path)| format!("/ui/{path}/{id}"))
    };
    let actions =
        page::options_with_any("Any", AuditAction::ALL.iter().map(|a| (a.as_str().to_owned(), a.as_str().to_owned())));
    let actors = page::options_with_any("Anyone", users.iter().map(|u| (u.id.to_string(), u.name.clone())));
    let next = entries.next_cursor.as_ref().map(|c| {
        let kept = ["action", "actor", "since", "until"].map(|k| (k, q.text(k).unwrap_or_default()));
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(kept.into_iter().filter(|(_, v)| !v.is_empty()))
            .append_pair("cursor", c)
            .finish()
    });
    let content = html! {
        form.filters method="get" action="/ui/audit" aria-label="Filter the audit log" {
            div.inline {
                (choice("action", "Action", &actions, q.text("action")))
                (choice("actor", "Who", &actors, q.text("actor")))
                (page::field("since", "From", "date", q.text("since"), None, false))
                (page::field("until", "Before", "date", q.text("until"), None, false))
                button type="submit" { "Filter" }
            }
        }
        @if entries.items.is_empty() { p { "No entry matches." } }
        @else {
            (page::table_wrap("Audit log entries", html! {
                table {
                    caption.muted { "Newest first" }
                    thead { tr { th { "When" } th { "Who" } th { "Did" } th { "What" } th.num { "How many" } } }
                    tbody {
                        @for e in &entries.items {
                            tr {
                                td { (time(e.at, &member)) }
                                td { (actor_name(e.actor.id.as_str())) }
                                td { (e.action.as_str()) @if e.text_search { " " span.pill { "word search" } } }
                                td {
                                    @if let Some(o) = &e.object {
                                        @if let Some(href) = object_link(o) { a href=(href) { (o.as_str()) } } @else { (o.as_str()) }
                                    } @else { "—" }
                                }
                                td.num { (e.count.map_or_else(|| "—".to_owned(), |c| c.to_string())) }
                            }
                        }
                    }
                }
            }))
        }
        @if let Some(next) = next { p.pager { a.button.secondary href={ "/ui/audit?" (next) } { "Next page" } } }
    };
    Ok(page::page(&member, Section::Audit, "Audit log", None, content))
}
