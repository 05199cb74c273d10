//! Cases every storage backend must pass. Each takes a fresh, migrated `Arc<dyn Storage>`;
//! each backend's `tests/contract.rs` expands them into one named test per case.

use std::sync::Arc;
use std::time::Duration;

use leadrelay_core::destination::{DestinationRecord, ErrorClass};
use leadrelay_core::storage::{
    Accepted, Attempt, AttemptRecord, ClaimRequest, DeliveryFilter, DeliveryStatus, LeadFilter, LeadWithDeliveries,
    NewDelivery, NextState, PageRequest, Publisher, ReplayRequest, Storage, StorageError,
};
use leadrelay_core::{DeliveryId, DestinationId, Lead, LeadDraft, LeadId, LeadRules, PublisherId, Timestamp};

/// A fixed starting time for contract cases.
pub const T0: Timestamp = Timestamp::from_millis(1_795_000_000_000);
const LEASE: Duration = Duration::from_secs(90);

/// A claim of up to 10 deliveries at `now`, with a per-destination cap that never binds.
fn claim(now: Timestamp) -> ClaimRequest {
    ClaimRequest { now, limit: 10, lease: LEASE, per_destination: 100 }
}

async fn publisher(s: &dyn Storage) -> PublisherId {
    let id = PublisherId::parse("contoso").unwrap();
    s.create_publisher(&Publisher { id: id.clone(), name: "Contoso".into(), created_at: T0 }).await.unwrap();
    id
}

async fn destination(s: &dyn Storage, p: &PublisherId, enabled: bool) -> DestinationRecord {
    let d = DestinationRecord {
        id: DestinationId::generate(T0),
        publisher: p.clone(),
        name: "hook".into(),
        kind: "https".into(),
        settings: serde_json::json!({"url": "https://example.com", "secret": "x"}),
        offers: None,
        enabled,
        disabled_reason: None,
        consecutive_failures: 0,
        failing_since: None,
        created_at: T0,
        updated_at: T0,
    };
    s.create_destination(&d).await.unwrap();
    d
}

const WINDOW: Duration = Duration::from_secs(24 * 3600);

fn lead_of(p: &PublisherId, at: Timestamp, email: &str, action: &str) -> Lead {
    let draft = LeadDraft {
        publisher: Some(p.clone()),
        lead_source: Some(format!("AzureMarketplace-{action}|contoso.crm")),
        customer: leadrelay_core::Customer { email: Some(email.into()), ..Default::default() },
        ..LeadDraft::default()
    };
    Lead::from_draft(draft, LeadId::generate(at), at, &LeadRules::default()).unwrap()
}

/// A lead of a customer nobody else has.
fn lead(p: &PublisherId, at: Timestamp) -> Lead {
    let id = LeadId::generate(at);
    lead_of(p, at, &format!("{id}@contoso.com"), "INS")
}

async fn insert_lead(s: &dyn Storage, l: &Lead, dests: &[&DestinationRecord]) -> Accepted {
    let deliveries = dests
        .iter()
        .map(|d| NewDelivery { id: DeliveryId::generate(l.received_at), destination: d.id.clone() })
        .collect();
    s.insert_leads(&[LeadWithDeliveries { lead: l.clone(), deliveries }], WINDOW).await.unwrap().remove(0)
}

async fn insert(s: &dyn Storage, p: &PublisherId, dests: &[&DestinationRecord], at: Timestamp) -> Lead {
    let l = lead(p, at);
    insert_lead(s, &l, dests).await;
    l
}

fn record(c: &leadrelay_core::storage::Claimed, next: NextState, failed: bool) -> AttemptRecord {
    AttemptRecord {
        attempt: Attempt {
            delivery_id: c.delivery.id.clone(),
            number: 0,
            started_at: T0,
            duration_ms: 3,
            status_code: Some(if failed { 503 } else { 200 }),
            error_class: failed.then_some(ErrorClass::Transient),
            message: failed.then(|| "receiver answered 503".to_owned()),
            excerpt: None,
        },
        lease_token: c.lease_token.clone(),
        next,
        destination: c.destination.id.clone(),
        disable_destination: None,
        throttle_destination_until: None,
    }
}

