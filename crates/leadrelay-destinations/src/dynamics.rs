//! The `dynamics365` destination: a lead record in Dynamics 365 Sales through the Dataverse Web
//! API, authenticated as an application user with the OAuth client-credentials grant. The token
//! is cached until five minutes before it expires and refreshed once when Dataverse answers 401.
//! Identity-platform error codes (`AADSTS…`) are translated into what the publisher must fix.

use std::sync::Arc;
use std::time::Duration;

use leadrelay_core::destination::{
    Connector, Delivered, Destination, DestinationError, DestinationRole, ErrorClass, FieldError, NetworkPolicy,
    PreparedSettings, SendContext, SettingField, SettingInput,
};
use leadrelay_core::{Lead, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::network::{Answer, JSON_CAP, Network, check_url};
use crate::settings::{self, KindSettings};

/// Refresh a cached token this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(300);

/// The Dataverse attributes of a lead, truncated to their documented lengths. `subject` and
/// `lastname` are required by Dynamics forms, so blanks get a placeholder.
pub fn lead_record(lead: &Lead, lead_source_code: u32) -> serde_json::Value {
    let c = &lead.customer;
    let cut = |v: Option<&str>, max: usize| v.unwrap_or("").chars().take(max).collect::<String>();
    let or_placeholder = |s: String| if s.trim().is_empty() { "[not provided]".to_owned() } else { s };
    let marker = lead.description.as_deref().filter(|d| lead.is_test && leadrelay_core::test_lead::is_marked(d));
    let subject = match marker {
        Some(m) => m.to_owned(),
        None => format!(
            "{} - {} - {}",
            lead.source,
            lead.action.as_ref().map_or("lead", |a| a.as_str()),
            lead.offer_title.as_deref().or(lead.offer.as_ref().map(|o| o.as_str())).unwrap_or("unknown offer")
        ),
    };
    let description = match (&lead.description, marker) {
        (_, Some(m)) => m.to_owned(),
        (Some(d), None) => format!("LeadSource: {}\n{d}", lead.lead_source_string()),
        (None, None) => format!("LeadSource: {}", lead.lead_source_string()),
    };
    serde_json::json!({
        "subject": or_placeholder(cut(Some(&subject), 300)),
        "firstname": cut(c.first_name.as_deref(), 50),
        "lastname": or_placeholder(cut(c.last_name.as_deref(), 50)),
        "emailaddress1": cut(c.email.as_deref(), 100),
        "telephone1": cut(c.phone.as_deref(), 50),
        "companyname": cut(c.company.as_deref(), 100),
        "jobtitle": cut(c.title.as_deref(), 100),
        "address1_country": cut(c.country.as_deref(), 80),
        "description": cut(Some(&description), 2000),
        "leadsourcecode": lead_source_code,
    })
}

/// What to fix for an identity-platform error, by its `AADSTS` code.
pub fn token_hint(codes: &[u64], error: &str) -> &'static str {
    match codes.first() {
        Some(7_000_215) => {
            "the client secret is wrong: create a new one for the app registration and paste its value (not its id)"
        }
        Some(7_000_222) => "the client secret has expired: create a new one for the app registration",
        Some(700_016) => {
            "no application with this client id exists in the tenant: check the Application (client) ID and the Directory (tenant) ID"
        }
        Some(90_002) => {
            "the tenant was not found: check the Directory (tenant) ID (it may have no active subscription)"
        }
        Some(900_023) => "the tenant id is not a GUID or a verified domain: copy the Directory (tenant) ID again",
        _ if error == "invalid_scope" => "the Dynamics URL is not a Dynamics instance the app may use: check the url",
        _ => "the identity platform refused the app's credentials: check tenant_id, client_id and client_secret",
    }
}

/// The settings of a `dynamics365` destination, as the API takes them and as they are stored.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DynamicsSettings {
    /// The instance URL, e.g. `https://contoso.crm4.dynamics.com`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The Directory (tenant) ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// The Application (client) ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The client secret's value (a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// The token endpoint; the tenant's on the Microsoft identity platform by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// The `leadsourcecode` choice value (8 is Web).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead_source_code: Option<u32>,
}

impl KindSettings for DynamicsSettings {
    const SHAPE: &'static str = "must be an object with url, tenant_id, client_id and client_secret";

