//! Extractors owned by the app, so every rejection uses our error envelope: JSON bodies with
//! field paths, path parameters, and authentication visible in each handler's signature.
//!
//! Who calls ([`Caller`]): a bearer token when the request has an `Authorization` header;
//! otherwise a person's session, named by the `leadrelay_session` cookie. A request the
//! cookie authenticates that may change something (any method but GET, HEAD and OPTIONS)
//! must also send `X-CSRF-Token` with the token its sign-in returned: another site can make a
//! browser send the cookie, but cannot read the token (answers are not readable cross-site,
//! and the cookie is `SameSite=Strict` besides).
//!
//! How a JSON body is read, on every JSON route ([`ValidJson`], [`OptionalJson`],
//! [`JsonBatch`]):
//! 1. `Content-Type` is `application/json` (or `…+json`), with at most a UTF-8 `charset`; a
//!    missing type and `application/x-www-form-urlencoded` (what `curl -d` sends) are read as
//!    JSON too; anything else is 415. The marketplace's ingest route reads any type.
//! 2. `Content-Encoding` gzip or deflate was undone by the router's decompression layer; the
//!    size limit counts the decompressed bytes (413).
//! 3. A UTF-8 byte-order mark before the JSON is skipped (.NET senders write one).
//! 4. The whole body must be JSON (400 `invalid_json`, with the position) before any field is
//!    looked at, so a truncated body is never reported as a wrong field.
//! 5. The shape: an object where an object is expected (an array there is 422 naming the
//!    field, `body` at the top), each field of its type, no unknown fields (422 with the path).

use std::marker::PhantomData;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::{DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, de::IgnoredAny};

use leadrelay_core::access::Scope;
use leadrelay_core::audit::Actor;
use leadrelay_core::sales::{Role, Session, User};
use leadrelay_core::{PublisherId, TokenId, UserId};

use crate::auth::constant_time_eq;
use crate::http::error::ApiError;
use crate::ops::people::{SESSION_COOKIE, csrf_token};
use crate::state::AppState;

/// The raw body, with the size limit answered as a JSON 413.
pub struct Body(pub Bytes);

impl FromRequest<AppState> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = req.extensions().get::<BodyLimit>().map_or(state.config.server.max_body_bytes, |BodyLimit(n)| *n);
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(Self(b)),
            Err(rejection) if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge(limit))
            }
            Err(_) => Err(ApiError::InvalidJson("the body could not be read completely".to_owned())),
        }
    }
}

/// A route's own body limit, when it differs from `server.max_body_bytes` (set by the router
/// next to axum's `DefaultBodyLimit`, so the 413 can say which limit applied).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Checks that a JSON route's body is declared as JSON (see the module docs for the rule).
///
/// # Errors
/// 415 naming what is accepted.
pub fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(CONTENT_TYPE) else { return Ok(()) };
    let refuse = || {
        ApiError::UnsupportedMediaType(
            "the body must be JSON: send 'Content-Type: application/json' (UTF-8)".to_owned(),
        )
    };
    let value = value.to_str().map_err(|_| refuse())?;
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let json = essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"));
    if !json && essence != "application/x-www-form-urlencoded" {
        return Err(refuse());
    }
    if declares_utf8(parts) { Ok(()) } else { Err(refuse()) }
}

/// Whether the parameters of a `Content-Type` (after its `;`) leave the body UTF-8: no
/// `charset`, or `utf-8` / `us-ascii`. Our bodies are read as UTF-8 only.
pub fn declares_utf8<'a>(params: impl Iterator<Item = &'a str>) -> bool {
    !params.filter_map(|p| p.split_once('=')).any(|(name, charset)| {
        name.trim().eq_ignore_ascii_case("charset")
            && !matches!(charset.trim().trim_matches('"').to_ascii_lowercase().as_str(), "utf-8" | "utf8" | "us-ascii")
    })
}

/// A JSON object body read into `T` by the rules in the module docs.
pub struct ValidJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ValidJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        check_json_content_type(req.headers())?;
        let Body(bytes) = Body::from_request(req, state).await?;
        parse_json(&bytes).map(Self)
    }
}

