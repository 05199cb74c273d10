//! Credentials: API tokens and ingest keys, created once in plain, stored and looked up by hash.

use leadrelay_core::access::Scope;
use leadrelay_core::audit::{Actor, AuditAction, AuditObject};
use leadrelay_core::storage::{ApiToken, IngestKey, StorageError};
use leadrelay_core::{IngestKeyId, OfferId, PublisherId, TokenId};

use super::{Ops, OpsError, OpsResult};
use crate::auth::{generate_secret, hash_secret};

impl Ops {
    /// Creates an ingest key; returns it with its plain value (shown once).
    ///
    /// # Errors
    /// `Invalid` for an offer of another publisher or an unknown offer.
    pub async fn create_ingest_key(
        &self,
        actor: &Actor,
        publisher: &PublisherId,
        offer: Option<OfferId>,
    ) -> OpsResult<(IngestKey, String)> {
        self.require_publisher(publisher).await?;
        if let Some(o) = &offer {
            if !o.belongs_to(publisher) {
                return Err(OpsError::field("offer", format!("must be an offer of publisher '{publisher}'")));
            }
            if matches!(self.storage.get_offer(o).await, Err(StorageError::NotFound)) {
                return Err(OpsError::field("offer", "is not a known offer of this publisher"));
            }
        }
        // Lowercase letters and digits only, so the key survives any URL handling.
        let plain: String =
            generate_secret("").chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
        let plain = format!("lk{plain}");
        let now = self.clock.now();
        let key = IngestKey {
            id: IngestKeyId::generate(now),
            key_hash: hash_secret(&plain),
            publisher: publisher.clone(),
            offer,
            created_at: now,
            revoked_at: None,
        };
        self.storage.create_ingest_key(&key).await?;
        let entry = self.audit_entry(actor, Some(publisher), AuditAction::IngestKeyCreate);
        self.record(entry.object(AuditObject::IngestKey(key.id.clone()))).await?;
        Ok((key, plain))
    }

    /// Creates an API token; returns it with its plain value (shown once). `publisher` `None`
    /// makes a marketplace token (scope `marketplace` only).
    ///
    /// # Errors
    /// `Invalid` for scopes that do not fit the kind of token.
    pub async fn create_token(
        &self,
        actor: &Actor,
        publisher: Option<&PublisherId>,
        scopes: Vec<Scope>,
    ) -> OpsResult<(ApiToken, String)> {
        if scopes.is_empty() {
            return Err(OpsError::field("scopes", "must name at least one scope"));
        }
        for (i, s) in scopes.iter().enumerate() {
            if s.is_publisher_scope() != publisher.is_some() {
                let rule = if publisher.is_some() {
                    "must be ingest, read, write or admin (the marketplace scope is for tokens of no publisher)"
                } else {
                    "must be marketplace"
                };
                return Err(OpsError::field(format!("scopes[{i}]"), rule));
            }
        }
        if let Some(p) = publisher {
            self.require_publisher(p).await?;
        }
        let prefix = if publisher.is_some() { "lr_pub_" } else { "lr_mkt_" };
        let plain = generate_secret(prefix);
        let now = self.clock.now();
        let mut scopes = scopes;
        scopes.sort_unstable();
        scopes.dedup();
        let token = ApiToken {
            id: TokenId::generate(now),
            token_hash: hash_secret(&plain),
            publisher: publisher.cloned(),
            scopes,
            created_at: now,
            revoked_at: None,
        };
        self.storage.create_api_token(&token).await?;
        let entry = self.audit_entry(actor, publisher, AuditAction::TokenCreate);
        self.record(entry.object(AuditObject::Token(token.id.clone()))).await?;
        Ok((token, plain))
    }

    /// The live API token for a presented bearer value.
    ///
    /// # Errors
    /// `NotFound` for unknown or revoked tokens.
    pub async fn authenticate_token(&self, plain: &str) -> OpsResult<ApiToken> {
        let hash = hash_secret(plain);
        if let Some(found) = self.tokens.get(&hash) {
            return Ok(found);
        }
        let token = match self.storage.find_api_token(&hash).await {
            Ok(t) if t.revoked_at.is_none() => t,
            Ok(_) | Err(StorageError::NotFound) => return Err(OpsError::NotFound("token")),
            Err(e) => return Err(e.into()),
        };
        self.tokens.insert(hash, token.clone());
        Ok(token)
    }

    /// Revokes a publisher's token.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn revoke_token(&self, actor: &Actor, publisher: &PublisherId, id: &TokenId) -> OpsResult<()> {
        match self.storage.revoke_api_token(publisher, id, self.clock.now()).await {
            Err(StorageError::NotFound) => return Err(OpsError::NotFound("token")),
            other => other?,
        }
        self.tokens.clear();
        let entry = self.audit_entry(actor, Some(publisher), AuditAction::TokenRevoke);
        self.record(entry.object(AuditObject::Token(id.clone()))).await
    }

    /// Revokes an ingest key.
    ///
    /// # Errors
    /// `NotFound`.
    pub async fn revoke_ingest_key(&self, actor: &Actor, publisher: &PublisherId, id: &IngestKeyId) -> OpsResult<()> {
        match self.storage.revoke_ingest_key(publisher, id, self.clock.now()).await {
            Err(StorageError::NotFound) => return Err(OpsError::NotFound("ingest key")),
            other => other?,
        }
        self.ingest_keys.clear();
        let entry = self.audit_entry(actor, Some(publisher), AuditAction::IngestKeyRevoke);
        self.record(entry.object(AuditObject::IngestKey(id.clone()))).await
    }

    /// The live ingest key for a plain key value.
    ///
    /// # Errors
    /// `NotFound` for unknown or revoked keys.
    pub async fn authenticate_ingest_key(&self, plain: &str) -> OpsResult<IngestKey> {
        // Keys are generated in lowercase; matching in any case survives proxies that change it.
        let hash = hash_secret(&plain.trim().to_ascii_lowercase());
        if let Some(found) = self.ingest_keys.get(&hash) {
            return Ok(found);
        }
        let key = match self.storage.find_ingest_key(&hash).await {
            Ok(k) if k.revoked_at.is_none() => k,
            Ok(_) | Err(StorageError::NotFound) => return Err(OpsError::NotFound("ingest key")),
            Err(e) => return Err(e.into()),
        };
        self.ingest_keys.insert(hash, key.clone());
        Ok(key)
    }
}
