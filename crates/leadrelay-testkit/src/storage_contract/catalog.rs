//! `CatalogStore`: publishers, offers and destinations, and what enabling a destination does
//! to its queue.

use leadrelay_core::storage::{DeliveryStatus, Offer, Upserted};
use leadrelay_core::{OfferId, OfferType};

use super::*;

fn offer(p: &PublisherId, name: &str, at: Timestamp) -> Offer {
    Offer {
        id: OfferId::parse(&format!("{p}.{name}")).unwrap(),
        publisher: p.clone(),
        title: format!("Contoso {name}"),
        offer_type: OfferType::Saas,
        created_at: at,
        updated_at: at,
        published_at: None,
        last_validation: None,
    }
}

/// A publisher is read back field for field; an unknown one is `NotFound`.
pub async fn a_publisher_is_read_back_as_created(s: Arc<dyn Storage>) {
    let p = Publisher { id: PublisherId::parse("contoso").unwrap(), name: "Contoso Ltd".into(), created_at: T0 };
    s.create_publisher(&p).await.unwrap();
    assert_eq!(s.get_publisher(&p.id).await.unwrap(), p);
    assert_not_found(s.get_publisher(&PublisherId::parse("fabrikam").unwrap()).await);
}

/// Creating a publisher whose id is taken is a `Conflict` and leaves the first one as it was.
pub async fn a_taken_publisher_id_is_a_conflict(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let impostor = Publisher { id: p.clone(), name: "Impostor".into(), created_at: T0.plus(secs(1)) };
    assert_conflict(s.create_publisher(&impostor).await);
    assert_eq!(s.get_publisher(&p).await.unwrap().name, "Contoso");
}

/// Upserting a new offer creates it; upserting it again replaces its title and type and keeps
/// its creation time.
pub async fn an_offer_is_created_then_updated_by_upsert(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let first = offer(&p, "crm", T0);
    assert_eq!(s.upsert_offer(&first).await.unwrap(), Upserted::Created);
    assert_eq!(s.get_offer(&first.id).await.unwrap(), first);
    let changed = Offer {
        title: "Contoso CRM Enterprise".into(),
        offer_type: OfferType::ConsultingService,
        updated_at: T0.plus(secs(60)),
        ..first.clone()
    };
    assert_eq!(s.upsert_offer(&changed).await.unwrap(), Upserted::Updated);
    assert_eq!(s.get_offer(&first.id).await.unwrap(), changed);
}

/// An offer of a publisher that does not exist is refused with `NotFound` and not stored.
pub async fn an_offer_of_an_unknown_publisher_is_not_found(s: Arc<dyn Storage>) {
    let nobody = PublisherId::parse("nobody").unwrap();
    let o = offer(&nobody, "crm", T0);
    assert_not_found(s.upsert_offer(&o).await);
    assert_not_found(s.get_offer(&o.id).await);
}

/// An offer that does not exist can be neither read nor marked published.
pub async fn an_unknown_offer_is_not_found_to_read_or_to_publish(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let o = offer(&p, "ghost", T0);
    assert_not_found(s.get_offer(&o.id).await);
    assert_not_found(s.record_publication(&o.id, T0, &serde_json::json!([])).await);
    assert_not_found(s.get_offer(&o.id).await);
}

/// A publication stores its time and each destination's answer; a later one replaces both, and
/// upserting the offer (its title) keeps them.
pub async fn a_publication_records_its_time_and_results_and_survives_an_update(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let o = offer(&p, "crm", T0);
    s.upsert_offer(&o).await.unwrap();
    let t1 = T0.plus(secs(60));
    let results = serde_json::json!([{"destination_id": "dst_1", "ok": false, "hint": "check the URL"}]);
    s.record_publication(&o.id, t1, &results).await.unwrap();
    let published = s.get_offer(&o.id).await.unwrap();
    assert_eq!((published.published_at, published.last_validation.as_ref()), (Some(t1), Some(&results)));

    let t2 = T0.plus(secs(120));
    let again = serde_json::json!([{"destination_id": "dst_1", "ok": true}]);
    s.record_publication(&o.id, t2, &again).await.unwrap();
    let retitled = Offer { title: "Contoso CRM 2".into(), updated_at: T0.plus(secs(180)), ..o.clone() };
    assert_eq!(s.upsert_offer(&retitled).await.unwrap(), Upserted::Updated);
    let listed = s.list_offers(&p).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].title, "Contoso CRM 2");
    assert_eq!((listed[0].published_at, listed[0].last_validation.as_ref()), (Some(t2), Some(&again)));
}

