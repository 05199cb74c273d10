//! The `salesforce` destination: a Web-to-Lead form post with the org id (`oid`), the field
//! names of the marketplace's own Salesforce test lead, and `encoding=UTF-8` in both the query
//! string and the body.
//!
//! Web-to-Lead answers 200 whether or not it creates the lead (validation rules, required
//! picklists, reCAPTCHA and duplicate rules drop leads silently and report by email only), so a
//! 2xx is "accepted, unverified". It also caps an org at 500 posts per 24 hours: posts beyond the
//! cap are held (throttled, without using up an attempt) until the window allows them.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use leadrelay_core::Lead;
use leadrelay_core::destination::{
    Connector, Delivered, Destination, DestinationError, DestinationRole, ErrorClass, FieldError, NetworkPolicy,
    PreparedSettings, SendContext, SettingField, SettingInput,
};
use serde::{Deserialize, Serialize};

use crate::network::{Network, check_url};
use crate::pacing::Pacer;
use crate::settings::{self, KindSettings};

/// Salesforce's production Web-to-Lead servlet.
pub const DEFAULT_ENDPOINT: &str = "https://webto.salesforce.com/servlet/servlet.WebToLead?encoding=UTF-8";
/// Salesforce's documented Web-to-Lead limit per org and 24 hours.
pub const DEFAULT_DAILY_CAP: u32 = 500;
const WINDOW: Duration = Duration::from_secs(24 * 3600);

/// What a 2xx from Web-to-Lead cannot tell, said wherever a send "succeeds".
pub const UNVERIFIED: &str = "Web-to-Lead accepted the post but never confirms that a lead was created: search \
     Salesforce Leads for it (test leads: MSFT_TEST). If it is missing, turn off \"Include reCAPTCHA in HTML\", make \
     required picklist fields optional text fields, and check validation and duplicate rules and the Default Lead \
     Creator's email";

/// The form fields of a lead, in the order of the marketplace's test lead. Single-line fields
/// lose CR/LF (a form field cannot hold them); the description keeps its line breaks.
pub fn form_fields(lead: &Lead, oid: &str) -> Vec<(&'static str, String)> {
    let c = &lead.customer;
    let line = |v: &Option<String>| v.as_deref().unwrap_or("").replace(['\r', '\n'], " ");
    vec![
        ("oid", oid.to_owned()),
        ("first_name", line(&c.first_name)),
        ("last_name", line(&c.last_name)),
        ("email", line(&c.email)),
        ("company", line(&c.company)),
        ("title", line(&c.title)),
        ("phone", line(&c.phone)),
        ("country", line(&c.country)),
        ("description", lead.description.clone().unwrap_or_default()),
        ("lead_source", lead_source(lead)),
        ("encoding", "UTF-8".to_owned()),
    ]
}

/// `Source-Action|Offer`; for a test lead the source and action are its marker, as the
/// marketplace's own test lead shows, and the offer part is the offer's name.
fn lead_source(lead: &Lead) -> String {
    let marker = lead.description.as_deref().filter(|d| leadrelay_core::test_lead::is_marked(d));
    match marker {
        Some(m) if lead.is_test => format!("{m}-{m}|{}", lead.offer_title.as_deref().unwrap_or("")),
        _ => lead.lead_source_string(),
    }
}

/// An org id: 15 or 18 letters and digits starting with `00D`.
pub fn is_org_id(s: &str) -> bool {
    (s.len() == 15 || s.len() == 18) && s.starts_with("00D") && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The settings of a `salesforce` destination, as the API takes them and as they are stored.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SalesforceSettings {
    /// The org id from the Web-to-Lead form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oid: Option<String>,
    /// The Web-to-Lead servlet (a sandbox's, or a test fake's); production's by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Posts per 24 hours the org accepts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_cap: Option<u32>,
}

impl KindSettings for SalesforceSettings {
    const SHAPE: &'static str = "must be an object with 'oid' and optionally 'endpoint'";

    fn type_rule(field: &str) -> Cow<'static, str> {
        match field {
            "daily_cap" => "must be a whole number of at least 1".into(),
            _ => "must be a string".into(),
        }
    }
}

