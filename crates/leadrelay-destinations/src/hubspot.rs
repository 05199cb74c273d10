//! The `hubspot` destination: a contact in the publisher's HubSpot portal, created or updated by
//! email with one call of the CRM v3 batch upsert (`idProperty: "email"`), so a retry, a replay
//! or a second lead of the same customer updates the contact instead of duplicating it. The
//! private app's access token is the only credential; it goes in the `Authorization` header and
//! nowhere else. HubSpot's answers (401 token, 403 scope, 400 property or value, 409, 429 and
//! 5xx) become retries, waits and dead letters with what to fix.

use std::sync::Arc;
use std::time::Duration;

use leadrelay_core::Lead;
use leadrelay_core::destination::{
    Connector, Delivered, Destination, DestinationError, DestinationRole, ErrorClass, FieldError, NetworkPolicy,
    PreparedSettings, SendContext, SettingField, SettingInput,
};
use serde::{Deserialize, Serialize};

use crate::network::{Answer, JSON_CAP, Network, check_url};
use crate::settings::{self, KindSettings};

/// Where HubSpot's public API lives.
pub const DEFAULT_BASE_URL: &str = "https://api.hubapi.com";
/// The batch upsert of contacts, under the base URL.
pub const UPSERT_PATH: &str = "/crm/v3/objects/contacts/batch/upsert";
/// The scope the private app needs to write contacts.
pub const WRITE_SCOPE: &str = "crm.objects.contacts.write";
/// The wait after a 429 without `Retry-After` for the per-10-second limits (HubSpot's advice).
pub const RATE_LIMIT_WAIT: Duration = Duration::from_secs(10);
/// The wait after a 429 for the daily limit without `Retry-After`: it resets at midnight in the
/// portal's time zone, which we do not know, so one lead probes each hour.
pub const DAILY_LIMIT_WAIT: Duration = Duration::from_secs(3600);

/// The contact properties leadrelay writes; `lead_source_property` must not be one of them.
pub const MAPPED_PROPERTIES: [&str; 7] = ["email", "firstname", "lastname", "phone", "company", "jobtitle", "country"];

const MAX_TOKEN_LEN: usize = 512;
const MAX_PROPERTY_LEN: usize = 100;

/// The settings of a `hubspot` destination, as the API takes them and as they are stored.
#[derive(Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HubspotSettings {
    /// The private app's access token (a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// The API's base URL; [`DEFAULT_BASE_URL`] by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// A custom contact property that receives the `LeadSource` string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead_source_property: Option<String>,
}

impl std::fmt::Debug for HubspotSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubspotSettings")
            .field("access_token", &self.access_token.as_ref().map(|_| "<redacted>"))
            .field("base_url", &self.base_url)
            .field("lead_source_property", &self.lead_source_property)
            .finish()
    }
}

impl KindSettings for HubspotSettings {
    const SHAPE: &'static str = "must be an object with access_token (and optionally base_url, lead_source_property)";
}

/// Checked `hubspot` settings.
struct HubspotConfig {
    access_token: String,
    base_url: String,
    lead_source_property: Option<String>,
}

