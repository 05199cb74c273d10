//! LeadStore on PostgreSQL: the lead insert with its customers, duplicates, outbox rows and
//! sales work in one transaction, splits, and the reads.
//!
//! The insert's rules hold across nodes by the customer's row lock: a batch first creates the
//! customers it needs (`ON CONFLICT DO NOTHING` waits for a concurrent creator and then yields
//! to it) and locks every one of them, sorted by match digest, before it looks for duplicates.
//! So every lead of one customer, whatever node takes it, is decided and filed after the ones
//! before it have committed. Before that it takes an advisory lock per email digest, which an
//! erasure of that address takes too: a lead inserted while its address is erased is either
//! erased with it or sees the tombstone. Each kind of row of the whole batch (leads, search
//! terms, deliveries) is one multi-row statement.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use leadrelay_core::sales::opens_opportunity;
use leadrelay_core::storage::{
    Accepted, CustomerDetail, ErasureReport, ErasureRequest, LeadDetail, LeadFilter, LeadStore, LeadWithDeliveries,
    NewDelivery, Page, PageRequest, Result, SplitRequest, StorageError,
};
use leadrelay_core::stored::leads::{ReadyLead, customer_id, split_match_key, split_reason};
use leadrelay_core::{CustomerId, Lead, LeadId, OfferId, Timestamp};
use tokio_postgres::types::ToSql;

use crate::rows::{
    Arg, DELIVERY_COLUMNS, LEAD_COLUMNS, PagedQuery, attempt_from_row, attempt_row, delivery_from_row, delivery_row,
    get, lead_id, lead_row, publisher_id, text, ts,
};
use crate::{Db, Mode, PostgresStore, in_transaction};

/// The advisory lock space of email digests (with `hashtext` of the digest), shared by the lead
/// insert and erasure.
pub(crate) const EMAIL_LOCK: i32 = 0x6d61_696c; // "mail"

/// Takes the advisory locks of these email digests, in sorted order (so two batches never wait
/// on each other crosswise). `digests` must be sorted and distinct.
pub(crate) async fn lock_emails(db: &Db<'_>, digests: &[&str]) -> Result<()> {
    if digests.is_empty() {
        return Ok(());
    }
    db.exec("SELECT pg_advisory_xact_lock($1, hashtext(d)) FROM UNNEST($2::text[]) AS d", &[&EMAIL_LOCK, &digests])
        .await
        .map(drop)
}

// The (digest, publisher) pairs, by ordinal, that an erasure of the address for that publisher
// (or for every publisher) matches.
const ERASED_BEFORE: &str = "SELECT k.n FROM UNNEST($1::text[], $2::text[]) WITH ORDINALITY AS k(h, p, n)
     WHERE EXISTS (SELECT 1 FROM erasures e
                   WHERE e.email_hash = k.h AND (e.publisher_id IS NULL OR e.publisher_id = k.p))";

const INSERT_CUSTOMERS: &str = "INSERT INTO customers (id, publisher_id, match_hash, created_at)
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[])
     ON CONFLICT (publisher_id, match_hash) DO NOTHING
     RETURNING id";

// Locked in the order of the sort, which comes before the locking.
const LOCK_CUSTOMERS: &str = "SELECT id, publisher_id, match_hash FROM customers
     WHERE (publisher_id, match_hash) IN (SELECT * FROM UNNEST($1::text[], $2::text[]))
     ORDER BY publisher_id, match_hash
     FOR UPDATE";

// For each lead (by ordinal): the earliest stored original (not itself a duplicate) of the same
// customer, offer and action code inside the window.
const FIND_ORIGINALS: &str = "SELECT DISTINCT ON (k.n) k.n, l.id, l.received_at
     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[]) WITH ORDINALITY AS k(c, o, a, s, n)
     JOIN leads l ON l.customer_id = k.c AND l.offer_id IS NOT DISTINCT FROM k.o
                 AND lower(l.action) IS NOT DISTINCT FROM lower(k.a) AND l.received_at >= k.s
                 AND l.duplicate_of IS NULL
     ORDER BY k.n, l.received_at, l.id";

const INSERT_LEADS: &str = "INSERT INTO leads (id, publisher_id, offer_id, offer_title, source, action,
         raw_lead_source, stage, first_name, last_name, email, phone, country, company, title, description, campaign,
         customer_id, duplicate_of, merge_reason, is_test, pii_withheld, received_at, previously_erased)
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
         $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[],
         $16::text[], $17::text[], $18::text[], $19::text[], $20::text[], $21::boolean[], $22::boolean[],
         $23::bigint[], $24::boolean[])";

