//! `OutboxStore`: claims under a lease, recorded attempts with the delivery's next state and
//! the destination's health and pause, fairness between destinations, retry and replay.

use std::collections::BTreeSet;

use leadrelay_core::OfferId;
use leadrelay_core::destination::Destinations;
use leadrelay_core::storage::{DeliveryFilter, DeliveryStatus, OutboxDepth, PageRequest, ReplayPlan, ReplayRequest};

use super::*;

fn destinations_of(claimed: &[Claimed]) -> Vec<DestinationId> {
    let mut ids: Vec<_> = claimed.iter().map(|c| c.destination.id.clone()).collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<DestinationId>) -> Vec<DestinationId> {
    ids.sort();
    ids
}

/// A claim returns each due delivery with its stored lead and destination, at most `limit` of
/// them, none that is not due yet, and a lease token of its own.
pub async fn a_claim_returns_the_lead_and_destination_of_each_delivery(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let (d1, d2) = (destination(&*s, &p, true).await, destination(&*s, &p, true).await);
    let l1 = insert(&*s, &p, &[&d1, &d2], T0).await;
    let l2 = insert(&*s, &p, &[&d1], T0.plus(millis(1))).await;
    let later = insert(&*s, &p, &[&d1], T0.plus(secs(60))).await;

    let now = T0.plus(secs(1));
    let one = s.claim_due_deliveries(&claim_capped(now, 1, 100)).await.unwrap();
    assert_eq!(one.len(), 1, "the limit holds");
    let rest = s.claim_due_deliveries(&claim(now)).await.unwrap();
    assert_eq!(rest.len(), 2, "the delivery that is not due yet stays");
    assert!(rest.iter().all(|c| c.lease_token != one[0].lease_token), "each claim has its own lease token");
    let mut pairs = BTreeSet::new();
    for c in one.iter().chain(&rest) {
        assert_eq!(c.lead, s.get_lead(&c.delivery.lead_id).await.unwrap().lead);
        assert_eq!(c.destination, s.get_destination(&c.delivery.destination).await.unwrap());
        assert_eq!((&c.delivery.lead_id, &c.delivery.destination), (&c.lead.id, &c.destination.id));
        assert_eq!((c.delivery.status, &c.delivery.publisher), (DeliveryStatus::Pending, &p));
        pairs.insert((c.lead.id.clone(), c.destination.id.clone()));
    }
    let expected = BTreeSet::from([
        (l1.id.clone(), d1.id.clone()),
        (l1.id.clone(), d2.id.clone()),
        (l2.id.clone(), d1.id.clone()),
    ]);
    assert_eq!(pairs, expected);
    let next = s.claim_due_deliveries(&claim(T0.plus(secs(60)))).await.unwrap();
    assert_eq!(next.iter().map(|c| c.lead.id.clone()).collect::<Vec<_>>(), vec![later.id]);
    assert!(next[0].lease_token != one[0].lease_token && next[0].lease_token != rest[0].lease_token);
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
    assert!(!first.lease_expired && second.lease_expired, "the second claim says the first lease ran out");
    s.record_attempts(&[record(&first, NextState::Dead, true)]).await.unwrap();
    assert_eq!(s.get_delivery(&first.delivery.id).await.unwrap().status, DeliveryStatus::Pending);
    s.record_attempts(&[record(&second, NextState::Delivered, false)]).await.unwrap();
    let detail = s.get_lead(&first.lead.id).await.unwrap();
    assert_eq!(detail.deliveries[0].0.status, DeliveryStatus::Delivered);
    assert_eq!(detail.deliveries[0].1.len(), 2, "both attempts are logged");
}

/// The result of a holder whose lease expired and was claimed again is logged, but changes
/// neither the delivery (state, attempts, due time, error) nor its destination (health,
/// enabled, pause), even when it asks to disable or pause the destination.
pub async fn a_stale_lease_token_changes_neither_the_delivery_nor_the_destination(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    let l = insert(&*s, &p, &[&d], T0).await;
    let first = s.claim_due_deliveries(&claim_capped(T0, 1, 100)).await.unwrap().remove(0);
    let later = T0.plus(LEASE + secs(1));
    let waiting = insert(&*s, &p, &[&d], later).await;
    let second = s.claim_due_deliveries(&claim_capped(later, 1, 100)).await.unwrap().remove(0);
    assert_eq!((&second.delivery.id, &second.lead.id), (&first.delivery.id, &l.id), "the expired lease is claimed");
    assert_ne!(second.lease_token, first.lease_token);

    let (delivery_before, destination_before) =
        (s.get_delivery(&first.delivery.id).await.unwrap(), s.get_destination(&d.id).await.unwrap());
    let stale = AttemptRecord {
        throttle_destination_until: Some(later.plus(secs(3600))),
        ..attempt(&first, later, Answer::Gone, NextState::Dead)
    };
    s.record_attempts(&[stale]).await.unwrap();
    assert_eq!(s.get_delivery(&first.delivery.id).await.unwrap(), delivery_before);
    assert_eq!(s.get_destination(&d.id).await.unwrap(), destination_before);
    let logged = s.get_lead(&l.id).await.unwrap().deliveries.remove(0).1;
    assert_eq!(logged.iter().map(|a| a.status_code).collect::<Vec<_>>(), vec![Some(410)], "the attempt is logged");
    let unpaused = s.claim_due_deliveries(&claim(later)).await.unwrap();
    assert_eq!(unpaused.iter().map(|c| c.lead.id.clone()).collect::<Vec<_>>(), vec![waiting.id], "no pause");

    s.record_attempts(&[attempt(&second, later, Answer::Ok, NextState::Delivered)]).await.unwrap();
    let detail = s.get_lead(&l.id).await.unwrap();
    assert_eq!(detail.deliveries[0].0.status, DeliveryStatus::Delivered, "the current holder's result counts");
    assert_eq!(detail.deliveries[0].1.len(), 2);
}

