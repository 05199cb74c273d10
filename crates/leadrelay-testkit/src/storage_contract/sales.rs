//! `SalesStore`, and the opportunities `LeadStore::insert_leads` opens and joins: the stage
//! moving forward, round-robin with its cap, the version check, the follow-up log, the
//! checklist, the notices handed out once, the list filters, the KPIs and erasure.
//!
//! Cases that give an opportunity an owner need users (`PeopleStore::create_user`, an owner is
//! a user): round-robin, owner notices and the owner lists.

use std::collections::BTreeSet;

use leadrelay_core::sales::kpi::{KpiGroup, KpiQuery};
use leadrelay_core::sales::settings::{BusinessHours, FollowUpTarget};
use leadrelay_core::sales::{Activity, ActivityKind, Opportunity, OpportunityStatus, Role, SalesSettings, User, sla};
use leadrelay_core::storage::{
    ChecklistTick, DueFilter, ErasureRequest, OpportunityFilter, OpportunityUpdate, OwnerFilter, PageRequest,
    SalesNoticeKind,
};
use leadrelay_core::{ActivityId, Customer, OfferId, OpportunityId, UserId};

use super::*;

pub(crate) fn hours(n: u64) -> Duration {
    Duration::from_secs(3600 * n)
}

fn offer(id: &str) -> OfferId {
    OfferId::parse(id).unwrap()
}

/// A lead of `email` for `offer` with `action`, at `at`.
fn lead_for(p: &PublisherId, offer: &OfferId, at: Timestamp, email: &str, action: &str) -> Lead {
    Lead { offer: Some(offer.clone()), ..lead_of(p, at, email, action) }
}

/// A lead of a person with a first name and company, for the text filter.
fn person(p: &PublisherId, at: Timestamp, first: &str, company: &str, action: &str) -> Lead {
    let email = format!("{}@{}.example", first.to_lowercase(), company.to_lowercase());
    Lead {
        customer: Customer {
            first_name: Some(first.into()),
            company: Some(company.into()),
            email: Some(email.clone()),
            ..Customer::default()
        },
        ..lead_of(p, at, &email, action)
    }
}

/// The opportunity a lead opened or joined.
pub(crate) async fn opportunity_of(s: &dyn Storage, l: &Lead) -> Opportunity {
    let id = insert_lead(s, l, &[]).await.opportunity.expect("the lead is sales work");
    s.get_opportunity(&id).await.unwrap()
}

/// A user of `p` (an owner must be one).
pub(crate) async fn user(s: &dyn Storage, p: &PublisherId, name: &str) -> UserId {
    let id = UserId::generate(T0);
    let u = User {
        id: id.clone(),
        publisher: p.clone(),
        email: format!("{}@{}.example", name.to_lowercase(), p.as_str()),
        name: name.into(),
        role: Role::Member,
        password_hash: None,
        invite_hash: None,
        invite_expires_at: None,
        created_at: T0,
    };
    s.create_user(&u).await.unwrap();
    id
}

pub(crate) fn round_robin(team: &[&UserId], cap: Option<u32>) -> SalesSettings {
    SalesSettings {
        team: team.iter().map(|u| (*u).clone()).collect(),
        round_robin: true,
        max_open_per_owner: cap,
        ..SalesSettings::default()
    }
}

fn update(o: &Opportunity, now: Timestamp) -> OpportunityUpdate {
    OpportunityUpdate {
        id: o.id.clone(),
        expected_version: o.version,
        status: None,
        owner: None,
        next_touch_at: None,
        now,
    }
}

/// Moves an opportunity to `status` (with `reason`) as it is now.
async fn set_status(
    s: &dyn Storage,
    id: &OpportunityId,
    status: OpportunityStatus,
    reason: Option<&str>,
    now: Timestamp,
) -> Opportunity {
    let o = s.get_opportunity(id).await.unwrap();
    let u = OpportunityUpdate { status: Some((status, reason.map(str::to_owned))), ..update(&o, now) };
    s.update_opportunity(&u).await.unwrap()
}

async fn set_owner(s: &dyn Storage, id: &OpportunityId, owner: Option<&UserId>, now: Timestamp) -> Opportunity {
    let o = s.get_opportunity(id).await.unwrap();
    s.update_opportunity(&OpportunityUpdate { owner: Some(owner.cloned()), ..update(&o, now) }).await.unwrap()
}

pub(crate) fn activity(kind: ActivityKind, at: Timestamp) -> Activity {
    Activity {
        id: ActivityId::generate(at),
        kind,
        outcome: None,
        note: None,
        next_touch_at: None,
        by: "admin".into(),
        at,
    }
}

fn ids_of(page: &[Opportunity]) -> Vec<OpportunityId> {
    page.iter().map(|o| o.id.clone()).collect()
}

fn page(limit: u32) -> PageRequest {
    PageRequest { limit, cursor: None }
}

