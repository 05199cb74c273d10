//! Destinations: each one's health, a form per kind built from what the kind says of its
//! settings (`Connector::settings_form`), Validate with the destination's answer and the hint
//! for fixing it, enable and disable, and replay of a time range.

use std::time::Duration;

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use leadrelay_core::access::Scope;
use leadrelay_core::destination::{DestinationRecord, FieldError, SettingField, SettingInput};
use leadrelay_core::sales::kpi::{DestinationHealth, KpiQuery};
use leadrelay_core::sales::sla;
use leadrelay_core::storage::ReplayRequest;
use leadrelay_core::{DestinationId, OfferId};
use maud::{Markup, html};
use serde_json::{Map, Value};

use super::page::{
    self, AfterChange, Banner, Section, answer_change, csrf, duration_text, percent, redirect_done, time,
};
use super::session::{FormData, Member, PageQuery, PathId, Posted, UiError, check};
use crate::http::error::ApiError;
use crate::ops::Validation;
use crate::state::AppState;

/// The period the health figures cover.
const HEALTH_DAYS: u64 = 7;

async fn health(state: &AppState, member: &Member) -> Result<Vec<DestinationHealth>, UiError> {
    let mut query = KpiQuery::new(member.user.publisher.clone());
    query.since = Some(state.ops.now().minus(Duration::from_secs(HEALTH_DAYS * 86_400)));
    Ok(state.ops.kpis(query).await?.destinations)
}

/// What a page calls the destination `id`: its name among `list`, else its id (one deleted
/// since, or not this publisher's).
pub fn name_of(list: &[DestinationRecord], id: &DestinationId) -> String {
    list.iter().find(|d| &d.id == id).map_or_else(|| id.to_string(), |d| d.name.clone())
}

fn state_pill(d: &DestinationRecord) -> Markup {
    html! {
        @if !d.enabled { span.pill.bad { "disabled" } }
        @else if d.consecutive_failures > 0 { span.pill.warn { "failing" } }
        @else { span.pill.good { "enabled" } }
    }
}

fn health_facts(h: Option<&DestinationHealth>) -> Markup {
    html! {
        @if let Some(h) = h {
            (h.deliveries) " deliveries · " (percent(h.success_rate)) " of attempts delivered · "
            (h.dead_letters) " dead letters"
            @if let Some(ms) = h.p95_lag_ms { " · 95 % within " (duration_text(ms)) }
        } @else { "no deliveries yet" }
    }
}

/// `GET /ui/destinations`
pub async fn list(State(state): State<AppState>, member: Member) -> Result<Html<String>, UiError> {
    render_list(&state, &member, None, None).await
}

async fn render_list(
    state: &AppState,
    member: &Member,
    banner: Option<Banner>,
    extra: Option<Markup>,
) -> Result<Html<String>, UiError> {
    let publisher = &member.user.publisher;
    check(member, publisher, Scope::Read, "publisher")?;
    let offers = state.ops.storage().list_offers(publisher).await.map_err(ApiError::from)?;
    let offer_options = page::options_with_any(
        "Any offer (named in each lead)",
        offers.iter().map(|o| (o.id.to_string(), o.title.clone())),
    );
    let list = state.ops.list_destinations(publisher).await?;
    let health = health(state, member).await?;
    let kinds: Vec<&str> = state.ops.destinations().kinds().collect();
    let content = html! {
        @if let Some(extra) = extra { (extra) }
        @if list.is_empty() { p { "No destination yet: leads are stored here, and go nowhere else." } }
        @else {
            (page::table_wrap("Destinations", html! {
                table {
                    caption.muted { "Health over the last " (HEALTH_DAYS) " days" }
                    thead { tr { th { "Name" } th { "Kind" } th { "State" } th { "Health" } } }
                    tbody {
                        @for d in &list {
                            tr {
                                td { a href={ "/ui/destinations/" (d.id) } { (d.name) } }
                                td { (d.kind) }
                                td { (state_pill(d)) }
                                td { (health_facts(health.iter().find(|h| h.destination == d.id))) }
                            }
                        }
                    }
                }
            }))
        }
        @if member.may(Scope::Write) {
            section.panel aria-labelledby="h-add" {
                h2 #h-add { "Add a destination" }
                ul.actions { @for k in &kinds { li { a.button.secondary href={ "/ui/destinations/new/" (k) } { "Add " (k) } } } }
            }
            section.panel aria-labelledby="h-receive" {
                h2 #h-receive { "Receiving leads" }
                p { "The marketplace sends leads to an address with a key in it. Make one here and paste it into the offer's "
                    "lead destination (Partner Center: Lead management, HTTPS endpoint)." }
                form method="post" action="/ui/ingest-keys" {
                    (csrf(member))
                    div.inline {
                        (page::choice("offer", "For", &offer_options, None))
                        button type="submit" { "Make an address" }
                    }
                }
            }
        }
    };
    Ok(page::page(member, Section::Destinations, "Destinations", banner.as_ref(), content))
}

