//! Cases every storage backend must pass, so that a second backend (PostgreSQL) keeps the rules
//! the first one keeps, including those SQLite keeps only because it has one writer. Each case
//! takes a fresh, migrated `Arc<dyn Storage>` and assumes nothing about the backend; the race
//! cases run many tasks on it at once. A backend's `tests/contract.rs` expands every case into
//! one named test with [`storage_contract_tests!`](crate::storage_contract_tests).

mod access;
mod audit;
mod catalog;
mod leads;
mod outbox;
mod people;
mod races;
mod sales;

pub use access::*;
pub use audit::*;
pub use catalog::*;
pub use leads::*;
pub use outbox::*;
pub use people::*;
pub use races::*;
pub use sales::*;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use leadrelay_core::destination::{DestinationRecord, ErrorClass};
use leadrelay_core::storage::{
    Accepted, Attempt, AttemptRecord, ClaimRequest, Claimed, LeadWithDeliveries, NewDelivery, NextState, Publisher,
    Storage, StorageError,
};
use leadrelay_core::{DeliveryId, DestinationId, Lead, LeadDraft, LeadId, LeadRules, PublisherId, Timestamp};

/// Expands every contract case into a `#[tokio::test]` named after it, on a multi-threaded
/// runtime. `$fresh` is an async function that takes the case's name and returns a guard (kept
/// alive for the test: a temporary directory, a scratch database) and a fresh, migrated store:
///
/// ```text
/// async fn fresh(case: &'static str) -> (tempfile::TempDir, Arc<dyn Storage>) { … }
/// leadrelay_testkit::storage_contract_tests!(fresh);
/// ```
///
/// The calling crate needs `tokio` (with `macros` and `rt-multi-thread`) among its
/// dev-dependencies. A new case is added here once and every backend runs it.
#[macro_export]
macro_rules! storage_contract_tests {
    (@cases [$($target:tt)*]) => {
        $crate::storage_contract_tests! { @expand [$($target)*]
            // Catalog: publishers, offers, destinations.
            a_publisher_is_read_back_as_created
            a_taken_publisher_id_is_a_conflict
            an_offer_is_created_then_updated_by_upsert
            an_offer_of_an_unknown_publisher_is_not_found
            an_unknown_offer_is_not_found_to_read_or_to_publish
            a_publication_records_its_time_and_results_and_survives_an_update
            a_publishers_offers_are_listed_by_id_without_another_publishers
            a_destination_is_read_back_as_created
            a_destination_of_an_unknown_publisher_is_not_found
            a_publishers_destinations_are_listed_oldest_first
            disabling_a_destination_parks_its_queue_and_enabling_releases_it
            disabling_a_destination_leaves_its_deliveries_in_flight_to_finish
            enabling_an_unknown_destination_is_not_found
            a_disabled_destination_keeps_its_queue
            // Access: ingest keys, API tokens, the admin token's hash.
            an_ingest_key_is_found_by_its_hash
            an_api_token_is_found_by_its_hash
            a_taken_credential_id_or_hash_is_a_conflict
            revoking_an_ingest_key_twice_keeps_the_first_time
            revoking_an_api_token_twice_keeps_the_first_time
            a_credential_of_another_publisher_cannot_be_revoked
            the_admin_token_hash_is_unset_until_it_is_first_set
            // Leads and customers.
            a_lead_and_its_deliveries_are_stored_together
            a_failing_batch_stores_nothing
            a_batch_answers_each_lead_in_order_and_sees_its_own_earlier_leads
            an_unknown_lead_or_customer_is_not_found
            leads_are_read_many_at_once_and_unknown_ids_are_left_out
            one_email_is_one_customer_and_repeats_are_duplicates
            a_repeat_for_another_offer_is_not_a_duplicate
            test_leads_stand_alone
            lead_pages_follow_the_cursor
            leads_are_filtered_by_every_field_of_the_filter
            a_split_moves_leads_and_releases_their_duplicates
            an_erasure_removes_the_persons_data_and_flags_the_address_when_it_returns
            retention_strips_only_leads_older_than_the_cutoff_a_batch_at_a_time
            a_split_naming_a_lead_of_another_customer_moves_nothing
            // The outbox: claims, attempts, retry and replay.
            a_claim_returns_the_lead_and_destination_of_each_delivery
            claimed_deliveries_are_hidden_from_a_second_claim
            an_expired_lease_can_be_claimed_again
            a_stale_lease_token_changes_neither_the_delivery_nor_the_destination
            a_late_result_counts_while_no_other_claim_took_the_delivery
            a_retry_is_due_only_at_its_time
            a_success_is_logged_and_clears_the_destinations_failures
            a_dead_letter_keeps_its_error_and_is_never_claimed_again
            an_attempt_that_disables_its_destination_parks_the_rest_of_its_queue
            attempts_of_several_deliveries_are_recorded_in_one_call
            a_throttled_destination_is_paused_then_probed_by_one_delivery_at_a_time
            consecutive_throttled_attempts_of_one_delivery_share_one_attempt_row
            a_destination_with_a_backlog_does_not_crowd_out_another
            a_claim_serves_every_destination_before_a_second_delivery_of_any
            next_due_at_is_the_earliest_due_time_of_enabled_destinations
            outbox_depths_count_what_each_destination_has_still_to_deliver
            an_unknown_delivery_is_not_found
            deliveries_are_filtered_and_paged_newest_first
            a_leased_delivery_cannot_be_retried_until_its_lease_ends
            dead_letters_are_listed_and_replayed
            a_range_replay_reaches_leads_from_before_the_destination
            a_full_replay_sends_every_lead_of_the_range_again_except_those_in_flight
            ping_answers_on_a_working_store
            // The audit log.
            an_audit_entry_is_read_back_as_appended
            an_audit_entry_is_never_replaced
            audit_pages_follow_the_cursor_newest_first
            audit_entries_are_filtered_by_every_field_of_the_filter
            // People: users of a publisher's team, invitations, sessions.
            a_user_is_read_back_by_id_and_address_and_listed_with_their_publisher
            a_taken_address_is_a_conflict_across_publishers
            a_user_of_an_unknown_publisher_is_not_found
            an_invitation_is_accepted_once_and_refused_after_it_expires
            a_session_is_found_until_it_expires_or_is_deleted
            concurrent_creates_of_one_address_let_exactly_one_succeed
            // Races: what must hold however many processes share the database.
            concurrent_creates_of_one_publisher_id_let_exactly_one_succeed
            concurrent_first_starts_agree_on_one_admin_token_hash
            concurrent_inserts_are_all_committed
            concurrent_leads_of_a_new_customer_create_one_customer
            concurrent_leads_of_one_new_buyer_create_exactly_one_customer
            concurrent_repeats_of_one_action_leave_exactly_one_original
            concurrent_repeats_by_a_known_customer_leave_exactly_one_original
            concurrent_splits_of_the_same_leads_let_one_win_and_half_move_nothing
            concurrent_claims_never_return_one_delivery_twice
            the_per_destination_cap_holds_across_concurrent_claims_and_counts_leased_ones
            stale_results_racing_new_claims_never_undo_a_new_lease
            // Sales: opportunities opened by leads, and their work. Marked (user) need
            // `PeopleStore::create_user`: an owner is a user.
            three_leads_of_one_buyer_become_one_opportunity_advancing_its_stage
            test_do_not_contact_and_duplicate_leads_open_no_opportunity
            a_lost_or_disqualified_opportunity_makes_the_next_lead_open_a_new_one
            round_robin_assigns_in_team_order_and_skips_a_full_person // (user)
            an_update_with_a_stale_version_is_a_conflict_and_qualification_is_kept
            an_activity_is_the_first_touch_and_contacts_a_new_opportunity_but_a_note_is_not
            the_checklist_follows_the_publishers_order_with_who_ticked_what
            sales_settings_are_the_defaults_until_stored_and_shape_the_sla
            sla_breaches_are_told_once_after_the_due_time_and_never_for_a_touched_one
            a_new_owner_is_told_once_by_round_robin_or_by_hand // (user)
            opportunities_are_filtered_by_status_offer_due_and_text_and_paged
            opportunities_are_listed_by_owner_and_unassigned // (user)
            kpis_count_a_small_known_set
            kpis_count_real_leads_per_day_and_first_touches_per_bucket
            an_erasure_or_retention_clears_the_follow_up_texts_of_the_persons_opportunities
            concurrent_leads_of_one_new_buyer_and_offer_open_one_opportunity
            concurrent_openings_give_each_round_robin_turn_once // (user)
            concurrent_takes_of_sales_notices_never_hand_one_out_twice
        }
    };
    (@expand [names] $($case:ident)*) => {
        [$(stringify!($case)),*]
    };
    (@expand [$fresh:path] $($case:ident)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $case() {
            let (_guard, store) = $fresh(stringify!($case)).await;
            $crate::storage_contract::$case(store).await;
        }
    )*};
    (@names) => {
        $crate::storage_contract_tests! { @cases [names] }
    };
    ($fresh:path) => {
        $crate::storage_contract_tests! { @cases [$fresh] }
    };
}

