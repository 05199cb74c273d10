//! The router's own middleware, so that what layers answer carries the error envelope too.
//!
//! hyper answers a request head it cannot read (a path over 64 KiB, more than 100 headers, a
//! head over ~400 KiB) with a bare 414/431 before any of this runs, and offers no hook to shape
//! that answer. [`limit_request_head`] therefore sets lower limits of its own and answers them
//! with the envelope, so every 414/431 a client can normally meet is ours.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::error::{ApiError, InternalCause};

/// The request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest path and query read, in bytes.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most headers one request may carry.
pub const MAX_HEADERS: usize = 64;
/// The most header bytes (names and values) one request may carry.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// 414 and 431 in the envelope, below hyper's own limits.
pub async fn limit_request_head(req: Request, next: Next) -> Response {
    let uri_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return ApiError::UriTooLong(MAX_URI_BYTES).into_response();
    }
    let headers = req.headers();
    let bytes: usize = headers.iter().map(|(n, v)| n.as_str().len() + v.len()).sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return ApiError::HeadersTooLarge(format!(
            "the request's headers are larger than this server reads (at most {MAX_HEADERS} headers, \
             {MAX_HEADER_BYTES} bytes)"
        ))
        .into_response();
    }
    next.run(req).await
}

/// Reads `Content-Encoding` the way senders write it (any case, spaces, `x-gzip`) and refuses
/// codings the decompression layer does not undo with the envelope, instead of its bare 415.
pub async fn check_content_encoding(mut req: Request, next: Next) -> Response {
    if let Some(value) = req.headers().get(CONTENT_ENCODING) {
        let coding = value.to_str().unwrap_or("").trim().to_ascii_lowercase();
        let normal = match coding.as_str() {
            "gzip" | "x-gzip" => "gzip",
            "deflate" => "deflate",
            "identity" | "" => "identity",
            _ => {
                return ApiError::UnsupportedMediaType(
                    "this Content-Encoding is not supported: send the body as is, gzip or deflate".to_owned(),
                )
                .into_response();
            }
        };
        req.headers_mut().insert(CONTENT_ENCODING, HeaderValue::from_static(normal));
    }
    next.run(req).await
}

/// `server.request_timeout_ms` as a 503 in the envelope.
pub async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

/// A safety net: an error status without a body (from a layer of a library) gets the envelope.
pub async fn envelope_bare_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if status.as_u16() < 400 || response.headers().contains_key(CONTENT_TYPE) {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let fresh = ApiError::for_status(status).into_response();
    let (fresh_parts, body) = fresh.into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.extend(fresh_parts.headers);
    parts.extensions.extend(fresh_parts.extensions);
    Response::from_parts(parts, body)
}

/// One line per request: method, the *matched* route (never the raw path, which can hold an
/// ingest key), status, duration and request id; the cause of a 500 is logged here, once.
pub async fn log_request(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().map_or("<unmatched>", |p| p.as_str()).to_owned();
    let request_id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let duration_ms = started.elapsed().as_millis() as u64;
    if let Some(InternalCause(cause)) = response.extensions().get::<InternalCause>() {
        tracing::error!(request_id, %method, route, http.status_code = status, duration_ms, error = %cause, "request failed");
    } else if status >= 500 {
        tracing::warn!(request_id, %method, route, http.status_code = status, duration_ms, "request");
    } else {
        tracing::debug!(request_id, %method, route, http.status_code = status, duration_ms, "request");
    }
    response
}

/// Counts and times every request, labelled by the *matched* route template (`unmatched` when
/// none matched: the raw path can hold an ingest key), the method and the final status.
pub async fn record_metrics(req: Request, next: Next) -> Response {
    use crate::telemetry::metrics::{HTTP_REQUEST_DURATION, HTTP_REQUESTS, method_label};
    let started = Instant::now();
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let method = method_label(req.method());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    ::metrics::histogram!(HTTP_REQUEST_DURATION, "route" => route.clone(), "method" => method)
        .record(started.elapsed().as_secs_f64());
    ::metrics::counter!(HTTP_REQUESTS, "route" => route, "method" => method, "status" => status).increment(1);
    response
}

/// The longest client-chosen request id we keep; a longer or stranger one is replaced.
pub const MAX_REQUEST_ID_BYTES: usize = 64;

/// Outermost: a client's `x-request-id` is kept only when it is short and made of letters,
/// digits, `.`, `_` and `-` (it reaches our logs; anything else could forge or flood them), so a
/// fresh one is generated instead; and every answer carries the headers that stop a browser
/// from sniffing types, framing our pages or leaking an ingest-key path as a referrer.
pub async fn secure_headers(mut req: Request, next: Next) -> Response {
    let safe = req.headers().get(REQUEST_ID).is_none_or(|v| {
        let b = v.as_bytes();
        !b.is_empty()
            && b.len() <= MAX_REQUEST_ID_BYTES
            && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
    });
    if !safe {
        req.headers_mut().remove(REQUEST_ID);
    }
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    ] {
        // A part of the app with a stricter policy of its own (the dashboard) keeps it.
        headers.entry(HeaderName::from_static(name)).or_insert(HeaderValue::from_static(value));
    }
    response
}
