//! The storage contract, on PostgreSQL: one test per case of the testkit's suite, each in a
//! schema of its own, plus the checks of what only this backend does.

use std::sync::Arc;

use leadrelay_core::storage::Storage;
use leadrelay_core::vault::Keyring;
use leadrelay_store_postgres::{OpenOptions, PostgresStore};
use leadrelay_testkit::postgres::TestSchema;

async fn open_migrated(url: &str) -> PostgresStore {
    PostgresStore::open(url, OpenOptions { migrate: true, ..OpenOptions::default() }, Keyring::for_tests())
        .await
        .unwrap()
}

/// A new, migrated schema that lives as long as the test.
async fn fresh(case: &'static str) -> (TestSchema, Arc<dyn Storage>) {
    let schema = TestSchema::create(case).await;
    let store = open_migrated(&schema.url).await;
    (schema, Arc::new(store))
}

leadrelay_testkit::storage_contract_tests!(fresh);

#[tokio::test]
async fn a_database_newer_than_this_build_is_refused() {
    let schema = TestSchema::create("newer").await;
    drop(open_migrated(&schema.url).await);
    let client = leadrelay_testkit::postgres::connect(&schema.url).await;
    client
        .batch_execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)")
        .await
        .unwrap();
    let err =
        PostgresStore::open(&schema.url, OpenOptions { migrate: true, ..OpenOptions::default() }, Keyring::for_tests())
            .await
            .unwrap_err();
    assert!(format!("{err:?}").contains("run a newer leadrelay"), "{err:?}");
    let err = PostgresStore::open(&schema.url, OpenOptions::default(), Keyring::for_tests()).await.unwrap_err();
    assert!(format!("{err:?}").contains("run a newer leadrelay"), "without migrate too: {err:?}");
}

#[tokio::test]
async fn an_out_of_date_schema_is_refused_without_migrate() {
    let schema = TestSchema::create("out_of_date").await;
    let err = PostgresStore::open(&schema.url, OpenOptions::default(), Keyring::for_tests()).await.unwrap_err();
    assert!(format!("{err:?}").contains("leadrelay migrate"), "{err:?}");
}

#[tokio::test]
async fn the_audit_log_refuses_updates_and_deletes_even_in_sql() {
    let schema = TestSchema::create("audit_sql").await;
    drop(open_migrated(&schema.url).await);
    let client = leadrelay_testkit::postgres::connect(&schema.url).await;
    client
        .batch_execute(
            "INSERT INTO audit_log (id, at, actor, action, text_search) VALUES ('aud_1', 0, 'admin', 'lead.read', FALSE)",
        )
        .await
        .unwrap();
    for change in ["UPDATE audit_log SET action = 'lead.list'", "DELETE FROM audit_log", "TRUNCATE audit_log"] {
        let err = client.batch_execute(change).await.unwrap_err();
        assert!(format!("{err:?}").contains("append-only"), "{change}: {err:?}");
    }
    let n: i64 = client.query_one("SELECT COUNT(*) FROM audit_log", &[]).await.unwrap().get(0);
    assert_eq!(n, 1);
}

#[tokio::test]
async fn nodes_starting_together_migrate_once() {
    let schema = TestSchema::create("together").await;
    let opens = (0..4).map(|_| open_migrated(&schema.url));
    let stores = futures_util::future::join_all(opens).await;
    assert_eq!(stores.len(), 4);
    let client = leadrelay_testkit::postgres::connect(&schema.url).await;
    let n: i64 = client.query_one("SELECT COUNT(*) FROM schema_migrations", &[]).await.unwrap().get(0);
    assert_eq!(n, leadrelay_store_postgres::MIGRATIONS.len() as i64);
    let keys: i64 = client
        .query_one("SELECT COUNT(*) FROM instance_settings WHERE key = 'vault_index_key'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(keys, 1, "one index key for every node");
}

#[test]
fn the_migrations_have_sqlites_names_in_sqlites_order() {
    let names = |m: &[(&'static str, &'static str)]| m.iter().map(|(n, _)| *n).collect::<Vec<_>>();
    assert_eq!(names(leadrelay_store_postgres::MIGRATIONS), names(leadrelay_store_sqlite::MIGRATIONS));
}
