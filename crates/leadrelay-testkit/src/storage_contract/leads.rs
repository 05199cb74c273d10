//! `LeadStore`: the atomic lead + outbox insert, customer merging and duplicates, reads and
//! filters, and splitting a customer.

use leadrelay_core::storage::{DeliveryStatus, ErasureRequest, LeadFilter, PageRequest, SplitRequest};
use leadrelay_core::{CustomerId, OfferId};

use super::*;

fn page(limit: u32) -> PageRequest {
    PageRequest { limit, cursor: None }
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

/// A batch is answered lead by lead, in order, and a lead sees the leads before it in the same
/// batch: a repeat of an earlier one is its duplicate and gets no deliveries.
pub async fn a_batch_answers_each_lead_in_order_and_sees_its_own_earlier_leads(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    let ada = lead_of(&p, T0, "ada@fabrikam.com", "INS");
    let bob = lead_of(&p, T0.plus(secs(1)), "bob@northwind.com", "INS");
    let ada_again = lead_of(&p, T0.plus(secs(2)), "ADA@fabrikam.com", "ins");
    let batch = [with_deliveries(&ada, &[&d]), with_deliveries(&bob, &[&d]), with_deliveries(&ada_again, &[&d])];
    let accepted = s.insert_leads(&batch, WINDOW).await.unwrap();
    assert_eq!(accepted.len(), 3);
    let ada_customer = accepted[0].customer_id.clone().expect("a customer");
    assert_eq!(accepted[0].duplicate_of, None);
    assert_eq!(accepted[1].duplicate_of, None);
    assert_ne!(accepted[1].customer_id.as_ref(), Some(&ada_customer));
    assert_eq!(
        accepted[2],
        Accepted {
            customer_id: Some(ada_customer),
            duplicate_of: Some(ada.id.clone()),
            previously_erased: false,
            opportunity: None
        }
    );
    for (l, deliveries) in [(&ada, 1), (&bob, 1), (&ada_again, 0)] {
        assert_eq!(s.get_lead(&l.id).await.unwrap().deliveries.len(), deliveries);
    }
}

/// Reading a lead or a customer that does not exist is `NotFound`.
pub async fn an_unknown_lead_or_customer_is_not_found(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    insert(&*s, &p, &[], T0).await;
    assert_not_found(s.get_lead(&LeadId::generate(T0)).await);
    assert_not_found(s.get_customer(&CustomerId::generate(T0)).await);
}

/// Several leads are read in one call; an id that names no lead is left out.
pub async fn leads_are_read_many_at_once_and_unknown_ids_are_left_out(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let (ada, bob) = (lead(&p, T0), lead(&p, T0.plus(millis(1))));
    insert_lead(&*s, &ada, &[]).await;
    insert_lead(&*s, &bob, &[]).await;
    let mut got = s.get_leads(&[bob.id.clone(), LeadId::generate(T0), ada.id.clone()]).await.unwrap();
    got.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    let ids: Vec<_> = got.iter().map(|l| (&l.id, &l.customer)).collect();
    assert_eq!(ids, vec![(&ada.id, &ada.customer), (&bob.id, &bob.customer)]);
    assert!(s.get_leads(&[]).await.unwrap().is_empty());
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

/// The duplicate rule keys on the offer too: the same action for another offer (or for no
/// offer) is an original, and a repeat of it for that offer is its duplicate.
pub async fn a_repeat_for_another_offer_is_not_a_duplicate(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let of_offer = |at: Timestamp, offer: Option<&str>| Lead {
        offer: offer.map(|o| OfferId::parse(o).unwrap()),
        ..lead_of(&p, at, "ada@fabrikam.com", "INS")
    };
    let crm = of_offer(T0, Some("contoso.crm"));
    let erp = of_offer(T0.plus(secs(1)), Some("contoso.erp"));
    let none = of_offer(T0.plus(secs(2)), None);
    let crm_again = of_offer(T0.plus(secs(3)), Some("contoso.crm"));
    let erp_again = of_offer(T0.plus(secs(4)), Some("contoso.erp"));
    let mut originals = Vec::new();
    for l in [&crm, &erp, &none, &crm_again, &erp_again] {
        originals.push(insert_lead(&*s, l, &[]).await.duplicate_of);
    }
    assert_eq!(originals, vec![None, None, None, Some(crm.id), Some(erp.id)]);
}

/// Test leads never merge into a customer.
pub async fn test_leads_stand_alone(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let mut l = lead_of(&p, T0, "someone@contoso.com", "INS");
    l.is_test = true;
    assert_eq!(
        insert_lead(&*s, &l, &[]).await,
        Accepted { customer_id: None, duplicate_of: None, previously_erased: false, opportunity: None }
    );
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

/// Every field of the lead filter narrows the list, alone and combined; text matches names,
/// email and company anywhere and case-insensitively, with `_` and `%` taken literally.
pub async fn leads_are_filtered_by_every_field_of_the_filter(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let other = publisher_named(&*s, "fabrikam").await;
    let hour = |n: u64| T0.plus(secs(3600 * n));
    let ada = Lead {
        offer: Some(OfferId::parse("contoso.crm").unwrap()),
        customer: leadrelay_core::Customer {
            first_name: Some("Ada".into()),
            company: Some("Fabrikam".into()),
            email: Some("ada@fabrikam.com".into()),
            ..Default::default()
        },
        ..lead_of(&p, hour(0), "ada@fabrikam.com", "INS")
    };
    let bob_draft = LeadDraft {
        publisher: Some(p.clone()),
        offer: Some(OfferId::parse("contoso.erp").unwrap()),
        lead_source: Some("AppSource (SPZA)-PLT|contoso.erp".into()),
        customer: leadrelay_core::Customer {
            last_name: Some("Northwind".into()),
            email: Some("bob@example.com".into()),
            ..Default::default()
        },
        ..LeadDraft::default()
    };
    let bob = Lead::from_draft(bob_draft, LeadId::generate(hour(1)), hour(1), &LeadRules::default()).unwrap();
    let eve = Lead { is_test: true, ..lead_of(&p, hour(2), "eve@adatum.com", "INS") };
    let cy = lead_of(&other, hour(3), "cy@contoso.com", "DNC");
    let mut customer_of_ada = None;
    for l in [&ada, &bob, &eve, &cy] {
        let a = insert_lead(&*s, l, &[]).await;
        if l.id == ada.id {
            customer_of_ada = a.customer_id;
        }
    }
    let found = |filter: LeadFilter| {
        let s = Arc::clone(&s);
        async move {
            let listed = s.list_leads(&filter, &page(100)).await.unwrap();
            listed.items.into_iter().map(|l| l.id).collect::<Vec<_>>()
        }
    };
    let ids = |ls: &[&Lead]| ls.iter().map(|l| l.id.clone()).collect::<Vec<_>>();
    let all = LeadFilter::default;
    assert_eq!(found(all()).await, ids(&[&cy, &eve, &bob, &ada]));
    assert_eq!(found(LeadFilter { publisher: Some(p.clone()), ..all() }).await, ids(&[&eve, &bob, &ada]));
    assert_eq!(found(LeadFilter { publisher: Some(other.clone()), ..all() }).await, ids(&[&cy]));
    assert_eq!(found(LeadFilter { offer: ada.offer.clone(), ..all() }).await, ids(&[&ada]));
    assert_eq!(found(LeadFilter { customer: customer_of_ada, ..all() }).await, ids(&[&ada]));
    assert_eq!(found(LeadFilter { source: Some("AppSource (SPZA)".into()), ..all() }).await, ids(&[&bob]));
    assert_eq!(found(LeadFilter { text: Some("FABRIKAM".into()), ..all() }).await, ids(&[&ada]));
    assert_eq!(found(LeadFilter { text: Some("FABRIK".into()), ..all() }).await, ids(&[]), "whole words only");
    assert_eq!(found(LeadFilter { text: Some("northwind".into()), ..all() }).await, ids(&[&bob]));
    assert_eq!(found(LeadFilter { text: Some("ada".into()), ..all() }).await, ids(&[&ada]), "not adatum");
    assert_eq!(found(LeadFilter { text: Some("Ada fabrikam".into()), ..all() }).await, ids(&[&ada]));
    assert_eq!(found(LeadFilter { text: Some("ada northwind".into()), ..all() }).await, ids(&[]), "every word");
    assert_eq!(found(LeadFilter { text: Some("eve@adatum.com".into()), ..all() }).await, ids(&[&eve]));
    assert_eq!(found(LeadFilter { text: Some("_".into()), ..all() }).await, ids(&[]));
    assert_eq!(found(LeadFilter { text: Some("%".into()), ..all() }).await, ids(&[]));
    assert_eq!(found(LeadFilter { is_test: Some(true), ..all() }).await, ids(&[&eve]));
    assert_eq!(found(LeadFilter { is_test: Some(false), ..all() }).await, ids(&[&cy, &bob, &ada]));
    assert_eq!(found(LeadFilter { action: Some("ins".into()), ..all() }).await, ids(&[&eve, &ada]));
    assert_eq!(found(LeadFilter { stage: Some("initial_interest".into()), ..all() }).await, ids(&[&bob]));
    assert_eq!(found(LeadFilter { since: Some(hour(1)), ..all() }).await, ids(&[&cy, &eve, &bob]));
    assert_eq!(found(LeadFilter { until: Some(hour(1)), ..all() }).await, ids(&[&ada]));
    let window = LeadFilter { since: Some(hour(1)), until: Some(hour(3)), ..all() };
    assert_eq!(found(window).await, ids(&[&eve, &bob]));
    let real_of_p = LeadFilter { publisher: Some(p.clone()), is_test: Some(false), ..all() };
    assert_eq!(found(real_of_p).await, ids(&[&bob, &ada]));
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

/// A split that names a lead of another customer, or a customer that does not exist, is
/// `NotFound` and changes nothing: no lead moves, no lead is released, no customer is created.
pub async fn a_split_naming_a_lead_of_another_customer_moves_nothing(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let d = destination(&*s, &p, true).await;
    let mine = lead_of(&p, T0, "ada@fabrikam.com", "INS");
    let repeat = lead_of(&p, T0.plus(secs(1)), "ada@fabrikam.com", "INS");
    let theirs = lead_of(&p, T0.plus(secs(2)), "bob@northwind.com", "INS");
    let customer = insert_lead(&*s, &mine, &[&d]).await.customer_id.unwrap();
    insert_lead(&*s, &repeat, &[&d]).await;
    insert_lead(&*s, &theirs, &[&d]).await;
    let t1 = T0.plus(secs(60));
    let split = SplitRequest {
        customer: customer.clone(),
        new_customer: CustomerId::generate(t1),
        leads: vec![mine.id.clone(), theirs.id.clone()],
        released: vec![(
            repeat.id.clone(),
            vec![NewDelivery { id: DeliveryId::generate(t1), destination: d.id.clone() }],
        )],
        now: t1,
    };
    assert_not_found(s.split_customer(&split).await);
    assert_not_found(s.get_customer(&split.new_customer).await);
    let timeline: Vec<_> = s.get_customer(&customer).await.unwrap().leads.into_iter().map(|l| l.id).collect();
    assert_eq!(timeline, vec![mine.id.clone(), repeat.id.clone()]);
    let kept = s.get_lead(&repeat.id).await.unwrap();
    assert_eq!((kept.lead.duplicate_of, kept.deliveries.len()), (Some(mine.id.clone()), 0), "nothing was released");

    let of_nobody = SplitRequest { customer: CustomerId::generate(T0), leads: vec![mine.id.clone()], ..split };
    assert_not_found(s.split_customer(&of_nobody).await);
    assert_eq!(s.get_lead(&mine.id).await.unwrap().lead.customer_id, Some(customer));
}

/// Erasure: the person's leads lose every personal value and their search terms, pending
/// deliveries are cancelled, delivered ones are reported, another person and another publisher
/// are untouched, and the address coming back is flagged.
pub async fn an_erasure_removes_the_persons_data_and_flags_the_address_when_it_returns(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let other = publisher_named(&*s, "fabrikam").await;
    let d = destination(&*s, &p, true).await;
    let first = Lead {
        customer: leadrelay_core::Customer {
            first_name: Some("Ada".into()),
            email: Some("Ada@Quillworks.io".into()),
            phone: Some("+1 555 0100".into()),
            country: Some("US".into()),
            ..Default::default()
        },
        description: Some("call Ada".into()),
        ..lead_of(&p, T0, "ada@quillworks.io", "INS")
    };
    let accepted = insert_lead(&*s, &first, &[&d]).await;
    let claimed = s.claim_due_deliveries(&claim(T0)).await.unwrap();
    s.record_attempts(&[record(&claimed[0], NextState::Delivered, false)]).await.unwrap();
    let pending = lead_of(&p, T0.plus(secs(1)), "ada@quillworks.io", "PLT");
    insert_lead(&*s, &pending, &[&d]).await;
    let bystander = lead_of(&p, T0.plus(secs(2)), "grace@quillworks.io", "INS");
    insert_lead(&*s, &bystander, &[&d]).await;
    let elsewhere = lead_of(&other, T0.plus(secs(3)), "ada@quillworks.io", "INS");
    insert_lead(&*s, &elsewhere, &[]).await;

    let request = ErasureRequest {
        publisher: Some(p.clone()),
        email: "ada@quillworks.io".into(),
        requested_by: "admin".into(),
        now: T0.plus(secs(10)),
        id: "era_1".into(),
    };
    let report = s.erase_person(&request).await.unwrap();
    assert_eq!((report.leads, report.customers, report.cancelled_deliveries), (2, 1, 1));
    assert_eq!(report.delivered_to, vec![d.id.clone()]);

    let erased = s.get_lead(&first.id).await.unwrap();
    let c = &erased.lead.customer;
    assert_eq!((&c.first_name, &c.email, &c.phone), (&None, &None, &None));
    assert_eq!(c.country.as_deref(), Some("US"), "the country is kept for the KPIs");
    assert_eq!(erased.lead.description, None);
    assert!(erased.lead.pii_withheld);
    assert!(erased.deliveries.iter().flat_map(|(_, a)| a).all(|a| a.message.is_none() && a.excerpt.is_none()));
    let cancelled = s.get_lead(&pending.id).await.unwrap();
    assert_eq!(cancelled.deliveries[0].0.status, DeliveryStatus::Dead);
    assert!(s.claim_due_deliveries(&claim(T0.plus(secs(20)))).await.unwrap().iter().all(|c| c.lead.id == bystander.id));
    let search = |text: &str| LeadFilter { text: Some(text.into()), ..LeadFilter::default() };
    let found = s.list_leads(&search("ada@quillworks.io"), &page(10)).await.unwrap().items;
    assert_eq!(found.iter().map(|l| &l.id).collect::<Vec<_>>(), vec![&elsewhere.id], "only the other publisher's");
    assert_eq!(s.list_leads(&search("grace"), &page(10)).await.unwrap().items.len(), 1, "a bystander is untouched");

    let back = lead_of(&p, T0.plus(secs(30)), "ADA@quillworks.io", "INS");
    let again = insert_lead(&*s, &back, &[]).await;
    assert!(again.previously_erased, "the address coming back is flagged");
    assert_ne!(again.customer_id, accepted.customer_id, "the erased customer matches nothing any more");
    assert!(s.get_lead(&back.id).await.unwrap().lead.previously_erased);
    let unrelated = insert_lead(&*s, &lead_of(&other, T0.plus(secs(31)), "ada@quillworks.io", "PLT"), &[]).await;
    assert!(!unrelated.previously_erased, "the tombstone is the publisher's own");
}

/// Retention strips the personal data of leads received before the cutoff, at most `limit` per
/// call, oldest first, and never a lead after it; a stripped lead is not counted again.
pub async fn retention_strips_only_leads_older_than_the_cutoff_a_batch_at_a_time(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let old: Vec<Lead> = (0..3).map(|i| lead(&p, T0.plus(secs(i)))).collect();
    for l in &old {
        insert_lead(&*s, l, &[]).await;
    }
    let young = insert(&*s, &p, &[], T0.plus(secs(100))).await;
    let cutoff = T0.plus(secs(50));
    let now = T0.plus(secs(200));
    assert_eq!(s.strip_personal_data(cutoff, now, 2).await.unwrap(), 2);
    assert_eq!(s.strip_personal_data(cutoff, now, 2).await.unwrap(), 1);
    assert_eq!(s.strip_personal_data(cutoff, now, 2).await.unwrap(), 0);
    for l in &old {
        let got = s.get_lead(&l.id).await.unwrap().lead;
        assert!(got.customer.email.is_none() && got.pii_withheld, "{:?}", got.id);
        assert_eq!(got.source, l.source);
    }
    assert!(s.get_lead(&young.id).await.unwrap().lead.customer.email.is_some());
}