const INSERT_TERMS: &str = "INSERT INTO lead_terms (term, lead_id) SELECT * FROM UNNEST($1::text[], $2::text[])
     ON CONFLICT DO NOTHING";

// The destination row decides whether the delivery starts due (enabled) or parked (disabled),
// and a destination deleted meanwhile simply gets no row. The key-share lock is the one the
// foreign-key check takes anyway (claims and records, which update the row, do not wait for it);
// a change of `enabled` that first locks the row FOR UPDATE waits for this insert, or this insert
// for it and then reads the row as it committed it (READ COMMITTED re-checks a locked row).
const INSERT_DELIVERIES: &str = "INSERT INTO deliveries (id, lead_id, destination_id, publisher_id, status, attempts,
         next_attempt_at, lease_token, last_error, lead_received_at, created_at, updated_at)
     SELECT d.id, d.lead_id, t.id, t.publisher_id, 'pending', 0, CASE WHEN t.enabled THEN d.due END, NULL, NULL,
            d.received_at, d.due, d.due
     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])
              AS d(id, lead_id, destination_id, publisher_id, due, received_at)
     JOIN destinations t ON t.id = d.destination_id AND t.publisher_id = d.publisher_id
     FOR KEY SHARE OF t";

/// An outbox row to insert: its lead, the lead's publisher and receipt time, when it is due, and
/// the planned delivery.
pub(crate) type DeliveryRow<'a> = (&'a str, &'a str, i64, i64, &'a NewDelivery);

/// Outbox rows, in one statement. Tells the other nodes when some start due.
async fn insert_deliveries(db: &Db<'_>, rows: &[DeliveryRow<'_>]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = rows.iter().map(|r| r.4.id.as_str()).collect();
    let leads: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let destinations: Vec<&str> = rows.iter().map(|r| r.4.destination.as_str()).collect();
    let publishers: Vec<&str> = rows.iter().map(|r| r.1).collect();
    let received: Vec<i64> = rows.iter().map(|r| r.2).collect();
    let dues: Vec<i64> = rows.iter().map(|r| r.3).collect();
    let sql = format!("{INSERT_DELIVERIES} RETURNING next_attempt_at IS NOT NULL");
    let inserted = db.rows(&sql, &[&ids, &leads, &destinations, &publishers, &dues, &received]).await?;
    let mut due = false;
    for r in &inserted {
        due |= get::<bool>(r, 0)?;
    }
    if due {
        db.work_is_due().await?;
    }
    Ok(())
}

/// What the insert decided for one lead before it is written.
struct Decision {
    customer: Option<String>,
    duplicate_of: Option<String>,
    merge_reason: Option<String>,
    new_customer: bool,
    previously_erased: bool,
}

/// The batch's customers, created where new and locked: match digest (with publisher) → the
/// customer's id, and the ids this transaction created.
async fn lock_customers(
    db: &Db<'_>,
    ready: &[ReadyLead],
) -> Result<(HashMap<(String, String), String>, HashSet<String>)> {
    // Each customer once, with the time of its first lead of the batch, sorted by key.
    let mut wanted: Vec<(&str, &str, Timestamp)> = Vec::new();
    for r in ready {
        let Some((digest, _)) = &r.matching else { continue };
        let l = &r.item.lead;
        if !wanted.iter().any(|(p, d, _)| *p == l.publisher.as_str() && *d == digest.as_str()) {
            wanted.push((l.publisher.as_str(), digest.as_str(), l.received_at));
        }
    }
    if wanted.is_empty() {
        return Ok((HashMap::new(), HashSet::new()));
    }
    wanted.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let fresh: Vec<String> = wanted.iter().map(|w| CustomerId::generate(w.2).as_str().to_owned()).collect();
    let publishers: Vec<&str> = wanted.iter().map(|w| w.0).collect();
    let digests: Vec<&str> = wanted.iter().map(|w| w.1).collect();
    let created_at: Vec<i64> = wanted.iter().map(|w| w.2.as_millis()).collect();
    let created = db.rows(INSERT_CUSTOMERS, &[&fresh, &publishers, &digests, &created_at]).await?;
    let created: HashSet<String> = created.iter().map(|r| get(r, 0)).collect::<Result<_>>()?;
    let mut customers = HashMap::with_capacity(wanted.len());
    for row in db.rows(LOCK_CUSTOMERS, &[&publishers, &digests]).await? {
        customers.insert((get(&row, 1)?, get(&row, 2)?), get(&row, 0)?);
    }
    if customers.len() != wanted.len() {
        // Only an erasure changes a customer's key, and it holds the address's lock, which
        // this transaction took first.
        return Err(StorageError::Other("a customer's match key changed during the lead insert".into()));
    }
    Ok((customers, created))
}

