//! The storage contract, on SQLite: one test per case of the testkit's suite, each on a fresh
//! file, plus the schema checks that only SQLite has.

use std::sync::Arc;

use leadrelay_core::storage::Storage;
use leadrelay_store_sqlite::{OpenOptions, SqliteStore};

/// The store at `path`, migrated, opened with the tests' keys by a process that does not serve.
fn open_migrated(path: &std::path::Path) -> SqliteStore {
    SqliteStore::open(
        path,
        OpenOptions { migrate: true, exclusive: false, ..Default::default() },
        leadrelay_core::vault::Keyring::for_tests(),
    )
    .unwrap()
}

/// A new, migrated database in a temporary directory that lives as long as the test.
async fn fresh(_case: &'static str) -> (tempfile::TempDir, Arc<dyn Storage>) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_migrated(&dir.path().join("test.db"));
    (dir, Arc::new(store))
}

leadrelay_testkit::storage_contract_tests!(fresh);

#[test]
fn a_database_newer_than_this_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    drop(open_migrated(&path));
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)", []).unwrap();
    drop(conn);
    let err = SqliteStore::open(
        &path,
        OpenOptions { migrate: true, exclusive: false, ..Default::default() },
        leadrelay_core::vault::Keyring::for_tests(),
    )
    .unwrap_err();
    assert!(format!("{err:?}").contains("run a newer leadrelay"), "{err:?}");
}

#[test]
fn an_out_of_date_schema_is_refused_without_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let err = SqliteStore::open(
        &dir.path().join("new.db"),
        OpenOptions::default(),
        leadrelay_core::vault::Keyring::for_tests(),
    )
    .unwrap_err();
    assert!(format!("{err:?}").contains("leadrelay migrate"), "{err:?}");
}

#[test]
fn a_second_serving_process_on_one_database_file_is_refused_while_readers_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let serving = SqliteStore::open(
        &path,
        OpenOptions { migrate: true, exclusive: true, ..Default::default() },
        leadrelay_core::vault::Keyring::for_tests(),
    )
    .unwrap();
    let second = SqliteStore::open(
        &path,
        OpenOptions { migrate: true, exclusive: true, ..Default::default() },
        leadrelay_core::vault::Keyring::for_tests(),
    )
    .unwrap_err();
    assert!(matches!(second, leadrelay_core::storage::StorageError::Conflict), "{second:?}");
    assert!(matches!(SqliteStore::migrate_file(&path), Err(leadrelay_core::storage::StorageError::Conflict)));
    SqliteStore::open(
        &path,
        OpenOptions { migrate: false, exclusive: false, ..Default::default() },
        leadrelay_core::vault::Keyring::for_tests(),
    )
    .expect("a reader (the CLI) may open it");
    drop(serving);
    SqliteStore::open(
        &path,
        OpenOptions { migrate: true, exclusive: true, ..Default::default() },
        leadrelay_core::vault::Keyring::for_tests(),
    )
    .expect("free again once the first stops");
}

mod sealing {
    use std::time::Duration;

    use leadrelay_core::destination::DestinationRecord;
    use leadrelay_core::storage::{CatalogStore, LeadFilter, LeadStore, LeadWithDeliveries, PageRequest, Publisher};
    use leadrelay_core::vault::Keyring;
    use leadrelay_core::{Customer, DestinationId, Lead, LeadDraft, LeadId, LeadRules, PublisherId, Timestamp};
    use leadrelay_store_sqlite::{OpenOptions, SqliteStore};

