//! `AuditStore`: entries are read back exactly as appended, never replaced, listed newest first
//! page by page, and narrowed by every field of the filter.

use leadrelay_core::audit::{Actor, ActorId, AuditAction, AuditEntry, AuditFilter, AuditObject};
use leadrelay_core::storage::PageRequest;
use leadrelay_core::{AuditId, CustomerId, TokenId};

use super::*;

fn all(limit: u32) -> PageRequest {
    PageRequest { limit, cursor: None }
}

/// Every field of an entry survives the round trip, the optional ones absent too.
pub async fn an_audit_entry_is_read_back_as_appended(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let token = Actor::token(TokenId::generate(T0), Some(p.clone()));
    let full = AuditEntry::new(T0, &token, Some(&p), AuditAction::LeadList)
        .object(AuditObject::Customer(CustomerId::generate(T0)))
        .count(7)
        .text_search(true);
    let bare = AuditEntry::new(T0.plus(secs(1)), &Actor::admin(), None, AuditAction::KeysRotated);
    s.append_audit(&full).await.unwrap();
    s.append_audit(&bare).await.unwrap();
    let page = s.list_audit(&AuditFilter::default(), &all(10)).await.unwrap();
    assert_eq!(page.items, vec![bare, full]);
    assert!(page.next_cursor.is_none());
}

/// Appending an id that is taken is `Conflict` and leaves the first entry as it was: the log
/// is append-only.
pub async fn an_audit_entry_is_never_replaced(s: Arc<dyn Storage>) {
    let first = AuditEntry::new(T0, &Actor::admin(), None, AuditAction::LeadRead);
    let again = AuditEntry { action: AuditAction::Erase, count: Some(1), ..first.clone() };
    s.append_audit(&first).await.unwrap();
    assert_conflict(s.append_audit(&again).await);
    assert_eq!(s.list_audit(&AuditFilter::default(), &all(10)).await.unwrap().items, vec![first]);
}

/// Pages run newest first and follow the cursor to the end.
pub async fn audit_pages_follow_the_cursor_newest_first(s: Arc<dyn Storage>) {
    for i in 0..5 {
        s.append_audit(&AuditEntry::new(T0.plus(secs(i)), &Actor::admin(), None, AuditAction::LeadRead)).await.unwrap();
    }
    let first = s.list_audit(&AuditFilter::default(), &all(3)).await.unwrap();
    let second = s
        .list_audit(&AuditFilter::default(), &PageRequest { limit: 3, cursor: first.next_cursor.clone() })
        .await
        .unwrap();
    assert_eq!((first.items.len(), second.items.len()), (3, 2));
    assert!(second.next_cursor.is_none());
    let times: Vec<i64> = first.items.iter().chain(&second.items).map(|e| e.at.as_millis()).collect();
    let mut newest_first = times.clone();
    newest_first.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(times, newest_first);
    assert_eq!(times.len(), 5);
}

/// Publisher, action, actor and the time range narrow the list, alone and combined.
pub async fn audit_entries_are_filtered_by_every_field_of_the_filter(s: Arc<dyn Storage>) {
    let p = publisher(&*s).await;
    let other = publisher_named(&*s, "fabrikam").await;
    let token = TokenId::generate(T0);
    let theirs = Actor::token(token.clone(), Some(p.clone()));
    let entries = [
        AuditEntry::new(T0, &theirs, Some(&p), AuditAction::LeadRead),
        AuditEntry::new(T0.plus(secs(10)), &Actor::admin(), Some(&p), AuditAction::LeadExport),
        AuditEntry::new(T0.plus(secs(20)), &Actor::admin(), Some(&other), AuditAction::LeadRead),
        AuditEntry::new(T0.plus(secs(30)), &Actor::admin(), None, AuditAction::LeadList),
    ];
    for e in &entries {
        s.append_audit(e).await.unwrap();
    }
    let ids = |filter: AuditFilter| {
        let s = Arc::clone(&s);
        async move {
            let page = s.list_audit(&filter, &all(100)).await.unwrap();
            page.items.into_iter().map(|e| e.id).collect::<Vec<AuditId>>()
        }
    };
    let id = |i: usize| entries[i].id.clone();
    assert_eq!(ids(AuditFilter { publisher: Some(p.clone()), ..Default::default() }).await, [id(1), id(0)]);
    assert_eq!(ids(AuditFilter { publisher: Some(other), ..Default::default() }).await, [id(2)]);
    assert_eq!(ids(AuditFilter { action: Some(AuditAction::LeadRead), ..Default::default() }).await, [id(2), id(0)]);
    assert_eq!(ids(AuditFilter { actor: Some(ActorId::Token(token)), ..Default::default() }).await, [id(0)]);
    assert_eq!(ids(AuditFilter { actor: Some(ActorId::Admin), ..Default::default() }).await, [id(3), id(2), id(1)]);
    let range = AuditFilter { since: Some(T0.plus(secs(10))), until: Some(T0.plus(secs(30))), ..Default::default() };
    assert_eq!(ids(range).await, [id(2), id(1)]);
    let combined = AuditFilter {
        publisher: Some(p),
        action: Some(AuditAction::LeadRead),
        actor: Some(ActorId::Admin),
        ..Default::default()
    };
    assert!(ids(combined).await.is_empty());
}
