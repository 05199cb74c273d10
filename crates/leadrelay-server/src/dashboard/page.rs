//! The frame every page shares (the navigation, the signed-in person, the banner that says
//! what just happened or why it was refused) and the small pieces pages are made of. Every
//! value goes into the page through `maud`, which escapes it: a lead named `<script>` is text.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use leadrelay_core::Timestamp;
use leadrelay_core::sales::sla;
use maud::{DOCTYPE, Markup, html};

use super::session::{CSRF_FIELD, Member, UiError};
use crate::http::error::ApiError;

/// The sections of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Inbox,
    Opportunities,
    Leads,
    Offers,
    Destinations,
    Deliveries,
    Kpis,
    Team,
    Audit,
}

const NAV: [(Section, &str, &str); 9] = [
    (Section::Inbox, "/ui/", "Inbox"),
    (Section::Opportunities, "/ui/opportunities", "Opportunities"),
    (Section::Leads, "/ui/leads", "Leads"),
    (Section::Offers, "/ui/offers", "Offers"),
    (Section::Destinations, "/ui/destinations", "Destinations"),
    (Section::Deliveries, "/ui/deliveries", "Deliveries"),
    (Section::Kpis, "/ui/kpis", "KPIs"),
    (Section::Team, "/ui/team", "Team"),
    (Section::Audit, "/ui/audit", "Audit log"),
];

/// What a page says above its content: what was just done, or why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Banner {
    /// A change went through (a text of ours, never one a request brought).
    Done(String),
    /// A change was refused: the message and each field's rule.
    Refused { message: String, fields: Vec<(String, String)> },
}

impl Banner {
    /// The banner of a refused change.
    pub fn refused(error: &ApiError) -> Self {
        let body = error.body().error;
        let fields = body.fields.unwrap_or_default().into_iter().map(|f| (f.path, f.message)).collect();
        Self::Refused { message: body.message, fields }
    }
}

/// What each `?done=` code of a redirect after a change says. Only these fixed texts are ever
/// shown, so a link cannot put words on a page.
const DONE: &[(&str, &str)] = &[
    ("status", "The status is changed."),
    ("owner", "The owner is changed."),
    ("activity", "The follow-up is logged."),
    ("checklist", "The checklist is updated."),
    ("next_touch", "The next touch is set."),
    ("split", "The leads are split into a new customer."),
    ("created", "The destination is added."),
    ("enabled", "The destination is enabled; its queue is delivered."),
    ("disabled", "The destination is disabled; its leads wait in its queue."),
    ("retried", "The delivery is queued again."),
    ("settings", "The sales settings are saved."),
    ("offer", "The offer is saved."),
];

/// A page's `?done=` code: what the change that led here did (and, for a replay, `count`: how
/// many leads it queued).
#[derive(Debug, serde::Deserialize)]
pub struct AfterChange {
    done: Option<String>,
    count: Option<u64>,
}

impl AfterChange {
    /// The banner the code names, if it names one.
    pub fn banner(&self) -> Option<Banner> {
        let code = self.done.as_deref()?;
        if code == "replayed" {
            let n = self.count?;
            let leads = if n == 1 { "1 lead is".to_owned() } else { format!("{n} leads are") };
            return Some(Banner::Done(format!("{leads} queued for this destination again.")));
        }
        DONE.iter().find(|(c, _)| *c == code).map(|(_, text)| Banner::Done((*text).to_owned()))
    }
}

/// The address to go back to after a change: `path?done=code`.
pub fn redirect_done(path: &str, code: &'static str) -> Redirect {
    debug_assert!(DONE.iter().any(|(c, _)| *c == code), "{code} has a text");
    Redirect::to(&format!("{path}?done={code}"))
}

/// A customer as a person reads them: the name, else the e-mail address, else a placeholder.
pub fn display_name(c: &leadrelay_core::Customer) -> String {
    let name = [c.first_name.as_deref(), c.last_name.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" ");
    if !name.trim().is_empty() {
        return name;
    }
    c.email.clone().unwrap_or_else(|| "(no name)".to_owned())
}

/// Every page's `<head>`: the phone-width viewport, the stylesheet and the script.
fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · leadrelay" }
            link rel="stylesheet" href="/ui/assets/app.css";
            script src="/ui/assets/app.js" defer {}
        }
    }
}

/// A page without the navigation, for nobody signed in yet (sign-in, invitation, errors).
pub fn bare(title: &str, content: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body { main #main.narrow { h1 { (title) } (content) } }
        }
    };
    Html(markup.into_string())
}