/// A buyer's contact-me, free-trial and install leads for one offer make one opportunity whose
/// stage follows the funnel and never moves back; another offer of the same buyer is another
/// opportunity.
pub async fn three_leads_of_one_buyer_become_one_opportunity_advancing_its_stage(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let crm = offer("contoso.crm");
    let email = "ada@fabrikam.com";
    let contact = lead_for(&p, &crm, T0, email, "PLT");
    let accepted = insert_lead(&*s, &contact, &[]).await;
    let id = accepted.opportunity.clone().expect("the buyer's first lead opens an opportunity");
    let o = s.get_opportunity(&id).await.unwrap();
    assert_eq!(
        (o.publisher.clone(), Some(o.customer_id.clone()), o.offer.clone()),
        (p.clone(), accepted.customer_id.clone(), Some(crm.clone()))
    );
    assert_eq!((o.stage.as_str(), o.status, o.owner.clone()), ("initial_interest", OpportunityStatus::New, None));
    assert_eq!((o.source.as_str(), o.action.as_deref()), ("AzureMarketplace", Some("PLT")));
    assert_eq!((o.opened_at, o.first_touch_due_at), (T0, T0.plus(hours(24))), "the default SLA is a day");
    assert_eq!((o.first_touched_at, o.qualified_at, o.next_touch_at, o.sla_notified_at), (None, None, None, None));
    assert!(o.activities.is_empty());
    let items: Vec<(&str, bool)> = o.checklist.iter().map(|e| (e.item.as_str(), e.done)).collect();
    assert_eq!(items, [("budget", false), ("authority", false), ("need", false), ("timeline", false)]);

    let trial = lead_for(&p, &crm, T0.plus(hours(2)), email, "FreeTrial");
    let joined = insert_lead(&*s, &trial, &[]).await;
    assert_eq!(joined.opportunity.as_ref(), Some(&id));
    let after_trial = s.get_opportunity(&id).await.unwrap();
    assert_eq!(after_trial.stage.as_str(), "trial");
    assert!(after_trial.version > o.version, "a lead joining changes the opportunity");

    let install = lead_for(&p, &crm, T0.plus(hours(30)), email, "INS");
    assert_eq!(insert_lead(&*s, &install, &[]).await.opportunity.as_ref(), Some(&id));
    // Outside the duplicate window, so not a duplicate: it joins but cannot move the stage back.
    let contact_again = lead_for(&p, &crm, T0.plus(WINDOW + hours(40)), email, "PLT");
    assert_eq!(insert_lead(&*s, &contact_again, &[]).await.opportunity.as_ref(), Some(&id));
    let o = s.get_opportunity(&id).await.unwrap();
    assert_eq!(o.stage.as_str(), "active");
    assert_eq!(o.lead_ids, vec![contact.id, trial.id, install.id, contact_again.id], "its leads, oldest first");
    assert_eq!(o.opened_at, T0, "still opened by its first lead");

    let erp = lead_for(&p, &offer("contoso.erp"), T0.plus(hours(3)), email, "PLT");
    let other = insert_lead(&*s, &erp, &[]).await;
    assert_eq!(other.customer_id, accepted.customer_id, "the same customer");
    assert_ne!(other.opportunity.as_ref(), Some(&id), "another offer is another opportunity");
    assert!(other.opportunity.is_some());
}

/// Test leads, do-not-contact leads and duplicates open no opportunity and join none.
pub async fn test_do_not_contact_and_duplicate_leads_open_no_opportunity(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let test = Lead { is_test: true, ..lead_of(&p, T0, "eve@adatum.com", "INS") };
    assert_eq!(insert_lead(&*s, &test, &[]).await.opportunity, None);
    let dnc = insert_lead(&*s, &lead_of(&p, T0.plus(secs(1)), "dan@adatum.com", "DNC"), &[]).await;
    assert!(dnc.customer_id.is_some(), "a do-not-contact lead still has its customer");
    assert_eq!(dnc.opportunity, None);

    let original = lead_of(&p, T0.plus(secs(2)), "ada@fabrikam.com", "INS");
    let first = insert_lead(&*s, &original, &[]).await;
    let id = first.opportunity.clone().expect("an opportunity");
    let repeat = lead_of(&p, T0.plus(secs(3)), "ada@fabrikam.com", "INS");
    assert_eq!(
        insert_lead(&*s, &repeat, &[]).await,
        Accepted {
            customer_id: first.customer_id.clone(),
            duplicate_of: Some(original.id.clone()),
            previously_erased: false,
            opportunity: None
        }
    );
    assert_eq!(s.get_opportunity(&id).await.unwrap().lead_ids, vec![original.id.clone()]);
    let all = s.list_opportunities(&OpportunityFilter::default(), &page(10)).await.unwrap();
    assert_eq!(ids_of(&all.items), vec![id]);
    assert_not_found(s.get_opportunity(&OpportunityId::generate(T0)).await);
}

/// A lost or disqualified opportunity is not joined: the buyer's next lead opens a new one. A
/// won one is joined (the customer is buying more of what they bought).
pub async fn a_lost_or_disqualified_opportunity_makes_the_next_lead_open_a_new_one(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let email = "ada@fabrikam.com";
    let first = opportunity_of(&*s, &lead_of(&p, T0, email, "PLT")).await;
    set_status(&*s, &first.id, OpportunityStatus::Lost, Some("went with a competitor"), T0.plus(hours(1))).await;
    let second = opportunity_of(&*s, &lead_of(&p, T0.plus(hours(2)), email, "INS")).await;
    assert_ne!(second.id, first.id);
    assert_eq!((second.status, second.stage.as_str()), (OpportunityStatus::New, "active"));
    assert_eq!(s.get_opportunity(&first.id).await.unwrap().lead_ids.len(), 1, "the lost one keeps its lead");

    set_status(&*s, &second.id, OpportunityStatus::Disqualified, Some("a student"), T0.plus(hours(3))).await;
    let third = opportunity_of(&*s, &lead_of(&p, T0.plus(hours(4)), email, "FreeTrial")).await;
    assert!(third.id != first.id && third.id != second.id);

    set_status(&*s, &third.id, OpportunityStatus::Qualified, None, T0.plus(hours(5))).await;
    set_status(&*s, &third.id, OpportunityStatus::Won, None, T0.plus(hours(6))).await;
    let more = opportunity_of(&*s, &lead_of(&p, T0.plus(hours(7)), email, "Create")).await;
    assert_eq!(more.id, third.id, "a won opportunity is joined");
    assert_eq!((more.status, more.stage.as_str()), (OpportunityStatus::Won, "active"));
}

