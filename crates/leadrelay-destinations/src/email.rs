//! The `email` destination: a notification to the publisher's semicolon-separated contact list
//! over SMTP (STARTTLS or implicit TLS with rustls, AUTH). By default the message holds no
//! personal data (the marketplace refuses to send lead data over email, and `.edu` leads carry
//! none): offer, action, stage, source, time and a link to the lead.
//!
//! The SMTP host goes through the network layer's guard like every HTTP host: we resolve it,
//! check every address, and lettre connects to a checked address while TLS still verifies the
//! host name. A CA to trust is given as PEM text in the settings, never as a server path.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use leadrelay_core::Lead;
use leadrelay_core::destination::{
    Connector, Delivered, Destination, DestinationError, DestinationRole, ErrorClass, FieldError, NetworkPolicy,
    Notice, PreparedSettings, SalesMail, SendContext, SettingField, SettingInput,
};
use leadrelay_core::storage::SalesNoticeKind;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use crate::network::{Network, check_host};
use crate::settings::{self, KindSettings};

/// The most PEM text `ca_pem` may hold: a CA certificate with its chain is a few KiB.
pub const CA_PEM_MAX: usize = 64 * 1024;

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain text: only for a local relay (needs `delivery.allow_private_destinations`).
    None,
    /// Plain greeting, then STARTTLS (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
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

/// The settings of an `email` destination, as the API takes them and as they are stored.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    /// The SMTP server's host name (or IP address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Its port, usually 587 (starttls) or 465 (tls).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// How the connection is secured; `starttls` by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsMode>,
    /// AUTH user name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// AUTH password (a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The sender address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The contact list: addresses separated by `;`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Put the customer's details in the message (never for a withheld lead); off by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_personal_data: Option<bool>,
    /// PEM text of a CA certificate to trust besides the public roots (a private mail server's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
}

impl KindSettings for EmailSettings {
    const SHAPE: &'static str = "must be an object with host, port, tls, from and to";

    fn type_rule(field: &str) -> Cow<'static, str> {
        match field {
            "port" => PORT_RULE.into(),
            "tls" => "must be none, starttls or tls".into(),
            "include_personal_data" => "must be true or false".into(),
            _ => "must be a string".into(),
        }
    }

    fn retired_field(field: &str) -> Option<&'static str> {
        (field == "ca_file").then_some(
            "is no longer accepted (a path on the server is not a publisher's to choose): put the CA certificate's \
             PEM text in ca_pem instead",
        )
    }
}

const PORT_RULE: &str = "must be a port number, usually 587 (starttls) or 465 (tls)";
const CA_RULE: &str = "must be the PEM text of the CA certificate to trust (-----BEGIN CERTIFICATE----- ...)";

/// Checks `ca_pem`: at most [`CA_PEM_MAX`] bytes, one or more certificates, each one that a
/// TLS client can trust.
fn parse_ca(pem: &str) -> Result<Certificate, Cow<'static, str>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    if pem.len() > CA_PEM_MAX {
        return Err(format!("must be at most {} KiB of PEM text", CA_PEM_MAX / 1024).into());
    }
    let ders = CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<Vec<_>, _>>().map_err(|_| CA_RULE)?;
    if ders.is_empty() {
        return Err(CA_RULE.into());
    }
    let mut roots = rustls::RootCertStore::empty();
    for der in ders {
        roots.add(der).map_err(|_| CA_RULE)?;
    }
    Certificate::from_pem(pem.as_bytes()).map_err(|_| CA_RULE.into())
}

/// Checked `email` settings.
struct EmailConfig {
    host: String,
    port: u16,
    tls: TlsMode,
    credentials: Option<(String, String)>,
    from: Mailbox,
    to: Vec<Mailbox>,
    raw_to: String,
    include_personal_data: bool,
    ca_pem: Option<(String, Certificate)>,
}

