//! The `email` destination: a notification to the publisher's semicolon-separated contact list
//! over SMTP (STARTTLS or implicit TLS with rustls, AUTH). By default the message holds no
//! personal data (the marketplace refuses to send lead data over email, and `.edu` leads carry
//! none): offer, action, stage, source, time and a link to the lead.

use std::sync::Arc;
use std::time::Duration;

use leadrelay_core::Lead;
use leadrelay_core::destination::{
    Connector, Delivered, Destination, DestinationError, ErrorClass, FieldError, NetworkPolicy, Notice,
    PreparedSettings, SendContext,
};
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain text: only for a local relay (needs `delivery.allow_private_destinations`).
    None,
    /// Plain greeting, then STARTTLS (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

impl TlsMode {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "starttls" => Some(Self::Starttls),
            "tls" => Some(Self::Tls),
            _ => None,
        }
    }
}

/// Parses the contact list: `;`, `,` or newlines between addresses; blanks dropped; each checked;
/// duplicates (case-insensitive) dropped; order kept.
///
/// # Errors
/// The first address that is not one, or an empty list.
pub fn parse_recipients(raw: &str) -> Result<Vec<Mailbox>, String> {
    let mut out: Vec<Mailbox> = Vec::new();
    for (i, part) in raw.split([';', ',', '\n', '\r']).map(str::trim).filter(|p| !p.is_empty()).enumerate() {
        let mailbox: Mailbox = part.parse().map_err(|_| format!("entry {} is not an email address", i + 1))?;
        let address: &str = mailbox.email.as_ref();
        if !out.iter().any(|m| AsRef::<str>::as_ref(&m.email).eq_ignore_ascii_case(address)) {
            out.push(mailbox);
        }
    }
    if out.is_empty() {
        return Err("must list at least one address (separate several with ';')".to_owned());
    }
    Ok(out)
}

/// The subject: `New marketplace lead: <offer> (<action>)`, `[TEST] ` first for test leads.
pub fn subject(lead: &Lead) -> String {
    let offer = lead.offer_title.as_deref().or(lead.offer.as_ref().map(|o| o.as_str())).unwrap_or("unknown offer");
    let action = lead.action.as_ref().map_or("no action code", |a| a.as_str());
    let prefix = if lead.is_test { "[TEST] " } else { "" };
    format!("{prefix}New marketplace lead: {offer} ({action})").replace(['\r', '\n'], " ")
}

/// The plain-text body. Personal data only when `include_personal_data` and not withheld.
pub fn body(lead: &Lead, link_base: &str, include_personal_data: bool) -> String {
    let mut b = String::new();
    let offer_id = lead.offer.as_ref().map_or(String::new(), |o| format!(" ({o})"));
    b.push_str("A new marketplace lead arrived.\n\n");
    b.push_str(&format!("Offer:    {}{offer_id}\n", lead.offer_title.as_deref().unwrap_or("unknown")));
    b.push_str(&format!("Action:   {}\n", lead.action.as_ref().map_or("-", |a| a.as_str())));
    b.push_str(&format!("Stage:    {}\n", lead.stage));
    b.push_str(&format!("Source:   {}\n", lead.source));
    b.push_str(&format!("Received: {}\n", lead.received_at));
    b.push_str(&format!("Lead:     {}\n", lead.id));
    b.push_str(&format!("Open it:  {}/v1/leads/{}\n", link_base.trim_end_matches('/'), lead.id));
    if lead.is_test {
        let marker = [lead.description.as_deref(), lead.customer.first_name.as_deref()]
            .into_iter()
            .flatten()
            .find(|v| leadrelay_core::test_lead::is_marked(v))
            .unwrap_or("MSFT_TEST");
        b.push_str(&format!("\nThis is a test lead: {marker}\n"));
    }
    if lead.pii_withheld {
        b.push_str("\nThe customer's personal data was withheld (privacy rule for their email domain); only this notice is sent.\n");
    } else if include_personal_data {
        let c = &lead.customer;
        let v = |x: &Option<String>| x.clone().unwrap_or_default();
        b.push_str("\nCustomer\n");
        b.push_str(&format!("Name:     {} {}\n", v(&c.first_name), v(&c.last_name)));
        b.push_str(&format!("Email:    {}\n", v(&c.email)));
        b.push_str(&format!("Phone:    {}\n", v(&c.phone)));
        b.push_str(&format!("Company:  {}\n", v(&c.company)));
        b.push_str(&format!("Title:    {}\n", v(&c.title)));
        b.push_str(&format!("Country:  {}\n", v(&c.country)));
    } else {
        b.push_str("\nThe customer's details are in leadrelay (this message carries no personal data).\n");
    }
    b
}

