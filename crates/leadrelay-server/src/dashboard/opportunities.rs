//! Opportunities: the list with its filters and word search, and the page a sales rep works
//! one in (the customer, every lead of theirs, status, owner, checklist, follow-ups, next
//! touch and the SLA clock). The search is posted, so the words never reach a URL or a log.

use std::collections::HashMap;

use axum::extract::{RawQuery, State};
use axum::response::{Html, IntoResponse, Response};
use leadrelay_core::access::Scope;
use leadrelay_core::audit::{AuditAction, AuditObject};
use leadrelay_core::sales::{ActivityKind, Opportunity, OpportunityStatus, Role, User, sla};
use leadrelay_core::storage::CustomerDetail;
use leadrelay_core::{Lead, OpportunityId, Timestamp, UserId};
use maud::{Markup, html};

use super::page::{
    self, AfterChange, Banner, Section, answer_change, choice, csrf, display_name, duration_text, options_with_any,
    redirect_done, time,
};
use super::search;
use super::session::{FormData, Member, PageQuery, PathId, Posted, UiError, check};
use crate::http::error::ApiError;
use crate::http::query::Query;
use crate::http::sales::{OpportunityListQuery, opportunity_filter};
use crate::ops::{NewActivity, OpportunityPatch, OpportunityView};
use crate::state::AppState;

/// What a list shows of each opportunity besides itself: its latest lead and the team's names.
pub struct CardContext {
    /// The latest lead of each opportunity (who it is).
    pub leads: HashMap<OpportunityId, Lead>,
    /// The names of the publisher's people (owners).
    pub names: HashMap<UserId, String>,
    /// When the SLA clocks are read.
    pub now: Timestamp,
}

impl CardContext {
    /// The latest leads of `items`, and the names of `users` (the publisher's people).
    pub async fn read(state: &AppState, users: &[User], items: &[Opportunity]) -> Result<Self, UiError> {
        let leads = state.ops.latest_leads(items).await?;
        Ok(Self { leads, names: names(users), now: state.ops.now() })
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
            Some(t) if t <= due => span.pill.good { "first touch after " (duration_text(t.since(o.opened_at).as_millis() as i64)) }
            Some(t) => span.pill.bad { "first touch late by " (duration_text(t.since(due).as_millis() as i64)) }
            None if o.status.is_closed() => span.pill { "closed untouched" }
            None if now >= due => span.pill.bad { "SLA breached " (duration_text(now.since(due).as_millis() as i64)) " ago" }
            None => span.pill.warn { "SLA: " (duration_text(due.since(now).as_millis() as i64)) " left" }
        }
    }
}

