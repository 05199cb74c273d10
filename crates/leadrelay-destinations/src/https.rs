//! The `https` destination: the marketplace's HTTPS-endpoint JSON, signed with Standard Webhooks
//! headers. `webhook-id` is the lead id, identical on every retry and replay, so receivers can
//! de-duplicate.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use leadrelay_core::Lead;
use leadrelay_core::destination::{
    Connector, Delivered, Destination, DestinationError, DestinationRole, ErrorClass, FieldError, NetworkPolicy,
    PreparedSettings, SendContext, SettingField, SettingInput,
};
use leadrelay_core::signing::{WebhookSecret, signature_header};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::network::{Network, check_url};
use crate::settings::{self, KindSettings};

/// The settings of an `https` destination, as the API takes them and as they are stored.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpsSettings {
    /// The receiver's URL (a query-string token such as Power Automate's `sig=` is kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The signing secret, `whsec_<base64>`; generated when absent on create.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl KindSettings for HttpsSettings {
    const SHAPE: &'static str = "must be an object with 'url' and optionally 'secret'";

    fn type_rule(field: &str) -> Cow<'static, str> {
        match field {
            "secret" => "must be a string like whsec_<base64>".into(),
            _ => "must be a string".into(),
        }
    }
}

/// Checked `https` settings.
struct HttpsConfig {
    url: url::Url,
    secret: WebhookSecret,
}

impl HttpsSettings {
    fn check(self, mut problems: settings::Problems, allow_private: bool) -> Result<HttpsConfig, Vec<FieldError>> {
        let url = match self.url.as_deref().map(|u| check_url(u, allow_private)) {
            Some(Ok(url)) => Some(url),
            Some(Err(rule)) => {
                problems.add("url", rule);
                None
            }
            None => {
                problems.add("url", "is required");
                None
            }
        };
        let secret = match self.secret.as_deref().map(WebhookSecret::parse) {
            Some(Ok(secret)) => Some(secret),
            Some(Err(rule)) => {
                problems.add("secret", rule.to_string());
                None
            }
            None => {
                problems.add("secret", "is required");
                None
            }
        };
        problems.finish(|| HttpsConfig { url: url.expect("checked"), secret: secret.expect("checked") })
    }
}

impl HttpsConfig {
    fn to_settings(&self) -> HttpsSettings {
        HttpsSettings { url: Some(self.url.to_string()), secret: Some(self.secret.to_whsec()) }
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
    net: Network,
}

impl HttpsConnector {
    /// A connector on the shared network (no redirects, the SSRF guard).
    pub fn new(net: Network) -> Self {
        Self { net }
    }

    fn parse(&self, settings: &serde_json::Value, allow_private: bool) -> Result<HttpsConfig, Vec<FieldError>> {
        let (parsed, problems) = settings::parse::<HttpsSettings>(self.kind(), settings)?;
        parsed.check(problems, allow_private)
    }
}

const FORM: &[SettingField] = &[
    SettingField::new("url", "Endpoint URL", SettingInput::Url)
        .required()
        .help("The https address that receives each lead as a signed POST (Standard Webhooks)."),
    SettingField::new("secret", "Signing secret", SettingInput::Secret)
        .help("whsec_… to verify signatures with; leave empty and one is generated and shown once."),
];

impl Connector for HttpsConnector {
    fn kind(&self) -> &'static str {
        "https"
    }

    fn role(&self) -> DestinationRole {
        DestinationRole::StoresLeads
    }

    fn settings_form(&self) -> &'static [SettingField] {
        FORM
    }

    fn prepare(&self, settings: serde_json::Value, policy: NetworkPolicy) -> Result<PreparedSettings, Vec<FieldError>> {
        let mut settings = settings;
        let mut generated = None;
        if let Some(map) = settings.as_object_mut()
            && map.get("secret").is_none_or(serde_json::Value::is_null)
        {
            let mut bytes = vec![0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            let s = WebhookSecret::from_bytes(bytes).expect("32 bytes is a valid length").to_whsec();
            map.insert("secret".to_owned(), serde_json::Value::String(s.clone()));
            generated = Some(s);
        }
        let config = self.parse(&settings, self.net.allows_private(policy))?;
        Ok(PreparedSettings { stored: settings::to_stored(&config.to_settings()), generated_secret: generated })
    }

    fn build(&self, settings: &serde_json::Value) -> Result<Arc<dyn Destination>, DestinationError> {
        let config = self.parse(settings, self.net.allow_private()).map_err(settings::stored_error)?;
        Ok(Arc::new(HttpsDestination { net: self.net.clone(), url: config.url, secrets: vec![config.secret] }))
    }
}

/// One configured https endpoint.
pub struct HttpsDestination {
    net: Network,
    url: url::Url,
    secrets: Vec<WebhookSecret>,
}

#[async_trait::async_trait]
impl Destination for HttpsDestination {
    async fn send(&self, lead: &Lead, ctx: SendContext) -> Result<Delivered, DestinationError> {
        let body = MarketplaceLeadOut::from_lead(lead).to_bytes();
        let msg_id = lead.id.as_str();
        let ts = ctx.now.as_secs();
        let request = self
            .net
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature_header(&self.secrets, msg_id, ts, &body))
            .body(body);
        // Only an excerpt is kept, so only an excerpt is read.
        let max = self.net.options().excerpt_bytes;
        let answer = self.net.send(request, max).await?;
        classify(answer.status, answer.retry_after(), answer.excerpt(max), &self.net.options().permanent_statuses)
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
    Err(DestinationError {
        class,
        status: Some(status),
        message,
        retry_after,
        excerpt,
        hint: Some(hint(status).to_owned()),
    })
}

/// What the publisher should do about a webhook receiver's answer.
pub fn hint(status: u16) -> &'static str {
    match status {
        401 | 403 => {
            "the receiver refused the credentials: check the secret, or the token in the URL (for a Power Automate \
             trigger, copy the whole URL including its sig= parameter)"
        }
        404 => "the receiver has no such path: check the URL's path",
        410 => "the receiver says this endpoint is gone: point the destination at its new URL",
        300..=399 => "the URL redirects, and redirects are not followed: use the final URL",
        400 | 422 => "the receiver rejected the lead's content: check that it accepts the marketplace's JSON format",
        429 => "the receiver is rate limiting: leads will be retried when it allows",
        500.. => "the receiver failed while handling the lead: check its logs; leads will be retried",
        _ => "the receiver refused the lead: check the destination's URL and the receiver's logs",
    }
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
        let p = crate::NetworkOptions::default().permanent_statuses;
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
    fn settings_are_checked_and_a_missing_secret_is_generated() {
        let c = HttpsConnector::new(Network::new(crate::NetworkOptions::default()));
        let p = NetworkPolicy::default();
        let ok = c.prepare(serde_json::json!({"url": "https://example.com/hook"}), p).unwrap();
        assert!(ok.generated_secret.as_deref().unwrap().starts_with("whsec_"));
        let errs =
            c.prepare(serde_json::json!({"url": "http://127.0.0.1/", "secret": "nope", "extra": 1}), p).unwrap_err();
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["settings.extra", "settings.url", "settings.secret"]);
    }
}
