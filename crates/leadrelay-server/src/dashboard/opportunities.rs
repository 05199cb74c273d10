//! Opportunities: the list with its filters and word search, and the page a sales rep works
//! one in (the customer, every lead of theirs, status, owner, checklist, follow-ups, next
//! touch and the SLA clock). The search is posted, so the words never reach a URL or a log.

use std::collections::HashMap;

use axum::extract::{Path, Query as UrlQuery, RawQuery, State};
use axum::response::{Html, IntoResponse, Response};
use leadrelay_core::access::Scope;
use leadrelay_core::audit::{AuditAction, AuditObject};
use leadrelay_core::sales::{ActivityKind, Opportunity, OpportunityStatus, User, sla};
use leadrelay_core::{Lead, OpportunityId, PublisherId, Timestamp, UserId};
use maud::{Markup, html};

use super::page::{self, AfterChange, Banner, Section, after, choice, csrf, settle, span, time, who};
use super::session::{Member, Posted, UiError, check};
use crate::http::error::ApiError;
use crate::http::query::Query;
use crate::http::sales::{OpportunityListQuery, opportunity_filter};
use crate::ops::{NewActivity, OpportunityPatch};
use crate::state::AppState;

/// What a list shows of each opportunity besides itself: its latest lead and the team's names.
pub struct Rows {
    pub leads: HashMap<OpportunityId, Lead>,
    pub names: HashMap<UserId, String>,
    pub now: Timestamp,
}

impl Rows {
    /// The latest leads of `items` and the names of the publisher's people.
    pub async fn read(
        state: &AppState,
        member: &Member,
        items: &[Opportunity],
        now: Timestamp,
    ) -> Result<Self, UiError> {
        let leads = state.ops.latest_leads(items).await?;
        let names = names(&state.ops.list_users(&member.user.publisher).await?);
        Ok(Self { leads, names, now })
    }
}

fn names(users: &[User]) -> HashMap<UserId, String> {
    users.iter().map(|u| (u.id.clone(), u.name.clone())).collect()
}

/// A status as a pill.
pub fn status_pill(status: OpportunityStatus) -> Markup {
    let class = match status {
        OpportunityStatus::Won | OpportunityStatus::Qualified => "pill good",
        OpportunityStatus::Lost | OpportunityStatus::Disqualified => "pill bad",
        OpportunityStatus::New | OpportunityStatus::Contacted => "pill",
    };
    html! { span class=(class) { (status.as_str()) } }
}

/// Where the first-touch SLA stands, now.
pub fn sla_clock(o: &Opportunity, now: Timestamp) -> Markup {
    let due = o.first_touch_due_at;
    html! {
        @match o.first_touched_at {
            Some(t) if t <= due => span.pill.good { "first touch after " (span(t.since(o.opened_at).as_millis() as i64)) }
            Some(t) => span.pill.bad { "first touch late by " (span(t.since(due).as_millis() as i64)) }
            None if o.status.is_closed() => span.pill { "closed untouched" }
            None if now >= due => span.pill.bad { "SLA breached " (span(now.since(due).as_millis() as i64)) " ago" }
            None => span.pill.warn { "SLA: " (span(due.since(now).as_millis() as i64)) " left" }
        }
    }
}

/// One opportunity in a list.
pub fn card(o: &Opportunity, rows: &Rows, member: &Member) -> Markup {
    let lead = rows.leads.get(&o.id);
    let name = lead.map_or_else(|| "(erased)".to_owned(), |l| who(&l.customer));
    let company = lead.and_then(|l| l.customer.company.clone());
    let offer = lead.and_then(|l| l.offer_title.clone()).or_else(|| o.offer.as_ref().map(ToString::to_string));
    html! {
        li {
            a.title href={ "/ui/opportunities/" (o.id) } {
                (name) @if let Some(c) = &company { " · " (c) }
            }
            div.meta {
                (status_pill(o.status))
                (sla_clock(o, rows.now))
                @if let Some(offer) = &offer { span { (offer) } }
                span { "opened " (time(o.opened_at, member)) }
                span {
                    @match &o.owner {
                        Some(u) => { "owner " (rows.names.get(u).map_or(u.as_str(), String::as_str)) }
                        None => { "unassigned" }
                    }
                }
            }
        }
    }
}

const LIST_FIELDS: [&str; 5] = ["status", "owner", "offer", "due", "q"];

