//! The one error type of the HTTP API and its JSON envelope, [`ErrorOut`]:
//! `{"error": {"code": "...", "message": "...", "fields": [{"path": "...", "message": "..."}]}}`.
//! Codes are stable (see docs/API.md). Internal errors answer an opaque body; their cause is
//! logged once by the logging middleware, which finds it in a response extension.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leadrelay_core::destination::FieldError;
use leadrelay_core::storage::StorageError;
use serde::Serialize;
use utoipa::ToSchema;

/// An API error.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the body is not JSON.
    InvalidJson(String),
    /// 422: the body is JSON but fields break rules.
    Validation(Vec<FieldError>),
    /// 401: no or wrong credentials.
    Unauthorized,
    /// 401: a sign-in's address or password is wrong (never saying which).
    InvalidCredentials,
    /// 429: too many failed sign-ins; try again after this long (`Retry-After`).
    TooManyRequests(std::time::Duration),
    /// 403: the token may not do this.
    Forbidden(String),
    /// 404: no such thing (or not yours).
    NotFound(&'static str),
    /// 409: conflicts with the current state.
    Conflict(String),
    /// 413: the body is larger than the route accepts (its limit in bytes).
    PayloadTooLarge(usize),
    /// 414: the path and query are longer than the server reads (its limit in bytes).
    UriTooLong(usize),
    /// 415: the body's `Content-Type` or `Content-Encoding` is not one the route reads.
    UnsupportedMediaType(String),
    /// 431: the request's headers are larger than the server reads.
    HeadersTooLarge(String),
    /// 405
    MethodNotAllowed,
    /// 503: storage is unavailable; try again.
    Unavailable,
    /// 503: the request took longer than `server.request_timeout_ms`.
    Timeout,
    /// 500: a bug; the cause is logged, never sent.
    Internal(String),
}

/// The cause of a 500, carried to the logging middleware.
#[derive(Debug, Clone)]
pub struct InternalCause(pub String);

/// Every error answer: `{"error": {…}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorOut {
    /// What went wrong.
    pub error: ErrorBody,
}

/// The error itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, for programs.
    pub code: ErrorCode,
    /// For people; never echoes a submitted value.
    pub message: String,
    /// With `validation_failed`: each field that breaks a rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<FieldErrorOut>>,
}

/// A field that breaks a rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldErrorOut {
    /// Where, in the request's own shape (`customer.email`, `UserDetails.Email`, `[2].offer`).
    pub path: String,
    /// The rule (`is not an email address`).
    pub message: String,
}

impl From<&FieldError> for FieldErrorOut {
    fn from(f: &FieldError) -> Self {
        Self { path: f.path.clone(), message: f.message.clone() }
    }
}

/// The stable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400
    InvalidJson,
    /// 401
    Unauthorized,
    /// 401, from a sign-in
    InvalidCredentials,
    /// 403
    Forbidden,
    /// 404
    NotFound,
    /// 405
    MethodNotAllowed,
    /// 409
    Conflict,
    /// 413
    PayloadTooLarge,
    /// 414
    UriTooLong,
    /// 415
    UnsupportedMediaType,
    /// 422
    ValidationFailed,
    /// 429
    TooManyRequests,
    /// 431
    HeadersTooLarge,
    /// 500
    Internal,
    /// 503
    Unavailable,
}

