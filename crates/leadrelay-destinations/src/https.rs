//! The `https` destination: the marketplace's HTTPS-endpoint JSON, signed with Standard Webhooks
//! headers. `webhook-id` is the lead id, identical on every retry and replay, so receivers can
//! de-duplicate.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use leadrelay_core::Lead;
use leadrelay_core::destination::{
    Connector, Delivered, Destination, DestinationError, ErrorClass, FieldError, NetworkPolicy, PreparedSettings,
    SendContext,
};
use leadrelay_core::signing::{WebhookSecret, signature_header};
use rand::RngCore;
use serde::Serialize;

use crate::network::check_url;

/// Options shared by every https destination.
#[derive(Debug, Clone)]
pub struct HttpsOptions {
    /// Allow private and loopback addresses and plain http.
    pub allow_private: bool,
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Statuses that dead-letter at once (SPEC §4 default: 400, 401, 403, 404, 422).
    pub permanent_statuses: Vec<u16>,
    /// Bytes of response body kept in the attempt log.
    pub excerpt_bytes: usize,
}

impl Default for HttpsOptions {
    fn default() -> Self {
        Self {
            allow_private: false,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            permanent_statuses: vec![400, 401, 403, 404, 422],
            excerpt_bytes: 512,
        }
    }
}

/// The marketplace's HTTPS-endpoint JSON, field for field as documented (PascalCase, every
/// leaf a string, absent values as empty strings).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MarketplaceLeadOut<'a> {
    /// Customer details.
    pub user_details: UserDetailsOut<'a>,
    /// The source (bare, as the documented example shows).
    pub lead_source: &'a str,
    /// The action code.
    pub action_code: &'a str,
    /// The offer's display name.
    pub offer_title: &'a str,
    /// Notes / campaign text / test marker.
    pub description: &'a str,
}

/// `UserDetails` of [`MarketplaceLeadOut`].
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserDetailsOut<'a> {
    /// First name.
    pub first_name: &'a str,
    /// Last name.
    pub last_name: &'a str,
    /// Email.
    pub email: &'a str,
    /// Phone.
    pub phone: &'a str,
    /// Country.
    pub country: &'a str,
    /// Company.
    pub company: &'a str,
    /// Title.
    pub title: &'a str,
}

impl<'a> MarketplaceLeadOut<'a> {
    /// The wire form of a lead.
    pub fn from_lead(lead: &'a Lead) -> Self {
        let c = &lead.customer;
        let s = |v: &'a Option<String>| v.as_deref().unwrap_or("");
        Self {
            user_details: UserDetailsOut {
                first_name: s(&c.first_name),
                last_name: s(&c.last_name),
                email: s(&c.email),
                phone: s(&c.phone),
                country: s(&c.country),
                company: s(&c.company),
                title: s(&c.title),
            },
            lead_source: lead.source.as_str(),
            action_code: lead.action.as_ref().map_or("", |a| a.as_str()),
            offer_title: s(&lead.offer_title),
            description: s(&lead.description),
        }
    }

    /// The exact bytes that are signed and sent.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("plain strings always serialise")
    }
}

/// The `https` connector.
pub struct HttpsConnector {
    client: reqwest::Client,
    options: Arc<HttpsOptions>,
}

impl HttpsConnector {
    /// A connector whose client refuses redirects and non-global addresses (unless allowed).
    pub fn new(options: HttpsOptions) -> Self {
        let client = crate::network::client(&options);
        Self { client, options: Arc::new(options) }
    }
}

