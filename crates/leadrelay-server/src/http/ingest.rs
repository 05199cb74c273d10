//! `POST /v1/ingest/microsoft/{key}`: the marketplace's HTTPS-endpoint JSON. The key in the path
//! is the credential. Keys are matched case-insensitively at every level (the marketplace's own
//! samples disagree on casing), `null` and missing fields are tolerated, and a lead is never
//! refused for an unknown offer.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use leadrelay_core::destination::FieldError;
use leadrelay_core::{Customer, LeadDraft};
use serde_json::{Map, Value, json};

use crate::http::error::ApiError;
use crate::http::extract::Body;
use crate::ops::{LeadSubmission, OpsError};
use crate::state::AppState;

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

/// `POST /v1/ingest/microsoft/{key}` → 202 `{"id": "lead_…"}` after the lead is committed.
pub async fn ingest_microsoft(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Body(body): Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let key = state.ops.authenticate_ingest_key(&key).await.map_err(|e| match e {
        OpsError::NotFound(_) => ApiError::NotFound("ingest key"),
        other => other.into(),
    })?;
    let value: Value = crate::http::extract::parse_json(&body)?;
    let input = MicrosoftLeadIn::from_json(&value)?;
    let offer_hint =
        input.lead_source.as_deref().and_then(|s| leadrelay_core::LeadSource::parse(s).ok()).and_then(|ls| ls.offer);
    let draft = LeadDraft {
        publisher: Some(key.publisher.clone()),
        offer: None,
        offer_title: input.offer_title,
        // The marketplace may omit LeadSource (2018 form); keep the lead anyway.
        lead_source: Some(input.lead_source.filter(|s| !s.trim().is_empty()).unwrap_or_else(|| "Unknown".to_owned())),
        action_code: input.action_code,
        customer: input.customer,
        description: input.description,
        campaign: None,
        is_test: false,
    };
    let leads = state.ops.accept_leads(vec![LeadSubmission { draft, offer_hint }], key.offer.as_ref()).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": leads[0].id.as_str() }))))
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
