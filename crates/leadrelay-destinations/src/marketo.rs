//! The `marketo` destination: the lead is submitted through the publisher's Marketo form
//! (`submitForm.json`, the marketplace's 2023 connector model) with a REST token from the
//! identity endpoint. Marketo answers HTTP 200 for almost every error, so the JSON envelope
//! decides: 601/602 refresh the token once, 606/615 and 607 wait (rate limit, concurrency,
//! daily quota), record-level reasons say whether the lead or the mapping is wrong.

use std::sync::Arc;
use std::time::Duration;

use leadrelay_core::destination::{
    Connector, Delivered, Destination, DestinationError, DestinationRole, ErrorClass, FieldError, NetworkPolicy,
    PreparedSettings, SendContext, SettingField, SettingInput,
};
use leadrelay_core::{Lead, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::network::{JSON_CAP, Network, check_url};
use crate::pacing::Pacer;
use crate::settings::{self, KindSettings};

/// Marketo's rate limit is 100 calls per 20 s per subscription, shared with every other
/// integration: by default we use half.
pub const DEFAULT_CALLS_PER_20S: u32 = 50;
/// Marketo's documented batch size for lead-database calls.
pub const MAX_BATCH: usize = 300;

/// Whether `s` looks like a Munchkin id (`123-ABC-456`).
pub fn is_munchkin_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 3
        && parts[0].len() == 3
        && parts[0].bytes().all(|b| b.is_ascii_digit())
        && parts[1].len() == 3
        && parts[1].bytes().all(|b| b.is_ascii_alphabetic())
        && parts[2].len() == 3
        && parts[2].bytes().all(|b| b.is_ascii_digit())
}

/// The form fields of a lead (REST API names); empty values are left out, since every field
/// sent must exist on the form.
pub fn form_fields(lead: &Lead, lead_source_field: &str) -> serde_json::Map<String, serde_json::Value> {
    let c = &lead.customer;
    let mut fields = serde_json::Map::new();
    for (name, value) in [
        ("firstName", c.first_name.clone()),
        ("lastName", c.last_name.clone()),
        ("email", c.email.clone()),
        ("company", c.company.clone()),
        ("title", c.title.clone()),
        ("phone", c.phone.clone()),
        ("country", c.country.clone()),
        (lead_source_field, Some(lead.lead_source_string())),
    ] {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            fields.insert(name.to_owned(), serde_json::Value::String(v));
        }
    }
    fields
}

/// The settings of a `marketo` destination, as the API takes them and as they are stored.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MarketoSettings {
    /// The Munchkin account id, `123-ABC-456`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub munchkin_id: Option<String>,
    /// The LaunchPoint custom service's Client ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Its Client Secret (a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// The form's numeric id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub form_id: Option<u64>,
    /// The REST endpoint; `https://<munchkin_id>.mktorest.com` by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The form field that receives the LeadSource string (`leadSource` by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead_source_field: Option<String>,
    /// Our share of the subscription's 100 calls per 20 s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calls_per_20s: Option<u32>,
    /// Leads per call (1: no batching).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
}

impl KindSettings for MarketoSettings {
    const SHAPE: &'static str = "must be an object with munchkin_id, client_id, client_secret and form_id";

    fn type_rule(field: &str) -> std::borrow::Cow<'static, str> {
        match field {
            "form_id" => FORM_ID_RULE.into(),
            "calls_per_20s" => CALLS_RULE.into(),
            "batch_size" => batch_rule().into(),
            _ => "must be a string".into(),
        }
    }
}

const FORM_ID_RULE: &str = "must be the form's numeric id (from its embed code)";
const CALLS_RULE: &str = "must be 1-100 (Marketo allows 100 calls per 20 s in all)";

fn batch_rule() -> String {
    format!("must be 1-{MAX_BATCH} (Marketo's documented batch size)")
}

/// Checked `marketo` settings.
struct MarketoConfig {
    munchkin_id: String,
    client_id: String,
    client_secret: String,
    form_id: u64,
    base_url: String,
    lead_source_field: String,
    calls_per_20s: u32,
    batch_size: usize,
}

