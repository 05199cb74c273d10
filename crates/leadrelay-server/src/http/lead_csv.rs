//! CSV export and import of leads. The export streams every matching lead page by page (no row
//! cap, constant memory); the import reads our own export and the marketplace's Referrals
//! export (headers matched loosely), reporting each bad row without stopping.

use axum::Json;
use axum::body::{Body as HttpBody, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use leadrelay_core::access::Scope;
use leadrelay_core::destination::FieldError;
use leadrelay_core::storage::{LeadFilter, PageRequest};
use leadrelay_core::{Customer, Lead, LeadDraft, OfferId, PublisherId};
use serde_json::{Value, json};

use crate::http::error::ApiError;
use crate::http::extract::{Body, Caller};
use crate::http::leads::{LEAD_FILTERS, lead_filter};
use crate::http::query::Query;
use crate::ops::{LeadSubmission, OpsError};
use crate::state::AppState;

/// The export's columns, in order. The import reads the same names back.
pub const COLUMNS: [&str; 22] = [
    "id",
    "received_at",
    "publisher",
    "offer",
    "offer_title",
    "lead_source",
    "source",
    "action_code",
    "stage",
    "first_name",
    "last_name",
    "email",
    "phone",
    "country",
    "company",
    "title",
    "description",
    "campaign",
    "is_test",
    "pii_withheld",
    "customer_id",
    "duplicate_of",
];

const PAGE: u32 = 1000;

/// A spreadsheet would run a cell starting with one of these as a formula: such cells get a
/// leading apostrophe (the OWASP advice), which the import strips again.
fn defuse(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{cell}").into() } else { cell.into() }
}

fn row(l: &Lead) -> [String; 22] {
    let c = &l.customer;
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        l.id.to_string(),
        l.received_at.to_rfc3339(),
        l.publisher.to_string(),
        l.offer.as_ref().map(OfferId::to_string).unwrap_or_default(),
        o(&l.offer_title),
        l.lead_source_string(),
        l.source.as_str().to_owned(),
        l.action.as_ref().map(|a| a.as_str().to_owned()).unwrap_or_default(),
        l.stage.to_string(),
        o(&c.first_name),
        o(&c.last_name),
        o(&c.email),
        o(&c.phone),
        o(&c.country),
        o(&c.company),
        o(&c.title),
        o(&l.description),
        o(&l.campaign),
        l.is_test.to_string(),
        l.pii_withheld.to_string(),
        l.customer_id.as_ref().map(|c| c.to_string()).unwrap_or_default(),
        l.duplicate_of.as_ref().map(|d| d.to_string()).unwrap_or_default(),
    ]
}

fn render(leads: &[Lead], header: bool) -> Bytes {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(leads.len() * 300));
    if header {
        let _ = w.write_record(COLUMNS);
    }
    for l in leads {
        let cells = row(l);
        let _ = w.write_record(cells.iter().map(|c| defuse(c).into_owned()));
    }
    Bytes::from(w.into_inner().unwrap_or_default())
}

/// `GET /v1/leads/export.csv` with the lead list's filters: every matching lead, newest first,
/// streamed. A storage failure mid-way aborts the response, so a truncated file is detectable.
pub async fn export_leads(
    caller: Caller,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref(), &LEAD_FILTERS)?;
    let filter = lead_filter(&q, &caller)?;
    struct Cursor {
        next: Option<String>,
        first: bool,
        done: bool,
        filter: LeadFilter,
        state: AppState,
    }
    let start = Cursor { next: None, first: true, done: false, filter, state };
    let stream = futures_util::stream::unfold(start, |mut cur| async move {
        if cur.done {
            return None;
        }
        let page = PageRequest { limit: PAGE, cursor: cur.next.take() };
        match cur.state.ops.list_leads(&cur.filter, &page).await {
            Ok(p) => {
                let bytes = render(&p.items, cur.first);
                cur.first = false;
                cur.done = p.next_cursor.is_none();
                cur.next = p.next_cursor;
                Some((Ok::<_, std::io::Error>(bytes), cur))
            }
            Err(e) => {
                tracing::error!(error = %e, "lead export failed mid-way; the response is cut short");
                cur.done = true;
                Some((Err(std::io::Error::other("storage failed during export")), cur))
            }
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"leads.csv\""),
        ],
        HttpBody::from_stream(stream),
    )
        .into_response())
}

/// The lead field a CSV header names, matched without case, spaces, `_`, `-` or `/`.
fn field_for(header: &str) -> Option<&'static str> {
    let h: String = header.chars().filter(|c| c.is_alphanumeric()).collect::<String>().to_lowercase();
    Some(match h.as_str() {
        "firstname" | "givenname" => "first_name",
        "lastname" | "surname" | "familyname" => "last_name",
        "email" | "emailaddress" | "workemail" | "contactemail" => "email",
        "phone" | "phonenumber" | "telephone" => "phone",
        "country" | "countryregion" => "country",
        "company" | "companyname" | "organization" | "organisation" | "customername" => "company",
        "title" | "jobtitle" => "title",
        "offer" | "offerid" | "productid" => "offer",
        "offertitle" | "offername" | "offerdisplayname" | "productname" => "offer_title",
        "leadsource" | "referralsource" => "lead_source",
        "source" => "source",
        "actioncode" | "action" | "calltoaction" | "customeraction" => "action_code",
        "description" | "notes" | "customernotes" => "description",
        "campaign" | "campaignid" | "mktcmpid" => "campaign",
        _ => return None,
    })
}

fn undefuse(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => cell,
    }
}

