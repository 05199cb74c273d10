//! Who is looking at a page ([`Member`]: a person signed in with the session cookie), what a
//! form posted ([`Posted`], only with the session's CSRF token), and how a page says no
//! ([`UiError`]: to the sign-in page, or an HTML error page).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use leadrelay_core::access::Scope;
use leadrelay_core::audit::Actor;
use leadrelay_core::sales::{SalesSettings, User};

use crate::auth::constant_time_eq;
use crate::http::error::ApiError;
use crate::http::extract::{Caller, CurrentSession};
use crate::ops::OpsError;
use crate::ops::people::csrf_token;
use crate::state::AppState;

/// The name of the hidden field every form carries the CSRF token in.
pub const CSRF_FIELD: &str = "csrf";

/// A person signed in, with their publisher's sales settings (the time zone every time on a
/// page is shown in, the checklist, the team).
pub struct Member {
    /// Who.
    pub user: User,
    /// Their publisher's sales settings.
    pub settings: SalesSettings,
    token: String,
}

impl Member {
    /// The person as the API's authorization sees them.
    pub fn caller(&self) -> Caller {
        Caller::person(&self.user)
    }

    /// Who, in the audit log.
    pub fn actor(&self) -> Actor {
        self.caller().actor()
    }

    /// Whether the role allows `scope` (pages hide what it does not allow; the handlers check
    /// again).
    pub fn may(&self, scope: Scope) -> bool {
        self.user.role.scopes().contains(&scope)
    }

    /// The token every form of this session carries.
    pub fn csrf(&self) -> String {
        csrf_token(&self.token)
    }

    /// The session token (to end the session).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The publisher's time zone.
    pub fn zone(&self) -> &str {
        &self.settings.time_zone
    }
}

impl FromRequestParts<AppState> for Member {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // A form's CSRF token is in its body: `Posted` checks it.
        let CurrentSession { token, user, .. } = CurrentSession::named_by_cookie(&parts.headers, state).await?;
        let settings = state.ops.sales_settings(&user.publisher).await?;
        Ok(Self { user, settings, token })
    }
}

/// The fields of a posted form, in order (a name may repeat: checkboxes).
#[derive(Default)]
pub struct FormData(Vec<(String, String)>);

/// Names only: a form holds passwords, search words and the CSRF token.
impl std::fmt::Debug for FormData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(k, _)| k)).finish()
    }
}

impl FormData {
    /// Reads `application/x-www-form-urlencoded` bytes.
    pub fn parse(body: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }

    /// The first value of `name`, trimmed, when it is not blank.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
    }

    /// The first value of `name` as sent (a password is not trimmed).
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every non-blank value of `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
    }

    /// The fields encoded again, as a query string (a form's filters read like the API's).
    pub fn encoded(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&self.0).finish()
    }

    /// Whether a checkbox named `name` was ticked.
    pub fn checked(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }
}

/// A form a signed-in person posted, with the session's CSRF token (checked).
pub struct Posted {
    /// The person who posted it.
    pub member: Member,
    /// Its fields.
    pub form: FormData,
}

impl FromRequest<AppState> for Posted {
    type Rejection = UiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let member = Member::from_request_parts(&mut parts, state).await?;
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|_| UiError::Api(ApiError::PayloadTooLarge(0)))?;
        let form = FormData::parse(&bytes);
        let sent = form.raw(CSRF_FIELD).unwrap_or_default();
        if !constant_time_eq(sent.as_bytes(), member.csrf().as_bytes()) {
            return Err(UiError::Api(ApiError::Forbidden(
                "this form is out of date (the session changed): reload the page and send it again".to_owned(),
            )));
        }
        Ok(Self { member, form })
    }
}

/// The id in a page's address. One that is not even text names nothing: the HTML 404 page,
/// not axum's plain-text rejection.
pub struct PathId(pub String);

impl FromRequestParts<AppState> for PathId {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(id)| Self(id))
            .map_err(|_| UiError::Api(ApiError::NotFound("page")))
    }
}

/// A page's own query parameters (not the filters it shares with the API, which are read by
/// the API's `Query`); a malformed one gets the HTML error page.
pub struct PageQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send> FromRequestParts<AppState> for PageQuery<T> {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(q)| Self(q))
            .map_err(|_| UiError::Api(ApiError::field("query", "is not one this page reads")))
    }
}

/// Why a page cannot be shown.
#[derive(Debug)]
pub enum UiError {
    /// Nobody is signed in (or the session ended): to the sign-in page.
    SignIn,
    /// Anything else, shown as an error page with the API's status and message.
    Api(ApiError),
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Unauthorized => Self::SignIn,
            other => Self::Api(other),
        }
    }
}

impl From<OpsError> for UiError {
    fn from(e: OpsError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn => Redirect::to("/ui/login").into_response(),
            Self::Api(e) => {
                let status = e.status();
                let message = super::page::error_text(&e);
                // The API's own answer carries the cause of a 500 to the request log.
                let (parts, _) = e.into_response().into_parts();
                let mut page = super::page::error_page(status, &message).into_response();
                page.extensions_mut().extend(parts.extensions);
                if status == StatusCode::TOO_MANY_REQUESTS
                    && let Some(after) = parts.headers.get(axum::http::header::RETRY_AFTER)
                {
                    page.headers_mut().insert(axum::http::header::RETRY_AFTER, after.clone());
                }
                page
            }
        }
    }
}

/// Allows `member` to act on `owner`'s data with `scope`, as the API would.
///
/// # Errors
/// 404 for another publisher's data, 403 for a scope the role lacks.
pub fn check(
    member: &Member,
    owner: &leadrelay_core::PublisherId,
    scope: Scope,
    what: &'static str,
) -> Result<(), UiError> {
    member.caller().check(owner, scope, what).map_err(UiError::from)
}
