//! The native lead API and the lead list.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use leadrelay_core::access::Scope;
use leadrelay_core::audit::{AuditAction, AuditObject};
use leadrelay_core::storage::{Attempt, Delivery, LeadFilter};
use leadrelay_core::{Customer, CustomerId, Lead, LeadId, OfferId, PublisherId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::error::ApiError;
use crate::http::extract::{Caller, JsonBatch, PathParams, object};
use crate::http::query::Query;
use crate::ops::{LeadOrigin, LeadSubmission};
use crate::state::AppState;

/// The most leads one `POST /v1/leads` may carry.
pub const MAX_BATCH: usize = 1000;

/// Customer fields of a lead or a marketplace event, kept exactly as sent.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerIn {
    first_name: Option<String>,
    last_name: Option<String>,
    /// Refused unless it looks like an address (spaces around it are ignored for the check).
    email: Option<String>,
    phone: Option<String>,
    country: Option<String>,
    company: Option<String>,
    title: Option<String>,
}

impl From<CustomerIn> for Customer {
    fn from(c: CustomerIn) -> Self {
        Customer::from_raw(c.first_name, c.last_name, c.email, c.phone, c.country, c.company, c.title)
    }
}

/// A lead in marketplace form: either `lead_source` (`Source-Action|Offer`) or `source` +
/// `action`; `offer` optional.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadIn {
    /// The publisher id.
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    publisher: String,
    /// `publisherid.offerid`, an offer of `publisher` (registered or not).
    #[schema(pattern = "^[a-z0-9_-]{1,64}\\.[a-z0-9_-]{1,128}$")]
    offer: Option<String>,
    offer_title: Option<String>,
    /// `Source-Action|Offer`, e.g. `AzureMarketplace-INS|contoso.crm`.
    lead_source: Option<String>,
    /// Instead of `lead_source`: the source part.
    source: Option<String>,
    /// With `source`: the action code (`INS`, `PLT`, `Create`, …).
    action: Option<String>,
    #[serde(default, deserialize_with = "object")]
    customer: CustomerIn,
    description: Option<String>,
    campaign: Option<String>,
}

impl LeadIn {
    fn into_submission(self) -> Result<LeadSubmission, ApiError> {
        let publisher = PublisherId::parse(&self.publisher).map_err(|rule| ApiError::field("publisher", rule))?;
        let offer =
            self.offer.as_deref().map(OfferId::parse).transpose().map_err(|rule| ApiError::field("offer", rule))?;
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
        Ok(LeadSubmission::new(LeadOrigin::Native, publisher)
            .lead_source(Some(lead_source))
            .offer(offer)
            .offer_title(self.offer_title)
            .action_code(self.action)
            .customer(self.customer.into())
            .description(self.description)
            .campaign(self.campaign))
    }
}

/// `POST /v1/leads` takes one lead or an array of them (for the document; the route reads it
/// with [`JsonBatch`]).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum LeadsIn {
    /// One lead.
    One(Box<LeadIn>),
    /// Up to 1,000, all stored or none.
    Many(Vec<LeadIn>),
}

/// The answer to one lead: its id.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeadIdOut {
    /// `lead_…`
    pub id: String,
}

/// The answer to a batch: the ids, in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeadIdsOut {
    /// `lead_…`, one per lead sent.
    pub ids: Vec<String>,
}

/// `POST /v1/leads` answers one id or many.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum AcceptedOut {
    /// For one lead.
    One(LeadIdOut),
    /// For an array.
    Many(LeadIdsOut),
}

/// `POST /v1/leads`: one lead or an array of up to 1,000, all stored or none.
#[utoipa::path(
    post, path = "/v1/leads", tag = "leads",
    request_body(content = LeadsIn, description = "One lead object, or an array of up to 1,000"),
    responses((status = 202, description = "Stored (all or none)", body = AcceptedOut)),
    security(("bearer" = []))
)]
pub async fn create_leads(
    caller: Caller,
    State(state): State<AppState>,
    batch: JsonBatch<LeadIn>,
) -> Result<(StatusCode, Json<AcceptedOut>), ApiError> {
    if batch.items.is_empty() || batch.items.len() > MAX_BATCH {
        return Err(ApiError::field("body", format!("must hold 1 to {MAX_BATCH} leads")));
    }
    let single = batch.single;
    let mut submissions = Vec::with_capacity(batch.items.len());
    for (i, lead) in batch.items.into_iter().enumerate() {
        let prefix = |e: ApiError| match e {
            ApiError::Validation(fields) if !single => ApiError::Validation(
                fields
                    .into_iter()
                    .map(|f| leadrelay_core::destination::FieldError::new(format!("[{i}].{}", f.path), f.message))
                    .collect(),
            ),
            other => other,
        };
        let submission = lead.into_submission().map_err(prefix)?;
        caller.check(submission.publisher(), Scope::Ingest, "publisher")?;
        submissions.push(submission);
    }
    let leads = state.ops.accept_leads(submissions).await?;
    let body = if single {
        AcceptedOut::One(LeadIdOut { id: leads[0].id.to_string() })
    } else {
        AcceptedOut::Many(LeadIdsOut { ids: leads.iter().map(|l| l.id.to_string()).collect() })
    };
    Ok((StatusCode::ACCEPTED, Json(body)))
}