/// Round-robin gives each new opportunity to the next person of the team in order, skipping a
/// person at the cap of open opportunities, and to nobody when all are at it; the turn survives
/// a new team order while it holds the person, and starts over when it does not.
pub async fn round_robin_assigns_in_team_order_and_skips_a_full_person(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let (ana, ben, cy) = (user(&*s, &p, "Ana").await, user(&*s, &p, "Ben").await, user(&*s, &p, "Cy").await);
    let mut at = T0;
    let mut next = || {
        at = at.plus(secs(60));
        lead(&p, at)
    };
    // Ben already owns two open ones, given by hand before round-robin was on.
    for _ in 0..2 {
        let o = opportunity_of(&*s, &next()).await;
        assert_eq!(o.owner, None, "round-robin is off by default");
        set_owner(&*s, &o.id, Some(&ben), T0).await;
    }
    s.put_sales_settings(&p, &round_robin(&[&ana, &ben, &cy], Some(2))).await.unwrap();
    let mut owners = Vec::new();
    for _ in 0..5 {
        owners.push(opportunity_of(&*s, &next()).await.owner);
    }
    let (a, c) = (Some(ana.clone()), Some(cy.clone()));
    assert_eq!(owners, vec![a.clone(), c.clone(), a.clone(), c.clone(), None], "Ben is full, then everyone is");

    // Ana closes one: the turn after Cy is Ana's again, and she has room.
    let anas = s
        .list_opportunities(
            &OpportunityFilter { owner: Some(OwnerFilter::User(ana.clone())), ..OpportunityFilter::default() },
            &page(10),
        )
        .await
        .unwrap()
        .items;
    set_status(&*s, &anas[0].id, OpportunityStatus::Lost, Some("no budget"), T0.plus(hours(1))).await;
    assert_eq!(opportunity_of(&*s, &next()).await.owner, a);

    // A new order that still holds Ana keeps the turn: the person after her now is Ben.
    s.put_sales_settings(&p, &round_robin(&[&cy, &ana, &ben], None)).await.unwrap();
    let owners: Vec<_> = [opportunity_of(&*s, &next()).await.owner, opportunity_of(&*s, &next()).await.owner].into();
    assert_eq!(owners, vec![Some(ben.clone()), c.clone()]);
    // A team without the last person (Cy) starts from its first.
    s.put_sales_settings(&p, &round_robin(&[&ben, &ana], None)).await.unwrap();
    assert_eq!(opportunity_of(&*s, &next()).await.owner, Some(ben.clone()));
}

/// An update names the version it was checked against: a stale one is `Conflict` and changes
/// nothing. `qualified_at` is set the first time it is qualified or won and kept after.
pub async fn an_update_with_a_stale_version_is_a_conflict_and_qualification_is_kept(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let o = opportunity_of(&*s, &lead(&p, T0)).await;
    let call_back = T0.plus(hours(48));
    let qualified = s
        .update_opportunity(&OpportunityUpdate {
            status: Some((OpportunityStatus::Qualified, None)),
            next_touch_at: Some(Some(call_back)),
            ..update(&o, T0.plus(hours(1)))
        })
        .await
        .unwrap();
    assert_eq!((qualified.status, qualified.version), (OpportunityStatus::Qualified, o.version + 1));
    assert_eq!((qualified.qualified_at, qualified.next_touch_at), (Some(T0.plus(hours(1))), Some(call_back)));
    assert_eq!(qualified.updated_at, T0.plus(hours(1)));

    let stale = OpportunityUpdate { status: Some((OpportunityStatus::Lost, Some("gone".into()))), ..update(&o, T0) };
    assert_conflict(s.update_opportunity(&stale).await);
    assert_eq!(s.get_opportunity(&o.id).await.unwrap(), qualified, "a conflict changes nothing");

    let won = s
        .update_opportunity(&OpportunityUpdate {
            status: Some((OpportunityStatus::Won, None)),
            next_touch_at: Some(None),
            ..update(&qualified, T0.plus(hours(2)))
        })
        .await
        .unwrap();
    assert_eq!(
        (won.status, won.qualified_at, won.next_touch_at),
        (OpportunityStatus::Won, qualified.qualified_at, None)
    );
    let lost = set_status(&*s, &o.id, OpportunityStatus::Lost, Some("cancelled"), T0.plus(hours(3))).await;
    assert_eq!((lost.reason.as_deref(), lost.qualified_at), (Some("cancelled"), qualified.qualified_at));
    let reopened = set_status(&*s, &o.id, OpportunityStatus::Contacted, None, T0.plus(hours(4))).await;
    assert_eq!(reopened.reason, None, "the reason is replaced with the status");

    let signed = opportunity_of(&*s, &lead(&p, T0.plus(secs(1)))).await;
    let won = set_status(&*s, &signed.id, OpportunityStatus::Won, Some("signed at the booth"), T0.plus(hours(5))).await;
    assert_eq!(won.qualified_at, Some(T0.plus(hours(5))), "won counts as qualified");
    let unknown = OpportunityUpdate { id: OpportunityId::generate(T0), ..update(&o, T0) };
    assert_not_found(s.update_opportunity(&unknown).await);
}

/// A call, e-mail or meeting is the first touch if there was none and moves a new opportunity
/// to contacted; a note does neither. Its next-touch date replaces the opportunity's, and the
/// log reads back oldest first with its texts.
pub async fn an_activity_is_the_first_touch_and_contacts_a_new_opportunity_but_a_note_is_not(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let o = opportunity_of(&*s, &lead(&p, T0)).await;
    let note =
        Activity { note: Some("prefers e-mail after 5pm".into()), ..activity(ActivityKind::Note, T0.plus(hours(1))) };
    let after_note = s.add_activity(&o.id, &note).await.unwrap();
    assert_eq!(
        (after_note.status, after_note.first_touched_at, after_note.follow_up_count()),
        (OpportunityStatus::New, None, 0)
    );
    assert!(after_note.version > o.version);

    let call = Activity {
        outcome: Some("left a voicemail".into()),
        next_touch_at: Some(T0.plus(hours(48))),
        ..activity(ActivityKind::Call, T0.plus(hours(2)))
    };
    let after_call = s.add_activity(&o.id, &call).await.unwrap();
    assert_eq!(after_call.status, OpportunityStatus::Contacted);
    assert_eq!((after_call.first_touched_at, after_call.next_touch_at), (Some(call.at), call.next_touch_at));

    let email = activity(ActivityKind::Email, T0.plus(hours(3)));
    let after_email = s.add_activity(&o.id, &email).await.unwrap();
    assert_eq!(after_email.first_touched_at, Some(call.at), "the first touch stays the first");
    assert_eq!(after_email.next_touch_at, call.next_touch_at, "no next-touch date keeps the one there");
    assert_eq!(after_email.follow_up_count(), 2);
    assert_eq!(after_email.activities, vec![note.clone(), call.clone(), email.clone()]);
    assert_eq!(s.get_opportunity(&o.id).await.unwrap(), after_email);

    assert_conflict(s.add_activity(&o.id, &email).await);
    assert_not_found(s.add_activity(&OpportunityId::generate(T0), &activity(ActivityKind::Call, T0)).await);
    set_status(&*s, &o.id, OpportunityStatus::Qualified, None, T0.plus(hours(4))).await;
    let meeting = s.add_activity(&o.id, &activity(ActivityKind::Meeting, T0.plus(hours(5)))).await.unwrap();
    assert_eq!(meeting.status, OpportunityStatus::Qualified, "only a new one moves to contacted");
}

