//! The people of a publisher's team: adding them (with a password, or with an invitation whose
//! token is shown once and accepted once), signing in and out, and the session a cookie names.
//!
//! Passwords are hashed with Argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes, one
//! lane) on the blocking pool, never on a runtime thread. Tokens (sessions, invitations) are
//! random and stored as SHA-256 hashes. A sign-in of an unknown address verifies the password
//! against a fixed hash of the same cost, so the time taken does not tell whether the address
//! has an account, and both answer [`OpsError::InvalidCredentials`]. Failed sign-ins are
//! limited per address and per client (`login_limit`).

use std::fmt;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use leadrelay_core::audit::{Actor, AuditAction, AuditObject};
use leadrelay_core::sales::people::normalize_email;
use leadrelay_core::sales::{Role, Session, User};
use leadrelay_core::storage::StorageError;
use leadrelay_core::{PublisherId, Timestamp, UserId};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::{Ops, OpsError, OpsResult};
use crate::auth::{generate_secret, hash_secret};

/// The name of the cookie that carries a session token.
pub const SESSION_COOKIE: &str = "leadrelay_session";
/// How long an invitation can be accepted.
pub const INVITATION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// How many characters a password has.
pub const PASSWORD_CHARS: RangeInclusive<usize> = 12..=128;

/// A PHC string of the same algorithm and cost as every stored hash, of no one's password:
/// what an unknown address's sign-in is verified against.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$bGVhZHJlbGF5IGR1bW15$WpIIJ3JuqGBf3X5/Cfw4JP9CnpJ9whGZhUXCnfI93zU";

/// A new password, checked against the rule. Its `Debug` shows nothing of it.
pub struct Password(String);

impl Password {
    /// A password of 12 to 128 characters (any characters; spaces count).
    ///
    /// # Errors
    /// The rule, without the value.
    pub fn new(plain: String) -> Result<Self, String> {
        if PASSWORD_CHARS.contains(&plain.chars().count()) {
            Ok(Self(plain))
        } else {
            Err(format!("must be {} to {} characters", PASSWORD_CHARS.start(), PASSWORD_CHARS.end()))
        }
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A person to add to a publisher's team.
#[derive(Debug)]
pub struct NewUser {
    /// Sign-in address (normalised here).
    pub email: String,
    /// Display name, 1-200 characters.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// Their password; `None` makes an invitation instead.
    pub password: Option<Password>,
}

/// An invitation: its token, shown once, and when it stops working.
pub struct Invitation {
    /// The token to hand to the person (only its hash is stored).
    pub token: String,
    /// When it stops working.
    pub expires_at: Timestamp,
}

impl fmt::Debug for Invitation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invitation").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

/// A user just added, with their invitation when they were added without a password.
#[derive(Debug)]
pub struct AddedUser {
    /// The user.
    pub user: User,
    /// The invitation to accept, when no password was given.
    pub invitation: Option<Invitation>,
}

/// A sign-in's outcome: the session token for the cookie and the CSRF token for the client.
pub struct SignedIn {
    /// The session token (the cookie's value; only its hash is stored).
    pub token: String,
    /// What a cookie-authenticated change must send as `X-CSRF-Token`.
    pub csrf_token: String,
    /// Who signed in.
    pub user: User,
    /// When the session ends.
    pub expires_at: Timestamp,
}

impl fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedIn")
            .field("user", &self.user)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The CSRF token of a session: derived from its token (SHA-256 of a label and the token, hex),
/// so nothing more is stored and it is known only to whoever signed in.
pub fn csrf_token(session_token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"leadrelay csrf\0");
    h.update(session_token.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn blocking_failed(e: tokio::task::JoinError) -> OpsError {
    OpsError::Storage(StorageError::Other(format!("password hashing did not finish: {e}").into()))
}

/// The Argon2id hash (PHC string) of a password, computed on the blocking pool.
async fn hash_password(password: Password) -> OpsResult<String> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| format!("salt: {e}"))?;
        Argon2::default().hash_password(password.0.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
    })
    .await
    .map_err(blocking_failed)?
    .map_err(|e| OpsError::Storage(StorageError::Other(format!("hashing a password: {e}").into())))
}

/// Whether `password` is the one `phc` was made of (`None`: the dummy hash, always false),
/// computed on the blocking pool at the same cost either way.
async fn verify_password(password: String, phc: Option<String>) -> OpsResult<bool> {
    tokio::task::spawn_blocking(move || {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let Ok(parsed) = PasswordHash::new(&phc) else {
            tracing::warn!("a stored password hash is not a PHC string; the sign-in is refused");
            return false;
        };
        Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok() && known
    })
    .await
    .map_err(blocking_failed)
}

