//! `POST /v1/ingest/microsoft/{key}`: the marketplace's HTTPS-endpoint JSON. The key in the path
//! is the credential. Keys are matched case-insensitively at every level (the marketplace's own
//! samples disagree on casing), `null` and missing fields are tolerated, and a lead is never
//! refused for an unknown offer. The route is lenient about `Content-Type` (the marketplace's
//! sender is not ours to fix): any type is read as JSON.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use leadrelay_core::Customer;
use leadrelay_core::destination::FieldError;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::http::error::ApiError;
use crate::http::extract::{Body, PathParams, parse_json_value};
use crate::http::leads::LeadIdOut;
use crate::ops::{LeadOrigin, LeadSubmission, OpsError};
use crate::state::AppState;

/// The marketplace's HTTPS-endpoint payload as documented (for the OpenAPI document: the route
/// itself reads keys in any case and tolerates `null` and missing fields).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code)]
pub struct MicrosoftLeadDoc {
    user_details: Option<UserDetailsDoc>,
    /// `Source-Action|Offer`, e.g. `AzureMarketplace-INS|contoso.crm`; `Unknown` when absent.
    lead_source: Option<String>,
    action_code: Option<String>,
    offer_title: Option<String>,
    description: Option<String>,
}

/// `UserDetails` of [`MicrosoftLeadDoc`].
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code)]
pub struct UserDetailsDoc {
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    country: Option<String>,
    company: Option<String>,
    title: Option<String>,
}

/// The marketplace payload, read leniently.
#[derive(Debug, Default)]
pub struct MicrosoftLeadIn {
    /// `UserDetails`.
    pub customer: Customer,
    /// `LeadSource`.
    pub lead_source: Option<String>,
    /// `ActionCode`.
    pub action_code: Option<String>,
    /// `OfferTitle`.
    pub offer_title: Option<String>,
    /// `Description`.
    pub description: Option<String>,
}

fn text(path: &str, v: &Value, errors: &mut Vec<FieldError>) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        _ => {
            errors.push(FieldError::new(path, "must be a string or null"));
            None
        }
    }
}

fn lowercase_keys(map: &Map<String, Value>) -> impl Iterator<Item = (String, &Value)> {
    map.iter().map(|(k, v)| (k.to_ascii_lowercase(), v))
}

impl MicrosoftLeadIn {
    /// Reads the payload; every field error is reported (by its documented path).
    ///
    /// # Errors
    /// 422 listing every field of the wrong type.
    pub fn from_json(value: &Value) -> Result<Self, ApiError> {
        let Value::Object(top) = value else {
            return Err(ApiError::field(
                "body",
                "must be a JSON object with UserDetails, LeadSource, ActionCode, OfferTitle, Description",
            ));
        };
        let mut errors = Vec::new();
        let mut out = Self::default();
        let (mut first, mut last, mut email, mut phone, mut country, mut company, mut title) =
            (None, None, None, None, None, None, None);
        for (key, v) in lowercase_keys(top) {
            match key.as_str() {
                "userdetails" => match v {
                    Value::Null => {}
                    Value::Object(details) => {
                        for (k, v) in lowercase_keys(details) {
                            let slot = match k.as_str() {
                                "firstname" => (&mut first, "UserDetails.FirstName"),
                                "lastname" => (&mut last, "UserDetails.LastName"),
                                "email" => (&mut email, "UserDetails.Email"),
                                "phone" => (&mut phone, "UserDetails.Phone"),
                                "country" => (&mut country, "UserDetails.Country"),
                                "company" => (&mut company, "UserDetails.Company"),
                                "title" => (&mut title, "UserDetails.Title"),
                                _ => continue,
                            };
                            *slot.0 = text(slot.1, v, &mut errors);
                        }
                    }
                    _ => errors.push(FieldError::new("UserDetails", "must be an object")),
                },
                "leadsource" => out.lead_source = text("LeadSource", v, &mut errors),
                "actioncode" => out.action_code = text("ActionCode", v, &mut errors),
                "offertitle" => out.offer_title = text("OfferTitle", v, &mut errors),
                "description" => out.description = text("Description", v, &mut errors),
                _ => {}
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        out.customer = Customer::from_raw(first, last, email, phone, country, company, title);
        Ok(out)
    }
}

/// `POST /v1/ingest/microsoft/{key}`: the marketplace's lead, answered 202 after it is stored.
/// The key in the path is the credential.
#[utoipa::path(
    post, path = "/v1/ingest/microsoft/{key}", tag = "ingest",
    params(("key" = String, Path, description = "The ingest key (the credential; any case)")),
    request_body(content = MicrosoftLeadDoc, description = "The marketplace's JSON; keys in any case, any Content-Type"),
    responses((status = 202, description = "Stored", body = LeadIdOut))
)]
pub async fn ingest_microsoft(
    State(state): State<AppState>,
    PathParams(key): PathParams<String>,
    Body(body): Body,
) -> Result<(StatusCode, Json<LeadIdOut>), ApiError> {
    let key = state.ops.authenticate_ingest_key(&key).await.map_err(|e| match e {
        OpsError::NotFound(_) => ApiError::NotFound("ingest key"),
        other => other.into(),
    })?;
    let input = MicrosoftLeadIn::from_json(&parse_json_value(&body)?)?;
    // The marketplace may omit LeadSource (2018 form); keep the lead anyway.
    let lead_source = input.lead_source.filter(|s| !s.trim().is_empty()).unwrap_or_else(|| "Unknown".to_owned());
    let submission = LeadSubmission::new(LeadOrigin::Marketplace, key.publisher.clone())
        .lead_source(Some(lead_source))
        .offer(key.offer.clone())
        .offer_title(input.offer_title)
        .action_code(input.action_code)
        .customer(input.customer)
        .description(input.description);
    let leads = state.ops.accept_leads(vec![submission]).await?;
    Ok((StatusCode::ACCEPTED, Json(LeadIdOut { id: leads[0].id.to_string() })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_in_any_case_and_nulls_are_absent() {
        let v = serde_json::json!({
            "userDetails": {"firstname": "Some", "EMAIL": "someone@contoso.com", "Phone": null},
            "leadsource": "AzureMarketplace", "ACTIONCODE": "INS", "offerTitle": "Test Microsoft", "extra": 1
        });
        let lead = MicrosoftLeadIn::from_json(&v).unwrap();
        assert_eq!(lead.customer.first_name.as_deref(), Some("Some"));
        assert_eq!(lead.customer.email.as_deref(), Some("someone@contoso.com"));
        assert_eq!(lead.customer.phone, None);
        assert_eq!(lead.action_code.as_deref(), Some("INS"));
    }

    #[test]
    fn wrong_types_are_all_reported_by_path() {
        let v = serde_json::json!({"UserDetails": {"Email": 5, "Phone": true}, "LeadSource": ["x"]});
        let ApiError::Validation(fields) = MicrosoftLeadIn::from_json(&v).unwrap_err() else { panic!() };
        let mut paths: Vec<&str> = fields.iter().map(|f| f.path.as_str()).collect();
        paths.sort_unstable();
        assert_eq!(paths, ["LeadSource", "UserDetails.Email", "UserDetails.Phone"]);
        assert!(MicrosoftLeadIn::from_json(&serde_json::json!([1])).is_err());
    }
}