/// The checklist shows the publisher's items in its order, unticked ones included, each ticked
/// one with who and when; unticking keeps who did it.
pub async fn the_checklist_follows_the_publishers_order_with_who_ticked_what(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let o = opportunity_of(&*s, &lead(&p, T0)).await;
    let tick = |item: &str, done: bool, by: &str, at: Timestamp| ChecklistTick {
        opportunity: o.id.clone(),
        item: item.into(),
        done,
        by: by.into(),
        at,
    };
    let ticked = s.tick_checklist(&tick("need", true, "usr_ana", T0.plus(hours(1)))).await.unwrap();
    let need = ticked.checklist.iter().find(|e| e.item == "need").unwrap();
    assert_eq!((need.done, need.by.as_deref(), need.at), (true, Some("usr_ana"), Some(T0.plus(hours(1)))));
    assert!(ticked.checklist.iter().filter(|e| e.item != "need").all(|e| !e.done && e.by.is_none()));
    assert!(ticked.version > o.version);
    s.tick_checklist(&tick("budget", true, "usr_ana", T0.plus(hours(2)))).await.unwrap();
    let unticked = s.tick_checklist(&tick("need", false, "usr_ben", T0.plus(hours(3)))).await.unwrap();
    let need = unticked.checklist.iter().find(|e| e.item == "need").unwrap();
    assert_eq!((need.done, need.by.as_deref()), (false, Some("usr_ben")));

    let settings = SalesSettings {
        checklist: vec!["timeline".into(), "budget".into(), "need".into(), "champion".into()],
        ..SalesSettings::default()
    };
    s.put_sales_settings(&p, &settings).await.unwrap();
    let o = s.get_opportunity(&o.id).await.unwrap();
    let items: Vec<(&str, bool)> = o.checklist.iter().map(|e| (e.item.as_str(), e.done)).collect();
    assert_eq!(items, [("timeline", false), ("budget", true), ("need", false), ("champion", false)]);
    let unknown = ChecklistTick { opportunity: OpportunityId::generate(T0), ..tick("need", true, "admin", T0) };
    assert_not_found(s.tick_checklist(&unknown).await);
}

/// Settings are the defaults until a publisher stores some, then read back as stored; the SLA
/// of a new opportunity follows them (working hours included). An unknown publisher has none.
pub async fn sales_settings_are_the_defaults_until_stored_and_shape_the_sla(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    assert_eq!(s.sales_settings(&p).await.unwrap(), SalesSettings::default());
    let nobody = PublisherId::parse("nobody").unwrap();
    assert_not_found(s.sales_settings(&nobody).await);
    assert_not_found(s.put_sales_settings(&nobody, &SalesSettings::default()).await);

    let settings = SalesSettings {
        team: vec![UserId::generate(T0), UserId::generate(T0)],
        round_robin: false,
        max_open_per_owner: Some(40),
        checklist: vec!["need".into(), "budget".into()],
        first_touch_sla_hours: 8,
        follow_up_target: FollowUpTarget { min: 3, max: 9 },
        time_zone: "Europe/Lisbon".into(),
        business_hours: Some(BusinessHours { days: vec![1, 2, 3, 4, 5], start_minute: 540, end_minute: 1020 }),
    };
    s.put_sales_settings(&p, &settings).await.unwrap();
    assert_eq!(s.sales_settings(&p).await.unwrap(), settings);
    let o = opportunity_of(&*s, &lead(&p, T0)).await;
    assert_eq!(o.first_touch_due_at, sla::first_touch_due(T0, &settings));
    assert_ne!(o.first_touch_due_at, T0.plus(hours(8)), "counted in working hours only");
    let plain = SalesSettings { business_hours: None, ..settings };
    s.put_sales_settings(&p, &plain).await.unwrap();
    assert_eq!(s.sales_settings(&p).await.unwrap(), plain);
}

/// A first-touch breach is handed out once, only after the due time, and never for an
/// opportunity that was touched or closed.
pub async fn sla_breaches_are_told_once_after_the_due_time_and_never_for_a_touched_one(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let late = opportunity_of(&*s, &lead(&p, T0)).await;
    let touched = opportunity_of(&*s, &lead(&p, T0.plus(secs(1)))).await;
    let closed = opportunity_of(&*s, &lead(&p, T0.plus(secs(2)))).await;
    s.add_activity(&touched.id, &activity(ActivityKind::Call, T0.plus(hours(30)))).await.unwrap();
    set_status(&*s, &closed.id, OpportunityStatus::Disqualified, Some("a competitor"), T0.plus(hours(1))).await;
    assert!(s.take_sales_notices(T0.plus(hours(24)), 10).await.unwrap().is_empty(), "due, not yet overdue");

    let now = T0.plus(hours(31));
    let notices = s.take_sales_notices(now, 10).await.unwrap();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!((notices[0].kind, notices[0].opportunity.id.clone()), (SalesNoticeKind::SlaBreached, late.id.clone()));
    assert_eq!(notices[0].opportunity.sla_notified_at, Some(now));
    assert!(s.take_sales_notices(T0.plus(hours(40)), 10).await.unwrap().is_empty(), "once");
    assert_eq!(s.get_opportunity(&late.id).await.unwrap().sla_notified_at, Some(now));
}

/// A new owner is told once, whether round-robin or a person assigned them; nobody is told of
/// an opportunity taken away, and taking notices respects the limit.
pub async fn a_new_owner_is_told_once_by_round_robin_or_by_hand(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let (ana, ben) = (user(&*s, &p, "Ana").await, user(&*s, &p, "Ben").await);
    s.put_sales_settings(&p, &round_robin(&[&ana], None)).await.unwrap();
    let first = opportunity_of(&*s, &lead(&p, T0)).await;
    let second = opportunity_of(&*s, &lead(&p, T0.plus(secs(1)))).await;
    let taken = s.take_sales_notices(T0.plus(secs(5)), 1).await.unwrap();
    assert_eq!(taken.len(), 1, "at most the limit");
    let rest = s.take_sales_notices(T0.plus(secs(5)), 10).await.unwrap();
    let told: BTreeSet<_> = taken.iter().chain(&rest).map(|n| n.opportunity.id.clone()).collect();
    assert_eq!(told, [first.id.clone(), second.id.clone()].into());
    assert_eq!(taken.len() + rest.len(), 2);
    assert!(taken.iter().chain(&rest).all(|n| n.kind == SalesNoticeKind::Assigned));
    assert!(taken.iter().chain(&rest).all(|n| n.opportunity.owner.as_ref() == Some(&ana)));
    assert!(s.take_sales_notices(T0.plus(secs(6)), 10).await.unwrap().is_empty(), "once");

    set_owner(&*s, &first.id, Some(&ben), T0.plus(secs(7))).await;
    set_owner(&*s, &second.id, None, T0.plus(secs(7))).await;
    let notices = s.take_sales_notices(T0.plus(secs(8)), 10).await.unwrap();
    assert_eq!(notices.len(), 1);
    assert_eq!((notices[0].kind, notices[0].opportunity.owner.clone()), (SalesNoticeKind::Assigned, Some(ben.clone())));
    set_owner(&*s, &first.id, Some(&ben), T0.plus(secs(9))).await;
    assert!(s.take_sales_notices(T0.plus(secs(10)), 10).await.unwrap().is_empty(), "the same owner again is no news");
}