impl EmailSettings {
    fn check(self, mut problems: settings::Problems, allow_private: bool) -> Result<EmailConfig, Vec<FieldError>> {
        let host = self.host.as_deref().map(str::trim).unwrap_or("").to_owned();
        if self.host.is_none() {
            problems.add("host", "is required (the SMTP server's host name)");
        } else if host.is_empty() {
            problems.add("host", "is required");
        } else {
            match parse_host(&host) {
                Some(parsed) => {
                    if let Err(rule) = check_host(&parsed, allow_private) {
                        problems.add("host", rule);
                    }
                }
                None => problems.add("host", "must be a host name or an IP address"),
            }
        }
        let port = self.port.filter(|p| *p > 0);
        if port.is_none() {
            problems.add("port", PORT_RULE);
        }
        let tls = self.tls.unwrap_or(TlsMode::Starttls);
        if tls == TlsMode::None && !allow_private {
            problems.add("tls", "none sends mail and passwords unencrypted: use starttls or tls");
        }
        let credentials = match (self.username, self.password) {
            (Some(u), Some(p)) => Some((u, p)),
            (None, None) => None,
            _ => {
                problems.add("password", "username and password go together");
                None
            }
        };
        let from = match self.from.as_deref().map(str::parse::<Mailbox>) {
            Some(Ok(m)) => Some(m),
            Some(Err(_)) => {
                problems.add("from", "is not an email address");
                None
            }
            None => {
                problems.add("from", "is required (the sender address)");
                None
            }
        };
        let to = match self.to.as_deref().map(parse_recipients) {
            Some(Ok(list)) => Some(list),
            Some(Err(rule)) => {
                problems.add("to", rule);
                None
            }
            None => {
                problems.add("to", "is required: one or more addresses separated by ';'");
                None
            }
        };
        let ca_pem = match self.ca_pem.map(|pem| parse_ca(&pem).map(|cert| (pem, cert))) {
            Some(Ok(ca)) => Some(ca),
            Some(Err(rule)) => {
                problems.add("ca_pem", rule);
                None
            }
            None => None,
        };
        problems.finish(|| EmailConfig {
            host,
            port: port.expect("checked"),
            tls,
            credentials,
            from: from.expect("checked"),
            to: to.expect("checked"),
            raw_to: self.to.expect("checked"),
            include_personal_data: self.include_personal_data.unwrap_or(false),
            ca_pem,
        })
    }
}

/// A host setting as a URL host: a name, an IPv4 address, or an IPv6 address with or without
/// brackets.
fn parse_host(host: &str) -> Option<url::Host<String>> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Some(match ip {
            std::net::IpAddr::V4(v4) => url::Host::Ipv4(v4),
            std::net::IpAddr::V6(v6) => url::Host::Ipv6(v6),
        });
    }
    url::Host::parse(host).ok()
}

impl EmailConfig {
    fn to_settings(&self) -> EmailSettings {
        EmailSettings {
            host: Some(self.host.clone()),
            port: Some(self.port),
            tls: Some(self.tls),
            username: self.credentials.as_ref().map(|(u, _)| u.clone()),
            password: self.credentials.as_ref().map(|(_, p)| p.clone()),
            from: Some(self.from.to_string()),
            to: Some(self.raw_to.clone()),
            include_personal_data: Some(self.include_personal_data),
            ca_pem: self.ca_pem.as_ref().map(|(pem, _)| pem.clone()),
        }
    }
}

/// The `email` connector.
pub struct EmailConnector {
    net: Network,
    link_base: String,
}

impl EmailConnector {
    /// A connector whose messages link to leads under `link_base` (e.g. `https://leads.example.com`).
    pub fn new(net: Network, link_base: String) -> Self {
        Self { net, link_base }
    }

    fn parse(&self, settings: &serde_json::Value, allow_private: bool) -> Result<EmailConfig, Vec<FieldError>> {
        let (parsed, problems) = settings::parse::<EmailSettings>(self.kind(), settings)?;
        parsed.check(problems, allow_private)
    }
}

const FORM: &[SettingField] = &[
    SettingField::new("host", "SMTP host", SettingInput::Text).required().help("The SMTP server's host name."),
    SettingField::new("port", "Port", SettingInput::Number).required().help("Usually 587 (starttls) or 465 (tls)."),
    SettingField::new("tls", "Security", SettingInput::Choice(&["starttls", "tls", "none"]))
        .help("starttls by default; none only for a local relay."),
    SettingField::new("username", "User name", SettingInput::Text).help("For SMTP AUTH; empty: no AUTH."),
    SettingField::new("password", "Password", SettingInput::Secret),
    SettingField::new("from", "From", SettingInput::Text).required().help("The sender's address."),
    SettingField::new("to", "To", SettingInput::LongText)
        .required()
        .help("The recipients: addresses separated by commas, semicolons or new lines."),
    SettingField::new("include_personal_data", "Include the customer's details", SettingInput::Toggle)
        .help("Off by default: the message then names the lead, not the person."),
    SettingField::new("ca_pem", "CA certificate (PEM)", SettingInput::LongText)
        .help("Only for a server whose certificate a public CA did not sign."),
];