    fn type_rule(field: &str) -> std::borrow::Cow<'static, str> {
        match field {
            "lead_source_code" => "must be a lead source choice value (8 is Web)".into(),
            _ => "must be a string".into(),
        }
    }
}

/// Checked `dynamics365` settings.
struct DynamicsConfig {
    url: String,
    tenant_id: String,
    client_id: String,
    client_secret: String,
    token_url: String,
    lead_source_code: u32,
}

/// A text setting, trimmed; blank counts as absent.
fn text(v: Option<&String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

impl DynamicsSettings {
    fn check(self, mut problems: settings::Problems, allow_private: bool) -> Result<DynamicsConfig, Vec<FieldError>> {
        let url = match text(self.url.as_ref()).map(|u| check_url(&u, allow_private)) {
            Some(Ok(u)) => Some(u.as_str().trim_end_matches('/').to_owned()),
            Some(Err(rule)) => {
                problems.add("url", rule);
                None
            }
            None => {
                problems.add("url", "is required: the instance URL, e.g. https://contoso.crm4.dynamics.com");
                None
            }
        };
        let mut required = |key: &str, value: Option<&String>, what: &str| {
            let v = text(value);
            if v.is_none() {
                problems.add(key, format!("is required ({what})"));
            }
            v
        };
        let tenant_id = required("tenant_id", self.tenant_id.as_ref(), "the Directory (tenant) ID");
        let client_id = required("client_id", self.client_id.as_ref(), "the Application (client) ID");
        let client_secret = required("client_secret", self.client_secret.as_ref(), "the client secret's value");
        let token_url = match text(self.token_url.as_ref()) {
            Some(t) => match check_url(&t, allow_private) {
                Ok(u) => Some(u.to_string()),
                Err(rule) => {
                    problems.add("token_url", rule);
                    None
                }
            },
            None => tenant_id.as_ref().map(|t| format!("https://login.microsoftonline.com/{t}/oauth2/v2.0/token")),
        };
        problems.finish(|| DynamicsConfig {
            url: url.expect("checked"),
            tenant_id: tenant_id.expect("checked"),
            client_id: client_id.expect("checked"),
            client_secret: client_secret.expect("checked"),
            token_url: token_url.expect("checked"),
            lead_source_code: self.lead_source_code.unwrap_or(8),
        })
    }
}

impl DynamicsConfig {
    fn to_settings(&self) -> DynamicsSettings {
        DynamicsSettings {
            url: Some(self.url.clone()),
            tenant_id: Some(self.tenant_id.clone()),
            client_id: Some(self.client_id.clone()),
            client_secret: Some(self.client_secret.clone()),
            token_url: Some(self.token_url.clone()),
            lead_source_code: Some(self.lead_source_code),
        }
    }
}

/// The `dynamics365` connector.
pub struct DynamicsConnector {
    net: Network,
}

impl DynamicsConnector {
    /// A connector on the shared network.
    pub fn new(net: Network) -> Self {
        Self { net }
    }

    fn parse(&self, settings: &serde_json::Value, allow_private: bool) -> Result<DynamicsConfig, Vec<FieldError>> {
        let (parsed, problems) = settings::parse::<DynamicsSettings>(self.kind(), settings)?;
        parsed.check(problems, allow_private)
    }
}

const FORM: &[SettingField] = &[
    SettingField::new("url", "Instance URL", SettingInput::Url)
        .required()
        .help("Your environment, e.g. https://contoso.crm4.dynamics.com."),
    SettingField::new("tenant_id", "Directory (tenant) ID", SettingInput::Text).required(),
    SettingField::new("client_id", "Application (client) ID", SettingInput::Text).required(),
    SettingField::new("client_secret", "Client secret", SettingInput::Secret)
        .required()
        .help("The secret's value (not its id) from the app registration."),
    SettingField::new("token_url", "Token URL", SettingInput::Url)
        .help("The tenant's Microsoft identity platform endpoint by default."),
    SettingField::new("lead_source_code", "Lead source choice value", SettingInput::Number)
        .help("The leadsourcecode option to set; 8 is Web."),
];

impl Connector for DynamicsConnector {
    fn kind(&self) -> &'static str {
        "dynamics365"
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
        Ok(Arc::new(DynamicsDestination {
            net: self.net.clone(),
            url: config.url,
            token_url: config.token_url,
            client_id: config.client_id,
            client_secret: config.client_secret,
            lead_source_code: config.lead_source_code,
            token: Mutex::new(None),
        }))
    }
}