/// A result recorded after its lease ended still counts while no other claim took the
/// delivery: the send happened, so it is not made again.
pub async fn a_late_result_counts_while_no_other_claim_took_the_delivery(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    insert(&*s, &p, &[&d], T0).await;
    insert(&*s, &p, &[&d], T0.plus(millis(1))).await;
    let claimed = s.claim_due_deliveries(&claim(T0.plus(millis(1)))).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let late = T0.plus(LEASE + secs(30));
    let retry_at = late.plus(secs(60));
    s.record_attempts(&[
        attempt(&claimed[0], late, Answer::Ok, NextState::Delivered),
        attempt(&claimed[1], late, Answer::Transient, NextState::RetryAt { at: retry_at, counts: true }),
    ])
    .await
    .unwrap();
    assert_eq!(s.get_delivery(&claimed[0].delivery.id).await.unwrap().status, DeliveryStatus::Delivered);
    let retried = s.get_delivery(&claimed[1].delivery.id).await.unwrap();
    assert_eq!(
        (retried.status, retried.attempts, retried.next_attempt_at),
        (DeliveryStatus::Pending, 1, Some(retry_at))
    );
    assert_eq!(s.get_destination(&d.id).await.unwrap().consecutive_failures, 1);
    assert!(s.claim_due_deliveries(&claim(late)).await.unwrap().is_empty(), "neither is sent again now");
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
    assert!(!again[0].lease_expired, "a retry after a recorded result is no lease expiry");
    assert_eq!(again[0].delivery.attempts, 1);
    assert_eq!(again[0].destination.consecutive_failures, 1);
    assert_eq!(again[0].destination.failing_since, Some(T0));
}

/// Every attempt is logged in order with what the receiver answered; a success delivers the
/// delivery, clears its error and resets its destination's failure count.
pub async fn a_success_is_logged_and_clears_the_destinations_failures(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    let l = insert(&*s, &p, &[&d], T0).await;
    let c = s.claim_due_deliveries(&claim(T0)).await.unwrap().remove(0);
    let retry_at = T0.plus(secs(5));
    let failure = attempt(&c, T0, Answer::Transient, NextState::RetryAt { at: retry_at, counts: true });
    s.record_attempts(std::slice::from_ref(&failure)).await.unwrap();
    let failing = s.get_destination(&d.id).await.unwrap();
    assert_eq!((failing.consecutive_failures, failing.failing_since), (1, Some(T0)));
    let waiting = s.get_delivery(&c.delivery.id).await.unwrap();
    assert_eq!(
        (waiting.status, waiting.attempts, waiting.next_attempt_at, waiting.last_error.as_deref()),
        (DeliveryStatus::Pending, 1, Some(retry_at), Some("receiver answered 503"))
    );

    let c2 = s.claim_due_deliveries(&claim(retry_at)).await.unwrap().remove(0);
    let success = attempt(&c2, retry_at, Answer::Ok, NextState::Delivered);
    s.record_attempts(std::slice::from_ref(&success)).await.unwrap();
    let detail = s.get_lead(&l.id).await.unwrap();
    let (delivered, attempts) = &detail.deliveries[0];
    assert_eq!((delivered.status, delivered.last_error.as_deref()), (DeliveryStatus::Delivered, None));
    assert_eq!(
        attempts,
        &vec![Attempt { number: 1, ..failure.attempt }, Attempt { number: 2, ..success.attempt }],
        "attempts are numbered from 1 in order"
    );
    let healthy = s.get_destination(&d.id).await.unwrap();
    assert_eq!((healthy.consecutive_failures, healthy.failing_since), (0, None));
    assert_eq!(s.next_due_at().await.unwrap(), None);
    assert!(s.claim_due_deliveries(&claim(retry_at.plus(WINDOW))).await.unwrap().is_empty());
}

