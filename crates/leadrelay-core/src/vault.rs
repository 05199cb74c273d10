//! Personal data and secrets sealed at rest, the same way on every storage backend.
//!
//! A backend never writes a customer field, a note, a destination's settings or a receiver's
//! answer in plaintext: it seals each value with [`Vault::seal`] (XChaCha20-Poly1305, a fresh
//! random 192-bit nonce per value, the column's name as associated data so a value cannot be
//! moved to another column, and the id of the key that sealed it written in front) and opens
//! it with [`Vault::open`]. Keys rotate: values name their key, so a [`Keyring`] holding the
//! old and the new key opens both while the old ones are re-sealed.
//!
//! Matching and search cannot use ciphertext, so they use keyed hashes (HMAC-SHA256) under an
//! *index key*: the customer's match key ([`Vault::match_digest`]) and each normalised word of
//! a lead's names, email and company ([`Vault::search_terms`]). Unkeyed hashes of e-mail
//! addresses could be reversed by hashing a list of addresses; keyed ones cannot without the
//! key. The index key is random, made once per database and stored sealed under the data keys
//! ([`Vault::unlock`]), so rotating the data keys never re-hashes the index, and every node
//! that shares the database and the keys shares it.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::customer::{Customer, MatchKey};

type HmacSha256 = Hmac<Sha256>;

/// Every sealed value starts with this, then the key id, then `.`.
const SEALED_PREFIX: &str = "s1";
const NONCE_BYTES: usize = 24;
const KEY_BYTES: usize = 32;
/// The most search terms one lead contributes (a hostile lead cannot bloat the index).
pub const MAX_TERMS_PER_LEAD: usize = 24;
/// Bytes of the keyed hash kept per search term.
const TERM_BYTES: usize = 12;

/// Which column a sealed value belongs to: bound into the ciphertext as associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// A customer's first name.
    FirstName,
    /// A customer's last name.
    LastName,
    /// A customer's email.
    Email,
    /// A customer's phone.
    Phone,
    /// A customer's company.
    Company,
    /// A customer's job title.
    Title,
    /// A lead's free-text description or notes.
    Description,
    /// The `LeadSource` string as received (free text in older forms).
    RawLeadSource,
    /// A destination's settings (URLs with secrets, credentials).
    DestinationSettings,
    /// A delivery attempt's message.
    AttemptMessage,
    /// The start of a receiver's answer kept with an attempt.
    AttemptExcerpt,
    /// The database's index key.
    IndexKey,
    /// A workspace user's sign-in address.
    UserEmail,
    /// A workspace user's name.
    UserName,
    /// What came of a follow-up activity (free text).
    ActivityOutcome,
    /// A follow-up activity's note (free text).
    ActivityNote,
    /// Why an opportunity was won, lost, disqualified or moved back (free text).
    OpportunityReason,
}

impl Column {
    fn aad(self) -> &'static [u8] {
        match self {
            Self::FirstName => b"first_name",
            Self::LastName => b"last_name",
            Self::Email => b"email",
            Self::Phone => b"phone",
            Self::Company => b"company",
            Self::Title => b"title",
            Self::Description => b"description",
            Self::RawLeadSource => b"raw_lead_source",
            Self::DestinationSettings => b"destination_settings",
            Self::AttemptMessage => b"attempt_message",
            Self::AttemptExcerpt => b"attempt_excerpt",
            Self::UserEmail => b"user_email",
            Self::UserName => b"user_name",
            Self::ActivityOutcome => b"activity_outcome",
            Self::ActivityNote => b"activity_note",
            Self::OpportunityReason => b"opportunity_reason",
            Self::IndexKey => b"index_key",
        }
    }
}