/// As [`ValidJson`], but an empty body means "all defaults" (for optional request bodies).
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let declared = check_json_content_type(req.headers());
        let Body(bytes) = Body::from_request(req, state).await?;
        if strip_bom(&bytes).iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        declared?;
        parse_json(&bytes).map(Self)
    }
}

/// A body holding one JSON object or an array of them: `single` tells which it was. Errors in
/// an array are named `[i].field`.
pub struct JsonBatch<T> {
    /// The items, in order.
    pub items: Vec<T>,
    /// The body was one object, not an array.
    pub single: bool,
}

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBatch<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        check_json_content_type(req.headers())?;
        let Body(bytes) = Body::from_request(req, state).await?;
        let batch: OneOrMany<T> = parse_with(&bytes)?;
        Ok(match batch {
            OneOrMany::One(item) => Self { items: vec![item], single: true },
            OneOrMany::Many(items) => Self { items, single: false },
        })
    }
}

enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object or an array of objects")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(OneOrMany::One)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(Object(item)) = seq.next_element::<Object<T>>()? {
                    items.push(item);
                }
                Ok(OneOrMany::Many(items))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// `T`, which must be a JSON object: serde's derive would also read a struct from an array of
/// its field values, which no client means.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        object(d).map(Object)
    }
}

/// Reads a struct only from a JSON object (for `#[serde(deserialize_with = "object")]` on
/// fields holding structs, and for every top-level body).
///
/// # Errors
/// "invalid type" for anything but an object, and the struct's own errors.
pub fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    struct V<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_map(V(PhantomData))
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Parses a body as a JSON object into `T`, reporting the path of the first wrong field.
///
/// # Errors
/// 400 when the body is not JSON, 422 with the field path for type and shape errors.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    parse_with::<Object<T>>(bytes).map(|Object(v)| v)
}

/// Parses a body as any JSON value (for routes that read the shape themselves).
///
/// # Errors
/// 400 when the body is not JSON.
pub fn parse_json_value(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    parse_with(bytes)
}

fn parse_with<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes = strip_bom(bytes);
    // Syntax first, over the whole body, so `{"a":` is 400 whatever its first key says.
    let mut syntax = serde_json::Deserializer::from_slice(bytes);
    IgnoredAny::deserialize(&mut syntax)
        .and_then(|_| syntax.end())
        .map_err(|e| ApiError::InvalidJson(format!("line {} column {}", e.line(), e.column())))?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| field_error(&e.path().to_string(), e.inner()))
}

/// A field error from serde's, named by path and without the value it quotes (the value may be
/// personal data).
fn field_error(path: &str, e: &serde_json::Error) -> ApiError {
    let msg = e.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg);
    let join = |parent: &str, child: &str| {
        if parent == "." || parent.is_empty() { child.to_owned() } else { format!("{parent}.{child}") }
    };
    let at = |p: &str| if p == "." || p.is_empty() { "body".to_owned() } else { p.to_owned() };
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        return ApiError::field(join(path, name), "is required");
    }
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let (name, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let expected = expected.trim_start_matches(", ").replace('`', "");
        let expected = expected
            .strip_prefix("expected one of ")
            .or_else(|| expected.strip_prefix("expected "))
            .unwrap_or(&expected);
        let parent = path.rsplit_once('.').map_or(".", |(p, _)| p);
        let path = if path.ends_with(name) { path.to_owned() } else { join(parent, name) };
        return ApiError::field(at(&path), format!("is not a field here (expected one of: {expected})"));
    }
    let message = if let Some(rest) = msg.strip_prefix("invalid type: ") {
        // "invalid type: string \"abc\", expected u32" -> "must be u32, not a string"
        let (got, expected) = rest.split_once(", expected ").unwrap_or((rest, "another type"));
        let got = match got.split_whitespace().next().unwrap_or(got) {
            "sequence" => "an array",
            "map" => "an object",
            "string" => "a string",
            "integer" | "floating" => "a number",
            "boolean" => "a boolean",
            "null" | "unit" => "null",
            other => other,
        };
        format!("must be {expected}, not {got}")
    } else if let Some(rest) = msg.strip_prefix("invalid value: ") {
        let expected = rest.split_once(", expected ").map_or("a valid value", |(_, e)| e);
        format!("must be {expected}")
    } else {
        msg.to_owned()
    };
    ApiError::field(at(path), message)
}