/// The list narrows by publisher, status, offer, due time, SLA breach and text (a word of any
/// of its leads, whole words, every word in one lead), newest first, one page at a time.
pub async fn opportunities_are_filtered_by_status_offer_due_and_text_and_paged(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let other = publisher_named(&*s, "fabrikam").await;
    let (crm, erp) = (offer("contoso.crm"), offer("contoso.erp"));
    let with_offer = |l: Lead, o: &OfferId| Lead { offer: Some(o.clone()), ..l };
    let ada = opportunity_of(&*s, &with_offer(person(&p, T0, "Ada", "Fabrikam", "PLT"), &crm)).await;
    let bob = opportunity_of(&*s, &with_offer(person(&p, T0.plus(hours(1)), "Bob", "Northwind", "PLT"), &erp)).await;
    let cy = opportunity_of(&*s, &with_offer(person(&p, T0.plus(hours(2)), "Cy", "Contoso", "PLT"), &crm)).await;
    let dee = opportunity_of(&*s, &with_offer(person(&p, T0.plus(hours(3)), "Dee", "Fabrikam", "PLT"), &crm)).await;
    let elsewhere = opportunity_of(&*s, &person(&other, T0.plus(hours(4)), "Eve", "Fabrikam", "PLT")).await;
    let call = Activity { next_touch_at: Some(T0.plus(hours(5))), ..activity(ActivityKind::Call, T0.plus(hours(2))) };
    s.add_activity(&bob.id, &call).await.unwrap();
    // Bob's second lead, from his new employer, is found by its words too.
    let moved = Lead {
        customer: Customer { company: Some("Tailspin".into()), ..person(&p, T0, "Bob", "Northwind", "PLT").customer },
        ..with_offer(person(&p, T0.plus(hours(6)), "Bob", "Northwind", "INS"), &erp)
    };
    assert_eq!(insert_lead(&*s, &moved, &[]).await.opportunity.as_ref(), Some(&bob.id));
    let qualified = s
        .update_opportunity(&OpportunityUpdate {
            status: Some((OpportunityStatus::Qualified, None)),
            next_touch_at: Some(Some(T0.plus(hours(100)))),
            ..update(&cy, T0.plus(hours(3)))
        })
        .await
        .unwrap();
    assert_eq!(qualified.status, OpportunityStatus::Qualified);
    set_status(&*s, &dee.id, OpportunityStatus::Won, Some("signed"), T0.plus(hours(4))).await;

    let of_p = || OpportunityFilter { publisher: Some(p.clone()), ..OpportunityFilter::default() };
    let found = |filter: OpportunityFilter| {
        let s = Arc::clone(&s);
        async move { ids_of(&s.list_opportunities(&filter, &page(100)).await.unwrap().items) }
    };
    let (a, b, c, d) = (ada.id.clone(), bob.id.clone(), cy.id.clone(), dee.id.clone());
    assert_eq!(
        found(OpportunityFilter::default()).await,
        vec![elsewhere.id.clone(), d.clone(), c.clone(), b.clone(), a.clone()]
    );
    assert_eq!(found(of_p()).await, vec![d.clone(), c.clone(), b.clone(), a.clone()]);
    assert_eq!(
        found(OpportunityFilter { status: Some(OpportunityStatus::Contacted), ..of_p() }).await,
        vec![b.clone()]
    );
    assert_eq!(found(OpportunityFilter { status: Some(OpportunityStatus::New), ..of_p() }).await, vec![a.clone()]);
    assert_eq!(
        found(OpportunityFilter { offer: Some(crm.clone()), ..of_p() }).await,
        vec![d.clone(), c.clone(), a.clone()]
    );
    let due = |f: DueFilter| OpportunityFilter { due: Some(f), ..of_p() };
    assert_eq!(found(due(DueFilter::Before(T0.plus(hours(6))))).await, vec![b.clone()], "Bob's call-back");
    assert_eq!(found(due(DueFilter::Before(T0.plus(hours(25))))).await, vec![b.clone(), a.clone()]);
    assert_eq!(
        found(due(DueFilter::Before(T0.plus(hours(101))))).await,
        vec![c.clone(), b.clone(), a.clone()],
        "never a won one"
    );
    assert_eq!(found(due(DueFilter::SlaBreached(T0.plus(hours(23))))).await, Vec::<OpportunityId>::new());
    assert_eq!(found(due(DueFilter::SlaBreached(T0.plus(hours(25))))).await, vec![a.clone()], "Ada was never touched");
    let text = |t: &str| OpportunityFilter { text: Some(t.into()), ..of_p() };
    assert_eq!(found(text("FABRIKAM")).await, vec![d.clone(), a.clone()]);
    assert_eq!(found(text("ada fabrikam")).await, vec![a.clone()]);
    assert_eq!(found(text("ada northwind")).await, Vec::<OpportunityId>::new(), "every word, in one lead");
    assert_eq!(found(text("fabrik")).await, Vec::<OpportunityId>::new(), "whole words");
    assert_eq!(found(text("tailspin")).await, vec![b.clone()], "a word of its second lead");
    assert_eq!(found(text("bob@northwind.example")).await, vec![b.clone()]);
    assert_eq!(found(text("")).await, Vec::<OpportunityId>::new());
    let both = OpportunityFilter { text: Some("fabrikam".into()), status: Some(OpportunityStatus::Won), ..of_p() };
    assert_eq!(found(both).await, vec![d.clone()]);

    let first = s.list_opportunities(&of_p(), &page(3)).await.unwrap();
    assert_eq!(ids_of(&first.items), vec![d.clone(), c.clone(), b.clone()]);
    let second =
        s.list_opportunities(&of_p(), &PageRequest { limit: 3, cursor: first.next_cursor.clone() }).await.unwrap();
    assert_eq!((ids_of(&second.items), second.next_cursor), (vec![a.clone()], None));
    let listed = &first.items[2];
    assert_eq!(listed, &s.get_opportunity(&b).await.unwrap(), "each item as get_opportunity gives it");
    assert_eq!(listed.lead_ids.len(), 2);
}