    const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);

    fn lead(p: &PublisherId, at: Timestamp, first: &str, email: &str) -> LeadWithDeliveries {
        let draft = LeadDraft {
            publisher: Some(p.clone()),
            lead_source: Some("AzureMarketplace-INS|contoso.crm".into()),
            customer: Customer {
                first_name: Some(first.into()),
                email: Some(email.into()),
                company: Some("Oldcorp".into()),
                ..Customer::default()
            },
            ..LeadDraft::default()
        };
        let lead = Lead::from_draft(draft, LeadId::generate(at), at, &LeadRules::default()).unwrap();
        LeadWithDeliveries { lead, deliveries: Vec::new() }
    }

    fn search(text: &str) -> LeadFilter {
        LeadFilter { text: Some(text.into()), ..LeadFilter::default() }
    }

    #[tokio::test]
    async fn plaintext_an_older_leadrelay_stored_is_sealed_at_the_first_keyed_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let p = PublisherId::parse("contoso").unwrap();
        let window = Duration::from_secs(86_400);
        let (first, destination) = {
            let store = super::open_migrated(&path);
            store.create_publisher(&Publisher { id: p.clone(), name: "Contoso".into(), created_at: T0 }).await.unwrap();
            let d = DestinationRecord {
                id: DestinationId::generate(T0),
                publisher: p.clone(),
                name: "hook".into(),
                kind: "https".into(),
                settings: serde_json::json!({"url": "https://example.com/?sig=plainsig"}),
                offers: None,
                enabled: true,
                disabled_reason: None,
                consecutive_failures: 0,
                failing_since: None,
                created_at: T0,
                updated_at: T0,
            };
            store.create_destination(&d).await.unwrap();
            let accepted = store.insert_leads(&[lead(&p, T0, "Oldname", "old@contoso.com")], window).await.unwrap();
            (accepted[0].customer_id.clone().unwrap(), d.id)
        };
        // Make the file what a leadrelay before migration 0006 wrote: plaintext values, an
        // unkeyed match hash, no index key, no search terms.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "UPDATE leads SET first_name = 'Oldname', email = 'old@contoso.com', company = 'Oldcorp',
                              raw_lead_source = 'AzureMarketplace-INS|contoso.crm';
             UPDATE destinations SET settings = '{\"url\":\"https://example.com/?sig=plainsig\"}';
             UPDATE customers SET match_hash = 'an unkeyed sha-256';
             DELETE FROM lead_terms;
             DELETE FROM instance_settings WHERE key = 'vault_index_key';",
        )
        .unwrap();
        drop(conn);

        let store = super::open_migrated(&path);
        let conn = rusqlite::Connection::open(&path).unwrap();
        let (email, settings): (String, String) = conn
            .query_row("SELECT l.email, d.settings FROM leads l, destinations d", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert!(email.starts_with("s1") && !email.contains("old"), "the email is sealed");
        assert!(settings.starts_with("s1") && !settings.contains("plainsig"), "the settings are sealed");
        let got = store.get_destination(&destination).await.unwrap();
        assert_eq!(got.settings["url"], "https://example.com/?sig=plainsig");
        let page = PageRequest { limit: 10, cursor: None };
        let found = store.list_leads(&search("oldname"), &page).await.unwrap();
        assert_eq!(found.items.len(), 1, "the search index was built");
        assert_eq!(found.items[0].customer.email.as_deref(), Some("old@contoso.com"));
        let later = store.insert_leads(&[lead(&p, T0, "Other", "OLD@contoso.com")], window).await.unwrap();
        assert_eq!(later[0].customer_id.as_ref(), Some(&first), "the customer was re-hashed and still matches");
    }

    #[tokio::test]
    async fn a_users_address_and_name_are_sealed_at_rest_and_rotation_reseals_them() {
        use leadrelay_core::UserId;
        use leadrelay_core::sales::{Role, User};
        use leadrelay_core::storage::{PeopleStore, Storage};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("people.db");
        let (old, new) = (Keyring::generate_key(), Keyring::generate_key());
        let open = |primary: &str, older: &[&str]| {
            let ring = Keyring::from_base64(primary, older.iter().copied()).unwrap();
            SqliteStore::open(&path, OpenOptions { migrate: true, ..Default::default() }, ring).unwrap()
        };
        let p = PublisherId::parse("contoso").unwrap();
        let ana = User {
            id: UserId::generate(T0),
            publisher: p.clone(),
            email: "ana.canary@contoso.com".into(),
            name: "Ana Canaryname".into(),
            role: Role::Admin,
            password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
            invite_hash: None,
            invite_expires_at: None,
            created_at: T0,
        };
        {
            let store = open(&old, &[]);
            store.create_publisher(&Publisher { id: p.clone(), name: "Contoso".into(), created_at: T0 }).await.unwrap();
            store.create_user(&ana).await.unwrap();
        }
        let conn = rusqlite::Connection::open(&path).unwrap();
        let (email, name, hash): (String, String, String) = conn
            .query_row("SELECT email, name, email_hash FROM users", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap();
        drop(conn);
        for stored in [&email, &name, &hash] {
            assert!(!stored.to_lowercase().contains("canary"), "no plaintext at rest: {stored}");
        }
        assert!(email.starts_with("s1") && name.starts_with("s1"), "sealed values");

        let store = open(&new, &[old.as_str()]);
        let old_id = Keyring::from_base64(&old, []).unwrap().primary().to_string();
        let held_by_old =
            |counts: Vec<(String, u64)>| counts.into_iter().find(|(k, _)| *k == old_id).map_or(0, |(_, n)| n);
        assert_eq!(held_by_old(store.sealed_values_by_key().await.unwrap()), 2, "the address and the name");
        while store.reseal_stale(100).await.unwrap() > 0 {}
        assert_eq!(held_by_old(store.sealed_values_by_key().await.unwrap()), 0, "rotation covers the users");
        drop(store);
        let store = open(&new, &[]);
        assert_eq!(
            store.find_user_by_email("ana.canary@contoso.com").await.unwrap(),
            ana,
            "readable without the old key"
        );
    }

    #[tokio::test]
    async fn a_store_opened_with_another_key_is_refused_naming_the_key_it_needs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyed.db");
        drop(super::open_migrated(&path));
        let other = Keyring::from_base64(&Keyring::generate_key(), []).unwrap();
        let err = SqliteStore::open(&path, OpenOptions { migrate: true, ..Default::default() }, other).unwrap_err();
        let text = match err {
            leadrelay_core::storage::StorageError::Other(e) => e.to_string(),
            other => panic!("{other:?}"),
        };
        assert!(text.contains(&Keyring::for_tests().primary().to_string()), "{text}");
    }
}

