//! The obligations a backend must keep race-free, each checked with many tasks on one store at
//! once: as many as separate processes on one database would be.

use std::collections::{BTreeMap, BTreeSet};

use leadrelay_core::storage::{DeliveryFilter, DeliveryStatus, LeadFilter, PageRequest, SplitRequest};
use leadrelay_core::{CustomerId, OfferId};

use super::*;

/// Of many concurrent creates of one publisher id exactly one succeeds, the others are
/// `Conflict`, and the stored publisher is the winner's.
pub async fn concurrent_creates_of_one_publisher_id_let_exactly_one_succeed(s: Arc<dyn Storage>) {
    let id = PublisherId::parse("contoso").unwrap();
    let results = concurrently(RACERS, |i| {
        let (s, id) = (Arc::clone(&s), id.clone());
        async move {
            let name = format!("Contoso {i}");
            let r = s.create_publisher(&Publisher { id, name: name.clone(), created_at: T0 }).await;
            (name, r)
        }
    })
    .await;
    let winners: Vec<&String> = results.iter().filter(|(_, r)| r.is_ok()).map(|(n, _)| n).collect();
    assert_eq!(winners.len(), 1, "exactly one create succeeds");
    for (_, r) in &results {
        assert!(matches!(r, Ok(()) | Err(StorageError::Conflict)), "{r:?}");
    }
    assert_eq!(&s.get_publisher(&id).await.unwrap().name, winners[0]);
}

