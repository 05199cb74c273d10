//! Signing in and out, and accepting an invitation. The sign-in and invitation forms have no
//! session yet to hold a CSRF token, so each comes with one of its own: a random value in a
//! cookie (`leadrelay_form`, `SameSite=Strict`, only for `/ui/`) and in the form, which must
//! match when it is posted (another site can neither read nor set the cookie). A post a
//! browser says came from another site is refused besides. Signing in sets the same session
//! cookie as `POST /v1/sessions`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{ORIGIN, RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{AppendHeaders, Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::session::{FormData, Member, Posted, UiError};
use crate::auth::{constant_time_eq, generate_secret};
use crate::http::error::ApiError;
use crate::http::extract::{ClientIp, cookie_value};
use crate::http::people::{cookie, named_cookie};
use crate::ops::Password;
use crate::state::AppState;

/// The cookie, and the form field, of the forms that come before a session.
const FORM_COOKIE: &str = "leadrelay_form";
const FORM_FIELD: &str = "form_token";
/// How long such a form may wait before it is sent.
const FORM_SECONDS: u64 = 3600;

/// A page for nobody signed in yet, with what was just done or refused.
fn bare_page(title: &str, banner: Option<(bool, &str)>, content: Markup) -> Html<String> {
    super::page::bare(
        title,
        html! {
            @match banner {
                Some((true, text)) => { p.banner.done role="status" { (text) } }
                Some((false, text)) => { div.banner.refused role="alert" { p { (text) } } }
                None => {}
            }
            (content)
        },
    )
}

fn sign_in_form(token: &str, email: Option<&str>) -> Markup {
    html! {
        form.panel method="post" action="/ui/login" {
            input type="hidden" name=(FORM_FIELD) value=(token);
            div.field {
                label for="email" { "E-mail address" }
                input #email type="email" name="email" autocomplete="username" required value=[email];
            }
            div.field {
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
            }
            button type="submit" { "Sign in" }
        }
        p.muted {
            "No account yet? An administrator adds you on the Team page. The very first person is made on the server: "
            code { "leadrelay users add --publisher ID --new-publisher \"Its name\" --email E --name N --role admin" } "."
        }
        p.muted { "Invited? " a href="/ui/invitation" { "Set your password" } "." }
    }
}

/// The form token this browser holds, or a new one with the cookie that sets it.
fn form_token(state: &AppState, headers: &HeaderMap) -> Result<(String, Option<HeaderValue>), UiError> {
    if let Some(held) = cookie_value(headers, FORM_COOKIE) {
        return Ok((held.to_owned(), None));
    }
    let token = generate_secret("");
    let set = named_cookie(state, FORM_COOKIE, &token, "/ui/", FORM_SECONDS)?;
    Ok((token, Some(set)))
}

/// A pre-session page: its form token's cookie set when new.
fn with_token(status: StatusCode, set: Option<HeaderValue>, page: Html<String>) -> Response {
    let mut response = (status, page).into_response();
    if let Some(set) = set {
        response.headers_mut().append(SET_COOKIE, set);
    }
    response
}

/// Whether a posted pre-session form is ours: its token matches the cookie, and no browser
/// header says it came from another site (`Sec-Fetch-Site`; `Origin` where that is missing,
/// when it names a site: our `Referrer-Policy: no-referrer` makes a browser send `null`).
fn posted_here(headers: &HeaderMap, form: &FormData) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let cross_site = match header("sec-fetch-site") {
        Some(site) => !matches!(site, "same-origin" | "none"),
        None => match header(ORIGIN.as_str()) {
            None | Some("null") => false,
            Some(origin) => {
                let host = header("host").unwrap_or_default();
                !origin.split_once("://").is_some_and(|(_, rest)| !host.is_empty() && rest.eq_ignore_ascii_case(host))
            }
        },
    };
    let held = cookie_value(headers, FORM_COOKIE).unwrap_or_default();
    let sent = form.raw(FORM_FIELD).unwrap_or_default();
    !cross_site && !held.is_empty() && constant_time_eq(held.as_bytes(), sent.as_bytes())
}

fn stale_form() -> Response {
    UiError::Api(ApiError::Forbidden(
        "this form is out of date or was not sent from this server: reload the page".into(),
    ))
    .into_response()
}

/// `GET /ui/login`: the form, or the inbox for someone already signed in.
pub async fn get(State(state): State<AppState>, headers: HeaderMap, member: Result<Member, UiError>) -> Response {
    if member.is_ok() {
        return Redirect::to("/ui/").into_response();
    }
    match form_token(&state, &headers) {
        Ok((token, set)) => {
            with_token(StatusCode::OK, set, bare_page("Sign in to leadrelay", None, sign_in_form(&token, None)))
        }
        Err(e) => e.into_response(),
    }
}