/// A dead letter keeps its last error, counts as a failure of its destination, and is never
/// claimed again by itself.
pub async fn a_dead_letter_keeps_its_error_and_is_never_claimed_again(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    insert(&*s, &p, &[&d], T0).await;
    let c = s.claim_due_deliveries(&claim(T0)).await.unwrap().remove(0);
    s.record_attempts(&[attempt(&c, T0, Answer::Permanent, NextState::Dead)]).await.unwrap();
    let dead = s.get_delivery(&c.delivery.id).await.unwrap();
    assert_eq!(
        (dead.status, dead.attempts, dead.last_error.as_deref()),
        (DeliveryStatus::Dead, 1, Some("receiver answered 400"))
    );
    assert!(s.claim_due_deliveries(&claim(T0.plus(WINDOW + WINDOW))).await.unwrap().is_empty());
    assert_eq!(s.next_due_at().await.unwrap(), None);
    let dest = s.get_destination(&d.id).await.unwrap();
    assert_eq!((dest.enabled, dest.consecutive_failures, dest.failing_since), (true, 1, Some(T0)));
}

/// An attempt that disables its destination (410 Gone) records the reason and parks the rest
/// of its queue; other destinations go on, and enabling it releases its queue.
pub async fn an_attempt_that_disables_its_destination_parks_the_rest_of_its_queue(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let (gone, other) = (destination(&*s, &p, true).await, destination(&*s, &p, true).await);
    for i in 0..3 {
        insert(&*s, &p, &[&gone], T0.plus(millis(i))).await;
    }
    let elsewhere = insert(&*s, &p, &[&other], T0.plus(millis(3))).await;
    let now = T0.plus(millis(10));
    let c = s.claim_due_deliveries(&claim_capped(now, 1, 100)).await.unwrap().remove(0);
    assert_eq!(c.destination.id, gone.id, "the oldest due delivery is claimed first");
    s.record_attempts(&[attempt(&c, now, Answer::Gone, NextState::Dead)]).await.unwrap();
    let off = s.get_destination(&gone.id).await.unwrap();
    assert_eq!((off.enabled, off.disabled_reason.as_deref()), (false, Some("the receiver answered 410 Gone")));
    let later = T0.plus(secs(3600));
    let claimed = s.claim_due_deliveries(&claim(later)).await.unwrap();
    assert_eq!(claimed.iter().map(|c| c.lead.id.clone()).collect::<Vec<_>>(), vec![elsewhere.id]);
    let parked = s
        .list_deliveries(
            &DeliveryFilter { destination: Some(gone.id.clone()), ..Default::default() },
            &PageRequest { limit: 10, cursor: None },
        )
        .await
        .unwrap();
    let statuses: Vec<_> = parked.items.iter().map(|d| d.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == DeliveryStatus::Pending).count(), 2);

    let t2 = later.plus(secs(3600));
    s.set_destination_enabled(&gone.id, true, None, t2).await.unwrap();
    let released = s.claim_due_deliveries(&claim(t2)).await.unwrap();
    assert_eq!(released.iter().filter(|c| c.destination.id == gone.id).count(), 2);
}

/// One call records the attempts of several deliveries of several destinations, each with its
/// own next state, and counts each destination's failures.
pub async fn attempts_of_several_deliveries_are_recorded_in_one_call(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let (d1, d2) = (destination(&*s, &p, true).await, destination(&*s, &p, true).await);
    insert(&*s, &p, &[&d1, &d2], T0).await;
    insert(&*s, &p, &[&d1, &d2], T0.plus(millis(1))).await;
    let claimed = s.claim_due_deliveries(&claim(T0.plus(millis(1)))).await.unwrap();
    assert_eq!(claimed.len(), 4);
    let retry_at = T0.plus(secs(30));
    let mut d2_answers =
        [(Answer::Permanent, NextState::Dead), (Answer::Transient, NextState::RetryAt { at: retry_at, counts: true })]
            .into_iter();
    let records: Vec<_> = claimed
        .iter()
        .map(|c| {
            let (answer, next) =
                if c.destination.id == d1.id { (Answer::Ok, NextState::Delivered) } else { d2_answers.next().unwrap() };
            attempt(c, T0.plus(secs(1)), answer, next)
        })
        .collect();
    s.record_attempts(&records).await.unwrap();
    let mut states = Vec::new();
    for r in &records {
        let d = s.get_delivery(&r.attempt.delivery_id).await.unwrap();
        assert_eq!(
            d.status,
            match r.next {
                NextState::Delivered => DeliveryStatus::Delivered,
                NextState::Dead => DeliveryStatus::Dead,
                NextState::RetryAt { .. } => DeliveryStatus::Pending,
            }
        );
        states.push(d.status);
        assert_eq!(
            s.get_lead(&d.lead_id).await.unwrap().deliveries.iter().find(|(x, _)| x.id == d.id).unwrap().1.len(),
            1
        );
    }
    assert_eq!(states.iter().filter(|s| **s == DeliveryStatus::Delivered).count(), 2);
    assert_eq!(s.get_destination(&d1.id).await.unwrap().consecutive_failures, 0);
    assert_eq!(s.get_destination(&d2.id).await.unwrap().consecutive_failures, 2);
    assert_eq!(s.next_due_at().await.unwrap(), Some(retry_at));
}