impl Ops {
    /// Adds a person to `publisher`'s team: with a password they can sign in at once; without
    /// one they get an invitation (its token is returned once and works for 7 days).
    ///
    /// # Errors
    /// `Invalid` naming `email` or `name`; `NotFound` for an unknown publisher; `Conflict`
    /// when the address already has a user (of any publisher).
    pub async fn add_user(&self, actor: &Actor, publisher: &PublisherId, new: NewUser) -> OpsResult<AddedUser> {
        let email = normalize_email(&new.email).map_err(|rule| OpsError::field("email", rule))?;
        let name = new.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(OpsError::field("name", "must be 1-200 characters"));
        }
        self.require_publisher(publisher).await?;
        let now = self.clock.now();
        let (password_hash, invitation) = match new.password {
            Some(p) => (Some(hash_password(p).await?), None),
            None => {
                let token = generate_secret("lri_");
                (None, Some(Invitation { token, expires_at: now.plus(INVITATION_LIFETIME) }))
            }
        };
        let user = User {
            id: UserId::generate(now),
            publisher: publisher.clone(),
            email,
            name,
            role: new.role,
            password_hash,
            invite_hash: invitation.as_ref().map(|i| hash_secret(&i.token)),
            invite_expires_at: invitation.as_ref().map(|i| i.expires_at),
            created_at: now,
        };
        match self.storage.create_user(&user).await {
            Err(StorageError::Conflict) => {
                return Err(OpsError::Conflict("a user with this e-mail address already exists".to_owned()));
            }
            Err(StorageError::NotFound) => return Err(OpsError::NotFound("publisher")),
            other => other?,
        }
        let entry = self.audit_entry(actor, Some(publisher), AuditAction::UserCreate);
        self.record(entry.object(AuditObject::User(user.id.clone()))).await?;
        Ok(AddedUser { user, invitation })
    }

    /// A publisher's users, oldest first.
    ///
    /// # Errors
    /// `NotFound` for an unknown publisher.
    pub async fn list_users(&self, publisher: &PublisherId) -> OpsResult<Vec<User>> {
        match self.storage.list_users(publisher).await {
            Err(StorageError::NotFound) => Err(OpsError::NotFound("publisher")),
            other => Ok(other?),
        }
    }

    /// Accepts an invitation: the person sets their password; the token then stops working.
    ///
    /// # Errors
    /// `NotFound` when no open invitation has this token (never issued, used, or expired).
    pub async fn accept_invitation(&self, token: &str, password: Password) -> OpsResult<User> {
        let invite_hash = hash_secret(token.trim());
        let phc = hash_password(password).await?;
        let user = match self.storage.accept_invitation(&invite_hash, &phc, self.clock.now()).await {
            Err(StorageError::NotFound) => return Err(OpsError::NotFound("invitation")),
            other => other?,
        };
        let actor = Actor::user(user.id.clone(), user.publisher.clone());
        let entry = self.audit_entry(&actor, Some(&user.publisher), AuditAction::UserInviteAccept);
        self.record(entry.object(AuditObject::User(user.id.clone()))).await?;
        Ok(user)
    }

    /// Signs a person in: a new session of `Policy::session_lifetime`.
    ///
    /// # Errors
    /// `Invalid` for an `email` that is no address; `TooManyAttempts` when the address or the
    /// client used up its failed sign-ins; `InvalidCredentials` for an unknown address, a user
    /// still invited, or a wrong password alike.
    pub async fn sign_in(&self, email: &str, password: String, client: Option<IpAddr>) -> OpsResult<SignedIn> {
        let email = normalize_email(email).map_err(|rule| OpsError::field("email", rule))?;
        let now = self.clock.now();
        self.logins.check(&email, client, now).map_err(OpsError::TooManyAttempts)?;
        let user = match self.storage.find_user_by_email(&email).await {
            Ok(u) => Some(u),
            Err(StorageError::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        let phc = user.as_ref().and_then(|u| u.password_hash.clone());
        let verified = verify_password(password, phc).await?;
        let Some(user) = user.filter(|_| verified) else {
            self.logins.failed(&email, client, self.clock.now());
            return Err(OpsError::InvalidCredentials);
        };
        self.logins.succeeded(&email);
        let now = self.clock.now();
        let token = generate_secret("lrs_");
        let session = Session {
            token_hash: hash_secret(&token),
            user: user.id.clone(),
            created_at: now,
            expires_at: now.plus(self.policy.session_lifetime),
        };
        self.storage.create_session(&session).await?;
        let actor = Actor::user(user.id.clone(), user.publisher.clone());
        let entry = self.audit_entry(&actor, Some(&user.publisher), AuditAction::SessionCreate);
        self.record(entry.object(AuditObject::User(user.id.clone()))).await?;
        Ok(SignedIn { csrf_token: csrf_token(&token), token, user, expires_at: session.expires_at })
    }

    /// The live session a cookie's token names, with its user.
    ///
    /// # Errors
    /// `NotFound` when the token names no session, or one that ended.
    pub async fn session(&self, token: &str) -> OpsResult<(Session, User)> {
        match self.storage.find_session(&hash_secret(token), self.clock.now()).await {
            Err(StorageError::NotFound) => Err(OpsError::NotFound("session")),
            other => Ok(other?),
        }
    }

    /// Signs out: the session ends at once.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn sign_out(&self, token: &str, user: &User) -> OpsResult<()> {
        self.storage.delete_session(&hash_secret(token)).await?;
        let actor = Actor::user(user.id.clone(), user.publisher.clone());
        let entry = self.audit_entry(&actor, Some(&user.publisher), AuditAction::SessionDelete);
        self.record(entry.object(AuditObject::User(user.id.clone()))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_costs() {
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).unwrap();
        let real = Argon2::default().hash_password(b"a real password", &salt).unwrap();
        assert_eq!(dummy.algorithm, real.algorithm, "argon2id");
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params, "the same memory, passes and lanes");
        assert_eq!(dummy.hash.map(|h| h.len()), real.hash.map(|h| h.len()));
    }

    #[test]
    fn passwords_are_12_to_128_characters_and_never_shown() {
        assert!(Password::new("short".into()).unwrap_err().contains("12 to 128"));
        assert!(Password::new("x".repeat(129)).is_err());
        assert!(Password::new("ü".repeat(12)).is_ok(), "characters, not bytes");
        let p = Password::new("correct horse battery".into()).unwrap();
        assert_eq!(format!("{p:?}"), "Password(<redacted>)");
    }

    #[test]
    fn the_csrf_token_is_derived_from_the_session_and_differs_from_it() {
        let (a, b) = (csrf_token("lrs_one"), csrf_token("lrs_two"));
        assert_eq!(a, csrf_token("lrs_one"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(!a.contains("lrs_one") && a != hash_secret("lrs_one"), "not the stored session hash either");
    }
}
