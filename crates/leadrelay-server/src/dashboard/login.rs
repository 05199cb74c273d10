//! Signing in and out. The sign-in form posts the address and password once; the answer sets
//! the same session cookie as `POST /v1/sessions`. There is no session to hold a CSRF token
//! yet, so a sign-in posted from another site's page (its `Origin`) is refused instead.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{HOST, ORIGIN, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, Html, IntoResponse, Redirect, Response};
use maud::{DOCTYPE, html};

use super::session::{FormData, Member, Posted, UiError};
use crate::http::error::ApiError;
use crate::http::extract::ClientIp;
use crate::http::people::cookie;
use crate::state::AppState;

fn form(problem: Option<&str>, email: Option<&str>) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Sign in · leadrelay" }
                link rel="stylesheet" href="/ui/assets/app.css";
            }
            body {
                main #main.narrow {
                    h1 { "Sign in to leadrelay" }
                    @if let Some(p) = problem { div.banner.refused role="alert" { p { (p) } } }
                    form.panel method="post" action="/ui/login" {
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
                        "No account yet? An administrator adds you from the Team page, or, for the first "
                        "person, on the server: " code { "leadrelay users add --publisher P --email E --name N --role admin" } "."
                    }
                }
            }
        }
    };
    Html(markup.into_string())
}

/// `GET /ui/login`: the form, or the inbox for someone already signed in.
pub async fn get(member: Result<Member, UiError>) -> Response {
    match member {
        Ok(_) => Redirect::to("/ui/").into_response(),
        Err(_) => form(None, None).into_response(),
    }
}

/// Whether a browser posted this from one of our own pages. Browsers say where a request
/// comes from in `Sec-Fetch-Site`; older ones only in `Origin` (which is `null` under our
/// `Referrer-Policy: no-referrer`, so it decides only when it names a site). A request with
/// neither is not a browser's cross-site post.
fn same_origin(headers: &HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    match header(ORIGIN.as_str()) {
        None | Some("null") => true,
        Some(origin) => {
            let host = header(HOST.as_str()).unwrap_or_default();
            let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
            !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
        }
    }
}

/// `POST /ui/login`: signs in and goes to the inbox; a wrong address or password gets the form
/// again (401), too many failures 429.
pub async fn post(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !same_origin(&headers) {
        return UiError::Api(ApiError::Forbidden("a sign-in must come from this server's own page".into()))
            .into_response();
    }
    let form_data = FormData::parse(&body);
    let email = form_data.text("email").unwrap_or_default().to_owned();
    let password = form_data.raw("password").unwrap_or_default().to_owned();
    match state.ops.sign_in(&email, password, client).await {
        Ok(signed_in) => {
            let lifetime = u64::from(state.config.workspace.session_hours) * 3600;
            match cookie(&state, &signed_in.token, lifetime) {
                Ok(set) => (AppendHeaders([(SET_COOKIE, set)]), Redirect::to("/ui/")).into_response(),
                Err(e) => UiError::from(e).into_response(),
            }
        }
        Err(e) => {
            let e = ApiError::from(e);
            let message = match &e {
                ApiError::InvalidCredentials | ApiError::Validation(_) => {
                    "The e-mail address or the password is wrong.".to_owned()
                }
                ApiError::TooManyRequests(wait) => {
                    format!("Too many failed sign-ins. Try again in {} minutes.", wait.as_secs().div_ceil(60).max(1))
                }
                _ => return UiError::from(e).into_response(),
            };
            (e.status(), form(Some(&message), Some(&email))).into_response()
        }
    }
}

/// `POST /ui/logout`: ends the session and clears the cookie.
pub async fn logout(State(state): State<AppState>, posted: Posted) -> Response {
    let Posted { member, .. } = posted;
    if let Err(e) = state.ops.sign_out(member.token(), &member.user).await {
        return UiError::from(e).into_response();
    }
    match cookie(&state, "", 0) {
        Ok(clear) => {
            (StatusCode::SEE_OTHER, AppendHeaders([(SET_COOKIE, clear)]), [(axum::http::header::LOCATION, "/ui/login")])
                .into_response()
        }
        Err(e) => UiError::from(e).into_response(),
    }
}