/// A whole page for `member`.
pub fn page(member: &Member, section: Section, title: &str, banner: Option<&Banner>, content: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/ui/" { "leadrelay" }
                    nav aria-label="Sections" {
                        ul {
                            @for (s, href, label) in NAV {
                                li {
                                    @if s == section {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    div.who {
                        span { (member.user.name) " · " (member.user.role.as_str()) }
                        form method="post" action="/ui/logout" {
                            (csrf(member))
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    @if let Some(b) = banner { (banner_markup(b)) }
                    (content)
                }
            }
        }
    };
    Html(markup.into_string())
}

fn banner_markup(banner: &Banner) -> Markup {
    html! {
        @match banner {
            Banner::Done(text) => { p.banner.done role="status" { (text) } }
            Banner::Refused { message, fields } => {
                div.banner.refused role="alert" {
                    p { strong { "Not done: " } (message) }
                    @if !fields.is_empty() {
                        ul { @for (path, rule) in fields { li { code { (path) } " " (rule) } } }
                    }
                }
            }
        }
    }
}

/// What a change (or a posted search) answers: its answer when it went through (for a change,
/// the redirect back to its page); when it was refused for a reason the person can fix (a
/// 4xx but 404), the page again (`render`) with the reasons and the refusal's status;
/// anything else, the error page.
pub async fn answer_change<R, F, Fut>(result: Result<R, UiError>, render: F) -> Response
where
    R: IntoResponse,
    F: FnOnce(Banner) -> Fut,
    Fut: std::future::Future<Output = Result<Html<String>, UiError>>,
{
    match result {
        Ok(answer) => answer.into_response(),
        Err(UiError::Api(e)) if e.status().is_client_error() && e.status() != StatusCode::NOT_FOUND => {
            let status = e.status();
            match render(Banner::refused(&e)).await {
                Ok(html) => (status, html).into_response(),
                Err(e) => e.into_response(),
            }
        }
        Err(other) => other.into_response(),
    }
}

/// A refused change, answered as [`answer_change`] answers one.
pub async fn refused<F, Fut>(error: UiError, render: F) -> Response
where
    F: FnOnce(Banner) -> Fut,
    Fut: std::future::Future<Output = Result<Html<String>, UiError>>,
{
    answer_change(Err::<Response, _>(error), render).await
}

/// The hidden field with the session's CSRF token.
pub fn csrf(member: &Member) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(member.csrf()); }
}

/// An error page, without the navigation (it may be shown to nobody signed in).
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let content = html! { p { (message) } p { a href="/ui/" { "Back to the inbox" } } };
    (status, bare(status.canonical_reason().unwrap_or("Error"), content)).into_response()
}

/// What an error page says: the API's message, but in words for a person where the API's
/// message speaks of headers and routes.
pub fn error_text(error: &ApiError) -> String {
    match error {
        ApiError::NotFound(what) => format!("There is no such {what}, or it is not yours to see."),
        ApiError::Forbidden(why) => format!("Not allowed: {why}."),
        ApiError::Unavailable | ApiError::Timeout => {
            "The server is busy or its storage is unavailable; try again in a moment.".to_owned()
        }
        other => other.body().error.message,
    }
}

/// A time in the publisher's zone (the machine-readable instant in `datetime`).
pub fn time(at: Timestamp, member: &Member) -> Markup {
    html! { time datetime=(at.to_rfc3339()) { (sla::local_text(at, member.zone())) } }
}

/// An optional time, or a dash.
pub fn maybe_time(at: Option<Timestamp>, member: &Member) -> Markup {
    match at {
        Some(at) => time(at, member),
        None => html! { "—" },
    }
}

/// A span of time a person reads at a glance: `3 h 20 min`, `2 d 4 h`, `45 s`.
pub fn duration_text(ms: i64) -> String {
    let s = ms.unsigned_abs() / 1000;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// A share as a percentage, or a dash.
pub fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "—".to_owned(), |r| format!("{:.0} %", r * 100.0))
}

/// A labelled one-line input.
pub fn field(name: &str, label: &str, kind: &str, value: Option<&str>, help: Option<&str>, required: bool) -> Markup {
    field_filled_as(name, label, kind, value, help, required, None)
}

/// As [`field`], telling the browser what it may fill in (`autocomplete`): `off` for another
/// person's address, `new-password` for a password being set, so a browser does not offer the
/// signed-in person's own.
pub fn field_filled_as(
    name: &str,
    label: &str,
    kind: &str,
    value: Option<&str>,
    help: Option<&str>,
    required: bool,
    autocomplete: Option<&str>,
) -> Markup {
    let id = format!("f-{name}");
    let help_id = format!("{id}-help");
    html! {
        div.field {
            label for=(id) { (label) @if required { " " abbr title="required" { "*" } } }
            input #(id) type=(kind) name=(name) value=[value] required[required] autocomplete=[autocomplete]
                aria-describedby=[help.map(|_| help_id.as_str())];
            @if let Some(h) = help { p.help #(help_id) { (h) } }
        }
    }
}

/// A labelled choice among `options` (`(value, label)`), `selected` chosen.
pub fn choice(name: &str, label: &str, options: &[(String, String)], selected: Option<&str>) -> Markup {
    let id = format!("f-{name}");
    html! {
        div.field {
            label for=(id) { (label) }
            select #(id) name=(name) {
                @for (value, text) in options {
                    option value=(value) selected[Some(value.as_str()) == selected] { (text) }
                }
            }
        }
    }
}

/// The options of a filter: "any" (the empty value) first, then `items` as `(value, label)`.
pub fn options_with_any(any: &str, items: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    std::iter::once((String::new(), any.to_owned())).chain(items).collect()
}

/// A table that scrolls sideways on a narrow screen: a region the keyboard can reach, named
/// for screen readers ("… table", so it never takes the name of the section around it).
pub fn table_wrap(name: &str, table: Markup) -> Markup {
    html! { div.table-wrap tabindex="0" role="region" aria-label={ (name) " table" } { (table) } }
}

/// A "next page" form that posts the same search again, from `cursor`.
pub fn next_page(member: &Member, action: &str, fields: &[(&str, String)], cursor: Option<&str>) -> Markup {
    html! {
        @if let Some(cursor) = cursor {
            form.pager method="post" action=(action) {
                (csrf(member))
                @for (name, value) in fields {
                    @if !value.is_empty() { input type="hidden" name=(name) value=(value); }
                }
                input type="hidden" name="cursor" value=(cursor);
                button type="submit" { "Next page" }
            }
        }
    }
}
