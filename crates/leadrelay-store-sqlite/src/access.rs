//! Ingest keys and API tokens (stored as hashes), and the admin token's hash.

use leadrelay_core::access::format_scopes;
use leadrelay_core::storage::{AccessStore, ApiToken, IngestKey, Result, StorageError};
use leadrelay_core::{IngestKeyId, OfferId, PublisherId, Timestamp, TokenId};
use rusqlite::{OptionalExtension, params};

use crate::rows::{
    ADMIN_TOKEN_KEY, API_TOKEN_COLUMNS, ApiTokenRow, INGEST_KEY_COLUMNS, IngestKeyRow, api_token_from_row,
    ingest_key_from_row,
};
use crate::{SqliteStore, map_err};

#[async_trait::async_trait]
impl AccessStore for SqliteStore {
    async fn admin_token_hash(&self) -> Result<Option<String>> {
        self.read(|c| {
            c.prepare_cached("SELECT value FROM instance_settings WHERE key = ?1")
                .and_then(|mut s| s.query_row([ADMIN_TOKEN_KEY], |r| r.get::<_, String>(0)).optional())
                .map_err(map_err)
        })
        .await
    }

    async fn set_admin_token_hash(&self, hash: &str, only_if_unset: bool) -> Result<bool> {
        let hash = hash.to_owned();
        self.write(move |c| {
            let sql = if only_if_unset {
                "INSERT INTO instance_settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING"
            } else {
                "INSERT INTO instance_settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            };
            Ok(c.execute(sql, [ADMIN_TOKEN_KEY, &hash]).map_err(map_err)? > 0)
        })
        .await
    }

    async fn create_ingest_key(&self, k: &IngestKey) -> Result<()> {
        let k = k.clone();
        self
            .write(move |c| {
                c.execute(
                    "INSERT INTO ingest_keys (id, key_hash, publisher_id, offer_id, created_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
                    params![k.id.as_str(), k.key_hash, k.publisher.as_str(), k.offer.as_ref().map(OfferId::as_str), k.created_at.as_millis()],
                )
                .map(drop)
                .map_err(map_err)
            })
            .await
    }

    async fn find_ingest_key(&self, key_hash: &str) -> Result<IngestKey> {
        let hash = key_hash.to_owned();
        self.read(move |c| {
            let row: IngestKeyRow = c
                .prepare_cached(&format!("SELECT {INGEST_KEY_COLUMNS} FROM ingest_keys WHERE key_hash = ?1"))
                .and_then(|mut s| {
                    s.query_row([&hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
                })
                .map_err(map_err)?;
            ingest_key_from_row(row)
        })
        .await
    }

    async fn revoke_ingest_key(&self, publisher: &PublisherId, id: &IngestKeyId, now: Timestamp) -> Result<()> {
        revoke(self, "ingest_keys", publisher, id.as_str(), now).await
    }

    async fn create_api_token(&self, t: &ApiToken) -> Result<()> {
        let t = t.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO api_tokens (id, token_hash, publisher_id, scopes, created_at, revoked_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
                params![
                    t.id.as_str(),
                    t.token_hash,
                    t.publisher.as_ref().map(PublisherId::as_str),
                    format_scopes(&t.scopes),
                    t.created_at.as_millis()
                ],
            )
            .map(drop)
            .map_err(map_err)
        })
        .await
    }

    async fn find_api_token(&self, token_hash: &str) -> Result<ApiToken> {
        let hash = token_hash.to_owned();
        self.read(move |c| {
            let row: ApiTokenRow = c
                .prepare_cached(&format!("SELECT {API_TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = ?1"))
                .and_then(|mut s| {
                    s.query_row([&hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
                })
                .map_err(map_err)?;
            api_token_from_row(row)
        })
        .await
    }

    async fn revoke_api_token(&self, publisher: &PublisherId, id: &TokenId, now: Timestamp) -> Result<()> {
        revoke(self, "api_tokens", publisher, id.as_str(), now).await
    }
}

/// Marks a publisher's credential (ingest key or API token) revoked; revoking twice keeps the
/// first time. `NotFound` if the publisher has no such credential.
async fn revoke(
    store: &SqliteStore,
    table: &'static str,
    publisher: &PublisherId,
    id: &str,
    now: Timestamp,
) -> Result<()> {
    let (p, id, now) = (publisher.as_str().to_owned(), id.to_owned(), now.as_millis());
    store
        .write(move |c| {
            let sql =
                format!("UPDATE {table} SET revoked_at = COALESCE(revoked_at, ?3) WHERE id = ?1 AND publisher_id = ?2");
            let n = c.execute(&sql, params![id, p, now]).map_err(map_err)?;
            if n == 0 { Err(StorageError::NotFound) } else { Ok(()) }
        })
        .await
}
