//! Deliveries and dead letters: the outbox of a publisher, filtered by status and destination,
//! each delivery's attempt log (what the receiver answered, how long it took), and retry.

use axum::extract::{RawQuery, State};
use axum::response::{Html, Response};
use leadrelay_core::DeliveryId;
use leadrelay_core::access::Scope;
use leadrelay_core::storage::{Attempt, DeliveryStatus};
use maud::{Markup, html};

use super::destinations::name_of;
use super::leads::delivery_pill;
use super::page::{self, AfterChange, Banner, Section, answer_change, choice, csrf, redirect_done, time};
use super::session::{Member, PageQuery, PathId, Posted, UiError, check};
use crate::http::deliveries::{DeliveryListQuery, delivery_filter};
use crate::http::error::ApiError;
use crate::http::query::Query;
use crate::state::AppState;

/// The attempts of one delivery, oldest first.
pub fn attempts_table(attempts: &[Attempt], member: &Member) -> Markup {
    html! {
        (page::table_wrap("Attempt log", html! {
            table {
                thead { tr { th.num { "#" } th { "Started" } th.num { "Took" } th { "Answer" } th { "What happened" } } }
                tbody {
                    @for a in attempts {
                        tr {
                            td.num { (a.number) }
                            td { (time(a.started_at, member)) }
                            td.num { (a.duration_ms) " ms" }
                            td {
                                @if let Some(s) = a.status_code { "HTTP " (s) } @else { "no answer" }
                                @if let Some(c) = a.error_class { " · " (c.as_str()) }
                            }
                            td {
                                (a.message.as_deref().unwrap_or("delivered"))
                                @if let Some(x) = &a.excerpt { pre.excerpt { (x) } }
                            }
                        }
                    }
                }
            }
        }))
    }
}

/// `GET /ui/deliveries?status=&destination=&cursor=`
pub async fn list(
    State(state): State<AppState>,
    member: Member,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, UiError> {
    let q = Query::parse_for::<DeliveryListQuery>(raw.as_deref())?;
    let publisher = &member.user.publisher;
    check(&member, publisher, Scope::Read, "publisher")?;
    let filter = delivery_filter(&q, &member.caller())?;
    let page_of = state.ops.list_deliveries(&filter, &q.page()?).await?;
    let destinations = state.ops.list_destinations(publisher).await?;
    let statuses = [("", "Any"), ("pending", "Pending"), ("delivered", "Delivered"), ("dead", "Dead letters")]
        .map(|(v, t)| (v.to_owned(), t.to_owned()));
    let targets = page::options_with_any("Any", destinations.iter().map(|d| (d.id.to_string(), d.name.clone())));
    let next = page_of.next_cursor.as_ref().map(|c| {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                [
                    ("status", q.text("status").unwrap_or_default()),
                    ("destination", q.text("destination").unwrap_or_default()),
                    ("cursor", c.as_str()),
                ]
                .into_iter()
                .filter(|(_, v)| !v.is_empty()),
            )
            .finish()
    });
    let title = if filter.status == Some(DeliveryStatus::Dead) { "Dead letters" } else { "Deliveries" };
    let content = html! {
        form.filters method="get" action="/ui/deliveries" aria-label="Filter deliveries" {
            div.inline {
                (choice("status", "Status", &statuses, q.text("status")))
                (choice("destination", "Destination", &targets, q.text("destination")))
                button type="submit" { "Filter" }
            }
        }
        @if page_of.items.is_empty() { p { "No delivery matches." } }
        @else {
            (page::table_wrap("Deliveries", html! {
                table {
                    caption.muted { "Newest first" }
                    thead { tr { th { "Created" } th { "Destination" } th { "Status" } th.num { "Attempts" } th { "Last error" } th { "Lead" } } }
                    tbody {
                        @for d in &page_of.items {
                            tr {
                                td { a href={ "/ui/deliveries/" (d.id) } { (time(d.created_at, &member)) } }
                                td { (name_of(&destinations, &d.destination)) }
                                td { (delivery_pill(d.status)) }
                                td.num { (d.attempts) }
                                td { (d.last_error.as_deref().unwrap_or("—")) }
                                td { a href={ "/ui/leads/" (d.lead_id) } { "Lead " (d.lead_id) } }
                            }
                        }
                    }
                }
            }))
        }
        @if let Some(next) = next { p.pager { a.button.secondary href={ "/ui/deliveries?" (next) } { "Next page" } } }
    };
    Ok(page::page(&member, Section::Deliveries, title, None, content))
}

fn delivery_id(id: &str) -> Result<DeliveryId, UiError> {
    DeliveryId::parse(id).ok_or(UiError::Api(ApiError::NotFound("delivery")))
}

async fn render(
    state: &AppState,
    member: &Member,
    id: &DeliveryId,
    banner: Option<Banner>,
) -> Result<Html<String>, UiError> {
    let d = state.ops.get_delivery(id).await?;
    check(member, &d.publisher, Scope::Read, "delivery")?;
    let detail = state.ops.get_lead(&d.lead_id).await?;
    let attempts = detail.deliveries.iter().find(|(x, _)| x.id == d.id).map(|(_, a)| a.as_slice()).unwrap_or_default();
    let destination = state.ops.get_destination(&d.destination).await?;
    let content = html! {
        section.panel aria-labelledby="h-delivery" {
            h2 #h-delivery { "To " a href={ "/ui/destinations/" (destination.id) } { (destination.name) } " " (delivery_pill(d.status)) }
            dl.facts {
                dt { "Lead" } dd { a href={ "/ui/leads/" (d.lead_id) } { (d.lead_id) } }
                dt { "Created" } dd { (time(d.created_at, member)) }
                dt { "Attempts" } dd { (d.attempts) }
                dt { "Next attempt" } dd { (page::maybe_time(d.next_attempt_at, member)) }
                dt { "Last error" } dd { (d.last_error.as_deref().unwrap_or("—")) }
            }
            @if d.status == DeliveryStatus::Dead && member.may(Scope::Write) {
                form method="post" action={ "/ui/deliveries/" (d.id) "/retry" } {
                    (csrf(member))
                    button type="submit" { "Retry this delivery" }
                }
            }
        }
        h2 { "Attempt log" }
        @if attempts.is_empty() { p { "No attempt yet." } } @else { (attempts_table(attempts, member)) }
    };
    Ok(page::page(member, Section::Deliveries, "Delivery", banner.as_ref(), content))
}

/// `GET /ui/deliveries/{id}`
pub async fn get(
    State(state): State<AppState>,
    member: Member,
    PathId(id): PathId,
    PageQuery(done): PageQuery<AfterChange>,
) -> Result<Html<String>, UiError> {
    render(&state, &member, &delivery_id(&id)?, done.banner()).await
}

/// `POST /ui/deliveries/{id}/retry`: a dead letter goes back to the queue.
pub async fn retry(State(state): State<AppState>, PathId(id): PathId, posted: Posted) -> Response {
    let member = posted.member;
    let Ok(id) = delivery_id(&id) else {
        return axum::response::IntoResponse::into_response(UiError::Api(ApiError::NotFound("delivery")));
    };
    let result = async {
        let d = state.ops.get_delivery(&id).await?;
        check(&member, &d.publisher, Scope::Write, "delivery")?;
        state.ops.retry_delivery(&member.actor(), &id).await?;
        Ok(redirect_done(&format!("/ui/deliveries/{id}"), "retried"))
    }
    .await;
    answer_change(result, |banner| async { render(&state, &member, &id, Some(banner)).await }).await
}
