//! The people of a publisher's sales team and their sessions. A user's role decides which of
//! the token scopes a session carries, so one authorisation rule (`Scope`) serves machines and
//! people alike.

use std::fmt;

use crate::access::Scope;
use crate::clock::Timestamp;
use crate::ids::{PublisherId, UserId};

/// What a person may do in the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything a member does, plus the team, its sales settings, destinations and tokens.
    Admin,
    /// Works opportunities: status, owner, activities, checklist; adds and imports leads, changes
    /// deliveries.
    Member,
    /// Reads everything of the publisher, changes nothing.
    Viewer,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Self::Admin, Self::Member, Self::Viewer];

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
            Self::Viewer => "viewer",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The token scopes a session of this role carries.
    pub fn scopes(self) -> Vec<Scope> {
        match self {
            Self::Admin => vec![Scope::Ingest, Scope::Read, Scope::Write, Scope::Admin],
            Self::Member => vec![Scope::Ingest, Scope::Read, Scope::Write],
            Self::Viewer => vec![Scope::Read],
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person of one publisher. The e-mail address and name are personal data: a backend seals
/// them at rest and finds a user by a keyed hash of the normalised address.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// The publisher whose workspace this is.
    pub publisher: PublisherId,
    /// Sign-in address, normalised (trimmed, lowercase); unique across publishers.
    pub email: String,
    /// Display name.
    pub name: String,
    /// What the person may do.
    pub role: Role,
    /// The Argon2id hash (PHC string) of the password; `None` while an invitation is open.
    pub password_hash: Option<String>,
    /// SHA-256 (hex) of an open invitation's token; the token itself is handed out once.
    pub invite_hash: Option<String>,
    /// When the open invitation stops working.
    pub invite_expires_at: Option<Timestamp>,
    /// Created.
    pub created_at: Timestamp,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Name and address are personal data, and the hashes are credentials: never in a log.
        f.debug_struct("User")
            .field("id", &self.id)
            .field("publisher", &self.publisher)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Normalises a sign-in address (trim, lowercase) and checks its shape: one `@` with text on
/// both sides and a dot in the domain, at most 254 characters.
///
/// # Errors
/// The rule, without the value.
pub fn normalize_email(email: &str) -> Result<String, &'static str> {
    let e = email.trim().to_lowercase();
    let ok = e.len() <= 254
        && !e.chars().any(char::is_whitespace)
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if ok { Ok(e) } else { Err("must be an e-mail address such as ana@example.com") }
}

/// A signed-in session. The cookie carries a random token; storage keeps only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 (hex) of the session token.
    pub token_hash: String,
    /// Whose session.
    pub user: UserId,
    /// Created (sign-in).
    pub created_at: Timestamp,
    /// After this the session signs nobody in.
    pub expires_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_map_to_scopes() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert!(Role::Viewer.scopes() == vec![Scope::Read]);
        assert!(!Role::Member.scopes().contains(&Scope::Admin));
        assert!(Role::Admin.scopes().contains(&Scope::Admin));
    }

    #[test]
    fn addresses_are_normalised_and_checked() {
        assert_eq!(normalize_email("  Ana@Example.COM ").unwrap(), "ana@example.com");
        for bad in ["", "ana", "ana@", "@example.com", "ana@example", "a b@example.com", "a@b@example.com"] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
