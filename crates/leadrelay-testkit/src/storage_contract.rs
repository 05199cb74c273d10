//! Cases every storage backend must pass. Each takes a fresh, migrated `Arc<dyn Storage>`;
//! each backend's `tests/contract.rs` expands them into one named test per case.

use std::sync::Arc;
use std::time::Duration;

use leadrelay_core::destination::{DestinationRecord, ErrorClass};
use leadrelay_core::storage::{
    Attempt, AttemptRecord, DeliveryFilter, DeliveryStatus, LeadFilter, LeadWithDeliveries, NewDelivery, NextState,
    PageRequest, Publisher, ReplayRequest, Storage, StorageError,
};
use leadrelay_core::{DeliveryId, DestinationId, Lead, LeadDraft, LeadId, LeadRules, PublisherId, Timestamp};

/// A fixed starting time for contract cases.
pub const T0: Timestamp = Timestamp::from_millis(1_795_000_000_000);
const LEASE: Duration = Duration::from_secs(90);

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

fn lead(p: &PublisherId, at: Timestamp) -> Lead {
    let draft = LeadDraft {
        publisher: Some(p.clone()),
        lead_source: Some("AzureMarketplace-INS|contoso.crm".into()),
        customer: leadrelay_core::Customer { email: Some("someone@contoso.com".into()), ..Default::default() },
        ..LeadDraft::default()
    };
    Lead::from_draft(draft, LeadId::generate(at), at, &LeadRules::default()).unwrap()
}

async fn insert(s: &dyn Storage, p: &PublisherId, dests: &[&DestinationRecord], at: Timestamp) -> Lead {
    let l = lead(p, at);
    let deliveries =
        dests.iter().map(|d| NewDelivery { id: DeliveryId::generate(at), destination: d.id.clone() }).collect();
    s.insert_leads(&[LeadWithDeliveries { lead: l.clone(), deliveries }]).await.unwrap();
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
    }
}

/// A lead and its outbox rows are stored together and read back field for field.
pub async fn a_lead_and_its_deliveries_are_stored_together(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    let l = insert(&*s, &p, &[&d], T0).await;
    let detail = s.get_lead(&l.id).await.unwrap();
    assert_eq!(detail.lead, l);
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
    assert!(matches!(s.insert_leads(&batch).await, Err(StorageError::Conflict)));
    let page = s.list_leads(&LeadFilter::default(), &PageRequest { limit: 10, cursor: None }).await.unwrap();
    assert!(page.items.is_empty(), "a failed batch left {} leads behind", page.items.len());
}

/// Claimed deliveries are hidden from a second claim until the lease ends.
pub async fn claimed_deliveries_are_hidden_from_a_second_claim(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    insert(&*s, &p, &[&d], T0).await;
    assert_eq!(s.claim_due_deliveries(T0, 10, LEASE).await.unwrap().len(), 1);
    assert!(s.claim_due_deliveries(T0.plus(Duration::from_secs(1)), 10, LEASE).await.unwrap().is_empty());
}

/// A lease that expired (the worker died) can be claimed again, and the old holder's result
/// no longer changes the delivery.
pub async fn an_expired_lease_can_be_claimed_again(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    insert(&*s, &p, &[&d], T0).await;
    let first = s.claim_due_deliveries(T0, 10, LEASE).await.unwrap().remove(0);
    let later = T0.plus(LEASE + Duration::from_secs(1));
    let second = s.claim_due_deliveries(later, 10, LEASE).await.unwrap().remove(0);
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
    let c = s.claim_due_deliveries(T0, 10, LEASE).await.unwrap().remove(0);
    let at = T0.plus(Duration::from_secs(5));
    s.record_attempts(&[record(&c, NextState::RetryAt { at, counts: true }, true)]).await.unwrap();
    assert_eq!(s.next_due_at().await.unwrap(), Some(at));
    assert!(s.claim_due_deliveries(T0.plus(Duration::from_secs(4)), 10, LEASE).await.unwrap().is_empty());
    let again = s.claim_due_deliveries(at, 10, LEASE).await.unwrap();
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
    assert!(s.claim_due_deliveries(T0.plus(Duration::from_secs(60)), 10, LEASE).await.unwrap().is_empty());
    assert_eq!(s.get_lead(&l.id).await.unwrap().deliveries[0].0.status, DeliveryStatus::Pending);
    let t1 = T0.plus(Duration::from_secs(120));
    s.set_destination_enabled(&d.id, true, None, t1).await.unwrap();
    assert_eq!(s.claim_due_deliveries(t1, 10, LEASE).await.unwrap().len(), 1);
}

/// Dead letters are listed, and a replay of dead letters makes them due with a fresh budget.
pub async fn dead_letters_are_listed_and_replayed(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    insert(&*s, &p, &[&d], T0).await;
    let c = s.claim_due_deliveries(T0, 10, LEASE).await.unwrap().remove(0);
    s.record_attempts(&[record(&c, NextState::Dead, true)]).await.unwrap();
    let filter =
        DeliveryFilter { status: Some(DeliveryStatus::Dead), destination: Some(d.id.clone()), ..Default::default() };
    let dead = s.list_deliveries(&filter, &PageRequest { limit: 10, cursor: None }).await.unwrap();
    assert_eq!(dead.items.len(), 1);
    let req = ReplayRequest { destination: d.id.clone(), since: None, until: None, only_dead: true };
    assert_eq!(s.replay(&req, T0).await.unwrap(), 1);
    let again = s.claim_due_deliveries(T0, 10, LEASE).await.unwrap();
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
    let claimed = s.claim_due_deliveries(T0, 10, LEASE).await.unwrap();
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
