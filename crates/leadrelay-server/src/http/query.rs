//! Query-string parsing with field-named errors, shared by the list routes.

use std::collections::HashMap;

use leadrelay_core::Timestamp;
use leadrelay_core::storage::PageRequest;

use crate::http::error::ApiError;

/// Query parameters, checked against the names a route accepts.
pub struct Query(HashMap<String, String>);

/// Default and largest page size.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size.
pub const MAX_LIMIT: u32 = 1000;

impl Query {
    /// Reads the raw query string; refuses names the route does not know (typos would otherwise
    /// silently widen a filter).
    ///
    /// # Errors
    /// 422 naming the unknown parameter.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        Self::parse_names(raw, allowed)
    }

    /// As [`Query::parse`], with the names the route documents in its OpenAPI parameters
    /// (`P`), so the document and the check cannot drift apart.
    ///
    /// # Errors
    /// 422 naming the unknown parameter.
    pub fn parse_for<P: utoipa::IntoParams>(raw: Option<&str>) -> Result<Self, ApiError> {
        Self::parse_for_and::<P>(raw, &[])
    }

    /// As [`Query::parse_for`], also taking the names in `more` (a dashboard form's own
    /// fields beside the filters it shares with the API).
    ///
    /// # Errors
    /// 422 naming the unknown parameter.
    pub fn parse_for_and<P: utoipa::IntoParams>(raw: Option<&str>, more: &[&str]) -> Result<Self, ApiError> {
        let mut names: Vec<String> =
            P::into_params(|| Some(utoipa::openapi::path::ParameterIn::Query)).into_iter().map(|p| p.name).collect();
        names.extend(more.iter().map(|m| (*m).to_owned()));
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        Self::parse_names(raw, &names)
    }

    fn parse_names(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let mut map = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if !allowed.contains(&k.as_ref()) {
                return Err(ApiError::field(
                    k.into_owned(),
                    format!("is not a filter of this route (expected one of: {})", allowed.join(", ")),
                ));
            }
            map.insert(k.into_owned(), v.into_owned());
        }
        Ok(Self(map))
    }

    /// No parameters at all.
    pub fn none() -> Self {
        Self(HashMap::new())
    }

    /// A text parameter.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// A parameter parsed by `parse`, whose error is the rule.
    ///
    /// # Errors
    /// 422 naming the parameter.
    pub fn parsed<T, E: std::fmt::Display>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, ApiError> {
        self.text(name).map(|v| parse(v).map_err(|e| ApiError::field(name, e.to_string()))).transpose()
    }

    /// A time parameter (RFC 3339 or a date).
    ///
    /// # Errors
    /// 422 naming the parameter.
    pub fn time(&self, name: &str) -> Result<Option<Timestamp>, ApiError> {
        self.parsed(name, Timestamp::parse_rfc3339)
    }

    /// `limit` and `cursor`.
    ///
    /// # Errors
    /// 422 for a limit outside 1–1000.
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        let limit = self
            .parsed("limit", |v| match v.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
                _ => Err(format!("must be a whole number from 1 to {MAX_LIMIT}")),
            })?
            .unwrap_or(DEFAULT_LIMIT);
        Ok(PageRequest { limit, cursor: self.text("cursor").map(str::to_owned) })
    }
}