/// A lead's customer as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerOut {
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    /// As received (`US`, `USA`, `United States`).
    country: Option<String>,
    /// ISO 3166-1 alpha-2, when `country` is recognisable.
    country_code: Option<&'static str>,
    company: Option<String>,
    title: Option<String>,
}

/// A lead as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeadOut {
    id: String,
    publisher: String,
    offer: Option<String>,
    offer_title: Option<String>,
    /// `Source-Action|Offer`, rebuilt from the parts.
    lead_source: String,
    /// The `LeadSource` string exactly as received, when one was.
    raw_lead_source: Option<String>,
    source: String,
    action_code: Option<String>,
    stage: String,
    customer: CustomerOut,
    description: Option<String>,
    campaign: Option<String>,
    is_test: bool,
    pii_withheld: bool,
    /// The person's data was erased before and this lead brought the address back.
    previously_erased: bool,
    #[schema(format = DateTime)]
    received_at: String,
    customer_id: Option<String>,
    duplicate_of: Option<String>,
    merge_reason: Option<String>,
}

impl From<&Lead> for LeadOut {
    fn from(l: &Lead) -> Self {
        let c = &l.customer;
        Self {
            id: l.id.to_string(),
            publisher: l.publisher.to_string(),
            offer: l.offer.as_ref().map(OfferId::to_string),
            offer_title: l.offer_title.clone(),
            lead_source: l.lead_source_string(),
            raw_lead_source: l.raw_lead_source.clone(),
            source: l.source.as_str().to_owned(),
            action_code: l.action.as_ref().map(|a| a.as_str().to_owned()),
            stage: l.stage.as_str().to_owned(),
            customer: CustomerOut {
                first_name: c.first_name.clone(),
                last_name: c.last_name.clone(),
                email: c.email.clone(),
                phone: c.phone.clone(),
                country: c.country.clone(),
                country_code: c.country_code(),
                company: c.company.clone(),
                title: c.title.clone(),
            },
            description: l.description.clone(),
            campaign: l.campaign.clone(),
            is_test: l.is_test,
            pii_withheld: l.pii_withheld,
            previously_erased: l.previously_erased,
            received_at: l.received_at.to_rfc3339(),
            customer_id: l.customer_id.as_ref().map(|c| c.to_string()),
            duplicate_of: l.duplicate_of.as_ref().map(LeadId::to_string),
            merge_reason: l.merge_reason.clone(),
        }
    }
}

/// A delivery as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    id: String,
    lead_id: String,
    destination: String,
    #[schema(schema_with = delivery_statuses)]
    status: &'static str,
    /// Attempts counted against the retry schedule.
    attempts: u32,
    #[schema(format = DateTime)]
    next_attempt_at: Option<String>,
    last_error: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

fn delivery_statuses() -> utoipa::openapi::Object {
    crate::http::openapi::string_enum(["pending", "delivered", "dead"])
}

impl From<&Delivery> for DeliveryOut {
    fn from(d: &Delivery) -> Self {
        Self {
            id: d.id.to_string(),
            lead_id: d.lead_id.to_string(),
            destination: d.destination.to_string(),
            status: d.status.as_str(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at.map(|t| t.to_rfc3339()),
            last_error: d.last_error.clone(),
            created_at: d.created_at.to_rfc3339(),
            updated_at: d.updated_at.to_rfc3339(),
        }
    }
}

/// One attempt of a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptOut {
    number: u32,
    #[schema(format = DateTime)]
    started_at: String,
    duration_ms: u64,
    status_code: Option<u16>,
    #[schema(schema_with = error_classes)]
    error_class: Option<&'static str>,
    message: Option<String>,
    /// The start of the receiver's answer.
    response_excerpt: Option<String>,
}

fn error_classes() -> utoipa::openapi::Object {
    let mut schema = crate::http::openapi::string_enum(["transient", "throttled", "permanent", "gone"]);
    crate::http::openapi::make_nullable(&mut schema);
    schema
}

impl From<&Attempt> for AttemptOut {
    fn from(a: &Attempt) -> Self {
        Self {
            number: a.number,
            started_at: a.started_at.to_rfc3339(),
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            error_class: a.error_class.map(|e| e.as_str()),
            message: a.message.clone(),
            response_excerpt: a.excerpt.clone(),
        }
    }
}

/// A delivery with its attempts.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetailOut {
    #[serde(flatten)]
    delivery: DeliveryOut,
    attempt_log: Vec<AttemptOut>,
}

/// A lead with its deliveries and their attempts.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeadDetailOut {
    #[serde(flatten)]
    lead: LeadOut,
    deliveries: Vec<DeliveryDetailOut>,
}

/// A page of leads, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeadPageOut {
    items: Vec<LeadOut>,
    /// Pass back as `cursor`; `null` at the end.
    next_cursor: Option<String>,
}

