//! The `azure_table` destination: the marketplace's Azure Table layout in the publisher's storage
//! account, through our own small Table REST client with SharedKey signing (the public Rust Azure
//! crates are frozen).
//!
//! Each lead is *inserted* (never upserted) with RowKey = lead id: a retry after an unknown
//! outcome gets 409 `EntityAlreadyExists`, which proves the first attempt landed, and readers
//! that filter on the storage `Timestamp` (the marketplace's recommended Power Automate flow)
//! never see a lead twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use leadrelay_core::destination::{
    Connector, Delivered, Destination, DestinationError, DestinationRole, ErrorClass, FieldError, NetworkPolicy,
    PreparedSettings, SendContext, SettingField, SettingInput,
};
use leadrelay_core::{Lead, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::network::{JSON_CAP, Network, check_url};
use crate::settings::{self, KindSettings};

/// The table the marketplace writes to.
pub const DEFAULT_TABLE: &str = "MarketplaceLeads";
/// The Table service version we speak (accepted by Azure and Azurite).
pub const API_VERSION: &str = "2019-02-02";
/// The storage emulator's well-known account and key.
pub const DEV_ACCOUNT: &str = "devstoreaccount1";
/// The storage emulator's well-known key (public, documented by Microsoft).
pub const DEV_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A parsed storage connection string.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionString {
    /// Account name.
    pub account: String,
    /// Decoded account key.
    pub key: Vec<u8>,
    /// The table endpoint, without a trailing slash.
    pub endpoint: String,
}

impl std::fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionString")
            .field("account", &self.account)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl ConnectionString {
    /// Parses `Key=Value;…` (keys case-insensitive, values split on the first `=`, empty
    /// segments ignored), `UseDevelopmentStorage=true`, or the 2017 JSON wrapper
    /// `{"connectionString": "…"}`.
    ///
    /// # Errors
    /// What is missing or wrong, without echoing the key.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let unwrapped;
        let text = if raw.starts_with('{') {
            let v: serde_json::Value = serde_json::from_str(raw)
                .map_err(|_| "is neither a connection string nor {\"connectionString\": …}")?;
            unwrapped =
                v.get("connectionString").and_then(|s| s.as_str()).ok_or("lacks \"connectionString\"")?.to_owned();
            unwrapped.as_str()
        } else {
            raw
        };
        let mut pairs = std::collections::HashMap::new();
        for segment in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = segment.split_once('=').ok_or("must be Key=Value pairs separated by ';'")?;
            pairs.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
        if pairs.get("usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            let endpoint =
                pairs.get("tableendpoint").cloned().unwrap_or_else(|| format!("http://127.0.0.1:10002/{DEV_ACCOUNT}"));
            return Ok(Self {
                account: DEV_ACCOUNT.to_owned(),
                key: STANDARD.decode(DEV_KEY).expect("the well-known key is base64"),
                endpoint: endpoint.trim_end_matches('/').to_owned(),
            });
        }
        let account = pairs.get("accountname").filter(|a| !a.is_empty()).ok_or("lacks AccountName")?.clone();
        let key = pairs.get("accountkey").ok_or("lacks AccountKey (SAS connection strings are not supported yet)")?;
        let key =
            STANDARD.decode(key).map_err(|_| "has an AccountKey that is not base64 (copy it again from the portal)")?;
        let endpoint = match pairs.get("tableendpoint") {
            Some(e) => e.clone(),
            None => {
                let protocol = pairs.get("defaultendpointsprotocol").map_or("https", String::as_str);
                let suffix = pairs.get("endpointsuffix").map_or("core.windows.net", String::as_str);
                format!("{protocol}://{account}.table.{suffix}")
            }
        };
        Ok(Self { account, key, endpoint: endpoint.trim_end_matches('/').to_owned() })
    }

    /// The `Authorization` header value (SharedKey) for a request.
    pub fn authorization(&self, verb: &str, content_type: &str, date: &str, path: &str) -> String {
        let string_to_sign = format!("{verb}\n\n{content_type}\n{date}\n/{}{path}", self.account);
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(string_to_sign.as_bytes());
        format!("SharedKey {}:{}", self.account, STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// Whether a table name is valid: 3-63 letters and digits, starting with a letter.
pub fn is_table_name(s: &str) -> bool {
    (3..=63).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric())
        && !s.eq_ignore_ascii_case("tables")
}

/// The marketplace's date-derived PartitionKey: `M/D/YYYY` of the lead's creation with `/`
/// escaped as `:2F` (`11:2F23:2F2026`).
pub fn partition_key(at: Timestamp) -> String {
    let (y, m, d) = at.date();
    format!("{m}:2F{d}:2F{y}")
}

/// The entity of a lead: the marketplace's columns plus `OfferId`.
pub fn entity(lead: &Lead) -> serde_json::Value {
    let c = &lead.customer;
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    let customer_info = serde_json::json!({
        "FirstName": s(&c.first_name), "LastName": s(&c.last_name), "Email": s(&c.email), "Phone": s(&c.phone),
        "Country": s(&c.country), "Company": s(&c.company), "Title": s(&c.title),
    });
    let created = time::OffsetDateTime::from_unix_timestamp(lead.received_at.as_secs())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    serde_json::json!({
        "PartitionKey": partition_key(lead.received_at),
        "RowKey": lead.id.as_str(),
        "ActionCode": lead.action.as_ref().map_or("", |a| a.as_str()),
        "CreatedTime": created,
        "CustomerInfo": customer_info.to_string(),
        "Description": s(&lead.description),
        "LeadSource": lead.source.as_str(),
        "OfferDisplayName": s(&lead.offer_title),
        "OfferId": lead.offer.as_ref().map_or("", |o| o.as_str()),
    })
}

/// The settings of an `azure_table` destination, as the API takes them and as they are stored.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AzureTableSettings {
    /// The storage account's connection string (a secret: it holds the account key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_string: Option<String>,
    /// The table; the marketplace's `MarketplaceLeads` by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
}

impl KindSettings for AzureTableSettings {
    const SHAPE: &'static str = "must be an object with 'connection_string' and optionally 'table'";

    fn type_rule(field: &str) -> std::borrow::Cow<'static, str> {
        match field {
            "table" => "must be 3-63 letters and digits starting with a letter".into(),
            _ => "must be a string".into(),
        }
    }
}

