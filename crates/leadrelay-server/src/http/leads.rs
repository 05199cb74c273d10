//! The native lead API and the lead list.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use leadrelay_core::access::Scope;
use leadrelay_core::storage::{Attempt, Delivery, LeadFilter};
use leadrelay_core::{Customer, CustomerId, Lead, LeadDraft, LeadId, OfferId, PublisherId};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::error::ApiError;
use crate::http::extract::{Body, Caller, parse_json};
use crate::http::query::Query;
use crate::ops::LeadSubmission;
use crate::state::AppState;

/// The most leads one `POST /v1/leads` may carry.
pub const MAX_BATCH: usize = 1000;

/// Customer fields of a lead or a marketplace event.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerIn {
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    country: Option<String>,
    company: Option<String>,
    title: Option<String>,
}

impl CustomerIn {
    /// The domain customer; an email that is not an address is refused at `{prefix}.email`.
    ///
    /// # Errors
    /// 422 naming the email field.
    pub fn into_customer(self, prefix: &str) -> Result<Customer, ApiError> {
        let c = Customer::from_raw(
            self.first_name,
            self.last_name,
            self.email,
            self.phone,
            self.country,
            self.company,
            self.title,
        );
        match &c.email {
            Some(email) if !leadrelay_core::customer::is_email_shaped(email) => {
                Err(ApiError::field(format!("{prefix}.email"), "is not an email address"))
            }
            _ => Ok(c),
        }
    }
}

/// A lead in marketplace form: either `lead_source` (`Source-Action|Offer`) or `source` +
/// `action`; `offer` optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadIn {
    publisher: String,
    offer: Option<String>,
    offer_title: Option<String>,
    lead_source: Option<String>,
    source: Option<String>,
    action: Option<String>,
    #[serde(default)]
    customer: CustomerIn,
    description: Option<String>,
    campaign: Option<String>,
}

impl LeadIn {
    fn into_submission(self) -> Result<LeadSubmission, ApiError> {
        let publisher = PublisherId::parse(&self.publisher).map_err(|rule| ApiError::field("publisher", rule))?;
        let offer =
            self.offer.as_deref().map(OfferId::parse).transpose().map_err(|rule| ApiError::field("offer", rule))?;
        if let Some(o) = &offer
            && !o.belongs_to(&publisher)
        {
            return Err(ApiError::field("offer", format!("must be an offer of publisher '{publisher}'")));
        }
        let lead_source = match (self.lead_source, self.source) {
            (Some(_), Some(_)) => {
                return Err(ApiError::field("source", "give either lead_source or source (+ action), not both"));
            }
            (Some(ls), None) => ls,
            (None, Some(src)) => src,
            (None, None) => {
                return Err(ApiError::field(
                    "lead_source",
                    "is required (e.g. 'AzureMarketplace-INS|contoso.crm'), or give source and action",
                ));
            }
        };
        let hint = offer
            .as_ref()
            .map(|o| o.as_str().to_owned())
            .or_else(|| leadrelay_core::LeadSource::parse(&lead_source).ok().and_then(|ls| ls.offer));
        let customer = self.customer.into_customer("customer")?;
        Ok(LeadSubmission {
            draft: LeadDraft {
                publisher: Some(publisher),
                offer: None,
                offer_title: self.offer_title,
                lead_source: Some(lead_source),
                action_code: self.action,
                customer,
                description: self.description,
                campaign: self.campaign,
                is_test: false,
            },
            offer_hint: hint,
        })
    }
}

/// `POST /v1/leads`: one lead or an array of up to 1,000, all stored or none.
pub async fn create_leads(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let value: Value = parse_json(&body)?;
    let (items, single) = match value {
        Value::Array(items) => (items, false),
        other => (vec![other], true),
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(ApiError::field("body", format!("must hold 1 to {MAX_BATCH} leads")));
    }
    let mut submissions = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let prefix = |e: ApiError| match e {
            ApiError::Validation(fields) if !single => ApiError::Validation(
                fields
                    .into_iter()
                    .map(|f| leadrelay_core::destination::FieldError::new(format!("[{i}].{}", f.path), f.message))
                    .collect(),
            ),
            other => other,
        };
        let lead: LeadIn = parse_json(&serde_json::to_vec(&item).unwrap_or_default()).map_err(prefix)?;
        let submission = lead.into_submission().map_err(prefix)?;
        if let Some(p) = &submission.draft.publisher {
            caller.check(p, Scope::Ingest, "publisher").map_err(prefix)?;
        }
        submissions.push(submission);
    }
    let leads = state.ops.accept_leads(submissions, None).await?;
    let body = if single {
        json!({ "id": leads[0].id.as_str() })
    } else {
        json!({ "ids": leads.iter().map(|l| l.id.as_str()).collect::<Vec<_>>() })
    };
    Ok((StatusCode::ACCEPTED, Json(body)))
}