/// A text setting, trimmed; blank counts as absent.
fn text(v: Option<&String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

impl MarketoSettings {
    fn check(self, mut problems: settings::Problems, allow_private: bool) -> Result<MarketoConfig, Vec<FieldError>> {
        let munchkin = text(self.munchkin_id.as_ref()).filter(|m| is_munchkin_id(m));
        if munchkin.is_none() {
            problems.add("munchkin_id", "must be the Munchkin account id, like 123-ABC-456 (Admin > Munchkin)");
        }
        let client_id = text(self.client_id.as_ref());
        if client_id.is_none() {
            problems.add("client_id", "is required (the LaunchPoint custom service's Client ID)");
        }
        let client_secret = text(self.client_secret.as_ref());
        if client_secret.is_none() {
            problems.add("client_secret", "is required (its Client Secret)");
        }
        let form_id = self.form_id.filter(|n| *n > 0);
        if form_id.is_none() {
            problems.add("form_id", FORM_ID_RULE);
        }
        let base_url = match text(self.base_url.as_ref()) {
            Some(b) => match check_url(&b, allow_private) {
                Ok(u) => Some(u.as_str().trim_end_matches('/').to_owned()),
                Err(rule) => {
                    problems.add("base_url", rule);
                    None
                }
            },
            None => munchkin.as_ref().map(|m| format!("https://{m}.mktorest.com")),
        };
        let calls = self.calls_per_20s.unwrap_or(DEFAULT_CALLS_PER_20S);
        if !(1..=100).contains(&calls) {
            problems.add("calls_per_20s", CALLS_RULE);
        }
        let batch_size = self.batch_size.unwrap_or(1);
        if !(1..=MAX_BATCH).contains(&batch_size) {
            problems.add("batch_size", batch_rule());
        }
        problems.finish(|| MarketoConfig {
            munchkin_id: munchkin.expect("checked"),
            client_id: client_id.expect("checked"),
            client_secret: client_secret.expect("checked"),
            form_id: form_id.expect("checked"),
            base_url: base_url.expect("checked"),
            lead_source_field: text(self.lead_source_field.as_ref()).unwrap_or_else(|| "leadSource".to_owned()),
            calls_per_20s: calls,
            batch_size,
        })
    }
}

impl MarketoConfig {
    fn to_settings(&self) -> MarketoSettings {
        MarketoSettings {
            munchkin_id: Some(self.munchkin_id.clone()),
            client_id: Some(self.client_id.clone()),
            client_secret: Some(self.client_secret.clone()),
            form_id: Some(self.form_id),
            base_url: Some(self.base_url.clone()),
            lead_source_field: Some(self.lead_source_field.clone()),
            calls_per_20s: Some(self.calls_per_20s),
            batch_size: Some(self.batch_size),
        }
    }
}

/// The `marketo` connector.
pub struct MarketoConnector {
    net: Network,
}

impl MarketoConnector {
    /// A connector on the shared network.
    pub fn new(net: Network) -> Self {
        Self { net }
    }

    fn parse(&self, settings: &serde_json::Value, allow_private: bool) -> Result<MarketoConfig, Vec<FieldError>> {
        let (parsed, problems) = settings::parse::<MarketoSettings>(self.kind(), settings)?;
        parsed.check(problems, allow_private)
    }
}

const FORM: &[SettingField] = &[
    SettingField::new("munchkin_id", "Munchkin account id", SettingInput::Text)
        .required()
        .help("Like 123-ABC-456 (Admin > Munchkin)."),
    SettingField::new("client_id", "Client ID", SettingInput::Text)
        .required()
        .help("The LaunchPoint custom service's Client ID."),
    SettingField::new("client_secret", "Client secret", SettingInput::Secret).required(),
    SettingField::new("form_id", "Form id", SettingInput::Number)
        .required()
        .help("The form's numeric id, from its embed code."),
    SettingField::new("base_url", "REST endpoint", SettingInput::Url)
        .help("https://<munchkin id>.mktorest.com by default."),
    SettingField::new("lead_source_field", "Lead source field", SettingInput::Text)
        .help("The form field that receives the lead source; leadSource by default."),
    SettingField::new("calls_per_20s", "Calls per 20 seconds", SettingInput::Number)
        .help("1-100; Marketo allows 100 per 20 s for all integrations, half is used by default."),
    SettingField::new("batch_size", "Leads per call", SettingInput::Number).help("1 by default."),
];

impl Connector for MarketoConnector {
    fn kind(&self) -> &'static str {
        "marketo"
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
        Ok(Arc::new(MarketoDestination {
            net: self.net.clone(),
            base_url: config.base_url,
            client_id: config.client_id,
            client_secret: config.client_secret,
            form_id: config.form_id,
            lead_source_field: config.lead_source_field,
            pacer: Pacer::new(config.calls_per_20s, Duration::from_secs(20)),
            token: Mutex::new(None),
            batch_size: config.batch_size,
        }))
    }
}

