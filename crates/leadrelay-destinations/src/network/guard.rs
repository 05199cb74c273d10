//! The SSRF guard: which hosts and addresses a destination may reach. A destination's host is
//! a publisher's input that our server will connect to, so unless the operator allows private
//! networks (tests, on-premises relays) every address must be globally routable. Names are
//! resolved here, every address is checked, and the caller connects to a checked address, so a
//! name cannot resolve to a public address for the check and a private one for the connection.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

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

/// Whether an IPv6 address is globally routable. Only global unicast (`2000::/3`) can be, minus
/// its special-purpose blocks; forms that carry an IPv4 address (mapped `::ffff:0:0/96`,
/// translated `::ffff:0:0:0/96`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by it. So
/// the deprecated IPv4-compatible `::/96` and site-local `fec0::/10` forms, unique-local,
/// link-local and multicast addresses are all refused.
pub fn is_global_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let tail_v4 = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let mapped = s[..5] == [0; 5] && s[5] == 0xffff;
    let translated = s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0;
    let nat64 = s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4];
    if mapped || translated || nat64 {
        return is_global_v4(tail_v4());
    }
    if s[0] == 0x2002 {
        return is_global_v4(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
    }
    let global_unicast = (s[0] & 0xe000) == 0x2000;
    // IETF protocol assignments, Teredo and ORCHID (2001::/23); documentation (2001:db8::/32, 3fff::/20).
    let special = s[0] == 0x2001 && (s[1] < 0x200 || s[1] == 0xdb8);
    let documentation = (s[0] & 0xfff0) == 0x3ff0;
    global_unicast && !special && !documentation
}

/// Whether an address is globally routable.
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => is_global_v6(v6),
    }
}

/// Whether a host name is one of the `localhost` names, which always mean this machine
/// (RFC 6761), in any case and with or without the root's trailing dot.
pub fn is_localhost_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// A host refused by the guard. Its text names the host (a publisher's own setting, never
/// personal data) and the switch that allows it.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// Why a host could not be resolved to addresses we may connect to.
#[derive(Debug)]
pub enum ResolveError {
    /// The name or one of its addresses is private, loopback or otherwise not global.
    Refused(Refused),
    /// The name did not resolve.
    Lookup(std::io::Error),
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(r) => r.fmt(f),
            Self::Lookup(_) => f.write_str("the host name could not be resolved"),
        }
    }
}

impl std::error::Error for ResolveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Refused(r) => Some(r),
            Self::Lookup(e) => Some(e),
        }
    }
}

/// Resolves `host` (a name or an IP literal, IPv6 with or without brackets) to the addresses
/// to connect to on `port`. Unless private addresses are allowed, refuses `localhost` names
/// before any lookup and refuses the host if **any** of its addresses is not global: a name
/// with one private address is a rebinding attempt or a misconfiguration either way.
///
/// # Errors
/// [`ResolveError::Refused`] for a guarded host, [`ResolveError::Lookup`] when it does not resolve.
pub async fn resolve(host: &str, port: u16, allow_private: bool) -> Result<Vec<SocketAddr>, ResolveError> {
    let refused = || ResolveError::Refused(Refused(host.to_owned()));
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        if !allow_private && !is_global(ip) {
            return Err(refused());
        }
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if !allow_private && is_localhost_name(bare) {
        return Err(refused());
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port)).await.map_err(ResolveError::Lookup)?.collect();
    if addrs.is_empty() {
        return Err(ResolveError::Lookup(std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses")));
    }
    if !allow_private && addrs.iter().any(|a| !is_global(a.ip())) {
        return Err(refused());
    }
    Ok(addrs)
}

/// The HTTP client's resolver: every name reqwest connects to goes through [`resolve`].
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    /// Allow loopback and private addresses.
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            // reqwest sets the port on the addresses it is given; 0 is replaced.
            match resolve(name.as_str(), 0, allow_private).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs),
                Err(ResolveError::Refused(r)) => Err(Box::new(r) as Box<dyn std::error::Error + Send + Sync>),
                Err(ResolveError::Lookup(e)) => Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>),
            }
        })
    }
}

/// Checks a host's shape without resolving it: a `localhost` name or an IP literal that is not
/// global is refused unless private addresses are allowed. Names are checked again, with their
/// addresses, by [`resolve`] on every connection.
///
/// # Errors
/// The rule the host breaks (without echoing it).
pub fn check_host<S: AsRef<str>>(host: &url::Host<S>, allow_private: bool) -> Result<(), String> {
    if allow_private {
        return Ok(());
    }
    let refused = match host {
        url::Host::Ipv4(ip) => !is_global_v4(*ip),
        url::Host::Ipv6(ip) => !is_global_v6(*ip),
        url::Host::Domain(d) => is_localhost_name(d.as_ref()),
    };
    if refused {
        return Err(
            "points to an address that is not publicly routable (set delivery.allow_private_destinations to allow it)"
                .into(),
        );
    }
    Ok(())
}