/// Checked `salesforce` settings.
struct SalesforceConfig {
    oid: String,
    endpoint: url::Url,
    daily_cap: u32,
}

impl SalesforceSettings {
    fn check(self, mut problems: settings::Problems, allow_private: bool) -> Result<SalesforceConfig, Vec<FieldError>> {
        let oid = match self.oid.as_deref().map(str::trim) {
            Some(o) if is_org_id(o) => Some(o.to_owned()),
            Some(_) => {
                problems.add(
                    "oid",
                    "must be the organization id from the Web-to-Lead form: 15 or 18 letters and digits starting with 00D",
                );
                None
            }
            None => {
                problems.add("oid", "is required (the oid of your Web-to-Lead form)");
                None
            }
        };
        let endpoint = match check_url(self.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT), allow_private) {
            Ok(mut url) => {
                if !url.query_pairs().any(|(k, _)| k == "encoding") {
                    url.query_pairs_mut().append_pair("encoding", "UTF-8");
                }
                Some(url)
            }
            Err(rule) => {
                problems.add("endpoint", rule);
                None
            }
        };
        let daily_cap = self.daily_cap.unwrap_or(DEFAULT_DAILY_CAP);
        if daily_cap == 0 {
            problems.add("daily_cap", "must be a whole number of at least 1");
        }
        problems.finish(|| SalesforceConfig {
            oid: oid.expect("checked"),
            endpoint: endpoint.expect("checked"),
            daily_cap,
        })
    }
}

impl SalesforceConfig {
    fn to_settings(&self) -> SalesforceSettings {
        SalesforceSettings {
            oid: Some(self.oid.clone()),
            endpoint: Some(self.endpoint.to_string()),
            daily_cap: Some(self.daily_cap),
        }
    }
}

/// The `salesforce` connector.
pub struct SalesforceConnector {
    net: Network,
}

impl SalesforceConnector {
    /// A connector on the shared network.
    pub fn new(net: Network) -> Self {
        Self { net }
    }

    fn parse(&self, settings: &serde_json::Value, allow_private: bool) -> Result<SalesforceConfig, Vec<FieldError>> {
        let (parsed, problems) = settings::parse::<SalesforceSettings>(self.kind(), settings)?;
        parsed.check(problems, allow_private)
    }
}

const FORM: &[SettingField] = &[
    SettingField::new("oid", "Organization id (oid)", SettingInput::Text)
        .required()
        .help("The oid of your Web-to-Lead form: 15 or 18 characters starting with 00D."),
    SettingField::new("endpoint", "Web-to-Lead endpoint", SettingInput::Url)
        .help("A sandbox's servlet URL; production's by default."),
    SettingField::new("daily_cap", "Daily cap", SettingInput::Number)
        .help("Leads per day Salesforce accepts (500 by default); the rest wait for the next day."),
];

impl Connector for SalesforceConnector {
    fn kind(&self) -> &'static str {
        "salesforce"
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
        Ok(Arc::new(SalesforceDestination {
            net: self.net.clone(),
            pacer: Pacer::new(config.daily_cap, WINDOW),
            endpoint: config.endpoint,
            oid: config.oid,
        }))
    }
}

/// One configured Web-to-Lead form.
pub struct SalesforceDestination {
    net: Network,
    endpoint: url::Url,
    oid: String,
    pacer: Pacer,
}

#[async_trait::async_trait]
impl Destination for SalesforceDestination {
    async fn send(&self, lead: &Lead, ctx: SendContext) -> Result<Delivered, DestinationError> {
        if let Err(wait) = self.pacer.take(ctx.now) {
            return Err(DestinationError {
                class: ErrorClass::Throttled,
                status: None,
                message: "held back: the org's Web-to-Lead daily cap is reached".to_owned(),
                retry_after: Some(wait),
                excerpt: None,
                hint: Some(
                    "Salesforce accepts 500 Web-to-Lead posts per 24 hours; leads wait here until the window allows \
                     them. Ask Salesforce support to raise the cap, then set daily_cap to match"
                        .to_owned(),
                ),
            });
        }
        let body =
            url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form_fields(lead, &self.oid)).finish();
        let request = self
            .net
            .post(self.endpoint.clone())
            .header("content-type", "application/x-www-form-urlencoded; charset=UTF-8")
            .body(body);
        // Web-to-Lead answers an HTML page that says nothing reliable: an excerpt is all we keep.
        let max = self.net.options().excerpt_bytes;
        let answer = self.net.send(request, max).await?;
        classify(answer.status, answer.retry_after(), answer.excerpt(max))
    }
}

