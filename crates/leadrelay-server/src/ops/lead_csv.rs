//! Leads as CSV: the export's format, and the import use case. The import reads our own export
//! and exports such as the marketplace's Referrals workspace's (headers matched loosely),
//! reporting each bad row without stopping; cells are kept exactly as written.

use std::collections::HashMap;

use leadrelay_core::audit::{Actor, AuditAction};
use leadrelay_core::destination::FieldError;
use leadrelay_core::{Customer, Lead, OfferId, PublisherId};

use super::leads::{LeadOrigin, LeadSubmission};
use super::{Ops, OpsError, OpsResult};

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

/// The most rows one import may hold.
pub const MAX_IMPORT_ROWS: usize = 100_000;

/// Rows stored per atomic call; a chunk that breaks a rule is retried row by row.
const CHUNK: usize = 500;

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvImport {
    /// Rows stored as leads.
    pub imported: usize,
    /// Of those, how many repeat an earlier lead (kept, not delivered again).
    pub duplicates: usize,
    /// Rows refused, by line (the header is line 1), in line order.
    pub failed: Vec<RowFailure>,
}

/// A refused row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFailure {
    /// The line in the file.
    pub line: usize,
    /// Each rule the row breaks, by column.
    pub errors: Vec<FieldError>,
}

/// A spreadsheet would run a cell starting with one of these as a formula: such cells get a
/// leading apostrophe (the OWASP advice), which the import strips again.
fn defuse(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{cell}").into() } else { cell.into() }
}

fn undefuse(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => cell,
    }
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
        // As received: a string rebuilt from the resolved parts would read back differently
        // (an offer title shaped like an offer id would become the lead's offer).
        l.raw_lead_source.clone().unwrap_or_else(|| l.lead_source_string()),
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

/// Leads as CSV rows of the export's columns, with the header row first when `header`.
pub fn render(leads: &[Lead], header: bool) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(leads.len() * 300));
    if header {
        let _ = w.write_record(COLUMNS);
    }
    for l in leads {
        let cells = row(l);
        let _ = w.write_record(cells.iter().map(|c| defuse(c).into_owned()));
    }
    w.into_inner().unwrap_or_default()
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
        "istest" => "is_test",
        "piiwithheld" => "pii_withheld",
        _ => return None,
    })
}

/// One row as a submission, or every rule it breaks.
fn submission(
    publisher: &PublisherId,
    mut get: HashMap<&'static str, String>,
) -> Result<LeadSubmission, Vec<FieldError>> {
    let mut errors = Vec::new();
    let offer = match get.remove("offer").as_deref().map(OfferId::parse) {
        Some(Ok(id)) => Some(id),
        Some(Err(rule)) => {
            errors.push(FieldError::new("offer", rule));
            None
        }
        None => None,
    };
    let mut mark = |column: &'static str| match get.remove(column).as_deref().map(str::trim) {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(_) => {
            errors.push(FieldError::new(column, "must be true or false"));
            false
        }
    };
    let (is_test, pii_withheld) = (mark("is_test"), mark("pii_withheld"));
    let lead_source = get.remove("lead_source").or_else(|| get.remove("source"));
    if lead_source.as_deref().is_none_or(|s| s.trim().is_empty()) {
        errors.push(FieldError::new("lead_source", "is required (a lead_source or source column)"));
    }
    if !errors.is_empty() {
        return Err(errors);
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
    Ok(LeadSubmission::new(LeadOrigin::CsvRow, publisher.clone())
        .lead_source(lead_source)
        .offer(offer)
        .offer_title(get.remove("offer_title"))
        .action_code(get.remove("action_code"))
        .customer(customer)
        .description(get.remove("description"))
        .campaign(get.remove("campaign"))
        .exported_marks(is_test, pii_withheld))
}

fn body_error(message: impl Into<String>) -> OpsError {
    OpsError::field("body", message)
}

/// A CSV file read into submissions, before anything is stored.
#[derive(Default)]
pub struct CsvRows {
    /// Each readable row as a submission, with its line.
    pub rows: Vec<(usize, LeadSubmission)>,
    /// Rows refused while reading.
    pub failed: Vec<RowFailure>,
}

/// Reads a CSV file of leads of `publisher` (our export, or the marketplace's): no storage, so
/// a hostile file can be tried (and fuzzed) on its own.
///
/// # Errors
/// `Invalid` (path `body`) for a file that is not CSV with a header row naming lead columns, or
/// holds more than [`MAX_IMPORT_ROWS`] rows.
pub fn read_leads_csv(publisher: &PublisherId, file: &[u8]) -> OpsResult<CsvRows> {
    let file = file.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(file);
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::Headers).from_reader(file);
    let headers = reader.headers().map_err(|e| body_error(format!("is not CSV with a header row ({e})")))?.clone();
    let fields: Vec<Option<&'static str>> = headers.iter().map(field_for).collect();
    if !fields.iter().any(|f| matches!(f, Some("lead_source" | "source" | "email" | "action_code"))) {
        return Err(body_error(
            "the header row names none of the lead columns (expected e.g. lead_source, email, first_name, offer)",
        ));
    }
    let mut read = CsvRows::default();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        if i >= MAX_IMPORT_ROWS {
            return Err(body_error(format!("holds more than {MAX_IMPORT_ROWS} rows; split the file")));
        }
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let errors = vec![FieldError::new("row", format!("is not valid CSV ({e})"))];
                read.failed.push(RowFailure { line, errors });
                continue;
            }
        };
        let mut get = HashMap::new();
        for (field, cell) in fields.iter().zip(record.iter()) {
            if let Some(f) = field {
                let v = undefuse(cell);
                if !v.is_empty() {
                    get.entry(*f).or_insert_with(|| v.to_owned());
                }
            }
        }
        match submission(publisher, get) {
            Ok(s) => read.rows.push((line, s)),
            Err(errors) => read.failed.push(RowFailure { line, errors }),
        }
    }
    Ok(read)
}