impl ApiError {
    /// A single-field validation error.
    pub fn field(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(path, message)])
    }

    /// The envelope for a bare status some layer answered without a body (a safety net: every
    /// known source answers with this type already).
    pub fn for_status(status: StatusCode) -> Self {
        match status.as_u16() {
            400 => Self::InvalidJson("the request could not be read".to_owned()),
            401 => Self::Unauthorized,
            403 => Self::Forbidden("not allowed".to_owned()),
            404 => Self::NotFound("route"),
            405 => Self::MethodNotAllowed,
            409 => Self::Conflict("conflicts with the current state".to_owned()),
            413 => Self::PayloadTooLarge(0),
            414 => Self::UriTooLong(0),
            415 => Self::UnsupportedMediaType("the body's Content-Type or Content-Encoding is not accepted".to_owned()),
            431 => Self::HeadersTooLarge("the request's headers are too large".to_owned()),
            429 => Self::TooManyRequests(std::time::Duration::from_secs(1)),
            503 => Self::Unavailable,
            _ => Self::Internal(format!("a layer answered {status} without a body")),
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        match self {
            Self::InvalidJson(_) => (StatusCode::BAD_REQUEST, ErrorCode::InvalidJson),
            Self::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::ValidationFailed),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized),
            Self::InvalidCredentials => (StatusCode::UNAUTHORIZED, ErrorCode::InvalidCredentials),
            Self::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyRequests),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            Self::Conflict(_) => (StatusCode::CONFLICT, ErrorCode::Conflict),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge),
            Self::UriTooLong(_) => (StatusCode::URI_TOO_LONG, ErrorCode::UriTooLong),
            Self::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, ErrorCode::UnsupportedMediaType),
            Self::HeadersTooLarge(_) => (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, ErrorCode::HeadersTooLarge),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed),
            Self::Unavailable | Self::Timeout => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
        }
    }

    fn message(&self) -> String {
        match self {
            Self::InvalidJson(detail) => format!("the body is not valid JSON: {detail}"),
            Self::Validation(fields) if fields.len() == 1 => format!("{} {}", fields[0].path, fields[0].message),
            Self::Validation(fields) => format!("{} fields are invalid", fields.len()),
            Self::Unauthorized => "missing or invalid credentials: send 'Authorization: Bearer <token>', or sign in \
                                   (POST /v1/sessions) and send the session cookie"
                .to_owned(),
            Self::InvalidCredentials => "the e-mail address or the password is wrong".to_owned(),
            Self::TooManyRequests(wait) => {
                format!("too many failed sign-ins; try again in {} seconds (Retry-After)", wait.as_secs())
            }
            Self::Forbidden(why) | Self::Conflict(why) => why.clone(),
            Self::NotFound(what) => format!("{what} not found"),
            Self::PayloadTooLarge(0) => "the body is larger than this route accepts".to_owned(),
            Self::PayloadTooLarge(max) => format!(
                "the body is larger than this route accepts ({max} bytes after decompression; \
                 server.max_body_bytes sets it for JSON routes, CSV imports take up to 64 MiB)"
            ),
            Self::UriTooLong(0) => "the path and query are too long".to_owned(),
            Self::UriTooLong(max) => format!("the path and query are longer than {max} bytes"),
            Self::UnsupportedMediaType(why) | Self::HeadersTooLarge(why) => why.clone(),
            Self::MethodNotAllowed => "this method is not allowed on this route".to_owned(),
            Self::Unavailable => "storage is temporarily unavailable; retry the request".to_owned(),
            Self::Timeout => "the request took longer than server.request_timeout_ms; retry it".to_owned(),
            Self::Internal(_) => "internal error".to_owned(),
        }
    }

    /// The envelope of this error.
    pub fn body(&self) -> ErrorOut {
        let (_, code) = self.status_and_code();
        let fields = match self {
            Self::Validation(fields) => Some(fields.iter().map(FieldErrorOut::from).collect()),
            _ => None,
        };
        ErrorOut { error: ErrorBody { code, message: self.message(), fields } }
    }
}

/// `Retry-After` of a 503 for storage that is unavailable.
pub const STORAGE_RETRY_AFTER_SECS: u64 = 5;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, _) = self.status_and_code();
        let mut response = (status, Json(self.body())).into_response();
        if let Self::TooManyRequests(wait) = &self {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, wait.as_secs().max(1).into());
        }
        if let Self::Unavailable = &self {
            // The database is down or every connection is busy: nothing was stored; a sender
            // that waits this long and sends again loses nothing.
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, STORAGE_RETRY_AFTER_SECS.into());
        }
        if let Self::Internal(cause) = self {
            response.extensions_mut().insert(InternalCause(cause));
        }
        response
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound => Self::NotFound("resource"),
            StorageError::Conflict => Self::Conflict("it already exists".to_owned()),
            StorageError::Unavailable(_) => Self::Unavailable,
            StorageError::Other(source) => Self::Internal(format!("storage: {source}")),
        }
    }
}

impl From<crate::ops::OpsError> for ApiError {
    fn from(e: crate::ops::OpsError) -> Self {
        use crate::ops::OpsError;
        match e {
            OpsError::Invalid(fields) => Self::Validation(fields),
            OpsError::NotFound(what) => Self::NotFound(what),
            OpsError::Conflict(why) => Self::Conflict(why),
            OpsError::InvalidCredentials => Self::InvalidCredentials,
            OpsError::TooManyAttempts(wait) => Self::TooManyRequests(wait),
            OpsError::Storage(s) => s.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_storage_outcome_maps_to_one_status() {
        let cases: [(StorageError, StatusCode); 4] = [
            (StorageError::NotFound, StatusCode::NOT_FOUND),
            (StorageError::Conflict, StatusCode::CONFLICT),
            (StorageError::Unavailable("down".into()), StatusCode::SERVICE_UNAVAILABLE),
            (StorageError::Other("boom".into()), StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (err, status) in cases {
            assert_eq!(ApiError::from(err).into_response().status(), status);
        }
    }

    #[tokio::test]
    async fn internal_errors_answer_an_opaque_body() {
        let response = ApiError::Internal("secret detail".into()).into_response();
        assert!(response.extensions().get::<InternalCause>().is_some());
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        assert!(!String::from_utf8_lossy(&body).contains("secret detail"));
    }

    #[test]
    fn too_many_requests_says_when_to_come_back() {
        let response = ApiError::TooManyRequests(std::time::Duration::from_secs(840)).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "840");
    }

    #[test]
    fn unavailable_storage_says_when_to_come_back() {
        let response = ApiError::from(StorageError::Unavailable("down".into())).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "5");
    }

    #[test]
    fn a_bare_status_gets_the_envelope_with_the_same_status() {
        for status in [400, 401, 403, 404, 405, 409, 413, 414, 415, 429, 431, 503] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(ApiError::for_status(status).status_and_code().0, status);
        }
    }
}
