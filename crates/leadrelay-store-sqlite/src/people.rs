//! The people of each publisher's sales team and their sessions.

use leadrelay_core::sales::{Session, User};
use leadrelay_core::storage::{PeopleStore, Result};
use leadrelay_core::{PublisherId, Timestamp, UserId};

use crate::SqliteStore;

#[async_trait::async_trait]
impl PeopleStore for SqliteStore {
    async fn create_user(&self, _user: &User) -> Result<()> {
        unimplemented!("people store")
    }
    async fn get_user(&self, _id: &UserId) -> Result<User> {
        unimplemented!("people store")
    }
    async fn find_user_by_email(&self, _email: &str) -> Result<User> {
        unimplemented!("people store")
    }
    async fn list_users(&self, _publisher: &PublisherId) -> Result<Vec<User>> {
        unimplemented!("people store")
    }
    async fn accept_invitation(&self, _invite_hash: &str, _password_hash: &str, _now: Timestamp) -> Result<User> {
        unimplemented!("people store")
    }
    async fn create_session(&self, _session: &Session) -> Result<()> {
        unimplemented!("people store")
    }
    async fn find_session(&self, _token_hash: &str, _now: Timestamp) -> Result<(Session, User)> {
        unimplemented!("people store")
    }
    async fn delete_session(&self, _token_hash: &str) -> Result<()> {
        unimplemented!("people store")
    }
}