impl Connector for EmailConnector {
    fn kind(&self) -> &'static str {
        "email"
    }

    fn role(&self) -> DestinationRole {
        DestinationRole::NotifiesPeople
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
        let tls = match config.tls {
            TlsMode::None => None,
            mode => {
                let mut b = TlsParameters::builder(config.host.clone());
                if let Some((_, cert)) = config.ca_pem {
                    b = b.add_root_certificate(cert);
                }
                let params = b.build_rustls().map_err(|_| {
                    DestinationError::permanent("the TLS settings could not be built")
                        .with_hint("check ca_pem: it must be a CA certificate")
                })?;
                Some(if mode == TlsMode::Tls { Tls::Wrapper(params) } else { Tls::Required(params) })
            }
        };
        Ok(Arc::new(EmailDestination {
            net: self.net.clone(),
            host: config.host,
            port: config.port,
            tls,
            credentials: config.credentials.map(|(u, p)| Credentials::new(u, p)),
            from: config.from,
            to: config.to,
            include_personal_data: config.include_personal_data,
            link_base: self.link_base.clone(),
        }))
    }
}

/// One configured notification list.
pub struct EmailDestination {
    net: Network,
    host: String,
    port: u16,
    tls: Option<Tls>,
    credentials: Option<Credentials>,
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
        Notice::Sales(mail) => sales_text(mail, base),
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

/// Subject and body of a sales notice: ids, the offer and the due time; the lead's customer
/// only where [`EmailDestination`] opts in (added by `notify`).
fn sales_text(mail: &SalesMail, base: &str) -> (String, String) {
    let opp = &mail.opportunity;
    let offer = mail.offer.as_ref().map_or("an unknown offer", |o| o.as_str());
    let due = mail.first_touch_due_at.to_rfc3339();
    match mail.kind {
        SalesNoticeKind::Assigned => (
            format!("New opportunity for you: {offer}"),
            format!(
                "An opportunity was assigned to you.\n\nOpportunity: {opp}\nOffer:       {offer}\n\
                 First touch due by {due}.\nOpen it:     {base}/v1/opportunities/{opp}\n"
            ),
        ),
        SalesNoticeKind::SlaBreached => (
            format!("First touch overdue: {offer}"),
            format!(
                "Nobody has reached this customer yet, and the first touch was due by {due}.\n\n\
                 Opportunity: {opp}\nOffer:       {offer}\nOpen it:     {base}/v1/opportunities/{opp}\n\
                 Log the call, e-mail or meeting there once it happened.\n"
            ),
        ),
    }
}

impl EmailDestination {
    async fn deliver(&self, subject: String, body: String, message_id: String) -> Result<u16, DestinationError> {
        self.deliver_to(&self.to, subject, body, message_id).await
    }

    async fn deliver_to(
        &self,
        recipients: &[Mailbox],
        subject: String,
        body: String,
        message_id: String,
    ) -> Result<u16, DestinationError> {
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(subject.replace(['\r', '\n'], " "))
            .message_id(Some(message_id))
            .header(ContentType::TEXT_PLAIN);
        for to in recipients {
            message = message.to(to.clone());
        }
        let message =
            message.body(body).map_err(|_| DestinationError::permanent("the notification could not be built"))?;
        let addrs = self.net.resolve(&self.host, self.port).await?;
        let mut last = None;
        for addr in addrs {
            match self.transport(addr).send(message.clone()).await {
                Ok(response) => return Ok(response.code().into()),
                // Nothing was said yet on a connection that failed: the next address may answer.
                Err(e) if never_connected(&e) => last = Some(e),
                Err(e) => return Err(classify(&e)),
            }
        }
        Err(last.map_or_else(|| DestinationError::transient("the host has no address"), |e| classify(&e)))
    }

