//! PeopleStore on PostgreSQL. (Not yet written: every method refuses.)

#![allow(unused_variables)]
#![allow(unused_imports)]
use leadrelay_core::audit::*;
use leadrelay_core::destination::DestinationRecord;
use leadrelay_core::sales::kpi::*;
use leadrelay_core::sales::*;
use leadrelay_core::storage::*;
use leadrelay_core::*;
use std::time::Duration;

use crate::PostgresStore;

#[async_trait::async_trait]
impl PeopleStore for PostgresStore {
    async fn create_user(&self, user: &User) -> Result<()> {
        Err(StorageError::Other("PeopleStore is not written yet".into()))
    }

    async fn get_user(&self, id: &UserId) -> Result<User> {
        Err(StorageError::Other("PeopleStore is not written yet".into()))
    }

    async fn find_user_by_email(&self, email: &str) -> Result<User> {
        Err(StorageError::Other("PeopleStore is not written yet".into()))
    }

    async fn list_users(&self, publisher: &PublisherId) -> Result<Vec<User>> {
        Err(StorageError::Other("PeopleStore is not written yet".into()))
    }

    async fn accept_invitation(&self, invite_hash: &str, password_hash: &str, now: Timestamp) -> Result<User> {
        Err(StorageError::Other("PeopleStore is not written yet".into()))
    }

    async fn create_session(&self, session: &Session) -> Result<()> {
        Err(StorageError::Other("PeopleStore is not written yet".into()))
    }

    async fn find_session(&self, token_hash: &str, now: Timestamp) -> Result<(Session, User)> {
        Err(StorageError::Other("PeopleStore is not written yet".into()))
    }

    async fn delete_session(&self, token_hash: &str) -> Result<()> {
        Err(StorageError::Other("PeopleStore is not written yet".into()))
    }
}