/// A throttled attempt pauses its destination: no claim returns its deliveries until the pause
/// ends (other destinations go on); then, however many claims race, one delivery at a time
/// probes, a throttled probe pauses it again, and an answer that is not a throttle releases
/// the rest.
pub async fn a_throttled_destination_is_paused_then_probed_by_one_delivery_at_a_time(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let (busy, other) = (destination(&*s, &p, true).await, destination(&*s, &p, true).await);
    for i in 0..6 {
        insert(&*s, &p, &[&busy], T0.plus(millis(i))).await;
    }
    insert(&*s, &p, &[&other], T0.plus(secs(1))).await;
    let first = s.claim_due_deliveries(&claim_capped(T0.plus(secs(1)), 1, 100)).await.unwrap().remove(0);
    assert_eq!(first.destination.id, busy.id);
    let until = T0.plus(secs(60));
    s.record_attempts(&[throttled(&first, T0.plus(secs(1)), until)]).await.unwrap();

    let during = s.claim_due_deliveries(&claim(T0.plus(secs(2)))).await.unwrap();
    assert_eq!(destinations_of(&during), vec![other.id.clone()], "only the other destination is served");
    s.record_attempts(&[attempt(&during[0], T0.plus(secs(2)), Answer::Ok, NextState::Delivered)]).await.unwrap();
    assert!(s.claim_due_deliveries(&claim(until.minus(millis(1)))).await.unwrap().is_empty());

    let race = |now: Timestamp| {
        let s = Arc::clone(&s);
        async move {
            let claims = concurrently(RACERS, |_| {
                let s = Arc::clone(&s);
                async move { s.claim_due_deliveries(&claim(now)).await.unwrap() }
            })
            .await;
            claims.into_iter().flatten().collect::<Vec<_>>()
        }
    };
    let probes = race(until).await;
    assert_eq!(probes.len(), 1, "one probe, not {}", probes.len());
    assert!(s.claim_due_deliveries(&claim(until.plus(secs(30)))).await.unwrap().is_empty(), "one at a time");
    let until2 = until.plus(secs(60));
    s.record_attempts(&[throttled(&probes[0], until, until2)]).await.unwrap();
    assert!(s.claim_due_deliveries(&claim(until2.minus(millis(1)))).await.unwrap().is_empty(), "paused again");

    let probes = race(until2).await;
    assert_eq!(probes.len(), 1, "one probe, not {}", probes.len());
    s.record_attempts(&[attempt(&probes[0], until2, Answer::Ok, NextState::Delivered)]).await.unwrap();
    let rest = s.claim_due_deliveries(&claim(until2)).await.unwrap();
    assert_eq!(rest.len(), 5, "the pause is over");
    assert!(rest.iter().all(|c| c.destination.id == busy.id));
}

/// A run of throttled attempts of one delivery shares one attempt row (the latest try) and
/// uses up no retry; any other answer starts a new row.
pub async fn consecutive_throttled_attempts_of_one_delivery_share_one_attempt_row(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    let l = insert(&*s, &p, &[&d], T0).await;
    let step = secs(10);
    let mut at = T0;
    let mut last = None;
    for _ in 0..3 {
        let c = s.claim_due_deliveries(&claim(at)).await.unwrap().remove(0);
        let r = throttled(&c, at, at.plus(step));
        s.record_attempts(std::slice::from_ref(&r)).await.unwrap();
        last = Some(r.attempt);
        at = at.plus(step);
    }
    let (delivery, attempts) = s.get_lead(&l.id).await.unwrap().deliveries.remove(0);
    assert_eq!(attempts, vec![Attempt { number: 1, ..last.unwrap() }], "three throttled tries, one row");
    assert_eq!(delivery.attempts, 0, "throttling uses up no retry");

    let c = s.claim_due_deliveries(&claim(at)).await.unwrap().remove(0);
    let retry = NextState::RetryAt { at: at.plus(step), counts: true };
    s.record_attempts(&[attempt(&c, at, Answer::Transient, retry)]).await.unwrap();
    at = at.plus(step);
    let c = s.claim_due_deliveries(&claim(at)).await.unwrap().remove(0);
    s.record_attempts(&[throttled(&c, at, at.plus(step))]).await.unwrap();
    assert_eq!(s.get_delivery(&c.delivery.id).await.unwrap().attempts, 1);
    at = at.plus(step);
    let c = s.claim_due_deliveries(&claim(at)).await.unwrap().remove(0);
    s.record_attempts(&[attempt(&c, at, Answer::Ok, NextState::Delivered)]).await.unwrap();
    let attempts = s.get_lead(&l.id).await.unwrap().deliveries.remove(0).1;
    let rows: Vec<_> = attempts.iter().map(|a| (a.number, a.error_class)).collect();
    assert_eq!(
        rows,
        vec![
            (1, Some(ErrorClass::Throttled)),
            (2, Some(ErrorClass::Transient)),
            (3, Some(ErrorClass::Throttled)),
            (4, None)
        ]
    );
}

