//! Standard Webhooks signatures (`v1`, HMAC-SHA256): the secret format and the
//! `webhook-signature` header value. Receivers verify with any Standard Webhooks library.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A webhook signing secret: 24–64 random bytes, written `whsec_<base64>`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

/// Why a secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not `whsec_` + standard base64.
    #[error("must be 'whsec_' followed by standard base64")]
    Encoding,
    /// Decoded to fewer than 24 or more than 64 bytes.
    #[error("must decode to 24-64 bytes (got {0})")]
    Length(usize),
}

impl WebhookSecret {
    /// Reads `whsec_<base64>` (the bare base64 is accepted too, as receivers accept it).
    ///
    /// # Errors
    /// [`SignatureError`] when the encoding or length is wrong.
    pub fn parse(s: &str) -> Result<Self, SignatureError> {
        let b64 = s.strip_prefix("whsec_").unwrap_or(s);
        let bytes = STANDARD.decode(b64).map_err(|_| SignatureError::Encoding)?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(SignatureError::Length(bytes.len()));
        }
        Ok(Self(bytes))
    }

    /// Wraps raw key bytes (from a random generator).
    ///
    /// # Errors
    /// [`SignatureError::Length`] outside 24–64 bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, SignatureError> {
        if (24..=64).contains(&bytes.len()) { Ok(Self(bytes)) } else { Err(SignatureError::Length(bytes.len())) }
    }

    /// The `whsec_<base64>` form.
    pub fn to_whsec(&self) -> String {
        format!("whsec_{}", STANDARD.encode(&self.0))
    }

    /// The `v1,<base64>` signature of `id.timestamp.body`.
    pub fn sign(&self, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp_secs.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// The `webhook-signature` header for a message signed with every given secret, newest first,
/// separated by single spaces (rotation sends the new and the old signature).
pub fn signature_header(secrets: &[WebhookSecret], msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
    secrets.iter().map(|s| s.sign(msg_id, timestamp_secs, body)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_test_vector_is_reproduced() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, br#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_changed_body_changes_the_signature() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_ne!(secret.sign("m", 1, b"a"), secret.sign("m", 1, b"b"));
    }

    #[test]
    fn several_secrets_give_space_separated_entries() {
        let a = WebhookSecret::from_bytes(vec![1; 32]).unwrap();
        let b = WebhookSecret::from_bytes(vec![2; 32]).unwrap();
        let header = signature_header(&[a.clone(), b], "m", 1, b"x");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], a.sign("m", 1, b"x"));
    }

    #[test]
    fn secrets_of_the_wrong_shape_are_refused() {
        assert_eq!(WebhookSecret::parse("whsec_!!!"), Err(SignatureError::Encoding));
        assert_eq!(WebhookSecret::parse("whsec_AAAA"), Err(SignatureError::Length(3)));
        let s = WebhookSecret::from_bytes(vec![7; 32]).unwrap();
        assert_eq!(WebhookSecret::parse(&s.to_whsec()), Ok(s));
    }
}