/// The batch's leads with an email: their index, erasure digest and publisher.
fn with_email(ready: &[ReadyLead]) -> Vec<(usize, &str, &str)> {
    ready
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.erasure_digest.as_deref().map(|d| (i, d, r.item.lead.publisher.as_str())))
        .collect()
}

/// The leads (by index) whose address an erasure matches. Runs after [`lock_emails`]: its
/// snapshot then holds an erasure that committed while this transaction waited.
async fn erased_before(db: &Db<'_>, ready: &[ReadyLead]) -> Result<HashSet<usize>> {
    let with_email = with_email(ready);
    if with_email.is_empty() {
        return Ok(HashSet::new());
    }
    let hashes: Vec<&str> = with_email.iter().map(|w| w.1).collect();
    let publishers: Vec<&str> = with_email.iter().map(|w| w.2).collect();
    let mut erased = HashSet::new();
    for row in db.rows(ERASED_BEFORE, &[&hashes, &publishers]).await? {
        let n: i64 = get(&row, 0)?;
        let at = usize::try_from(n - 1).ok().and_then(|k| with_email.get(k)).map(|w| w.0);
        erased.extend(at);
    }
    Ok(erased)
}

/// The stored original each lead (by index) would repeat, with its time: one statement for the
/// batch, for the leads of customers that existed before it.
async fn stored_originals(
    db: &Db<'_>,
    ready: &[ReadyLead],
    customers: &[Option<(String, bool)>],
    created: &HashSet<String>,
    window: Duration,
) -> Result<HashMap<usize, (String, i64)>> {
    let mut asked = Vec::new();
    for (i, (r, c)) in ready.iter().zip(customers).enumerate() {
        // A customer this batch created has no stored lead to repeat.
        if let Some((customer, _)) = c
            && !created.contains(customer)
        {
            asked.push((i, customer.as_str(), &r.item.lead));
        }
    }
    if asked.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<&str> = asked.iter().map(|a| a.1).collect();
    let offers: Vec<Option<&str>> = asked.iter().map(|a| a.2.offer.as_ref().map(OfferId::as_str)).collect();
    let actions: Vec<Option<&str>> = asked.iter().map(|a| a.2.action.as_ref().map(|x| x.as_str())).collect();
    let since: Vec<i64> = asked.iter().map(|a| a.2.received_at.minus(window).as_millis()).collect();
    let mut found = HashMap::new();
    for row in db.rows(FIND_ORIGINALS, &[&ids, &offers, &actions, &since]).await? {
        let n: i64 = get(&row, 0)?;
        if let Some(a) = usize::try_from(n - 1).ok().and_then(|k| asked.get(k)) {
            found.insert(a.0, (get(&row, 1)?, get(&row, 2)?));
        }
    }
    Ok(found)
}

/// Whether `earlier`, an original of the same customer, makes `l` its repeat.
fn repeats(l: &Lead, earlier: &Lead, window: Duration) -> bool {
    let same_action = match (&l.action, &earlier.action) {
        (None, None) => true,
        (Some(a), Some(b)) => a.as_str().eq_ignore_ascii_case(b.as_str()),
        _ => false,
    };
    l.offer == earlier.offer
        && same_action
        && earlier.received_at.as_millis() >= l.received_at.minus(window).as_millis()
}

