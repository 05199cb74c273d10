//! Erasing a person: one write transaction that finds the person's leads through the blind
//! index (confirmed on the opened address), removes their personal values and search terms and
//! the texts of their opportunities' follow-up logs, unmatches their customers, cancels what
//! was still to be sent and keeps a tombstone. It first takes the advisory lock of the address's
//! digest, which the lead insert takes before it looks for a tombstone: a lead of the address
//! inserted meanwhile either committed before (and is erased here) or waits and is flagged.
//! Retention removes the same values from old leads, a batch per transaction; concurrent
//! batches skip each other's leads.

use leadrelay_core::storage::{ErasureReport, ErasureRequest, Result};
use leadrelay_core::stored::leads::{CANCELLED_BY_ERASURE, customers_of, erased_email_digest, of_person};
use leadrelay_core::vault::Column;
use leadrelay_core::{Lead, Timestamp};

use crate::Db;
use crate::leads::lock_emails;
use crate::rows::{LEAD_COLUMNS, destination_id, get, lead_row};

/// Retention: the personal data of at most `limit` leads received before `cutoff`, oldest first.
pub(crate) async fn strip_old(db: &Db<'_>, cutoff: Timestamp, now: Timestamp, limit: u32) -> Result<u64> {
    let sql = format!(
        "SELECT {LEAD_COLUMNS} FROM leads
         WHERE received_at < $1 AND (first_name IS NOT NULL OR last_name IS NOT NULL OR email IS NOT NULL
               OR phone IS NOT NULL OR company IS NOT NULL OR title IS NOT NULL OR description IS NOT NULL
               OR raw_lead_source IS NOT NULL)
         ORDER BY received_at LIMIT $2
         FOR UPDATE SKIP LOCKED"
    );
    let leads = db
        .rows(&sql, &[&cutoff.as_millis(), &i64::from(limit)])
        .await?
        .iter()
        .map(|r| lead_row(r)?.into_lead(db.vault))
        .collect::<Result<Vec<_>>>()?;
    wipe_leads(db, &leads, now).await?;
    Ok(leads.len() as u64)
}

/// Removes these leads' personal values, their search terms and their attempts' texts and the
/// texts of their opportunities' follow-up logs, and cancels their pending deliveries; returns
/// how many it cancelled.
async fn wipe_leads(db: &Db<'_>, leads: &[Lead], now: Timestamp) -> Result<u64> {
    if leads.is_empty() {
        return Ok(0);
    }
    let v = db.vault;
    let ids: Vec<&str> = leads.iter().map(|l| l.id.as_str()).collect();
    // The terms are derived again from the opened lead: `lead_terms` has no index by lead.
    let (mut terms, mut of) = (Vec::new(), Vec::new());
    for lead in leads {
        for term in v.search_terms(&lead.customer) {
            terms.push(term);
            of.push(lead.id.as_str());
        }
    }
    if !terms.is_empty() {
        db.exec(
            "DELETE FROM lead_terms t USING UNNEST($1::text[], $2::text[]) AS d(term, lead_id)
             WHERE t.term = d.term AND t.lead_id = d.lead_id",
            &[&terms, &of],
        )
        .await?;
    }
    db.exec(
        "UPDATE leads SET first_name = NULL, last_name = NULL, email = NULL, phone = NULL, company = NULL,
                          title = NULL, description = NULL, raw_lead_source = NULL, pii_withheld = TRUE
         WHERE id = ANY($1)",
        &[&ids],
    )
    .await?;
    db.exec(
        "UPDATE attempts SET message = NULL, excerpt = NULL
         WHERE delivery_id IN (SELECT id FROM deliveries WHERE lead_id = ANY($1))
           AND (message IS NOT NULL OR excerpt IS NOT NULL)",
        &[&ids],
    )
    .await?;
    let cancelled = db
        .exec(
            "UPDATE deliveries SET status = 'dead', next_attempt_at = NULL, lease_token = NULL, last_error = $2,
                                   updated_at = $3
             WHERE lead_id = ANY($1) AND status = 'pending'",
            &[&ids, &v.seal(Column::AttemptMessage, CANCELLED_BY_ERASURE), &now.as_millis()],
        )
        .await?;
    db.exec(
        "UPDATE deliveries SET last_error = NULL WHERE lead_id = ANY($1) AND status <> 'dead' AND last_error IS NOT NULL",
        &[&ids],
    )
    .await?;
    // What the sales team wrote about the person, in the follow-up logs of the leads'
    // opportunities.
    db.exec(
        "UPDATE activities SET outcome = NULL, note = NULL
         WHERE opportunity_id IN (SELECT opportunity_id FROM opportunity_leads WHERE lead_id = ANY($1))
           AND (outcome IS NOT NULL OR note IS NOT NULL)",
        &[&ids],
    )
    .await?;
    db.exec(
        "UPDATE opportunities SET reason = NULL
         WHERE id IN (SELECT opportunity_id FROM opportunity_leads WHERE lead_id = ANY($1)) AND reason IS NOT NULL",
        &[&ids],
    )
    .await?;
    Ok(cancelled)
}

