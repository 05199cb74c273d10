//! Extractors owned by the app, so every rejection uses our error envelope: JSON bodies with
//! field paths, and bearer authentication visible in each handler's signature.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::http::error::ApiError;
use crate::state::AppState;

/// The raw body, with the size limit answered as a JSON 413.
pub struct Body(pub Bytes);

impl FromRequest<AppState> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(Self(b)),
            Err(rejection) if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge(state.config.server.max_body_bytes))
            }
            Err(rejection) => Err(ApiError::InvalidJson(rejection.body_text())),
        }
    }
}

/// Parses bytes as JSON into `T`, reporting the path of the first wrong field.
///
/// # Errors
/// 400 for syntax errors, 422 with the field path for type and shape errors.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => v,
        Err(e) => {
            let inner = e.inner();
            if inner.is_syntax() || inner.is_eof() {
                return Err(ApiError::InvalidJson(format!("line {} column {}", inner.line(), inner.column())));
            }
            let path = e.path().to_string();
            let path = if path == "." { "body".to_owned() } else { path };
            return Err(ApiError::field(path, describe_serde(inner)));
        }
    };
    de.end().map_err(|e| {
        ApiError::InvalidJson(format!("trailing characters at line {} column {}", e.line(), e.column()))
    })?;
    Ok(value)
}

/// As [`parse_json`], but an empty body means "all defaults" (for optional request bodies).
///
/// # Errors
/// As [`parse_json`].
pub fn parse_optional_json<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) { Ok(T::default()) } else { parse_json(bytes) }
}

/// serde's message without the value it quotes (the value may be personal data).
fn describe_serde(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
    if let Some(rest) = msg.strip_prefix("invalid type: ") {
        // "invalid type: string \"abc\", expected u32" -> "must be u32, not a string"
        let (got, expected) = rest.split_once(", expected ").unwrap_or((rest, "another type"));
        let got = got.split_whitespace().next().unwrap_or(got);
        return format!("must be {expected}, not {got}");
    }
    if let Some(rest) = msg.strip_prefix("invalid value: ") {
        let expected = rest.split_once(", expected ").map_or("a valid value", |(_, e)| e);
        return format!("must be {expected}");
    }
    msg
}

/// A caller authenticated with the admin token.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or(ApiError::Unauthorized)?;
        if state.admin.matches(token) { Ok(Admin) } else { Err(ApiError::Unauthorized) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Probe {
        name: String,
        count: u32,
    }

    #[test]
    fn type_errors_name_the_path_without_the_value() {
        let err = parse_json::<Probe>(br#"{"name": "x", "count": "secret-value"}"#).unwrap_err();
        let ApiError::Validation(fields) = err else { panic!("expected validation") };
        assert_eq!(fields[0].path, "count");
        assert!(!fields[0].message.contains("secret-value"), "{}", fields[0].message);
    }

    #[test]
    fn syntax_errors_are_invalid_json() {
        assert!(matches!(parse_json::<Probe>(b"{\"name\": "), Err(ApiError::InvalidJson(_))));
        assert!(matches!(parse_json::<Probe>(br#"{"name": "x", "count": 1} trailing"#), Err(ApiError::InvalidJson(_))));
    }
}
