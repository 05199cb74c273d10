//! SSRF protection: which addresses a destination may reach. A destination URL is user input
//! that our server will call, so every resolved address must be globally routable unless the
//! operator allows private networks (tests, on-premises relays). The check runs inside the
//! HTTP client's resolver, so the address checked is the address connected to (no rebinding).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use leadrelay_core::destination::DestinationError;

/// Whether an IPv4 address is globally routable (not in an IANA special-purpose range).
pub fn is_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || (a == 100 && (64..128).contains(&b))
        || a == 127
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 0 && c == 2)
        || (a == 192 && b == 88 && c == 99)
        || (a == 192 && b == 168)
        || (a == 198 && (18..20).contains(&b))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

/// Whether an IPv6 address is globally routable; addresses that embed an IPv4 address
/// (mapped, NAT64, 6to4) are judged by it.
pub fn is_global_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_global_v4(v4);
    }
    let embedded_tail = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return is_global_v4(embedded_tail());
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        return false;
    }
    if s[0] == 0x2002 {
        return is_global_v4(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || (s[0] == 0x100 && s[1..4] == [0, 0, 0])
        || (s[0] == 0x2001 && s[1] < 0x200)
        || (s[0] == 0x2001 && s[1] == 0xdb8)
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xff00) == 0xff00)
}

/// Whether an address is globally routable.
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => is_global_v6(v6),
    }
}

/// A resolver for the HTTP client that refuses a host if **any** of its addresses is not
/// global (unless private addresses are allowed).
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    /// Allow loopback and private addresses.
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private && addrs.iter().any(|a| !is_global(a.ip())) {
                return Err(Box::new(Refused(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A host refused by the SSRF guard.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} resolves to an address that is not publicly routable (set delivery.allow_private_destinations to allow it)",
            self.0
        )
    }
}

impl std::error::Error for Refused {}

/// Checks a destination URL's shape: `https` (or `http` when private addresses are allowed), a
/// host, no credentials, and an IP-literal host that is global unless private ones are allowed.
///
/// # Errors
/// The rule the URL breaks (without echoing it).
pub fn check_url(raw: &str, allow_private: bool) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("is not a valid absolute URL ({e})"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        "http" => {
            return Err("must use https (plain http is allowed only with delivery.allow_private_destinations)".into());
        }
        _ => return Err("must be an https URL".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password; put credentials in the destination's settings".into());
    }
    let host = url.host().ok_or("must have a host")?;
    if !allow_private {
        let refused = match host {
            url::Host::Ipv4(ip) => !is_global_v4(ip),
            url::Host::Ipv6(ip) => !is_global_v6(ip),
            url::Host::Domain(d) => {
                d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost")
            }
        };
        if refused {
            return Err("points to an address that is not publicly routable (set delivery.allow_private_destinations to allow it)".into());
        }
    }
    Ok(url)
}

/// The HTTP client every connector uses: no redirects (a redirect could lead to an internal
/// address), the SSRF-guarded resolver, and the configured timeouts.
pub(crate) fn client(options: &crate::https::HttpsOptions) -> reqwest::Client {
    crate::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(options.request_timeout)
        .connect_timeout(options.connect_timeout)
        .dns_resolver(std::sync::Arc::new(GuardedResolver { allow_private: options.allow_private }))
        .pool_max_idle_per_host(64)
        .user_agent(concat!("leadrelay/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a client with these options always builds")
}

/// Translates a transport failure into a classified error with a hint. The error text can hold
/// the URL (and a query-string secret), so only the kind of failure is kept.
pub(crate) fn transport_error(e: reqwest::Error) -> DestinationError {
    // The error text can contain the URL with its query-string secret (`sig=`): only the kind of
    // failure is kept, found by walking the typed error chain.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<Refused>() {
            return DestinationError::permanent(refused.to_string()).with_hint(
                "the URL's host resolves to a private or loopback address; use a public address \
                 (or, for local testing only, set delivery.allow_private_destinations)",
            );
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

    #[test]
    fn every_special_purpose_ipv4_range_is_refused() {
        for ip in [
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!is_global(ip.parse().unwrap()), "{ip} should be refused");
        }
        for ip in ["8.8.8.8", "100.63.255.255", "100.128.0.0", "172.15.0.1", "172.32.0.1", "198.20.0.1", "1.1.1.1"] {
            assert!(is_global(ip.parse().unwrap()), "{ip} should be allowed");
        }
    }

    #[test]
    fn every_special_purpose_ipv6_range_is_refused_and_embedded_ipv4_is_checked() {
        for ip in [
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "2002:c0a8:101::1",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
        ] {
            assert!(!is_global(ip.parse().unwrap()), "{ip} should be refused");
        }
        for ip in ["2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"] {
            assert!(is_global(ip.parse().unwrap()), "{ip} should be allowed");
        }
    }

    #[test]
    fn urls_are_checked_for_scheme_credentials_and_private_hosts() {
        assert!(check_url("https://example.com/hook?sig=abc", false).is_ok());
        assert!(check_url("http://example.com/hook", false).unwrap_err().contains("https"));
        assert!(check_url("https://user:pw@example.com/", false).unwrap_err().contains("password"));
        assert!(check_url("https://127.0.0.1/", false).unwrap_err().contains("not publicly routable"));
        assert!(check_url("https://[::1]/", false).is_err());
        assert!(check_url("https://localhost:8080/", false).is_err());
        assert!(check_url("http://127.0.0.1:9/", true).is_ok());
        assert!(check_url("ftp://example.com/", true).is_err());
        assert!(check_url("not a url", true).is_err());
    }

    #[tokio::test]
    async fn the_resolver_refuses_loopback_unless_allowed() {
        use reqwest::dns::Resolve;
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let refused = GuardedResolver { allow_private: false }.resolve(name).await;
        assert!(refused.is_err());
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let allowed = GuardedResolver { allow_private: true }.resolve(name).await;
        assert!(allowed.is_ok());
    }
}