/// Erases the person of `req` (see `LeadStore::erase_person`).
pub(crate) async fn erase(db: &Db<'_>, req: &ErasureRequest) -> Result<ErasureReport> {
    let v = db.vault;
    let terms = v.query_terms(&req.email);
    let Some(term) = terms.first() else { return Ok(ErasureReport::default()) };
    let digest = erased_email_digest(v, &req.email);
    lock_emails(db, &[digest.as_str()]).await?;
    let publisher = req.publisher.as_ref().map(|p| p.as_str());
    let sql = format!(
        "SELECT {LEAD_COLUMNS} FROM leads
         WHERE id IN (SELECT lead_id FROM lead_terms WHERE term = $1) AND ($2::text IS NULL OR publisher_id = $2)
         ORDER BY id
         FOR UPDATE"
    );
    let candidates = db
        .rows(&sql, &[term, &publisher])
        .await?
        .iter()
        .map(|r| lead_row(r)?.into_lead(v))
        .collect::<Result<Vec<_>>>()?;
    let leads = of_person(candidates, &req.email);
    let mut report = ErasureReport {
        cancelled_deliveries: wipe_leads(db, &leads, req.now).await?,
        leads: leads.len() as u64,
        ..ErasureReport::default()
    };
    let mut customers: Vec<String> = customers_of(&leads).iter().map(|c| c.as_str().to_owned()).collect();
    customers.sort_unstable();
    if !customers.is_empty() {
        // Every opportunity of the customers, also one whose leads were all of another
        // address: what the sales team wrote there is about this person too.
        db.exec(
            "UPDATE activities SET outcome = NULL, note = NULL
             WHERE opportunity_id IN (SELECT id FROM opportunities WHERE customer_id = ANY($1))
               AND (outcome IS NOT NULL OR note IS NOT NULL)",
            &[&customers],
        )
        .await?;
        db.exec(
            "UPDATE opportunities SET reason = NULL WHERE customer_id = ANY($1) AND reason IS NOT NULL",
            &[&customers],
        )
        .await?;
        // Matched by nothing from now on; their timelines keep the leads' non-personal facts.
        report.customers = db
            .exec(
                "UPDATE customers SET match_hash = 'erased:' || id
                 WHERE id = ANY($1) AND match_hash NOT LIKE 'erased:%'",
                &[&customers],
            )
            .await?;
    }
    let ids: Vec<&str> = leads.iter().map(|l| l.id.as_str()).collect();
    if !ids.is_empty() {
        let delivered = db
            .rows(
                "SELECT DISTINCT destination_id FROM deliveries
                 WHERE status = 'delivered' AND lead_id = ANY($1) ORDER BY destination_id",
                &[&ids],
            )
            .await?;
        report.delivered_to = delivered.iter().map(|r| destination_id(&get::<String>(r, 0)?)).collect::<Result<_>>()?;
    }
    db.exec(
        "INSERT INTO erasures (id, publisher_id, email_hash, erased_at, requested_by) VALUES ($1, $2, $3, $4, $5)",
        &[&req.id, &publisher, &digest, &req.now.as_millis(), &req.requested_by],
    )
    .await?;
    Ok(report)
}
