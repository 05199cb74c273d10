//! Leads: the atomic lead + outbox insert, and reads.

use leadrelay_core::storage::{
    Attempt, Delivery, LeadDetail, LeadFilter, LeadWithDeliveries, Page, PageRequest, Result,
};
use leadrelay_core::{Lead, LeadId, OfferId};
use rusqlite::params;
use rusqlite::types::Value;

use crate::rows::{
    DELIVERY_COLUMNS, LEAD_COLUMNS, attempt_from_row, attempt_row, delivery_from_row, delivery_row, lead_row,
};
use crate::{SqliteStore, map_err};

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
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE lead_id = ?1 ORDER BY created_at, id"
                ))
                .map_err(map_err)?;
            let deliveries: Vec<Delivery> = stmt
                .query_map([&id], delivery_row)
                .map_err(map_err)?
                .map(|r| r.map_err(map_err).and_then(delivery_from_row))
                .collect::<Result<_>>()?;
            let mut attempts_stmt = c
                .prepare_cached(
                    "SELECT delivery_id, number, started_at, duration_ms, status_code, error_class, message, excerpt
                     FROM attempts WHERE delivery_id = ?1 ORDER BY number",
                )
                .map_err(map_err)?;
            let mut out = Vec::with_capacity(deliveries.len());
            for d in deliveries {
                let attempts: Vec<Attempt> = attempts_stmt
                    .query_map([d.id.as_str()], attempt_row)
                    .map_err(map_err)?
                    .map(|r| r.map_err(map_err).and_then(attempt_from_row))
                    .collect::<Result<_>>()?;
                out.push((d, attempts));
            }
            Ok(LeadDetail { lead, deliveries: out })
        })
        .await
}

pub(crate) async fn list_leads(store: &SqliteStore, filter: &LeadFilter, page: &PageRequest) -> Result<Page<Lead>> {
    let mut sql = format!("SELECT {LEAD_COLUMNS} FROM leads WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    let mut push = |clause: &str, v: Value| {
        args.push(v);
        sql.push_str(&format!(" AND {clause} ?{}", args.len()));
    };
    if let Some(p) = &filter.publisher {
        push("publisher_id =", Value::Text(p.as_str().to_owned()));
    }
    if let Some(o) = &filter.offer {
        push("offer_id =", Value::Text(o.as_str().to_owned()));
    }
    if let Some(a) = &filter.action {
        push("action COLLATE NOCASE =", Value::Text(a.clone()));
    }
    if let Some(s) = &filter.stage {
        push("stage =", Value::Text(s.clone()));
    }
    if let Some(t) = filter.since {
        push("received_at >=", Value::Integer(t.as_millis()));
    }
    if let Some(t) = filter.until {
        push("received_at <", Value::Integer(t.as_millis()));
    }
    if let Some(cursor) = &page.cursor {
        push("id <", Value::Text(cursor.clone()));
    }
    let limit = page.limit.max(1);
    sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", u64::from(limit) + 1));
    store
        .read(move |c| {
            let mut stmt = c.prepare(&sql).map_err(map_err)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args), lead_row).map_err(map_err)?;
            let mut items: Vec<Lead> =
                rows.map(|r| r.map_err(map_err).and_then(|r| r.into_lead())).collect::<Result<_>>()?;
            let next_cursor = if items.len() > limit as usize {
                items.truncate(limit as usize);
                items.last().map(|l| l.id.as_str().to_owned())
            } else {
                None
            };
            Ok(Page { items, next_cursor })
        })
        .await
}
