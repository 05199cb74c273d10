//! Leads: the atomic lead + outbox insert, and reads.

use leadrelay_core::storage::{LeadDetail, LeadFilter, LeadWithDeliveries, Page, PageRequest, Result};
use leadrelay_core::{Lead, LeadId, OfferId};
use rusqlite::params;
use rusqlite::types::Value;

use crate::rows::{
    DELIVERY_COLUMNS, LEAD_COLUMNS, attempt_from_row, attempt_row, delivery_from_row, delivery_row, lead_row,
};
use crate::rows::{PagedQuery, text};
use crate::{SqliteStore, map_err, query_rows};

const INSERT_LEAD: &str = "INSERT INTO leads (id, publisher_id, offer_id, offer_title, source, action, raw_lead_source, stage,
     first_name, last_name, email, phone, country, company, title, description, campaign, is_test, pii_withheld, received_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)";

// The destination row decides whether the delivery starts due (enabled) or parked (disabled),
// and a destination deleted meanwhile simply gets no row.
const INSERT_DELIVERY: &str = "INSERT INTO deliveries (id, lead_id, destination_id, publisher_id, status, attempts,
     next_attempt_at, lease_token, last_error, lead_received_at, created_at, updated_at)
     SELECT ?1, ?2, t.id, t.publisher_id, 'pending', 0, CASE WHEN t.enabled THEN ?4 ELSE NULL END, NULL, NULL, ?4, ?4, ?4
     FROM destinations t WHERE t.id = ?3 AND t.publisher_id = ?5";

pub(crate) async fn insert_leads(store: &SqliteStore, batch: &[LeadWithDeliveries]) -> Result<()> {
    let batch = batch.to_vec();
    store
        .write(move |c| {
            let mut lead_stmt = c.prepare_cached(INSERT_LEAD).map_err(map_err)?;
            let mut delivery_stmt = c.prepare_cached(INSERT_DELIVERY).map_err(map_err)?;
            for item in &batch {
                let l = &item.lead;
                let cu = &l.customer;
                lead_stmt
                    .execute(params![
                        l.id.as_str(),
                        l.publisher.as_str(),
                        l.offer.as_ref().map(OfferId::as_str),
                        l.offer_title,
                        l.source.as_str(),
                        l.action.as_ref().map(|a| a.as_str()),
                        l.raw_lead_source,
                        l.stage.as_str(),
                        cu.first_name,
                        cu.last_name,
                        cu.email,
                        cu.phone,
                        cu.country,
                        cu.company,
                        cu.title,
                        l.description,
                        l.campaign,
                        l.is_test,
                        l.pii_withheld,
                        l.received_at.as_millis(),
                    ])
                    .map_err(map_err)?;
                for d in &item.deliveries {
                    delivery_stmt
                        .execute(params![
                            d.id.as_str(),
                            l.id.as_str(),
                            d.destination.as_str(),
                            l.received_at.as_millis(),
                            l.publisher.as_str()
                        ])
                        .map_err(map_err)?;
                }
            }
            Ok(())
        })
        .await
}

pub(crate) async fn get_lead(store: &SqliteStore, id: &LeadId) -> Result<LeadDetail> {
    let id = id.as_str().to_owned();
    store
        .read(move |c| {
            let lead = c
                .prepare_cached(&format!("SELECT {LEAD_COLUMNS} FROM leads WHERE id = ?1"))
                .and_then(|mut s| s.query_row([&id], lead_row))
                .map_err(map_err)?
                .into_lead()?;
            let sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE lead_id = ?1 ORDER BY created_at, id");
            let deliveries = query_rows(c, &sql, [&id], delivery_row, delivery_from_row)?;
            let mut out = Vec::with_capacity(deliveries.len());
            for d in deliveries {
                let attempts = query_rows(
                    c,
                    "SELECT delivery_id, number, started_at, duration_ms, status_code, error_class, message, excerpt
                     FROM attempts WHERE delivery_id = ?1 ORDER BY number",
                    [d.id.as_str()],
                    attempt_row,
                    attempt_from_row,
                )?;
                out.push((d, attempts));
            }
            Ok(LeadDetail { lead, deliveries: out })
        })
        .await
}

pub(crate) async fn list_leads(store: &SqliteStore, filter: &LeadFilter, page: &PageRequest) -> Result<Page<Lead>> {
    let mut q = PagedQuery::new(LEAD_COLUMNS, "leads");
    q.and("publisher_id =", text(filter.publisher.as_ref().map(|p| p.as_str())));
    q.and("offer_id =", text(filter.offer.as_ref().map(OfferId::as_str)));
    q.and("action COLLATE NOCASE =", text(filter.action.as_deref()));
    q.and("stage =", text(filter.stage.as_deref()));
    q.and("received_at >=", filter.since.map(|t| Value::Integer(t.as_millis())));
    q.and("received_at <", filter.until.map(|t| Value::Integer(t.as_millis())));
    let page = page.clone();
    store.read(move |c| q.run(c, &page, lead_row, |r| r.into_lead(), |l| l.id.as_str().to_owned())).await
}