#[test]
fn the_audit_log_refuses_updates_and_deletes_even_in_sql() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    drop(open_migrated(&path));
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

/// Key rotation reaches the follow-up log: an activity's outcome and note, sealed with the old
/// key, are counted under it, re-sealed with the new one, and still read back.
#[tokio::test]
async fn key_rotation_reseals_the_texts_of_the_follow_up_log() {
    use leadrelay_core::sales::{Activity, ActivityKind};
    use leadrelay_core::storage::{CatalogStore, LeadStore, LeadWithDeliveries, Publisher, SalesStore};
    use leadrelay_core::vault::Keyring;
    use leadrelay_core::{ActivityId, Customer, Lead, LeadDraft, LeadId, LeadRules, PublisherId, Timestamp};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rotate.db");
    let (old_key, new_key) = (Keyring::generate_key(), Keyring::generate_key());
    let open = |ring: Keyring| {
        SqliteStore::open(&path, OpenOptions { migrate: true, exclusive: false, ..Default::default() }, ring).unwrap()
    };
    let t0 = Timestamp::from_millis(1_795_000_000_000);
    let old_ring = Keyring::from_base64(&old_key, []).unwrap();
    let old_id = old_ring.primary().to_string();
    let store = open(old_ring);
    let p = PublisherId::parse("contoso").unwrap();
    store.create_publisher(&Publisher { id: p.clone(), name: "Contoso".into(), created_at: t0 }).await.unwrap();
    let draft = LeadDraft {
        publisher: Some(p.clone()),
        lead_source: Some("AzureMarketplace-INS|contoso.crm".into()),
        customer: Customer { email: Some("ada@fabrikam.com".into()), ..Customer::default() },
        ..LeadDraft::default()
    };
    let lead = Lead::from_draft(draft, LeadId::generate(t0), t0, &LeadRules::default()).unwrap();
    let accepted = store
        .insert_leads(&[LeadWithDeliveries { lead, deliveries: Vec::new() }], std::time::Duration::from_secs(60))
        .await
        .unwrap();
    let opportunity = accepted[0].opportunity.clone().unwrap();
    let call = Activity {
        id: ActivityId::generate(t0),
        kind: ActivityKind::Call,
        outcome: Some("demo booked".into()),
        note: Some("asked for the price list".into()),
        next_touch_at: None,
        by: "admin".into(),
        at: t0,
    };
    store.add_activity(&opportunity, &call).await.unwrap();
    drop(store);

    let ring = Keyring::from_base64(&new_key, [old_key.as_str()]).unwrap();
    let new_id = ring.primary().to_string();
    let store = open(ring);
    let sealed_by = |store: &SqliteStore| {
        let store = store.clone();
        async move { leadrelay_core::storage::Storage::sealed_values_by_key(&store).await.unwrap() }
    };
    let before = sealed_by(&store).await;
    assert!(before.iter().all(|(id, _)| *id == old_id), "{before:?}");
    while leadrelay_core::storage::Storage::reseal_stale(&store, 100).await.unwrap() > 0 {}
    let after = sealed_by(&store).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0], (new_id.clone(), before[0].1), "every value, the activity's two included");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (outcome, note): (String, String) =
        conn.query_row("SELECT outcome, note FROM activities", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert!(outcome.starts_with(&format!("s1{new_id}")) && note.starts_with(&format!("s1{new_id}")));
    assert_eq!(store.get_opportunity(&opportunity).await.unwrap().activities, vec![call]);
}
