//! The audit log: one insert per entry through the group-commit writer, and filtered pages read
//! newest first. The table refuses updates and deletes by trigger (`0007_audit.sql`).

use leadrelay_core::PublisherId;
use leadrelay_core::audit::{ActorId, AuditAction, AuditEntry, AuditFilter, AuditObject};
use leadrelay_core::storage::{AuditStore, Page, PageRequest, Result};
use rusqlite::params;

use crate::rows::{AUDIT_COLUMNS, AuditRow, PagedQuery, audit_count, audit_from_row, text};
use crate::{SqliteStore, map_err};

const INSERT_AUDIT: &str = "INSERT INTO audit_log
     (id, at, actor, actor_publisher_id, publisher_id, action, object_id, count, text_search)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?))
}

#[async_trait::async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        let e = entry.clone();
        self.write(move |c| {
            c.prepare_cached(INSERT_AUDIT)
                .and_then(|mut s| {
                    s.execute(params![
                        e.id.as_str(),
                        e.at.as_millis(),
                        e.actor.id.as_str(),
                        e.actor.publisher.as_ref().map(PublisherId::as_str),
                        e.publisher.as_ref().map(PublisherId::as_str),
                        e.action.as_str(),
                        e.object.as_ref().map(AuditObject::as_str),
                        audit_count(e.count),
                        e.text_search,
                    ])
                })
                .map(drop)
                .map_err(map_err)
        })
        .await
    }

    async fn list_audit(&self, filter: &AuditFilter, page: &PageRequest) -> Result<Page<AuditEntry>> {
        let mut q = PagedQuery::new(AUDIT_COLUMNS, "audit_log");
        q.and("publisher_id =", text(filter.publisher.as_ref().map(PublisherId::as_str)));
        q.and("action =", text(filter.action.map(AuditAction::as_str)));
        q.and("actor =", text(filter.actor.as_ref().map(ActorId::as_str)));
        q.and("at >=", filter.since.map(|t| rusqlite::types::Value::Integer(t.as_millis())));
        q.and("at <", filter.until.map(|t| rusqlite::types::Value::Integer(t.as_millis())));
        let page = page.clone();
        self.read(move |c| q.run(c, &page, audit_row, audit_from_row, |e| e.id.as_str().to_owned())).await
    }
}