/// Path parameters; a value that cannot be read (bad percent-encoding) names nothing: 404.
pub struct PathParams<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Self(v))
            .map_err(|_| ApiError::NotFound("resource"))
    }
}

/// An authenticated caller: the admin, a marketplace operator, one publisher's token with its
/// scopes, or a signed-in person of one publisher with their role's scopes.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The admin token: everything.
    Admin,
    /// A marketplace token: reports events for any publisher's offers, reads nothing.
    Marketplace {
        /// The token's id (for the audit log).
        token: TokenId,
    },
    /// A publisher token: its own publisher's data, within its scopes.
    Publisher {
        /// The publisher.
        id: PublisherId,
        /// The token's id (for the audit log).
        token: TokenId,
        /// What it allows.
        scopes: Vec<Scope>,
    },
    /// A person of a publisher's team, signed in (the session cookie).
    User {
        /// Their publisher.
        publisher: PublisherId,
        /// Who (for the audit log).
        user: UserId,
        /// Their role.
        role: Role,
        /// What the role allows (`Role::scopes`), so [`Caller::check`] treats them as a token.
        scopes: Vec<Scope>,
    },
}

impl Caller {
    /// A person of a publisher's team, with what their role allows.
    pub fn person(user: &User) -> Self {
        Self::User {
            publisher: user.publisher.clone(),
            user: user.id.clone(),
            role: user.role,
            scopes: user.role.scopes(),
        }
    }

    /// Who this is in the audit log: `admin`, or the token's id with its publisher.
    pub fn actor(&self) -> Actor {
        match self {
            Self::Admin => Actor::admin(),
            Self::Marketplace { token } => Actor::token(token.clone(), None),
            Self::Publisher { id, token, .. } => Actor::token(token.clone(), Some(id.clone())),
            Self::User { publisher, user, .. } => Actor::user(user.clone(), publisher.clone()),
        }
    }

    /// The one publisher this caller belongs to (a publisher token or a person), if any.
    pub fn publisher(&self) -> Option<&PublisherId> {
        match self {
            Self::Publisher { id, .. } => Some(id),
            Self::User { publisher, .. } => Some(publisher),
            Self::Admin | Self::Marketplace { .. } => None,
        }
    }

    /// Allows acting on `owner`'s data with `scope`. Another publisher's data answers 404 (as if
    /// it did not exist, naming `what`); a missing scope on one's own data answers 403.
    ///
    /// # Errors
    /// 404 or 403 as above.
    pub fn check(&self, owner: &PublisherId, scope: Scope, what: &'static str) -> Result<(), ApiError> {
        let (own, scopes) = match self {
            Self::Admin => return Ok(()),
            Self::Publisher { id, scopes, .. } => (id, scopes),
            Self::User { publisher, scopes, .. } => (publisher, scopes),
            Self::Marketplace { .. } => return Err(ApiError::NotFound(what)),
        };
        if own != owner {
            return Err(ApiError::NotFound(what));
        }
        if scopes.contains(&scope) {
            return Ok(());
        }
        Err(ApiError::Forbidden(match self {
            Self::User { role, .. } => format!("the '{role}' role does not allow this (it needs the '{scope}' scope)"),
            _ => format!("this token lacks the '{scope}' scope"),
        }))
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
            Self::Publisher { id, .. } | Self::User { publisher: id, .. } => {
                if asked.as_ref().is_some_and(|a| a != id) {
                    return Err(ApiError::NotFound("publisher"));
                }
                self.check(id, Scope::Read, "publisher")?;
                Ok(Some(id.clone()))
            }
            Self::Marketplace { .. } => Err(ApiError::NotFound("route")),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(authorization) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            let CurrentSession { user, .. } = CurrentSession::from_request_parts(parts, state).await?;
            return Ok(Self::person(&user));
        };
        let token = authorization
            .to_str()
            .ok()
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
            Some(id) => Self::Publisher { id, token: t.id, scopes: t.scopes },
            None if t.scopes.contains(&Scope::Marketplace) => Self::Marketplace { token: t.id },
            None => return Err(ApiError::Unauthorized),
        })
    }
}

