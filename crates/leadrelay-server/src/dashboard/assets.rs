//! The stylesheet and the script, compiled into the binary: nothing to install or serve beside
//! it. They change only with a new binary, so a browser may keep them for a day.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const FILES: [(&str, &str, &str); 2] = [
    ("app.css", "text/css; charset=utf-8", include_str!("assets/app.css")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("assets/app.js")),
];

/// `GET /ui/assets/{file}`.
pub async fn get(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400")),
            ],
            *body,
        )
            .into_response(),
        None => super::page::error_page(StatusCode::NOT_FOUND, "There is no such file."),
    }
}