/// `POST /ui/ingest-keys` (`offer` optional): a new address for the marketplace, shown once.
pub async fn create_ingest_key(State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { member, form } = posted;
    let result = async {
        let publisher = &member.user.publisher;
        check(&member, publisher, Scope::Write, "publisher")?;
        let offer =
            form.text("offer").map(OfferId::parse).transpose().map_err(|rule| ApiError::field("offer", rule))?;
        let (_, plain) = state.ops.create_ingest_key(&member.actor(), publisher, offer).await?;
        Ok(plain)
    }
    .await;
    match result {
        Ok(plain) => {
            let address = format!("{}/v1/ingest/microsoft/{plain}", state.config.public_url());
            let shown = html! {
                div.panel role="status" {
                    p { strong { "The address is made." } " It holds its key and is shown only now: copy it into the marketplace." }
                    p.secret { (address) }
                }
            };
            render_list(&state, &member, None, Some(shown)).await.into_response()
        }
        Err(e) => page::refused(e, |banner| async { render_list(&state, &member, Some(banner), None).await }).await,
    }
}

fn setting_control(f: &SettingField, value: Option<&str>) -> Markup {
    let name = format!("settings.{}", f.name);
    let id = format!("f-settings-{}", f.name);
    let help_id = format!("{id}-help");
    let described = (!f.help.is_empty()).then_some(help_id.as_str());
    html! {
        div.field {
            @match f.input {
                SettingInput::Toggle => {
                    div.check {
                        input #(id) type="checkbox" name=(name) value="true" checked[value == Some("true")] aria-describedby=[described];
                        label for=(id) { (f.label) }
                    }
                }
                _ => {
                    label for=(id) { (f.label) @if f.required { " " abbr title="required" { "*" } } }
                    @match f.input {
                        SettingInput::Choice(values) => {
                            select #(id) name=(name) aria-describedby=[described] {
                                @for v in values { option value=(v) selected[value == Some(*v)] { (v) } }
                            }
                        }
                        SettingInput::LongText => {
                            textarea #(id) name=(name) required[f.required] aria-describedby=[described] { (value.unwrap_or_default()) }
                        }
                        SettingInput::Secret => {
                            input #(id) type="password" name=(name) autocomplete="new-password" required[f.required] aria-describedby=[described];
                        }
                        SettingInput::Number => {
                            input #(id) type="number" name=(name) min="0" step="1" value=[value] required[f.required] aria-describedby=[described];
                        }
                        SettingInput::Url => {
                            input #(id) type="url" name=(name) value=[value] required[f.required] aria-describedby=[described];
                        }
                        _ => {
                            input #(id) type="text" name=(name) value=[value] required[f.required] aria-describedby=[described];
                        }
                    }
                }
            }
            @if !f.help.is_empty() { p.help #(help_id) { (f.help) } }
        }
    }
}