/// A lead and its outbox rows are stored together and read back field for field.
pub async fn a_lead_and_its_deliveries_are_stored_together(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    let l = lead(&p, T0);
    let accepted = insert_lead(&*s, &l, &[&d]).await;
    assert!(accepted.customer_id.is_some());
    let detail = s.get_lead(&l.id).await.unwrap();
    assert_eq!(detail.lead, Lead { customer_id: accepted.customer_id, ..l });
    assert_eq!(detail.deliveries.len(), 1);
    assert_eq!(detail.deliveries[0].0.status, DeliveryStatus::Pending);
}

/// A batch with one bad row stores nothing.
pub async fn a_failing_batch_stores_nothing(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let l = lead(&p, T0);
    let batch = [
        LeadWithDeliveries { lead: lead(&p, T0), deliveries: vec![] },
        LeadWithDeliveries { lead: l.clone(), deliveries: vec![] },
        LeadWithDeliveries { lead: l, deliveries: vec![] },
    ];
    assert!(matches!(s.insert_leads(&batch, WINDOW).await, Err(StorageError::Conflict)));
    let page = s.list_leads(&LeadFilter::default(), &PageRequest { limit: 10, cursor: None }).await.unwrap();
    assert!(page.items.is_empty(), "a failed batch left {} leads behind", page.items.len());
}

/// Claimed deliveries are hidden from a second claim until the lease ends.
pub async fn claimed_deliveries_are_hidden_from_a_second_claim(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    insert(&*s, &p, &[&d], T0).await;
    assert_eq!(s.claim_due_deliveries(&claim(T0)).await.unwrap().len(), 1);
    assert!(s.claim_due_deliveries(&claim(T0.plus(Duration::from_secs(1)))).await.unwrap().is_empty());
}

/// A lease that expired (the worker died) can be claimed again, and the old holder's result
/// no longer changes the delivery.
pub async fn an_expired_lease_can_be_claimed_again(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    insert(&*s, &p, &[&d], T0).await;
    let first = s.claim_due_deliveries(&claim(T0)).await.unwrap().remove(0);
    let later = T0.plus(LEASE + Duration::from_secs(1));
    let second = s.claim_due_deliveries(&claim(later)).await.unwrap().remove(0);
    assert_eq!(first.delivery.id, second.delivery.id);
    assert_ne!(first.lease_token, second.lease_token);
    s.record_attempts(&[record(&first, NextState::Dead, true)]).await.unwrap();
    assert_eq!(s.get_delivery(&first.delivery.id).await.unwrap().status, DeliveryStatus::Pending);
    s.record_attempts(&[record(&second, NextState::Delivered, false)]).await.unwrap();
    let detail = s.get_lead(&first.lead.id).await.unwrap();
    assert_eq!(detail.deliveries[0].0.status, DeliveryStatus::Delivered);
    assert_eq!(detail.deliveries[0].1.len(), 2, "both attempts are logged");
}

/// A failed attempt schedules the retry; the delivery is due again only at that time.
pub async fn a_retry_is_due_only_at_its_time(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    insert(&*s, &p, &[&d], T0).await;
    let c = s.claim_due_deliveries(&claim(T0)).await.unwrap().remove(0);
    let at = T0.plus(Duration::from_secs(5));
    s.record_attempts(&[record(&c, NextState::RetryAt { at, counts: true }, true)]).await.unwrap();
    assert_eq!(s.next_due_at().await.unwrap(), Some(at));
    assert!(s.claim_due_deliveries(&claim(T0.plus(Duration::from_secs(4)))).await.unwrap().is_empty());
    let again = s.claim_due_deliveries(&claim(at)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].delivery.attempts, 1);
    assert_eq!(again[0].destination.consecutive_failures, 1);
    assert_eq!(again[0].destination.failing_since, Some(T0));
}

/// A disabled destination's deliveries wait (parked) and are due again when it is enabled.
pub async fn a_disabled_destination_keeps_its_queue(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    s.set_destination_enabled(&d.id, false, Some("test"), T0).await.unwrap();
    let l = insert(&*s, &p, &[&d], T0).await;
    assert!(s.claim_due_deliveries(&claim(T0.plus(Duration::from_secs(60)))).await.unwrap().is_empty());
    assert_eq!(s.get_lead(&l.id).await.unwrap().deliveries[0].0.status, DeliveryStatus::Pending);
    let t1 = T0.plus(Duration::from_secs(120));
    s.set_destination_enabled(&d.id, true, None, t1).await.unwrap();
    assert_eq!(s.claim_due_deliveries(&claim(t1)).await.unwrap().len(), 1);
}