/// The `email` connector.
pub struct EmailConnector {
    allow_private: bool,
    timeout: Duration,
    link_base: String,
}

impl EmailConnector {
    /// A connector whose messages link to leads under `link_base` (e.g. `https://leads.example.com`).
    pub fn new(options: &crate::https::HttpsOptions, link_base: String) -> Self {
        crate::install_crypto_provider();
        Self { allow_private: options.allow_private, timeout: options.request_timeout, link_base }
    }
}

fn text<'a>(
    map: &'a serde_json::Map<String, serde_json::Value>,
    key: &str,
    errors: &mut Vec<FieldError>,
) -> Option<&'a str> {
    match map.get(key) {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.as_str()),
        Some(_) => {
            errors.push(FieldError::new(format!("settings.{key}"), "must be a string"));
            None
        }
    }
}

impl Connector for EmailConnector {
    fn kind(&self) -> &'static str {
        "email"
    }

    fn role(&self) -> leadrelay_core::destination::DestinationRole {
        leadrelay_core::destination::DestinationRole::NotifiesPeople
    }

    fn secret_fields(&self) -> &'static [&'static str] {
        &["password"]
    }

    fn prepare(&self, settings: serde_json::Value, policy: NetworkPolicy) -> Result<PreparedSettings, Vec<FieldError>> {
        const KEYS: [&str; 9] =
            ["host", "port", "tls", "username", "password", "from", "to", "include_personal_data", "ca_file"];
        let Some(map) = settings.as_object() else {
            return Err(vec![FieldError::new("settings", "must be an object with host, port, tls, from and to")]);
        };
        let allow_private = policy.allow_private || self.allow_private;
        let mut errors = crate::unknown_keys(map, &KEYS, self.kind());
        match text(map, "host", &mut errors) {
            None => errors.push(FieldError::new("settings.host", "is required (the SMTP server's host name)")),
            Some(h) if h.trim().is_empty() => errors.push(FieldError::new("settings.host", "is required")),
            Some(h) => {
                if !allow_private && crate::network::check_url(&format!("https://{h}/"), false).is_err() {
                    errors.push(FieldError::new(
                        "settings.host",
                        "points to an address that is not publicly routable (set delivery.allow_private_destinations to allow it)",
                    ));
                }
            }
        }
        match map.get("port") {
            Some(p) if p.as_u64().is_some_and(|n| (1..=65_535).contains(&n)) => {}
            _ => errors
                .push(FieldError::new("settings.port", "must be a port number, usually 587 (starttls) or 465 (tls)")),
        }
        let tls = match text(map, "tls", &mut errors).map(TlsMode::parse) {
            Some(Some(m)) => Some(m),
            None => Some(TlsMode::Starttls),
            Some(None) => {
                errors.push(FieldError::new("settings.tls", "must be none, starttls or tls"));
                None
            }
        };
        if tls == Some(TlsMode::None) && !allow_private {
            errors.push(FieldError::new(
                "settings.tls",
                "none sends mail and passwords unencrypted: use starttls or tls",
            ));
        }
        let (user, password) = (text(map, "username", &mut errors), text(map, "password", &mut errors));
        if user.is_some() != password.is_some() {
            errors.push(FieldError::new("settings.password", "username and password go together"));
        }
        match text(map, "from", &mut errors).map(|f| f.parse::<Mailbox>()) {
            Some(Ok(_)) => {}
            Some(Err(_)) => errors.push(FieldError::new("settings.from", "is not an email address")),
            None => errors.push(FieldError::new("settings.from", "is required (the sender address)")),
        }
        match text(map, "to", &mut errors) {
            Some(to) => {
                if let Err(rule) = parse_recipients(to) {
                    errors.push(FieldError::new("settings.to", rule));
                }
            }
            None => errors.push(FieldError::new("settings.to", "is required: one or more addresses separated by ';'")),
        }
        if map.get("include_personal_data").is_some_and(|v| !v.is_boolean() && !v.is_null()) {
            errors.push(FieldError::new("settings.include_personal_data", "must be true or false"));
        }
        if let Some(path) = text(map, "ca_file", &mut errors) {
            match std::fs::read(path) {
                Ok(pem) if Certificate::from_pem(&pem).is_ok() => {}
                _ => errors.push(FieldError::new(
                    "settings.ca_file",
                    "must be a readable PEM file with the CA certificate to trust",
                )),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut stored = settings.clone();
        stored["tls"] = serde_json::json!(map.get("tls").and_then(|v| v.as_str()).unwrap_or("starttls"));
        stored["include_personal_data"] =
            serde_json::json!(map.get("include_personal_data").and_then(|v| v.as_bool()).unwrap_or(false));
        Ok(PreparedSettings { stored, generated_secret: None })
    }

    fn build(&self, settings: &serde_json::Value) -> Result<Arc<dyn Destination>, DestinationError> {
        let broken = || DestinationError::permanent("stored email settings are not valid");
        let get = |k: &str| settings.get(k).and_then(|v| v.as_str());
        let host = get("host").ok_or_else(broken)?;
        let port =
            settings.get("port").and_then(|v| v.as_u64()).and_then(|p| u16::try_from(p).ok()).ok_or_else(broken)?;
        let mode = get("tls").and_then(TlsMode::parse).ok_or_else(broken)?;
        let tls_params = || -> Result<TlsParameters, DestinationError> {
            let mut b = TlsParameters::builder(host.to_owned());
            if let Some(path) = get("ca_file") {
                let pem = std::fs::read(path).map_err(|_| DestinationError::permanent("the ca_file cannot be read"))?;
                b = b.add_root_certificate(Certificate::from_pem(&pem).map_err(|_| broken())?);
            }
            b.build_rustls().map_err(|_| broken())
        };
        let mut builder = match mode {
            TlsMode::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            TlsMode::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host).tls(Tls::Required(tls_params()?))
            }
            TlsMode::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host).tls(Tls::Wrapper(tls_params()?))
            }
        }
        .port(port)
        .timeout(Some(self.timeout));
        if let (Some(u), Some(p)) = (get("username"), get("password")) {
            builder = builder.credentials(Credentials::new(u.to_owned(), p.to_owned()));
        }
        let from: Mailbox = get("from").and_then(|f| f.parse().ok()).ok_or_else(broken)?;
        let to = parse_recipients(get("to").ok_or_else(broken)?).map_err(|_| broken())?;
        Ok(Arc::new(EmailDestination {
            transport: builder.build(),
            from,
            to,
            include_personal_data: settings.get("include_personal_data").and_then(|v| v.as_bool()).unwrap_or(false),
            link_base: self.link_base.clone(),
        }))
    }
}