/// The admin token, checked before the body is read (so a wrong token is told 403, not
/// which field its body lacks).
pub struct AdminCaller;

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Caller::from_request_parts(parts, state).await?.require_admin().map(|()| Self)
    }
}

/// A caller that may report marketplace events: a marketplace token or the admin token.
pub struct EventReporter;

impl FromRequestParts<AppState> for EventReporter {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Admin | Caller::Marketplace { .. } => Ok(Self),
            Caller::Publisher { .. } | Caller::User { .. } => {
                Err(ApiError::Forbidden("marketplace events need a marketplace token or the admin token".to_owned()))
            }
        }
    }
}

/// The session the `leadrelay_session` cookie names, live, with its user; for a request that
/// may change something, only with the session's `X-CSRF-Token`.
pub struct CurrentSession {
    /// The session token (the cookie's value).
    pub token: String,
    /// The session.
    pub session: Session,
    /// Whose.
    pub user: User,
}

impl FromRequestParts<AppState> for CurrentSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Self { token, session, user } = Self::named_by_cookie(&parts.headers, state).await?;
        if !parts.method.is_safe() {
            let sent = parts.headers.get(CSRF_HEADER).map(axum::http::HeaderValue::as_bytes).unwrap_or_default();
            if !constant_time_eq(sent, csrf_token(&token).as_bytes()) {
                return Err(ApiError::Forbidden(
                    "a change made with the session cookie must send the X-CSRF-Token header with the csrf_token \
                     the sign-in returned (GET /v1/sessions/current shows it again)"
                        .to_owned(),
                ));
            }
        }
        Ok(Self { token, session, user })
    }
}

impl CurrentSession {
    /// The live session the cookie in `headers` names, whatever the method (the caller checks
    /// the CSRF token its way: the API in a header, the dashboard in a form field).
    ///
    /// # Errors
    /// 401 without a cookie or for a session that ended; storage failures.
    pub async fn named_by_cookie(headers: &HeaderMap, state: &AppState) -> Result<Self, ApiError> {
        let token = session_cookie(headers).ok_or(ApiError::Unauthorized)?.to_owned();
        let (session, user) = state.ops.session(&token).await.map_err(|e| match e {
            crate::ops::OpsError::NotFound(_) => ApiError::Unauthorized,
            other => other.into(),
        })?;
        Ok(Self { token, session, user })
    }
}

/// The header a cookie-authenticated change carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The value of the session cookie, from any `Cookie` header.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie_value(headers, SESSION_COOKIE)
}

/// The value of the cookie `wanted`, from any `Cookie` header (`None` when empty).
pub fn cookie_value<'h>(headers: &'h HeaderMap, wanted: &str) -> Option<&'h str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == wanted && !value.is_empty())
        .map(|(_, value)| value.trim_matches('"'))
}

/// The client's IP address, for limiting failed sign-ins: the connection's peer, or, with
/// `workspace.trust_forwarded_for`, the last address of `X-Forwarded-For` (what the proxy in
/// front appended). `None` when neither is known.
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
        Ok(Self(client_ip(&parts.headers, peer, state.config.workspace.trust_forwarded_for)))
    }
}

