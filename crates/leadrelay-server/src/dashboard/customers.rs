//! A customer: every lead merged into them, in order, with why each one matched, and the
//! split that undoes a wrong merge (the chosen leads become a new customer).

use axum::extract::State;
use axum::response::{Html, Response};
use leadrelay_core::access::Scope;
use leadrelay_core::audit::{AuditAction, AuditObject};
use leadrelay_core::sales::sla;
use leadrelay_core::{CustomerId, LeadId};
use maud::html;

use super::page::{self, AfterChange, Banner, Section, answer_change, csrf, display_name, redirect_done, time};
use super::session::{Member, PageQuery, PathId, Posted, UiError, check};
use crate::http::error::ApiError;
use crate::state::AppState;

fn customer_id(id: &str) -> Result<CustomerId, UiError> {
    CustomerId::parse(id).ok_or(UiError::Api(ApiError::NotFound("customer")))
}

/// `GET /ui/customers/{id}`
pub async fn get(
    State(state): State<AppState>,
    member: Member,
    PathId(id): PathId,
    PageQuery(done): PageQuery<AfterChange>,
) -> Result<Html<String>, UiError> {
    let id = customer_id(&id)?;
    render(&state, &member, &id, done.banner()).await
}

async fn render(
    state: &AppState,
    member: &Member,
    id: &CustomerId,
    banner: Option<Banner>,
) -> Result<Html<String>, UiError> {
    let customer = state.ops.get_customer(id).await?;
    check(member, &customer.publisher, Scope::Read, "customer")?;
    let entry = state.ops.audit_entry(&member.actor(), Some(&customer.publisher), AuditAction::CustomerRead);
    state.ops.record(entry.object(AuditObject::Customer(id.clone()))).await?;
    let title = customer
        .leads
        .iter()
        .rev()
        .find(|l| !l.pii_withheld)
        .map_or_else(|| "Customer".to_owned(), |l| display_name(&l.customer));
    let may_split = member.may(Scope::Write) && customer.leads.len() > 1;
    let content = html! {
        p.muted { (customer.leads.len()) " leads since " (time(customer.created_at, member)) "." }
        form method="post" action={ "/ui/customers/" (id) "/split" }
            data-confirm="Move the chosen leads to a new customer?" {
            (csrf(member))
            (page::table_wrap("The customer's leads", html! {
                table {
                    caption.muted { "Every lead of this customer, oldest first, with why it was merged" }
                    thead {
                        tr {
                            @if may_split { th { "Split off" } }
                            th { "Received" } th { "Name" } th { "Offer" } th { "Action" } th { "Stage" } th { "Why merged" }
                        }
                    }
                    tbody {
                        @for l in &customer.leads {
                            tr {
                                @if may_split {
                                    td {
                                        input type="checkbox" name="lead" value=(l.id) id={ "split-" (l.id) }
                                            aria-label={ "Split off the lead of " (sla::local_text(l.received_at, member.zone())) };
                                    }
                                }
                                td { a href={ "/ui/leads/" (l.id) } { (time(l.received_at, member)) } }
                                td { @if l.pii_withheld { "(withheld)" } @else { (display_name(&l.customer)) } }
                                td { (l.offer_title.as_deref().unwrap_or("—")) }
                                td { (l.action.as_ref().map_or("—", |a| a.as_str())) @if l.duplicate_of.is_some() { " " span.pill { "duplicate" } } }
                                td { (l.stage.as_str()) }
                                td { (l.merge_reason.as_deref().unwrap_or("first lead")) }
                            }
                        }
                    }
                }
            }))
            @if may_split {
                p.help { "A wrong merge is undone by moving the leads that belong to someone else to a new customer. \
                          Leads held back as duplicates only because of the merge are delivered then." }
                button type="submit" { "Split into a new customer" }
            }
        }
    };
    Ok(page::page(member, Section::Leads, &title, banner.as_ref(), content))
}

/// `POST /ui/customers/{id}/split` (`lead`, repeated): to the new customer.
pub async fn post_split(State(state): State<AppState>, PathId(id): PathId, posted: Posted) -> Response {
    let Posted { member, form } = posted;
    let id = match customer_id(&id) {
        Ok(id) => id,
        Err(e) => return axum::response::IntoResponse::into_response(e),
    };
    let result = async {
        let customer = state.ops.get_customer(&id).await?;
        check(&member, &customer.publisher, Scope::Write, "customer")?;
        let leads: Vec<LeadId> = form
            .all("lead")
            .map(|l| {
                LeadId::parse(l)
                    .ok_or_else(|| UiError::Api(ApiError::field("lead_ids", "is not a lead of this customer")))
            })
            .collect::<Result<_, _>>()?;
        let new = state.ops.split_customer(&member.actor(), &id, leads).await?;
        Ok(redirect_done(&format!("/ui/customers/{}", new.id), "split"))
    }
    .await;
    answer_change(result, |banner| async { render(&state, &member, &id, Some(banner)).await }).await
}