impl Connector for HttpsConnector {
    fn kind(&self) -> &'static str {
        "https"
    }

    fn role(&self) -> leadrelay_core::destination::DestinationRole {
        leadrelay_core::destination::DestinationRole::StoresLeads
    }

    fn secret_fields(&self) -> &'static [&'static str] {
        &["secret"]
    }

    fn prepare(&self, settings: serde_json::Value, policy: NetworkPolicy) -> Result<PreparedSettings, Vec<FieldError>> {
        let Some(map) = settings.as_object() else {
            return Err(vec![FieldError::new("settings", "must be an object with 'url' and optionally 'secret'")]);
        };
        let mut errors = crate::unknown_keys(map, &["url", "secret"], self.kind());
        let url = match map.get("url") {
            Some(serde_json::Value::String(u)) => {
                match check_url(u, policy.allow_private || self.options.allow_private) {
                    Ok(url) => Some(url),
                    Err(rule) => {
                        errors.push(FieldError::new("settings.url", rule));
                        None
                    }
                }
            }
            Some(_) => {
                errors.push(FieldError::new("settings.url", "must be a string"));
                None
            }
            None => {
                errors.push(FieldError::new("settings.url", "is required"));
                None
            }
        };
        let (secret, generated) = match map.get("secret") {
            None | Some(serde_json::Value::Null) => {
                let mut bytes = vec![0u8; 32];
                rand::rng().fill_bytes(&mut bytes);
                let s = WebhookSecret::from_bytes(bytes).expect("32 bytes is a valid length").to_whsec();
                (Some(s.clone()), Some(s))
            }
            Some(serde_json::Value::String(s)) => match WebhookSecret::parse(s) {
                Ok(secret) => (Some(secret.to_whsec()), None),
                Err(rule) => {
                    errors.push(FieldError::new("settings.secret", rule.to_string()));
                    (None, None)
                }
            },
            Some(_) => {
                errors.push(FieldError::new("settings.secret", "must be a string like whsec_<base64>"));
                (None, None)
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let stored = serde_json::json!({ "url": url.map(String::from), "secret": secret });
        Ok(PreparedSettings { stored, generated_secret: generated })
    }

    fn build(&self, settings: &serde_json::Value) -> Result<Arc<dyn Destination>, DestinationError> {
        let url = settings
            .get("url")
            .and_then(|v| v.as_str())
            .ok_or_else(|| DestinationError::permanent("stored url is missing"))?;
        let url = url::Url::parse(url).map_err(|_| DestinationError::permanent("stored url is not valid"))?;
        let secret = settings
            .get("secret")
            .and_then(|v| v.as_str())
            .and_then(|s| WebhookSecret::parse(s).ok())
            .ok_or_else(|| DestinationError::permanent("stored secret is not valid"))?;
        Ok(Arc::new(HttpsDestination {
            client: self.client.clone(),
            url,
            secrets: vec![secret],
            options: Arc::clone(&self.options),
        }))
    }
}

/// One configured https endpoint.
pub struct HttpsDestination {
    client: reqwest::Client,
    url: url::Url,
    secrets: Vec<WebhookSecret>,
    options: Arc<HttpsOptions>,
}

#[async_trait::async_trait]
impl Destination for HttpsDestination {
    async fn send(&self, lead: &Lead, ctx: SendContext) -> Result<Delivered, DestinationError> {
        if !self.options.allow_private {
            // IP-literal hosts never reach the resolver, so they are checked here.
            if let Err(rule) = check_url(self.url.as_str(), false) {
                return Err(DestinationError::permanent(format!("destination url {rule}")));
            }
        }
        let body = MarketplaceLeadOut::from_lead(lead).to_bytes();
        let msg_id = lead.id.as_str();
        let ts = ctx.now.as_secs();
        let response = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature_header(&self.secrets, msg_id, ts, &body))
            .body(body)
            .send()
            .await
            .map_err(crate::network::transport_error)?;
        let status = response.status().as_u16();
        let retry_after =
            response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let bytes = response.bytes().await.unwrap_or_default();
        let excerpt = crate::excerpt(&bytes, self.options.excerpt_bytes);
        classify(status, retry_after, excerpt, &self.options.permanent_statuses)
    }
}