/// One Dynamics instance.
pub struct DynamicsDestination {
    net: Network,
    url: String,
    token_url: String,
    client_id: String,
    client_secret: String,
    lead_source_code: u32,
    token: Mutex<Option<(String, Timestamp)>>,
}

impl DynamicsDestination {
    /// A valid access token: the cached one, or a new one.
    async fn token(&self, now: Timestamp, force: bool) -> Result<String, DestinationError> {
        let mut cached = self.token.lock().await;
        if !force
            && let Some((t, expires)) = cached.as_ref()
            && now < expires.minus(TOKEN_MARGIN)
        {
            return Ok(t.clone());
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.as_str()),
            ("scope", &format!("{}/.default", self.url)),
        ];
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let request =
            self.net.post(&self.token_url).header("content-type", "application/x-www-form-urlencoded").body(body);
        let answer = self.net.send(request, JSON_CAP).await?;
        let (status, json) = (answer.status, answer.json());
        if (200..300).contains(&status)
            && let Some(t) = json.get("access_token").and_then(|t| t.as_str())
        {
            let lifetime = Duration::from_secs(json.get("expires_in").and_then(|e| e.as_u64()).unwrap_or(3599));
            *cached = Some((t.to_owned(), now.plus(lifetime)));
            return Ok(t.to_owned());
        }
        if (200..300).contains(&status) {
            let what = if answer.truncated { "an answer too large to be a token" } else { "no access token" };
            return Err(DestinationError {
                status: Some(status),
                ..DestinationError::permanent(format!("the token endpoint answered {status} with {what}")).with_hint(
                    "token_url is not an OAuth token endpoint: leave it out to use the tenant's Microsoft identity platform endpoint",
                )
            });
        }
        // The `error` field is the receiver's text: only an OAuth error code (`invalid_client`)
        // is repeated in our message, which reaches the attempt log, Validate and notices.
        let error = json
            .get("error")
            .and_then(|e| e.as_str())
            .filter(|e| !e.is_empty() && e.len() <= 40 && e.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
            .unwrap_or("")
            .to_owned();
        let codes: Vec<u64> = json
            .get("error_codes")
            .and_then(|c| c.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
            .unwrap_or_default();
        let class = if status >= 500 || status == 429 { ErrorClass::Transient } else { ErrorClass::Permanent };
        let code = codes.first().map_or(String::new(), |c| format!(" AADSTS{c}"));
        Err(DestinationError {
            class,
            status: Some(status),
            message: format!("the identity platform refused the token request ({status} {error}{code})"),
            retry_after: None,
            excerpt: None,
            hint: Some(
                if class == ErrorClass::Transient {
                    "the identity platform is unavailable; leads will be retried"
                } else {
                    token_hint(&codes, &error)
                }
                .to_owned(),
            ),
        })
    }

    async fn create(&self, token: &str, record: &serde_json::Value) -> Result<Answer, DestinationError> {
        let request = self
            .net
            .post(format!("{}/api/data/v9.2/leads", self.url))
            .bearer_auth(token)
            .header("content-type", "application/json; charset=utf-8")
            .header("accept", "application/json")
            .header("odata-maxversion", "4.0")
            .header("odata-version", "4.0")
            .header("prefer", "return=representation")
            .body(record.to_string());
        self.net.send(request, JSON_CAP).await
    }
}

#[async_trait::async_trait]
impl Destination for DynamicsDestination {
    async fn send(&self, lead: &Lead, ctx: SendContext) -> Result<Delivered, DestinationError> {
        let record = lead_record(lead, self.lead_source_code);
        let mut answer = self.create(&self.token(ctx.now, false).await?, &record).await?;
        if answer.status == 401 {
            // The cached token was revoked or expired early: one fresh token, one more try.
            answer = self.create(&self.token(ctx.now, true).await?, &record).await?;
        }
        classify(answer.status, &answer.json(), answer.retry_after(), answer.excerpt(self.net.options().excerpt_bytes))
    }
}

/// Dataverse answers, classified by status and error code.
pub fn classify(
    status: u16,
    json: &serde_json::Value,
    retry_after: Option<Duration>,
    excerpt: Option<String>,
) -> Result<Delivered, DestinationError> {
    let code = json.pointer("/error/code").and_then(|c| c.as_str()).unwrap_or("").to_ascii_lowercase();
    if (200..300).contains(&status) {
        let id = json.get("leadid").and_then(|v| v.as_str()).map(|id| format!("leadid {id}"));
        return Ok(Delivered { status: Some(status), excerpt: id.or(excerpt), note: None });
    }
    if code == "0x80040333" || code == "0x80060892" {
        return Ok(Delivered {
            status: Some(status),
            excerpt,
            note: Some("Dynamics reports the lead as a duplicate of an existing record".to_owned()),
        });
    }
    let throttle_codes = ["0x80072322", "0x80072321", "0x80072326"];
    let (class, hint) = match status {
        429 => (
            ErrorClass::Throttled,
            "Dynamics service-protection limits were hit; leads wait for the Retry-After it gave",
        ),
        _ if throttle_codes.contains(&code.as_str()) => {
            (ErrorClass::Throttled, "Dynamics service-protection limits were hit; leads wait and retry")
        }
        401 => (
            ErrorClass::Permanent,
            "Dynamics refused a fresh token: check that an application user exists for this client id in the environment",
        ),
        403 => (
            ErrorClass::Permanent,
            "the application user lacks privileges: give it the \"Microsoft Marketplace Lead Writer\" role (or one that can create leads)",
        ),
        404 => (ErrorClass::Permanent, "the URL is not a Dynamics instance (no /api/data/v9.2/leads): check the url"),
        400 => (
            ErrorClass::Permanent,
            "Dynamics refused the lead's data or an attribute; check the lead and the lead entity's customizations",
        ),
        500..=599 => (ErrorClass::Transient, "Dynamics is unavailable; leads will be retried"),
        _ => (ErrorClass::Permanent, "Dynamics refused the request"),
    };
    let with_code = if code.is_empty() { String::new() } else { format!(" {code}") };
    let class = if class == ErrorClass::Throttled && retry_after.is_none() { ErrorClass::Transient } else { class };
    Err(DestinationError {
        class,
        status: Some(status),
        message: format!("Dynamics answered {status}{with_code}"),
        retry_after,
        excerpt,
        hint: Some(hint.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadrelay_core::{Customer, LeadDraft, LeadId, LeadRules, PublisherId};

    #[test]
    fn the_record_truncates_to_dataverse_lengths_and_fills_required_attributes() {
        let draft = LeadDraft {
            publisher: Some(PublisherId::parse("contoso").unwrap()),
            lead_source: Some("AzureMarketplace-INS|contoso.crm".into()),
            offer_title: Some("Contoso CRM".into()),
            customer: Customer {
                first_name: Some("x".repeat(60)),
                email: Some("a@b.com".into()),
                ..Customer::default()
            },
            ..LeadDraft::default()
        };
        let lead = Lead::from_draft(
            draft,
            LeadId::generate(Timestamp::from_millis(1)),
            Timestamp::from_millis(1),
            &LeadRules::default(),
        )
        .unwrap();
        let r = lead_record(&lead, 8);
        assert_eq!(r["firstname"].as_str().unwrap().len(), 50);
        assert_eq!(r["lastname"], "[not provided]");
        assert_eq!(r["subject"], "AzureMarketplace - INS - Contoso CRM");
        assert_eq!(
            r["description"], "LeadSource: AzureMarketplace-INS|Contoso CRM",
            "an unresolved offer goes by its title"
        );
        assert_eq!(r["leadsourcecode"], 8);
    }

    #[test]
    fn the_documented_errors_are_classified() {
        let err = |s, code: &str, ra| classify(s, &serde_json::json!({"error": {"code": code}}), ra, None);
        assert!(err(500, "0x80040333", None).is_ok(), "a duplicate counts as delivered");
        assert_eq!(err(429, "0x80072322", Some(Duration::from_secs(5))).unwrap_err().class, ErrorClass::Throttled);
        assert_eq!(err(403, "0x80040220", None).unwrap_err().class, ErrorClass::Permanent);
        assert_eq!(err(503, "", None).unwrap_err().class, ErrorClass::Transient);
        assert!(token_hint(&[7_000_215], "invalid_client").contains("secret"));
        assert!(token_hint(&[90_002], "invalid_request").contains("tenant"));
    }
}
