//! Leads: the atomic lead + outbox insert, and reads.

use std::time::Duration;

use leadrelay_core::sales::opens_opportunity;
use leadrelay_core::storage::{
    Accepted, CustomerDetail, ErasureReport, ErasureRequest, LeadDetail, LeadFilter, LeadStore, LeadWithDeliveries,
    NewDelivery, Page, PageRequest, Result, SplitRequest, StorageError,
};
use leadrelay_core::stored::leads::{ReadyLead, customer_id as rows_customer_id, split_match_key, split_reason};
use leadrelay_core::vault::Vault;
use leadrelay_core::{Customer, CustomerId, Lead, LeadId, OfferId, Timestamp};
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, params};

use crate::rows::{
    DELIVERY_COLUMNS, LEAD_COLUMNS, attempt_from_row, attempt_row, delivery_from_row, delivery_row, lead_row,
};
use crate::rows::{PagedQuery, text};
use crate::{Db, SqliteStore, map_err, query_rows};

const INSERT_LEAD: &str = "INSERT INTO leads (id, publisher_id, offer_id, offer_title, source, action, raw_lead_source, stage,
     first_name, last_name, email, phone, country, company, title, description, campaign, is_test, pii_withheld, received_at,
     customer_id, duplicate_of, merge_reason, previously_erased)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)";

// An erasure of this address for this lead's publisher (or for every publisher).
const ERASED_BEFORE: &str =
    "SELECT EXISTS (SELECT 1 FROM erasures WHERE email_hash = ?1 AND (publisher_id IS NULL OR publisher_id = ?2))";

// The destination row decides whether the delivery starts due (enabled) or parked (disabled),
// and a destination deleted meanwhile simply gets no row.
const INSERT_DELIVERY: &str = "INSERT INTO deliveries (id, lead_id, destination_id, publisher_id, status, attempts,
     next_attempt_at, lease_token, last_error, lead_received_at, created_at, updated_at)
     SELECT ?1, ?2, t.id, t.publisher_id, 'pending', 0, CASE WHEN t.enabled THEN ?4 ELSE NULL END, NULL, NULL, ?6, ?4, ?4
     FROM destinations t WHERE t.id = ?3 AND t.publisher_id = ?5";

const INSERT_CUSTOMER: &str = "INSERT INTO customers (id, publisher_id, match_hash, created_at) VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (publisher_id, match_hash) DO NOTHING";
const FIND_CUSTOMER: &str = "SELECT id FROM customers WHERE publisher_id = ?1 AND match_hash = ?2";
// The earliest original (not itself a duplicate) of the same customer, offer and action code
// inside the window.
const FIND_ORIGINAL: &str = "SELECT id FROM leads
     WHERE customer_id = ?1 AND offer_id IS ?2 AND action IS ?3 COLLATE NOCASE AND received_at >= ?4
       AND duplicate_of IS NULL
     ORDER BY received_at LIMIT 1";

fn insert_lead_row(
    c: &Db<'_>,
    r: &ReadyLead,
    customer_id: Option<&str>,
    duplicate_of: Option<&str>,
    merge_reason: Option<&str>,
    previously_erased: bool,
) -> Result<()> {
    let l = &r.item.lead;
    let [first, last, email, phone, company, title, description, raw] = &r.sealed;
    c.prepare_cached(INSERT_LEAD)
        .and_then(|mut s| {
            s.execute(params![
                l.id.as_str(),
                l.publisher.as_str(),
                l.offer.as_ref().map(OfferId::as_str),
                l.offer_title,
                l.source.as_str(),
                l.action.as_ref().map(|a| a.as_str()),
                raw,
                l.stage.as_str(),
                first,
                last,
                email,
                phone,
                l.customer.country,
                company,
                title,
                description,
                l.campaign,
                l.is_test,
                l.pii_withheld,
                l.received_at.as_millis(),
                customer_id,
                duplicate_of,
                merge_reason,
                previously_erased,
            ])
        })
        .map(drop)
        .map_err(map_err)?;
    insert_terms(c, l.id.as_str(), &r.terms)
}

/// Adds a lead's search terms (keyed hashes of its words) to the blind index.
pub(crate) fn index_terms(c: &rusqlite::Connection, v: &Vault, lead: &str, customer: &Customer) -> Result<()> {
    insert_terms(c, lead, &v.search_terms(customer))
}

fn insert_terms(c: &rusqlite::Connection, lead: &str, terms: &[String]) -> Result<()> {
    let mut stmt =
        c.prepare_cached("INSERT OR IGNORE INTO lead_terms (term, lead_id) VALUES (?1, ?2)").map_err(map_err)?;
    for term in terms {
        stmt.execute(params![term, lead]).map_err(map_err)?;
    }
    Ok(())
}

