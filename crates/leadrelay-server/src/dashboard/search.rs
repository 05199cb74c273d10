//! Lists and their filters. A list page reads the filters it shares with the API through the
//! API's own `Query` and filter functions, so a filter means the same on both. Its word search
//! is posted (names and companies are personal data: never in an address, a history or a log),
//! so the same filters arrive either in the address or in a posted form.

use super::session::{CSRF_FIELD, FormData, UiError};
use crate::http::error::ApiError;
use crate::http::query::Query;

/// A list's filters from its address (`P`: the API route's parameters); words to search are
/// refused there.
///
/// # Errors
/// 422 naming an unknown or bad parameter, or `q`.
pub fn from_address<P: utoipa::IntoParams>(raw: Option<&str>) -> Result<Query, UiError> {
    let q = Query::parse_for::<P>(raw)?;
    if q.text("q").is_some() {
        return Err(ApiError::field("q", "is posted from the search form, never put in an address").into());
    }
    Ok(q)
}

/// The filters of a posted search form (read as the API reads its query string).
///
/// # Errors
/// 422 naming an unknown or bad filter.
pub fn posted_filters<P: utoipa::IntoParams>(form: &FormData) -> Result<Query, UiError> {
    Ok(Query::parse_for_and::<P>(Some(&form.encoded()), &[CSRF_FIELD])?)
}
