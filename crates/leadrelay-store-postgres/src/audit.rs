//! AuditStore on PostgreSQL: one insert per entry, committed before the call returns, and
//! filtered pages read newest first. The table refuses updates, deletes and truncation by
//! trigger (`0007_audit.sql`); an id taken by another node's entry is `Conflict`.

use leadrelay_core::PublisherId;
use leadrelay_core::audit::{ActorId, AuditAction, AuditEntry, AuditFilter, AuditObject};
use leadrelay_core::storage::{AuditStore, Page, PageRequest, Result};
use tokio_postgres::Row;

use crate::rows::{AUDIT_COLUMNS, Arg, AuditRow, PagedQuery, audit_count, audit_from_row, get, text};
use crate::{Db, Mode, PostgresStore, in_transaction};

fn audit_row(r: &Row) -> Result<AuditRow> {
    Ok((get(r, 0)?, get(r, 1)?, get(r, 2)?, get(r, 3)?, get(r, 4)?, get(r, 5)?, get(r, 6)?, get(r, 7)?, get(r, 8)?))
}

async fn append_audit(db: &Db<'_>, e: &AuditEntry) -> Result<()> {
    db.exec(
        "INSERT INTO audit_log
             (id, at, actor, actor_publisher_id, publisher_id, action, object_id, count, text_search)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &e.id.as_str(),
            &e.at.as_millis(),
            &e.actor.id.as_str(),
            &e.actor.publisher.as_ref().map(PublisherId::as_str),
            &e.publisher.as_ref().map(PublisherId::as_str),
            &e.action.as_str(),
            &e.object.as_ref().map(AuditObject::as_str),
            &audit_count(e.count),
            &e.text_search,
        ],
    )
    .await
    .map(drop)
}

fn millis(t: Option<leadrelay_core::Timestamp>) -> Option<Arg> {
    t.map(|t| Box::new(t.as_millis()) as Arg)
}

async fn list_audit(db: &Db<'_>, filter: &AuditFilter, page: &PageRequest) -> Result<Page<AuditEntry>> {
    let mut q = PagedQuery::new(AUDIT_COLUMNS, "audit_log");
    q.and("publisher_id =", text(filter.publisher.as_ref().map(PublisherId::as_str)));
    q.and("action =", text(filter.action.map(AuditAction::as_str)));
    q.and("actor =", text(filter.actor.as_ref().map(ActorId::as_str)));
    q.and("at >=", millis(filter.since));
    q.and("at <", millis(filter.until));
    q.run(db, page, |r| audit_from_row(audit_row(r)?), |e| e.id.as_str().to_owned()).await
}

#[async_trait::async_trait]
impl AuditStore for PostgresStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        in_transaction!(self, Mode::Write, |db| append_audit(db, entry))
    }

    async fn list_audit(&self, filter: &AuditFilter, page: &PageRequest) -> Result<Page<AuditEntry>> {
        in_transaction!(self, Mode::Read, |db| list_audit(db, filter, page))
    }
}