/// One opportunity in a list; its link's id is `{list}-{opportunity id}`, unique on the page, so
/// the live inbox can give the focus back to it after a refresh.
pub fn card(list: &str, o: &Opportunity, rows: &CardContext, member: &Member) -> Markup {
    let lead = rows.leads.get(&o.id);
    let name = lead.map_or_else(|| "(erased)".to_owned(), |l| display_name(&l.customer));
    let company = lead.and_then(|l| l.customer.company.clone());
    let offer = lead.and_then(|l| l.offer_title.clone()).or_else(|| o.offer.as_ref().map(ToString::to_string));
    html! {
        li {
            a.title id={ (list) "-" (o.id) } href={ "/ui/opportunities/" (o.id) } {
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
    let q = search::from_address::<OpportunityListQuery>(raw.as_deref())?;
    render_list(&state, &member, &q, None).await
}

/// `POST /ui/opportunities`: the list with the filters and words of the search form.
pub async fn search(State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { member, form } = posted;
    let result = match search::posted_filters::<OpportunityListQuery>(&form) {
        Ok(q) => render_list(&state, &member, &q, None).await.map(IntoResponse::into_response),
        Err(e) => Err(e),
    };
    let unfiltered = Query::none();
    answer_change(result, |banner| render_list(&state, &member, &unfiltered, Some(banner))).await
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
    let page_of = state.ops.storage().list_opportunities(&filter, &q.page()?).await.map_err(ApiError::from)?;
    let entry = state.ops.audit_entry(&member.actor(), Some(publisher), AuditAction::OpportunityList);
    state.ops.record(entry.count(page_of.items.len() as u64).text_search(filter.text.is_some())).await?;
    let users = state.ops.list_users(publisher).await?;
    let rows = CardContext::read(state, &users, &page_of.items).await?;
    let offers = state.ops.storage().list_offers(publisher).await.map_err(ApiError::from)?;
    let value = |name: &str| q.text(name).map(str::to_owned);
    let statuses =
        options_with_any("Any", OpportunityStatus::ALL.iter().map(|s| (s.as_str().to_owned(), s.as_str().to_owned())));
    let owners = options_with_any(
        "Any",
        [("me".to_owned(), "Me".to_owned()), ("none".to_owned(), "Unassigned".to_owned())]
            .into_iter()
            .chain(users.iter().map(|u| (u.id.to_string(), u.name.clone()))),
    );
    let offer_options = options_with_any("Any", offers.iter().map(|o| (o.id.to_string(), o.title.clone())));
    let dues = options_with_any(
        "Any",
        [("today", "Due today"), ("overdue", "Overdue"), ("sla_breached", "SLA breached")]
            .map(|(v, t)| (v.to_owned(), t.to_owned())),
    );
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
            ul.cards { @for o in &page_of.items { (card("list", o, &rows, member)) } }
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
    PathId(id): PathId,
    PageQuery(done): PageQuery<AfterChange>,
) -> Result<Html<String>, UiError> {
    let id = opportunity_id(&id)?;
    render(&state, &member, &id, done.banner()).await
}

/// What the panels of an opportunity's page read.
struct OpportunityPage<'a> {
    view: &'a OpportunityView,
    customer: &'a CustomerDetail,
    users: &'a [User],
    names: HashMap<UserId, String>,
    member: &'a Member,
    /// `/ui/opportunities/{id}`: where its forms post.
    base: String,
}

impl OpportunityPage<'_> {
    fn opportunity(&self) -> &Opportunity {
        &self.view.opportunity
    }

    /// Who an activity's or a tick's actor id is: a person's name, else the id (a token).
    fn actor_name(&self, actor: &str) -> String {
        UserId::parse(actor).and_then(|u| self.names.get(&u).cloned()).unwrap_or_else(|| actor.to_owned())
    }

    fn may_write(&self) -> bool {
        self.member.may(Scope::Write)
    }

    fn customer_panel(&self, person: Option<&leadrelay_core::Customer>) -> Markup {
        html! {
            section.panel aria-labelledby="h-customer" {
                h2 #h-customer { "Customer" }
                @if let Some(c) = person {
                    dl.facts {
                        dt { "Name" } dd { (display_name(c)) }
                        dt { "Company" } dd { (c.company.as_deref().unwrap_or("—")) }
                        dt { "Title" } dd { (c.title.as_deref().unwrap_or("—")) }
                        dt { "E-mail" } dd { (c.email.as_deref().unwrap_or("—")) }
                        dt { "Phone" } dd { (c.phone.as_deref().unwrap_or("—")) }
                        dt { "Country" } dd { (c.country.as_deref().unwrap_or("—")) }
                    }
                }
                p { a href={ "/ui/customers/" (self.customer.id) } { "The customer's page (merges and split)" } }
            }
        }
    }

    fn timeline_panel(&self) -> Markup {
        let leads = &self.customer.leads;
        html! {
            section.panel aria-labelledby="h-timeline" {
                h2 #h-timeline {
                    "Timeline " span.count { "(" (leads.len()) " " (if leads.len() == 1 { "lead" } else { "leads" }) ", every offer)" }
                }
                ol.timeline {
                    @for l in leads {
                        li {
                            (time(l.received_at, self.member)) " · "
                            a href={ "/ui/leads/" (l.id) } {
                                (l.offer_title.clone().or_else(|| l.offer.as_ref().map(ToString::to_string)).unwrap_or_else(|| "no offer".into()))
                            }
                            " · " (l.action.as_ref().map_or("—", |a| a.as_str())) " · " (l.stage.as_str())
                            " · " span.muted { (l.source.as_str()) }
                            @if l.duplicate_of.is_some() { " " span.pill { "duplicate" } }
                            @if self.opportunity().lead_ids.contains(&l.id) { " " span.pill.good { "this opportunity" } }
                        }
                    }
                }
            }
        }
    }

    fn follow_up_panel(&self) -> Markup {
        let o = self.opportunity();
        let target = self.view.target;
        let kinds: Vec<(String, String)> =
            ActivityKind::ALL.iter().map(|k| (k.as_str().to_owned(), k.as_str().to_owned())).collect();
        html! {
            section.panel aria-labelledby="h-log" {
                h2 #h-log { "Follow-ups " span.count { (o.follow_up_count()) " of " (target.min) "–" (target.max) } }
                @if o.activities.is_empty() { p { "Nothing logged yet." } }
                ol.timeline {
                    @for a in o.activities.iter().rev() {
                        li {
                            strong { (a.kind.as_str()) } " · " (time(a.at, self.member)) " · " (self.actor_name(&a.by))
                            @if let Some(out) = &a.outcome { div { (out) } }
                            @if let Some(note) = &a.note { div.muted { (note) } }
                        }
                    }
                }
                @if self.may_write() {
                    form method="post" action={ (self.base) "/activities" } {
                        (csrf(self.member))
                        h3 { "Log a follow-up" }
                        div.inline {
                            (choice("kind", "What", &kinds, Some("call")))
                            (page::field("outcome", "Outcome", "text", None, None, false))
                            (page::field("activity-next", "Next touch", "datetime-local", None, None, false))
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
    }

    fn status_panel(&self) -> Markup {
        let o = self.opportunity();
        let zone = self.member.zone();
        let owners: Vec<(String, String)> = std::iter::once(("none".to_owned(), "Unassigned".to_owned()))
            .chain(self.users.iter().filter(|u| u.role != Role::Viewer).map(|u| (u.id.to_string(), u.name.clone())))
            .collect();
        let statuses: Vec<(String, String)> =
            OpportunityStatus::ALL.iter().map(|s| (s.as_str().to_owned(), s.as_str().to_owned())).collect();
        html! {
            section.panel aria-labelledby="h-state" {
                h2 #h-state { "Status" }
                p { (status_pill(o.status)) @if let Some(r) = &o.reason { " " (r) } }
                dl.facts {
                    dt { "Stage" } dd { (o.stage.as_str()) }
                    dt { "Opened" } dd { (time(o.opened_at, self.member)) }
                    dt { "First touch due" } dd { (time(o.first_touch_due_at, self.member)) }
                    dt { "SLA" } dd #sla { (sla_clock(o, self.view.now)) }
                    dt { "Owner" } dd #owner { (o.owner.as_ref().and_then(|u| self.names.get(u)).map_or("Unassigned", String::as_str)) }
                    dt { "Next touch" } dd { (page::maybe_time(o.next_touch_at, self.member)) }
                }
                @if self.may_write() {
                    form method="post" action={ (self.base) "/status" } {
                        (csrf(self.member))
                        (choice("status", "New status", &statuses, Some(o.status.as_str())))
                        (page::field("reason", "Reason", "text", None,
                            Some("Needed for lost and disqualified, for going back, and for reopening."), false))
                        button type="submit" { "Change status" }
                    }
                    form method="post" action={ (self.base) "/owner" } {
                        (csrf(self.member))
                        (choice("owner", "Owner", &owners, Some(o.owner.as_ref().map_or("none", |u| u.as_str()))))
                        button type="submit" { "Assign" }
                    }
                    form method="post" action={ (self.base) "/next-touch" } {
                        (csrf(self.member))
                        (page::field("next_touch_at", &format!("Next touch ({zone})"), "datetime-local",
                            o.next_touch_at.map(|t| sla::local_input(t, zone)).as_deref(), None, false))
                        button type="submit" { "Set next touch" }
                    }
                }
            }
        }
    }

    fn checklist_panel(&self) -> Markup {
        html! {
            section.panel aria-labelledby="h-checklist" {
                h2 #h-checklist { "Qualification checklist" }
                ul.cards {
                    @for entry in &self.opportunity().checklist {
                        li {
                            @if entry.done {
                                span.pill.good { "done" } " " strong { (entry.item) }
                                @if let (Some(b), Some(at)) = (&entry.by, entry.at) { div.muted { (self.actor_name(b)) ", " (time(at, self.member)) } }
                            } @else {
                                span.pill { "open" } " " strong { (entry.item) }
                            }
                            @if self.may_write() {
                                form.actions method="post" action={ (self.base) "/checklist" } {
                                    (csrf(self.member))
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
}

async fn render(
    state: &AppState,
    member: &Member,
    id: &OpportunityId,
    banner: Option<Banner>,
) -> Result<Html<String>, UiError> {
    let view = state.ops.get_opportunity(id).await?;
    let publisher = &view.opportunity.publisher;
    check(member, publisher, Scope::Read, "opportunity")?;
    let customer = state.ops.get_customer(&view.opportunity.customer_id).await?;
    let entry = state.ops.audit_entry(&member.actor(), Some(publisher), AuditAction::OpportunityRead);
    state.ops.record(entry.object(AuditObject::Opportunity(id.clone()))).await?;
    let entry = state.ops.audit_entry(&member.actor(), Some(publisher), AuditAction::CustomerRead);
    state.ops.record(entry.object(AuditObject::Customer(customer.id.clone()))).await?;
    let users = state.ops.list_users(publisher).await?;
    let p = OpportunityPage {
        view: &view,
        customer: &customer,
        users: &users,
        names: names(&users),
        member,
        base: format!("/ui/opportunities/{id}"),
    };
    let lead_ids = &view.opportunity.lead_ids;
    let person =
        customer.leads.iter().rev().find(|l| lead_ids.contains(&l.id)).or(customer.leads.last()).map(|l| &l.customer);
    let content = html! {
        div.cols {
            div { (p.customer_panel(person)) (p.timeline_panel()) (p.follow_up_panel()) }
            div { (p.status_panel()) (p.checklist_panel()) }
        }
    };
    let title = person.map_or_else(|| "Opportunity".to_owned(), display_name);
    Ok(page::page(member, Section::Opportunities, &title, banner.as_ref(), content))
}

/// Answers a change to an opportunity from a posted form: `apply` reads the form and runs the
/// use case; then back to the page ([`answer_change`]).
async fn change(
    state: &AppState,
    id: &str,
    posted: Posted,
    code: &'static str,
    apply: impl AsyncFnOnce(&OpportunityId, &Member, &FormData) -> Result<(), UiError>,
) -> Response {
    let Posted { member, form } = posted;
    let id = match opportunity_id(id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let result = apply(&id, &member, &form).await;
    let path = format!("/ui/opportunities/{id}");
    answer_change(result.map(|()| redirect_done(&path, code)), |banner| render(state, &member, &id, Some(banner))).await
}

/// Applies `patch` as `member` (who needs the `write` scope on the opportunity's publisher).
async fn patch(state: &AppState, member: &Member, id: &OpportunityId, patch: OpportunityPatch) -> Result<(), UiError> {
    let may = |p: &leadrelay_core::PublisherId| check(member, p, Scope::Write, "opportunity");
    state.ops.update_opportunity(&member.actor(), id, patch, may).await.map(drop)
}

/// The time a form's `field` holds, entered in the publisher's zone.
fn next_touch(form: &FormData, field: &str, zone: &str) -> Result<Option<Timestamp>, UiError> {
    form.text(field)
        .map(|t| sla::parse_local(t, zone).ok_or_else(|| field_error(field, "must be a date and time")))
        .transpose()
}

fn field_error(name: &str, rule: &str) -> UiError {
    UiError::Api(ApiError::field(name, rule))
}

/// `POST /ui/opportunities/{id}/status` (`status`, `reason`)
pub async fn post_status(State(state): State<AppState>, PathId(id): PathId, posted: Posted) -> Response {
    change(&state, &id, posted, "status", async |id, member, form| {
        let status = form
            .text("status")
            .map(|s| OpportunityStatus::parse(s).ok_or_else(|| field_error("status", OpportunityStatus::RULE)))
            .transpose()?;
        let reason = form.text("reason").map(str::to_owned);
        patch(&state, member, id, OpportunityPatch { status, reason, ..OpportunityPatch::default() }).await
    })
    .await
}

/// `POST /ui/opportunities/{id}/owner` (`owner`: a user id, or `none`)
pub async fn post_owner(State(state): State<AppState>, PathId(id): PathId, posted: Posted) -> Response {
    change(&state, &id, posted, "owner", async |id, member, form| {
        let owner = match form.text("owner").unwrap_or("none") {
            "none" => None,
            text => Some(UserId::parse(text).ok_or_else(|| field_error("owner", "must be a person of the team"))?),
        };
        patch(&state, member, id, OpportunityPatch { owner: Some(owner), ..OpportunityPatch::default() }).await
    })
    .await
}

/// `POST /ui/opportunities/{id}/next-touch` (`next_touch_at`, in the publisher's zone; empty
/// clears it)
pub async fn post_next_touch(State(state): State<AppState>, PathId(id): PathId, posted: Posted) -> Response {
    change(&state, &id, posted, "next_touch", async |id, member, form| {
        let at = next_touch(form, "next_touch_at", member.zone())?;
        patch(&state, member, id, OpportunityPatch { next_touch_at: Some(at), ..OpportunityPatch::default() }).await
    })
    .await
}

/// `POST /ui/opportunities/{id}/activities` (`kind`, `outcome`, `note`, `activity-next`)
pub async fn post_activity(State(state): State<AppState>, PathId(id): PathId, posted: Posted) -> Response {
    change(&state, &id, posted, "activity", async |id, member, form| {
        let kind =
            form.text("kind").and_then(ActivityKind::parse).ok_or_else(|| field_error("kind", ActivityKind::RULE))?;
        let activity = NewActivity {
            kind,
            outcome: form.text("outcome").map(str::to_owned),
            note: form.text("note").map(str::to_owned),
            next_touch_at: next_touch(form, "activity-next", member.zone())?,
        };
        let may = |p: &leadrelay_core::PublisherId| check(member, p, Scope::Write, "opportunity");
        state.ops.add_activity(&member.actor(), id, activity, may).await.map(drop)
    })
    .await
}

/// `POST /ui/opportunities/{id}/checklist` (`item`; `done` true or false)
pub async fn post_checklist(State(state): State<AppState>, PathId(id): PathId, posted: Posted) -> Response {
    change(&state, &id, posted, "checklist", async |id, member, form| {
        let item = form.text("item").ok_or_else(|| field_error("item", "is required"))?;
        let done = form.text("done") != Some("false");
        let may = |p: &leadrelay_core::PublisherId| check(member, p, Scope::Write, "opportunity");
        state.ops.tick_checklist(&member.actor(), id, item, done, may).await.map(drop)
    })
    .await
}