/// A text setting, trimmed; blank counts as absent.
fn text(v: Option<&String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

impl HubspotSettings {
    fn check(self, mut problems: settings::Problems, allow_private: bool) -> Result<HubspotConfig, Vec<FieldError>> {
        let access_token = text(self.access_token.as_ref());
        match &access_token {
            None => problems.add(
                "access_token",
                "is required: the private app's access token (HubSpot: Settings > Integrations > Private Apps > \
                 the app > Auth)",
            ),
            Some(t) if t.len() > MAX_TOKEN_LEN || !t.bytes().all(|b| b.is_ascii_graphic()) => problems.add(
                "access_token",
                format!(
                    "must be the access token as HubSpot shows it (at most {MAX_TOKEN_LEN} printable characters, \
                     no spaces), e.g. pat-na1-…"
                ),
            ),
            Some(_) => {}
        }
        let base_url = match text(self.base_url.as_ref()) {
            None => Some(DEFAULT_BASE_URL.to_owned()),
            Some(raw) => match check_url(&raw, allow_private) {
                Ok(u) if u.query().is_some() || u.fragment().is_some() => {
                    problems.add("base_url", "must not have a query or fragment");
                    None
                }
                Ok(u) => Some(u.as_str().trim_end_matches('/').to_owned()),
                Err(rule) => {
                    problems.add("base_url", rule);
                    None
                }
            },
        };
        let lead_source_property = text(self.lead_source_property.as_ref());
        if let Some(rule) = lead_source_property.as_deref().and_then(property_name_rule) {
            problems.add("lead_source_property", rule);
        }
        problems.finish(|| HubspotConfig {
            access_token: access_token.expect("checked"),
            base_url: base_url.expect("checked"),
            lead_source_property,
        })
    }
}

impl HubspotConfig {
    fn to_settings(&self) -> HubspotSettings {
        HubspotSettings {
            access_token: Some(self.access_token.clone()),
            base_url: Some(self.base_url.clone()),
            lead_source_property: self.lead_source_property.clone(),
        }
    }
}

/// Why `name` cannot be a HubSpot property's internal name, if it cannot.
fn property_name_rule(name: &str) -> Option<String> {
    let shaped = name.len() <= MAX_PROPERTY_LEN
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !shaped {
        return Some(format!(
            "must be the property's internal name (letters, digits and underscores, starting with a letter, at most \
             {MAX_PROPERTY_LEN}), e.g. marketplace_lead_source; not its label"
        ));
    }
    if MAPPED_PROPERTIES.contains(&name.to_ascii_lowercase().as_str()) {
        return Some(format!(
            "must be a property of its own: {name} already receives the lead's {name}; create a custom contact \
             property for the lead source"
        ));
    }
    None
}

/// The contact properties of a lead: the marketplace's customer fields under HubSpot's default
/// property names, exactly as received, and the `LeadSource` string under `lead_source_property`.
/// Absent fields are left out, so an update never clears what the contact already has.
pub fn contact_properties(
    lead: &Lead,
    lead_source_property: Option<&str>,
) -> serde_json::Map<String, serde_json::Value> {
    let c = &lead.customer;
    let mut properties = serde_json::Map::new();
    for (name, value) in [
        ("email", c.email.as_deref()),
        ("firstname", c.first_name.as_deref()),
        ("lastname", c.last_name.as_deref()),
        ("phone", c.phone.as_deref()),
        ("company", c.company.as_deref()),
        ("jobtitle", c.title.as_deref()),
        ("country", c.country.as_deref()),
    ] {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            properties.insert(name.to_owned(), serde_json::Value::String(v.to_owned()));
        }
    }
    if let Some(p) = lead_source_property {
        properties.insert(p.to_owned(), serde_json::Value::String(lead.lead_source_string()));
    }
    properties
}

/// The batch-upsert body for one lead, keyed by its email; `None` when it has no email (HubSpot
/// cannot upsert by email without one).
pub fn upsert_body(lead: &Lead, lead_source_property: Option<&str>) -> Option<serde_json::Value> {
    let email = lead.customer.email.as_deref().filter(|e| !e.is_empty())?;
    Some(serde_json::json!({
        "inputs": [{
            "idProperty": "email",
            "id": email,
            "properties": contact_properties(lead, lead_source_property),
        }]
    }))
}

/// The `hubspot` connector.
pub struct HubspotConnector {
    net: Network,
}

impl HubspotConnector {
    /// A connector on the shared network.
    pub fn new(net: Network) -> Self {
        Self { net }
    }

    fn parse(&self, settings: &serde_json::Value, allow_private: bool) -> Result<HubspotConfig, Vec<FieldError>> {
        let (parsed, problems) = settings::parse::<HubspotSettings>(self.kind(), settings)?;
        parsed.check(problems, allow_private)
    }
}

const FORM: &[SettingField] = &[
    SettingField::new("access_token", "Access token", SettingInput::Secret)
        .required()
        .help("The private app's access token (Settings > Integrations > Private Apps)."),
    SettingField::new("base_url", "API base URL", SettingInput::Url).help("HubSpot's API by default; leave it empty."),
    SettingField::new("lead_source_property", "Lead source property", SettingInput::Text)
        .help("The internal name of a custom contact property that receives the lead source."),
];

impl Connector for HubspotConnector {
    fn kind(&self) -> &'static str {
        "hubspot"
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
        Ok(Arc::new(HubspotDestination {
            net: self.net.clone(),
            upsert_url: format!("{}{UPSERT_PATH}", config.base_url),
            access_token: config.access_token,
            lead_source_property: config.lead_source_property,
        }))
    }
}