/// Checks a destination URL's shape: `https` (or `http` when private addresses are allowed), a
/// host, no credentials, and a host that passes [`check_host`].
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
    check_host(&url.host().ok_or("must have a host")?, allow_private)?;
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host forms the guard must refuse however they are written.
    const PRIVATE_HOSTS: [&str; 12] = [
        "127.0.0.1",
        "[::1]",
        "[::127.0.0.1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:0:127.0.0.1]",
        "[fec0::1]",
        "[fe80::1]",
        "localhost",
        "localhost.",
        "LOCALHOST",
        "foo.localhost",
        "foo.localhost.",
    ];

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
            "::127.0.0.1",
            "::8.8.8.8",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:0:127.0.0.1",
            "::ffff:0:10.1.2.3",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "2002:c0a8:101::1",
            "3fff::1",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "fec0::1",
            "feff::1",
            "ff02::1",
            "4000::1",
        ] {
            assert!(!is_global(ip.parse().unwrap()), "{ip} should be refused");
        }
        for ip in ["2606:4700::1111", "::ffff:8.8.8.8", "::ffff:0:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"] {
            assert!(is_global(ip.parse().unwrap()), "{ip} should be allowed");
        }
    }

    #[test]
    fn urls_are_checked_for_scheme_credentials_and_private_hosts() {
        assert!(check_url("https://example.com/hook?sig=abc", false).is_ok());
        assert!(check_url("http://example.com/hook", false).unwrap_err().contains("https"));
        assert!(check_url("https://user:pw@example.com/", false).unwrap_err().contains("password"));
        assert!(check_url("https://127.0.0.1/", false).unwrap_err().contains("not publicly routable"));
        assert!(check_url("https://localhost:8080/", false).is_err());
        assert!(check_url("http://127.0.0.1:9/", true).is_ok());
        assert!(check_url("ftp://example.com/", true).is_err());
        assert!(check_url("not a url", true).is_err());
    }

    #[test]
    fn urls_with_private_hosts_in_any_spelling_are_refused_unless_allowed() {
        for host in PRIVATE_HOSTS.into_iter().chain(["2130706433", "0x7f.1", "[::ffff:7f00:1]"]) {
            let url = format!("https://{host}:8443/hook");
            let refused = check_url(&url, false).unwrap_err();
            assert!(refused.contains("not publicly routable"), "{url}: {refused}");
            assert!(check_url(&url, true).is_ok(), "{url} is allowed with the switch");
        }
        assert!(check_url("https://localhost.example.com/", false).is_ok(), "only the localhost names are special");
    }

    #[tokio::test]
    async fn the_resolver_refuses_private_hosts_in_any_spelling() {
        for host in PRIVATE_HOSTS {
            match resolve(host, 25, false).await {
                Err(ResolveError::Refused(r)) => assert_eq!(r.0, host),
                other => panic!("{host} should be refused, got {other:?}"),
            }
        }
        let allowed = resolve("[::127.0.0.1]", 25, true).await.unwrap();
        assert_eq!(allowed, [SocketAddr::new("::127.0.0.1".parse().unwrap(), 25)]);
        assert_eq!(resolve("8.8.8.8", 587, false).await.unwrap(), [SocketAddr::from(([8, 8, 8, 8], 587))]);
    }

    #[tokio::test]
    async fn a_name_is_refused_when_it_resolves_to_loopback() {
        // `localhost` is refused by name; these names are refused by their address, which the
        // resolver looks up itself: every alias of a loopback address in /etc/hosts.
        let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        let aliases: Vec<&str> = hosts
            .lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                let ip: IpAddr = words.next()?.parse().ok()?;
                ip.is_loopback().then_some(words)
            })
            .flatten()
            .filter(|name| !is_localhost_name(name))
            .collect();
        for name in &aliases {
            let addrs = resolve(name, 25, true).await.unwrap();
            assert!(addrs.iter().all(|a| !is_global(a.ip())), "{name} resolves to loopback");
            assert!(matches!(resolve(name, 25, false).await, Err(ResolveError::Refused(_))), "{name} is refused");
        }
        let localhost = resolve("localhost", 25, true).await.unwrap();
        assert!(localhost.iter().all(|a| a.ip().is_loopback()), "the allowed lookup is the system's");
    }

    #[tokio::test]
    async fn the_http_resolver_refuses_loopback_unless_allowed() {
        use reqwest::dns::Resolve;
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let refused = GuardedResolver { allow_private: false }.resolve(name).await;
        assert!(refused.is_err());
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let allowed = GuardedResolver { allow_private: true }.resolve(name).await;
        assert!(allowed.is_ok());
    }
}