/// Why a value could not be sealed or opened, or a keyring not built. Never carries the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// An encryption key is not 32 bytes of base64.
    #[error(
        "an encryption key must be 32 random bytes in base64 (44 characters); generate one with `leadrelay keys generate`"
    )]
    BadKey,
    /// A value names a key the keyring does not hold.
    #[error(
        "the database holds data sealed with encryption key {found}, which is not configured (configured: {configured}); start with the key this database was created with"
    )]
    UnknownKey {
        /// The key id in the value.
        found: KeyId,
        /// The keys the keyring holds.
        configured: String,
    },
    /// The key id matched but the value does not open: a damaged value or a different key
    /// with a colliding id.
    #[error(
        "a value sealed with key {0} does not open with it: the value is damaged or the key is not the one it was sealed with"
    )]
    Damaged(KeyId),
    /// Not a sealed value at all.
    #[error("a stored value is not sealed (expected an encrypted value)")]
    NotSealed,
}

/// A key's public name: the first 4 bytes of an HMAC of the key, hex. It tells keys apart in
/// values, errors and `keys status` without revealing anything of the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; 4]);

impl KeyId {
    fn of(key: &[u8; KEY_BYTES]) -> Self {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(b"leadrelay key id");
        let out = mac.finalize().into_bytes();
        Self([out[0], out[1], out[2], out[3]])
    }

    /// Parses the 8 hex digits of [`KeyId`]'s `Display`.
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut out = [0u8; 4];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok()?;
        }
        Some(Self(out))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

struct DataKey {
    id: KeyId,
    cipher: XChaCha20Poly1305,
}

/// The data keys: the primary one seals, every one opens.
pub struct Keyring {
    /// The primary key first.
    keys: Vec<DataKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring").field("keys", &self.ids()).finish()
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).expect("the operating system's random source is available");
    out
}

fn decode_key(text: &str) -> Result<[u8; KEY_BYTES], VaultError> {
    let bytes = STANDARD.decode(text.trim()).map_err(|_| VaultError::BadKey)?;
    bytes.try_into().map_err(|_| VaultError::BadKey)
}

impl Keyring {
    /// A keyring from base64 keys, the primary (sealing) key first, then older ones that may
    /// still be needed to open values.
    ///
    /// # Errors
    /// [`VaultError::BadKey`] when a key is not 32 bytes of base64.
    pub fn from_base64<'a>(primary: &str, older: impl IntoIterator<Item = &'a str>) -> Result<Self, VaultError> {
        let mut keys = vec![Self::key(decode_key(primary)?)];
        for text in older {
            let key = Self::key(decode_key(text)?);
            if keys.iter().all(|k| k.id != key.id) {
                keys.push(key);
            }
        }
        Ok(Self { keys })
    }

    fn key(bytes: [u8; KEY_BYTES]) -> DataKey {
        DataKey { id: KeyId::of(&bytes), cipher: XChaCha20Poly1305::new(&bytes.into()) }
    }

    /// A new random key, base64, for a key file or `security.encryption_key`.
    pub fn generate_key() -> String {
        STANDARD.encode(random::<KEY_BYTES>())
    }

    /// A fixed keyring for tests.
    pub fn for_tests() -> Self {
        Self { keys: vec![Self::key([7; KEY_BYTES])] }
    }

    /// The key that seals.
    pub fn primary(&self) -> KeyId {
        self.keys[0].id
    }

    /// Every key, the primary first.
    pub fn ids(&self) -> Vec<KeyId> {
        self.keys.iter().map(|k| k.id).collect()
    }

    fn seal(&self, column: Column, plain: &[u8]) -> String {
        let key = &self.keys[0];
        let nonce = random::<NONCE_BYTES>();
        let sealed = key
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad: column.aad() })
            .expect("XChaCha20-Poly1305 seals any value that fits in memory");
        let mut raw = Vec::with_capacity(NONCE_BYTES + sealed.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}.{}", key.id, URL_SAFE_NO_PAD.encode(raw))
    }

    fn open(&self, column: Column, sealed: &str) -> Result<Vec<u8>, VaultError> {
        let id = sealed_key_id(sealed).ok_or(VaultError::NotSealed)?;
        let body = &sealed[SEALED_PREFIX.len() + 9..];
        let key = self.keys.iter().find(|k| k.id == id).ok_or_else(|| VaultError::UnknownKey {
            found: id,
            configured: self.ids().iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        })?;
        let raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| VaultError::Damaged(id))?;
        if raw.len() < NONCE_BYTES {
            return Err(VaultError::Damaged(id));
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_BYTES);
        key.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: column.aad() })
            .map_err(|_| VaultError::Damaged(id))
    }
}