/// The list narrows by owner, and to the unassigned ones.
pub async fn opportunities_are_listed_by_owner_and_unassigned(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let (ana, ben) = (user(&*s, &p, "Ana").await, user(&*s, &p, "Ben").await);
    let mut opened = Vec::new();
    for i in 0..5 {
        opened.push(opportunity_of(&*s, &lead(&p, T0.plus(secs(i)))).await);
    }
    set_owner(&*s, &opened[0].id, Some(&ana), T0).await;
    set_owner(&*s, &opened[3].id, Some(&ana), T0).await;
    set_owner(&*s, &opened[1].id, Some(&ben), T0).await;
    set_status(&*s, &opened[3].id, OpportunityStatus::Qualified, None, T0.plus(hours(1))).await;
    let of = |owner: OwnerFilter, status: Option<OpportunityStatus>| OpportunityFilter {
        publisher: Some(p.clone()),
        owner: Some(owner),
        status,
        ..OpportunityFilter::default()
    };
    let found = |filter: OpportunityFilter| {
        let s = Arc::clone(&s);
        async move { ids_of(&s.list_opportunities(&filter, &page(10)).await.unwrap().items) }
    };
    let id = |i: usize| opened[i].id.clone();
    assert_eq!(found(of(OwnerFilter::User(ana.clone()), None)).await, vec![id(3), id(0)]);
    assert_eq!(found(of(OwnerFilter::User(ana.clone()), Some(OpportunityStatus::New))).await, vec![id(0)]);
    assert_eq!(found(of(OwnerFilter::User(ben.clone()), None)).await, vec![id(1)]);
    assert_eq!(found(of(OwnerFilter::Unassigned, None)).await, vec![id(4), id(2)]);
}

/// The KPIs of a small known set: the funnel, contact, SLA, qualification and win rates, time to
/// first touch and follow-ups, each destination's health without the test lead's delivery, and
/// the same per group and within a period or an action.
pub async fn kpis_count_a_small_known_set(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let hook = destination(&*s, &p, true).await;
    let quiet = destination(&*s, &p, true).await;
    let ada = lead_of(&p, T0, "ada@fabrikam.com", "INS");
    let bob = lead_of(&p, T0.plus(hours(1)), "bob@northwind.com", "INS");
    let test = Lead { is_test: true, ..lead_of(&p, T0.plus(hours(2)), "eve@adatum.com", "INS") };
    let cy = lead_of(&p, T0.plus(hours(3)), "cy@contoso.com", "PLT");
    let mut opened = Vec::new();
    for (l, dests) in [(&ada, vec![&hook]), (&bob, vec![&hook]), (&test, vec![&hook]), (&cy, vec![])] {
        opened.push(insert_lead(&*s, l, &dests).await.opportunity);
    }
    let [Some(o_ada), Some(_bob_untouched), None, Some(o_cy)] = <[_; 4]>::try_from(opened).unwrap() else {
        panic!("the real leads open opportunities, the test lead none")
    };
    for c in s.claim_due_deliveries(&claim(T0.plus(hours(3)))).await.unwrap() {
        let (answer, next) =
            if c.lead.id == bob.id { (Answer::Permanent, NextState::Dead) } else { (Answer::Ok, NextState::Delivered) };
        let started = c.lead.received_at.plus(secs(1));
        s.record_attempts(&[attempt(&c, started, answer, next)]).await.unwrap();
    }
    // Ada: touched after 2 h, qualified, won. Bob: never touched. Cy: first touched after 27 h, lost.
    s.add_activity(&o_ada, &activity(ActivityKind::Call, T0.plus(hours(2)))).await.unwrap();
    set_status(&*s, &o_ada, OpportunityStatus::Qualified, None, T0.plus(hours(3))).await;
    set_status(&*s, &o_ada, OpportunityStatus::Won, None, T0.plus(hours(4))).await;
    s.add_activity(&o_cy, &activity(ActivityKind::Email, T0.plus(hours(30)))).await.unwrap();
    s.add_activity(&o_cy, &activity(ActivityKind::Note, T0.plus(hours(31)))).await.unwrap();
    set_status(&*s, &o_cy, OpportunityStatus::Lost, Some("no answer"), T0.plus(hours(32))).await;

    let query = |since: Option<Timestamp>| KpiQuery { since, now: T0.plus(hours(48)), ..KpiQuery::new(p.clone()) };
    let r = s.kpis(&query(None)).await.unwrap();
    let o = &r.overall;
    assert_eq!(o.opportunities, 3);
    assert_eq!((o.funnel["new"], o.funnel["won"], o.funnel["lost"], o.funnel["contacted"]), (1, 1, 1, 0));
    assert_eq!(o.contact_rate, Some(2.0 / 3.0));
    assert_eq!((o.first_touch_hours_p50, o.first_touch_hours_p90), (Some(2.0), Some(27.0)));
    assert_eq!(o.sla_breach_rate, Some(2.0 / 3.0), "Bob is overdue and Cy was touched late");
    assert_eq!((o.qualification_rate, o.win_rate, o.follow_ups_per_won), (Some(1.0 / 3.0), Some(0.5), Some(1.0)));
    assert!(r.by.is_none());
    let health: Vec<_> = r.destinations.iter().map(|h| (h.destination.clone(), h.deliveries)).collect();
    let mut expected = vec![(hook.id.clone(), 2), (quiet.id.clone(), 0)];
    expected.sort();
    assert_eq!(health, expected, "every destination, the test lead's delivery left out");
    let h = r.destinations.iter().find(|h| h.destination == hook.id).unwrap();
    assert_eq!((h.success_rate, h.p95_lag_ms, h.dead_letters), (Some(0.5), Some(1003), 1));

    let later = s.kpis(&query(Some(T0.plus(secs(1))))).await.unwrap();
    assert_eq!((later.overall.opportunities, later.overall.funnel["won"]), (2, 0), "Ada opened before the period");
    let h = later.destinations.iter().find(|h| h.destination == hook.id).unwrap();
    assert_eq!((h.deliveries, h.dead_letters), (1, 1), "only Bob's lead was received in the period");

    let by_action = s.kpis(&KpiQuery { group_by: Some(KpiGroup::Action), ..query(None) }).await.unwrap();
    let groups: Vec<_> = by_action.by.unwrap().into_iter().map(|(k, f)| (k, f.opportunities)).collect();
    assert_eq!(groups, vec![("INS".to_owned(), 2), ("PLT".to_owned(), 1)]);
    for (group, key) in [(KpiGroup::Source, "AzureMarketplace"), (KpiGroup::Offer, "")] {
        let r = s.kpis(&KpiQuery { group_by: Some(group), ..query(None) }).await.unwrap();
        let by = r.by.unwrap();
        assert_eq!((by.len(), by[0].0.as_str(), &by[0].1), (1, key, &r.overall), "{group:?}: a missing key is \"\"");
    }
    let ins = s.kpis(&KpiQuery { action: Some("ins".into()), ..query(None) }).await.unwrap();
    assert_eq!((ins.overall.opportunities, ins.overall.win_rate), (2, Some(1.0)));
    let none = s.kpis(&KpiQuery { source: Some("AppSource (SPZA)".into()), ..query(None) }).await.unwrap();
    assert_eq!((none.overall.opportunities, none.overall.contact_rate), (0, None));
}

