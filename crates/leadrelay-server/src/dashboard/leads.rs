//! Leads: the list with the API's filters and word search (posted), the export of what is
//! filtered, and one lead with where it went (each delivery and its attempts).

use axum::extract::{RawQuery, State};
use axum::response::{Html, IntoResponse, Response};
use leadrelay_core::access::Scope;
use leadrelay_core::audit::{AuditAction, AuditObject};
use leadrelay_core::storage::DeliveryStatus;
use leadrelay_core::{Lead, LeadId};
use maud::{Markup, html};

use super::page::{self, Banner, Section, answer_change, choice, csrf, display_name, time};
use super::search;
use super::session::{Member, PathId, Posted, UiError, check};
use crate::http::error::ApiError;
use crate::http::leads::{LeadListQuery, lead_filter};
use crate::http::query::Query;
use crate::state::AppState;

const LIST_FIELDS: [&str; 9] = ["q", "offer", "customer", "source", "action", "stage", "is_test", "since", "until"];

/// `GET /ui/leads`: the list, with filters from the address (never words to search).
pub async fn list(
    State(state): State<AppState>,
    member: Member,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, UiError> {
    let q = search::from_address::<LeadListQuery>(raw.as_deref())?;
    render_list(&state, &member, &q, None).await
}

/// `POST /ui/leads`: the list with the search form's filters and words.
pub async fn search(State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { member, form } = posted;
    let result = match search::posted_filters::<LeadListQuery>(&form) {
        Ok(q) => render_list(&state, &member, &q, None).await.map(IntoResponse::into_response),
        Err(e) => Err(e),
    };
    let unfiltered = Query::none();
    answer_change(result, |banner| render_list(&state, &member, &unfiltered, Some(banner))).await
}

/// A lead's name and company, for a row.
fn person(l: &Lead) -> Markup {
    html! {
        @if l.pii_withheld { span.muted { "(withheld)" } } @else { (display_name(&l.customer)) }
    }
}

async fn render_list(
    state: &AppState,
    member: &Member,
    q: &Query,
    banner: Option<Banner>,
) -> Result<Html<String>, UiError> {
    let publisher = &member.user.publisher;
    check(member, publisher, Scope::Read, "publisher")?;
    let filter = lead_filter(q, &member.caller())?;
    let leads = state.ops.list_leads(&filter, &q.page()?).await?;
    let entry = state.ops.audit_entry(&member.actor(), Some(publisher), AuditAction::LeadList);
    state.ops.record(entry.count(leads.items.len() as u64).text_search(filter.text.is_some())).await?;
    let offers = state.ops.storage().list_offers(publisher).await.map_err(ApiError::from)?;
    let value = |name: &str| q.text(name).map(str::to_owned);
    let offer_options = page::options_with_any("Any", offers.iter().map(|o| (o.id.to_string(), o.title.clone())));
    let tests = [("", "Real and test"), ("false", "Real only"), ("true", "Test only")]
        .map(|(v, t)| (v.to_owned(), t.to_owned()));
    let kept: Vec<(&str, String)> = LIST_FIELDS.iter().map(|f| (*f, value(f).unwrap_or_default())).collect();
    let export: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(kept.iter().filter(|(k, v)| *k != "q" && !v.is_empty()).map(|(k, v)| (*k, v.as_str())))
        .finish();
    let text =
        |name: &str, label: &str, kind: &str| page::field(name, label, kind, value(name).as_deref(), None, false);
    let content = html! {
        form.filters method="post" action="/ui/leads" role="search" aria-label="Filter leads" {
            (csrf(member))
            @if let Some(c) = value("customer") { input type="hidden" name="customer" value=(c); }
            div.inline {
                (text("q", "Search words", "search"))
                (choice("offer", "Offer", &offer_options, value("offer").as_deref()))
                (text("source", "Source", "text"))
                (text("action", "Action", "text"))
                (text("stage", "Stage", "text"))
                (choice("is_test", "Test leads", &tests, value("is_test").as_deref()))
                (text("since", "Received from", "date"))
                (text("until", "Received before", "date"))
                button type="submit" { "Filter" }
            }
        }
        p.actions {
            a.button.secondary href={ "/v1/leads/export.csv?" (export) } download { "Export CSV (these filters, without the words)" }
        }
        @if leads.items.is_empty() {
            p { "No lead matches." }
        } @else {
            (page::table_wrap("Leads", html! {
                table {
                    caption.muted { "Newest first" }
                    thead { tr { th { "Received" } th { "Name" } th { "Company" } th { "Offer" } th { "Action" } th { "Stage" } th { "Source" } } }
                    tbody {
                        @for l in &leads.items {
                            tr {
                                td { a href={ "/ui/leads/" (l.id) } { (time(l.received_at, member)) } }
                                td { (person(l)) @if l.is_test { " " span.pill { "test" } } }
                                td { (l.customer.company.as_deref().unwrap_or("—")) }
                                td { (l.offer_title.as_deref().unwrap_or("—")) }
                                td { (l.action.as_ref().map_or("—", |a| a.as_str())) }
                                td { (l.stage.as_str()) }
                                td { (l.source.as_str()) }
                            }
                        }
                    }
                }
            }))
        }
        (page::next_page(member, "/ui/leads", &kept, leads.next_cursor.as_deref()))
    };
    Ok(page::page(member, Section::Leads, "Leads", banner.as_ref(), content))
}

/// A delivery's status as a pill.
pub fn delivery_pill(status: DeliveryStatus) -> Markup {
    let class = match status {
        DeliveryStatus::Delivered => "pill good",
        DeliveryStatus::Dead => "pill bad",
        DeliveryStatus::Pending => "pill warn",
    };
    let text = if status == DeliveryStatus::Dead { "dead letter" } else { status.as_str() };
    html! { span class=(class) { (text) } }
}

/// `GET /ui/leads/{id}`
pub async fn get(State(state): State<AppState>, member: Member, PathId(id): PathId) -> Result<Html<String>, UiError> {
    let id = LeadId::parse(&id).ok_or(ApiError::NotFound("lead"))?;
    let detail = state.ops.get_lead(&id).await?;
    let l = &detail.lead;
    check(&member, &l.publisher, Scope::Read, "lead")?;
    let entry = state.ops.audit_entry(&member.actor(), Some(&l.publisher), AuditAction::LeadRead);
    state.ops.record(entry.object(AuditObject::Lead(id.clone()))).await?;
    let destinations = state.ops.list_destinations(&l.publisher).await?;
    let c = &l.customer;
    let content = html! {
        div.grid {
            section.panel aria-labelledby="h-lead" {
                h2 #h-lead { "The lead" }
                dl.facts {
                    dt { "Received" } dd { (time(l.received_at, &member)) }
                    dt { "Offer" } dd { (l.offer_title.as_deref().unwrap_or("—")) }
                    dt { "Action" } dd { (l.action.as_ref().map_or("—", |a| a.as_str())) }
                    dt { "Stage" } dd { (l.stage.as_str()) }
                    dt { "Source" } dd { (l.source.as_str()) }
                    dt { "Campaign" } dd { (l.campaign.as_deref().unwrap_or("—")) }
                    dt { "Test lead" } dd { (if l.is_test { "yes" } else { "no" }) }
                    @if let Some(d) = &l.duplicate_of {
                        dt { "Duplicate of" } dd { a href={ "/ui/leads/" (d) } { (d) } }
                    }
                }
            }
            section.panel aria-labelledby="h-person" {
                h2 #h-person { "The customer" }
                @if l.pii_withheld {
                    p { "Personal data was withheld by the marketplace's privacy rules." }
                } @else {
                    dl.facts {
                        dt { "Name" } dd { (display_name(c)) }
                        dt { "Company" } dd { (c.company.as_deref().unwrap_or("—")) }
                        dt { "E-mail" } dd { (c.email.as_deref().unwrap_or("—")) }
                        dt { "Phone" } dd { (c.phone.as_deref().unwrap_or("—")) }
                        dt { "Country" } dd { (c.country.as_deref().unwrap_or("—")) }
                        dt { "Description" } dd { (l.description.as_deref().unwrap_or("—")) }
                    }
                }
                @if let Some(customer) = &l.customer_id {
                    p { a href={ "/ui/customers/" (customer) } { "The customer's page" } }
                }
            }
        }
        section.panel aria-labelledby="h-deliveries" {
            h2 #h-deliveries { "Deliveries" }
            @if detail.deliveries.is_empty() { p { "None: no destination takes this lead, or it is a duplicate." } }
            @for (d, attempts) in &detail.deliveries {
                h3 { a href={ "/ui/deliveries/" (d.id) } { (super::destinations::name_of(&destinations, &d.destination)) } " " (delivery_pill(d.status)) }
                p.muted { (d.attempts) " attempts" @if let Some(e) = &d.last_error { " · last error: " (e) } }
                @if !attempts.is_empty() {
                    (super::deliveries::attempts_table(attempts, &member))
                }
            }
        }
    };
    Ok(page::page(
        &member,
        Section::Leads,
        &if l.pii_withheld { "Lead".to_owned() } else { display_name(c) },
        None,
        content,
    ))
}
