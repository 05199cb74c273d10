//! The `marketo` destination: the lead is submitted through the publisher's Marketo form
//! (`submitForm.json`, the marketplace's 2023 connector model) with a REST token from the
//! identity endpoint. Marketo answers HTTP 200 for almost every error, so the JSON envelope
//! decides: 601/602 refresh the token once, 606/615 and 607 wait (rate limit, concurrency,
//! daily quota), record-level reasons say whether the lead or the mapping is wrong.

use std::sync::Arc;
use std::time::Duration;

use leadrelay_core::destination::{
    Connector, Delivered, Destination, DestinationError, ErrorClass, FieldError, NetworkPolicy, PreparedSettings,
    SendContext,
};
use leadrelay_core::{Lead, Timestamp};
use tokio::sync::Mutex;

use crate::https::HttpsOptions;
use crate::network::check_url;
use crate::pacing::Pacer;

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

/// The `marketo` connector.
pub struct MarketoConnector {
    client: reqwest::Client,
    options: Arc<HttpsOptions>,
}

impl MarketoConnector {
    /// A connector sharing the HTTP settings of every destination.
    pub fn new(options: &HttpsOptions) -> Self {
        Self { client: crate::network::client(options), options: Arc::new(options.clone()) }
    }
}

impl Connector for MarketoConnector {
    fn kind(&self) -> &'static str {
        "marketo"
    }

    fn role(&self) -> leadrelay_core::destination::DestinationRole {
        leadrelay_core::destination::DestinationRole::StoresLeads
    }

    fn secret_fields(&self) -> &'static [&'static str] {
        &["client_secret"]
    }

    fn prepare(&self, settings: serde_json::Value, policy: NetworkPolicy) -> Result<PreparedSettings, Vec<FieldError>> {
        const KEYS: [&str; 8] = [
            "munchkin_id",
            "client_id",
            "client_secret",
            "form_id",
            "base_url",
            "lead_source_field",
            "calls_per_20s",
            "batch_size",
        ];
        let Some(map) = settings.as_object() else {
            return Err(vec![FieldError::new(
                "settings",
                "must be an object with munchkin_id, client_id, client_secret and form_id",
            )]);
        };
        let mut errors = crate::unknown_keys(map, &KEYS, self.kind());
        let text = |k: &str| map.get(k).and_then(|v| v.as_str()).map(str::trim).filter(|v| !v.is_empty());
        let munchkin = text("munchkin_id");
        if !munchkin.is_some_and(is_munchkin_id) {
            errors.push(FieldError::new(
                "settings.munchkin_id",
                "must be the Munchkin account id, like 123-ABC-456 (Admin > Munchkin)",
            ));
        }
        for (key, what) in
            [("client_id", "the LaunchPoint custom service's Client ID"), ("client_secret", "its Client Secret")]
        {
            if text(key).is_none() {
                errors.push(FieldError::new(format!("settings.{key}"), format!("is required ({what})")));
            }
        }
        let form_id = map.get("form_id").and_then(|v| v.as_u64()).filter(|n| *n > 0);
        if form_id.is_none() {
            errors.push(FieldError::new("settings.form_id", "must be the form's numeric id (from its embed code)"));
        }
        let base_url = match text("base_url") {
            Some(b) => match check_url(b, policy.allow_private || self.options.allow_private) {
                Ok(u) => Some(u.as_str().trim_end_matches('/').to_owned()),
                Err(rule) => {
                    errors.push(FieldError::new("settings.base_url", rule));
                    None
                }
            },
            None => munchkin.map(|m| format!("https://{m}.mktorest.com")),
        };
        let calls = match map.get("calls_per_20s") {
            None | Some(serde_json::Value::Null) => Some(DEFAULT_CALLS_PER_20S),
            Some(v) => v.as_u64().and_then(|n| u32::try_from(n).ok()).filter(|n| (1..=100).contains(n)).or_else(|| {
                errors.push(FieldError::new(
                    "settings.calls_per_20s",
                    "must be 1-100 (Marketo allows 100 calls per 20 s in all)",
                ));
                None
            }),
        };
        let batch = match map.get("batch_size") {
            None | Some(serde_json::Value::Null) => Some(1),
            Some(v) => {
                v.as_u64().and_then(|n| usize::try_from(n).ok()).filter(|n| (1..=MAX_BATCH).contains(n)).or_else(|| {
                    errors.push(FieldError::new(
                        "settings.batch_size",
                        format!("must be 1-{MAX_BATCH} (Marketo's documented batch size)"),
                    ));
                    None
                })
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(PreparedSettings {
            stored: serde_json::json!({
                "munchkin_id": munchkin, "client_id": text("client_id"), "client_secret": text("client_secret"),
                "form_id": form_id, "base_url": base_url,
                "lead_source_field": text("lead_source_field").unwrap_or("leadSource"), "calls_per_20s": calls,
                "batch_size": batch,
            }),
            generated_secret: None,
        })
    }

    fn build(&self, settings: &serde_json::Value) -> Result<Arc<dyn Destination>, DestinationError> {
        let get = |k: &str| {
            settings
                .get(k)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .ok_or_else(|| DestinationError::permanent(format!("stored {k} is missing")))
        };
        let calls = settings
            .get("calls_per_20s")
            .and_then(|v| v.as_u64())
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(DEFAULT_CALLS_PER_20S);
        Ok(Arc::new(MarketoDestination {
            client: self.client.clone(),
            base_url: get("base_url")?,
            client_id: get("client_id")?,
            client_secret: get("client_secret")?,
            form_id: settings
                .get("form_id")
                .and_then(|v| v.as_u64())
                .ok_or_else(|| DestinationError::permanent("stored form_id is missing"))?,
            lead_source_field: get("lead_source_field")?,
            pacer: Pacer::new(calls, Duration::from_secs(20)),
            token: Mutex::new(None),
            batch_size: settings
                .get("batch_size")
                .and_then(|v| v.as_u64())
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(1),
        }))
    }
}

/// One Marketo form.
pub struct MarketoDestination {
    client: reqwest::Client,
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
        let response = self.client.get(url).send().await.map_err(crate::network::transport_error)?;
        let status = response.status().as_u16();
        let json: serde_json::Value = response.json().await.unwrap_or_default();
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
        let response = self
            .client
            .post(format!("{}/rest/v1/leads/submitForm.json", self.base_url))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(crate::network::transport_error)?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or_default()))
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