/// The client's address: the last `X-Forwarded-For` entry when it is trusted and parses, else
/// the peer's.
fn client_ip(
    headers: &HeaderMap,
    peer: Option<std::net::IpAddr>,
    trust_forwarded_for: bool,
) -> Option<std::net::IpAddr> {
    let forwarded = || {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .last()
            .and_then(|last| last.trim().parse().ok())
    };
    if trust_forwarded_for { forwarded().or(peer) } else { peer }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Probe {
        name: String,
        count: u32,
        #[serde(default, deserialize_with = "object")]
        inner: Inner,
    }

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        email: Option<String>,
    }

    fn paths(err: ApiError) -> Vec<String> {
        let ApiError::Validation(fields) = err else { panic!("expected validation, got {err:?}") };
        fields.into_iter().map(|f| f.path).collect()
    }

    #[test]
    fn type_errors_name_the_path_without_the_value() {
        let err = parse_json::<Probe>(br#"{"name": "x", "count": "secret-value"}"#).unwrap_err();
        let ApiError::Validation(fields) = err else { panic!("expected validation") };
        assert_eq!(fields[0].path, "count");
        assert!(!fields[0].message.contains("secret-value"), "{}", fields[0].message);
    }

    #[test]
    fn syntax_errors_are_invalid_json_even_when_a_key_is_unknown() {
        assert!(matches!(parse_json::<Probe>(b"{\"name\": "), Err(ApiError::InvalidJson(_))));
        assert!(matches!(parse_json::<Probe>(br#"{"name": "x", "count": 1} trailing"#), Err(ApiError::InvalidJson(_))));
        assert!(matches!(parse_json::<Probe>(b"{\"a\":"), Err(ApiError::InvalidJson(_))));
        assert!(matches!(parse_json::<Probe>(b"[1,"), Err(ApiError::InvalidJson(_))));
    }

    #[test]
    fn arrays_where_objects_belong_are_refused_by_path() {
        assert_eq!(paths(parse_json::<Probe>(br#"["x", 1]"#).unwrap_err()), ["body"]);
        assert_eq!(
            paths(parse_json::<Probe>(br#"{"name": "x", "count": 1, "inner": ["a@b.co"]}"#).unwrap_err()),
            ["inner"]
        );
    }

    #[test]
    fn missing_and_unknown_fields_are_named() {
        assert_eq!(paths(parse_json::<Probe>(br#"{"name": "x"}"#).unwrap_err()), ["count"]);
        let err = parse_json::<Probe>(br#"{"name": "x", "count": 1, "inner": {"mail": "a"}}"#).unwrap_err();
        assert_eq!(paths(err), ["inner.mail"]);
        assert_eq!(paths(parse_json::<Probe>(br#"{"nme": "x", "count": 1}"#).unwrap_err()), ["nme"]);
    }

    #[test]
    fn the_session_cookie_is_found_among_others_in_any_cookie_header() {
        let mut h = HeaderMap::new();
        assert_eq!(session_cookie(&h), None);
        h.append(axum::http::header::COOKIE, "theme=dark; leadrelay_session=".parse().unwrap());
        assert_eq!(session_cookie(&h), None, "an empty value is no session");
        h.append(axum::http::header::COOKIE, "a=b; leadrelay_session=lrs_abc; c=d".parse().unwrap());
        assert_eq!(session_cookie(&h), Some("lrs_abc"));
        let mut h = HeaderMap::new();
        h.insert(axum::http::header::COOKIE, "not_leadrelay_session=x".parse().unwrap());
        assert_eq!(session_cookie(&h), None);
    }

    #[test]
    fn the_client_is_the_last_forwarded_address_only_when_that_is_trusted() {
        let peer = Some(std::net::IpAddr::from([10, 0, 0, 1]));
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", "203.0.113.9, 198.51.100.7".parse().unwrap());
        h.append("x-forwarded-for", "192.0.2.44".parse().unwrap());
        assert_eq!(client_ip(&h, peer, false), peer, "not trusted: the peer");
        assert_eq!(client_ip(&h, peer, true), Some(std::net::IpAddr::from([192, 0, 2, 44])), "what the proxy appended");
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "not an address".parse().unwrap());
        assert_eq!(client_ip(&h, peer, true), peer);
        assert_eq!(client_ip(&HeaderMap::new(), None, true), None);
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let probe = parse_json::<Probe>(b"\xEF\xBB\xBF{\"name\": \"x\", \"count\": 1}").unwrap();
        assert_eq!(probe.count, 1);
    }

    #[test]
    fn json_and_lenient_types_pass_and_others_are_refused() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, v.parse().unwrap());
            check_json_content_type(&h)
        };
        assert!(check_json_content_type(&HeaderMap::new()).is_ok(), "missing is lenient");
        for ok in [
            "application/json",
            "Application/JSON; charset=UTF-8",
            "application/merge-patch+json",
            "application/x-www-form-urlencoded",
        ] {
            assert!(with(ok).is_ok(), "{ok}");
        }
        for refused in ["text/plain", "text/csv", "multipart/form-data; boundary=x", "application/json; charset=latin1"]
        {
            assert!(matches!(with(refused), Err(ApiError::UnsupportedMediaType(_))), "{refused}");
        }
    }
}