/// One Marketo form.
pub struct MarketoDestination {
    net: Network,
    base_url: String,
    client_id: String,
    client_secret: String,
    form_id: u64,
    lead_source_field: String,
    pacer: Pacer,
    token: Mutex<Option<(String, Timestamp)>>,
    batch_size: usize,
}

fn throttled(message: &str, wait: Duration, hint: &str) -> DestinationError {
    DestinationError {
        class: ErrorClass::Throttled,
        status: Some(200),
        message: message.to_owned(),
        retry_after: Some(wait),
        excerpt: None,
        hint: Some(hint.to_owned()),
    }
}

impl MarketoDestination {
    fn pace(&self, now: Timestamp) -> Result<(), DestinationError> {
        self.pacer.take(now).map_err(|wait| {
            throttled(
                "held back to stay under Marketo's rate limit",
                wait,
                "Marketo allows 100 calls per 20 s per subscription; leads wait their turn",
            )
        })
    }

    async fn token(&self, now: Timestamp, force: bool) -> Result<String, DestinationError> {
        let mut cached = self.token.lock().await;
        if !force
            && let Some((t, expires)) = cached.as_ref()
            && now < *expires
        {
            return Ok(t.clone());
        }
        self.pace(now)?;
        let url = url::Url::parse_with_params(
            &format!("{}/identity/oauth/token", self.base_url),
            [
                ("grant_type", "client_credentials"),
                ("client_id", &self.client_id),
                ("client_secret", &self.client_secret),
            ],
        )
        .map_err(|_| DestinationError::permanent("the base_url is not valid"))?;
        let answer = self.net.send(self.net.request(reqwest::Method::GET, url), JSON_CAP).await?;
        let (status, json) = (answer.status, answer.json());
        if let (200, Some(t)) = (status, json.get("access_token").and_then(|t| t.as_str())) {
            // Refresh a minute early: Marketo hands out the same token until it expires.
            let life = json.get("expires_in").and_then(|e| e.as_u64()).unwrap_or(3599).saturating_sub(60);
            *cached = Some((t.to_owned(), now.plus(Duration::from_secs(life))));
            return Ok(t.to_owned());
        }
        let (class, hint) = if status >= 500 {
            (ErrorClass::Transient, "Marketo's identity service is unavailable; leads will be retried")
        } else {
            (
                ErrorClass::Permanent,
                "Marketo refused the client id or secret: copy them again from Admin > LaunchPoint > View Details",
            )
        };
        Err(DestinationError {
            class,
            status: Some(status),
            message: format!("Marketo's identity endpoint answered {status}"),
            retry_after: None,
            excerpt: None,
            hint: Some(hint.to_owned()),
        })
    }

    async fn submit(
        &self,
        token: &str,
        body: &serde_json::Value,
        now: Timestamp,
    ) -> Result<(u16, serde_json::Value), DestinationError> {
        self.pace(now)?;
        let request = self
            .net
            .post(format!("{}/rest/v1/leads/submitForm.json", self.base_url))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string());
        let answer = self.net.send(request, JSON_CAP).await?;
        Ok((answer.status, answer.json()))
    }
}

#[async_trait::async_trait]
impl Destination for MarketoDestination {
    async fn send(&self, lead: &Lead, ctx: SendContext) -> Result<Delivered, DestinationError> {
        self.send_batch(std::slice::from_ref(lead), ctx).await.remove(0)
    }

    fn batch_limit(&self) -> usize {
        self.batch_size
    }