/// Dead letters are listed, and a replay of dead letters makes them due with a fresh budget.
pub async fn dead_letters_are_listed_and_replayed(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    insert(&*s, &p, &[&d], T0).await;
    let c = s.claim_due_deliveries(&claim(T0)).await.unwrap().remove(0);
    s.record_attempts(&[record(&c, NextState::Dead, true)]).await.unwrap();
    let filter =
        DeliveryFilter { status: Some(DeliveryStatus::Dead), destination: Some(d.id.clone()), ..Default::default() };
    let dead = s.list_deliveries(&filter, &PageRequest { limit: 10, cursor: None }).await.unwrap();
    assert_eq!(dead.items.len(), 1);
    let req = ReplayRequest { destination: d.id.clone(), since: None, until: None, only_dead: true };
    assert_eq!(s.replay(&req, T0).await.unwrap(), 1);
    let again = s.claim_due_deliveries(&claim(T0)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].delivery.attempts, 0);
}

/// Replaying a time range to a destination created later gives it the leads it never had.
pub async fn a_range_replay_reaches_leads_from_before_the_destination(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let old = insert(&*s, &p, &[], T0).await;
    let outside = insert(&*s, &p, &[], T0.plus(Duration::from_secs(7200))).await;
    let d = destination(&*s, &p, true).await;
    let req = ReplayRequest {
        destination: d.id.clone(),
        since: Some(T0.minus(Duration::from_secs(60))),
        until: Some(T0.plus(Duration::from_secs(60))),
        only_dead: false,
    };
    assert_eq!(s.replay(&req, T0).await.unwrap(), 1);
    let claimed = s.claim_due_deliveries(&claim(T0)).await.unwrap();
    assert_eq!(claimed.iter().map(|c| c.lead.id.clone()).collect::<Vec<_>>(), vec![old.id]);
    assert!(s.get_lead(&outside.id).await.unwrap().deliveries.is_empty());
}

/// Many concurrent writers each get their own answer after the shared commit, and every
/// acknowledged lead is there.
pub async fn concurrent_inserts_are_all_committed(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (s, p, d) = (Arc::clone(&s), p.clone(), d.clone());
            tokio::spawn(async move { insert(&*s, &p, &[&d], T0.plus(Duration::from_millis(i))).await.id })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    for id in &ids {
        s.get_lead(id).await.unwrap();
    }
    let page = s.list_leads(&LeadFilter::default(), &PageRequest { limit: 1000, cursor: None }).await.unwrap();
    assert_eq!(page.items.len(), 200);
}

/// Pages are newest first and the cursor continues without gaps or repeats.
pub async fn lead_pages_follow_the_cursor(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    for i in 0..5 {
        insert(&*s, &p, &[], T0.plus(Duration::from_secs(i))).await;
    }
    let first = s.list_leads(&LeadFilter::default(), &PageRequest { limit: 3, cursor: None }).await.unwrap();
    let second = s
        .list_leads(&LeadFilter::default(), &PageRequest { limit: 3, cursor: first.next_cursor.clone() })
        .await
        .unwrap();
    assert_eq!(first.items.len(), 3);
    assert_eq!(second.items.len(), 2);
    assert!(second.next_cursor.is_none());
    assert!(first.items[0].received_at > first.items[2].received_at);
    assert!(first.items[2].id > second.items[0].id);
}

