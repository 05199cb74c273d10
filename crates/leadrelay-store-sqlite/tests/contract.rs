//! The storage contract, on SQLite: one test per case, each on a fresh file.

use std::sync::Arc;

use leadrelay_core::storage::Storage;
use leadrelay_store_sqlite::{OpenOptions, SqliteStore};
use leadrelay_testkit::storage_contract as contract;

fn fresh() -> (tempfile::TempDir, Arc<dyn Storage>) {
    let dir = tempfile::tempdir().unwrap();
    let store =
        SqliteStore::open(&dir.path().join("test.db"), OpenOptions { migrate: true, exclusive: false }).unwrap();
    (dir, Arc::new(store))
}

macro_rules! contract_tests {
    ($($case:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $case() {
            let (_dir, store) = fresh();
            contract::$case(store).await;
        }
    )*};
}

contract_tests!(
    a_lead_and_its_deliveries_are_stored_together,
    a_failing_batch_stores_nothing,
    claimed_deliveries_are_hidden_from_a_second_claim,
    an_expired_lease_can_be_claimed_again,
    a_retry_is_due_only_at_its_time,
    a_disabled_destination_keeps_its_queue,
    dead_letters_are_listed_and_replayed,
    a_range_replay_reaches_leads_from_before_the_destination,
    concurrent_inserts_are_all_committed,
    lead_pages_follow_the_cursor,
    one_email_is_one_customer_and_repeats_are_duplicates,
    test_leads_stand_alone,
    concurrent_leads_of_a_new_customer_create_one_customer,
    a_split_moves_leads_and_releases_their_duplicates,
);

#[test]
fn a_database_newer_than_this_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    drop(SqliteStore::open(&path, OpenOptions { migrate: true, exclusive: false }).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)", []).unwrap();
    drop(conn);
    let err = SqliteStore::open(&path, OpenOptions { migrate: true, exclusive: false }).unwrap_err();
    assert!(format!("{err:?}").contains("run a newer leadrelay"), "{err:?}");
}

#[test]
fn an_out_of_date_schema_is_refused_without_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let err = SqliteStore::open(&dir.path().join("new.db"), OpenOptions::default()).unwrap_err();
    assert!(format!("{err:?}").contains("leadrelay migrate"), "{err:?}");
}

#[test]
fn a_second_serving_process_on_one_database_file_is_refused_while_readers_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let serving = SqliteStore::open(&path, OpenOptions { migrate: true, exclusive: true }).unwrap();
    let second = SqliteStore::open(&path, OpenOptions { migrate: true, exclusive: true }).unwrap_err();
    assert!(matches!(second, leadrelay_core::storage::StorageError::Conflict), "{second:?}");
    assert!(matches!(SqliteStore::migrate_file(&path), Err(leadrelay_core::storage::StorageError::Conflict)));
    SqliteStore::open(&path, OpenOptions { migrate: false, exclusive: false }).expect("a reader (the CLI) may open it");
    drop(serving);
    SqliteStore::open(&path, OpenOptions { migrate: true, exclusive: true }).expect("free again once the first stops");
}