    async fn send_batch(&self, leads: &[Lead], ctx: SendContext) -> Vec<Result<Delivered, DestinationError>> {
        let mut out: Vec<Option<Result<Delivered, DestinationError>>> = vec![None; leads.len()];
        let mut sent = Vec::new();
        let mut input = Vec::new();
        for (i, lead) in leads.iter().enumerate() {
            let fields = form_fields(lead, &self.lead_source_field);
            if fields.contains_key("email") {
                sent.push(i);
                input.push(serde_json::json!({ "leadFormFields": fields }));
            } else {
                out[i] = Some(Err(DestinationError::permanent("Marketo forms need an email and this lead has none")
                    .with_hint("the lead cannot be submitted to a Marketo form; find it in leadrelay instead")));
            }
        }
        if !input.is_empty() {
            let body = serde_json::json!({ "formId": self.form_id, "input": input });
            match self.submit_with_refresh(&body, ctx.now).await {
                Err(e) => sent.iter().for_each(|&i| out[i] = Some(Err(e.clone()))),
                Ok((status, json)) => match classify_envelope(status, &json, ctx.now) {
                    Err(e) => sent.iter().for_each(|&i| out[i] = Some(Err(e.clone()))),
                    Ok(()) => {
                        for (k, &i) in sent.iter().enumerate() {
                            out[i] = Some(classify_record(json.pointer(&format!("/result/{k}"))));
                        }
                    }
                },
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(DestinationError::transient("no answer for this lead"))))
            .collect()
    }
}

impl MarketoDestination {
    async fn submit_with_refresh(
        &self,
        body: &serde_json::Value,
        now: Timestamp,
    ) -> Result<(u16, serde_json::Value), DestinationError> {
        let (status, json) = self.submit(&self.token(now, false).await?, body, now).await?;
        if status == 200 && matches!(envelope_code(&json), Some(601 | 602)) {
            // Token invalid or expired: one fresh token, one more try.
            return self.submit(&self.token(now, true).await?, body, now).await;
        }
        Ok((status, json))
    }
}

fn envelope_code(json: &serde_json::Value) -> Option<u32> {
    json.pointer("/errors/0/code").and_then(|c| {
        c.as_str().and_then(|s| s.parse().ok()).or_else(|| c.as_u64().and_then(|n| u32::try_from(n).ok()))
    })
}

/// The wait until Marketo's daily quota resets (midnight US Central, taken as 06:00 UTC).
pub fn until_quota_reset(now: Timestamp) -> Duration {
    const DAY: i64 = 86_400_000;
    const RESET: i64 = 6 * 3_600_000;
    let ms = now.as_millis();
    let today_reset = ms - ms.rem_euclid(DAY) + RESET;
    let next = if ms < today_reset { today_reset } else { today_reset + DAY };
    Duration::from_millis(u64::try_from(next - ms).unwrap_or(0))
}

/// The whole call's outcome: the HTTP status and the envelope (`success`, `errors`).
///
/// # Errors
/// The error every lead of the call shares.
pub fn classify_envelope(status: u16, json: &serde_json::Value, now: Timestamp) -> Result<(), DestinationError> {
    let fail = |class: ErrorClass, message: String, hint: &str| DestinationError {
        class,
        status: Some(status),
        message,
        retry_after: None,
        excerpt: None,
        hint: Some(hint.to_owned()),
    };
    if status != 200 {
        return Err(if status >= 500 {
            fail(
                ErrorClass::Transient,
                format!("Marketo answered {status}"),
                "Marketo is unavailable; leads will be retried",
            )
        } else {
            fail(
                ErrorClass::Permanent,
                format!("Marketo answered {status}"),
                "Marketo refused the request; check base_url",
            )
        });
    }
    if json.get("success").and_then(|s| s.as_bool()) == Some(true) {
        return Ok(());
    }
    let code = envelope_code(json).unwrap_or(0);
    let message = format!("Marketo error {code}");
    Err(match code {
        606 => throttled(
            &message,
            Duration::from_secs(20),
            "Marketo's rate limit (100 calls per 20 s) was exceeded; leads wait",
        ),
        615 => throttled(
            &message,
            Duration::from_secs(5),
            "Marketo's concurrency limit (10 calls) was reached; leads wait",
        ),
        607 => throttled(
            &message,
            until_quota_reset(now),
            "Marketo's daily API quota is used up; leads wait for the midnight (US Central) reset",
        ),
        601 | 602 => fail(ErrorClass::Transient, message, "Marketo refused a fresh token; leads will be retried"),
        603 => fail(
            ErrorClass::Permanent,
            message,
            "access denied: give the API-only user's role API access, and check Marketo's IP allow-list",
        ),
        610 | 702 => fail(ErrorClass::Permanent, message, "the form was not found: check form_id (and base_url)"),
        609 | 701 | 709 => fail(ErrorClass::Permanent, message, "Marketo refused this lead's data"),
        600 | 605 | 612 | 616 => {
            fail(ErrorClass::Permanent, message, "Marketo refused the request itself: check base_url")
        }
        _ => fail(ErrorClass::Transient, message, "Marketo had a temporary problem; leads will be retried"),
    })
}

