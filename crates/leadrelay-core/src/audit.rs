//! The audit log's vocabulary: who ([`Actor`]) did what ([`AuditAction`]) to which object
//! ([`AuditObject`]), and when. Entries hold ids, counts and action names only, never personal
//! data: no email, name, search text or URL, so the log can be kept and shown long after the
//! leads it speaks of were erased.

use std::fmt;

use crate::clock::Timestamp;
use crate::ids::{
    AuditId, CustomerId, DeliveryId, DestinationId, IngestKeyId, LeadId, OpportunityId, PublisherId, TokenId, UserId,
};

/// Who acted: the admin token, an API token named by its id (never the token itself), or a
/// signed-in person of a publisher's team named by their user id (never their address).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ActorId {
    /// The admin token.
    Admin,
    /// An API token.
    Token(TokenId),
    /// A workspace user, through their session.
    User(UserId),
}

impl ActorId {
    /// The stored and wire form: `admin`, `tok_…` or `usr_…`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Admin => "admin",
            Self::Token(id) => id.as_str(),
            Self::User(id) => id.as_str(),
        }
    }

    /// Parses `admin`, a token id or a user id.
    ///
    /// # Errors
    /// The rule, when `s` is none of them.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s == "admin" {
            return Ok(Self::Admin);
        }
        TokenId::parse(s)
            .map(Self::Token)
            .or_else(|| UserId::parse(s).map(Self::User))
            .ok_or("must be 'admin', a token id (tok_…) or a user id (usr_…)")
    }
}

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The caller of an audited use case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Which credential.
    pub id: ActorId,
    /// The publisher a token is bound to (`None` for the admin and marketplace tokens).
    pub publisher: Option<PublisherId>,
}

impl Actor {
    /// The admin token.
    pub fn admin() -> Self {
        Self { id: ActorId::Admin, publisher: None }
    }

    /// An API token, with the publisher it is bound to.
    pub fn token(id: TokenId, publisher: Option<PublisherId>) -> Self {
        Self { id: ActorId::Token(id), publisher }
    }

    /// A workspace user of `publisher`.
    pub fn user(id: UserId, publisher: PublisherId) -> Self {
        Self { id: ActorId::User(id), publisher: Some(publisher) }
    }
}

macro_rules! audit_actions {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// What was done. The names are stable: they are stored and filtered on.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AuditAction {
            $($(#[$doc])* $variant,)*
        }

        impl AuditAction {
            /// Every action, in documentation order.
            pub const ALL: &'static [AuditAction] = &[$(Self::$variant),*];

            /// Stable name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }
        }
    };
}

audit_actions! {
    /// One lead was read (`GET /v1/leads/{id}`).
    LeadRead = "lead.read",
    /// A page of the lead list was read; `text_search` says whether it was filtered by a search
    /// text (which is not kept: it is personal).
    LeadList = "lead.list",
    /// Leads were exported as CSV.
    LeadExport = "lead.export",
    /// Leads were imported from CSV; `count` is how many were stored.
    LeadImport = "lead.import",
    /// A customer and its timeline were read.
    CustomerRead = "customer.read",
    /// A customer was split (a wrong merge undone); `count` is how many leads moved.
    CustomerSplit = "customer.split",
    /// A destination was created.
    DestinationCreate = "destination.create",
    /// A destination was enabled.
    DestinationEnable = "destination.enable",
    /// A destination was disabled by an operator.
    DestinationDisable = "destination.disable",
    /// A test lead was sent to a destination (Validate).
    DestinationValidate = "destination.validate",
    /// Deliveries to a destination were replayed; `count` is how many were queued.
    DestinationReplay = "destination.replay",
    /// One delivery was retried.
    DeliveryRetry = "delivery.retry",
    /// An API token was created.
    TokenCreate = "token.create",
    /// An API token was revoked.
    TokenRevoke = "token.revoke",
    /// An ingest key was created.
    IngestKeyCreate = "ingest_key.create",
    /// An ingest key was revoked.
    IngestKeyRevoke = "ingest_key.revoke",
    /// The erasure of a person's personal data (SPEC §7), with the number of leads erased as
    /// `count` and no object (the address is personal).
    Erase = "customer.erase",
    /// Hook for the export of everything held about an email address (SPEC §7): recorded by
    /// that use case with `count` leads and no object (the address is personal).
    SubjectExport = "subject.export",
    /// One opportunity was read.
    OpportunityRead = "opportunity.read",
    /// A page of the opportunity list was read; `text_search` as for `lead.list`.
    OpportunityList = "opportunity.list",
    /// An opportunity's status, owner or next touch was changed.
    OpportunityUpdate = "opportunity.update",
    /// A follow-up activity was logged on an opportunity.
    OpportunityActivity = "opportunity.activity",
    /// A checklist item of an opportunity was ticked or unticked.
    OpportunityChecklist = "opportunity.checklist",
    /// The publisher's sales settings were replaced.
    SalesSettingsUpdate = "sales_settings.update",
    /// The KPI report was read (JSON or CSV).
    KpisRead = "kpis.read",
    /// Hook for the rotation of the encryption key of personal data: recorded by the rotation
    /// with `count` rows re-encrypted.
    KeysRotated = "keys.rotate",
    /// A workspace user was added to a publisher's team (the object is the user; never the
    /// address or name).
    UserCreate = "user.create",
    /// A user accepted their invitation and set a password (the actor is that user).
    UserInviteAccept = "user.invite_accept",
    /// A user signed in: a session began.
    SessionCreate = "session.create",
    /// A user signed out: their session ended.
    SessionDelete = "session.delete",
}