/// Checked `azure_table` settings.
struct AzureTableConfig {
    raw: String,
    cs: ConnectionString,
    table: String,
}

impl AzureTableSettings {
    fn check(self, mut problems: settings::Problems, allow_private: bool) -> Result<AzureTableConfig, Vec<FieldError>> {
        let cs = match self.connection_string.as_deref().map(ConnectionString::parse) {
            None => {
                problems.add("connection_string", "is required (the storage account's connection string)");
                None
            }
            Some(Err(rule)) => {
                problems.add("connection_string", rule);
                None
            }
            Some(Ok(cs)) => match check_url(&cs.endpoint, allow_private) {
                Ok(_) => Some(cs),
                Err(rule) => {
                    problems.add("connection_string", format!("table endpoint {rule}"));
                    None
                }
            },
        };
        let table = self.table.unwrap_or_else(|| DEFAULT_TABLE.to_owned());
        if !is_table_name(&table) {
            problems.add("table", "must be 3-63 letters and digits starting with a letter");
        }
        problems.finish(|| AzureTableConfig {
            raw: self.connection_string.expect("checked"),
            cs: cs.expect("checked"),
            table,
        })
    }
}

impl AzureTableConfig {
    fn to_settings(&self) -> AzureTableSettings {
        AzureTableSettings { connection_string: Some(self.raw.clone()), table: Some(self.table.clone()) }
    }
}

/// The `azure_table` connector.
pub struct AzureTableConnector {
    net: Network,
}

impl AzureTableConnector {
    /// A connector on the shared network.
    pub fn new(net: Network) -> Self {
        Self { net }
    }

    fn parse(&self, settings: &serde_json::Value, allow_private: bool) -> Result<AzureTableConfig, Vec<FieldError>> {
        let (parsed, problems) = settings::parse::<AzureTableSettings>(self.kind(), settings)?;
        parsed.check(problems, allow_private)
    }
}

const FORM: &[SettingField] = &[
    SettingField::new("connection_string", "Connection string", SettingInput::Secret)
        .required()
        .help("The storage account's connection string (Azure portal: Access keys)."),
    SettingField::new("table", "Table", SettingInput::Text)
        .help("3-63 letters and digits starting with a letter; MarketplaceLeads by default."),
];

impl Connector for AzureTableConnector {
    fn kind(&self) -> &'static str {
        "azure_table"
    }

    fn role(&self) -> DestinationRole {
        DestinationRole::StoresLeads
    }

    fn settings_form(&self) -> &'static [SettingField] {
        FORM
    }

    fn prepare(&self, settings: serde_json::Value, policy: NetworkPolicy) -> Result<PreparedSettings, Vec<FieldError>> {
        let config = self.parse(&settings, self.net.allows_private(policy))?;
        Ok(PreparedSettings { stored: settings::to_stored(&config.to_settings()), generated_secret: None })
    }

    fn build(&self, settings: &serde_json::Value) -> Result<Arc<dyn Destination>, DestinationError> {
        let config = self.parse(settings, self.net.allow_private()).map_err(settings::stored_error)?;
        Ok(Arc::new(AzureTableDestination {
            net: self.net.clone(),
            cs: config.cs,
            table: config.table,
            table_ready: AtomicBool::new(false),
        }))
    }
}