async fn render_new(
    state: &AppState,
    member: &Member,
    kind: &str,
    form: Option<&FormData>,
    banner: Option<Banner>,
) -> Result<Html<String>, UiError> {
    check(member, &member.user.publisher, Scope::Write, "publisher")?;
    let connector = state.ops.destinations().get(kind).ok_or(ApiError::NotFound("destination kind"))?;
    let offers = state.ops.storage().list_offers(&member.user.publisher).await.map_err(ApiError::from)?;
    let value = |name: &str| form.and_then(|f| f.text(name)).map(str::to_owned);
    let chosen: Vec<String> = form.map(|f| f.all("offer").map(str::to_owned).collect()).unwrap_or_default();
    let content = html! {
        form.panel method="post" action="/ui/destinations" {
            (csrf(member))
            input type="hidden" name="kind" value=(kind);
            (page::field("name", "Name", "text", value("name").as_deref(), Some("What your team calls it, 1-200 characters."), true))
            @for f in connector.settings_form() {
                @if f.is_secret() { (setting_control(f, None)) }
                @else { (setting_control(f, value(&format!("settings.{}", f.name)).as_deref())) }
            }
            fieldset {
                legend { "Offers" }
                p.help { "None ticked: the leads of every offer." }
                @for o in &offers {
                    div.check {
                        input type="checkbox" name="offer" value=(o.id) id={ "offer-" (o.id) } checked[chosen.contains(&o.id.to_string())];
                        label for={ "offer-" (o.id) } { (o.title) }
                    }
                }
            }
            button type="submit" { "Add destination" }
        }
    };
    Ok(page::page(member, Section::Destinations, &format!("New {kind} destination"), banner.as_ref(), content))
}

/// `GET /ui/destinations/new/{kind}`
pub async fn new_form(
    State(state): State<AppState>,
    member: Member,
    PathId(kind): PathId,
) -> Result<Html<String>, UiError> {
    render_new(&state, &member, &kind, None, None).await
}

/// The settings object of a posted form, typed by what the kind says of each field; blanks are
/// left out, so the kind's defaults apply.
fn settings_of(form: &FormData, fields: &[SettingField]) -> Result<Value, Vec<FieldError>> {
    let mut settings = Map::new();
    let mut errors = Vec::new();
    for f in fields {
        let name = format!("settings.{}", f.name);
        let value = match f.input {
            SettingInput::Toggle => Some(Value::Bool(form.checked(&name))),
            SettingInput::Number => match form.text(&name).map(str::parse::<u64>) {
                None => None,
                Some(Ok(n)) => Some(Value::from(n)),
                Some(Err(_)) => {
                    errors.push(FieldError::new(name.clone(), "must be a whole number"));
                    None
                }
            },
            SettingInput::Secret => {
                form.raw(&name).filter(|v| !v.trim().is_empty()).map(|v| Value::String(v.trim().to_owned()))
            }
            _ => form.text(&name).map(|v| Value::String(v.to_owned())),
        };
        if let Some(v) = value {
            settings.insert(f.name.to_owned(), v);
        }
    }
    if errors.is_empty() { Ok(Value::Object(settings)) } else { Err(errors) }
}

/// `POST /ui/destinations`: adds one; a secret the server generated is shown this once.
pub async fn create(State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { member, form } = posted;
    let kind = form.text("kind").unwrap_or_default().to_owned();
    let result = async {
        let publisher = &member.user.publisher;
        check(&member, publisher, Scope::Write, "publisher")?;
        let connector = state
            .ops
            .destinations()
            .get(&kind)
            .ok_or(ApiError::field("kind", "is not a destination kind of this server"))?;
        let settings = settings_of(&form, connector.settings_form()).map_err(ApiError::Validation)?;
        let offers: Vec<OfferId> = form
            .all("offer")
            .map(|o| OfferId::parse(o).map_err(|rule| ApiError::field("offers", rule)))
            .collect::<Result<_, _>>()?;
        let offers = (!offers.is_empty()).then_some(offers);
        let name = form.text("name").unwrap_or_default().to_owned();
        let (record, secret) =
            state.ops.create_destination(&member.actor(), publisher, name, &kind, settings, offers).await?;
        Ok((record, secret))
    }
    .await;
    match result {
        Ok((record, None)) => redirect_done(&format!("/ui/destinations/{}", record.id), "created").into_response(),
        Ok((record, Some(secret))) => {
            let shown = html! {
                div.panel role="status" {
                    p { strong { "The destination is added." } " Its signing secret is shown only now: copy it to the receiver." }
                    p.secret { (secret) }
                }
            };
            match render(&state, &member, &record.id, None, Some(shown)).await {
                Ok(html) => html.into_response(),
                Err(e) => e.into_response(),
            }
        }
        Err(e) => {
            page::refused(e, |banner| async { render_new(&state, &member, &kind, Some(&form), Some(banner)).await })
                .await
        }
    }
}