pub(crate) async fn insert(db: &Db<'_>, ready: &[ReadyLead], window: Duration) -> Result<Vec<Accepted>> {
    let mut digests: Vec<&str> = with_email(ready).into_iter().map(|w| w.1).collect();
    digests.sort_unstable();
    digests.dedup();
    lock_emails(db, &digests).await?;
    // Sent together (one round trip): neither depends on the other.
    let (erased, (customers, created)) =
        futures_util::future::try_join(erased_before(db, ready), lock_customers(db, ready)).await?;
    // Each lead's customer, and whether this lead is the one that created it.
    let mut starts: HashSet<&str> = HashSet::new();
    let mut of_lead: Vec<Option<(String, bool)>> = Vec::with_capacity(ready.len());
    for r in ready {
        of_lead.push(match &r.matching {
            None => None,
            Some((digest, _)) => {
                let key = (r.item.lead.publisher.as_str().to_owned(), digest.clone());
                let id =
                    customers.get(&key).ok_or_else(|| StorageError::Other("a lead's customer is not locked".into()))?;
                let new = created.contains(id) && starts.insert(id.as_str());
                Some((id.clone(), new))
            }
        });
    }
    let stored = stored_originals(db, ready, &of_lead, &created, window).await?;
    let mut decisions: Vec<Decision> = Vec::with_capacity(ready.len());
    for (i, r) in ready.iter().enumerate() {
        let l = &r.item.lead;
        let decision = match (&of_lead[i], &r.matching) {
            (Some((customer, new)), Some((_, reason))) => {
                // The earliest original: stored ones first on a tie, then the batch's in order.
                let mut original = stored.get(&i).cloned();
                if !new {
                    for (j, earlier) in ready[..i].iter().enumerate() {
                        let e = &earlier.item.lead;
                        let same_customer = of_lead[j].as_ref().is_some_and(|(c, _)| c == customer);
                        if same_customer
                            && decisions[j].duplicate_of.is_none()
                            && repeats(l, e, window)
                            && original.as_ref().is_none_or(|(_, at)| e.received_at.as_millis() < *at)
                        {
                            original = Some((e.id.as_str().to_owned(), e.received_at.as_millis()));
                        }
                    }
                }
                Decision {
                    customer: Some(customer.clone()),
                    duplicate_of: original.map(|o| o.0),
                    merge_reason: (!new).then(|| (*reason).to_owned()),
                    new_customer: *new,
                    previously_erased: erased.contains(&i),
                }
            }
            _ => Decision {
                customer: None,
                duplicate_of: None,
                merge_reason: None,
                new_customer: false,
                previously_erased: erased.contains(&i),
            },
        };
        decisions.push(decision);
    }
    insert_rows(db, ready, &decisions).await?;
    // Sales work joins or opens its opportunity in this same transaction, under the customer's
    // lock, in the batch's order.
    let mut settings = crate::sales::SettingsCache::default();
    let mut accepted = Vec::with_capacity(ready.len());
    for (r, d) in ready.iter().zip(&decisions) {
        let l = &r.item.lead;
        let opportunity = match &d.customer {
            Some(customer) if d.duplicate_of.is_none() && opens_opportunity(l) => {
                Some(crate::sales::file_lead(db, &mut settings, l, customer, d.new_customer).await?)
            }
            _ => None,
        };
        accepted.push(Accepted {
            customer_id: d.customer.as_deref().map(customer_id).transpose()?,
            duplicate_of: d.duplicate_of.as_deref().map(lead_id).transpose()?,
            previously_erased: d.previously_erased,
            opportunity,
        });
    }
    Ok(accepted)
}

/// The batch's leads, search terms and (for originals) deliveries: three statements, two round
/// trips.
async fn insert_rows(db: &Db<'_>, ready: &[ReadyLead], decisions: &[Decision]) -> Result<()> {
    let mut texts: [Vec<Option<&str>>; 20] = Default::default();
    let (mut is_test, mut withheld, mut received, mut erased) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut terms, mut term_leads) = (Vec::new(), Vec::new());
    let mut deliveries = Vec::new();
    for (r, d) in ready.iter().zip(decisions) {
        let l = &r.item.lead;
        let [first, last, email, phone, company, title, description, raw] = &r.sealed;
        let row = [
            Some(l.id.as_str()),
            Some(l.publisher.as_str()),
            l.offer.as_ref().map(OfferId::as_str),
            l.offer_title.as_deref(),
            Some(l.source.as_str()),
            l.action.as_ref().map(|a| a.as_str()),
            raw.as_deref(),
            Some(l.stage.as_str()),
            first.as_deref(),
            last.as_deref(),
            email.as_deref(),
            phone.as_deref(),
            l.customer.country.as_deref(),
            company.as_deref(),
            title.as_deref(),
            description.as_deref(),
            l.campaign.as_deref(),
            d.customer.as_deref(),
            d.duplicate_of.as_deref(),
            d.merge_reason.as_deref(),
        ];
        for (column, value) in texts.iter_mut().zip(row) {
            column.push(value);
        }
        is_test.push(l.is_test);
        withheld.push(l.pii_withheld);
        received.push(l.received_at.as_millis());
        erased.push(d.previously_erased);
        for t in &r.terms {
            terms.push(t.as_str());
            term_leads.push(l.id.as_str());
        }
        if d.duplicate_of.is_none() {
            for nd in &r.item.deliveries {
                // Due at the lead's receipt: the outbox is served oldest lead first.
                let at = l.received_at.as_millis();
                deliveries.push((l.id.as_str(), l.publisher.as_str(), at, at, nd));
            }
        }
    }
    let [t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15, t16, t17, t18, t19, t20] = &texts;
    let params: [&(dyn ToSql + Sync); 24] = [
        t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15, t16, t17, t18, t19, t20, &is_test, &withheld,
        &received, &erased,
    ];
    let leads = db.exec(INSERT_LEADS, &params);
    let terms = async { if terms.is_empty() { Ok(0) } else { db.exec(INSERT_TERMS, &[&terms, &term_leads]).await } };
    // Sent together: the terms have no foreign key. The deliveries' one needs the leads first.
    futures_util::future::try_join(leads, terms).await?;
    insert_deliveries(db, &deliveries).await
}