/// The key a sealed value names, or `None` when `value` is not a sealed value.
pub fn sealed_key_id(value: &str) -> Option<KeyId> {
    let rest = value.strip_prefix(SEALED_PREFIX)?;
    if rest.as_bytes().get(8) != Some(&b'.') {
        return None;
    }
    KeyId::parse(rest.get(..8)?)
}

/// The keyring plus the database's index key: what a storage backend seals, opens and hashes
/// with.
pub struct Vault {
    ring: Keyring,
    index: HmacSha256,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault").field("keys", &self.ring.ids()).finish_non_exhaustive()
    }
}

impl Vault {
    /// Opens the database's index key (`stored`, as [`Vault::unlock`] returned it when the
    /// database was new) with `ring`. A new database (`None`) gets a fresh index key; the
    /// second value is then the sealed form to store. When `stored` was sealed with an older
    /// key, the second value is it re-sealed with the primary key.
    ///
    /// # Errors
    /// [`VaultError::UnknownKey`] when the database was sealed with a key `ring` does not hold
    /// (the wrong key was configured): the caller must refuse to start.
    pub fn unlock(ring: Keyring, stored: Option<&str>) -> Result<(Self, Option<String>), VaultError> {
        let (index_key, reseal) = match stored {
            Some(sealed) => {
                let bytes = ring.open(Column::IndexKey, sealed)?;
                let key: [u8; KEY_BYTES] = bytes.try_into().map_err(|_| VaultError::NotSealed)?;
                let stale = sealed_key_id(sealed) != Some(ring.primary());
                (key, stale.then(|| ring.seal(Column::IndexKey, &key)))
            }
            None => {
                let key = random::<KEY_BYTES>();
                (key, Some(ring.seal(Column::IndexKey, &key)))
            }
        };
        let index = <HmacSha256 as Mac>::new_from_slice(&index_key).expect("HMAC takes any key length");
        Ok((Self { ring, index }, reseal))
    }

    /// A vault with fixed keys, for tests.
    pub fn for_tests() -> Self {
        let ring = Keyring::for_tests();
        let index = <HmacSha256 as Mac>::new_from_slice(&[9; KEY_BYTES]).expect("HMAC takes any key length");
        Self { ring, index }
    }

    /// The keys.
    pub fn keyring(&self) -> &Keyring {
        &self.ring
    }

    /// Seals `plain` for `column` with the primary key.
    pub fn seal(&self, column: Column, plain: &str) -> String {
        self.ring.seal(column, plain.as_bytes())
    }

    /// [`Vault::seal`] of a value that may be absent.
    pub fn seal_opt(&self, column: Column, plain: Option<&str>) -> Option<String> {
        plain.map(|p| self.seal(column, p))
    }

    /// Opens a value sealed for `column`.
    ///
    /// # Errors
    /// An unknown key, a damaged value, or a value that is not sealed.
    pub fn open(&self, column: Column, sealed: &str) -> Result<String, VaultError> {
        let bytes = self.ring.open(column, sealed)?;
        String::from_utf8(bytes).map_err(|_| VaultError::Damaged(sealed_key_id(sealed).unwrap_or(KeyId([0; 4]))))
    }

    /// [`Vault::open`] of a value that may be absent.
    ///
    /// # Errors
    /// As [`Vault::open`].
    pub fn open_opt(&self, column: Column, sealed: Option<&str>) -> Result<Option<String>, VaultError> {
        sealed.map(|s| self.open(column, s)).transpose()
    }

    /// Whether `sealed` was sealed with a key other than the primary one (rotation re-seals it).
    pub fn is_stale(&self, sealed: &str) -> bool {
        sealed_key_id(sealed) != Some(self.ring.primary())
    }

