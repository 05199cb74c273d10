//! The one error type of the HTTP API and its JSON envelope:
//! `{"error": {"code": "...", "message": "...", "fields": [{"path": "...", "message": "..."}]}}`.
//! Codes are stable (see docs/API.md). Internal errors answer an opaque body; their cause is
//! logged once by the logging middleware, which finds it in a response extension.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leadrelay_core::destination::FieldError;
use leadrelay_core::storage::StorageError;
use serde_json::json;

/// An API error.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the body is not JSON.
    InvalidJson(String),
    /// 422: the body is JSON but fields break rules.
    Validation(Vec<FieldError>),
    /// 401: no or wrong credentials.
    Unauthorized,
    /// 403: the token may not do this.
    Forbidden(String),
    /// 404: no such thing (or not yours).
    NotFound(&'static str),
    /// 409: conflicts with the current state.
    Conflict(String),
    /// 413: the body is larger than `server.max_body_bytes`.
    PayloadTooLarge(usize),
    /// 415: the body must be JSON.
    UnsupportedMediaType,
    /// 405
    MethodNotAllowed,
    /// 503: storage is unavailable; try again.
    Unavailable,
    /// 500: a bug; the cause is logged, never sent.
    Internal(String),
}

/// The cause of a 500, carried to the logging middleware.
#[derive(Debug, Clone)]
pub struct InternalCause(pub String);

impl ApiError {
    /// A single-field validation error.
    pub fn field(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(path, message)])
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            Self::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    fn message(&self) -> String {
        match self {
            Self::InvalidJson(detail) => format!("the body is not valid JSON: {detail}"),
            Self::Validation(fields) if fields.len() == 1 => format!("{} {}", fields[0].path, fields[0].message),
            Self::Validation(fields) => format!("{} fields are invalid", fields.len()),
            Self::Unauthorized => "missing or invalid bearer token (send 'Authorization: Bearer <token>')".to_owned(),
            Self::Forbidden(why) => why.clone(),
            Self::NotFound(what) => format!("{what} not found"),
            Self::Conflict(why) => why.clone(),
            Self::PayloadTooLarge(max) => {
                format!(
                    "the body is larger than this route accepts (server.max_body_bytes is {max} bytes; CSV imports take up to 64 MiB)"
                )
            }
            Self::UnsupportedMediaType => "the body must be JSON (Content-Type: application/json)".to_owned(),
            Self::MethodNotAllowed => "this method is not allowed on this route".to_owned(),
            Self::Unavailable => "storage is temporarily unavailable; retry the request".to_owned(),
            Self::Internal(_) => "internal error".to_owned(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let mut body = json!({ "code": code, "message": self.message() });
        if let Self::Validation(fields) = &self {
            body["fields"] = fields.iter().map(|f| json!({ "path": f.path, "message": f.message })).collect();
        }
        let mut response = (status, Json(json!({ "error": body }))).into_response();
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
}
