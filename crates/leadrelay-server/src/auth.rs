//! Bearer-token authentication. The admin token comes from `LEADRELAY_ADMIN_TOKEN` or is
//! generated on first start; either way only its SHA-256 hash is kept, in the database, so
//! every process serving from it accepts the same token; a generated token is printed once.

use std::path::Path;

use leadrelay_core::storage::{AccessStore, StorageError};

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// File in the data dir where versions before the hash moved into the database kept it; read
/// once and moved into the database.
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

    /// Loads or creates the admin token in `storage`. The environment's token wins and is
    /// stored; otherwise the stored hash is used (or one left in `data_dir` by an older
    /// version); otherwise a token is generated. Returns the token and, when one was generated
    /// now, its plain value to print once. Two processes starting at once agree on one token.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn bootstrap(
        storage: &dyn AccessStore,
        data_dir: &Path,
        from_env: Option<&str>,
    ) -> Result<(Self, Option<String>), StorageError> {
        if let Some(token) = from_env.filter(|t| !t.trim().is_empty()) {
            let admin = Self::from_plain(token.trim());
            storage.set_admin_token_hash(&admin.hash, false).await?;
            return Ok((admin, None));
        }
        if let Some(hash) = storage.admin_token_hash().await? {
            return Ok((Self { hash }, None));
        }
        let legacy = std::fs::read_to_string(data_dir.join(ADMIN_HASH_FILE)).ok().map(|h| h.trim().to_owned());
        if let Some(hash) = legacy.filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())) {
            storage.set_admin_token_hash(&hash, true).await?;
        } else {
            let token = generate_secret("lr_admin_");
            if storage.set_admin_token_hash(&hash_secret(&token), true).await? {
                return Ok((Self::from_plain(&token), Some(token)));
            }
        }
        let hash = storage.admin_token_hash().await?.ok_or(StorageError::NotFound)?;
        Ok((Self { hash }, None))
    }
}

/// Equality that takes the same time wherever the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> leadrelay_store_sqlite::SqliteStore {
        let options = leadrelay_store_sqlite::OpenOptions { migrate: true, exclusive: false, ..Default::default() };
        leadrelay_store_sqlite::SqliteStore::open(
            &dir.join("leadrelay.db"),
            options,
            leadrelay_core::vault::Keyring::for_tests(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_generated_token_is_stored_hashed_in_the_database_and_recognised_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (first, printed) = AdminToken::bootstrap(&store(dir.path()), dir.path(), None).await.unwrap();
        let token = printed.expect("printed once");
        assert!(first.matches(&token));
        assert!(!dir.path().join(ADMIN_HASH_FILE).exists(), "nothing is kept beside the database");
        let (again, printed_again) = AdminToken::bootstrap(&store(dir.path()), dir.path(), None).await.unwrap();
        assert!(printed_again.is_none());
        assert!(again.matches(&token));
        assert!(!again.matches("lr_admin_wrong"));
    }

    #[tokio::test]
    async fn two_processes_on_one_database_share_the_admin_token() {
        let (db, dir_a, dir_b) =
            (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (store(db.path()), store(db.path()));
        let (first, second) =
            tokio::join!(AdminToken::bootstrap(&a, dir_a.path(), None), AdminToken::bootstrap(&b, dir_b.path(), None));
        let ((first, p1), (second, p2)) = (first.unwrap(), second.unwrap());
        let token = p1.or(p2).expect("one of them generated and printed it");
        assert!(first.matches(&token) && second.matches(&token));
    }

    #[tokio::test]
    async fn the_environment_token_wins_and_an_older_data_dir_hash_is_moved_in() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(ADMIN_HASH_FILE), hash_secret("old-token")).unwrap();
        let (t, printed) = AdminToken::bootstrap(&store(dir.path()), dir.path(), None).await.unwrap();
        assert!(printed.is_none());
        assert!(t.matches("old-token"));
        let (t, printed) = AdminToken::bootstrap(&store(dir.path()), dir.path(), Some("from-env")).await.unwrap();
        assert!(printed.is_none());
        assert!(t.matches("from-env"));
        let (t, _) = AdminToken::bootstrap(&store(dir.path()), dir.path(), None).await.unwrap();
        assert!(t.matches("from-env"), "the environment's token was stored for every process");
    }
}
