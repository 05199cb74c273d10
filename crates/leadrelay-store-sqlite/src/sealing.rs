//! Unlocking the database's vault at open, and sealing what an older leadrelay wrote in
//! plaintext.
//!
//! The first keyed open of a database stores its index key (sealed) in `instance_settings`.
//! When that database already holds rows (written before values were sealed), the same
//! transaction seals every personal value and secret, re-hashes each customer's match key with
//! the index key and builds the search index, so no plaintext is left behind and no lead is
//! lost or half-converted: either all of it is sealed or nothing changed.

use leadrelay_core::Customer;
use leadrelay_core::storage::{Result, StorageError};
use leadrelay_core::vault::{Column, Keyring, Vault};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{map_err, query_rows};
use leadrelay_core::stored::SEALED_COLUMNS;

const INDEX_KEY: &str = "vault_index_key";

fn stored_index_key(c: &Connection) -> Result<Option<String>> {
    c.query_row("SELECT value FROM instance_settings WHERE key = ?1", [INDEX_KEY], |r| r.get(0))
        .optional()
        .map_err(map_err)
}

/// The vault of the database behind `conn`, opened with `keys`.
///
/// # Errors
/// `Other` naming the key the database needs when `keys` cannot open it (the wrong key was
/// configured): the caller must not start.
pub(crate) fn unlock(conn: &mut Connection, keys: Keyring) -> Result<Vault> {
    let refuse = |e| StorageError::Other(Box::new(e));
    if let Some(stored) = stored_index_key(conn)? {
        let (vault, reseal) = Vault::unlock(keys, Some(&stored)).map_err(refuse)?;
        if let Some(resealed) = reseal {
            conn.execute("UPDATE instance_settings SET value = ?2 WHERE key = ?1", params![INDEX_KEY, resealed])
                .map_err(map_err)?;
        }
        return Ok(vault);
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(map_err)?;
    // Another process may have unlocked it first, between our read and our lock.
    if let Some(stored) = stored_index_key(&tx)? {
        drop(tx);
        return Vault::unlock(keys, Some(&stored)).map(|(v, _)| v).map_err(refuse);
    }
    let (vault, sealed) = Vault::unlock(keys, None).map_err(refuse)?;
    seal_plaintext_rows(&tx, &vault)?;
    tx.execute(
        "INSERT INTO instance_settings (key, value) VALUES (?1, ?2)",
        params![INDEX_KEY, sealed.expect("a new index key is returned sealed")],
    )
    .map_err(map_err)?;
    tx.commit().map_err(map_err)?;
    Ok(vault)
}

type PlainLead = (String, [Option<String>; 9]);

fn seal_plaintext_rows(c: &Connection, v: &Vault) -> Result<()> {
    let leads: Vec<PlainLead> = query_rows(
        c,
        "SELECT id, first_name, last_name, email, phone, country, company, title, description, raw_lead_source
         FROM leads ORDER BY customer_id, received_at",
        [],
        |r| {
            let mut f: [Option<String>; 9] = Default::default();
            for (i, slot) in f.iter_mut().enumerate() {
                *slot = r.get(i + 1)?;
            }
            Ok((r.get(0)?, f))
        },
        Ok,
    )?;
    if leads.is_empty() && !has_rows(c, "destinations")? {
        return Ok(());
    }
    tracing::info!(leads = leads.len(), "sealing the personal data an older leadrelay stored in plaintext");
    rehash_customers(c, v)?;
    for (id, f) in &leads {
        let [first, last, email, phone, country, company, title, description, raw] = f.clone();
        let customer = Customer { first_name: first, last_name: last, email, phone, country, company, title };
        let [first, last, email, phone, company, title, description, raw] =
            leadrelay_core::stored::leads::seal_personal(v, &customer, description.as_deref(), raw.as_deref());
        c.execute(
            "UPDATE leads SET first_name = ?2, last_name = ?3, email = ?4, phone = ?5, company = ?6, title = ?7,
                              description = ?8, raw_lead_source = ?9
             WHERE id = ?1",
            params![id, first, last, email, phone, company, title, description, raw],
        )
        .map_err(map_err)?;
        crate::leads::index_terms(c, v, id, &customer)?;
    }
    let settings: Vec<(String, String)> =
        query_rows(c, "SELECT id, settings FROM destinations", [], |r| Ok((r.get(0)?, r.get(1)?)), Ok)?;
    for (id, plain) in settings {
        c.execute(
            "UPDATE destinations SET settings = ?2 WHERE id = ?1",
            params![id, v.seal(Column::DestinationSettings, &plain)],
        )
        .map_err(map_err)?;
    }
    let attempts: Vec<(String, i64, Option<String>, Option<String>)> = query_rows(
        c,
        "SELECT delivery_id, number, message, excerpt FROM attempts",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        Ok,
    )?;
    for (delivery, number, message, excerpt) in attempts {
        c.execute(
            "UPDATE attempts SET message = ?3, excerpt = ?4 WHERE delivery_id = ?1 AND number = ?2",
            params![
                delivery,
                number,
                v.seal_opt(Column::AttemptMessage, message.as_deref()),
                v.seal_opt(Column::AttemptExcerpt, excerpt.as_deref())
            ],
        )
        .map_err(map_err)?;
    }
    let errors: Vec<(String, String)> = query_rows(
        c,
        "SELECT id, last_error FROM deliveries WHERE last_error IS NOT NULL",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
        Ok,
    )?;
    for (id, message) in errors {
        c.execute(
            "UPDATE deliveries SET last_error = ?2 WHERE id = ?1",
            params![id, v.seal(Column::AttemptMessage, &message)],
        )
        .map_err(map_err)?;
    }
    Ok(())
}

fn has_rows(c: &Connection, table: &str) -> Result<bool> {
    c.query_row(&format!("SELECT EXISTS (SELECT 1 FROM {table})"), [], |r| r.get(0)).map_err(map_err)
}

/// Each customer's match hash again, keyed, from its earliest lead (still plaintext here).
/// Customers split off by hand keep their `split:` key, which names no person.
fn rehash_customers(c: &Connection, v: &Vault) -> Result<()> {
    let rows: Vec<(String, [Option<String>; 7])> = query_rows(
        c,
        "SELECT c.id, l.first_name, l.last_name, l.email, l.phone, l.country, l.company, l.title
         FROM customers c
         JOIN leads l ON l.id = (SELECT id FROM leads WHERE customer_id = c.id ORDER BY received_at, id LIMIT 1)
         WHERE c.match_hash NOT LIKE 'split:%'",
        [],
        |r| {
            let mut f: [Option<String>; 7] = Default::default();
            for (i, slot) in f.iter_mut().enumerate() {
                *slot = r.get(i + 1)?;
            }
            Ok((r.get(0)?, f))
        },
        Ok,
    )?;
    for (id, [first, last, email, phone, country, company, title]) in rows {
        let customer = Customer { first_name: first, last_name: last, email, phone, country, company, title };
        if let Some(key) = customer.match_key() {
            c.execute("UPDATE customers SET match_hash = ?2 WHERE id = ?1", params![id, v.match_digest(&key)])
                .map_err(map_err)?;
        }
    }
    Ok(())
}

/// Re-seals, with the primary key, up to `limit` rows that hold a value of an older key.
pub(crate) fn reseal_stale(c: &crate::Db<'_>, limit: u32) -> Result<u64> {
    let v = c.vault;
    let fresh = format!("s1{}.%", v.keyring().primary());
    let mut done = 0u64;
    for (table, key, columns) in SEALED_COLUMNS {
        let remaining = i64::from(limit) - i64::try_from(done).unwrap_or(i64::MAX);
        if remaining <= 0 {
            break;
        }
        let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
        let stale: Vec<String> = names.iter().map(|n| format!("({n} IS NOT NULL AND {n} NOT LIKE ?1)")).collect();
        let sql = format!(
            "SELECT {}, {} FROM {table} WHERE {} LIMIT ?2",
            key.join(", "),
            names.join(", "),
            stale.join(" OR ")
        );
        let rows: Vec<(Vec<rusqlite::types::Value>, Vec<Option<String>>)> = query_rows(
            c,
            &sql,
            params![fresh, remaining],
            |r| {
                let ids = (0..key.len()).map(|i| r.get(i)).collect::<rusqlite::Result<Vec<_>>>()?;
                let values = (0..names.len()).map(|i| r.get(key.len() + i)).collect::<rusqlite::Result<Vec<_>>>()?;
                Ok((ids, values))
            },
            Ok,
        )?;
        let row_is: Vec<String> = key.iter().enumerate().map(|(i, k)| format!("{k} = ?{}", i + 1)).collect();
        for (ids, values) in rows {
            let mut sets = Vec::new();
            let mut args: Vec<rusqlite::types::Value> = ids;
            for ((name, column), value) in columns.iter().zip(values) {
                let Some(sealed) = value else { continue };
                if !v.is_stale(&sealed) {
                    continue;
                }
                let plain = v.open(*column, &sealed).map_err(|e| StorageError::Other(Box::new(e)))?;
                args.push(v.seal(*column, &plain).into());
                sets.push(format!("{name} = ?{}", args.len()));
            }
            let sql = format!("UPDATE {table} SET {} WHERE {}", sets.join(", "), row_is.join(" AND "));
            c.execute(&sql, rusqlite::params_from_iter(args)).map_err(map_err)?;
            done += 1;
        }
    }
    Ok(done)
}

/// Sealed values per key id, over every sealed column.
pub(crate) fn values_by_key(c: &Connection) -> Result<Vec<(String, u64)>> {
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    for (table, _, columns) in SEALED_COLUMNS {
        for (name, _) in *columns {
            let sql = format!("SELECT substr({name}, 3, 8), COUNT(*) FROM {table} WHERE {name} IS NOT NULL GROUP BY 1");
            let rows: Vec<(String, i64)> = query_rows(c, &sql, [], |r| Ok((r.get(0)?, r.get(1)?)), Ok)?;
            for (id, n) in rows {
                *counts.entry(id).or_default() += u64::try_from(n).unwrap_or(0);
            }
        }
    }
    Ok(counts.into_iter().collect())
}