impl AuditAction {
    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The object an action was done to, by id. Each id's prefix says what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditObject {
    /// A lead.
    Lead(LeadId),
    /// A customer.
    Customer(CustomerId),
    /// A destination.
    Destination(DestinationId),
    /// A delivery.
    Delivery(DeliveryId),
    /// An API token.
    Token(TokenId),
    /// An ingest key.
    IngestKey(IngestKeyId),
    /// An opportunity.
    Opportunity(OpportunityId),
    /// A workspace user.
    User(UserId),
}

impl AuditObject {
    /// The id, prefix included.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Lead(id) => id.as_str(),
            Self::Customer(id) => id.as_str(),
            Self::Destination(id) => id.as_str(),
            Self::Delivery(id) => id.as_str(),
            Self::Token(id) => id.as_str(),
            Self::IngestKey(id) => id.as_str(),
            Self::Opportunity(id) => id.as_str(),
            Self::User(id) => id.as_str(),
        }
    }

    /// Parses any of the ids above by its prefix.
    pub fn parse(s: &str) -> Option<Self> {
        LeadId::parse(s)
            .map(Self::Lead)
            .or_else(|| CustomerId::parse(s).map(Self::Customer))
            .or_else(|| DestinationId::parse(s).map(Self::Destination))
            .or_else(|| DeliveryId::parse(s).map(Self::Delivery))
            .or_else(|| TokenId::parse(s).map(Self::Token))
            .or_else(|| IngestKeyId::parse(s).map(Self::IngestKey))
            .or_else(|| OpportunityId::parse(s).map(Self::Opportunity))
            .or_else(|| UserId::parse(s).map(Self::User))
    }
}

/// One entry of the audit log. Append-only: once stored it is never changed or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Time-ordered id (`aud_…`).
    pub id: AuditId,
    /// When.
    pub at: Timestamp,
    /// Who.
    pub actor: Actor,
    /// Whose data it concerned: the publisher that sees the entry. `None` for actions across
    /// publishers (the admin's unfiltered lead list, a marketplace token).
    pub publisher: Option<PublisherId>,
    /// What.
    pub action: AuditAction,
    /// To which object, when it was one.
    pub object: Option<AuditObject>,
    /// How many items (leads listed, exported or imported, deliveries replayed), where it says something.
    pub count: Option<u64>,
    /// A read was filtered by a search text (the text itself is never kept).
    pub text_search: bool,
}

impl AuditEntry {
    /// A new entry for `action` by `actor` at `at`, concerning `publisher`'s data.
    pub fn new(at: Timestamp, actor: &Actor, publisher: Option<&PublisherId>, action: AuditAction) -> Self {
        Self {
            id: AuditId::generate(at),
            at,
            actor: actor.clone(),
            publisher: publisher.cloned(),
            action,
            object: None,
            count: None,
            text_search: false,
        }
    }

    /// With the object it was done to.
    #[must_use]
    pub fn object(mut self, object: AuditObject) -> Self {
        self.object = Some(object);
        self
    }

    /// With a count.
    #[must_use]
    pub fn count(mut self, n: u64) -> Self {
        self.count = Some(n);
        self
    }

    /// Marks a read filtered by a search text.
    #[must_use]
    pub fn text_search(mut self, searched: bool) -> Self {
        self.text_search = searched;
        self
    }
}

/// Filters for the audit list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only entries concerning this publisher's data.
    pub publisher: Option<PublisherId>,
    /// Only this action.
    pub action: Option<AuditAction>,
    /// Only this actor.
    pub actor: Option<ActorId>,
    /// At or after.
    pub since: Option<Timestamp>,
    /// Before.
    pub until: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_round_trip_and_are_unique() {
        let names: std::collections::BTreeSet<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names.len(), AuditAction::ALL.len());
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(*a));
        }
        assert_eq!(AuditAction::parse("lead.delete"), None);
    }

    #[test]
    fn actors_and_objects_round_trip_through_their_ids() {
        let t = TokenId::generate(Timestamp::from_millis(1));
        assert_eq!(ActorId::parse("admin"), Ok(ActorId::Admin));
        assert_eq!(ActorId::parse(t.as_str()), Ok(ActorId::Token(t.clone())));
        let u = UserId::generate(Timestamp::from_millis(1));
        assert_eq!(ActorId::parse(u.as_str()), Ok(ActorId::User(u.clone())));
        assert_eq!(Actor::user(u.clone(), PublisherId::parse("contoso").unwrap()).id.as_str(), u.as_str());
        assert!(ActorId::parse("someone@contoso.com").is_err());
        let objects = [
            AuditObject::Lead(LeadId::generate(Timestamp::from_millis(1))),
            AuditObject::Customer(CustomerId::generate(Timestamp::from_millis(1))),
            AuditObject::Destination(DestinationId::generate(Timestamp::from_millis(1))),
            AuditObject::Delivery(DeliveryId::generate(Timestamp::from_millis(1))),
            AuditObject::Token(t),
            AuditObject::IngestKey(IngestKeyId::generate(Timestamp::from_millis(1))),
            AuditObject::User(u),
        ];
        for o in objects {
            assert_eq!(AuditObject::parse(o.as_str()), Some(o.clone()));
        }
        assert_eq!(AuditObject::parse("https://example.com"), None);
    }
}