/// One configured table.
pub struct AzureTableDestination {
    net: Network,
    cs: ConnectionString,
    table: String,
    table_ready: AtomicBool,
}

/// A Table service answer: status, error code (JSON `odata.error` or XML `<Code>`), excerpt.
struct Answer {
    status: u16,
    code: Option<String>,
    excerpt: Option<String>,
}

impl AzureTableDestination {
    /// Sends one signed request; `path` starts after the endpoint (e.g. `/Tables`).
    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        now: Timestamp,
    ) -> Result<Answer, DestinationError> {
        let url = format!("{}{path}", self.cs.endpoint);
        let signed_path = url::Url::parse(&url)
            .map_err(|_| DestinationError::permanent("the table endpoint is not a URL"))?
            .path()
            .to_owned();
        let date =
            httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(u64::try_from(now.as_millis()).unwrap_or(0)));
        let content_type = if body.is_some() { "application/json" } else { "" };
        let mut req = self
            .net
            .request(method.clone(), &url)
            .header("x-ms-date", &date)
            .header("x-ms-version", API_VERSION)
            .header("accept", "application/json;odata=nometadata")
            .header("dataserviceversion", "3.0;NetFx")
            .header("maxdataserviceversion", "3.0;NetFx")
            .header("authorization", self.cs.authorization(method.as_str(), content_type, &date, &signed_path));
        if let Some(b) = body {
            req = req.header("content-type", content_type).header("prefer", "return-no-content").body(b);
        }
        // Error bodies are small JSON or XML documents; the code is read from the whole of one.
        let answer = self.net.send(req, JSON_CAP).await?;
        let code = if answer.truncated { None } else { error_code(&answer.body) };
        Ok(Answer { status: answer.status, code, excerpt: answer.excerpt(self.net.options().excerpt_bytes) })
    }

    async fn create_table(&self, now: Timestamp) -> Result<(), DestinationError> {
        let body = serde_json::json!({ "TableName": self.table }).to_string().into_bytes();
        let a = self.request(reqwest::Method::POST, "/Tables", Some(body), now).await?;
        if (200..300).contains(&a.status) || a.code.as_deref() == Some("TableAlreadyExists") {
            self.table_ready.store(true, Ordering::Relaxed);
            return Ok(());
        }
        Err(classify(a))
    }
}

/// The error code of a Table service error body, JSON or XML.
fn error_code(body: &[u8]) -> Option<String> {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        return v.pointer("/odata.error/code").and_then(|c| c.as_str()).map(str::to_owned);
    }
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let end = text[start..].find("</Code>")? + start;
    Some(text[start..end].to_owned())
}

fn classify(a: Answer) -> DestinationError {
    let code = a.code.clone().unwrap_or_default();
    let (class, hint) = match (a.status, code.as_str()) {
        (403, _) => (
            ErrorClass::Permanent,
            "the storage account refused the signature: the AccountKey is wrong or was rotated; paste the current connection string",
        ),
        (400, "InvalidHeaderValue") => (ErrorClass::Permanent, "the storage service does not accept our API version"),
        (400, _) => (ErrorClass::Permanent, "the storage service refused this lead's data"),
        (404, _) => (ErrorClass::Permanent, "the table or account was not found: check the account name and endpoint"),
        (408 | 429 | 500..=599, _) => {
            (ErrorClass::Transient, "the storage service is busy or unavailable; leads will be retried")
        }
        _ => (ErrorClass::Permanent, "the storage service refused the request"),
    };
    DestinationError {
        class,
        status: Some(a.status),
        message: if code.is_empty() {
            format!("Table service answered {}", a.status)
        } else {
            format!("Table service answered {} {code}", a.status)
        },
        retry_after: None,
        excerpt: a.excerpt,
        hint: Some(hint.to_owned()),
    }
}