/// `POST /ui/login`: signs in and goes to the inbox; a wrong address or password gets the form
/// again (401), too many failures 429 with `Retry-After`.
pub async fn post(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if !posted_here(&headers, &form) {
        return stale_form();
    }
    let email = form.text("email").unwrap_or_default().to_owned();
    let password = form.raw("password").unwrap_or_default().to_owned();
    let e = match state.ops.sign_in(&email, password, client).await {
        Ok(signed_in) => {
            let lifetime = u64::from(state.config.workspace.session_hours) * 3600;
            return match cookie(&state, &signed_in.token, lifetime) {
                Ok(set) => (AppendHeaders([(SET_COOKIE, set)]), Redirect::to("/ui/")).into_response(),
                Err(e) => UiError::from(e).into_response(),
            };
        }
        Err(e) => ApiError::from(e),
    };
    let (message, retry_after) = match &e {
        ApiError::InvalidCredentials | ApiError::Validation(_) => {
            ("The e-mail address or the password is wrong.".to_owned(), None)
        }
        ApiError::TooManyRequests(wait) => (
            format!("Too many failed sign-ins. Try again in {} minutes.", wait.as_secs().div_ceil(60).max(1)),
            Some(wait.as_secs().max(1)),
        ),
        _ => return UiError::from(e).into_response(),
    };
    let token = form.raw(FORM_FIELD).unwrap_or_default();
    let page = bare_page("Sign in to leadrelay", Some((false, &message)), sign_in_form(token, Some(&email)));
    let mut response = (e.status(), page).into_response();
    if let Some(secs) = retry_after {
        response.headers_mut().insert(RETRY_AFTER, secs.into());
    }
    response
}

/// `POST /ui/logout`: ends the session and clears the cookie.
pub async fn logout(State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { member, .. } = posted;
    if let Err(e) = state.ops.sign_out(member.token(), &member.user).await {
        return UiError::from(e).into_response();
    }
    match cookie(&state, "", 0) {
        Ok(clear) => (AppendHeaders([(SET_COOKIE, clear)]), Redirect::to("/ui/login")).into_response(),
        Err(e) => UiError::from(e).into_response(),
    }
}

fn invitation_form(token: &str) -> Markup {
    html! {
        p { "An administrator of your team added you and handed you an invitation. Paste it here and choose your password." }
        form.panel method="post" action="/ui/invitation" {
            input type="hidden" name=(FORM_FIELD) value=(token);
            div.field {
                label for="invitation" { "Invitation" }
                input #invitation type="text" name="invitation" autocomplete="off" required;
            }
            div.field {
                label for="new-password" { "Password" }
                input #new-password type="password" name="password" autocomplete="new-password" required aria-describedby="new-password-help";
                p.help #new-password-help { "12 to 128 characters." }
            }
            div.field {
                label for="again" { "The same password again" }
                input #again type="password" name="again" autocomplete="new-password" required;
            }
            button type="submit" { "Set my password" }
        }
    }
}

/// `GET /ui/invitation`: where an invited person sets their password (the invitation is
/// pasted into the form, never carried in an address).
pub async fn get_invitation(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match form_token(&state, &headers) {
        Ok((token, set)) => {
            with_token(StatusCode::OK, set, bare_page("Accept an invitation", None, invitation_form(&token)))
        }
        Err(e) => e.into_response(),
    }
}

/// `POST /ui/invitation`: sets the password; then the person signs in.
pub async fn post_invitation(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if !posted_here(&headers, &form) {
        return stale_form();
    }
    let token = form.raw(FORM_FIELD).unwrap_or_default().to_owned();
    let refuse = |status: StatusCode, text: &str| {
        (status, bare_page("Accept an invitation", Some((false, text)), invitation_form(&token))).into_response()
    };
    let (password, again) = (form.raw("password").unwrap_or_default(), form.raw("again").unwrap_or_default());
    if password != again {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, "The two passwords differ.");
    }
    let password = match Password::new(password.to_owned()) {
        Ok(p) => p,
        Err(rule) => return refuse(StatusCode::UNPROCESSABLE_ENTITY, &format!("The password {rule}.")),
    };
    match state.ops.accept_invitation(form.text("invitation").unwrap_or_default(), password).await {
        Ok(user) => {
            let done = format!("Your password is set, {}. Sign in.", user.name);
            bare_page("Sign in to leadrelay", Some((true, &done)), sign_in_form(&token, Some(&user.email)))
                .into_response()
        }
        Err(crate::ops::OpsError::NotFound(_)) => refuse(
            StatusCode::NOT_FOUND,
            "No open invitation has this text: it was used already, it is more than 7 days old, or it was copied incompletely.",
        ),
        Err(e) => UiError::from(e).into_response(),
    }
}
