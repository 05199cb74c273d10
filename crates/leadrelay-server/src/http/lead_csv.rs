//! CSV export and import of leads. The export streams every matching lead page by page (no row
//! cap, constant memory); the import is the `ops::import_leads_csv` use case.

use axum::Json;
use axum::body::{Body as HttpBody, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::http::header::{self, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use leadrelay_core::PublisherId;
use leadrelay_core::access::Scope;
use leadrelay_core::audit::AuditAction;
use leadrelay_core::storage::{LeadFilter, PageRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::error::{ApiError, FieldErrorOut};
use crate::http::extract::{Body, Caller};
use crate::http::leads::{LeadExportQuery, lead_filter};
use crate::http::query::Query;
use crate::ops::CsvImport;
use crate::ops::lead_csv::render;
use crate::state::AppState;

pub use crate::ops::lead_csv::{COLUMNS, MAX_IMPORT_ROWS};

const PAGE: u32 = 1000;

/// The largest CSV import accepted, in bytes (the route's own body limit).
pub const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;

/// `GET /v1/leads/export.csv` with the lead list's filters: every matching lead, newest first,
/// streamed. A storage failure mid-way aborts the response, so a truncated file is detectable.
#[utoipa::path(
    get, path = "/v1/leads/export.csv", tag = "leads",
    params(LeadExportQuery),
    responses((status = 200, description = "Every matching lead, newest first, with a header row of 22 columns",
               content_type = "text/csv", body = String)),
    security(("bearer" = []))
)]
pub async fn export_leads(
    caller: Caller,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse_for::<LeadExportQuery>(raw.as_deref())?;
    let filter = lead_filter(&q, &caller)?;
    // Recorded before the first row leaves: the file streams, so its length is not known yet.
    let entry = state.ops.audit_entry(&caller.actor(), filter.publisher.as_ref(), AuditAction::LeadExport);
    state.ops.record(entry.text_search(filter.text.is_some())).await?;
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
                let bytes = Bytes::from(render(&p.items, cur.first));
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

/// `POST /v1/leads/import.csv` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ImportQuery {
    /// The publisher to import into; required with the admin token, a publisher token's own by
    /// default.
    publisher: Option<String>,
}

/// What an import did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportOut {
    /// Rows stored as leads.
    imported: usize,
    /// Of those, repeats of an earlier lead (kept, not delivered again).
    duplicates: usize,
    /// Refused rows, in line order.
    failed: Vec<RowFailureOut>,
}

/// A refused row.
#[derive(Debug, Serialize, ToSchema)]
pub struct RowFailureOut {
    /// The line in the file (the header is line 1).
    line: usize,
    /// Each rule the row breaks, by column.
    errors: Vec<FieldErrorOut>,
}

impl From<CsvImport> for ImportOut {
    fn from(r: CsvImport) -> Self {
        Self {
            imported: r.imported,
            duplicates: r.duplicates,
            failed: r
                .failed
                .into_iter()
                .map(|f| RowFailureOut { line: f.line, errors: f.errors.iter().map(FieldErrorOut::from).collect() })
                .collect(),
        }
    }
}

/// Whether a body declared with these headers may be CSV: `text/csv`, `application/csv`,
/// `text/plain`, `application/vnd.ms-excel` (what browsers say for `.csv`), or no type, or
/// what `curl --data-binary` sends (`application/x-www-form-urlencoded`); UTF-8 only.
fn check_csv_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(CONTENT_TYPE) else { return Ok(()) };
    let refuse =
        || ApiError::UnsupportedMediaType("the body must be CSV: send 'Content-Type: text/csv' (UTF-8)".to_owned());
    let value = value.to_str().map_err(|_| refuse())?;
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    if !matches!(
        essence.as_str(),
        "text/csv"
            | "application/csv"
            | "text/plain"
            | "application/vnd.ms-excel"
            | "application/x-www-form-urlencoded"
    ) {
        return Err(refuse());
    }
    if crate::http::extract::declares_utf8(parts) { Ok(()) } else { Err(refuse()) }
}

/// `POST /v1/leads/import.csv?publisher=…` with a CSV body: good rows are stored, bad rows
/// reported by line.
#[utoipa::path(
    post, path = "/v1/leads/import.csv", tag = "leads",
    params(ImportQuery),
    request_body(content = String, content_type = "text/csv",
                 description = "Our export, or an export such as the Referrals workspace's (headers matched loosely); up to 64 MiB and 100,000 rows"),
    responses((status = 200, description = "What was imported and which rows were refused", body = ImportOut)),
    security(("bearer" = []))
)]
pub async fn import_leads(
    caller: Caller,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<ImportOut>, ApiError> {
    let q = Query::parse_for::<ImportQuery>(raw.as_deref())?;
    let publisher = match (q.parsed("publisher", PublisherId::parse)?, &caller) {
        (Some(p), _) => p,
        (None, Caller::Publisher { id, .. } | Caller::User { publisher: id, .. }) => id.clone(),
        (None, _) => return Err(ApiError::field("publisher", "is required (?publisher=…) with this token")),
    };
    caller.check(&publisher, Scope::Ingest, "publisher")?;
    check_csv_content_type(&headers)?;
    Ok(Json(state.ops.import_leads_csv(&caller.actor(), &publisher, &body).await?.into()))
}