/// A lead as the API shows it.
pub fn lead_out(l: &Lead) -> Value {
    let c = &l.customer;
    json!({
        "id": l.id.as_str(),
        "publisher": l.publisher.as_str(),
        "offer": l.offer.as_ref().map(OfferId::as_str),
        "offer_title": l.offer_title,
        "lead_source": l.lead_source_string(),
        "raw_lead_source": l.raw_lead_source,
        "source": l.source.as_str(),
        "action_code": l.action.as_ref().map(|a| a.as_str()),
        "stage": l.stage.as_str(),
        "customer": {
            "first_name": c.first_name, "last_name": c.last_name, "email": c.email, "phone": c.phone,
            "country": c.country, "country_code": c.country_code(), "company": c.company, "title": c.title,
        },
        "description": l.description,
        "campaign": l.campaign,
        "is_test": l.is_test,
        "pii_withheld": l.pii_withheld,
        "received_at": l.received_at.to_rfc3339(),
        "customer_id": l.customer_id.as_ref().map(|c| c.as_str()),
        "duplicate_of": l.duplicate_of.as_ref().map(LeadId::as_str),
        "merge_reason": l.merge_reason,
    })
}

/// A delivery as the API shows it.
pub fn delivery_out(d: &Delivery) -> Value {
    json!({
        "id": d.id.as_str(),
        "lead_id": d.lead_id.as_str(),
        "destination": d.destination.as_str(),
        "status": d.status.as_str(),
        "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at.map(|t| t.to_rfc3339()),
        "last_error": d.last_error,
        "created_at": d.created_at.to_rfc3339(),
        "updated_at": d.updated_at.to_rfc3339(),
    })
}

fn attempt_out(a: &Attempt) -> Value {
    json!({
        "number": a.number,
        "started_at": a.started_at.to_rfc3339(),
        "duration_ms": a.duration_ms,
        "status_code": a.status_code,
        "error_class": a.error_class.map(|e| e.as_str()),
        "message": a.message,
        "response_excerpt": a.excerpt,
    })
}

/// Query parameters shared by the lead list and the CSV export.
pub const LEAD_FILTERS: [&str; 11] =
    ["publisher", "offer", "customer", "source", "action", "stage", "q", "is_test", "since", "until", "cursor"];

/// The lead filter from query parameters, limited to what the caller may see.
///
/// # Errors
/// 422 naming a bad parameter; 404/403 from the caller's limits.
pub fn lead_filter(q: &Query, caller: &Caller) -> Result<LeadFilter, ApiError> {
    Ok(LeadFilter {
        publisher: caller.visible_publisher(q.parsed("publisher", PublisherId::parse)?)?,
        offer: q.parsed("offer", OfferId::parse)?,
        customer: q.parsed("customer", |c| CustomerId::parse(c).ok_or("is not a customer id (cus_…)"))?,
        source: q.text("source").map(|s| leadrelay_core::Source::parse(s).as_str().to_owned()),
        action: q.text("action").map(str::to_owned),
        stage: q.text("stage").map(str::to_owned),
        text: q.text("q").map(str::to_owned),
        is_test: q.parsed("is_test", |v| v.parse::<bool>().map_err(|_| "must be true or false"))?,
        since: q.time("since")?,
        until: q.time("until")?,
    })
}

/// `GET /v1/leads?offer&customer&source&action&stage&q&is_test&since&until&limit&cursor`
pub async fn list_leads(
    caller: Caller,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let mut allowed = LEAD_FILTERS.to_vec();
    allowed.push("limit");
    let q = Query::parse(raw.as_deref(), &allowed)?;
    let filter = lead_filter(&q, &caller)?;
    let page = state.ops.list_leads(&filter, &q.page()?).await?;
    Ok(Json(json!({ "items": page.items.iter().map(lead_out).collect::<Vec<_>>(), "next_cursor": page.next_cursor })))
}

/// `GET /v1/leads/{id}`: the lead with its deliveries and their attempts.
pub async fn get_lead(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = LeadId::parse(&id).ok_or(ApiError::NotFound("lead"))?;
    let detail = state.ops.get_lead(&id).await?;
    caller.check(&detail.lead.publisher, Scope::Read, "lead")?;
    let mut out = lead_out(&detail.lead);
    out["deliveries"] = detail
        .deliveries
        .iter()
        .map(|(d, attempts)| {
            let mut v = delivery_out(d);
            v["attempt_log"] = attempts.iter().map(attempt_out).collect();
            v
        })
        .collect();
    Ok(Json(out))
}
