//! Extractors owned by the app, so every rejection uses our error envelope: JSON bodies with
//! field paths, and bearer authentication visible in each handler's signature.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use leadrelay_core::PublisherId;
use leadrelay_core::access::Scope;

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

/// An authenticated caller: the admin, a marketplace operator, or one publisher with scopes.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The admin token: everything.
    Admin,
    /// A marketplace token: reports events for any publisher's offers, reads nothing.
    Marketplace,
    /// A publisher token: its own publisher's data, within its scopes.
    Publisher {
        /// The publisher.
        id: PublisherId,
        /// What it allows.
        scopes: Vec<Scope>,
    },
}

impl Caller {
    /// Allows acting on `owner`'s data with `scope`. Another publisher's data answers 404 (as if
    /// it did not exist, naming `what`); a missing scope on one's own data answers 403.
    ///
    /// # Errors
    /// 404 or 403 as above.
    pub fn check(&self, owner: &PublisherId, scope: Scope, what: &'static str) -> Result<(), ApiError> {
        match self {
            Self::Admin => Ok(()),
            Self::Publisher { id, scopes } if id == owner => {
                if scopes.contains(&scope) {
                    Ok(())
                } else {
                    Err(ApiError::Forbidden(format!("this token lacks the '{scope}' scope")))
                }
            }
            _ => Err(ApiError::NotFound(what)),
        }
    }

    /// Allows only the admin token.
    ///
    /// # Errors
    /// 403.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Self::Admin => Ok(()),
            _ => Err(ApiError::Forbidden("this route needs the admin token".to_owned())),
        }
    }

    /// For list routes: the only publisher this caller may see (`None`: any).
    ///
    /// # Errors
    /// 403 without the `read` scope; 404 for marketplace tokens or another publisher.
    pub fn visible_publisher(&self, asked: Option<PublisherId>) -> Result<Option<PublisherId>, ApiError> {
        match self {
            Self::Admin => Ok(asked),
            Self::Publisher { id, .. } => {
                if asked.as_ref().is_some_and(|a| a != id) {
                    return Err(ApiError::NotFound("publisher"));
                }
                self.check(id, Scope::Read, "publisher")?;
                Ok(Some(id.clone()))
            }
            Self::Marketplace => Err(ApiError::NotFound("route")),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        if state.admin.matches(token) {
            return Ok(Self::Admin);
        }
        let t = state.ops.authenticate_token(token).await.map_err(|e| match e {
            crate::ops::OpsError::NotFound(_) => ApiError::Unauthorized,
            other => other.into(),
        })?;
        Ok(match t.publisher {
            Some(id) => Self::Publisher { id, scopes: t.scopes },
            None if t.scopes.contains(&Scope::Marketplace) => Self::Marketplace,
            None => return Err(ApiError::Unauthorized),
        })
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