/// With the cap at one, a destination holding many due deliveries and another holding one
/// each get one of a claim of two.
pub async fn a_destination_with_a_backlog_does_not_crowd_out_another(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let (busy, quiet) = (destination(&*s, &p, true).await, destination(&*s, &p, true).await);
    for i in 0..10 {
        insert(&*s, &p, &[&busy], T0.plus(millis(i))).await;
    }
    insert(&*s, &p, &[&quiet], T0.plus(secs(1))).await;
    let claimed = s.claim_due_deliveries(&claim_capped(T0.plus(secs(1)), 2, 1)).await.unwrap();
    assert_eq!(destinations_of(&claimed), sorted(vec![busy.id, quiet.id]));
}

/// A claim takes the oldest due delivery of every destination before a second one of any,
/// even when the cap would allow more of the destination with the oldest backlog.
pub async fn a_claim_serves_every_destination_before_a_second_delivery_of_any(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let (a, b, c) =
        (destination(&*s, &p, true).await, destination(&*s, &p, true).await, destination(&*s, &p, true).await);
    for i in 0..10 {
        insert(&*s, &p, &[&a], T0.plus(millis(i))).await;
    }
    insert(&*s, &p, &[&b], T0.plus(secs(1))).await;
    insert(&*s, &p, &[&c], T0.plus(secs(2))).await;
    let now = T0.plus(secs(2));
    let first = s.claim_due_deliveries(&claim_capped(now, 3, 10)).await.unwrap();
    assert_eq!(destinations_of(&first), sorted(vec![a.id.clone(), b.id, c.id]));
    let rest = s.claim_due_deliveries(&claim_capped(now, 20, 10)).await.unwrap();
    assert_eq!(rest.len(), 9);
    assert!(rest.iter().all(|x| x.destination.id == a.id));
}

/// `outbox_depths` lists every destination by id, with its publisher, its state and how many of
/// its deliveries are neither delivered nor dead: due, in flight, scheduled for a retry, or
/// parked while it is disabled. A destination with none counts 0, and a delivery leaves the
/// count once its result is recorded.
pub async fn outbox_depths_count_what_each_destination_has_still_to_deliver(s: Arc<dyn Storage>) {
    let (p, q) = (publisher(&*s).await, publisher_named(&*s, "fabrikam").await);
    let (busy, idle, off, paused) = (
        destination(&*s, &p, true).await,
        destination(&*s, &p, true).await,
        destination(&*s, &p, false).await,
        destination(&*s, &p, true).await,
    );
    let elsewhere = destination(&*s, &q, true).await;
    for i in 0..6 {
        insert(&*s, &p, &[&busy], T0.plus(millis(i))).await;
    }
    insert(&*s, &p, &[&off, &paused], T0).await;
    insert(&*s, &q, &[&elsewhere], T0).await;
    let now = T0.plus(secs(1));
    let claimed = s.claim_due_deliveries(&claim(now)).await.unwrap();
    let of = |d: &DestinationRecord| claimed.iter().filter(|c| c.destination.id == d.id).collect::<Vec<_>>();
    let (busy_claims, paused_claims) = (of(&busy), of(&paused));
    assert_eq!((busy_claims.len(), paused_claims.len(), claimed.len()), (6, 1, 8), "the disabled one is parked");
    let (retry_at, until) = (now.plus(secs(60)), now.plus(secs(30)));
    s.record_attempts(&[
        attempt(busy_claims[0], now, Answer::Ok, NextState::Delivered),
        attempt(busy_claims[1], now, Answer::Permanent, NextState::Dead),
        attempt(busy_claims[2], now, Answer::Transient, NextState::RetryAt { at: retry_at, counts: true }),
        throttled(paused_claims[0], now, until),
    ])
    .await
    .unwrap();

    let depth = |d: &DestinationRecord, enabled, paused_until, waiting| OutboxDepth {
        publisher: d.publisher.clone(),
        destination: d.id.clone(),
        enabled,
        paused_until,
        waiting,
    };
    let mut expected = vec![
        depth(&busy, true, None, 4),
        depth(&idle, true, None, 0),
        depth(&off, false, None, 1),
        depth(&paused, true, Some(until), 1),
        depth(&elsewhere, true, None, 1),
    ];
    expected.sort_by(|a, b| a.destination.cmp(&b.destination));
    assert_eq!(s.outbox_depths().await.unwrap(), expected, "in flight, retrying and parked count; done ones do not");

    let rest: Vec<_> = busy_claims[3..].iter().map(|c| attempt(c, now, Answer::Ok, NextState::Delivered)).collect();
    s.record_attempts(&rest).await.unwrap();
    let busy_now = s.outbox_depths().await.unwrap().into_iter().find(|d| d.destination == busy.id).unwrap();
    assert_eq!(busy_now.waiting, 1, "only the retry is left");
}