/// One configured notification list.
pub struct EmailDestination {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    include_personal_data: bool,
    link_base: String,
}

/// Subject and body of a notice (no personal data: ids, names of destinations, errors).
pub fn notice_text(notice: &Notice, link_base: &str) -> (String, String) {
    let base = link_base.trim_end_matches('/');
    match notice {
        Notice::DeadLetter { lead, destination, destination_name, error, hint } => (
            format!("Lead delivery failed: {destination_name}"),
            format!(
                "leadrelay gave up delivering a lead to the destination \"{destination_name}\".\n\n\
                 Lead:     {lead}\nOpen it:  {base}/v1/leads/{lead}\nError:    {error}\nFix:      {hint}\n\n\
                 The lead is kept. Once the destination is fixed, send every failed lead again with\n\
                 POST {base}/v1/destinations/{destination}/replay {{\"only_dead\": true}}\n"
            ),
        ),
        Notice::Disabled { destination, destination_name, reason } => (
            format!("Destination disabled: {destination_name}"),
            format!(
                "leadrelay disabled the destination \"{destination_name}\": {reason}.\n\n\
                 New leads for it are kept and wait. Once it is fixed, enable it with\n\
                 POST {base}/v1/destinations/{destination}/enable and the waiting leads are delivered.\n"
            ),
        ),
    }
}