    fn keyed_hash(&self, purpose: &str, text: &str, bytes: usize) -> String {
        let mut mac = self.index.clone();
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(text.as_bytes());
        URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..bytes])
    }

    /// A search term: 12 bytes of the keyed hash are plenty to tell words apart (a collision
    /// only adds a lead of the same publisher to a result) and keep the index small.
    fn term(&self, word: &str) -> String {
        self.keyed_hash("term", word, TERM_BYTES)
    }

    /// What storage keeps to find a customer by `key`: a keyed hash, never the key.
    pub fn match_digest(&self, key: &MatchKey) -> String {
        match key {
            MatchKey::Email(e) => self.keyed_hash("match:email", e, 32),
            MatchKey::NameCompanyPhone(k) => self.keyed_hash("match:ncp", k, 32),
        }
    }

    /// What storage keeps to find a workspace user by sign-in address (normalised): a keyed
    /// hash under a purpose of its own, so a user's digest never equals the match digest of a
    /// customer with the same address and the two cannot be joined in the database.
    pub fn user_email_digest(&self, normalized_email: &str) -> String {
        self.keyed_hash("user:email", normalized_email, 32)
    }

    /// The blind index terms of a customer: each normalised word of the first and last name,
    /// the company and the email (and the whole email), keyed-hashed, without repeats, at most
    /// [`MAX_TERMS_PER_LEAD`].
    pub fn search_terms(&self, customer: &Customer) -> Vec<String> {
        let mut words: Vec<String> = Vec::new();
        let fields = [&customer.first_name, &customer.last_name, &customer.company, &customer.email];
        for field in fields.into_iter().flatten() {
            words.extend(search_words(field));
        }
        if let Some(email) = customer.normalized_email() {
            words.push(email);
        }
        let mut terms: Vec<String> = Vec::new();
        for w in words {
            let term = self.term(&w);
            if !terms.contains(&term) {
                terms.push(term);
            }
            if terms.len() == MAX_TERMS_PER_LEAD {
                break;
            }
        }
        terms
    }

    /// The terms a search text asks for (every one must match), the same normalisation as
    /// [`Vault::search_terms`]. A whole email address is one term.
    pub fn query_terms(&self, text: &str) -> Vec<String> {
        let mut terms = Vec::new();
        for part in text.split_whitespace() {
            let lower = part.to_lowercase();
            if crate::customer::is_email_shaped(&lower) {
                terms.push(self.term(&lower));
                continue;
            }
            for w in search_words(part) {
                let t = self.term(&w);
                if !terms.contains(&t) {
                    terms.push(t);
                }
            }
        }
        terms.truncate(MAX_TERMS_PER_LEAD);
        terms
    }
}

