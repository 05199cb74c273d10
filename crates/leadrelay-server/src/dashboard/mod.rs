//! The web dashboard under `/ui/`: the pages a publisher's team works in, rendered on the
//! server from compiled templates (`maud`), so it needs no JavaScript build and works with
//! scripts off. One small script of our own (`assets/app.js`) refreshes the inbox while it is
//! open; one stylesheet styles every page; both are compiled into the binary.
//!
//! Every page reads through `ops`, as the API does, and records the same audit entries. A page
//! is a `get` handler; what changes something is a `post` handler that answers `303 See Other`
//! back to the page (so a reload never repeats it) or, when the change is refused, the page
//! again with the reasons. People sign in with a password ([`session`]); every form carries the
//! session's CSRF token. Personal data never goes into a URL: searches are posted, not put in
//! a query string.

mod assets;
mod audit;
mod charts;
mod customers;
mod deliveries;
mod destinations;
mod inbox;
mod kpis;
mod leads;
mod login;
mod offers;
mod opportunities;
mod page;
mod search;
mod session;
mod team;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::state::AppState;

/// The dashboard's Content-Security-Policy: scripts, styles and images only from this server,
/// no inline script or style, no framing, forms only to this server.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Every route of the dashboard.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(inbox::get))
        .route("/ui/inbox/live", get(inbox::live))
        .route("/ui/login", get(login::get).post(login::post))
        .route("/ui/logout", post(login::logout))
        .route("/ui/invitation", get(login::get_invitation).post(login::post_invitation))
        .route("/ui/assets/{file}", get(assets::get))
        .route("/ui/opportunities", get(opportunities::list).post(opportunities::search))
        .route("/ui/opportunities/{id}", get(opportunities::get))
        .route("/ui/opportunities/{id}/status", post(opportunities::post_status))
        .route("/ui/opportunities/{id}/owner", post(opportunities::post_owner))
        .route("/ui/opportunities/{id}/activities", post(opportunities::post_activity))
        .route("/ui/opportunities/{id}/checklist", post(opportunities::post_checklist))
        .route("/ui/opportunities/{id}/next-touch", post(opportunities::post_next_touch))
        .route("/ui/leads", get(leads::list).post(leads::search))
        .route("/ui/leads/{id}", get(leads::get))
        .route("/ui/customers/{id}", get(customers::get))
        .route("/ui/customers/{id}/split", post(customers::post_split))
        .route("/ui/offers", get(offers::list).post(offers::save))
        .route("/ui/destinations", get(destinations::list).post(destinations::create))
        .route("/ui/destinations/new/{kind}", get(destinations::new_form))
        .route("/ui/ingest-keys", post(destinations::create_ingest_key))
        .route("/ui/destinations/{id}", get(destinations::get))
        .route("/ui/destinations/{id}/validate", post(destinations::validate))
        .route("/ui/destinations/{id}/enable", post(destinations::enable))
        .route("/ui/destinations/{id}/disable", post(destinations::disable))
        .route("/ui/destinations/{id}/replay", post(destinations::replay))
        .route("/ui/deliveries", get(deliveries::list))
        .route("/ui/deliveries/{id}", get(deliveries::get))
        .route("/ui/deliveries/{id}/retry", post(deliveries::retry))
        .route("/ui/kpis", get(kpis::get))
        .route("/ui/team", get(team::get))
        .route("/ui/team/users", post(team::add_user))
        .route("/ui/team/settings", post(team::put_settings))
        .route("/ui/audit", get(audit::list))
        .route("/ui/{*rest}", get(not_found).post(not_found))
        .method_not_allowed_fallback(|| async {
            page::error_page(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "This address does not take this kind of request.",
            )
        })
        .layer(middleware::from_fn(headers))
}

async fn not_found() -> Response {
    page::error_page(axum::http::StatusCode::NOT_FOUND, "There is no such page.").into_response()
}

/// The dashboard's own headers: its CSP, and no caching of pages (they hold personal data).
async fn headers(req: Request, next: Next) -> Response {
    let is_asset = req.uri().path().starts_with("/ui/assets/");
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers
        .insert(HeaderName::from_static("content-security-policy"), HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    if !is_asset {
        headers.insert(axum::http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
