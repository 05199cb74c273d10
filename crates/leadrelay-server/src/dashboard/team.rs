//! The team: its people (an admin adds them, with a password or an invitation shown once) and
//! the sales settings (round-robin, the checklist, the SLA, the follow-up target, the time
//! zone and working hours).

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use leadrelay_core::UserId;
use leadrelay_core::access::Scope;
use leadrelay_core::sales::{BusinessHours, FollowUpTarget, Role, SalesSettings};
use maud::{Markup, html};

use super::page::{self, AfterChange, Banner, Section, answer_change, choice, csrf, redirect_done, time};
use super::session::{FormData, Member, PageQuery, Posted, UiError, check};
use crate::http::error::ApiError;
use crate::http::sales::{DAYS, hh_mm, minute_of};
use crate::ops::{NewUser, Password};
use crate::state::AppState;

async fn render(
    state: &AppState,
    member: &Member,
    banner: Option<Banner>,
    extra: Option<Markup>,
) -> Result<Html<String>, UiError> {
    let publisher = &member.user.publisher;
    check(member, publisher, Scope::Read, "publisher")?;
    let users = state.ops.list_users(publisher).await?;
    let s = state.ops.sales_settings(publisher).await?;
    let admin = member.may(Scope::Admin);
    let roles: Vec<(String, String)> =
        Role::ALL.iter().map(|r| (r.as_str().to_owned(), r.as_str().to_owned())).collect();
    let hours = s.business_hours.as_ref();
    let number = |name: &str, label: &str, value: String, help: &str| {
        page::field(name, label, "number", Some(&value), Some(help), false)
    };
    let content = html! {
        @if let Some(extra) = extra { (extra) }
        section.panel aria-labelledby="h-people" {
            h2 #h-people { "People" }
            (page::table_wrap("People", html! {
                table {
                    thead { tr { th { "Name" } th { "E-mail" } th { "Role" } th { "Since" } } }
                    tbody {
                        @for u in &users {
                            tr { td { (u.name) } td { (u.email) } td { (u.role.as_str()) } td { (time(u.created_at, member)) } }
                        }
                    }
                }
            }))
            @if admin {
                form method="post" action="/ui/team/users" {
                    (csrf(member))
                    h3 { "Add a person" }
                    div.inline {
                        (page::field_filled_as("email", "E-mail address", "email", None, None, true, Some("off")))
                        (page::field("name", "Name", "text", None, None, true))
                        (choice("role", "Role", &roles, Some("member")))
                    }
                    (page::field_filled_as("password", "Password", "password", None,
                        Some("12-128 characters. Leave empty to get an invitation to hand over instead."), false, Some("new-password")))
                    button type="submit" { "Add person" }
                }
            }
        }
        section.panel aria-labelledby="h-sales" {
            h2 #h-sales { "Sales settings" }
            form method="post" action="/ui/team/settings" {
                (csrf(member))
                fieldset disabled[!admin] {
                    legend { "Assignment" }
                    @for u in users.iter().filter(|u| u.role != Role::Viewer) {
                        div.check {
                            input type="checkbox" name="team" value=(u.id) id={ "team-" (u.id) } checked[s.team.contains(&u.id)];
                            label for={ "team-" (u.id) } { (u.name) " takes new opportunities" }
                        }
                    }
                    div.check {
                        input #f-rr type="checkbox" name="round_robin" value="true" checked[s.round_robin];
                        label for="f-rr" { "Assign each new opportunity to the next person (round-robin)" }
                    }
                    (number("max_open_per_owner", "Most open opportunities per person", s.max_open_per_owner.map(|n| n.to_string()).unwrap_or_default(),
                        "Round-robin skips a person who has this many; empty: no cap."))
                }
                fieldset disabled[!admin] {
                    legend { "Follow-up" }
                    div.field {
                        label for="f-checklist" { "Qualification checklist" }
                        textarea #f-checklist name="checklist" aria-describedby="f-checklist-help" { (s.checklist.join("\n")) }
                        p.help #f-checklist-help { "One item per line: lowercase letters, digits, - and _." }
                    }
                    (number("first_touch_sla_hours", "First touch within (hours)", s.first_touch_sla_hours.to_string(), "1-720; working hours only when they are set below."))
                    div.inline {
                        (number("target_min", "Follow-ups, at least", s.follow_up_target.min.to_string(), "The model system advises 5."))
                        (number("target_max", "Follow-ups, at most", s.follow_up_target.max.to_string(), "And 12."))
                    }
                }
                fieldset disabled[!admin] {
                    legend { "Time" }
                    (page::field("time_zone", "Time zone", "text", Some(&s.time_zone), Some("An IANA name such as Europe/Lisbon."), true))
                    div.check {
                        input #f-bh type="checkbox" name="business_hours" value="true" checked[hours.is_some()];
                        label for="f-bh" { "The SLA clock runs only in working hours" }
                    }
                    fieldset.inline {
                        legend { "Working days" }
                        @for (i, day) in DAYS.iter().enumerate() {
                            div.check {
                                input type="checkbox" name="day" value=(day) id={ "day-" (day) }
                                    checked[hours.map_or(i < 5, |h| h.days.contains(&(i as u8 + 1)))];
                                label for={ "day-" (day) } { (day) }
                            }
                        }
                    }
                    div.inline {
                        (page::field("start", "Working day starts", "time", Some(&hours.map_or("09:00".to_owned(), |h| hh_mm(h.start_minute))), None, false))
                        (page::field("end", "Working day ends", "time", Some(&hours.map_or("17:00".to_owned(), |h| hh_mm(h.end_minute))), None, false))
                    }
                }
                @if admin { button type="submit" { "Save sales settings" } }
            }
        }
    };
    Ok(page::page(member, Section::Team, "Team", banner.as_ref(), content))
}