/// The words of `text` a search can find: runs of letters and digits, lowercased, of at least
/// two characters.
pub fn search_words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| w.chars().count() >= 2).map(str::to_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(n: u8) -> Keyring {
        Keyring { keys: vec![Keyring::key([n; KEY_BYTES])] }
    }

    #[test]
    fn a_sealed_value_opens_only_in_its_column_and_never_shows_the_plaintext() {
        let v = Vault::for_tests();
        let sealed = v.seal(Column::Email, "ada@quillworks.io");
        assert!(!sealed.contains("ada") && !sealed.contains("quillworks"));
        assert_eq!(v.open(Column::Email, &sealed).unwrap(), "ada@quillworks.io");
        assert_eq!(v.open(Column::Phone, &sealed), Err(VaultError::Damaged(v.keyring().primary())));
        assert_ne!(v.seal(Column::Email, "same"), v.seal(Column::Email, "same"), "a fresh nonce per value");
        assert_eq!(sealed_key_id(&sealed), Some(v.keyring().primary()));
        assert_eq!(v.open(Column::Email, "ada@quillworks.io"), Err(VaultError::NotSealed));
    }

    #[test]
    fn a_damaged_value_is_refused() {
        let v = Vault::for_tests();
        let mut sealed = v.seal(Column::Company, "Quillworks");
        let last = sealed.pop().unwrap();
        sealed.push(if last == 'A' { 'B' } else { 'A' });
        assert!(matches!(v.open(Column::Company, &sealed), Err(VaultError::Damaged(_))));
    }

    #[test]
    fn the_wrong_key_cannot_unlock_a_database_and_says_which_key_it_needs() {
        let (_, stored) = Vault::unlock(ring(1), None).unwrap();
        let stored = stored.expect("a new database gets an index key");
        let err = Vault::unlock(ring(2), Some(&stored)).unwrap_err();
        let VaultError::UnknownKey { found, configured } = &err else { panic!("{err:?}") };
        assert_eq!(*found, ring(1).primary());
        assert_eq!(*configured, ring(2).primary().to_string());
        let (again, reseal) = Vault::unlock(ring(1), Some(&stored)).unwrap();
        assert!(reseal.is_none());
        drop(again);
    }

    #[test]
    fn rotation_keeps_the_index_key_and_opens_values_of_the_old_key() {
        let (old, stored) = Vault::unlock(ring(1), None).unwrap();
        let sealed = old.seal(Column::FirstName, "Ada");
        let key = MatchKey::Email("ada@quillworks.io".into());
        let both = Keyring { keys: vec![Keyring::key([2; KEY_BYTES]), Keyring::key([1; KEY_BYTES])] };
        let (new, reseal) = Vault::unlock(both, stored.as_deref()).unwrap();
        assert!(reseal.is_some_and(|r| sealed_key_id(&r) == Some(new.keyring().primary())));
        assert_eq!(new.open(Column::FirstName, &sealed).unwrap(), "Ada");
        assert!(new.is_stale(&sealed) && !new.is_stale(&new.seal(Column::FirstName, "Ada")));
        assert_eq!(new.match_digest(&key), old.match_digest(&key), "the index survives rotation");
    }

    #[test]
    fn keys_parse_from_base64_and_refuse_anything_else() {
        let k = Keyring::generate_key();
        let ring = Keyring::from_base64(&k, [k.as_str()]).unwrap();
        assert_eq!(ring.ids().len(), 1, "a repeated key is kept once");
        assert_eq!(KeyId::parse(&ring.primary().to_string()), Some(ring.primary()));
        assert_eq!(Keyring::from_base64("c2hvcnQ=", []).unwrap_err(), VaultError::BadKey);
        assert_eq!(Keyring::from_base64("not base64!", []).unwrap_err(), VaultError::BadKey);
    }

    #[test]
    fn search_finds_whole_words_of_names_company_and_email() {
        let v = Vault::for_tests();
        let c = Customer::from_raw(
            Some("Ada".into()),
            Some("Quillfeather".into()),
            Some("Ada.Q@Quillworks.io".into()),
            Some("+1 555".into()),
            Some("US".into()),
            Some("Quillworks Ltd".into()),
            Some("CTO".into()),
        );
        let terms = v.search_terms(&c);
        for q in ["quillfeather", "QUILLWORKS", "ada quillworks", "ada.q@quillworks.io"] {
            let wanted = v.query_terms(q);
            assert!(!wanted.is_empty() && wanted.iter().all(|t| terms.contains(t)), "{q}");
        }
        for q in ["quill", "cto", "555"] {
            assert!(!v.query_terms(q).iter().all(|t| terms.contains(t)), "{q} must not match");
        }
        assert!(terms.iter().all(|t| !t.contains("quill")));
    }

    #[test]
    fn a_user_digest_is_keyed_and_never_the_customer_match_digest_of_the_same_address() {
        let v = Vault::for_tests();
        let address = "ada@quillworks.io";
        let digest = v.user_email_digest(address);
        assert_eq!(digest, v.user_email_digest(address));
        assert_ne!(digest, v.user_email_digest("grace@quillworks.io"));
        assert_ne!(digest, v.match_digest(&MatchKey::Email(address.into())));
        let (other, _) = Vault::unlock(ring(3), None).unwrap();
        assert_ne!(digest, other.user_email_digest(address), "another database's index key, another digest");
    }

    #[test]
    fn a_hostile_lead_adds_a_bounded_number_of_terms() {
        let v = Vault::for_tests();
        let many = (0..500).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
        let c = Customer::from_raw(Some(many), None, None, None, None, None, None);
        assert_eq!(v.search_terms(&c).len(), MAX_TERMS_PER_LEAD);
    }
}