/// The KPIs' leads per day and first-touch histogram over leads of two UTC days and two
/// sources: every real lead counts (a do-not-contact one too), the test lead does not; the
/// period, offer, source and action (in any case) filters apply as they do to opportunities; a
/// first touch counts in its bucket, an untouched opportunity in none.
pub async fn kpis_count_real_leads_per_day_and_first_touches_per_bucket(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let crm = offer("contoso.crm");
    let app_source = |l: Lead| Lead { source: leadrelay_core::Source::AppSource, ..l };
    // T0 is 11:06 UTC on 2026-11-18; 13 hours later is the next day.
    let day2 = T0.plus(hours(13));
    let leads = [
        lead_of(&p, T0, "ada@fabrikam.com", "INS"),
        app_source(lead_of(&p, T0.plus(hours(1)), "bob@northwind.com", "PLT")),
        Lead { is_test: true, ..lead_of(&p, T0.plus(hours(2)), "eve@adatum.com", "INS") },
        lead_of(&p, T0.plus(hours(3)), "dan@contoso.com", "DNC"),
        lead_of(&p, T0.plus(hours(4)), "fay@litware.com", "INS"),
        app_source(lead_for(&p, &crm, day2, "cy@contoso.com", "INS")),
        lead_of(&p, day2.plus(hours(1)), "gus@tailspin.com", "INS"),
    ];
    let mut opened = Vec::new();
    for l in &leads {
        opened.push(insert_lead(&*s, l, &[]).await.opportunity);
    }
    let [Some(ada), Some(bob), None, None, Some(_fay), Some(cy), Some(_gus)] = <[_; 7]>::try_from(opened).unwrap()
    else {
        panic!("the real leads but the do-not-contact one open opportunities, the test lead none")
    };
    // Ada is touched after 30 minutes, Bob after 5 hours, Cy after 100; Fay and Gus never.
    for (o, at) in [(&ada, T0.plus(secs(1800))), (&bob, T0.plus(hours(6))), (&cy, day2.plus(hours(100)))] {
        s.add_activity(o, &activity(ActivityKind::Call, at)).await.unwrap();
    }

    let query = KpiQuery { now: day2.plus(hours(200)), ..KpiQuery::new(p.clone()) };
    let kpis = |q: KpiQuery| {
        let s = Arc::clone(&s);
        async move {
            let r = s.kpis(&q).await.unwrap();
            let days: Vec<_> =
                r.leads_per_day.into_iter().map(|d| (d.day, d.source, d.action.unwrap_or_default(), d.leads)).collect();
            (days, r.first_touch_histogram)
        }
    };
    let row = |day: &str, source: &str, action: &str, leads: u64| {
        (day.to_owned(), source.to_owned(), action.to_owned(), leads)
    };
    let (days, histogram) = kpis(query.clone()).await;
    assert_eq!(
        days,
        [
            row("2026-11-18", "AppSource (SPZA)", "PLT", 1),
            row("2026-11-18", "AzureMarketplace", "DNC", 1),
            row("2026-11-18", "AzureMarketplace", "INS", 2),
            row("2026-11-19", "AppSource (SPZA)", "INS", 1),
            row("2026-11-19", "AzureMarketplace", "INS", 1),
        ],
        "by day, source and action; the test lead left out"
    );
    assert_eq!(histogram, [1, 0, 1, 0, 0, 1], "under 1 h, 4 to 8 h, 72 h and over");

    let (days, histogram) = kpis(KpiQuery { source: Some("AppSource (SPZA)".into()), ..query.clone() }).await;
    assert_eq!(
        days,
        [row("2026-11-18", "AppSource (SPZA)", "PLT", 1), row("2026-11-19", "AppSource (SPZA)", "INS", 1)]
    );
    assert_eq!(histogram, [0, 0, 1, 0, 0, 1]);
    let (days, histogram) = kpis(KpiQuery { since: Some(day2), ..query.clone() }).await;
    assert_eq!(
        days,
        [row("2026-11-19", "AppSource (SPZA)", "INS", 1), row("2026-11-19", "AzureMarketplace", "INS", 1)]
    );
    assert_eq!(histogram, [0, 0, 0, 0, 0, 1]);
    let (days, histogram) = kpis(KpiQuery { action: Some("ins".into()), until: Some(day2), ..query.clone() }).await;
    assert_eq!(days, [row("2026-11-18", "AzureMarketplace", "INS", 2)]);
    assert_eq!(histogram, [1, 0, 0, 0, 0, 0]);
    let (days, histogram) = kpis(KpiQuery { offer: Some(crm), ..query }).await;
    assert_eq!(days, [row("2026-11-19", "AppSource (SPZA)", "INS", 1)]);
    assert_eq!(histogram, [0, 0, 0, 0, 0, 1]);
}