async fn get_customer(db: &Db<'_>, id: &CustomerId) -> Result<CustomerDetail> {
    let row = db.one("SELECT publisher_id, created_at FROM customers WHERE id = $1", &[&id.as_str()]).await?;
    let (publisher, created_at): (String, i64) = (get(&row, 0)?, get(&row, 1)?);
    let sql = format!("SELECT {LEAD_COLUMNS} FROM leads WHERE customer_id = $1 ORDER BY received_at, id");
    let leads = db
        .rows(&sql, &[&id.as_str()])
        .await?
        .iter()
        .map(|r| lead_row(r)?.into_lead(db.vault))
        .collect::<Result<Vec<_>>>()?;
    Ok(CustomerDetail { id: id.clone(), publisher: publisher_id(&publisher)?, created_at: ts(created_at), leads })
}

async fn split(db: &Db<'_>, req: &SplitRequest) -> Result<()> {
    // The customer's row lock: concurrent splits (and lead inserts) of it wait here, and then
    // see what the one before them committed.
    let row = db.one("SELECT publisher_id FROM customers WHERE id = $1 FOR UPDATE", &[&req.customer.as_str()]).await?;
    let publisher: String = get(&row, 0)?;
    db.exec(
        "INSERT INTO customers (id, publisher_id, match_hash, created_at) VALUES ($1, $2, $3, $4)",
        &[&req.new_customer.as_str(), &publisher, &split_match_key(&req.new_customer), &req.now.as_millis()],
    )
    .await?;
    let mut leads: Vec<&str> = req.leads.iter().map(LeadId::as_str).collect();
    leads.sort_unstable();
    let moved = db
        .exec(
            "UPDATE leads SET customer_id = $1, merge_reason = $2 WHERE id = ANY($3) AND customer_id = $4",
            &[&req.new_customer.as_str(), &split_reason(&req.customer), &leads, &req.customer.as_str()],
        )
        .await?;
    // A lead named twice moves once, and then the request names one that is no longer there.
    if moved != req.leads.len() as u64 {
        return Err(StorageError::NotFound);
    }
    for (lead, deliveries) in &req.released {
        let row = db
            .one(
                "UPDATE leads SET duplicate_of = NULL WHERE id = $1 RETURNING publisher_id, received_at",
                &[&lead.as_str()],
            )
            .await?;
        let (publisher, received): (String, i64) = (get(&row, 0)?, get(&row, 1)?);
        let now = req.now.as_millis();
        let rows: Vec<_> = deliveries.iter().map(|d| (lead.as_str(), publisher.as_str(), received, now, d)).collect();
        insert_deliveries(db, &rows).await?;
    }
    Ok(())
}

async fn get_leads(db: &Db<'_>, ids: &[&str]) -> Result<Vec<Lead>> {
    let sql = format!("SELECT {LEAD_COLUMNS} FROM leads WHERE id = ANY($1)");
    db.rows(&sql, &[&ids]).await?.iter().map(|r| lead_row(r)?.into_lead(db.vault)).collect()
}

