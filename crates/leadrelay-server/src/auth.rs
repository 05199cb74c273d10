//! Bearer-token authentication. The admin token comes from `LEADRELAY_ADMIN_TOKEN` or is
//! generated on first start; either way only its SHA-256 hash is kept (in the data dir), and a
//! generated token is printed once.

use std::path::Path;

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// File in the data dir holding the admin token's hash.
pub const ADMIN_HASH_FILE: &str = "admin-token.sha256";

/// SHA-256 of a secret, hex.
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random secret with a readable prefix, e.g. `lr_admin_…`.
pub fn generate_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The admin credential, as a hash.
#[derive(Clone)]
pub struct AdminToken {
    hash: String,
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

impl AdminToken {
    /// A token from its plain value (tests, environment).
    pub fn from_plain(token: &str) -> Self {
        Self { hash: hash_secret(token) }
    }

    /// Whether `presented` is the admin token (compared as hashes, in constant time).
    pub fn matches(&self, presented: &str) -> bool {
        constant_time_eq(hash_secret(presented).as_bytes(), self.hash.as_bytes())
    }

    /// Loads or creates the admin token. Returns the token and, when one was generated now, its
    /// plain value to print once.
    ///
    /// # Errors
    /// When the data dir cannot be read or written.
    pub fn bootstrap(data_dir: &Path, from_env: Option<&str>) -> std::io::Result<(Self, Option<String>)> {
        if let Some(token) = from_env.filter(|t| !t.trim().is_empty()) {
            return Ok((Self::from_plain(token.trim()), None));
        }
        let file = data_dir.join(ADMIN_HASH_FILE);
        if let Ok(hash) = std::fs::read_to_string(&file) {
            let hash = hash.trim().to_owned();
            if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok((Self { hash }, None));
            }
        }
        let token = generate_secret("lr_admin_");
        std::fs::create_dir_all(data_dir)?;
        write_private(&file, &hash_secret(&token))?;
        Ok((Self::from_plain(&token), Some(token)))
    }
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

/// Equality that takes the same time wherever the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_is_stored_hashed_and_recognised_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (first, printed) = AdminToken::bootstrap(dir.path(), None).unwrap();
        let token = printed.expect("printed once");
        assert!(first.matches(&token));
        let stored = std::fs::read_to_string(dir.path().join(ADMIN_HASH_FILE)).unwrap();
        assert!(!stored.contains(&token));
        let (again, printed_again) = AdminToken::bootstrap(dir.path(), None).unwrap();
        assert!(printed_again.is_none());
        assert!(again.matches(&token));
        assert!(!again.matches("lr_admin_wrong"));
    }

    #[test]
    fn the_environment_token_wins() {
        let dir = tempfile::tempdir().unwrap();
        let (t, printed) = AdminToken::bootstrap(dir.path(), Some("from-env")).unwrap();
        assert!(printed.is_none());
        assert!(t.matches("from-env"));
    }
}