impl EmailDestination {
    async fn deliver(&self, subject: String, body: String, message_id: String) -> Result<u16, DestinationError> {
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(subject.replace(['\r', '\n'], " "))
            .message_id(Some(message_id))
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message =
            message.body(body).map_err(|_| DestinationError::permanent("the notification could not be built"))?;
        match self.transport.send(message).await {
            Ok(response) => Ok(response.code().into()),
            Err(e) => Err(classify(&e)),
        }
    }
}

#[async_trait::async_trait]
impl Destination for EmailDestination {
    async fn send(&self, lead: &Lead, _ctx: SendContext) -> Result<Delivered, DestinationError> {
        let status = self
            .deliver(
                subject(lead),
                body(lead, &self.link_base, self.include_personal_data),
                format!("<{}@leadrelay>", lead.id),
            )
            .await?;
        Ok(Delivered { status: Some(status), excerpt: None, note: None })
    }

    async fn notify(&self, notice: &Notice) -> Result<(), DestinationError> {
        let (subject, body) = notice_text(notice, &self.link_base);
        let id = match notice {
            Notice::DeadLetter { lead, destination, .. } => format!("<{lead}.{destination}.dead@leadrelay>"),
            Notice::Disabled { destination, .. } => format!("<{destination}.disabled.{}@leadrelay>", body.len()),
        };
        self.deliver(subject, body, id).await.map(drop)
    }
}

fn classify(e: &lettre::transport::smtp::Error) -> DestinationError {
    let code: Option<u16> = e.status().map(Into::into);
    let (class, message, hint) = match code {
        Some(535) => {
            (ErrorClass::Permanent, "the SMTP server refused the credentials (535)", "check the username and password")
        }
        Some(530) => (
            ErrorClass::Permanent,
            "the SMTP server requires authentication or STARTTLS first (530)",
            "set username and password, and tls to starttls or tls",
        ),
        Some(534 | 538) => (
            ErrorClass::Permanent,
            "the SMTP server refused the authentication mechanism",
            "use tls or starttls so the server offers AUTH",
        ),
        Some(550 | 551 | 553) => {
            (ErrorClass::Permanent, "the SMTP server refused a recipient", "check the addresses in 'to'")
        }
        Some(552 | 554) => (
            ErrorClass::Permanent,
            "the SMTP server refused the message",
            "ask the mail administrator why the message was refused",
        ),
        Some(c) if (400..500).contains(&c) => {
            (ErrorClass::Transient, "the SMTP server is temporarily unavailable", "notifications will be retried")
        }
        Some(_) => (ErrorClass::Permanent, "the SMTP server refused the message", "check the destination's settings"),
        None if e.is_tls() => (
            ErrorClass::Transient,
            "the TLS handshake with the SMTP server failed",
            "the server's certificate is not trusted or not valid for the host name: fix it, or give the CA in ca_file",
        ),
        None if e.is_timeout() => (
            ErrorClass::Transient,
            "the SMTP server did not answer in time",
            "check that it is running; notifications will be retried",
        ),
        None => (
            ErrorClass::Transient,
            "could not talk to the SMTP server",
            "check host and port, and that a firewall allows this server to reach it",
        ),
    };
    DestinationError {
        class,
        status: code,
        message: message.to_owned(),
        retry_after: None,
        excerpt: None,
        hint: Some(hint.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_lists_are_split_checked_and_deduplicated_in_order() {
        let list = parse_recipients(" a@x.com; b@y.com ,\nA@X.com;; c@z.org ").unwrap();
        let got: Vec<String> = list.iter().map(|m| m.email.to_string()).collect();
        assert_eq!(got, ["a@x.com", "b@y.com", "c@z.org"]);
        assert_eq!(parse_recipients("a@x.com; nope").unwrap_err(), "entry 2 is not an email address");
        assert!(parse_recipients(" ; ").is_err());
    }
}
