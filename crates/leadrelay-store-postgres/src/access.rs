//! AccessStore on PostgreSQL: ingest keys and API tokens (stored as hashes), and the admin
//! token's hash.
//!
//! A credential's id and hash are each unique, so of concurrent creates one wins and the others
//! are `Conflict`. The admin token's hash is one row of `instance_settings`: a first start
//! inserts it with `ON CONFLICT DO NOTHING`, which waits for a concurrent insert of the same key
//! and then does nothing, so exactly one first start stores its hash.

use leadrelay_core::access::format_scopes;
use leadrelay_core::storage::{AccessStore, ApiToken, IngestKey, Result, StorageError};
use leadrelay_core::{IngestKeyId, OfferId, PublisherId, Timestamp, TokenId};

use crate::rows::{
    ADMIN_TOKEN_KEY, API_TOKEN_COLUMNS, INGEST_KEY_COLUMNS, api_token_from_row, get, ingest_key_from_row,
};
use crate::{Db, Mode, PostgresStore, in_transaction};

async fn admin_token_hash(db: &Db<'_>) -> Result<Option<String>> {
    let row = db.optional("SELECT value FROM instance_settings WHERE key = $1", &[&ADMIN_TOKEN_KEY]).await?;
    row.map(|r| get(&r, 0)).transpose()
}

async fn set_admin_token_hash(db: &Db<'_>, hash: &str, only_if_unset: bool) -> Result<bool> {
    let sql = if only_if_unset {
        "INSERT INTO instance_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING"
    } else {
        "INSERT INTO instance_settings (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    };
    Ok(db.exec(sql, &[&ADMIN_TOKEN_KEY, &hash]).await? > 0)
}

async fn create_ingest_key(db: &Db<'_>, k: &IngestKey) -> Result<()> {
    db.exec(
        "INSERT INTO ingest_keys (id, key_hash, publisher_id, offer_id, created_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, NULL)",
        &[
            &k.id.as_str(),
            &k.key_hash,
            &k.publisher.as_str(),
            &k.offer.as_ref().map(OfferId::as_str),
            &k.created_at.as_millis(),
        ],
    )
    .await
    .map(drop)
}

async fn find_ingest_key(db: &Db<'_>, key_hash: &str) -> Result<IngestKey> {
    let r = db.one(&format!("SELECT {INGEST_KEY_COLUMNS} FROM ingest_keys WHERE key_hash = $1"), &[&key_hash]).await?;
    ingest_key_from_row((get(&r, 0)?, get(&r, 1)?, get(&r, 2)?, get(&r, 3)?, get(&r, 4)?, get(&r, 5)?))
}

async fn create_api_token(db: &Db<'_>, t: &ApiToken) -> Result<()> {
    db.exec(
        "INSERT INTO api_tokens (id, token_hash, publisher_id, scopes, created_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, NULL)",
        &[
            &t.id.as_str(),
            &t.token_hash,
            &t.publisher.as_ref().map(PublisherId::as_str),
            &format_scopes(&t.scopes),
            &t.created_at.as_millis(),
        ],
    )
    .await
    .map(drop)
}

async fn find_api_token(db: &Db<'_>, token_hash: &str) -> Result<ApiToken> {
    let r =
        db.one(&format!("SELECT {API_TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1"), &[&token_hash]).await?;
    api_token_from_row((get(&r, 0)?, get(&r, 1)?, get(&r, 2)?, get(&r, 3)?, get(&r, 4)?, get(&r, 5)?))
}

/// The tables [`revoke`] may name.
#[derive(Clone, Copy)]
enum Credentials {
    IngestKeys,
    ApiTokens,
}

/// Marks a publisher's credential revoked; revoking twice keeps the first time (the row lock
/// orders concurrent revocations, and the second keeps what the first wrote). `NotFound` if the
/// publisher has no such credential.
async fn revoke(db: &Db<'_>, table: Credentials, publisher: &PublisherId, id: &str, now: Timestamp) -> Result<()> {
    let sql = match table {
        Credentials::IngestKeys => {
            "UPDATE ingest_keys SET revoked_at = COALESCE(revoked_at, $3) WHERE id = $1 AND publisher_id = $2"
        }
        Credentials::ApiTokens => {
            "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $3) WHERE id = $1 AND publisher_id = $2"
        }
    };
    let n = db.exec(sql, &[&id, &publisher.as_str(), &now.as_millis()]).await?;
    if n == 0 { Err(StorageError::NotFound) } else { Ok(()) }
}

#[async_trait::async_trait]
impl AccessStore for PostgresStore {
    async fn create_ingest_key(&self, key: &IngestKey) -> Result<()> {
        in_transaction!(self, Mode::Write, |db| create_ingest_key(db, key))
    }

    async fn find_ingest_key(&self, key_hash: &str) -> Result<IngestKey> {
        in_transaction!(self, Mode::Read, |db| find_ingest_key(db, key_hash))
    }

    async fn revoke_ingest_key(&self, publisher: &PublisherId, id: &IngestKeyId, now: Timestamp) -> Result<()> {
        in_transaction!(self, Mode::Write, |db| revoke(db, Credentials::IngestKeys, publisher, id.as_str(), now))
    }

    async fn create_api_token(&self, token: &ApiToken) -> Result<()> {
        in_transaction!(self, Mode::Write, |db| create_api_token(db, token))
    }

    async fn find_api_token(&self, token_hash: &str) -> Result<ApiToken> {
        in_transaction!(self, Mode::Read, |db| find_api_token(db, token_hash))
    }

    async fn revoke_api_token(&self, publisher: &PublisherId, id: &TokenId, now: Timestamp) -> Result<()> {
        in_transaction!(self, Mode::Write, |db| revoke(db, Credentials::ApiTokens, publisher, id.as_str(), now))
    }

    async fn admin_token_hash(&self) -> Result<Option<String>> {
        in_transaction!(self, Mode::Read, |db| admin_token_hash(db))
    }

    async fn set_admin_token_hash(&self, hash: &str, only_if_unset: bool) -> Result<bool> {
        in_transaction!(self, Mode::Write, |db| set_admin_token_hash(db, hash, only_if_unset))
    }
}