async fn get_lead(db: &Db<'_>, id: &LeadId) -> Result<LeadDetail> {
    let sql = format!("SELECT {LEAD_COLUMNS} FROM leads WHERE id = $1");
    let lead = lead_row(&db.one(&sql, &[&id.as_str()]).await?)?.into_lead(db.vault)?;
    let sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE lead_id = $1 ORDER BY created_at, id");
    let deliveries = db
        .rows(&sql, &[&id.as_str()])
        .await?
        .iter()
        .map(|r| delivery_from_row(delivery_row(r)?, db.vault))
        .collect::<Result<Vec<_>>>()?;
    let ids: Vec<&str> = deliveries.iter().map(|d| d.id.as_str()).collect();
    let mut attempts: HashMap<String, Vec<_>> = HashMap::new();
    if !ids.is_empty() {
        let rows = db
            .rows(
                "SELECT delivery_id, number, started_at, duration_ms, status_code, error_class, message, excerpt
                 FROM attempts WHERE delivery_id = ANY($1) ORDER BY delivery_id, number",
                &[&ids],
            )
            .await?;
        for r in &rows {
            let a = attempt_from_row(attempt_row(r)?, db.vault)?;
            attempts.entry(a.delivery_id.as_str().to_owned()).or_default().push(a);
        }
    }
    let deliveries = deliveries
        .into_iter()
        .map(|d| {
            let of = attempts.remove(d.id.as_str()).unwrap_or_default();
            (d, of)
        })
        .collect();
    Ok(LeadDetail { lead, deliveries })
}

/// A page of leads; the query is built in the transaction's body, which may run again.
async fn list(db: &Db<'_>, filter: &LeadFilter, page: &PageRequest) -> Result<Page<Lead>> {
    let millis = |t: Option<Timestamp>| t.map(|t| Box::new(t.as_millis()) as Arg);
    let mut q = PagedQuery::new(LEAD_COLUMNS, "leads");
    q.and("publisher_id =", text(filter.publisher.as_ref().map(|p| p.as_str())));
    q.and("offer_id =", text(filter.offer.as_ref().map(OfferId::as_str)));
    q.and("customer_id =", text(filter.customer.as_ref().map(CustomerId::as_str)));
    q.and("source =", text(filter.source.as_deref()));
    q.and("is_test =", filter.is_test.map(|t| Box::new(t) as Arg));
    if let Some(text) = filter.text.as_deref() {
        q.and_terms(&db.vault.query_terms(text));
    }
    if let Some(action) = text(filter.action.as_deref()) {
        let placeholder = q.arg(action);
        q.push(&format!(" AND lower(action) = lower({placeholder})"));
    }
    q.and("stage =", text(filter.stage.as_deref()));
    q.and("received_at >=", millis(filter.since));
    q.and("received_at <", millis(filter.until));
    q.run(db, page, |r| lead_row(r)?.into_lead(db.vault), |l| l.id.as_str().to_owned()).await
}

#[async_trait::async_trait]
impl LeadStore for PostgresStore {
    async fn insert_leads(&self, batch: &[LeadWithDeliveries], duplicate_window: Duration) -> Result<Vec<Accepted>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // Sealing, match digests and search terms need no database: done here, in the caller's
        // task, before the leads join a group.
        let ready: Vec<ReadyLead> = batch.iter().map(|item| ReadyLead::new(&self.vault, item.clone())).collect();
        match &self.group_commit {
            Some(group) => group.insert(ready, duplicate_window).await,
            None => in_transaction!(self, Mode::Write, |db| insert(db, &ready, duplicate_window)),
        }
    }

    async fn get_customer(&self, id: &CustomerId) -> Result<CustomerDetail> {
        in_transaction!(self, Mode::Read, |db| get_customer(db, id))
    }

    async fn split_customer(&self, request: &SplitRequest) -> Result<()> {
        in_transaction!(self, Mode::Write, |db| split(db, request))
    }

    async fn erase_person(&self, request: &ErasureRequest) -> Result<ErasureReport> {
        in_transaction!(self, Mode::Write, |db| crate::erasure::erase(db, request))
    }

    async fn strip_personal_data(&self, cutoff: Timestamp, now: Timestamp, limit: u32) -> Result<u64> {
        in_transaction!(self, Mode::Write, |db| crate::erasure::strip_old(db, cutoff, now, limit))
    }

    async fn get_lead(&self, id: &LeadId) -> Result<LeadDetail> {
        in_transaction!(self, Mode::Read, |db| get_lead(db, id))
    }

    async fn get_leads(&self, ids: &[LeadId]) -> Result<Vec<Lead>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = ids.iter().map(LeadId::as_str).collect();
        in_transaction!(self, Mode::Read, |db| get_leads(db, &ids))
    }

    async fn list_leads(&self, filter: &LeadFilter, page: &PageRequest) -> Result<Page<Lead>> {
        in_transaction!(self, Mode::Read, |db| list(db, filter, page))
    }
}