/// A fixed starting time for contract cases.
pub const T0: Timestamp = Timestamp::from_millis(1_795_000_000_000);
/// The lease of every claim in these cases.
pub(crate) const LEASE: Duration = Duration::from_secs(90);
/// The duplicate window of every insert in these cases.
pub(crate) const WINDOW: Duration = Duration::from_secs(24 * 3600);
/// How many tasks a race case runs at once.
pub(crate) const RACERS: usize = 32;

pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(crate) fn millis(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A claim of up to 10 deliveries at `now`, with a per-destination cap that never binds.
pub(crate) fn claim(now: Timestamp) -> ClaimRequest {
    ClaimRequest { now, limit: 10, lease: LEASE, per_destination: 100 }
}

/// A claim with its limit and per-destination cap.
pub(crate) fn claim_capped(now: Timestamp, limit: u32, per_destination: u32) -> ClaimRequest {
    ClaimRequest { now, limit, lease: LEASE, per_destination }
}

#[track_caller]
pub(crate) fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StorageError>) {
    match r {
        Err(StorageError::NotFound) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[track_caller]
pub(crate) fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StorageError>) {
    match r {
        Err(StorageError::Conflict) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
}

/// Runs `n` tasks at once (they start together, past a barrier) and returns their results in order.
pub(crate) async fn concurrently<T, F, Fut>(n: usize, task: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let start = Arc::new(tokio::sync::Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (start, work) = (Arc::clone(&start), task(i));
            tokio::spawn(async move {
                start.wait().await;
                work.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(n);
    for h in handles {
        results.push(h.await.expect("a racing task panicked"));
    }
    results
}

async fn publisher_named(s: &dyn Storage, id: &str) -> PublisherId {
    let id = PublisherId::parse(id).unwrap();
    s.create_publisher(&Publisher { id: id.clone(), name: format!("Publisher {id}"), created_at: T0 }).await.unwrap();
    id
}

async fn publisher(s: &dyn Storage) -> PublisherId {
    let id = PublisherId::parse("contoso").unwrap();
    s.create_publisher(&Publisher { id: id.clone(), name: "Contoso".into(), created_at: T0 }).await.unwrap();
    id
}

fn destination_record(p: &PublisherId, enabled: bool, at: Timestamp) -> DestinationRecord {
    DestinationRecord {
        id: DestinationId::generate(at),
        publisher: p.clone(),
        name: "hook".into(),
        kind: "https".into(),
        settings: serde_json::json!({"url": "https://example.com", "secret": "x"}),
        offers: None,
        enabled,
        disabled_reason: None,
        consecutive_failures: 0,
        failing_since: None,
        created_at: at,
        updated_at: at,
    }
}

async fn destination(s: &dyn Storage, p: &PublisherId, enabled: bool) -> DestinationRecord {
    let d = destination_record(p, enabled, T0);
    s.create_destination(&d).await.unwrap();
    d
}

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

fn with_deliveries(l: &Lead, dests: &[&DestinationRecord]) -> LeadWithDeliveries {
    let deliveries = dests
        .iter()
        .map(|d| NewDelivery { id: DeliveryId::generate(l.received_at), destination: d.id.clone() })
        .collect();
    LeadWithDeliveries { lead: l.clone(), deliveries }
}

async fn insert_lead(s: &dyn Storage, l: &Lead, dests: &[&DestinationRecord]) -> Accepted {
    s.insert_leads(&[with_deliveries(l, dests)], WINDOW).await.unwrap().remove(0)
}

async fn insert(s: &dyn Storage, p: &PublisherId, dests: &[&DestinationRecord], at: Timestamp) -> Lead {
    let l = lead(p, at);
    insert_lead(s, &l, dests).await;
    l
}

/// The one delivery of a lead that has exactly one.
async fn only_delivery(s: &dyn Storage, l: &Lead) -> leadrelay_core::storage::Delivery {
    let mut d = s.get_lead(&l.id).await.unwrap().deliveries;
    assert_eq!(d.len(), 1, "the lead has one delivery");
    d.remove(0).0
}

/// How an attempt ended, as a connector would report it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Answer {
    /// 200.
    Ok,
    /// 503, retry on the schedule.
    Transient,
    /// 429, pause the destination.
    Throttled,
    /// 400, give up.
    Permanent,
    /// 410, give up and disable the destination.
    Gone,
}

impl Answer {
    fn status(self) -> u16 {
        match self {
            Self::Ok => 200,
            Self::Transient => 503,
            Self::Throttled => 429,
            Self::Permanent => 400,
            Self::Gone => 410,
        }
    }

    fn class(self) -> Option<ErrorClass> {
        match self {
            Self::Ok => None,
            Self::Transient => Some(ErrorClass::Transient),
            Self::Throttled => Some(ErrorClass::Throttled),
            Self::Permanent => Some(ErrorClass::Permanent),
            Self::Gone => Some(ErrorClass::Gone),
        }
    }
}

/// The record of an attempt of `c` that started at `started_at` and got `answer`.
fn attempt(c: &Claimed, started_at: Timestamp, answer: Answer, next: NextState) -> AttemptRecord {
    let failed = !matches!(answer, Answer::Ok);
    AttemptRecord {
        attempt: Attempt {
            delivery_id: c.delivery.id.clone(),
            number: 0,
            started_at,
            duration_ms: 3,
            status_code: Some(answer.status()),
            error_class: answer.class(),
            message: failed.then(|| format!("receiver answered {}", answer.status())),
            excerpt: Some(format!("answer {} at {}", answer.status(), started_at.as_millis())),
        },
        lease_token: c.lease_token.clone(),
        next,
        destination: c.destination.id.clone(),
        disable_destination: matches!(answer, Answer::Gone).then(|| "the receiver answered 410 Gone".to_owned()),
        throttle_destination_until: None,
    }
}

/// A 429 that pauses the destination until `until` and retries the delivery then.
fn throttled(c: &Claimed, started_at: Timestamp, until: Timestamp) -> AttemptRecord {
    AttemptRecord {
        throttle_destination_until: Some(until),
        ..attempt(c, started_at, Answer::Throttled, NextState::RetryAt { at: until, counts: false })
    }
}

fn record(c: &Claimed, next: NextState, failed: bool) -> AttemptRecord {
    attempt(c, T0, if failed { Answer::Transient } else { Answer::Ok }, next)
}

#[cfg(test)]
mod tests {
    /// Every public case of the modules is expanded by the macro, so no backend can miss one.
    #[test]
    fn every_case_is_in_the_expansion_list() {
        let listed: std::collections::BTreeSet<&str> = crate::storage_contract_tests!(@names).into_iter().collect();
        let sources = [
            include_str!("storage_contract/access.rs"),
            include_str!("storage_contract/audit.rs"),
            include_str!("storage_contract/catalog.rs"),
            include_str!("storage_contract/leads.rs"),
            include_str!("storage_contract/outbox.rs"),
            include_str!("storage_contract/people.rs"),
            include_str!("storage_contract/races.rs"),
            include_str!("storage_contract/sales.rs"),
        ];
        let defined: std::collections::BTreeSet<&str> = sources
            .iter()
            .flat_map(|src| src.split("pub async fn ").skip(1))
            .map(|rest| rest.split('(').next().unwrap_or_default())
            .collect();
        assert_eq!(listed, defined);
    }
}