/// Leads with one email merge into one customer; a repeat of the same offer and action inside
/// the window is a duplicate (kept, not delivered); other actions and later repeats are not.
pub async fn one_email_is_one_customer_and_repeats_are_duplicates(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    let email = "Someone@Contoso.com";
    let first = lead_of(&p, T0, email, "PLT");
    let a1 = insert_lead(&*s, &first, &[&d]).await;
    let customer = a1.customer_id.clone().expect("a customer");
    assert_eq!(a1.duplicate_of, None);

    let repeat = lead_of(&p, T0.plus(Duration::from_secs(3600)), "someone@contoso.com", "plt");
    let a2 = insert_lead(&*s, &repeat, &[&d]).await;
    assert_eq!((a2.customer_id.as_ref(), a2.duplicate_of.as_ref()), (Some(&customer), Some(&first.id)));
    assert!(s.get_lead(&repeat.id).await.unwrap().deliveries.is_empty(), "a duplicate is not delivered again");

    let install = lead_of(&p, T0.plus(Duration::from_secs(7200)), email, "INS");
    let a3 = insert_lead(&*s, &install, &[&d]).await;
    assert_eq!((a3.customer_id.as_ref(), a3.duplicate_of), (Some(&customer), None));

    let next_day = lead_of(&p, T0.plus(WINDOW + Duration::from_secs(1)), email, "PLT");
    assert_eq!(insert_lead(&*s, &next_day, &[&d]).await.duplicate_of, None);

    let other = insert(&*s, &p, &[&d], T0).await;
    assert_ne!(s.get_lead(&other.id).await.unwrap().lead.customer_id.as_ref(), Some(&customer));

    let detail = s.get_customer(&customer).await.unwrap();
    let timeline: Vec<_> = detail.leads.iter().map(|l| l.id.clone()).collect();
    assert_eq!(timeline, vec![first.id, repeat.id, install.id, next_day.id]);
    assert_eq!(detail.leads[0].merge_reason, None);
    assert_eq!(detail.leads[2].merge_reason.as_deref(), Some("same email address"));
}

/// Test leads never merge into a customer.
pub async fn test_leads_stand_alone(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let mut l = lead_of(&p, T0, "someone@contoso.com", "INS");
    l.is_test = true;
    assert_eq!(insert_lead(&*s, &l, &[]).await, Accepted { customer_id: None, duplicate_of: None });
}

/// Concurrent leads of one new email create exactly one customer and one original.
pub async fn concurrent_leads_of_a_new_customer_create_one_customer(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let (s, p) = (Arc::clone(&s), p.clone());
            tokio::spawn(async move {
                let l = lead_of(&p, T0.plus(Duration::from_millis(i)), "race@contoso.com", "INS");
                insert_lead(&*s, &l, &[]).await
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let customers: std::collections::BTreeSet<_> = results.iter().map(|a| a.customer_id.clone().unwrap()).collect();
    assert_eq!(customers.len(), 1, "one customer, not {customers:?}");
    assert_eq!(results.iter().filter(|a| a.duplicate_of.is_none()).count(), 1, "one original, nine duplicates");
}

/// Splitting moves leads to a new customer and releases duplicates whose original moved away.
pub async fn a_split_moves_leads_and_releases_their_duplicates(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    let first = lead_of(&p, T0, "shared@contoso.com", "INS");
    let customer = insert_lead(&*s, &first, &[&d]).await.customer_id.unwrap();
    let second = lead_of(&p, T0.plus(Duration::from_secs(60)), "shared@contoso.com", "INS");
    assert_eq!(insert_lead(&*s, &second, &[&d]).await.duplicate_of.as_ref(), Some(&first.id));
    let new_customer = leadrelay_core::CustomerId::generate(T0);
    let t1 = T0.plus(Duration::from_secs(120));
    let released =
        vec![(second.id.clone(), vec![NewDelivery { id: DeliveryId::generate(t1), destination: d.id.clone() }])];
    let req = leadrelay_core::storage::SplitRequest {
        customer: customer.clone(),
        new_customer: new_customer.clone(),
        leads: vec![first.id.clone()],
        released,
        now: t1,
    };
    s.split_customer(&req).await.unwrap();
    let moved = s.get_customer(&new_customer).await.unwrap();
    assert_eq!(moved.leads.iter().map(|l| l.id.clone()).collect::<Vec<_>>(), vec![first.id.clone()]);
    let stayed = s.get_lead(&second.id).await.unwrap();
    assert_eq!((stayed.lead.customer_id, stayed.lead.duplicate_of), (Some(customer.clone()), None));
    assert_eq!(stayed.deliveries.len(), 1, "the released lead is delivered now");
    let unknown = leadrelay_core::storage::SplitRequest {
        leads: vec![LeadId::generate(T0)],
        new_customer: leadrelay_core::CustomerId::generate(T0),
        released: Vec::new(),
        ..req
    };
    assert!(matches!(s.split_customer(&unknown).await, Err(StorageError::NotFound)));
}