/// Turns a response status into success or a classified error.
pub fn classify(
    status: u16,
    retry_after: Option<Duration>,
    excerpt: Option<String>,
    permanent: &[u16],
) -> Result<Delivered, DestinationError> {
    if (200..300).contains(&status) {
        return Ok(Delivered { status: Some(status), excerpt, note: None });
    }
    let reason = reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
    let (class, message) = match status {
        410 => (
            ErrorClass::Gone,
            format!("receiver answered {status} {reason}: it wants no more leads; destination disabled"),
        ),
        429 | 503 if retry_after.is_some() => {
            (ErrorClass::Throttled, format!("receiver answered {status} {reason} with Retry-After"))
        }
        300..=399 => (
            ErrorClass::Transient,
            format!("receiver answered {status} {reason}: redirects are not followed; update the URL"),
        ),
        s if permanent.contains(&s) => (ErrorClass::Permanent, format!("receiver answered {status} {reason}")),
        _ => (ErrorClass::Transient, format!("receiver answered {status} {reason}")),
    };
    Err(DestinationError { class, status: Some(status), message, retry_after, excerpt, hint: None })
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadrelay_core::{LeadDraft, LeadId, LeadRules, PublisherId, Timestamp};

    fn documented_lead() -> Lead {
        let draft = LeadDraft {
            publisher: Some(PublisherId::parse("contoso").unwrap()),
            lead_source: Some("AzureMarketplace".into()),
            action_code: Some("INS".into()),
            offer_title: Some("Test Microsoft".into()),
            description: Some("Test run through Power Automate".into()),
            customer: leadrelay_core::Customer::from_raw(
                Some("Some".into()),
                Some("One".into()),
                Some("someone@contoso.com".into()),
                Some("16175555555".into()),
                Some("USA".into()),
                Some("Contoso".into()),
                Some("Esquire".into()),
            ),
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

    #[test]
    fn the_body_is_the_documented_example_byte_for_byte_in_field_names_and_values() {
        let lead = documented_lead();
        let body = MarketplaceLeadOut::from_lead(&lead).to_bytes();
        let expected = serde_json::json!({
            "UserDetails": {"FirstName": "Some", "LastName": "One", "Email": "someone@contoso.com", "Phone": "16175555555",
                            "Country": "USA", "Company": "Contoso", "Title": "Esquire"},
            "LeadSource": "AzureMarketplace", "ActionCode": "INS", "OfferTitle": "Test Microsoft",
            "Description": "Test run through Power Automate"
        });
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap(), expected);
        assert!(
            String::from_utf8(body).unwrap().starts_with(r#"{"UserDetails":{"FirstName":"Some","LastName":"One","#)
        );
    }

    #[test]
    fn responses_are_classified_as_the_spec_says() {
        let p = HttpsOptions::default().permanent_statuses;
        assert!(classify(204, None, None, &p).is_ok());
        let class = |s, ra| classify(s, ra, None, &p).unwrap_err().class;
        assert_eq!(class(410, None), ErrorClass::Gone);
        assert_eq!(class(404, None), ErrorClass::Permanent);
        assert_eq!(class(401, None), ErrorClass::Permanent);
        assert_eq!(class(500, None), ErrorClass::Transient);
        assert_eq!(class(503, None), ErrorClass::Transient);
        assert_eq!(class(503, Some(Duration::from_secs(3))), ErrorClass::Throttled);
        assert_eq!(class(429, Some(Duration::from_secs(3))), ErrorClass::Throttled);
        assert_eq!(class(302, None), ErrorClass::Transient);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn settings_are_checked_and_a_missing_secret_is_generated() {
        let c = HttpsConnector::new(HttpsOptions::default());
        let p = NetworkPolicy::default();
        let ok = c.prepare(serde_json::json!({"url": "https://example.com/hook"}), p).unwrap();
        assert!(ok.generated_secret.as_deref().unwrap().starts_with("whsec_"));
        let errs =
            c.prepare(serde_json::json!({"url": "http://127.0.0.1/", "secret": "nope", "extra": 1}), p).unwrap_err();
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["settings.extra", "settings.url", "settings.secret"]);
    }
}
