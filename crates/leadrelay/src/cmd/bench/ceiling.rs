//! The bare-HTTP ceiling (`leadrelay bench-ceiling`, a child of `bench`): axum on `serve`'s
//! runtime that only parses the lead JSON and answers 202 with a fresh id, so what leadrelay
//! reaches against it is what its own work costs.

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use leadrelay_core::{Clock, LeadId, SystemClock};

/// The line the ceiling prints once it listens, followed by its address.
pub const LISTENING: &str = "bench ceiling listening on http://";

/// Serves until killed.
pub async fn serve() -> anyhow::Result<()> {
    let app = Router::new().route("/v1/ingest/microsoft/{key}", post(ingest));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the ceiling server")?;
    println!("{LISTENING}{}", listener.local_addr()?);
    axum::serve(listener, app).await.context("the ceiling server stopped")
}

async fn ingest(body: Bytes) -> Response {
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(lead) if lead.get("UserDetails").is_some() => {
            let id = LeadId::generate(SystemClock.now());
            (StatusCode::ACCEPTED, axum::Json(serde_json::json!({ "id": id.as_str() }))).into_response()
        }
        _ => StatusCode::BAD_REQUEST.into_response(),
    }
}