/// `GET /ui/team`
pub async fn get(
    State(state): State<AppState>,
    member: Member,
    PageQuery(done): PageQuery<AfterChange>,
) -> Result<Html<String>, UiError> {
    render(&state, &member, done.banner(), None).await
}

/// `POST /ui/team/users`: adds a person; an invitation is shown this once.
pub async fn add_user(State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { member, form } = posted;
    let result = async {
        check(&member, &member.user.publisher, Scope::Admin, "publisher")?;
        let role = form
            .text("role")
            .and_then(Role::parse)
            .ok_or_else(|| ApiError::field("role", "must be one of: admin, member, viewer"))?;
        let password = form
            .raw("password")
            .filter(|p| !p.is_empty())
            .map(|p| Password::new(p.to_owned()).map_err(|rule| ApiError::field("password", rule)))
            .transpose()?;
        let new = NewUser {
            email: form.text("email").unwrap_or_default().to_owned(),
            name: form.text("name").unwrap_or_default().to_owned(),
            role,
            password,
        };
        Ok(state.ops.add_user(&member.actor(), &member.user.publisher, new).await?)
    }
    .await;
    match result {
        Ok(added) => {
            let extra = html! {
                div.panel role="status" {
                    p { strong { (added.user.name) " is added." } }
                    @if let Some(i) = &added.invitation {
                        p { "Hand them this invitation (shown only now; valid until " (time(i.expires_at, &member)) "). They paste it at "
                            code { (state.config.public_url()) "/ui/invitation" } " and choose their password." }
                        p.secret { (i.token) }
                    } @else {
                        p { "They can sign in now." }
                    }
                }
            };
            render(&state, &member, None, Some(extra)).await.into_response()
        }
        Err(e) => page::refused(e, |banner| async { render(&state, &member, Some(banner), None).await }).await,
    }
}

fn settings_of(form: &FormData) -> Result<SalesSettings, ApiError> {
    let number = |name: &str| {
        form.text(name)
            .map(|v| v.parse::<u32>().map_err(|_| ApiError::field(name, "must be a whole number")))
            .transpose()
    };
    let defaults = SalesSettings::default();
    let team = form
        .all("team")
        .map(|t| UserId::parse(t).ok_or_else(|| ApiError::field("team", "is not a user id (usr_…)")))
        .collect::<Result<Vec<_>, _>>()?;
    let business_hours = if form.checked("business_hours") {
        let days = form
            .all("day")
            .map(|d| {
                DAYS.iter()
                    .position(|x| *x == d)
                    .map(|i| i as u8 + 1)
                    .ok_or_else(|| ApiError::field("business_hours.days", "must be mon … sun"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let minute = |name: &str| {
            form.text(name)
                .and_then(minute_of)
                .ok_or_else(|| ApiError::field(format!("business_hours.{name}"), "must be a time HH:MM"))
        };
        Some(BusinessHours { days, start_minute: minute("start")?, end_minute: minute("end")? })
    } else {
        None
    };
    Ok(SalesSettings {
        team,
        round_robin: form.checked("round_robin"),
        max_open_per_owner: number("max_open_per_owner")?,
        checklist: form
            .text("checklist")
            .map_or_else(Vec::new, |c| c.lines().map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()).collect()),
        first_touch_sla_hours: number("first_touch_sla_hours")?.unwrap_or(defaults.first_touch_sla_hours),
        follow_up_target: FollowUpTarget {
            min: number("target_min")?.unwrap_or(defaults.follow_up_target.min),
            max: number("target_max")?.unwrap_or(defaults.follow_up_target.max),
        },
        time_zone: form.text("time_zone").unwrap_or(&defaults.time_zone).to_owned(),
        business_hours,
    })
}

/// `POST /ui/team/settings`
pub async fn put_settings(State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { member, form } = posted;
    let result = async {
        check(&member, &member.user.publisher, Scope::Admin, "publisher")?;
        let settings = settings_of(&form)?;
        state.ops.put_sales_settings(&member.actor(), &member.user.publisher, settings).await?;
        Ok(redirect_done("/ui/team", "settings"))
    }
    .await;
    answer_change(result, |banner| async { render(&state, &member, Some(banner), None).await }).await
}