/// A publisher's offers are listed in id order, and never another publisher's.
pub async fn a_publishers_offers_are_listed_by_id_without_another_publishers(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let other = publisher_named(&*s, "fabrikam").await;
    for name in ["erp", "analytics", "crm"] {
        s.upsert_offer(&offer(&p, name, T0)).await.unwrap();
    }
    s.upsert_offer(&offer(&other, "crm", T0)).await.unwrap();
    let ids: Vec<String> = s.list_offers(&p).await.unwrap().iter().map(|o| o.id.to_string()).collect();
    assert_eq!(ids, ["contoso.analytics", "contoso.crm", "contoso.erp"]);
    assert_eq!(s.list_offers(&other).await.unwrap(), vec![offer(&other, "crm", T0)]);
    assert!(s.list_offers(&PublisherId::parse("nobody").unwrap()).await.unwrap().is_empty());
}

/// A destination is read back field for field; its id cannot be taken twice, and an unknown
/// one is `NotFound`.
pub async fn a_destination_is_read_back_as_created(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = DestinationRecord {
        name: "CRM webhook".into(),
        settings: serde_json::json!({"url": "https://crm.example.com/hook", "secret": "whsec_x", "headers": {"x-a": "1"}}),
        offers: Some(vec![OfferId::parse("contoso.crm").unwrap(), OfferId::parse("contoso.erp").unwrap()]),
        ..destination_record(&p, true, T0)
    };
    s.create_destination(&d).await.unwrap();
    assert_eq!(s.get_destination(&d.id).await.unwrap(), d);
    let disabled = DestinationRecord { disabled_reason: Some("paused".into()), ..destination_record(&p, false, T0) };
    s.create_destination(&disabled).await.unwrap();
    assert_eq!(s.get_destination(&disabled.id).await.unwrap(), disabled);
    assert_conflict(s.create_destination(&DestinationRecord { name: "again".into(), ..d.clone() }).await);
    assert_eq!(s.get_destination(&d.id).await.unwrap().name, "CRM webhook");
    assert_not_found(s.get_destination(&DestinationId::generate(T0)).await);
}

/// A destination of a publisher that does not exist is refused with `NotFound`.
pub async fn a_destination_of_an_unknown_publisher_is_not_found(s: Arc<dyn Storage>) {
    let d = destination_record(&PublisherId::parse("nobody").unwrap(), true, T0);
    assert_not_found(s.create_destination(&d).await);
    assert_not_found(s.get_destination(&d.id).await);
}

/// A publisher's destinations are listed oldest first, and never another publisher's.
pub async fn a_publishers_destinations_are_listed_oldest_first(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let other = publisher_named(&*s, "fabrikam").await;
    let mut mine = Vec::new();
    for i in 0..3 {
        let d = destination_record(&p, i != 1, T0.plus(secs(i)));
        s.create_destination(&d).await.unwrap();
        mine.push(d);
        s.create_destination(&destination_record(&other, true, T0.plus(secs(i) + millis(500)))).await.unwrap();
    }
    assert_eq!(s.list_destinations(&p).await.unwrap(), mine);
    assert_eq!(s.list_destinations(&other).await.unwrap().len(), 3);
    assert!(s.list_destinations(&PublisherId::parse("nobody").unwrap()).await.unwrap().is_empty());
}

