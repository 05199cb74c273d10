//! Identifiers. Generated ids are UUIDv7 (time-ordered) printed with a type prefix, so an id in
//! a log line says what it names and ids sort by creation time.

use std::fmt;

use crate::clock::Timestamp;

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this type starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A new time-ordered id for an object created at `at`.
            pub fn generate(at: Timestamp) -> Self {
                let ms = u64::try_from(at.as_millis()).unwrap_or(0);
                let ts = uuid::Timestamp::from_unix(uuid::NoContext, ms / 1000, ((ms % 1000) * 1_000_000) as u32);
                // NoContext leaves the sub-millisecond bits random, which keeps ids unique.
                Self(format!("{}{}", $prefix, uuid::Uuid::new_v7(ts).simple()))
            }

            /// Accepts an id of this type: the prefix followed by 32 lowercase hex digits.
            pub fn parse(s: &str) -> Option<Self> {
                let rest = s.strip_prefix($prefix)?;
                (rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
                    .then(|| Self(s.to_owned()))
            }

            /// The id as text, prefix included.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// A lead. Also the `webhook-id` of its HTTPS deliveries, so it must stay `[a-z0-9_]`.
    LeadId,
    "lead_"
);
prefixed_id!(
    /// One lead's delivery to one destination (an outbox row).
    DeliveryId,
    "dlv_"
);
prefixed_id!(
    /// A configured destination.
    DestinationId,
    "dst_"
);
prefixed_id!(
    /// A customer: the leads of one buyer at one publisher, merged.
    CustomerId,
    "cus_"
);
prefixed_id!(
    /// An API token (the token itself is a secret; this id names it).
    TokenId,
    "tok_"
);
prefixed_id!(
    /// An ingest key (the key itself is a secret; this id names it).
    IngestKeyId,
    "ik_"
);
prefixed_id!(
    /// An entry of the audit log.
    AuditId,
    "aud_"
);
prefixed_id!(
    /// A person of a publisher's sales team who signs in to the workspace.
    UserId,
    "usr_"
);
prefixed_id!(
    /// An opportunity: one customer's interest in one offer, which the sales team follows up.
    OpportunityId,
    "opp_"
);
prefixed_id!(
    /// One entry of an opportunity's follow-up log (a call, an e-mail, a meeting, a note).
    ActivityId,
    "act_"
);

/// A publisher's id, chosen by the publisher: 1–64 of `a-z 0-9 - _`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublisherId(String);

impl PublisherId {
    /// Checks the id rule.
    ///
    /// # Errors
    /// Returns the rule when `s` breaks it.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if is_id_part(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err("must be 1-64 characters of lowercase letters, digits, '-' and '_'")
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `s` is a valid publisher id or offer-id part.
pub(crate) fn is_id_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl fmt::Display for PublisherId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PublisherId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_sort_by_creation_time() {
        let a = LeadId::generate(Timestamp::from_millis(1_700_000_000_000));
        let b = LeadId::generate(Timestamp::from_millis(1_700_000_000_001));
        assert!(a < b);
        assert_eq!(LeadId::parse(a.as_str()), Some(a.clone()));
        assert!(a.as_str().starts_with("lead_"));
    }

    #[test]
    fn ids_of_another_type_or_shape_are_refused() {
        let d = DeliveryId::generate(Timestamp::from_millis(1));
        assert_eq!(LeadId::parse(d.as_str()), None);
        assert_eq!(LeadId::parse("lead_xyz"), None);
    }

    #[test]
    fn publisher_ids_follow_the_rule() {
        assert!(PublisherId::parse("contoso").is_ok());
        assert!(PublisherId::parse("con_toso-2").is_ok());
        assert!(PublisherId::parse("Contoso").is_err());
        assert!(PublisherId::parse("").is_err());
        assert!(PublisherId::parse("a.b").is_err());
    }
}