/// The most rows one import may hold.
pub const MAX_IMPORT_ROWS: usize = 100_000;

/// `POST /v1/leads/import.csv?publisher=…` with a CSV body → 200
/// `{"imported": n, "duplicates": n, "failed": [{"line", "errors": [{"path", "message"}]}]}`.
/// Good rows are stored even when others are refused; each lead is merged and de-duplicated as
/// if it had just arrived.
pub async fn import_leads(
    caller: Caller,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    Body(body): Body,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &["publisher"])?;
    let publisher = match (q.parsed("publisher", PublisherId::parse)?, &caller) {
        (Some(p), _) => p,
        (None, Caller::Publisher { id, .. }) => id.clone(),
        (None, _) => return Err(ApiError::field("publisher", "is required (?publisher=…) with this token")),
    };
    caller.check(&publisher, Scope::Ingest, "publisher")?;
    state.ops.require_publisher(&publisher).await?;
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(body.as_ref());
    let headers =
        reader.headers().map_err(|e| ApiError::field("body", format!("is not CSV with a header row ({e})")))?.clone();
    let fields: Vec<Option<&'static str>> = headers.iter().map(field_for).collect();
    if !fields.iter().any(|f| matches!(f, Some("lead_source" | "source" | "email" | "action_code"))) {
        return Err(ApiError::field(
            "body",
            "the header row names none of the lead columns (expected e.g. lead_source, email, first_name, offer)",
        ));
    }
    let mut submissions = Vec::new();
    let mut lines = Vec::new();
    let mut failed = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        if i >= MAX_IMPORT_ROWS {
            return Err(ApiError::field("body", format!("holds more than {MAX_IMPORT_ROWS} rows; split the file")));
        }
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                failed.push(json!({ "line": line, "errors": [{ "path": "row", "message": format!("is not valid CSV ({e})") }] }));
                continue;
            }
        };
        let mut get = std::collections::HashMap::new();
        for (field, cell) in fields.iter().zip(record.iter()) {
            if let Some(f) = field {
                let v = undefuse(cell);
                if !v.is_empty() {
                    get.entry(*f).or_insert_with(|| v.to_owned());
                }
            }
        }
        match submission(&publisher, &mut get) {
            Ok(s) => {
                submissions.push(s);
                lines.push(line);
            }
            Err(errors) => failed.push(json!({ "line": line, "errors": errors })),
        }
    }
    let mut imported = 0usize;
    let mut duplicates = 0usize;
    // Rows are committed in chunks; a chunk that fails a rule is retried row by row so that
    // one bad row never takes its neighbours down with it.
    for (chunk, chunk_lines) in submissions.chunks(500).zip(lines.chunks(500)) {
        match state.ops.accept_leads(chunk.to_vec(), None).await {
            Ok(leads) => {
                imported += leads.len();
                duplicates += leads.iter().filter(|l| l.duplicate_of.is_some()).count();
            }
            Err(OpsError::Invalid(_)) => {
                for (s, line) in chunk.iter().zip(chunk_lines) {
                    match state.ops.accept_leads(vec![s.clone()], None).await {
                        Ok(leads) => {
                            imported += 1;
                            duplicates += usize::from(leads[0].duplicate_of.is_some());
                        }
                        Err(OpsError::Invalid(fields)) => {
                            failed.push(json!({ "line": line, "errors": field_json(&fields) }))
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    failed.sort_by_key(|f| f["line"].as_u64());
    Ok(Json(json!({ "imported": imported, "duplicates": duplicates, "failed": failed })))
}

fn field_json(fields: &[FieldError]) -> Value {
    fields.iter().map(|f| json!({ "path": f.path, "message": f.message })).collect()
}

fn submission(
    publisher: &PublisherId,
    get: &mut std::collections::HashMap<&'static str, String>,
) -> Result<LeadSubmission, Value> {
    let mut errors = Vec::new();
    let offer = get.remove("offer");
    if let Some(o) = &offer {
        match OfferId::parse(o) {
            Ok(id) if !id.belongs_to(publisher) => {
                errors.push(FieldError::new("offer", format!("must be an offer of publisher '{publisher}'")));
            }
            Ok(_) => {}
            Err(rule) => errors.push(FieldError::new("offer", rule)),
        }
    }
    let lead_source = get.remove("lead_source").or_else(|| get.remove("source"));
    if lead_source.is_none() {
        errors.push(FieldError::new("lead_source", "is required (a lead_source or source column)"));
    }
    let customer = Customer::from_raw(
        get.remove("first_name"),
        get.remove("last_name"),
        get.remove("email"),
        get.remove("phone"),
        get.remove("country"),
        get.remove("company"),
        get.remove("title"),
    );
    if customer.email.as_deref().is_some_and(|e| !leadrelay_core::customer::is_email_shaped(e)) {
        errors.push(FieldError::new("email", "is not an email address"));
    }
    if !errors.is_empty() {
        return Err(field_json(&errors));
    }
    let hint = offer.or_else(|| {
        lead_source.as_deref().and_then(|s| leadrelay_core::LeadSource::parse(s).ok()).and_then(|l| l.offer)
    });
    Ok(LeadSubmission {
        draft: LeadDraft {
            publisher: Some(publisher.clone()),
            offer: None,
            offer_title: get.remove("offer_title"),
            lead_source,
            action_code: get.remove("action_code"),
            customer,
            description: get.remove("description"),
            campaign: get.remove("campaign"),
            is_test: false,
        },
        offer_hint: hint,
    })
}

/// The largest CSV import accepted, in bytes (the route's own body limit).
pub const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;