/// `GET /ui/opportunities`: the list, with filters from the address (never words to search).
pub async fn list(
    State(state): State<AppState>,
    member: Member,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, UiError> {
    let q = Query::parse_for_and::<OpportunityListQuery>(raw.as_deref(), &["done"])?;
    if q.text("q").is_some() {
        return Err(ApiError::field("q", "is posted from the search form, never put in an address").into());
    }
    render_list(&state, &member, &q, None).await
}

/// `POST /ui/opportunities`: the list with the filters and words of the search form.
pub async fn search(State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { member, form } = posted;
    let body = form.encoded();
    let result = Query::parse_for_and::<OpportunityListQuery>(Some(&body), &[super::session::CSRF_FIELD]);
    match result {
        Ok(q) => match render_list(&state, &member, &q, None).await {
            Ok(html) => html.into_response(),
            Err(e) => refused_list(&state, &member, e).await,
        },
        Err(e) => refused_list(&state, &member, e.into()).await,
    }
}

async fn refused_list(state: &AppState, member: &Member, e: UiError) -> Response {
    let empty = Query::parse(None, &[]).unwrap_or_else(|_| unreachable!("no parameters"));
    settle(Err(e), |banner| async move { render_list(state, member, &empty, Some(banner)).await }).await
}

async fn render_list(
    state: &AppState,
    member: &Member,
    q: &Query,
    banner: Option<Banner>,
) -> Result<Html<String>, UiError> {
    let publisher = &member.user.publisher;
    check(member, publisher, Scope::Read, "publisher")?;
    let filter = opportunity_filter(state, q, publisher, Some(&member.user.id)).await?;
    let (page_of, _, now) = state.ops.list_opportunities(&filter, &q.page()?).await?;
    let entry = state.ops.audit_entry(&member.actor(), Some(publisher), AuditAction::OpportunityList);
    state.ops.record(entry.count(page_of.items.len() as u64).text_search(filter.text.is_some())).await?;
    let rows = Rows::read(state, member, &page_of.items, now).await?;
    let users = state.ops.list_users(publisher).await?;
    let offers = state.ops.storage().list_offers(publisher).await.map_err(ApiError::from)?;
    let value = |name: &str| q.text(name).map(str::to_owned);
    let any = || vec![(String::new(), "Any".to_owned())];
    let statuses: Vec<(String, String)> = any()
        .into_iter()
        .chain(OpportunityStatus::ALL.iter().map(|s| (s.as_str().to_owned(), s.as_str().to_owned())))
        .collect();
    let owners: Vec<(String, String)> = any()
        .into_iter()
        .chain([("me".to_owned(), "Me".to_owned()), ("none".to_owned(), "Unassigned".to_owned())])
        .chain(users.iter().map(|u| (u.id.to_string(), u.name.clone())))
        .collect();
    let offer_options: Vec<(String, String)> =
        any().into_iter().chain(offers.iter().map(|o| (o.id.to_string(), o.title.clone()))).collect();
    let dues: Vec<(String, String)> = any()
        .into_iter()
        .chain([
            ("today".to_owned(), "Due today".to_owned()),
            ("overdue".to_owned(), "Overdue".to_owned()),
            ("sla_breached".to_owned(), "SLA breached".to_owned()),
        ])
        .collect();
    let kept: Vec<(&str, String)> = LIST_FIELDS.iter().map(|f| (*f, value(f).unwrap_or_default())).collect();
    let content = html! {
        form.filters method="post" action="/ui/opportunities" role="search" aria-label="Filter opportunities" {
            (csrf(member))
            div.inline {
                div.field {
                    label for="f-q" { "Search words" }
                    input #f-q type="search" name="q" value=[value("q")] aria-describedby="f-q-help";
                }
                (choice("status", "Status", &statuses, value("status").as_deref()))
                (choice("owner", "Owner", &owners, value("owner").as_deref()))
                (choice("offer", "Offer", &offer_options, value("offer").as_deref()))
                (choice("due", "Due", &dues, value("due").as_deref()))
                button type="submit" { "Filter" }
            }
            p.help #f-q-help { "Whole words of a name, an e-mail address or a company; every word must match." }
        }
        @if page_of.items.is_empty() {
            p { "No opportunity matches." }
        } @else {
            ul.cards { @for o in &page_of.items { (card(o, &rows, member)) } }
        }
        (page::next_page(member, "/ui/opportunities", &kept, page_of.next_cursor.as_deref()))
    };
    Ok(page::page(member, Section::Opportunities, "Opportunities", banner.as_ref(), content))
}

fn opportunity_id(id: &str) -> Result<OpportunityId, UiError> {
    OpportunityId::parse(id).ok_or(UiError::Api(ApiError::NotFound("opportunity")))
}

/// `GET /ui/opportunities/{id}`
pub async fn get(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
    UrlQuery(done): UrlQuery<AfterChange>,
) -> Result<Html<String>, UiError> {
    let id = opportunity_id(&id)?;
    render(&state, &member, &id, done.banner()).await
}

async fn render(
    state: &AppState,
    member: &Member,
    id: &OpportunityId,
    banner: Option<Banner>,
) -> Result<Html<String>, UiError> {
    let view = state.ops.get_opportunity(id).await?;
    let o = &view.opportunity;
    check(member, &o.publisher, Scope::Read, "opportunity")?;
    let customer = state.ops.get_customer(&o.customer_id).await?;
    let entry = state.ops.audit_entry(&member.actor(), Some(&o.publisher), AuditAction::OpportunityRead);
    state.ops.record(entry.object(AuditObject::Opportunity(id.clone()))).await?;
    let entry = state.ops.audit_entry(&member.actor(), Some(&o.publisher), AuditAction::CustomerRead);
    state.ops.record(entry.object(AuditObject::Customer(customer.id.clone()))).await?;
    let users = state.ops.list_users(&o.publisher).await?;
    let names = names(&users);
    let latest = customer.leads.iter().rev().find(|l| o.lead_ids.contains(&l.id)).or(customer.leads.last());
    let person = latest.map(|l| &l.customer);
    let title = person.map_or_else(|| "Opportunity".to_owned(), who);
    let may_write = member.may(Scope::Write);
    let zone = member.zone();
    let base = format!("/ui/opportunities/{id}");
    let by =
        |actor: &str| UserId::parse(actor).and_then(|u| names.get(&u).cloned()).unwrap_or_else(|| actor.to_owned());
    let owners: Vec<(String, String)> = std::iter::once(("none".to_owned(), "Unassigned".to_owned()))
        .chain(
            users
                .iter()
                .filter(|u| u.role != leadrelay_core::sales::Role::Viewer)
                .map(|u| (u.id.to_string(), u.name.clone())),
        )
        .collect();
    let statuses: Vec<(String, String)> =
        OpportunityStatus::ALL.iter().map(|s| (s.as_str().to_owned(), s.as_str().to_owned())).collect();
    let kinds: Vec<(String, String)> =
        ActivityKind::ALL.iter().map(|k| (k.as_str().to_owned(), k.as_str().to_owned())).collect();
    let target = view.target;
    let content = html! {
        div.cols {
            div {
                section.panel aria-labelledby="h-customer" {
                    h2 #h-customer { "Customer" }
                    @if let Some(c) = person {
                        dl.facts {
                            dt { "Name" } dd { (who(c)) }
                            dt { "Company" } dd { (c.company.as_deref().unwrap_or("—")) }
                            dt { "Title" } dd { (c.title.as_deref().unwrap_or("—")) }
                            dt { "E-mail" } dd { (c.email.as_deref().unwrap_or("—")) }
                            dt { "Phone" } dd { (c.phone.as_deref().unwrap_or("—")) }
                            dt { "Country" } dd { (c.country.as_deref().unwrap_or("—")) }
                        }
                    }
                    p { a href={ "/ui/customers/" (customer.id) } { "The customer's page (merges and split)" } }
                }
                section.panel aria-labelledby="h-timeline" {
                    h2 #h-timeline { "Timeline " span.count { "(" (customer.leads.len()) " " (if customer.leads.len() == 1 { "lead" } else { "leads" }) ", every offer)" } }
                    ol.timeline {
                        @for l in &customer.leads {
                            li {
                                (time(l.received_at, member)) " · "
                                a href={ "/ui/leads/" (l.id) } {
                                    (l.offer_title.clone().or_else(|| l.offer.as_ref().map(ToString::to_string)).unwrap_or_else(|| "no offer".into()))
                                }
                                " · " (l.action.as_ref().map_or("—", |a| a.as_str())) " · " (l.stage.as_str())
                                " · " span.muted { (l.source.as_str()) }
                                @if l.duplicate_of.is_some() { " " span.pill { "duplicate" } }
                                @if o.lead_ids.contains(&l.id) { " " span.pill.good { "this opportunity" } }
                            }
                        }
                    }
                }
                section.panel aria-labelledby="h-log" {
                    h2 #h-log { "Follow-ups " span.count { (o.follow_up_count()) " of " (target.min) "–" (target.max) } }
                    @if o.activities.is_empty() { p { "Nothing logged yet." } }
                    ol.timeline {
                        @for a in o.activities.iter().rev() {
                            li {
                                strong { (a.kind.as_str()) } " · " (time(a.at, member)) " · " (by(&a.by))
                                @if let Some(out) = &a.outcome { div { (out) } }
                                @if let Some(note) = &a.note { div.muted { (note) } }
                            }
                        }
                    }
                    @if may_write {
                        form method="post" action={ (base) "/activities" } {
                            (csrf(member))
                            h3 { "Log a follow-up" }
                            div.inline {
                                (choice("kind", "What", &kinds, Some("call")))
                                div.field {
                                    label for="f-outcome" { "Outcome" }
                                    input #f-outcome type="text" name="outcome" maxlength="200";
                                }
                                div.field {
                                    label for="f-activity-next" { "Next touch" }
                                    input #f-activity-next type="datetime-local" name="next_touch_at";
                                }
                            }
                            div.field {
                                label for="f-note" { "Note" }
                                textarea #f-note name="note" maxlength="4000" {}
                            }
                            button type="submit" { "Log follow-up" }
                        }
                    }
                }
            }
            div {
                section.panel aria-labelledby="h-state" {
                    h2 #h-state { "Status" }
                    p { (status_pill(o.status)) @if let Some(r) = &o.reason { " " (r) } }
                    dl.facts {
                        dt { "Stage" } dd { (o.stage.as_str()) }
                        dt { "Opened" } dd { (time(o.opened_at, member)) }
                        dt { "First touch due" } dd { (time(o.first_touch_due_at, member)) }
                        dt { "SLA" } dd #sla { (sla_clock(o, view.now)) }
                        dt { "Owner" } dd #owner { (o.owner.as_ref().and_then(|u| names.get(u)).map_or("Unassigned", String::as_str)) }
                        dt { "Next touch" } dd { (page::maybe_time(o.next_touch_at, member)) }
                    }
                    @if may_write {
                        form method="post" action={ (base) "/status" } {
                            (csrf(member))
                            (choice("status", "New status", &statuses, Some(o.status.as_str())))
                            div.field {
                                label for="f-reason" { "Reason" }
                                input #f-reason type="text" name="reason" maxlength="500" aria-describedby="f-reason-help";
                                p.help #f-reason-help { "Needed for lost and disqualified, for going back, and for reopening." }
                            }
                            button type="submit" { "Change status" }
                        }
                        form method="post" action={ (base) "/owner" } {
                            (csrf(member))
                            (choice("owner", "Owner", &owners, Some(o.owner.as_ref().map_or("none", |u| u.as_str()))))
                            button type="submit" { "Assign" }
                        }
                        form method="post" action={ (base) "/next-touch" } {
                            (csrf(member))
                            div.field {
                                label for="f-next" { "Next touch (" (zone) ")" }
                                input #f-next type="datetime-local" name="next_touch_at"
                                    value=[o.next_touch_at.map(|t| sla::local_input(t, zone))];
                            }
                            button type="submit" { "Set next touch" }
                        }
                    }
                }
                section.panel aria-labelledby="h-checklist" {
                    h2 #h-checklist { "Qualification checklist" }
                    ul.cards {
                        @for entry in &o.checklist {
                            li {
                                @if entry.done {
                                    span.pill.good { "done" } " " strong { (entry.item) }
                                    @if let (Some(b), Some(at)) = (&entry.by, entry.at) { div.muted { (by(b)) ", " (time(at, member)) } }
                                } @else {
                                    span.pill { "open" } " " strong { (entry.item) }
                                }
                                @if may_write {
                                    form.actions method="post" action={ (base) "/checklist" } {
                                        (csrf(member))
                                        input type="hidden" name="item" value=(entry.item);
                                        input type="hidden" name="done" value=(if entry.done { "false" } else { "true" });
                                        button.secondary type="submit" {
                                            @if entry.done { "Undo " (entry.item) } @else { "Tick " (entry.item) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page::page(member, Section::Opportunities, &title, banner.as_ref(), content))
}

/// Answers a change to an opportunity as [`settle`] does.
async fn finish(
    state: &AppState,
    member: &Member,
    id: &OpportunityId,
    code: &'static str,
    result: Result<(), UiError>,
) -> Response {
    let path = format!("/ui/opportunities/{id}");
    settle(result.map(|()| after(&path, code)), |banner| async move { render(state, member, id, Some(banner)).await })
        .await
}

fn next_touch(text: Option<&str>, zone: &str, field: &str) -> Result<Option<Timestamp>, UiError> {
    text.map(|t| {
        sla::parse_local(t, zone).ok_or_else(|| UiError::Api(ApiError::field(field, "must be a date and time")))
    })
    .transpose()
}

/// `POST /ui/opportunities/{id}/status`
pub async fn post_status(State(state): State<AppState>, Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { member, form } = posted;
    let id = match opportunity_id(&id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let result = async {
        let status = form
            .text("status")
            .map(|s| {
                OpportunityStatus::parse(s)
                    .ok_or_else(|| UiError::Api(ApiError::field("status", OpportunityStatus::RULE)))
            })
            .transpose()?;
        let patch =
            OpportunityPatch { status, reason: form.text("reason").map(str::to_owned), ..OpportunityPatch::default() };
        let may = |p: &PublisherId| check(&member, p, Scope::Write, "opportunity");
        state.ops.update_opportunity(&member.actor(), &id, patch, may).await.map(drop)
    }
    .await;
    finish(&state, &member, &id, "status", result).await
}

/// `POST /ui/opportunities/{id}/owner` (`none`: unassigned)
pub async fn post_owner(State(state): State<AppState>, Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { member, form } = posted;
    let id = match opportunity_id(&id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let result = async {
        let owner = match form.text("owner").unwrap_or("none") {
            "none" => None,
            text => Some(
                UserId::parse(text)
                    .ok_or_else(|| UiError::Api(ApiError::field("owner", "must be a person of the team")))?,
            ),
        };
        let patch = OpportunityPatch { owner: Some(owner), ..OpportunityPatch::default() };
        let may = |p: &PublisherId| check(&member, p, Scope::Write, "opportunity");
        state.ops.update_opportunity(&member.actor(), &id, patch, may).await.map(drop)
    }
    .await;
    finish(&state, &member, &id, "owner", result).await
}

/// `POST /ui/opportunities/{id}/next-touch` (empty: cleared)
pub async fn post_next_touch(State(state): State<AppState>, Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { member, form } = posted;
    let id = match opportunity_id(&id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let result = async {
        let at = next_touch(form.text("next_touch_at"), member.zone(), "next_touch_at")?;
        let patch = OpportunityPatch { next_touch_at: Some(at), ..OpportunityPatch::default() };
        let may = |p: &PublisherId| check(&member, p, Scope::Write, "opportunity");
        state.ops.update_opportunity(&member.actor(), &id, patch, may).await.map(drop)
    }
    .await;
    finish(&state, &member, &id, "next_touch", result).await
}

/// `POST /ui/opportunities/{id}/activities`
pub async fn post_activity(State(state): State<AppState>, Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { member, form } = posted;
    let id = match opportunity_id(&id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let result = async {
        let kind = form
            .text("kind")
            .and_then(ActivityKind::parse)
            .ok_or_else(|| UiError::Api(ApiError::field("kind", ActivityKind::RULE)))?;
        let activity = NewActivity {
            kind,
            outcome: form.text("outcome").map(str::to_owned),
            note: form.text("note").map(str::to_owned),
            next_touch_at: next_touch(form.text("next_touch_at"), member.zone(), "next_touch_at")?,
        };
        let may = |p: &PublisherId| check(&member, p, Scope::Write, "opportunity");
        state.ops.add_activity(&member.actor(), &id, activity, may).await.map(drop)
    }
    .await;
    finish(&state, &member, &id, "activity", result).await
}

/// `POST /ui/opportunities/{id}/checklist` (`item`; `done` true or false)
pub async fn post_checklist(State(state): State<AppState>, Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { member, form } = posted;
    let id = match opportunity_id(&id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let result = async {
        let item = form.text("item").ok_or_else(|| UiError::Api(ApiError::field("item", "is required")))?;
        let done = form.text("done") != Some("false");
        let may = |p: &PublisherId| check(&member, p, Scope::Write, "opportunity");
        state.ops.tick_checklist(&member.actor(), &id, item, done, may).await.map(drop)
    }
    .await;
    finish(&state, &member, &id, "checklist", result).await
}