/// Outbox rows for a lead, due at `due`.
fn insert_deliveries(c: &rusqlite::Connection, l: &Lead, deliveries: &[NewDelivery], due: Timestamp) -> Result<()> {
    let mut stmt = c.prepare_cached(INSERT_DELIVERY).map_err(map_err)?;
    for d in deliveries {
        stmt.execute(params![
            d.id.as_str(),
            l.id.as_str(),
            d.destination.as_str(),
            due.as_millis(),
            l.publisher.as_str(),
            l.received_at.as_millis()
        ])
        .map_err(map_err)?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl LeadStore for SqliteStore {
    async fn insert_leads(&self, batch: &[LeadWithDeliveries], duplicate_window: Duration) -> Result<Vec<Accepted>> {
        let ready: Vec<ReadyLead> = batch.iter().map(|item| ReadyLead::new(&self.vault, item.clone())).collect();
        self.write(move |c| {
            let mut accepted = Vec::with_capacity(ready.len());
            let mut settings = crate::sales::SettingsCache::default();
            for r in &ready {
                let l = &r.item.lead;
                // Matching runs in the writer's transaction: concurrent leads of one new
                // customer are serialised here, so they cannot create two customers.
                let (customer_id, duplicate_of, merge_reason, new_customer) = match &r.matching {
                    None => (None, None, None, false),
                    Some((digest, reason)) => {
                        let fresh = CustomerId::generate(l.received_at);
                        let created = c
                            .prepare_cached(INSERT_CUSTOMER)
                            .and_then(|mut s| {
                                s.execute(params![
                                    fresh.as_str(),
                                    l.publisher.as_str(),
                                    digest,
                                    l.received_at.as_millis()
                                ])
                            })
                            .map_err(map_err)?;
                        let customer: String = c
                            .prepare_cached(FIND_CUSTOMER)
                            .and_then(|mut s| s.query_row(params![l.publisher.as_str(), digest], |r| r.get(0)))
                            .map_err(map_err)?;
                        let since = l.received_at.minus(duplicate_window).as_millis();
                        // A customer created just now has no earlier lead to repeat.
                        let original: Option<String> = if created == 1 {
                            None
                        } else {
                            c.prepare_cached(FIND_ORIGINAL)
                                .and_then(|mut s| {
                                    s.query_row(
                                        params![
                                            customer,
                                            l.offer.as_ref().map(OfferId::as_str),
                                            l.action.as_ref().map(|a| a.as_str()),
                                            since
                                        ],
                                        |r| r.get(0),
                                    )
                                    .optional()
                                })
                                .map_err(map_err)?
                        };
                        let reason = (created == 0).then(|| (*reason).to_owned());
                        (Some(customer), original, reason, created == 1)
                    }
                };
                let previously_erased = match &r.erasure_digest {
                    Some(digest) => c
                        .prepare_cached(ERASED_BEFORE)
                        .and_then(|mut s| s.query_row(params![digest, l.publisher.as_str()], |r| r.get(0)))
                        .map_err(map_err)?,
                    None => false,
                };
                insert_lead_row(
                    c,
                    r,
                    customer_id.as_deref(),
                    duplicate_of.as_deref(),
                    merge_reason.as_deref(),
                    previously_erased,
                )?;
                if duplicate_of.is_none() {
                    insert_deliveries(c, l, &r.item.deliveries, l.received_at)?;
                }
                // Sales work joins or opens its opportunity in this same transaction, so
                // concurrent leads of one customer and offer, serialised here, open one.
                let opportunity = match &customer_id {
                    Some(customer) if duplicate_of.is_none() && opens_opportunity(l) => {
                        Some(crate::sales::file_lead(c, &mut settings, l, customer, new_customer)?)
                    }
                    _ => None,
                };
                accepted.push(Accepted {
                    customer_id: customer_id.as_deref().map(rows_customer_id).transpose()?,
                    duplicate_of: duplicate_of.as_deref().map(crate::rows::lead_id).transpose()?,
                    previously_erased,
                    opportunity,
                });
            }
            Ok(accepted)
        })
        .await
    }

    async fn get_customer(&self, id: &CustomerId) -> Result<CustomerDetail> {
        let id = id.as_str().to_owned();
        self.read(move |c| {
            let (publisher, created_at): (String, i64) = c
                .prepare_cached("SELECT publisher_id, created_at FROM customers WHERE id = ?1")
                .and_then(|mut s| s.query_row([&id], |r| Ok((r.get(0)?, r.get(1)?))))
                .map_err(map_err)?;
            let sql = format!("SELECT {LEAD_COLUMNS} FROM leads WHERE customer_id = ?1 ORDER BY received_at, id");
            let leads = query_rows(c, &sql, [&id], lead_row, |r| r.into_lead(c.vault))?;
            Ok(CustomerDetail {
                id: rows_customer_id(&id)?,
                publisher: crate::rows::publisher_id(&publisher)?,
                created_at: crate::rows::ts(created_at),
                leads,
            })
        })
        .await
    }

    async fn split_customer(&self, req: &SplitRequest) -> Result<()> {
        let req = req.clone();
        self.write(move |c| {
            let publisher: String = c
                .prepare_cached("SELECT publisher_id FROM customers WHERE id = ?1")
                .and_then(|mut s| s.query_row([req.customer.as_str()], |r| r.get(0)))
                .map_err(map_err)?;
            // The new customer is matched by nothing: future leads with the old key still go to
            // the old customer, which is what the person who split wanted for the rest.
            let key = split_match_key(&req.new_customer);
            c.execute(
                "INSERT INTO customers (id, publisher_id, match_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![req.new_customer.as_str(), publisher, key, req.now.as_millis()],
            )
            .map_err(map_err)?;
            let reason = split_reason(&req.customer);
            for lead in &req.leads {
                let moved = c
                    .execute(
                        "UPDATE leads SET customer_id = ?1, merge_reason = ?2 WHERE id = ?3 AND customer_id = ?4",
                        params![req.new_customer.as_str(), reason, lead.as_str(), req.customer.as_str()],
                    )
                    .map_err(map_err)?;
                if moved == 0 {
                    return Err(StorageError::NotFound);
                }
            }
            for (lead_id, deliveries) in &req.released {
                c.execute("UPDATE leads SET duplicate_of = NULL WHERE id = ?1", [lead_id.as_str()]).map_err(map_err)?;
                let sql = format!("SELECT {LEAD_COLUMNS} FROM leads WHERE id = ?1");
                let lead = c
                    .prepare_cached(&sql)
                    .and_then(|mut s| s.query_row([lead_id.as_str()], lead_row))
                    .map_err(map_err)?
                    .into_lead(c.vault)?;
                insert_deliveries(c, &lead, deliveries, req.now)?;
            }
            Ok(())
        })
        .await
    }

    async fn erase_person(&self, request: &ErasureRequest) -> Result<ErasureReport> {
        self.erase(request).await
    }

    async fn strip_personal_data(&self, cutoff: Timestamp, now: Timestamp, limit: u32) -> Result<u64> {
        self.strip_old(cutoff, now, limit).await
    }

    async fn get_leads(&self, ids: &[LeadId]) -> Result<Vec<leadrelay_core::Lead>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = ids.iter().map(LeadId::as_str).collect();
        let ids_json = serde_json::to_string(&ids).unwrap_or_default();
        self.read(move |c| {
            let sql = format!("SELECT {LEAD_COLUMNS} FROM leads WHERE id IN (SELECT value FROM json_each(?1))");
            query_rows(c, &sql, [&ids_json], lead_row, |r| r.into_lead(c.vault))
        })
        .await
    }

    async fn get_lead(&self, id: &LeadId) -> Result<LeadDetail> {
        let id = id.as_str().to_owned();
        self.read(move |c| {
            let lead = c
                .prepare_cached(&format!("SELECT {LEAD_COLUMNS} FROM leads WHERE id = ?1"))
                .and_then(|mut s| s.query_row([&id], lead_row))
                .map_err(map_err)?
                .into_lead(c.vault)?;
            let sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE lead_id = ?1 ORDER BY created_at, id");
            let deliveries = query_rows(c, &sql, [&id], delivery_row, |r| delivery_from_row(r, c.vault))?;
            let mut out = Vec::with_capacity(deliveries.len());
            for d in deliveries {
                let attempts = query_rows(
                    c,
                    "SELECT delivery_id, number, started_at, duration_ms, status_code, error_class, message, excerpt
                         FROM attempts WHERE delivery_id = ?1 ORDER BY number",
                    [d.id.as_str()],
                    attempt_row,
                    |r| attempt_from_row(r, c.vault),
                )?;
                out.push((d, attempts));
            }
            Ok(LeadDetail { lead, deliveries: out })
        })
        .await
    }

    async fn list_leads(&self, filter: &LeadFilter, page: &PageRequest) -> Result<Page<Lead>> {
        let mut q = PagedQuery::new(LEAD_COLUMNS, "leads");
        q.and("publisher_id =", text(filter.publisher.as_ref().map(|p| p.as_str())));
        q.and("offer_id =", text(filter.offer.as_ref().map(OfferId::as_str)));
        q.and("customer_id =", text(filter.customer.as_ref().map(CustomerId::as_str)));
        q.and("source =", text(filter.source.as_deref()));
        q.and("is_test =", filter.is_test.map(|t| Value::Integer(i64::from(t))));
        if let Some(text) = filter.text.as_deref() {
            q.and_terms(&self.vault.query_terms(text));
        }
        q.and("action COLLATE NOCASE =", text(filter.action.as_deref()));
        q.and("stage =", text(filter.stage.as_deref()));
        q.and("received_at >=", filter.since.map(|t| Value::Integer(t.as_millis())));
        q.and("received_at <", filter.until.map(|t| Value::Integer(t.as_millis())));
        let page = page.clone();
        self.read(move |c| q.run(c, &page, lead_row, |r| r.into_lead(c.vault), |l| l.id.as_str().to_owned())).await
    }
}