impl Ops {
    /// Imports a CSV file of leads into `publisher`: good rows are stored even when others are
    /// refused; each lead is merged and de-duplicated as if it had just arrived.
    ///
    /// # Errors
    /// `NotFound` for an unknown publisher; the errors of [`read_leads_csv`].
    pub async fn import_leads_csv(&self, actor: &Actor, publisher: &PublisherId, file: &[u8]) -> OpsResult<CsvImport> {
        self.require_publisher(publisher).await?;
        let CsvRows { rows, failed } = read_leads_csv(publisher, file)?;
        let mut result = CsvImport { failed, ..CsvImport::default() };
        for chunk in rows.chunks(CHUNK) {
            let submissions = chunk.iter().map(|(_, s)| s.clone()).collect();
            match self.accept_leads(submissions).await {
                Ok(leads) => result.count(&leads),
                Err(OpsError::Invalid(_)) => {
                    // One bad row must not take its neighbours down with it.
                    for (line, s) in chunk {
                        match self.accept_leads(vec![s.clone()]).await {
                            Ok(leads) => result.count(&leads),
                            Err(OpsError::Invalid(errors)) => result.failed.push(RowFailure { line: *line, errors }),
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        result.failed.sort_by_key(|f| f.line);
        let entry = self.audit_entry(actor, Some(publisher), AuditAction::LeadImport);
        self.record(entry.count(result.imported as u64)).await?;
        Ok(result)
    }
}

impl CsvImport {
    fn count(&mut self, leads: &[Lead]) {
        self.imported += leads.len();
        self.duplicates += leads.iter().filter(|l| l.duplicate_of.is_some()).count();
    }
}

#[cfg(test)]
mod tests {
    use leadrelay_core::{LeadId, LeadRules, Timestamp};

    use super::*;

    fn import(publisher: &PublisherId, file: &[u8]) -> Vec<Lead> {
        let now = Timestamp::from_millis(1_700_000_000_000);
        let read = read_leads_csv(publisher, file).unwrap();
        assert!(read.failed.is_empty(), "{:?}", read.failed.iter().map(|f| &f.errors).collect::<Vec<_>>());
        read.rows
            .into_iter()
            .map(|(_, s)| s.into_lead(&[], LeadId::generate(now), now, &LeadRules::default()).unwrap())
            .collect()
    }

    // Found by the csv_import fuzz target: a withheld lead came back from its own export as a
    // lead with personal data allowed (and a test lead as a real one).
    #[test]
    fn an_exported_lead_imports_back_with_its_withheld_and_test_marks() {
        let publisher = PublisherId::parse("contoso").unwrap();
        let file = b"lead_source,email,country,is_test,pii_withheld\n\
            AppSource,student@uni.edu,US,false,false\n\
            AppSource,,US,TRUE,true\n";
        let first = import(&publisher, file);
        assert!(first[0].pii_withheld && !first[0].is_test);
        assert!(first[1].pii_withheld && first[1].is_test);
        let again = import(&publisher, &render(&first, true));
        let marks =
            |ls: &[Lead]| ls.iter().map(|l| (l.pii_withheld, l.is_test, l.customer.clone())).collect::<Vec<_>>();
        assert!(marks(&again) == marks(&first));
    }

    // Found by the csv_import fuzz target: the export rebuilt `lead_source` with the offer
    // title as its offer part, so a title shaped like an offer id became the lead's offer.
    #[test]
    fn a_lead_without_an_offer_exports_and_imports_back_without_one() {
        let publisher = PublisherId::parse("contoso").unwrap();
        let first = import(
            &publisher,
            b"lead_source,offer_title,email
AppSource,contoso.crm,a@b.co
",
        );
        assert_eq!(first[0].offer, None);
        let again = import(&publisher, &render(&first, true));
        assert_eq!(again[0].offer, None);
        assert_eq!(again[0].raw_lead_source.as_deref(), Some("AppSource"));
    }

    #[test]
    fn a_mark_that_is_neither_true_nor_false_is_refused_by_column() {
        let publisher = PublisherId::parse("contoso").unwrap();
        let read = read_leads_csv(&publisher, b"lead_source,is_test\nAppSource,maybe\n").unwrap();
        assert_eq!(read.failed[0].errors[0].path, "is_test");
        assert!(read.rows.is_empty());
    }
}