/// One HubSpot portal.
pub struct HubspotDestination {
    net: Network,
    upsert_url: String,
    access_token: String,
    lead_source_property: Option<String>,
}

#[async_trait::async_trait]
impl Destination for HubspotDestination {
    async fn send(&self, lead: &Lead, _ctx: SendContext) -> Result<Delivered, DestinationError> {
        let property = self.lead_source_property.as_deref();
        let Some(body) = upsert_body(lead, property) else {
            return Err(DestinationError::permanent(
                "HubSpot contacts are created or updated by email, and this lead has no email",
            )
            .with_hint(format!(
                "this lead cannot become a HubSpot contact; it is kept in leadrelay (GET /v1/leads/{}): add the \
                 contact by hand if you want it in HubSpot",
                lead.id
            )));
        };
        let request = self
            .net
            .post(&self.upsert_url)
            .bearer_auth(&self.access_token)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(body.to_string());
        let answer = self.net.send(request, JSON_CAP).await?;
        classify(&answer, property, self.net.options().excerpt_bytes)
    }
}

/// An upper-case code from HubSpot's answer (`category`, `policyName`), or nothing: it goes into
/// messages, so only what looks like a code is kept.
fn code_at<'a>(json: &'a serde_json::Value, pointer: &str) -> Option<&'a str> {
    json.pointer(pointer)
        .and_then(|v| v.as_str())
        .filter(|c| c.len() <= 40 && !c.is_empty() && c.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
}

/// HubSpot's answer to an upsert, classified; `excerpt_bytes` of its body go to the attempt log.
/// Messages are built from the status and HubSpot's codes only, because HubSpot's own messages
/// can quote the lead's values.
///
/// # Errors
/// A classified error with what to fix.
pub fn classify(
    answer: &Answer,
    lead_source_property: Option<&str>,
    excerpt_bytes: usize,
) -> Result<Delivered, DestinationError> {
    let (status, json, retry_after) = (answer.status, answer.json(), answer.retry_after());
    let excerpt = answer.excerpt(excerpt_bytes);
    let body = answer.body.as_slice();
    if (200..300).contains(&status) {
        if let Some(result) = json.pointer("/results/0") {
            let verb = if result.get("new").and_then(|n| n.as_bool()) == Some(true) { "created" } else { "updated" };
            let id = result.get("id").and_then(|i| i.as_str()).filter(|i| i.bytes().all(|b| b.is_ascii_digit()));
            let excerpt = id.map_or_else(|| format!("contact {verb}"), |id| format!("contact {id} {verb}"));
            return Ok(Delivered { status: Some(status), excerpt: Some(excerpt), note: None });
        }
        if let Some(error) = json.pointer("/errors/0") {
            // 207: the call went through but our one input did not; its category says why.
            let category = code_at(error, "/category").unwrap_or("");
            let as_status = match category {
                "VALIDATION_ERROR" => 400,
                "CONFLICT" => 409,
                "MISSING_SCOPES" => 403,
                "RATE_LIMITS" => 429,
                _ => 500,
            };
            let mut e = classify_failure(as_status, error, body, retry_after, lead_source_property, excerpt);
            e.status = Some(status);
            return Err(e);
        }
        return Ok(Delivered { status: Some(status), excerpt, note: None });
    }
    Err(classify_failure(status, &json, body, retry_after, lead_source_property, excerpt))
}