fn destination_id(id: &str) -> Result<DestinationId, UiError> {
    DestinationId::parse(id).ok_or(UiError::Api(ApiError::NotFound("destination")))
}

fn validation_panel(v: &Validation) -> Markup {
    html! {
        section.panel #validation role="status" aria-labelledby="h-validation" {
            h2 #h-validation { "Validation" }
            @match &v.error {
                None => {
                    p { span.pill.good { "passed" } " The destination accepted the test lead"
                        @if let Some(s) = v.status { " (HTTP " (s) ")" } "." }
                }
                Some((error, hint)) => {
                    p { span.pill.bad { "failed" } " " (error) @if let Some(s) = v.status { " (HTTP " (s) ")" } }
                    p #hint { strong { "Hint: " } (hint) }
                }
            }
            @if let Some(note) = &v.note { p.muted { (note) } }
            p.muted { "The test lead is stored as a test lead: " a href={ "/ui/leads/" (v.lead_id) } { "see it" } "." }
        }
    }
}

async fn render(
    state: &AppState,
    member: &Member,
    id: &DestinationId,
    banner: Option<Banner>,
    extra: Option<Markup>,
) -> Result<Html<String>, UiError> {
    let d = state.ops.get_destination(id).await?;
    check(member, &d.publisher, Scope::Read, "destination")?;
    let health = health(state, member).await?;
    let settings = state.ops.destinations().public_settings(&d.kind, &d.settings);
    let form = state.ops.destinations().get(&d.kind).map(|c| c.settings_form()).unwrap_or_default();
    let base = format!("/ui/destinations/{id}");
    let may_write = member.may(Scope::Write);
    let content = html! {
        @if let Some(extra) = extra { (extra) }
        div.grid {
            section.panel aria-labelledby="h-state" {
                h2 #h-state { "State" }
                p { (state_pill(&d)) @if let Some(r) = &d.disabled_reason { " " (r) } }
                dl.facts {
                    dt { "Kind" } dd { (d.kind) }
                    dt { "Health, " (HEALTH_DAYS) " days" } dd { (health_facts(health.iter().find(|h| h.destination == d.id))) }
                    dt { "Failures in a row" } dd { (d.consecutive_failures) }
                    dt { "Failing since" } dd { (page::maybe_time(d.failing_since, member)) }
                    dt { "Offers" } dd {
                        @match &d.offers { None => "every offer", Some(o) => (o.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")) }
                    }
                    dt { "Added" } dd { (time(d.created_at, member)) }
                }
                p {
                    a href={ "/ui/deliveries?destination=" (d.id) "&status=dead" } { "Dead letters" } " · "
                    a href={ "/ui/deliveries?destination=" (d.id) } { "All deliveries" }
                }
                @if may_write {
                    div.actions {
                        form method="post" action={ (base) "/validate" } { (csrf(member)) button type="submit" { "Validate" } }
                        @if d.enabled {
                            form method="post" action={ (base) "/disable" } { (csrf(member)) button.secondary type="submit" { "Disable" } }
                        } @else {
                            form method="post" action={ (base) "/enable" } { (csrf(member)) button.secondary type="submit" { "Enable" } }
                        }
                    }
                }
            }
            section.panel aria-labelledby="h-settings" {
                h2 #h-settings { "Settings" }
                dl.facts {
                    @for f in form {
                        dt { (f.label) }
                        dd {
                            @if f.is_secret() { span.muted { "(secret, not shown)" } }
                            @else {
                                @match settings.get(f.name) {
                                    Some(Value::String(s)) => (s),
                                    Some(Value::Null) | None => span.muted { "default" },
                                    Some(other) => (other.to_string()),
                                }
                            }
                        }
                    }
                }
            }
        }
        @if may_write {
            section.panel aria-labelledby="h-replay" {
                h2 #h-replay { "Replay" }
                p.help { "Sends the leads of a time range to this destination again, including leads from before it existed. \
                          Times are in " (member.zone()) "." }
                form method="post" action={ (base) "/replay" } data-confirm="Send these leads to this destination again?" {
                    (csrf(member))
                    div.inline {
                        (page::field("since", "From", "datetime-local", None, None, false))
                        (page::field("until", "Until", "datetime-local", None, None, false))
                    }
                    div.check {
                        input #f-only-dead type="checkbox" name="only_dead" value="true";
                        label for="f-only-dead" { "Only its dead letters" }
                    }
                    button type="submit" { "Replay" }
                }
            }
        }
    };
    Ok(page::page(member, Section::Destinations, &d.name, banner.as_ref(), content))
}

/// `GET /ui/destinations/{id}`
pub async fn get(
    State(state): State<AppState>,
    member: Member,
    PathId(id): PathId,
    PageQuery(done): PageQuery<AfterChange>,
) -> Result<Html<String>, UiError> {
    let id = destination_id(&id)?;
    render(&state, &member, &id, done.banner(), None).await
}

/// The destination, when `member` may change it (the `write` scope on its publisher).
async fn writable_destination(
    state: &AppState,
    member: &Member,
    id: &DestinationId,
) -> Result<DestinationRecord, UiError> {
    let d = state.ops.get_destination(id).await?;
    check(member, &d.publisher, Scope::Write, "destination")?;
    Ok(d)
}

/// `POST /ui/destinations/{id}/validate`: sends the test lead now and shows the answer. The
/// answer is the page itself, not a redirect: it is this one send's result (sending again,
/// after a reload the browser asks about, only sends another test lead).
pub async fn validate(State(state): State<AppState>, PathId(id): PathId, posted: Posted) -> Response {
    let member = posted.member;
    let id = match destination_id(&id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let result = async {
        writable_destination(&state, &member, &id).await?;
        let v = state.ops.validate_destination(&member.actor(), &id).await?;
        render(&state, &member, &id, None, Some(validation_panel(&v))).await
    }
    .await;
    answer_change(result, |banner| render(&state, &member, &id, Some(banner), None)).await
}

async fn set_enabled(state: AppState, id: String, posted: Posted, enabled: bool) -> Response {
    let member = posted.member;
    let id = match destination_id(&id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let result = async {
        writable_destination(&state, &member, &id).await?;
        state.ops.set_destination_enabled(&member.actor(), &id, enabled).await?;
        Ok(redirect_done(&format!("/ui/destinations/{id}"), if enabled { "enabled" } else { "disabled" }))
    }
    .await;
    answer_change(result, |banner| render(&state, &member, &id, Some(banner), None)).await
}

/// `POST /ui/destinations/{id}/enable`
pub async fn enable(State(state): State<AppState>, PathId(id): PathId, posted: Posted) -> Response {
    set_enabled(state, id, posted, true).await
}

/// `POST /ui/destinations/{id}/disable`
pub async fn disable(State(state): State<AppState>, PathId(id): PathId, posted: Posted) -> Response {
    set_enabled(state, id, posted, false).await
}

/// `POST /ui/destinations/{id}/replay` (`since`, `until` in the publisher's zone, `only_dead`),
/// then back to the page with how many leads were queued.
pub async fn replay(State(state): State<AppState>, PathId(id): PathId, posted: Posted) -> Response {
    let Posted { member, form } = posted;
    let id = match destination_id(&id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let result = async {
        writable_destination(&state, &member, &id).await?;
        let time = |name: &str| {
            form.text(name)
                .map(|t| {
                    sla::parse_local(t, member.zone()).ok_or_else(|| ApiError::field(name, "must be a date and time"))
                })
                .transpose()
        };
        let request = ReplayRequest {
            destination: id.clone(),
            since: time("since")?,
            until: time("until")?,
            only_dead: form.checked("only_dead"),
        };
        let queued = state.ops.replay(&member.actor(), request).await?;
        Ok(axum::response::Redirect::to(&format!("/ui/destinations/{id}?done=replayed&count={queued}")))
    }
    .await;
    answer_change(result, |banner| render(&state, &member, &id, Some(banner), None)).await
}
