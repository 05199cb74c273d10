//! The one outbound network layer. Every connection leadrelay opens to a destination — HTTP for
//! every kind, and SMTP — goes through here, so the rules that protect the server hold for all
//! of them at once:
//!
//! - **SSRF guard** ([`guard`]): names are resolved by us, every address is checked, and the
//!   connection goes to a checked address; unless the operator allows private networks, hosts
//!   that are loopback, private or otherwise not global are refused.
//! - **Bounded answers** ([`body`]): a response body is read chunk by chunk up to the bound its
//!   kind needs, never whole; a receiver streaming without end costs a few KiB, not memory.
//! - **No redirects**: a redirect could lead to an internal address.
//!
//! Connectors never hold a `reqwest::Response`: [`Network::send`] returns an [`Answer`] whose
//! body is already cut to the cap.

pub mod body;
pub mod guard;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use leadrelay_core::destination::{DestinationError, NetworkPolicy};

pub use body::{Answer, JSON_CAP};
pub use guard::{Refused, ResolveError, check_host, check_url, is_global};

/// Options shared by every destination's connections.
#[derive(Debug, Clone)]
pub struct NetworkOptions {
    /// Allow private and loopback addresses and plain http (tests and local relays only).
    pub allow_private: bool,
    /// Whole-request timeout (HTTP), and the timeout of each SMTP step.
    pub request_timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Statuses that dead-letter at once for the `https` kind (SPEC §4 default: 400, 401, 403, 404, 422).
    pub permanent_statuses: Vec<u16>,
    /// Bytes of response body kept in the attempt log (and read, for kinds that only keep an excerpt).
    pub excerpt_bytes: usize,
}

impl Default for NetworkOptions {
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

/// The outbound network: one HTTP client (one connection pool) for every connector, and the
/// guarded resolver for the connections that are not HTTP. Cheap to clone.
#[derive(Clone)]
pub struct Network {
    client: reqwest::Client,
    options: Arc<NetworkOptions>,
}

impl Network {
    /// The network with these options: no redirects, the guarded resolver, the timeouts.
    pub fn new(options: NetworkOptions) -> Self {
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(options.request_timeout)
            .connect_timeout(options.connect_timeout)
            .dns_resolver(Arc::new(guard::GuardedResolver { allow_private: options.allow_private }))
            .pool_max_idle_per_host(64)
            .user_agent(concat!("leadrelay/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a client with these options always builds");
        Self { client, options: Arc::new(options) }
    }

    /// The options.
    pub fn options(&self) -> &NetworkOptions {
        &self.options
    }

    /// Whether private addresses are allowed for connections (the operator's switch).
    pub fn allow_private(&self) -> bool {
        self.options.allow_private
    }

    /// Whether private addresses are allowed when checking settings under `policy`.
    pub fn allows_private(&self, policy: NetworkPolicy) -> bool {
        policy.allow_private || self.options.allow_private
    }

    /// A request on the shared client; send it with [`Network::send`].
    pub(crate) fn request(&self, method: reqwest::Method, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        self.client.request(method, url)
    }

    /// A POST request on the shared client.
    pub(crate) fn post(&self, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::POST, url)
    }

    /// Sends a request and reads at most `cap` bytes of its answer.
    ///
    /// # Errors
    /// A classified transport error when no answer came.
    pub(crate) async fn send(&self, request: reqwest::RequestBuilder, cap: usize) -> Result<Answer, DestinationError> {
        let request = request.build().map_err(|_| {
            DestinationError::permanent("the destination's address is not a valid URL")
                .with_hint("create the destination again with a valid address")
        })?;
        // IP-literal hosts never reach the resolver, so they are checked here.
        let host =
            request.url().host().ok_or_else(|| DestinationError::permanent("the destination's URL has no host"))?;
        if check_host(&host, self.options.allow_private).is_err() {
            return Err(refused(&Refused(host.to_string())));
        }
        let response = self.client.execute(request).await.map_err(transport_error)?;
        Ok(body::read(response, cap).await)
    }

    /// Resolves a host for a connection that is not HTTP (SMTP), through the guard.
    ///
    /// # Errors
    /// A permanent error for a refused host, a transient one when it does not resolve.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, DestinationError> {
        guard::resolve(host, port, self.options.allow_private).await.map_err(|e| match e {
            ResolveError::Refused(r) => refused(&r),
            ResolveError::Lookup(_) => DestinationError::transient("the host name could not be resolved")
                .with_hint("check the host name; if it is right, its DNS may be failing, and it will be retried"),
        })
    }
}

/// The error for a host the guard refused.
fn refused(r: &Refused) -> DestinationError {
    DestinationError::permanent(r.to_string()).with_hint(
        "the host resolves to a private or loopback address; use a public address \
         (or, for local testing only, set delivery.allow_private_destinations)",
    )
}

/// Translates a transport failure into a classified error with a hint. The error text can hold
/// the URL (and a query-string secret such as `sig=`), so only the kind of failure is kept,
/// found by walking the typed error chain.
pub(crate) fn transport_error(e: reqwest::Error) -> DestinationError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<Refused>() {
            return refused(r);
        }
        let tls = s.downcast_ref::<rustls::Error>().is_some()
            || s.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| inner.is::<rustls::Error>());
        if tls {
            return DestinationError::transient("the TLS handshake with the receiver failed").with_hint(
                "the receiver's certificate is not valid for this host name or not issued by a trusted authority: \
                 fix the certificate or use the host name it was issued for",
            );
        }
        source = s.source();
    }
    if e.is_timeout() {
        DestinationError::transient("the request timed out").with_hint(
            "the receiver did not answer in time: check that it is running and not overloaded; leads will be retried",
        )
    } else if e.is_connect() {
        DestinationError::transient("could not connect to the receiver").with_hint(
            "nothing accepted the connection: check the host name and port, and that a firewall allows this server",
        )
    } else {
        DestinationError::transient("the request failed before a response")
            .with_hint("the connection broke before the receiver answered: check the receiver and any proxy in between")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_to_a_refused_host_never_connects_and_says_why() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let net = Network::new(NetworkOptions { allow_private: false, ..NetworkOptions::default() });
        // The reqwest client resolves names with the guard; "localhost" never reaches a lookup.
        let err = net.send(net.post(format!("http://localhost:{port}/")), JSON_CAP).await.unwrap_err();
        assert_eq!(err.class, leadrelay_core::destination::ErrorClass::Permanent);
        assert!(err.message.contains("not publicly routable"), "{}", err.message);
        let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        assert!(accepted.is_err(), "nothing connected to the listener");
        let err = net.resolve("localhost.", port).await.unwrap_err();
        assert!(err.message.contains("not publicly routable"), "{}", err.message);
    }
}
