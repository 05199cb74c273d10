//! Erasing a person: one write transaction that finds the person's leads through the blind
//! index (confirmed on the opened address), removes their personal values and search terms and
//! the texts of their opportunities' follow-up logs, unmatches their customers, cancels what
//! was still to be sent and keeps a tombstone.
//! Retention removes the same values from old leads, a batch per transaction.

use leadrelay_core::storage::{ErasureReport, ErasureRequest, Result};
use leadrelay_core::stored::leads::{CANCELLED_BY_ERASURE, customers_of, erased_email_digest, of_person};
use leadrelay_core::vault::Column;
use leadrelay_core::{Lead, Timestamp};
use rusqlite::params;

use crate::rows::{LEAD_COLUMNS, destination_id, lead_row};
use crate::{Db, SqliteStore, map_err, query_rows};

impl SqliteStore {
    pub(crate) async fn erase(&self, request: &ErasureRequest) -> Result<ErasureReport> {
        let request = request.clone();
        self.write(move |c| erase_in(c, &request)).await
    }

    pub(crate) async fn strip_old(&self, cutoff: Timestamp, now: Timestamp, limit: u32) -> Result<u64> {
        self.write(move |c| {
            let sql = format!(
                "SELECT {LEAD_COLUMNS} FROM leads
                 WHERE received_at < ?1 AND (first_name IS NOT NULL OR last_name IS NOT NULL OR email IS NOT NULL
                       OR phone IS NOT NULL OR company IS NOT NULL OR title IS NOT NULL OR description IS NOT NULL
                       OR raw_lead_source IS NOT NULL)
                 ORDER BY received_at LIMIT ?2"
            );
            let leads = query_rows(c, &sql, params![cutoff.as_millis(), limit], lead_row, |r| r.into_lead(c.vault))?;
            for lead in &leads {
                wipe_lead(c, lead, now)?;
            }
            Ok(leads.len() as u64)
        })
        .await
    }
}

/// Removes one lead's personal values, its search terms and its attempts' texts, and cancels
/// its pending deliveries; returns how many it cancelled.
fn wipe_lead(c: &Db<'_>, lead: &Lead, now: Timestamp) -> Result<u64> {
    let v = c.vault;
    let id = lead.id.as_str();
    for term in v.search_terms(&lead.customer) {
        c.execute("DELETE FROM lead_terms WHERE term = ?1 AND lead_id = ?2", params![term, id]).map_err(map_err)?;
    }
    c.execute(
        "UPDATE leads SET first_name = NULL, last_name = NULL, email = NULL, phone = NULL, company = NULL,
                          title = NULL, description = NULL, raw_lead_source = NULL, pii_withheld = 1
         WHERE id = ?1",
        [id],
    )
    .map_err(map_err)?;
    c.execute(
        "UPDATE attempts SET message = NULL, excerpt = NULL WHERE delivery_id IN (SELECT id FROM deliveries WHERE lead_id = ?1)",
        [id],
    )
    .map_err(map_err)?;
    let cancelled = c
        .execute(
            "UPDATE deliveries SET status = 'dead', next_attempt_at = NULL, lease_token = NULL, last_error = ?2,
                                   updated_at = ?3
             WHERE lead_id = ?1 AND status = 'pending'",
            params![id, v.seal(Column::AttemptMessage, CANCELLED_BY_ERASURE), now.as_millis()],
        )
        .map_err(map_err)? as u64;
    c.execute("UPDATE deliveries SET last_error = NULL WHERE lead_id = ?1 AND status <> 'dead'", [id])
        .map_err(map_err)?;
    // What the sales team wrote about the person, in the follow-up log of the lead's opportunity.
    c.execute(
        "UPDATE activities SET outcome = NULL, note = NULL
         WHERE opportunity_id = (SELECT opportunity_id FROM opportunity_leads WHERE lead_id = ?1)
           AND (outcome IS NOT NULL OR note IS NOT NULL)",
        [id],
    )
    .map_err(map_err)?;
    c.execute(
        "UPDATE opportunities SET reason = NULL
         WHERE id = (SELECT opportunity_id FROM opportunity_leads WHERE lead_id = ?1) AND reason IS NOT NULL",
        [id],
    )
    .map_err(map_err)?;
    Ok(cancelled)
}

fn erase_in(c: &Db<'_>, req: &ErasureRequest) -> Result<ErasureReport> {
    let v = c.vault;
    let terms = v.query_terms(&req.email);
    let Some(term) = terms.first() else { return Ok(ErasureReport::default()) };
    let sql = format!(
        "SELECT {LEAD_COLUMNS} FROM leads
         WHERE id IN (SELECT lead_id FROM lead_terms WHERE term = ?1) AND (?2 IS NULL OR publisher_id = ?2)"
    );
    let publisher = req.publisher.as_ref().map(|p| p.as_str().to_owned());
    let candidates = query_rows(c, &sql, params![term, publisher], lead_row, |r| r.into_lead(v))?;
    let leads = of_person(candidates, &req.email);
    let mut report = ErasureReport::default();
    for lead in &leads {
        report.cancelled_deliveries += wipe_lead(c, lead, req.now)?;
        report.leads += 1;
    }
    for customer in &customers_of(&leads) {
        // Every opportunity of the customer, also one whose leads were all of another address:
        // what the sales team wrote there is about this person too.
        c.execute(
            "UPDATE activities SET outcome = NULL, note = NULL
             WHERE opportunity_id IN (SELECT id FROM opportunities WHERE customer_id = ?1)
               AND (outcome IS NOT NULL OR note IS NOT NULL)",
            [customer.as_str()],
        )
        .map_err(map_err)?;
        c.execute(
            "UPDATE opportunities SET reason = NULL WHERE customer_id = ?1 AND reason IS NOT NULL",
            [customer.as_str()],
        )
        .map_err(map_err)?;
        // Matched by nothing from now on; its timeline keeps the leads' non-personal facts.
        report.customers += c
            .execute(
                "UPDATE customers SET match_hash = 'erased:' || id WHERE id = ?1 AND match_hash NOT LIKE 'erased:%'",
                [customer.as_str()],
            )
            .map_err(map_err)? as u64;
    }
    let ids: Vec<&str> = leads.iter().map(|l| l.id.as_str()).collect();
    let delivered: Vec<String> = query_rows(
        c,
        "SELECT DISTINCT destination_id FROM deliveries
         WHERE status = 'delivered' AND lead_id IN (SELECT value FROM json_each(?1)) ORDER BY destination_id",
        [serde_json::to_string(&ids).unwrap_or_default()],
        |r| r.get(0),
        Ok,
    )?;
    report.delivered_to = delivered.iter().map(|d| destination_id(d)).collect::<Result<_>>()?;
    c.execute(
        "INSERT INTO erasures (id, publisher_id, email_hash, erased_at, requested_by) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![req.id, publisher, erased_email_digest(v, &req.email), req.now.as_millis(), req.requested_by],
    )
    .map_err(map_err)?;
    Ok(report)
}