/// `next_due_at` is the earliest due time of a pending delivery of an enabled destination; a
/// paused destination's deliveries count from the end of its pause, a disabled one's not at all.
pub async fn next_due_at_is_the_earliest_due_time_of_enabled_destinations(s: Arc<dyn Storage>) {
    assert_eq!(s.next_due_at().await.unwrap(), None);
    let p = publisher(&*s).await;
    let (d1, d2, off) =
        (destination(&*s, &p, true).await, destination(&*s, &p, true).await, destination(&*s, &p, false).await);
    insert(&*s, &p, &[&off], T0.plus(secs(5))).await;
    insert(&*s, &p, &[&d2], T0.plus(secs(10))).await;
    insert(&*s, &p, &[&d1], T0.plus(secs(30))).await;
    assert_eq!(s.next_due_at().await.unwrap(), Some(T0.plus(secs(10))));
    let c = s.claim_due_deliveries(&claim(T0.plus(secs(10)))).await.unwrap();
    assert_eq!(destinations_of(&c), vec![d2.id.clone()]);
    s.record_attempts(&[attempt(&c[0], T0.plus(secs(10)), Answer::Ok, NextState::Delivered)]).await.unwrap();
    assert_eq!(s.next_due_at().await.unwrap(), Some(T0.plus(secs(30))));

    let c = s.claim_due_deliveries(&claim(T0.plus(secs(30)))).await.unwrap().remove(0);
    insert(&*s, &p, &[&d1], T0.plus(secs(40))).await;
    let until = T0.plus(secs(3600));
    s.record_attempts(&[throttled(&c, T0.plus(secs(30)), until)]).await.unwrap();
    assert_eq!(s.next_due_at().await.unwrap(), Some(until), "the pause holds back the delivery due at 40 s");
    for _ in 0..2 {
        let probe = s.claim_due_deliveries(&claim(until)).await.unwrap().remove(0);
        s.record_attempts(&[attempt(&probe, until, Answer::Ok, NextState::Delivered)]).await.unwrap();
    }
    assert_eq!(s.next_due_at().await.unwrap(), None, "the disabled destination's delivery does not count");
}

/// A delivery or destination that does not exist is `NotFound` to read, retry or replay.
pub async fn an_unknown_delivery_is_not_found(s: Arc<dyn Storage>) {
    let unknown = DeliveryId::generate(T0);
    assert_not_found(s.get_delivery(&unknown).await);
    assert_not_found(s.retry_delivery(&unknown, T0).await);
    for only_dead in [true, false] {
        let req = ReplayRequest { destination: DestinationId::generate(T0), since: None, until: None, only_dead };
        assert_not_found(s.replay_candidates(&req, None, 10).await);
        let plan = ReplayPlan { destination: req.destination.clone(), leads: Vec::new() };
        assert_not_found(s.replay(&plan, T0).await);
    }
}