    /// A transport to one checked address; TLS verifies the configured host name.
    fn transport(&self, addr: SocketAddr) -> AsyncSmtpTransport<Tokio1Executor> {
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
            .port(addr.port())
            .timeout(Some(self.net.options().request_timeout));
        if let Some(tls) = &self.tls {
            builder = builder.tls(tls.clone());
        }
        if let Some(c) = &self.credentials {
            builder = builder.credentials(c.clone());
        }
        builder.build()
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
        let (subject, mut body) = notice_text(notice, &self.link_base);
        let id = match notice {
            Notice::DeadLetter { lead, destination, .. } => format!("<{lead}.{destination}.dead@leadrelay>"),
            Notice::Disabled { destination, .. } => format!("<{destination}.disabled.{}@leadrelay>", body.len()),
            Notice::Sales(mail) => {
                let mut recipients = if mail.to_publisher { self.to.clone() } else { Vec::new() };
                if let Some(owner) = mail.owner_email.as_deref() {
                    let owner: Mailbox = owner
                        .parse()
                        .map_err(|_| DestinationError::permanent("the owner's address is not a mailbox"))?;
                    if !recipients.contains(&owner) {
                        recipients.push(owner);
                    }
                }
                if recipients.is_empty() {
                    return Ok(());
                }
                if let Some(lead) = mail.lead.as_deref().filter(|_| self.include_personal_data) {
                    body.push('\n');
                    body.push_str(&crate::email::body(lead, &self.link_base, true));
                }
                let kind = match mail.kind {
                    SalesNoticeKind::Assigned => "assigned",
                    SalesNoticeKind::SlaBreached => "sla",
                };
                let id = format!("<{}.{kind}.{}@leadrelay>", mail.opportunity, recipients.len());
                return self.deliver_to(&recipients, subject, body, id).await.map(drop);
            }
        };
        self.deliver(subject, body, id).await.map(drop)
    }
}

/// Whether an SMTP error is a connection that never got going (refused, unreachable), as
/// opposed to an answer, a TLS failure or a timeout.
fn never_connected(e: &lettre::transport::smtp::Error) -> bool {
    e.status().is_none() && !e.is_response() && !e.is_client() && !e.is_tls() && !e.is_timeout() && {
        let mut source = std::error::Error::source(e);
        let mut refused = false;
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                refused = matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionRefused
                        | std::io::ErrorKind::HostUnreachable
                        | std::io::ErrorKind::NetworkUnreachable
                        | std::io::ErrorKind::AddrNotAvailable
                );
                break;
            }
            source = s.source();
        }
        refused
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
            "the server's certificate is not trusted or not valid for the host name: fix it, or give the CA's PEM text in ca_pem",
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
    use crate::NetworkOptions;

    fn connector(allow_private: bool) -> EmailConnector {
        EmailConnector::new(
            Network::new(NetworkOptions { allow_private, ..NetworkOptions::default() }),
            "https://leads.example.com".to_owned(),
        )
    }

    fn settings(host: &str, port: u16) -> serde_json::Value {
        serde_json::json!({"host": host, "port": port, "tls": "starttls", "from": "leadrelay@contoso.com",
                           "to": "ops@contoso.com"})
    }

    fn field_errors(errors: &[FieldError]) -> Vec<(&str, &str)> {
        errors.iter().map(|e| (e.path.as_str(), e.message.as_str())).collect()
    }

    #[test]
    fn a_ca_file_is_refused_and_never_read() {
        // A FIFO with no writer: reading it would block forever, so finishing proves it was not read.
        let dir = std::env::temp_dir().join(format!("leadrelay-ca-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("ca.pem");
        let _ = std::fs::remove_file(&fifo);
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let c = connector(true);
        for path in ["/etc/shadow", "/proc/self/environ", "/dev/zero", fifo.to_str().unwrap()] {
            let mut s = settings("smtp.example.com", 587);
            s["ca_file"] = serde_json::json!(path);
            let errors = c.prepare(s.clone(), NetworkPolicy::default()).unwrap_err();
            let got = field_errors(&errors);
            assert_eq!(got.len(), 1, "{got:?}");
            assert_eq!(got[0].0, "settings.ca_file");
            assert!(got[0].1.contains("ca_pem"), "the error says what to use instead: {}", got[0].1);
            let stored = c.build(&s).err().expect("a stored ca_file is refused too");
            assert!(
                stored.message.contains("settings.ca_file") && stored.message.contains("ca_pem"),
                "{}",
                stored.message
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ca_pem_must_be_a_certificate_of_bounded_size() {
        let c = connector(true);
        let with_ca = |pem: &str| {
            let mut s = settings("smtp.example.com", 587);
            s["ca_pem"] = serde_json::json!(pem);
            s
        };
        let good = leadrelay_testkit::smtp::unrelated_ca_pem();
        let prepared = c.prepare(with_ca(&good), NetworkPolicy::default()).unwrap();
        assert_eq!(prepared.stored["ca_pem"], good.as_str(), "the PEM text is stored as given");
        assert!(c.build(&prepared.stored).is_ok());
        let garbled = good.replacen("MII", "MIX", 1);
        let key = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";
        let huge = format!("{good}{}", " ".repeat(CA_PEM_MAX));
        for (pem, rule) in [
            ("/etc/ssl/certs/ca-certificates.crt", "PEM text"),
            (garbled.as_str(), "PEM text"),
            (key, "PEM text"),
            (huge.as_str(), "64 KiB"),
        ] {
            let errors = c.prepare(with_ca(pem), NetworkPolicy::default()).unwrap_err();
            let got = field_errors(&errors);
            assert_eq!(got.len(), 1, "{got:?}");
            assert_eq!(got[0].0, "settings.ca_pem");
            assert!(got[0].1.contains(rule), "{}", got[0].1);
        }
    }

    #[test]
    fn settings_are_typed_and_every_wrong_field_is_named() {
        let c = connector(true);
        let bad = serde_json::json!({"host": "", "port": "587", "tls": "ssl", "from": "nope", "to": "a@b.com; x",
                                     "username": "u", "include_personal_data": "yes", "cc": "x@y.com"});
        let errors = c.prepare(bad, NetworkPolicy::default()).unwrap_err();
        let mut got = field_errors(&errors);
        got.sort_unstable();
        assert_eq!(
            got,
            [
                (
                    "settings.cc",
                    "is not a setting of email destinations (expected host, port, tls, username, password, from, to, include_personal_data, ca_pem)"
                ),
                ("settings.from", "is not an email address"),
                ("settings.host", "is required"),
                ("settings.include_personal_data", "must be true or false"),
                ("settings.password", "username and password go together"),
                ("settings.port", "must be a port number, usually 587 (starttls) or 465 (tls)"),
                ("settings.tls", "must be none, starttls or tls"),
                ("settings.to", "entry 2 is not an email address"),
            ]
        );
        let prepared = c.prepare(settings(" smtp.example.com ", 587), NetworkPolicy::default()).unwrap();
        assert_eq!(
            prepared.stored,
            serde_json::json!({"host": "smtp.example.com", "port": 587, "tls": "starttls",
                               "from": "leadrelay@contoso.com", "to": "ops@contoso.com", "include_personal_data": false})
        );
    }

    #[tokio::test]
    async fn without_the_private_switch_localhost_names_are_refused_and_nothing_connects() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let guarded = connector(false);
        for host in [
            "localhost",
            "localhost.",
            "LOCALHOST",
            "foo.localhost.",
            "127.0.0.1",
            "::1",
            "[::127.0.0.1]",
            "[::ffff:0:127.0.0.1]",
            "fec0::1",
        ] {
            let errors = guarded.prepare(settings(host, port), NetworkPolicy::default()).unwrap_err();
            assert_eq!(field_errors(&errors)[0].0, "settings.host", "{host}");
            let stored = guarded.build(&settings(host, port)).err().expect("refused when built for a send");
            assert!(stored.message.contains("not publicly routable"), "{host}: {}", stored.message);
        }
        // Settings that passed when private hosts were allowed, sent after the switch is off:
        // the resolver refuses the host before any connection.
        let sent = EmailDestination {
            net: guarded.net.clone(),
            host: "localhost".into(),
            port,
            tls: None,
            credentials: None,
            from: "leadrelay@contoso.com".parse().unwrap(),
            to: vec!["ops@contoso.com".parse().unwrap()],
            include_personal_data: false,
            link_base: String::new(),
        };
        let at = leadrelay_core::Timestamp::from_millis(0);
        let err = sent
            .notify(&Notice::Disabled {
                destination: leadrelay_core::DestinationId::generate(at),
                destination_name: "x".into(),
                reason: "test".into(),
            })
            .await
            .unwrap_err();
        assert!(err.message.contains("not publicly routable"), "{}", err.message);
        let accepted = tokio::time::timeout(std::time::Duration::from_millis(200), listener.accept()).await;
        assert!(accepted.is_err(), "nothing connected to the listener");
    }

    #[test]
    fn contact_lists_are_split_checked_and_deduplicated_in_order() {
        let list = parse_recipients(" a@x.com; b@y.com ,\nA@X.com;; c@z.org ").unwrap();
        let got: Vec<String> = list.iter().map(|m| m.email.to_string()).collect();
        assert_eq!(got, ["a@x.com", "b@y.com", "c@z.org"]);
        assert_eq!(parse_recipients("a@x.com; nope").unwrap_err(), "entry 2 is not an email address");
        assert!(parse_recipients(" ; ").is_err());
    }
}
