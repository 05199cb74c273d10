//! The people of each publisher's sales team and their sessions.
//!
//! A user's address and name are sealed like a lead's (`Column::UserEmail`, `UserName`); the
//! user is found by `email_hash`, the vault's keyed digest of the normalised address under a
//! purpose of its own (`Vault::user_email_digest`), which is also what keeps an address to one
//! user across publishers (a `UNIQUE` column, so concurrent creates cannot both win).
//! Passwords arrive as Argon2id hashes and invitations and sessions as SHA-256 hashes of their
//! tokens: nothing here can sign anybody in.

use leadrelay_core::sales::{Session, User};
use leadrelay_core::storage::{PeopleStore, Result, StorageError};
use leadrelay_core::vault::Column;
use leadrelay_core::{PublisherId, Timestamp, UserId};
use rusqlite::{OptionalExtension, params};

use crate::rows::{USER_COLUMNS, USER_RETURNING, UserRow, ts, user_email_digest as email_digest};
use crate::{SqliteStore, map_err, query_rows};

/// The user columns starting at column `at`.
fn user_row_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: r.get(at)?,
        publisher: r.get(at + 1)?,
        email: r.get(at + 2)?,
        name: r.get(at + 3)?,
        role: r.get(at + 4)?,
        password_hash: r.get(at + 5)?,
        invite_hash: r.get(at + 6)?,
        invite_expires_at: r.get(at + 7)?,
        created_at: r.get(at + 8)?,
    })
}

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    user_row_at(r, 0)
}

/// One user by a condition on `u` (`u.id = ?1`, `u.email_hash = ?1`).
fn user_where(c: &crate::Db<'_>, condition: &str, value: &str) -> Result<User> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE {condition}");
    let row = c.prepare_cached(&sql).and_then(|mut s| s.query_row([value], user_row)).map_err(map_err)?;
    row.into_user(c.vault)
}

#[async_trait::async_trait]
impl PeopleStore for SqliteStore {
    async fn create_user(&self, user: &User) -> Result<()> {
        // Sealed and hashed here, in the caller's task: the writer thread runs SQL only.
        let email_hash = email_digest(&self.vault, &user.email);
        let email = self.vault.seal(Column::UserEmail, &user.email);
        let name = self.vault.seal(Column::UserName, &user.name);
        let u = user.clone();
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO users (id, publisher_id, email_hash, email, name, role, password_hash, invite_hash,
                                    invite_expires_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    u.id.as_str(),
                    u.publisher.as_str(),
                    email_hash,
                    email,
                    name,
                    u.role.as_str(),
                    u.password_hash,
                    u.invite_hash,
                    u.invite_expires_at.map(Timestamp::as_millis),
                    u.created_at.as_millis(),
                ])
            })
            .map(drop)
            .map_err(map_err)
        })
        .await
    }

    async fn get_user(&self, id: &UserId) -> Result<User> {
        let id = id.as_str().to_owned();
        self.read(move |c| user_where(c, "u.id = ?1", &id)).await
    }

    async fn find_user_by_email(&self, email: &str) -> Result<User> {
        let digest = email_digest(&self.vault, email);
        self.read(move |c| user_where(c, "u.email_hash = ?1", &digest)).await
    }

    async fn list_users(&self, publisher: &PublisherId) -> Result<Vec<User>> {
        let p = publisher.as_str().to_owned();
        self.read(move |c| {
            let known = c
                .prepare_cached("SELECT 1 FROM publishers WHERE id = ?1")
                .and_then(|mut s| s.query_row([&p], |_| Ok(())).optional())
                .map_err(map_err)?;
            if known.is_none() {
                return Err(StorageError::NotFound);
            }
            let sql =
                format!("SELECT {USER_COLUMNS} FROM users u WHERE u.publisher_id = ?1 ORDER BY u.created_at, u.id");
            query_rows(c, &sql, [&p], user_row, |row| row.into_user(c.vault))
        })
        .await
    }

    async fn accept_invitation(&self, invite_hash: &str, password_hash: &str, now: Timestamp) -> Result<User> {
        let (invite, password) = (invite_hash.to_owned(), password_hash.to_owned());
        self.write(move |c| {
            // One statement: of two acceptances of one token, the second finds it closed.
            let sql = format!(
                "UPDATE users SET password_hash = ?2, invite_hash = NULL, invite_expires_at = NULL
                 WHERE invite_hash = ?1 AND invite_expires_at > ?3
                 RETURNING {USER_RETURNING}"
            );
            let row = c
                .prepare_cached(&sql)
                .and_then(|mut s| s.query_row(params![invite, password, now.as_millis()], user_row))
                .map_err(map_err)?;
            row.into_user(c.vault)
        })
        .await
    }

    async fn create_session(&self, session: &Session) -> Result<()> {
        let s = session.clone();
        self.write(move |c| {
            // Sessions that ended before this one began sign nobody in: clear them as we go.
            c.prepare_cached("DELETE FROM sessions WHERE expires_at <= ?1")
                .and_then(|mut st| st.execute([s.created_at.as_millis()]))
                .map_err(map_err)?;
            c.prepare_cached(
                "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut st| {
                st.execute(params![s.token_hash, s.user.as_str(), s.created_at.as_millis(), s.expires_at.as_millis()])
            })
            .map(drop)
            .map_err(map_err)
        })
        .await
    }

    async fn find_session(&self, token_hash: &str, now: Timestamp) -> Result<(Session, User)> {
        let hash = token_hash.to_owned();
        self.read(move |c| {
            let sql = format!(
                "SELECT s.token_hash, s.created_at, s.expires_at, {USER_COLUMNS}
                 FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = ?1 AND s.expires_at > ?2"
            );
            let (token_hash, created, expires, row) = c
                .prepare_cached(&sql)
                .and_then(|mut st| {
                    st.query_row(params![hash, now.as_millis()], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, user_row_at(r, 3)?))
                    })
                })
                .map_err(map_err)?;
            let user = row.into_user(c.vault)?;
            let session =
                Session { token_hash, user: user.id.clone(), created_at: ts(created), expires_at: ts(expires) };
            Ok((session, user))
        })
        .await
    }

    async fn delete_session(&self, token_hash: &str) -> Result<()> {
        let hash = token_hash.to_owned();
        self.write(move |c| {
            c.prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")
                .and_then(|mut s| s.execute([&hash]))
                .map(drop)
                .map_err(map_err)
        })
        .await
    }
}