/// The delivery list filters by publisher, status and destination, alone and combined, and
/// pages newest first with a cursor that continues without gaps or repeats.
pub async fn deliveries_are_filtered_and_paged_newest_first(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let other = publisher_named(&*s, "fabrikam").await;
    let (d1, d2) = (destination(&*s, &p, true).await, destination(&*s, &p, true).await);
    let e = destination(&*s, &other, true).await;
    for i in 0..3 {
        insert(&*s, &p, &[&d1, &d2], T0.plus(secs(i))).await;
    }
    insert(&*s, &other, &[&e], T0.plus(secs(5))).await;
    let c = s.claim_due_deliveries(&claim_capped(T0.plus(secs(10)), 1, 100)).await.unwrap().remove(0);
    s.record_attempts(&[attempt(&c, T0.plus(secs(10)), Answer::Permanent, NextState::Dead)]).await.unwrap();

    let list = |filter: DeliveryFilter, limit: u32, cursor: Option<String>| {
        let s = Arc::clone(&s);
        async move { s.list_deliveries(&filter, &PageRequest { limit, cursor }).await.unwrap() }
    };
    let ids = |page: &leadrelay_core::storage::Page<leadrelay_core::storage::Delivery>| {
        page.items.iter().map(|d| d.id.clone()).collect::<Vec<_>>()
    };
    let all = list(DeliveryFilter::default(), 100, None).await;
    assert_eq!(all.items.len(), 7);
    assert!(all.items.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert!(all.next_cursor.is_none());
    let count = |filter: DeliveryFilter| {
        let list = &list;
        async move { list(filter, 100, None).await.items }
    };
    let mine = count(DeliveryFilter { publisher: Some(p.clone()), ..Default::default() }).await;
    assert_eq!(mine.len(), 6);
    assert!(mine.iter().all(|d| d.publisher == p));
    assert_eq!(count(DeliveryFilter { publisher: Some(other.clone()), ..Default::default() }).await.len(), 1);
    let dead = count(DeliveryFilter { status: Some(DeliveryStatus::Dead), ..Default::default() }).await;
    assert_eq!(dead.iter().map(|d| d.id.clone()).collect::<Vec<_>>(), vec![c.delivery.id.clone()]);
    assert_eq!(count(DeliveryFilter { status: Some(DeliveryStatus::Pending), ..Default::default() }).await.len(), 6);
    let of_d2 = count(DeliveryFilter { destination: Some(d2.id.clone()), ..Default::default() }).await;
    assert_eq!(of_d2.len(), 3);
    assert!(of_d2.iter().all(|d| d.destination == d2.id));
    let pending_of_dead_dest = DeliveryFilter {
        status: Some(DeliveryStatus::Pending),
        destination: Some(c.destination.id.clone()),
        ..Default::default()
    };
    assert_eq!(count(pending_of_dead_dest).await.len(), 2);
    let crossed = DeliveryFilter { publisher: Some(other), destination: Some(d1.id.clone()), ..Default::default() };
    assert!(count(crossed).await.is_empty());

    let first = list(DeliveryFilter::default(), 3, None).await;
    let second = list(DeliveryFilter::default(), 3, first.next_cursor.clone()).await;
    let third = list(DeliveryFilter::default(), 3, second.next_cursor.clone()).await;
    assert_eq!((first.items.len(), second.items.len(), third.items.len()), (3, 3, 1));
    assert!(third.next_cursor.is_none());
    assert_eq!([ids(&first), ids(&second), ids(&third)].concat(), ids(&all));
}

/// Retrying a delivery in flight is a `Conflict` that changes nothing; after the lease ends,
/// and for a delivered one, a retry makes it due now with a fresh budget (parked instead while
/// its destination is disabled).
pub async fn a_leased_delivery_cannot_be_retried_until_its_lease_ends(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    insert(&*s, &p, &[&d], T0).await;
    let c = s.claim_due_deliveries(&claim(T0)).await.unwrap().remove(0);
    let id = c.delivery.id.clone();
    assert_conflict(s.retry_delivery(&id, T0.plus(secs(1))).await);
    assert!(s.claim_due_deliveries(&claim(T0.plus(secs(2)))).await.unwrap().is_empty(), "still in flight");

    let after = T0.plus(LEASE + secs(1));
    let retried = s.retry_delivery(&id, after).await.unwrap();
    assert_eq!((retried.status, retried.attempts, retried.next_attempt_at), (DeliveryStatus::Pending, 0, Some(after)));
    let again = s.claim_due_deliveries(&claim(after)).await.unwrap().remove(0);
    s.record_attempts(&[attempt(&again, after, Answer::Ok, NextState::Delivered)]).await.unwrap();
    let t = after.plus(secs(10));
    let resent = s.retry_delivery(&id, t).await.unwrap();
    assert_eq!((resent.status, resent.attempts, resent.next_attempt_at), (DeliveryStatus::Pending, 0, Some(t)));
    assert_eq!(s.get_delivery(&id).await.unwrap(), resent);

    let c = s.claim_due_deliveries(&claim(t)).await.unwrap().remove(0);
    s.record_attempts(&[attempt(&c, t, Answer::Permanent, NextState::Dead)]).await.unwrap();
    s.set_destination_enabled(&d.id, false, Some("paused"), t.plus(secs(1))).await.unwrap();
    let parked = s.retry_delivery(&id, t.plus(secs(2))).await.unwrap();
    assert_eq!((parked.status, parked.attempts, parked.next_attempt_at), (DeliveryStatus::Pending, 0, None));
    assert!(s.claim_due_deliveries(&claim(t.plus(secs(3600)))).await.unwrap().is_empty());
    s.set_destination_enabled(&d.id, true, None, t.plus(secs(7200))).await.unwrap();
    assert_eq!(s.claim_due_deliveries(&claim(t.plus(secs(7200)))).await.unwrap().len(), 1);
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
    assert_eq!(replay_all(&*s, &req, T0).await, 1);
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
    assert_eq!(replay_all(&*s, &req, T0).await, 1);
    let claimed = s.claim_due_deliveries(&claim(T0)).await.unwrap();
    assert_eq!(claimed.iter().map(|c| c.lead.id.clone()).collect::<Vec<_>>(), vec![old.id]);
    assert!(s.get_lead(&outside.id).await.unwrap().deliveries.is_empty());
}

/// A full replay of a range makes every delivery of it due again, delivered ones included, and
/// gives the destination the leads of its offers it never had; a delivery in flight is left
/// alone and not counted, and duplicates and other offers' leads get nothing.
pub async fn a_full_replay_sends_every_lead_of_the_range_again_except_those_in_flight(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let crm = OfferId::parse("contoso.crm").unwrap();
    let d = DestinationRecord { offers: Some(vec![crm.clone()]), ..destination_record(&p, true, T0) };
    s.create_destination(&d).await.unwrap();
    let of_offer = |offer: &str, at: Timestamp, email: &str| Lead {
        offer: Some(OfferId::parse(offer).unwrap()),
        ..lead_of(&p, at, email, "INS")
    };
    let delivered = of_offer("contoso.crm", T0, "ada@fabrikam.com");
    let in_flight = of_offer("contoso.crm", T0.plus(secs(1)), "bob@northwind.com");
    let duplicate = of_offer("contoso.crm", T0.plus(secs(2)), "ada@fabrikam.com");
    let other_offer = of_offer("contoso.erp", T0.plus(secs(3)), "cy@adatum.com");
    let missing = of_offer("contoso.crm", T0.plus(secs(4)), "eve@adatum.com");
    let outside = of_offer("contoso.crm", T0.plus(secs(7200)), "fay@adatum.com");
    for l in [&delivered, &in_flight, &duplicate] {
        insert_lead(&*s, l, &[&d]).await;
    }
    for l in [&other_offer, &missing, &outside] {
        insert_lead(&*s, l, &[]).await;
    }
    let now = T0.plus(secs(5));
    let c = s.claim_due_deliveries(&claim_capped(now, 1, 100)).await.unwrap().remove(0);
    assert_eq!(c.lead.id, delivered.id);
    s.record_attempts(&[attempt(&c, now, Answer::Ok, NextState::Delivered)]).await.unwrap();
    let flying = s.claim_due_deliveries(&claim(now)).await.unwrap().remove(0);
    assert_eq!(flying.lead.id, in_flight.id);

    let t1 = T0.plus(secs(10));
    let req = ReplayRequest {
        destination: d.id.clone(),
        since: Some(T0.minus(secs(1))),
        until: Some(T0.plus(secs(3600))),
        only_dead: false,
    };
    assert_eq!(replay_all(&*s, &req, t1).await, 2);
    let claimed = s.claim_due_deliveries(&claim(t1)).await.unwrap();
    let leads: BTreeSet<_> = claimed.iter().map(|c| c.lead.id.clone()).collect();
    assert_eq!(leads, BTreeSet::from([delivered.id.clone(), missing.id.clone()]));
    assert!(claimed.iter().all(|c| c.delivery.attempts == 0));
    for l in [&duplicate, &other_offer, &outside] {
        assert!(s.get_lead(&l.id).await.unwrap().deliveries.is_empty());
    }
    s.record_attempts(&[attempt(&flying, t1, Answer::Ok, NextState::Delivered)]).await.unwrap();
    assert_eq!(s.get_delivery(&flying.delivery.id).await.unwrap().status, DeliveryStatus::Delivered, "its lease held");
}

/// `ping` answers on a working store, before and after writes.
pub async fn ping_answers_on_a_working_store(s: Arc<dyn Storage>) {
    s.ping().await.unwrap();
    let p = publisher(&*s).await;
    insert(&*s, &p, &[], T0).await;
    s.ping().await.unwrap();
}

/// A replay as the use case runs it: candidates page by page (pages of 2, so paging is
/// exercised), planned with the one routing rule, then queued.
async fn replay_all(s: &dyn Storage, req: &ReplayRequest, now: Timestamp) -> u64 {
    let destination = s.get_destination(&req.destination).await.unwrap();
    let (mut after, mut queued) = (None::<LeadId>, 0);
    loop {
        let page = s.replay_candidates(req, after.as_ref(), 2).await.unwrap();
        let Some(last) = page.last() else { return queued };
        after = Some(last.id.clone());
        let leads = page
            .iter()
            .filter(|l| leadrelay_core::routing::applies(l, &destination, &Destinations::new()))
            .map(|l| (l.id.clone(), DeliveryId::generate(now)))
            .collect();
        queued += s.replay(&ReplayPlan { destination: destination.id.clone(), leads }, now).await.unwrap();
    }
}
