//! Who may do what. A publisher token carries scopes and sees only its own publisher's data;
//! a marketplace token may report events for any publisher's offers; the admin token may do
//! everything.

use std::fmt;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Send leads (`POST /v1/leads`).
    Ingest,
    /// Read leads, customers, destinations, deliveries, offers.
    Read,
    /// Change offers, destinations, keys; retry, replay, validate, publish, split.
    Write,
    /// Manage the publisher's tokens.
    Admin,
    /// Report marketplace events for any publisher's offers (tokens not bound to a publisher).
    Marketplace,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 5] = [Self::Ingest, Self::Read, Self::Write, Self::Admin, Self::Marketplace];

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
            Self::Marketplace => "marketplace",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether the scope belongs on a publisher token (all but `marketplace`).
    pub fn is_publisher_scope(self) -> bool {
        self != Self::Marketplace
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a stored comma-separated scope list, skipping unknown names.
pub fn parse_scopes(s: &str) -> Vec<Scope> {
    s.split(',').filter_map(|p| Scope::parse(p.trim())).collect()
}

/// The stored form of a scope list.
pub fn format_scopes(scopes: &[Scope]) -> String {
    scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_through_their_stored_form() {
        let all = Scope::ALL.to_vec();
        assert_eq!(parse_scopes(&format_scopes(&all)), all);
        assert_eq!(parse_scopes("read, nonsense ,write"), vec![Scope::Read, Scope::Write]);
        assert!(!Scope::Marketplace.is_publisher_scope());
    }
}
