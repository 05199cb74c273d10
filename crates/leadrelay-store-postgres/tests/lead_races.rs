//! Races of the lead insert that the contract suite cannot stage on one store: two nodes (two
//! stores on one schema) inserting leads of an address while it is erased.

use std::sync::Arc;
use std::time::Duration;

use leadrelay_core::storage::{ErasureRequest, LeadWithDeliveries, Publisher, Storage};
use leadrelay_core::vault::Keyring;
use leadrelay_core::{Customer, Lead, LeadDraft, LeadId, LeadRules, PublisherId, Timestamp};
use leadrelay_store_postgres::{OpenOptions, PostgresStore};
use leadrelay_testkit::postgres::TestSchema;

const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);

async fn node(url: &str) -> Arc<dyn Storage> {
    let options = OpenOptions { migrate: true, ..OpenOptions::default() };
    Arc::new(PostgresStore::open(url, options, Keyring::for_tests()).await.unwrap())
}

fn lead_of(p: &PublisherId, at: Timestamp, email: &str) -> Lead {
    let draft = LeadDraft {
        publisher: Some(p.clone()),
        lead_source: Some("AzureMarketplace-INS|contoso.crm".into()),
        customer: Customer { email: Some(email.into()), first_name: Some("Ada".into()), ..Default::default() },
        ..LeadDraft::default()
    };
    Lead::from_draft(draft, LeadId::generate(at), at, &LeadRules::default()).unwrap()
}

/// Leads of one address inserted on two nodes while the address is erased: each one is either
/// erased (its personal data gone) or, inserted after the erasure, stored and flagged
/// `previously_erased`; none keeps the person's data without the flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lead_inserted_while_its_address_is_erased_is_erased_or_flagged() {
    let schema = TestSchema::create("erasure_race").await;
    let nodes = [node(&schema.url).await, node(&schema.url).await];
    let p = PublisherId::parse("contoso").unwrap();
    nodes[0].create_publisher(&Publisher { id: p.clone(), name: "Contoso".into(), created_at: T0 }).await.unwrap();
    for round in 0..4_u64 {
        let email = format!("ada{round}@quillworks.io");
        let mut tasks = Vec::new();
        for i in 0..12_u64 {
            let (s, p, address) = (Arc::clone(&nodes[(i % 2) as usize]), p.clone(), email.clone());
            tasks.push(tokio::spawn(async move {
                let l = lead_of(&p, T0.plus(Duration::from_millis(round * 1000 + i)), &address);
                s.insert_leads(&[LeadWithDeliveries { lead: l.clone(), deliveries: Vec::new() }], Duration::ZERO)
                    .await
                    .unwrap();
                l.id
            }));
            if i == 5 {
                let (s, email) = (Arc::clone(&nodes[1]), email.clone());
                tasks.push(tokio::spawn(async move {
                    let request = ErasureRequest {
                        publisher: None,
                        email,
                        requested_by: "admin".into(),
                        now: T0.plus(Duration::from_secs(60)),
                        id: format!("era_{round}"),
                    };
                    s.erase_person(&request).await.unwrap();
                    LeadId::generate(T0)
                }));
            }
        }
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.unwrap());
        }
        let leads = nodes[0].get_leads(&ids).await.unwrap();
        assert_eq!(leads.len(), 12);
        for l in &leads {
            let erased = l.customer.email.is_none() && l.customer.first_name.is_none();
            assert!(erased != l.previously_erased, "{:?}: erased {erased}, flagged {}", l.id, l.previously_erased);
        }
    }
}
