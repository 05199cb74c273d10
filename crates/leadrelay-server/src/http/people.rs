//! The people of a publisher's team and their sessions: adding and listing users, signing in
//! (a session cookie and a CSRF token), the current session, signing out, and accepting an
//! invitation. Passwords and their hashes never appear in an answer.

use axum::Json;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};
use leadrelay_core::access::Scope;
use leadrelay_core::sales::{Role, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::error::{ApiError, ErrorOut};
use crate::http::extract::{Caller, ClientIp, CurrentSession, PathParams, ValidJson};
use crate::http::openapi::string_enum;
use crate::http::publishers::publisher_from_path;
use crate::ops::people::{SESSION_COOKIE, csrf_token};
use crate::ops::{NewUser, Password};
use crate::state::AppState;

fn roles() -> utoipa::openapi::Object {
    string_enum(Role::ALL.map(Role::as_str))
}

/// `POST /v1/publishers/{publisher}/users` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserIn {
    /// Sign-in address; one user per address across publishers.
    #[schema(max_length = 254)]
    email: String,
    /// Display name, 1-200 characters.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    #[schema(schema_with = roles)]
    role: String,
    /// 12-128 characters. Without it the answer holds an invitation to accept instead.
    #[schema(min_length = 12, max_length = 128)]
    password: Option<String>,
}

/// A person of a publisher's team (never the password or its hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    /// `usr_…`
    id: String,
    publisher: String,
    email: String,
    name: String,
    #[schema(schema_with = roles)]
    role: &'static str,
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<&User> for UserOut {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.to_string(),
            publisher: u.publisher.to_string(),
            email: u.email.clone(),
            name: u.name.clone(),
            role: u.role.as_str(),
            created_at: u.created_at.to_rfc3339(),
        }
    }
}

/// An invitation, shown once: the person accepts it with `POST /v1/invitations/accept`.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationOut {
    /// The invitation token (only its hash is kept).
    token: String,
    #[schema(format = DateTime)]
    expires_at: String,
}

/// A user just added.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedUserOut {
    #[serde(flatten)]
    user: UserOut,
    /// `null` when a password was given.
    invitation: Option<InvitationOut>,
}

/// A publisher's users, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserListOut {
    items: Vec<UserOut>,
}

fn password_in(path: &str, plain: String) -> Result<Password, ApiError> {
    Password::new(plain).map_err(|rule| ApiError::field(path, rule))
}

/// `POST /v1/publishers/{publisher}/users`: with a password the person can sign in at once;
/// without one the answer holds an invitation (shown once, for 7 days). Needs the admin token,
/// or the publisher's `admin` scope (a token, or a person with the `admin` role).
#[utoipa::path(
    post, path = "/v1/publishers/{publisher}/users", tag = "people",
    params(("publisher" = String, Path)),
    request_body = UserIn,
    responses(
        (status = 201, description = "Added", body = CreatedUserOut),
        (status = 409, description = "The address already has a user (of any publisher)", body = ErrorOut),
    ),
    security(("bearer" = []), ("session" = []))
)]
pub async fn create_user(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(publisher): PathParams<String>,
    ValidJson(input): ValidJson<UserIn>,
) -> Result<(StatusCode, Json<CreatedUserOut>), ApiError> {
    let publisher = publisher_from_path(&publisher)?;
    caller.check(&publisher, Scope::Admin, "publisher")?;
    let role =
        Role::parse(&input.role).ok_or_else(|| ApiError::field("role", "must be one of: admin, member, viewer"))?;
    let password = input.password.map(|p| password_in("password", p)).transpose()?;
    let new = NewUser { email: input.email, name: input.name, role, password };
    let added = state.ops.add_user(&caller.actor(), &publisher, new).await?;
    let invitation = added.invitation.map(|i| InvitationOut { token: i.token, expires_at: i.expires_at.to_rfc3339() });
    Ok((StatusCode::CREATED, Json(CreatedUserOut { user: UserOut::from(&added.user), invitation })))
}

/// `GET /v1/publishers/{publisher}/users` (the `read` scope).
#[utoipa::path(
    get, path = "/v1/publishers/{publisher}/users", tag = "people",
    params(("publisher" = String, Path)),
    responses((status = 200, description = "The publisher's users, oldest first", body = UserListOut)),
    security(("bearer" = []), ("session" = []))
)]
pub async fn list_users(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(publisher): PathParams<String>,
) -> Result<Json<UserListOut>, ApiError> {
    let publisher = publisher_from_path(&publisher)?;
    caller.check(&publisher, Scope::Read, "publisher")?;
    let users = state.ops.list_users(&publisher).await?;
    Ok(Json(UserListOut { items: users.iter().map(UserOut::from).collect() }))
}

/// `POST /v1/sessions` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionIn {
    #[schema(max_length = 254)]
    email: String,
    password: String,
}

/// A session: the token to send as `X-CSRF-Token` with every change made with the cookie.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionOut {
    /// Send it as `X-CSRF-Token` on every POST, PUT, PATCH and DELETE made with the cookie.
    csrf_token: String,
    user: UserOut,
    #[schema(format = DateTime)]
    expires_at: String,
}