#[async_trait::async_trait]
impl Destination for AzureTableDestination {
    async fn send(&self, lead: &Lead, ctx: SendContext) -> Result<Delivered, DestinationError> {
        if !self.table_ready.load(Ordering::Relaxed) {
            self.create_table(ctx.now).await?;
        }
        let body = entity(lead).to_string().into_bytes();
        let path = format!("/{}", self.table);
        let mut a = self.request(reqwest::Method::POST, &path, Some(body.clone()), ctx.now).await?;
        if a.status == 404 && a.code.as_deref() == Some("TableNotFound") {
            // Someone deleted the table since we created it: create it again, try once more.
            self.create_table(ctx.now).await?;
            a = self.request(reqwest::Method::POST, &path, Some(body), ctx.now).await?;
        }
        match (a.status, a.code.as_deref()) {
            (200..=299, _) => Ok(Delivered { status: Some(a.status), excerpt: a.excerpt, note: None }),
            (409, Some("EntityAlreadyExists")) => Ok(Delivered {
                status: Some(409),
                excerpt: a.excerpt,
                note: Some("the entity was already there: an earlier attempt had landed".to_owned()),
            }),
            _ => Err(classify(a)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &str = "Mon, 23 Nov 2026 12:00:00 GMT";

    fn emulator() -> ConnectionString {
        ConnectionString::parse("UseDevelopmentStorage=true").unwrap()
    }

    #[test]
    fn the_published_shared_key_test_vectors_are_reproduced() {
        let cs = emulator();
        let sig = |verb, ct, path| cs.authorization(verb, ct, DATE, path);
        assert_eq!(
            sig("POST", "application/json", "/devstoreaccount1/Tables"),
            "SharedKey devstoreaccount1:orU5kwZF9nhci16pru+pcTgrCQb4+zZN2mSZ9RvJrj8="
        );
        assert_eq!(
            sig("POST", "application/json", "/devstoreaccount1/MarketplaceLeads"),
            "SharedKey devstoreaccount1:AgRjnNq7E89fr7C/C6ibxMbuxdaQhkIg3ZzbWec6CCo="
        );
        assert_eq!(
            sig(
                "PUT",
                "application/json",
                "/devstoreaccount1/MarketplaceLeads(PartitionKey='11:2F23:2F2026',RowKey='0b7c6f1e-5d0a-4a57-9a4e-2f1c3b8d9e10')"
            ),
            "SharedKey devstoreaccount1:OUKxrBehGMSfbhtYSkDvv9e7ewqoZXtT8NoB9FBnLrk="
        );
        assert_eq!(
            sig("GET", "", "/devstoreaccount1/MarketplaceLeads()"),
            "SharedKey devstoreaccount1:rTjUPswYqCiTWX4AOfhMR0hvQEUh+txiKCncJ+WokJY="
        );
    }

    #[test]
    fn connection_strings_resolve_their_endpoint() {
        let cs = ConnectionString::parse(&format!(
            "DefaultEndpointsProtocol=https;AccountName=leadaccount;AccountKey={DEV_KEY};EndpointSuffix=core.chinacloudapi.cn;"
        ))
        .unwrap();
        assert_eq!(cs.endpoint, "https://leadaccount.table.core.chinacloudapi.cn");
        let cs = ConnectionString::parse(&format!("accountname=a1;accountkey={DEV_KEY}")).unwrap();
        assert_eq!(cs.endpoint, "https://a1.table.core.windows.net");
        let explicit = format!(
            "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};TableEndpoint=http://127.0.0.1:10002/{DEV_ACCOUNT}/;"
        );
        assert_eq!(ConnectionString::parse(&explicit).unwrap(), emulator());
        let wrapped = format!("{{\"connectionString\":\"AccountName=leadaccount;AccountKey={DEV_KEY}\"}}");
        assert_eq!(ConnectionString::parse(&wrapped).unwrap().account, "leadaccount");
        assert!(ConnectionString::parse("AccountName=x").unwrap_err().contains("AccountKey"));
        assert!(ConnectionString::parse("AccountName=x;AccountKey=***").unwrap_err().contains("base64"));
        assert!(!format!("{:?}", emulator()).contains("Eby8"));
    }

    #[test]
    fn the_partition_key_is_the_escaped_us_date() {
        assert_eq!(partition_key(Timestamp::parse_rfc3339("2018-09-28T10:00:00Z").unwrap()), "9:2F28:2F2018");
        assert_eq!(partition_key(Timestamp::parse_rfc3339("2026-11-23").unwrap()), "11:2F23:2F2026");
    }

    #[test]
    fn error_codes_are_read_from_json_and_xml() {
        assert_eq!(
            error_code(br#"{"odata.error":{"code":"EntityAlreadyExists","message":{"value":"x"}}}"#).as_deref(),
            Some("EntityAlreadyExists")
        );
        assert_eq!(
            error_code(b"<?xml?><Error><Code>AuthorizationFailure</Code></Error>").as_deref(),
            Some("AuthorizationFailure")
        );
        assert!(is_table_name("MarketplaceLeads") && !is_table_name("1leads") && !is_table_name("Tables"));
    }
}