/// Web-to-Lead's answers: 2xx accepted (unverified), 5xx and 429 retried, anything else a
/// configuration problem.
pub fn classify(
    status: u16,
    retry_after: Option<Duration>,
    excerpt: Option<String>,
) -> Result<Delivered, DestinationError> {
    let (class, message, hint) = match status {
        200..=299 => return Ok(Delivered { status: Some(status), excerpt, note: Some(UNVERIFIED.to_owned()) }),
        429 | 500..=599 => (
            ErrorClass::Transient,
            format!("Web-to-Lead answered {status}"),
            "Salesforce is unavailable; leads will be retried",
        ),
        300..=399 => (
            ErrorClass::Permanent,
            format!("Web-to-Lead answered {status} (a redirect)"),
            "the endpoint redirects: use Salesforce's Web-to-Lead URL (https://webto.salesforce.com/servlet/servlet.WebToLead) or your sandbox's",
        ),
        _ => (
            ErrorClass::Permanent,
            format!("Web-to-Lead answered {status}"),
            "the endpoint refused the post: check the endpoint URL and that Web-to-Lead is enabled for the org",
        ),
    };
    Err(DestinationError { class, status: Some(status), message, retry_after, excerpt, hint: Some(hint.to_owned()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadrelay_core::{LeadDraft, LeadId, LeadRules, PublisherId, Timestamp};

    #[test]
    fn org_ids_follow_salesforce_shapes() {
        assert!(is_org_id("00Do0000000ZHog"));
        assert!(is_org_id("00Do0000000ZHogEAG"));
        assert!(!is_org_id("00Xo0000000ZHog"));
        assert!(!is_org_id("00Do0000"));
    }

    #[test]
    fn the_test_lead_uses_the_marker_as_source_and_action() {
        let at = Timestamp::from_millis(1_000);
        let marker = leadrelay_core::test_lead::marker_at(at);
        let draft = LeadDraft {
            publisher: Some(PublisherId::parse("contoso").unwrap()),
            lead_source: Some("AzureMarketplace".into()),
            action_code: Some("INS".into()),
            offer_title: Some("Contoso CRM".into()),
            customer: leadrelay_core::test_lead::test_customer(at),
            description: Some(marker.clone()),
            is_test: true,
            ..LeadDraft::default()
        };
        let lead = Lead::from_draft(draft, LeadId::generate(at), at, &LeadRules::default()).unwrap();
        let fields = form_fields(&lead, "00Do0000000ZHog");
        let get = |k: &str| fields.iter().find(|(n, _)| *n == k).unwrap().1.clone();
        assert_eq!(get("lead_source"), format!("{marker}-{marker}|Contoso CRM"));
        assert_eq!(get("email"), format!("{marker}@test.com"));
        assert_eq!(get("encoding"), "UTF-8");
        assert_eq!(
            fields.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            [
                "oid",
                "first_name",
                "last_name",
                "email",
                "company",
                "title",
                "phone",
                "country",
                "description",
                "lead_source",
                "encoding"
            ]
        );
    }

    #[test]
    fn any_2xx_is_accepted_but_unverified_and_other_answers_are_classified() {
        let ok = classify(200, None, Some("<html>".into())).unwrap();
        assert!(ok.note.unwrap().contains("MSFT_TEST"));
        assert_eq!(classify(503, None, None).unwrap_err().class, ErrorClass::Transient);
        assert_eq!(classify(302, None, None).unwrap_err().class, ErrorClass::Permanent);
        assert_eq!(classify(404, None, None).unwrap_err().class, ErrorClass::Permanent);
    }
}