/// Erasing a person clears what the sales team wrote in the follow-up logs and status reasons
/// of the person's opportunities (the entries stay, without their texts); retention does the same for the
/// opportunities of the leads it strips. Another person's log is untouched.
pub async fn an_erasure_or_retention_clears_the_follow_up_texts_of_the_persons_opportunities(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let written = |kind, at| Activity {
        outcome: Some("spoke to Ada, call back Tuesday".into()),
        note: Some("Ada's mobile is +1 555 0100".into()),
        ..activity(kind, at)
    };
    let ada = opportunity_of(&*s, &lead_of(&p, T0, "ada@quillworks.io", "INS")).await;
    let grace = opportunity_of(&*s, &lead_of(&p, T0.plus(secs(1)), "grace@quillworks.io", "INS")).await;
    let old = opportunity_of(&*s, &lead(&p, T0.plus(secs(2)))).await;
    for o in [&ada, &grace] {
        s.add_activity(&o.id, &written(ActivityKind::Call, T0.plus(hours(1)))).await.unwrap();
    }
    s.add_activity(&old.id, &written(ActivityKind::Note, T0.plus(hours(1)))).await.unwrap();
    for o in [&ada, &grace] {
        set_status(&*s, &o.id, OpportunityStatus::Lost, Some("went with a rival, ask Ada in June"), T0.plus(hours(1)))
            .await;
    }
    let request = ErasureRequest {
        publisher: Some(p.clone()),
        email: "ada@quillworks.io".into(),
        requested_by: "admin".into(),
        now: T0.plus(hours(2)),
        id: "era_1".into(),
    };
    s.erase_person(&request).await.unwrap();
    let erased = s.get_opportunity(&ada.id).await.unwrap();
    assert_eq!(erased.activities.len(), 1, "the entry stays");
    let a = &erased.activities[0];
    assert_eq!((a.kind, &a.outcome, &a.note), (ActivityKind::Call, &None, &None));
    assert_eq!(erased.first_touched_at, Some(T0.plus(hours(1))), "the facts stay for the KPIs");
    assert_eq!(erased.reason, None, "the reason is what someone wrote about the person too");
    assert_eq!(erased.status, OpportunityStatus::Lost);
    let bystander = s.get_opportunity(&grace.id).await.unwrap();
    assert!(bystander.activities[0].note.is_some() && bystander.reason.is_some(), "a bystander keeps hers");

    // Retention: only the oldest lead (the one before `cutoff` still holding data) is stripped.
    assert_eq!(s.strip_personal_data(T0.plus(secs(2)).plus(millis(1)), T0.plus(hours(3)), 10).await.unwrap(), 2);
    let stripped = s.get_opportunity(&old.id).await.unwrap();
    assert_eq!((&stripped.activities[0].outcome, &stripped.activities[0].note), (&None, &None));
}

// Races: what must hold however many processes share the database.

/// Concurrent leads of one buyer nobody has seen, all for one offer and none a duplicate of
/// another, open exactly one opportunity, which holds all of them.
pub async fn concurrent_leads_of_one_new_buyer_and_offer_open_one_opportunity(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let crm = offer("contoso.crm");
    let results = concurrently(RACERS, |i| {
        let (s, p, crm) = (Arc::clone(&s), p.clone(), crm.clone());
        async move {
            // Each its own action code, so none is a duplicate of another.
            let l = lead_for(&p, &crm, T0.plus(millis(i as u64)), "New.Buyer@Fabrikam.com", &format!("Visit{i}"));
            (l.id.clone(), insert_lead(&*s, &l, &[]).await)
        }
    })
    .await;
    assert!(results.iter().all(|(_, a)| a.duplicate_of.is_none()));
    let opened: BTreeSet<_> = results.iter().map(|(_, a)| a.opportunity.clone().expect("sales work")).collect();
    assert_eq!(opened.len(), 1, "one opportunity, not {}", opened.len());
    let o = s.get_opportunity(opened.first().unwrap()).await.unwrap();
    let leads: BTreeSet<_> = o.lead_ids.iter().cloned().collect();
    assert_eq!(leads, results.iter().map(|(id, _)| id.clone()).collect::<BTreeSet<_>>());
    let all = s.list_opportunities(&OpportunityFilter::default(), &page(100)).await.unwrap();
    assert_eq!(all.items.len(), 1);
}

/// Concurrent openings take round-robin's turns one at a time: with a team of four and a cap
/// of five, 32 new buyers at once give each person exactly five and leave twelve unassigned.
pub async fn concurrent_openings_give_each_round_robin_turn_once(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let mut team = Vec::new();
    for name in ["Ana", "Ben", "Cy", "Dee"] {
        team.push(user(&*s, &p, name).await);
    }
    s.put_sales_settings(&p, &round_robin(&team.iter().collect::<Vec<_>>(), Some(5))).await.unwrap();
    let results = concurrently(RACERS, |i| {
        let (s, p) = (Arc::clone(&s), p.clone());
        async move { opportunity_of(&*s, &lead(&p, T0.plus(millis(i as u64)))).await.owner }
    })
    .await;
    for person in &team {
        assert_eq!(results.iter().filter(|o| o.as_ref() == Some(person)).count(), 5, "five each");
    }
    assert_eq!(results.iter().filter(|o| o.is_none()).count(), RACERS - 20);
}

/// Concurrent takes of the notices never hand one out twice, and together hand out all of them.
pub async fn concurrent_takes_of_sales_notices_never_hand_one_out_twice(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let mut overdue = BTreeSet::new();
    for i in 0..40 {
        overdue.insert(opportunity_of(&*s, &lead(&p, T0.plus(millis(i)))).await.id);
    }
    let taken = concurrently(RACERS, |_| {
        let s = Arc::clone(&s);
        async move { s.take_sales_notices(T0.plus(hours(25)), 2).await.unwrap() }
    })
    .await;
    let ids: Vec<_> = taken.iter().flatten().map(|n| n.opportunity.id.clone()).collect();
    assert!(taken.iter().flatten().all(|n| n.kind == SalesNoticeKind::SlaBreached));
    assert_eq!(ids.len(), overdue.len(), "each breach handed out exactly once");
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), overdue);
}
