//! The vault's index key, and key rotation over every sealed column
//! (`leadrelay_core::stored::SEALED_COLUMNS`). A PostgreSQL database is new with this backend, so
//! there is no plaintext of an older leadrelay to seal, unlike on SQLite.

use leadrelay_core::storage::{Result, StorageError};
use leadrelay_core::stored::SEALED_COLUMNS;
use leadrelay_core::vault::{Keyring, Vault};
use tokio_postgres::types::ToSql;

use crate::{Db, map_err};

/// The `instance_settings` key of the sealed index key.
const INDEX_KEY: &str = "vault_index_key";
/// The advisory lock (with a hash of the schema) that makes nodes starting together create one
/// index key.
const VAULT_LOCK: i32 = 0x7661_756c; // "vaul"

/// Unlocks the vault with the database's index key, creating it on first use and re-sealing it
/// when the primary key changed. Refuses keys that cannot open it.
pub(crate) async fn unlock(conn: &mut deadpool_postgres::Object, keys: Keyring) -> Result<Vault> {
    let tx = conn.transaction().await.map_err(map_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))", &[&VAULT_LOCK])
        .await
        .map_err(map_err)?;
    let stored: Option<String> = tx
        .query_opt("SELECT value FROM instance_settings WHERE key = $1", &[&INDEX_KEY])
        .await
        .map_err(map_err)?
        .map(|r| r.get(0));
    let (vault, sealed) = Vault::unlock(keys, stored.as_deref()).map_err(|e| StorageError::Other(Box::new(e)))?;
    if let Some(sealed) = sealed {
        tx.execute(
            "INSERT INTO instance_settings (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&INDEX_KEY, &sealed],
        )
        .await
        .map_err(map_err)?;
    }
    tx.commit().await.map_err(map_err)?;
    Ok(vault)
}

/// Re-seals, with the primary key, up to `limit` rows that hold a value of an older key.
pub(crate) async fn reseal_stale(db: &Db<'_>, limit: u32) -> Result<u64> {
    let v = db.vault;
    let fresh = format!("s1{}.%", v.keyring().primary());
    let mut done = 0u64;
    for (table, key, columns) in SEALED_COLUMNS {
        let remaining = i64::from(limit) - i64::try_from(done).unwrap_or(i64::MAX);
        if remaining <= 0 {
            break;
        }
        let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
        let stale: Vec<String> = names.iter().map(|n| format!("({n} IS NOT NULL AND {n} NOT LIKE $1)")).collect();
        let key_text: Vec<String> = key.iter().map(|k| format!("{k}::text")).collect();
        let sql = format!(
            "SELECT {}, {} FROM {table} WHERE {} LIMIT $2 FOR UPDATE SKIP LOCKED",
            key_text.join(", "),
            names.join(", "),
            stale.join(" OR ")
        );
        let rows = db.rows(&sql, &[&fresh, &remaining]).await?;
        let row_is: Vec<String> = key.iter().enumerate().map(|(i, k)| format!("{k}::text = ${}", i + 1)).collect();
        for row in rows {
            let mut args: Vec<String> = (0..key.len()).map(|i| row.get(i)).collect();
            let mut sets = Vec::new();
            for (i, (name, column)) in columns.iter().enumerate() {
                let Some(sealed) = row.get::<_, Option<String>>(key.len() + i) else { continue };
                if !v.is_stale(&sealed) {
                    continue;
                }
                let plain = v.open(*column, &sealed).map_err(|e| StorageError::Other(Box::new(e)))?;
                args.push(v.seal(*column, &plain));
                sets.push(format!("{name} = ${}", args.len()));
            }
            if sets.is_empty() {
                continue;
            }
            let sql = format!("UPDATE {table} SET {} WHERE {}", sets.join(", "), row_is.join(" AND "));
            let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
            db.exec(&sql, &params).await?;
            done += 1;
        }
    }
    Ok(done)
}

/// Sealed values per key id, over every sealed column.
pub(crate) async fn values_by_key(db: &Db<'_>) -> Result<Vec<(String, u64)>> {
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    for (table, _, columns) in SEALED_COLUMNS {
        for (name, _) in *columns {
            let sql = format!("SELECT substr({name}, 3, 8), COUNT(*) FROM {table} WHERE {name} IS NOT NULL GROUP BY 1");
            for row in db.rows(&sql, &[]).await? {
                *counts.entry(row.get(0)).or_default() += u64::try_from(row.get::<_, i64>(1)).unwrap_or(0);
            }
        }
    }
    Ok(counts.into_iter().collect())
}