/// The lead list's filters (the CSV export takes the same but `limit`).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct LeadListQuery {
    /// Only this publisher's leads (a publisher token sees only its own).
    publisher: Option<String>,
    /// `publisherid.offerid`.
    offer: Option<String>,
    /// `cus_…`
    customer: Option<String>,
    /// The source part (`AzureMarketplace`, `AppSource`, …).
    source: Option<String>,
    /// The action code (`INS`, `PLT`, …), any case.
    action: Option<String>,
    /// The funnel stage.
    stage: Option<String>,
    /// Whole words (or a whole email address) that must all appear in the first or last name,
    /// email or company, any case: `quillworks`, `ada quillfeather`. Searched through a keyed
    /// index, so partial words do not match.
    q: Option<String>,
    is_test: Option<bool>,
    /// RFC 3339 time or a date.
    since: Option<String>,
    /// RFC 3339 time or a date.
    until: Option<String>,
    /// Page size.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The CSV export's filters: the lead list's without `limit`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct LeadExportQuery {
    /// Only this publisher's leads (a publisher token sees only its own).
    publisher: Option<String>,
    /// `publisherid.offerid`.
    offer: Option<String>,
    /// `cus_…`
    customer: Option<String>,
    /// The source part (`AzureMarketplace`, `AppSource`, …).
    source: Option<String>,
    /// The action code (`INS`, `PLT`, …), any case.
    action: Option<String>,
    /// The funnel stage.
    stage: Option<String>,
    /// Whole words (or a whole email address) that must all appear in the first or last name,
    /// email or company, any case: `quillworks`, `ada quillfeather`. Searched through a keyed
    /// index, so partial words do not match.
    q: Option<String>,
    is_test: Option<bool>,
    /// RFC 3339 time or a date.
    since: Option<String>,
    /// RFC 3339 time or a date.
    until: Option<String>,
    /// Ignored by the export (it streams every matching lead); accepted for symmetry.
    cursor: Option<String>,
}

/// A search text with at least one word the blind index can match (for every `q` parameter).
pub(crate) fn search_text(q: &str) -> Result<String, &'static str> {
    let has_word = leadrelay_core::vault::search_words(q).next().is_some();
    if has_word {
        Ok(q.to_owned())
    } else {
        Err("must hold a word of at least two letters or digits (search matches whole words)")
    }
}

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
        text: q.parsed("q", search_text)?,
        is_test: q.parsed("is_test", |v| v.parse::<bool>().map_err(|_| "must be true or false"))?,
        since: q.time("since")?,
        until: q.time("until")?,
    })
}

/// `GET /v1/leads`: the list, newest first.
#[utoipa::path(
    get, path = "/v1/leads", tag = "leads",
    params(LeadListQuery),
    responses((status = 200, description = "A page of leads", body = LeadPageOut)),
    security(("bearer" = []))
)]
pub async fn list_leads(
    caller: Caller,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<LeadPageOut>, ApiError> {
    let q = Query::parse_for::<LeadListQuery>(raw.as_deref())?;
    let filter = lead_filter(&q, &caller)?;
    let page = state.ops.list_leads(&filter, &q.page()?).await?;
    let entry = state.ops.audit_entry(&caller.actor(), filter.publisher.as_ref(), AuditAction::LeadList);
    state.ops.record(entry.count(page.items.len() as u64).text_search(filter.text.is_some())).await?;
    Ok(Json(LeadPageOut { items: page.items.iter().map(LeadOut::from).collect(), next_cursor: page.next_cursor }))
}

/// `GET /v1/leads/{id}`: the lead with its deliveries and their attempts.
#[utoipa::path(
    get, path = "/v1/leads/{id}", tag = "leads",
    params(("id" = String, Path, description = "`lead_…`")),
    responses((status = 200, description = "The lead", body = LeadDetailOut)),
    security(("bearer" = []))
)]
pub async fn get_lead(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<LeadDetailOut>, ApiError> {
    let id = LeadId::parse(&id).ok_or(ApiError::NotFound("lead"))?;
    let detail = state.ops.get_lead(&id).await?;
    caller.check(&detail.lead.publisher, Scope::Read, "lead")?;
    let entry = state.ops.audit_entry(&caller.actor(), Some(&detail.lead.publisher), AuditAction::LeadRead);
    state.ops.record(entry.object(AuditObject::Lead(id))).await?;
    Ok(Json(LeadDetailOut::from(&detail)))
}

impl From<&leadrelay_core::storage::LeadDetail> for LeadDetailOut {
    fn from(detail: &leadrelay_core::storage::LeadDetail) -> Self {
        Self {
            lead: LeadOut::from(&detail.lead),
            deliveries: detail
                .deliveries
                .iter()
                .map(|(d, attempts)| DeliveryDetailOut {
                    delivery: DeliveryOut::from(d),
                    attempt_log: attempts.iter().map(AttemptOut::from).collect(),
                })
                .collect(),
        }
    }
}