/// The session cookie's attributes: `Secure` when `server.public_url` is https (people reach
/// leadrelay through it; a plain-http setup gets no `Secure`, or the browser would drop it).
pub(crate) fn cookie(state: &AppState, value: &str, max_age_secs: u64) -> Result<HeaderValue, ApiError> {
    named_cookie(state, SESSION_COOKIE, value, "/", max_age_secs)
}

/// A cookie of ours: `HttpOnly`, `SameSite=Strict`, on `path`, `Secure` as for the session.
pub(crate) fn named_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    path: &str,
    max_age_secs: u64,
) -> Result<HeaderValue, ApiError> {
    let secure = state.config.server.public_url.trim().to_ascii_lowercase().starts_with("https://");
    let cookie = format!(
        "{name}={value}; HttpOnly; SameSite=Strict; Path={path}; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&cookie).map_err(|_| ApiError::Internal("a cookie is not a header value".into()))
}

/// `POST /v1/sessions`: signs a person in. The answer sets the session cookie (`HttpOnly`,
/// `SameSite=Strict`, `Path=/`, `Max-Age` of `workspace.session_hours`, `Secure` when
/// `server.public_url` is https) and holds the CSRF token. A wrong password and an unknown
/// address get the same 401; after 5 failures of one address (or 20 from one client) in 15
/// minutes, 429 with `Retry-After`.
#[utoipa::path(
    post, path = "/v1/sessions", tag = "people",
    request_body = SessionIn,
    responses(
        (status = 201, description = "Signed in; `Set-Cookie: leadrelay_session=…`", body = SessionOut,
         headers(("Set-Cookie" = String, description = "The session cookie"))),
        (status = 401, description = "`invalid_credentials`: the address or the password is wrong", body = ErrorOut),
        (status = 429, description = "Too many failed sign-ins of this address or from this client", body = ErrorOut,
         headers(("Retry-After" = u64, description = "Seconds until a sign-in may be tried again"))),
    )
)]
pub async fn create_session(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ValidJson(input): ValidJson<SessionIn>,
) -> Result<Response, ApiError> {
    let signed_in = state.ops.sign_in(&input.email, input.password, client).await?;
    let lifetime = state.config.workspace.session_hours;
    let set = cookie(&state, &signed_in.token, u64::from(lifetime) * 3600)?;
    let body = SessionOut {
        csrf_token: signed_in.csrf_token,
        user: UserOut::from(&signed_in.user),
        expires_at: signed_in.expires_at.to_rfc3339(),
    };
    Ok((StatusCode::CREATED, AppendHeaders([(SET_COOKIE, set)]), Json(body)).into_response())
}

/// `GET /v1/sessions/current`: the session the cookie names, with its CSRF token again.
#[utoipa::path(
    get, path = "/v1/sessions/current", tag = "people",
    responses((status = 200, description = "The session", body = SessionOut)),
    security(("session" = []))
)]
pub async fn get_current_session(current: CurrentSession) -> Json<SessionOut> {
    Json(SessionOut {
        csrf_token: csrf_token(&current.token),
        user: UserOut::from(&current.user),
        expires_at: current.session.expires_at.to_rfc3339(),
    })
}

/// `DELETE /v1/sessions/current` (with `X-CSRF-Token`): signs out; the session ends and the
/// cookie is cleared.
#[utoipa::path(
    delete, path = "/v1/sessions/current", tag = "people",
    responses((status = 204, description = "Signed out; the cookie is cleared",
               headers(("Set-Cookie" = String, description = "The session cookie, expired")))),
    security(("session" = []))
)]
pub async fn delete_current_session(
    current: CurrentSession,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    state.ops.sign_out(&current.token, &current.user).await?;
    let clear = cookie(&state, "", 0)?;
    Ok((StatusCode::NO_CONTENT, AppendHeaders([(SET_COOKIE, clear)])).into_response())
}

/// `POST /v1/invitations/accept` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptIn {
    /// The invitation token from `POST /v1/publishers/{publisher}/users`.
    token: String,
    /// 12-128 characters.
    #[schema(min_length = 12, max_length = 128)]
    password: String,
}

/// `POST /v1/invitations/accept`: the invited person sets their password (then signs in with
/// `POST /v1/sessions`). A token works once, for 7 days.
#[utoipa::path(
    post, path = "/v1/invitations/accept", tag = "people",
    request_body = AcceptIn,
    responses(
        (status = 200, description = "Accepted; the person can sign in", body = UserOut),
        (status = 404, description = "No open invitation has this token (used, expired, or never issued)", body = ErrorOut),
    )
)]
pub async fn accept_invitation(
    State(state): State<AppState>,
    ValidJson(input): ValidJson<AcceptIn>,
) -> Result<Json<UserOut>, ApiError> {
    let password = password_in("password", input.password)?;
    let user = state.ops.accept_invitation(&input.token, password).await?;
    Ok(Json(UserOut::from(&user)))
}

#[cfg(test)]
mod tests {
    use crate::ops::people::PASSWORD_CHARS;

    /// The schemas above state 12 and 128 as literals: they must be the rule.
    #[test]
    fn the_documented_password_bounds_are_the_rule() {
        assert_eq!((*PASSWORD_CHARS.start(), *PASSWORD_CHARS.end()), (12, 128));
    }
}