fn classify_failure(
    status: u16,
    json: &serde_json::Value,
    answer: &[u8],
    retry_after: Option<Duration>,
    lead_source_property: Option<&str>,
    excerpt: Option<String>,
) -> DestinationError {
    let category = code_at(json, "/category").or_else(|| code_at(json, "/errorType"));
    let said = |what: &str| {
        let code = category.map_or(String::new(), |c| format!(" {c}"));
        format!("HubSpot answered {status}{code}: {what}")
    };
    let text = String::from_utf8_lossy(answer);
    let fail = |class: ErrorClass, message: String, retry_after: Option<Duration>, hint: String| DestinationError {
        class,
        status: Some(status),
        message,
        retry_after,
        excerpt: excerpt.clone(),
        hint: Some(hint),
    };
    match status {
        400 if text.contains("PROPERTY_DOESNT_EXIST") => {
            let ours = lead_source_property.filter(|p| text.contains(p));
            match ours {
                Some(p) => fail(
                    ErrorClass::Permanent,
                    said(&format!("the contact property {p} (lead_source_property) does not exist")),
                    None,
                    format!(
                        "create the custom contact property {p} in HubSpot (Settings > Properties > Contact \
                         properties, field type single-line text, internal name {p}), or change or remove \
                         lead_source_property; then replay the dead letters"
                    ),
                ),
                None => fail(
                    ErrorClass::Permanent,
                    said("a contact property leadrelay writes does not exist"),
                    None,
                    "the portal lacks one of HubSpot's default contact properties (email, firstname, lastname, \
                     phone, company, jobtitle, country): restore it, then replay the dead letters"
                        .to_owned(),
                ),
            }
        }
        400 if text.contains("INVALID_EMAIL") => fail(
            ErrorClass::Permanent,
            said("HubSpot considers the lead's email address invalid"),
            None,
            "this lead cannot become a HubSpot contact as received; it is kept in leadrelay".to_owned(),
        ),
        400 | 422 => fail(
            ErrorClass::Permanent,
            said("HubSpot refused a value of this lead"),
            None,
            "HubSpot's validation refused one of the lead's values (see the response excerpt in the attempt log): \
             check the contact properties' types and validation rules in HubSpot"
                .to_owned(),
        ),
        401 => fail(
            ErrorClass::Permanent,
            said("the access token was refused"),
            None,
            "HubSpot does not accept the access token (revoked, rotated or mistyped): copy it again from Settings > \
             Integrations > Private Apps > the app > Auth and update access_token"
                .to_owned(),
        ),
        403 => fail(
            ErrorClass::Permanent,
            said(&format!("the private app may not write contacts (needs {WRITE_SCOPE})")),
            None,
            format!(
                "give the private app the {WRITE_SCOPE} scope (and crm.objects.contacts.read) under Settings > \
                 Integrations > Private Apps > the app > Scopes, commit the change, then replay the dead letters"
            ),
        ),
        404 | 405 => fail(
            ErrorClass::Permanent,
            said(&format!("there is no {UPSERT_PATH} at base_url")),
            None,
            format!("base_url does not point at HubSpot's API: leave it out (default {DEFAULT_BASE_URL})"),
        ),
        409 => fail(
            ErrorClass::Transient,
            said("the contact conflicts with an existing one"),
            retry_after,
            "another write to a contact with this email raced ours; the upsert is retried and then updates it. If \
             it keeps failing, a contact may hold this address as a secondary email: merge the contacts in HubSpot"
                .to_owned(),
        ),
        429 => {
            let daily = code_at(json, "/policyName") == Some("DAILY");
            let wait = retry_after.unwrap_or(if daily { DAILY_LIMIT_WAIT } else { RATE_LIMIT_WAIT });
            let hint = if daily {
                "the portal's daily API limit is used up (shared by every app in the portal); leads wait for it to \
                 reset at midnight in the portal's time zone"
            } else {
                "HubSpot's rate limit (100-190 requests per 10 s, shared by every app in the portal) was hit; leads \
                 wait and are sent again"
            };
            fail(ErrorClass::Throttled, said("rate limited"), Some(wait), hint.to_owned())
        }
        300..=399 => fail(
            ErrorClass::Permanent,
            said("redirects are not followed"),
            None,
            format!("base_url redirects: leave it out (default {DEFAULT_BASE_URL}) or use the final URL"),
        ),
        408 | 423 | 425 | 500..=599 => {
            let class =
                if status == 503 && retry_after.is_some() { ErrorClass::Throttled } else { ErrorClass::Transient };
            fail(
                class,
                said("HubSpot could not take the contact now"),
                retry_after,
                "HubSpot is unavailable or busy; leads will be retried".to_owned(),
            )
        }
        _ => fail(
            ErrorClass::Permanent,
            said("the request was refused"),
            None,
            "HubSpot refused the request: check access_token and base_url".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadrelay_core::{Customer, LeadDraft, LeadId, LeadRules, PublisherId, Timestamp};

    fn lead(customer: Customer) -> Lead {
        let draft = LeadDraft {
            publisher: Some(PublisherId::parse("contoso").unwrap()),
            lead_source: Some("AzureMarketplace".into()),
            action_code: Some("INS".into()),
            offer_title: Some("Test Microsoft".into()),
            customer,
            ..LeadDraft::default()
        };
        Lead::from_draft(
            draft,
            LeadId::generate(Timestamp::from_millis(1)),
            Timestamp::from_millis(1),
            &LeadRules::default(),
        )
        .unwrap()
    }

    fn documented() -> Customer {
        Customer::from_raw(
            Some("Some".into()),
            Some("One".into()),
            Some("someone@contoso.com".into()),
            Some("16175555555".into()),
            Some("USA".into()),
            Some("Contoso".into()),
            Some("Esquire".into()),
        )
    }

    #[test]
    fn the_upsert_body_is_keyed_by_email_with_the_mapped_properties() {
        let body = upsert_body(&lead(documented()), Some("marketplace_lead_source")).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"inputs": [{"idProperty": "email", "id": "someone@contoso.com", "properties": {
                "email": "someone@contoso.com", "firstname": "Some", "lastname": "One", "phone": "16175555555",
                "company": "Contoso", "jobtitle": "Esquire", "country": "USA",
                "marketplace_lead_source": "AzureMarketplace-INS|Test Microsoft"}}]})
        );
    }

    #[test]
    fn absent_fields_are_left_out_so_an_update_clears_nothing_and_no_email_means_no_body() {
        let partial =
            Customer { email: Some("a@b.com".into()), company: Some("Zoë & Co ".into()), ..Customer::default() };
        let props = contact_properties(&lead(partial), None);
        assert_eq!(serde_json::Value::Object(props), serde_json::json!({"email": "a@b.com", "company": "Zoë & Co "}));
        let no_email = Customer { first_name: Some("Ann".into()), ..Customer::default() };
        assert!(upsert_body(&lead(no_email), None).is_none());
    }

    fn connector() -> HubspotConnector {
        HubspotConnector::new(Network::new(crate::NetworkOptions::default()))
    }

    fn prepare(settings: serde_json::Value, allow_private: bool) -> Result<PreparedSettings, Vec<FieldError>> {
        connector().prepare(settings, NetworkPolicy { allow_private })
    }

    #[test]
    fn settings_report_every_wrong_field_by_path_without_echoing_values() {
        let errs =
            prepare(serde_json::json!({"access_token": 12, "api_key": "x", "base_url": "ftp://x"}), false).unwrap_err();
        let got: Vec<(&str, &str)> = errs.iter().map(|e| (e.path.as_str(), e.message.as_str())).collect();
        assert_eq!(
            got,
            [
                ("settings.access_token", "must be a string"),
                (
                    "settings.api_key",
                    "is not a setting of hubspot destinations (expected access_token, base_url, lead_source_property)"
                ),
                ("settings.base_url", "must be an https URL"),
            ]
        );
        let errs = prepare(
            serde_json::json!({"access_token": "pat na1 secret", "base_url": "http://10.0.0.1/", "lead_source_property": "email"}),
            false,
        )
        .unwrap_err();
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["settings.access_token", "settings.base_url", "settings.lead_source_property"]);
        assert!(errs.iter().all(|e| !e.message.contains("secret")), "{errs:?}");
        let errs = prepare(serde_json::json!({"lead_source_property": "Lead Source"}), false).unwrap_err();
        assert!(errs[0].path == "settings.access_token" && errs[0].message.starts_with("is required"), "{errs:?}");
        assert!(errs[1].message.contains("internal name"), "{errs:?}");
        let errs = prepare(serde_json::json!({"access_token": "t", "base_url": "https://api.hubapi.com/?x=1"}), false);
        assert_eq!(errs.unwrap_err()[0].message, "must not have a query or fragment");
        assert_eq!(prepare(serde_json::json!("pat"), false).unwrap_err()[0].path, "settings");
    }

    #[test]
    fn settings_default_the_base_url_and_round_trip_through_storage() {
        let stored =
            prepare(serde_json::json!({"access_token": " pat-na1-abc ", "base_url": null}), false).unwrap().stored;
        assert_eq!(stored, serde_json::json!({"access_token": "pat-na1-abc", "base_url": DEFAULT_BASE_URL}));
        assert_eq!(prepare(stored.clone(), false).unwrap().stored, stored, "stored settings parse to themselves");
        assert!(connector().build(&stored).is_ok());
        let trimmed = prepare(
            serde_json::json!({"access_token": "t", "base_url": "http://127.0.0.1:8080/hub/", "lead_source_property": "mp_source"}),
            true,
        )
        .unwrap();
        assert_eq!(trimmed.stored["base_url"], "http://127.0.0.1:8080/hub");
        let settings: HubspotSettings = serde_json::from_value(trimmed.stored.clone()).unwrap();
        assert!(!format!("{settings:?}").contains("\"t\""), "the token is redacted in Debug");
        let Err(e) = connector().build(&serde_json::json!({"access_token": "t", "extra": 1})) else {
            panic!("stored settings with an unknown key are refused");
        };
        assert!(e.message.contains("settings.extra"), "{}", e.message);
        let Err(e) = connector().build(&trimmed.stored) else {
            panic!("a private base_url stored under a switch that is now off is refused");
        };
        assert!(e.message.contains("settings.base_url"), "{}", e.message);
    }

    #[test]
    fn hubspot_answers_are_classified_with_hints() {
        let answer = |status, v: serde_json::Value, retry_after: Option<Duration>| {
            let mut headers = reqwest::header::HeaderMap::new();
            if let Some(wait) = retry_after {
                headers.insert("retry-after", wait.as_secs().to_string().parse().unwrap());
            }
            Answer { status, headers, body: v.to_string().into_bytes(), truncated: false }
        };
        let err =
            |status, v: serde_json::Value, ra| classify(&answer(status, v, ra), Some("mp_source"), 512).unwrap_err();
        let ok = classify(
            &answer(200, serde_json::json!({"status": "COMPLETE", "results": [{"id": "501", "new": true}]}), None),
            None,
            512,
        );
        assert_eq!(ok.unwrap().excerpt.as_deref(), Some("contact 501 created"));

        let e = err(401, serde_json::json!({"status": "error", "category": "INVALID_AUTHENTICATION"}), None);
        assert_eq!(e.class, ErrorClass::Permanent);
        assert!(e.message.contains("INVALID_AUTHENTICATION") && e.hint.unwrap().contains("Private Apps"));
        let e = err(403, serde_json::json!({"category": "MISSING_SCOPES"}), None);
        assert!(e.hint.unwrap().contains(WRITE_SCOPE));
        let missing = serde_json::json!({"status": "error", "category": "VALIDATION_ERROR",
            "message": "Property values were not valid: [{\"isValid\":false,\"message\":\"Property \\\"mp_source\\\" does not exist\",\"error\":\"PROPERTY_DOESNT_EXIST\",\"name\":\"mp_source\"}]"});
        let e = err(400, missing, None);
        assert_eq!(e.class, ErrorClass::Permanent);
        assert!(e.hint.unwrap().contains("create the custom contact property mp_source"));
        let invalid = serde_json::json!({"category": "VALIDATION_ERROR",
            "message": "Property values were not valid: [{\"message\":\"Email address x@@y is invalid\",\"error\":\"INVALID_EMAIL\"}]"});
        let e = err(400, invalid, None);
        assert!(!e.message.contains("x@@y"), "HubSpot's message quotes the lead: {}", e.message);
        assert_eq!(err(409, serde_json::json!({"category": "CONFLICT"}), None).class, ErrorClass::Transient);
        let e = err(429, serde_json::json!({"errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"}), None);
        assert_eq!((e.class, e.retry_after), (ErrorClass::Throttled, Some(RATE_LIMIT_WAIT)));
        let e = err(429, serde_json::json!({"policyName": "DAILY"}), None);
        assert_eq!(e.retry_after, Some(DAILY_LIMIT_WAIT));
        let e = err(429, serde_json::json!({}), Some(Duration::from_secs(3)));
        assert_eq!(e.retry_after, Some(Duration::from_secs(3)));
        assert_eq!(err(502, serde_json::json!({}), None).class, ErrorClass::Transient);
        assert_eq!(err(503, serde_json::json!({}), Some(Duration::from_secs(2))).class, ErrorClass::Throttled);
        assert_eq!(err(301, serde_json::json!({}), None).class, ErrorClass::Permanent);
        let partial = serde_json::json!({"status": "COMPLETE", "results": [], "numErrors": 1,
            "errors": [{"status": "error", "category": "VALIDATION_ERROR", "message": "Property values were not valid: INVALID_EMAIL"}]});
        let e = err(207, partial, None);
        assert_eq!((e.class, e.status), (ErrorClass::Permanent, Some(207)));
    }
}
