//! The storage contract, on SQLite: one test per case of the testkit's suite, each on a fresh
//! file, plus the schema checks that only SQLite has.

use std::sync::Arc;

use leadrelay_core::storage::Storage;
use leadrelay_store_sqlite::{OpenOptions, SqliteStore};

/// A new, migrated database in a temporary directory that lives as long as the test.
async fn fresh(_case: &'static str) -> (tempfile::TempDir, Arc<dyn Storage>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        &dir.path().join("test.db"),
        OpenOptions { migrate: true, exclusive: false, ..Default::default() },
    )
    .unwrap();
    (dir, Arc::new(store))
}

leadrelay_testkit::storage_contract_tests!(fresh);

#[test]
fn a_database_newer_than_this_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    drop(SqliteStore::open(&path, OpenOptions { migrate: true, exclusive: false, ..Default::default() }).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)", []).unwrap();
    drop(conn);
    let err =
        SqliteStore::open(&path, OpenOptions { migrate: true, exclusive: false, ..Default::default() }).unwrap_err();
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
    let serving =
        SqliteStore::open(&path, OpenOptions { migrate: true, exclusive: true, ..Default::default() }).unwrap();
    let second =
        SqliteStore::open(&path, OpenOptions { migrate: true, exclusive: true, ..Default::default() }).unwrap_err();
    assert!(matches!(second, leadrelay_core::storage::StorageError::Conflict), "{second:?}");
    assert!(matches!(SqliteStore::migrate_file(&path), Err(leadrelay_core::storage::StorageError::Conflict)));
    SqliteStore::open(&path, OpenOptions { migrate: false, exclusive: false, ..Default::default() })
        .expect("a reader (the CLI) may open it");
    drop(serving);
    SqliteStore::open(&path, OpenOptions { migrate: true, exclusive: true, ..Default::default() })
        .expect("free again once the first stops");
}

#[test]
fn the_audit_log_refuses_updates_and_deletes_even_in_sql() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    drop(SqliteStore::open(&path, OpenOptions { migrate: true, exclusive: false, ..Default::default() }).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO audit_log (id, at, actor, action, text_search) VALUES ('aud_1', 0, 'admin', 'lead.read', 0)",
        [],
    )
    .unwrap();
    let update = conn.execute("UPDATE audit_log SET action = 'lead.list'", []).unwrap_err();
    assert!(update.to_string().contains("append-only"), "{update}");
    let delete = conn.execute("DELETE FROM audit_log", []).unwrap_err();
    assert!(delete.to_string().contains("append-only"), "{delete}");
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM audit_log WHERE action = 'lead.read'", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 1);
}
