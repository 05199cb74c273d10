//! PeopleStore on PostgreSQL: the people of each publisher's sales team and their sessions.
//!
//! As on SQLite, a user's address and name are sealed (`Column::UserEmail`, `UserName`) and the
//! user is found by `email_hash`, the vault's keyed digest of the normalised address. That
//! column is `UNIQUE`, so of concurrent creates with one address exactly one commits and the
//! others wait for it and fail as `Conflict`. An invitation is closed by the same statement
//! that accepts it: a second acceptance waits for the first's row lock, then finds the row no
//! longer matching and answers `NotFound`.

use leadrelay_core::sales::{Session, User};
use leadrelay_core::storage::{PeopleStore, Result};
use leadrelay_core::vault::Column;
use leadrelay_core::{PublisherId, Timestamp, UserId};
use tokio_postgres::Row;

use crate::rows::{USER_COLUMNS, USER_RETURNING, UserRow, get, ts, user_email_digest};
use crate::{Db, Mode, PostgresStore, in_transaction};

/// How many ended sessions one sign-in clears away at most, so a sign-in after a long quiet
/// spell stays as quick as any other; the next ones clear the rest.
const SESSIONS_CLEARED_PER_SIGN_IN: i64 = 100;

/// The user columns starting at column `at`.
fn user_row_at(r: &Row, at: usize) -> Result<UserRow> {
    Ok(UserRow {
        id: get(r, at)?,
        publisher: get(r, at + 1)?,
        email: get(r, at + 2)?,
        name: get(r, at + 3)?,
        role: get(r, at + 4)?,
        password_hash: get(r, at + 5)?,
        invite_hash: get(r, at + 6)?,
        invite_expires_at: get(r, at + 7)?,
        created_at: get(r, at + 8)?,
    })
}

async fn create_user(db: &Db<'_>, u: &User) -> Result<()> {
    db.exec(
        "INSERT INTO users (id, publisher_id, email_hash, email, name, role, password_hash, invite_hash,
                            invite_expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &u.id.as_str(),
            &u.publisher.as_str(),
            &user_email_digest(db.vault, &u.email),
            &db.vault.seal(Column::UserEmail, &u.email),
            &db.vault.seal(Column::UserName, &u.name),
            &u.role.as_str(),
            &u.password_hash,
            &u.invite_hash,
            &u.invite_expires_at.map(Timestamp::as_millis),
            &u.created_at.as_millis(),
        ],
    )
    .await
    .map(drop)
}

/// One user by a condition on `u` (`u.id = $1`, `u.email_hash = $1`).
async fn user_where(db: &Db<'_>, condition: &str, value: &str) -> Result<User> {
    let r = db.one(&format!("SELECT {USER_COLUMNS} FROM users u WHERE {condition}"), &[&value]).await?;
    user_row_at(&r, 0)?.into_user(db.vault)
}

async fn find_user_by_email(db: &Db<'_>, email: &str) -> Result<User> {
    user_where(db, "u.email_hash = $1", &user_email_digest(db.vault, email)).await
}

/// `NotFound` for an unknown publisher, as on SQLite; both reads see one snapshot.
async fn list_users(db: &Db<'_>, publisher: &PublisherId) -> Result<Vec<User>> {
    db.one("SELECT 1 FROM publishers WHERE id = $1", &[&publisher.as_str()]).await?;
    let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.publisher_id = $1 ORDER BY u.created_at, u.id");
    db.rows(&sql, &[&publisher.as_str()]).await?.iter().map(|r| user_row_at(r, 0)?.into_user(db.vault)).collect()
}

async fn accept_invitation(db: &Db<'_>, invite_hash: &str, password_hash: &str, now: Timestamp) -> Result<User> {
    let sql = format!(
        "UPDATE users SET password_hash = $2, invite_hash = NULL, invite_expires_at = NULL
         WHERE invite_hash = $1 AND invite_expires_at > $3
         RETURNING {USER_RETURNING}"
    );
    let r = db.one(&sql, &[&invite_hash, &password_hash, &now.as_millis()]).await?;
    user_row_at(&r, 0)?.into_user(db.vault)
}

/// Stores the session and clears away a few sessions that ended before it began. Rows another
/// sign-in is clearing at the same time are skipped rather than waited for.
async fn create_session(db: &Db<'_>, s: &Session) -> Result<()> {
    db.exec(
        "DELETE FROM sessions WHERE token_hash IN (
             SELECT token_hash FROM sessions WHERE expires_at <= $1
             ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
        &[&s.created_at.as_millis(), &SESSIONS_CLEARED_PER_SIGN_IN],
    )
    .await?;
    db.exec(
        "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        &[&s.token_hash, &s.user.as_str(), &s.created_at.as_millis(), &s.expires_at.as_millis()],
    )
    .await
    .map(drop)
}

async fn find_session(db: &Db<'_>, token_hash: &str, now: Timestamp) -> Result<(Session, User)> {
    let sql = format!(
        "SELECT s.token_hash, s.created_at, s.expires_at, {USER_COLUMNS}
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = $1 AND s.expires_at > $2"
    );
    let r = db.one(&sql, &[&token_hash, &now.as_millis()]).await?;
    let user = user_row_at(&r, 3)?.into_user(db.vault)?;
    let session = Session {
        token_hash: get(&r, 0)?,
        user: user.id.clone(),
        created_at: ts(get(&r, 1)?),
        expires_at: ts(get(&r, 2)?),
    };
    Ok((session, user))
}

async fn delete_session(db: &Db<'_>, token_hash: &str) -> Result<()> {
    db.exec("DELETE FROM sessions WHERE token_hash = $1", &[&token_hash]).await.map(drop)
}

#[async_trait::async_trait]
impl PeopleStore for PostgresStore {
    async fn create_user(&self, user: &User) -> Result<()> {
        in_transaction!(self, Mode::Write, |db| create_user(db, user))
    }

    async fn get_user(&self, id: &UserId) -> Result<User> {
        in_transaction!(self, Mode::Read, |db| user_where(db, "u.id = $1", id.as_str()))
    }

    async fn find_user_by_email(&self, email: &str) -> Result<User> {
        in_transaction!(self, Mode::Read, |db| find_user_by_email(db, email))
    }

    async fn list_users(&self, publisher: &PublisherId) -> Result<Vec<User>> {
        in_transaction!(self, Mode::Read, |db| list_users(db, publisher))
    }

    async fn accept_invitation(&self, invite_hash: &str, password_hash: &str, now: Timestamp) -> Result<User> {
        in_transaction!(self, Mode::Write, |db| accept_invitation(db, invite_hash, password_hash, now))
    }

    async fn create_session(&self, session: &Session) -> Result<()> {
        in_transaction!(self, Mode::Write, |db| create_session(db, session))
    }

    async fn find_session(&self, token_hash: &str, now: Timestamp) -> Result<(Session, User)> {
        in_transaction!(self, Mode::Read, |db| find_session(db, token_hash, now))
    }

    async fn delete_session(&self, token_hash: &str) -> Result<()> {
        in_transaction!(self, Mode::Write, |db| delete_session(db, token_hash))
    }
}