/// Disabling a destination parks its waiting deliveries (no claim returns them, no due time is
/// reported) and records why; enabling it makes them due at that moment, retries scheduled for
/// later included, and clears its failure count.
pub async fn disabling_a_destination_parks_its_queue_and_enabling_releases_it(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    let failing = insert(&*s, &p, &[&d], T0).await;
    let c = s.claim_due_deliveries(&claim(T0)).await.unwrap().remove(0);
    let tomorrow = T0.plus(WINDOW);
    s.record_attempts(&[attempt(&c, T0, Answer::Transient, NextState::RetryAt { at: tomorrow, counts: true })])
        .await
        .unwrap();
    let waiting = [insert(&*s, &p, &[&d], T0.plus(secs(1))).await, insert(&*s, &p, &[&d], T0.plus(secs(2))).await];

    let t1 = T0.plus(secs(10));
    s.set_destination_enabled(&d.id, false, Some("paused by an operator"), t1).await.unwrap();
    let off = s.get_destination(&d.id).await.unwrap();
    assert_eq!((off.enabled, off.disabled_reason.as_deref()), (false, Some("paused by an operator")));
    assert!(s.claim_due_deliveries(&claim(tomorrow.plus(secs(1)))).await.unwrap().is_empty());
    assert_eq!(s.next_due_at().await.unwrap(), None);
    for l in waiting.iter().chain([&failing]) {
        assert_eq!(only_delivery(&*s, l).await.status, DeliveryStatus::Pending, "a parked delivery stays pending");
    }

    let t2 = T0.plus(secs(3600));
    s.set_destination_enabled(&d.id, true, None, t2).await.unwrap();
    let on = s.get_destination(&d.id).await.unwrap();
    assert_eq!((on.enabled, on.disabled_reason, on.consecutive_failures, on.failing_since), (true, None, 0, None));
    assert_eq!(s.next_due_at().await.unwrap(), Some(t2));
    for l in waiting.iter().chain([&failing]) {
        assert_eq!(only_delivery(&*s, l).await.next_attempt_at, Some(t2), "released deliveries are due now");
    }
    assert_eq!(s.claim_due_deliveries(&claim(t2)).await.unwrap().len(), 3);
}

/// Disabling a destination leaves its deliveries in flight alone: their results are recorded,
/// a delivered one stays delivered and a retry waits, parked, until the destination is enabled.
pub async fn disabling_a_destination_leaves_its_deliveries_in_flight_to_finish(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    insert(&*s, &p, &[&d], T0).await;
    insert(&*s, &p, &[&d], T0).await;
    let in_flight = s.claim_due_deliveries(&claim(T0)).await.unwrap();
    assert_eq!(in_flight.len(), 2);
    s.set_destination_enabled(&d.id, false, Some("paused by an operator"), T0.plus(secs(1))).await.unwrap();
    assert!(s.claim_due_deliveries(&claim(T0.plus(LEASE + secs(1)))).await.unwrap().is_empty());
    let retry_at = T0.plus(secs(5));
    s.record_attempts(&[
        attempt(&in_flight[0], T0, Answer::Ok, NextState::Delivered),
        attempt(&in_flight[1], T0, Answer::Transient, NextState::RetryAt { at: retry_at, counts: true }),
    ])
    .await
    .unwrap();
    assert_eq!(s.get_delivery(&in_flight[0].delivery.id).await.unwrap().status, DeliveryStatus::Delivered);
    let parked = s.get_delivery(&in_flight[1].delivery.id).await.unwrap();
    assert_eq!((parked.status, parked.attempts), (DeliveryStatus::Pending, 1));
    assert!(s.claim_due_deliveries(&claim(T0.plus(secs(600)))).await.unwrap().is_empty(), "the retry waits");
    let t2 = T0.plus(secs(900));
    s.set_destination_enabled(&d.id, true, None, t2).await.unwrap();
    let again = s.claim_due_deliveries(&claim(t2)).await.unwrap();
    assert_eq!(again.iter().map(|c| c.delivery.id.clone()).collect::<Vec<_>>(), vec![parked.id]);
}

/// Enabling or disabling a destination that does not exist is `NotFound`.
pub async fn enabling_an_unknown_destination_is_not_found(s: Arc<dyn Storage>) {
    let unknown = DestinationId::generate(T0);
    assert_not_found(s.set_destination_enabled(&unknown, true, None, T0).await);
    assert_not_found(s.set_destination_enabled(&unknown, false, Some("x"), T0).await);
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