/// One lead's outcome from its `result` entry.
///
/// # Errors
/// A skipped record, classified by its reason code.
pub fn classify_record(record: Option<&serde_json::Value>) -> Result<Delivered, DestinationError> {
    let fail = |message: String, hint: &str| DestinationError {
        class: ErrorClass::Permanent,
        status: Some(200),
        message,
        retry_after: None,
        excerpt: None,
        hint: Some(hint.to_owned()),
    };
    let Some(record) = record else {
        return Err(DestinationError::transient("Marketo answered without a result for this lead"));
    };
    let status = record.get("status").and_then(|s| s.as_str()).unwrap_or("");
    if status == "skipped" {
        let reason = record.pointer("/reasons/0/code").and_then(|c| c.as_str()).unwrap_or("");
        return match reason {
            "1005" => Ok(Delivered {
                status: Some(200),
                excerpt: None,
                note: Some("Marketo already had this lead".to_owned()),
            }),
            "1006" | "1008" | "1010" | "1011" => Err(fail(
                format!("Marketo skipped the lead ({reason})"),
                "a field we send is not on the form: add firstName, lastName, email, company, title, phone, country and the lead source field (lead_source_field) to the form",
            )),
            _ => Err(fail(format!("Marketo skipped the lead ({reason})"), "Marketo refused this lead's data")),
        };
    }
    let id = record.get("id").map(|id| format!("lead {id} {status}"));
    Ok(Delivered { status: Some(200), excerpt: id, note: None })
}

/// One lead's answer: the envelope, then its record.
///
/// # Errors
/// As [`classify_envelope`] and [`classify_record`].
pub fn classify(status: u16, json: &serde_json::Value, now: Timestamp) -> Result<Delivered, DestinationError> {
    classify_envelope(status, json, now)?;
    classify_record(json.pointer("/result/0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn munchkin_ids_have_the_documented_shape() {
        assert!(is_munchkin_id("123-PQR-789"));
        assert!(!is_munchkin_id("123PQR789") && !is_munchkin_id("12-PQR-789") && !is_munchkin_id("123-P1R-789"));
    }

    #[test]
    fn the_quota_resets_at_the_next_0600_utc() {
        let at = Timestamp::parse_rfc3339("2026-11-23T05:00:00Z").unwrap();
        assert_eq!(until_quota_reset(at), Duration::from_secs(3600));
        let after = Timestamp::parse_rfc3339("2026-11-23T07:00:00Z").unwrap();
        assert_eq!(until_quota_reset(after), Duration::from_secs(23 * 3600));
    }

    #[test]
    fn envelopes_are_classified_by_code() {
        let now = Timestamp::from_millis(0);
        let env = |code: &str| serde_json::json!({"success": false, "errors": [{"code": code, "message": "x"}]});
        assert_eq!(classify(200, &env("606"), now).unwrap_err().class, ErrorClass::Throttled);
        assert_eq!(classify(200, &env("607"), now).unwrap_err().retry_after, Some(until_quota_reset(now)));
        assert_eq!(classify(200, &env("603"), now).unwrap_err().class, ErrorClass::Permanent);
        assert_eq!(classify(200, &env("604"), now).unwrap_err().class, ErrorClass::Transient);
        assert_eq!(classify(502, &serde_json::json!({}), now).unwrap_err().class, ErrorClass::Transient);
        let ok = serde_json::json!({"success": true, "result": [{"id": 319_174, "status": "updated"}]});
        assert_eq!(classify(200, &ok, now).unwrap().excerpt.as_deref(), Some("lead 319174 updated"));
        let skipped =
            serde_json::json!({"success": true, "result": [{"status": "skipped", "reasons": [{"code": "1006"}]}]});
        assert!(classify(200, &skipped, now).unwrap_err().hint.unwrap().contains("not on the form"));
    }
}