/// Of many processes starting at once on a new database, each offering its own admin token
/// hash only if none is set, exactly one stores it and all then read that one.
pub async fn concurrent_first_starts_agree_on_one_admin_token_hash(s: Arc<dyn Storage>) {
    let results = concurrently(RACERS, |i| {
        let s = Arc::clone(&s);
        async move {
            let hash = format!("{i:064x}");
            let stored = s.set_admin_token_hash(&hash, true).await.unwrap();
            (hash, stored, s.admin_token_hash().await.unwrap())
        }
    })
    .await;
    let winners: Vec<&String> = results.iter().filter(|(_, stored, _)| *stored).map(|(h, _, _)| h).collect();
    assert_eq!(winners.len(), 1, "exactly one first start stores its hash");
    for (_, _, read) in &results {
        assert_eq!(read.as_ref(), Some(winners[0]), "every start reads the winner's hash");
    }
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

/// Concurrent leads of one buyer nobody has seen, each for another offer, create exactly one
/// customer holding all of them; exactly one of them started it, and none is a duplicate.
pub async fn concurrent_leads_of_one_new_buyer_create_exactly_one_customer(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    let results = concurrently(RACERS, |i| {
        let (s, p, d) = (Arc::clone(&s), p.clone(), d.clone());
        async move {
            let l = Lead {
                offer: Some(OfferId::parse(&format!("contoso.offer-{i}")).unwrap()),
                ..lead_of(&p, T0.plus(millis(i as u64)), "New.Buyer@Fabrikam.com", "INS")
            };
            (l.id.clone(), s.insert_leads(&[with_deliveries(&l, &[&d])], WINDOW).await.unwrap().remove(0))
        }
    })
    .await;
    let customers: BTreeSet<_> = results.iter().map(|(_, a)| a.customer_id.clone().expect("a customer")).collect();
    assert_eq!(customers.len(), 1, "one customer, not {}", customers.len());
    assert!(results.iter().all(|(_, a)| a.duplicate_of.is_none()), "leads for other offers are no duplicates");
    let customer = s.get_customer(customers.first().unwrap()).await.unwrap();
    let timeline: BTreeSet<_> = customer.leads.iter().map(|l| l.id.clone()).collect();
    assert_eq!(timeline, results.iter().map(|(id, _)| id.clone()).collect::<BTreeSet<_>>());
    let founders = customer.leads.iter().filter(|l| l.merge_reason.is_none()).count();
    assert_eq!(founders, 1, "one lead created the customer, the others merged into it");
}

/// Checks that of `results` (lead id, answer) exactly one is the original, every other is its
/// duplicate in the same customer, and only the original got deliveries.
async fn assert_one_original(s: &dyn Storage, results: &[(LeadId, Accepted)]) {
    let originals: Vec<&LeadId> = results.iter().filter(|(_, a)| a.duplicate_of.is_none()).map(|(id, _)| id).collect();
    assert_eq!(originals.len(), 1, "exactly one original, not {}", originals.len());
    let original = originals[0].clone();
    let customer = results[0].1.customer_id.clone().expect("a customer");
    for (id, a) in results {
        assert_eq!(a.customer_id.as_ref(), Some(&customer));
        if *id != original {
            assert_eq!(a.duplicate_of.as_ref(), Some(&original), "every repeat is a duplicate of the one original");
        }
        let stored = s.get_lead(id).await.unwrap();
        assert_eq!(stored.lead.duplicate_of, a.duplicate_of, "the answer is what was stored");
        assert_eq!(stored.deliveries.len(), usize::from(*id == original), "only the original is delivered");
    }
    let all = s.list_deliveries(&DeliveryFilter::default(), &PageRequest { limit: 1000, cursor: None }).await.unwrap();
    assert_eq!(all.items.len(), 1);
}

/// Concurrent repeats of one (customer, offer, action) by a buyer nobody has seen leave exactly
/// one original; every other one is its duplicate and gets no deliveries.
pub async fn concurrent_repeats_of_one_action_leave_exactly_one_original(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    let results = concurrently(RACERS, |i| {
        let (s, p, d) = (Arc::clone(&s), p.clone(), d.clone());
        async move {
            let l = lead_of(&p, T0.plus(millis(i as u64)), "repeat@fabrikam.com", "PLT");
            (l.id.clone(), s.insert_leads(&[with_deliveries(&l, &[&d])], WINDOW).await.unwrap().remove(0))
        }
    })
    .await;
    assert_one_original(&*s, &results).await;
}

/// Concurrent repeats of a new action by a customer who already exists leave exactly one
/// original too.
pub async fn concurrent_repeats_by_a_known_customer_leave_exactly_one_original(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    let known = lead_of(&p, T0, "known@fabrikam.com", "PLT");
    let customer = insert_lead(&*s, &known, &[]).await.customer_id.unwrap();
    let results = concurrently(RACERS, |i| {
        let (s, p, d) = (Arc::clone(&s), p.clone(), d.clone());
        async move {
            let l = lead_of(&p, T0.plus(secs(60) + millis(i as u64)), "known@fabrikam.com", "INS");
            (l.id.clone(), s.insert_leads(&[with_deliveries(&l, &[&d])], WINDOW).await.unwrap().remove(0))
        }
    })
    .await;
    assert_eq!(results[0].1.customer_id.as_ref(), Some(&customer));
    assert_one_original(&*s, &results).await;
}

/// Of concurrent splits of the same leads out of one customer (each naming them in another
/// order, each releasing the same duplicate), exactly one succeeds; the others are `NotFound`
/// and leave nothing behind: no customer of theirs, no lead moved, no second release.
pub async fn concurrent_splits_of_the_same_leads_let_one_win_and_half_move_nothing(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    let email = "shared@contoso.com";
    let install = lead_of(&p, T0, email, "INS");
    let customer = insert_lead(&*s, &install, &[&d]).await.customer_id.unwrap();
    let repeat = lead_of(&p, T0.plus(secs(1)), email, "INS");
    assert_eq!(insert_lead(&*s, &repeat, &[&d]).await.duplicate_of.as_ref(), Some(&install.id));
    let trial = lead_of(&p, T0.plus(secs(2)), email, "FreeTrial");
    let interest = lead_of(&p, T0.plus(secs(3)), email, "PLT");
    for l in [&trial, &interest] {
        insert_lead(&*s, l, &[&d]).await;
    }
    let moving = [install.id.clone(), trial.id.clone(), interest.id.clone()];
    let t1 = T0.plus(secs(60));
    let results = concurrently(RACERS, |i| {
        let (s, d, customer, repeat) = (Arc::clone(&s), d.clone(), customer.clone(), repeat.id.clone());
        let mut leads = moving.to_vec();
        leads.rotate_left(i % moving.len());
        async move {
            let req = SplitRequest {
                customer,
                new_customer: CustomerId::generate(t1),
                leads,
                released: vec![(repeat, vec![NewDelivery { id: DeliveryId::generate(t1), destination: d.id }])],
                now: t1,
            };
            (req.new_customer.clone(), s.split_customer(&req).await)
        }
    })
    .await;
    let winners: Vec<&CustomerId> = results.iter().filter(|(_, r)| r.is_ok()).map(|(c, _)| c).collect();
    assert_eq!(winners.len(), 1, "exactly one split succeeds");
    for (new_customer, r) in &results {
        if r.is_err() {
            assert!(matches!(r, Err(StorageError::NotFound)), "{r:?}");
            assert_not_found(s.get_customer(new_customer).await);
        }
    }
    let moved: BTreeSet<_> = s.get_customer(winners[0]).await.unwrap().leads.into_iter().map(|l| l.id).collect();
    assert_eq!(moved, BTreeSet::from(moving.clone()), "every lead moved, all to the winner");
    let stayed: Vec<_> = s.get_customer(&customer).await.unwrap().leads.into_iter().map(|l| l.id).collect();
    assert_eq!(stayed, vec![repeat.id.clone()]);
    let released = s.get_lead(&repeat.id).await.unwrap();
    assert_eq!((released.lead.duplicate_of, released.deliveries.len()), (None, 1), "released once");
}

/// Many claimers racing over many due deliveries of several destinations never get one
/// delivery twice, each claim has its own lease token, and together they get every one.
pub async fn concurrent_claims_never_return_one_delivery_twice(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let mut dests = Vec::new();
    for _ in 0..6 {
        dests.push(destination(&*s, &p, true).await);
    }
    let refs: Vec<&DestinationRecord> = dests.iter().collect();
    let batch: Vec<_> = (0..40).map(|i| with_deliveries(&lead(&p, T0.plus(millis(i))), &refs)).collect();
    s.insert_leads(&batch, WINDOW).await.unwrap();
    let now = T0.plus(secs(1));
    let claims = concurrently(RACERS, |_| {
        let s = Arc::clone(&s);
        async move {
            let mut mine = Vec::new();
            loop {
                let got = s.claim_due_deliveries(&claim_capped(now, 5, 1000)).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.push(got);
            }
        }
    })
    .await;
    let calls: Vec<Vec<Claimed>> = claims.into_iter().flatten().collect();
    let tokens: BTreeSet<_> = calls.iter().map(|call| call[0].lease_token.clone()).collect();
    assert_eq!(tokens.len(), calls.len(), "each claim has its own lease token");
    let claimed: Vec<DeliveryId> = calls.iter().flatten().map(|c| c.delivery.id.clone()).collect();
    let unique: BTreeSet<_> = claimed.iter().cloned().collect();
    assert_eq!(claimed.len(), unique.len(), "a delivery was claimed twice");
    let all = s.list_deliveries(&DeliveryFilter::default(), &PageRequest { limit: 1000, cursor: None }).await.unwrap();
    assert_eq!(unique, all.items.into_iter().map(|d| d.id).collect::<BTreeSet<_>>(), "every delivery was claimed");
    assert_eq!(unique.len(), 240);
}

/// The per-destination cap holds however many claims race, and counts deliveries already
/// leased by earlier claims; a recorded result frees one place.
pub async fn the_per_destination_cap_holds_across_concurrent_claims_and_counts_leased_ones(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let (d1, d2) = (destination(&*s, &p, true).await, destination(&*s, &p, true).await);
    let batch: Vec<_> = (0..30).map(|i| with_deliveries(&lead(&p, T0.plus(millis(i))), &[&d1, &d2])).collect();
    s.insert_leads(&batch, WINDOW).await.unwrap();
    let now = T0.plus(secs(1));
    const CAP: u32 = 3;
    let early = s.claim_due_deliveries(&claim_capped(now, 1, CAP)).await.unwrap();
    assert_eq!(early.len(), 1);
    let raced = concurrently(RACERS, |_| {
        let s = Arc::clone(&s);
        async move { s.claim_due_deliveries(&claim_capped(now, 4, CAP)).await.unwrap() }
    })
    .await;
    let leased: Vec<Claimed> = early.into_iter().chain(raced.into_iter().flatten()).collect();
    let mut per_destination: BTreeMap<DestinationId, Vec<&Claimed>> = BTreeMap::new();
    for c in &leased {
        per_destination.entry(c.destination.id.clone()).or_default().push(c);
    }
    assert_eq!(per_destination.len(), 2);
    for (dest, held) in &per_destination {
        assert_eq!(held.len(), CAP as usize, "destination {dest} holds {} leases", held.len());
    }
    assert!(s.claim_due_deliveries(&claim_capped(now, 10, CAP)).await.unwrap().is_empty());

    let done = per_destination[&d1.id][0];
    s.record_attempts(&[attempt(done, now, Answer::Ok, NextState::Delivered)]).await.unwrap();
    let next = s.claim_due_deliveries(&claim_capped(now, 10, CAP)).await.unwrap();
    assert_eq!(next.iter().map(|c| c.destination.id.clone()).collect::<Vec<_>>(), vec![d1.id.clone()]);
}

/// Results of expired leases racing new claims of the same deliveries: each delivery ends
/// either claimed anew (and the stale result changed nothing, not even its destination's
/// failure count) or dead by the stale result (when it landed first), never both.
pub async fn stale_results_racing_new_claims_never_undo_a_new_lease(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let mut dests = Vec::new();
    for _ in 0..3 {
        dests.push(destination(&*s, &p, true).await);
    }
    let refs: Vec<&DestinationRecord> = dests.iter().collect();
    let batch: Vec<_> = (0..16).map(|i| with_deliveries(&lead(&p, T0.plus(millis(i))), &refs)).collect();
    s.insert_leads(&batch, WINDOW).await.unwrap();
    let old = s.claim_due_deliveries(&claim_capped(T0.plus(secs(1)), 100, 100)).await.unwrap();
    assert_eq!(old.len(), 48);
    let later = T0.plus(secs(1) + LEASE + secs(1));
    let old = Arc::new(old);
    let outcomes = concurrently(RACERS, |i| {
        let (s, old) = (Arc::clone(&s), Arc::clone(&old));
        async move {
            if i % 2 == 0 {
                s.claim_due_deliveries(&claim_capped(later, 3, 100)).await.unwrap()
            } else {
                let mine: Vec<_> = old
                    .iter()
                    .skip(i / 2)
                    .step_by(RACERS / 2)
                    .map(|c| attempt(c, later, Answer::Permanent, NextState::Dead))
                    .collect();
                s.record_attempts(&mine).await.unwrap();
                Vec::new()
            }
        }
    })
    .await;
    let reclaimed: Vec<Claimed> = outcomes.into_iter().flatten().collect();
    let reclaimed_ids: BTreeSet<_> = reclaimed.iter().map(|c| c.delivery.id.clone()).collect();
    assert_eq!(reclaimed_ids.len(), reclaimed.len(), "a delivery was claimed twice");
    let mut dead_per_destination: BTreeMap<DestinationId, u32> = BTreeMap::new();
    for c in old.iter() {
        let now = s.get_delivery(&c.delivery.id).await.unwrap();
        if reclaimed_ids.contains(&c.delivery.id) {
            assert_eq!(now.status, DeliveryStatus::Pending, "a stale result overwrote a new lease");
        } else {
            assert_eq!(now.status, DeliveryStatus::Dead, "the stale result landed first, so it counted");
            *dead_per_destination.entry(c.destination.id.clone()).or_default() += 1;
        }
    }
    for d in &dests {
        let failures = s.get_destination(&d.id).await.unwrap().consecutive_failures;
        assert_eq!(failures, dead_per_destination.get(&d.id).copied().unwrap_or(0), "only applied results count");
    }
    let results: Vec<_> = reclaimed.iter().map(|c| attempt(c, later, Answer::Ok, NextState::Delivered)).collect();
    s.record_attempts(&results).await.unwrap();
    for c in &reclaimed {
        assert_eq!(s.get_delivery(&c.delivery.id).await.unwrap().status, DeliveryStatus::Delivered);
    }
}
