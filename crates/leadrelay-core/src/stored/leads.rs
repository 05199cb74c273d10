//! Backend-neutral rules of storing leads and customers: what a lead insert prepares before its
//! transaction (the personal columns sealed, the match digest, the erasure digest, the search
//! terms), and the stored texts of a split and of an erasure. Every backend writes exactly these
//! values, so one database format holds whatever the backend.

use crate::customer::MatchKey;
use crate::storage::{LeadWithDeliveries, Result};
use crate::vault::{Column, Vault};
use crate::{Customer, CustomerId, Lead};

use super::corrupt;

/// What a delivery cancelled by an erasure says instead of a receiver's answer (sealed as an
/// attempt message).
pub const CANCELLED_BY_ERASURE: &str = "cancelled: the person's data was erased before it was sent";

/// A stored customer id.
pub fn customer_id(s: &str) -> Result<CustomerId> {
    CustomerId::parse(s).ok_or_else(|| corrupt("customer id"))
}

/// A lead's personal columns sealed, in the order of `leads`' columns first name, last name,
/// email, phone, company, title, description, raw LeadSource.
pub fn seal_personal(
    v: &Vault,
    customer: &Customer,
    description: Option<&str>,
    raw_lead_source: Option<&str>,
) -> [Option<String>; 8] {
    [
        v.seal_opt(Column::FirstName, customer.first_name.as_deref()),
        v.seal_opt(Column::LastName, customer.last_name.as_deref()),
        v.seal_opt(Column::Email, customer.email.as_deref()),
        v.seal_opt(Column::Phone, customer.phone.as_deref()),
        v.seal_opt(Column::Company, customer.company.as_deref()),
        v.seal_opt(Column::Title, customer.title.as_deref()),
        v.seal_opt(Column::Description, description),
        v.seal_opt(Column::RawLeadSource, raw_lead_source),
    ]
}

/// A lead made ready for its insert in the caller's task: its personal data sealed and its keyed
/// hashes computed before the transaction, which then spends its time (and the locks it holds)
/// on SQL alone.
#[derive(Debug, Clone)]
pub struct ReadyLead {
    /// The lead and its planned deliveries.
    pub item: LeadWithDeliveries,
    /// Its personal columns, sealed ([`seal_personal`]).
    pub sealed: [Option<String>; 8],
    /// The customer's match digest and the reason a match would give (`None`: a test lead, or
    /// one with nothing to match on).
    pub matching: Option<(String, &'static str)>,
    /// The digest an erasure of this email was recorded under.
    pub erasure_digest: Option<String>,
    /// Its blind-index search terms.
    pub terms: Vec<String>,
}

impl ReadyLead {
    /// Seals and hashes `item` with `v`.
    pub fn new(v: &Vault, item: LeadWithDeliveries) -> Self {
        let (l, cu) = (&item.lead, &item.lead.customer);
        let sealed = seal_personal(v, cu, l.description.as_deref(), l.raw_lead_source.as_deref());
        let matching = l.customer_match().map(|key| (v.match_digest(&key), key.reason()));
        let erasure_digest = erasure_digest(v, cu);
        let terms = v.search_terms(cu);
        Self { item, sealed, matching, erasure_digest, terms }
    }
}

/// The digest an erasure of this customer's email is recorded under (its tombstone's
/// `email_hash`), if it has an email.
pub fn erasure_digest(v: &Vault, customer: &Customer) -> Option<String> {
    customer.normalized_email().map(|e| v.match_digest(&MatchKey::Email(e)))
}

/// The tombstone's `email_hash` of an erasure of `email` (normalised).
pub fn erased_email_digest(v: &Vault, email: &str) -> String {
    v.match_digest(&MatchKey::Email(email.to_owned()))
}

/// The match key stored for a customer made by a split: matched by nothing, so future leads with
/// the old key still go to the old customer.
pub fn split_match_key(new_customer: &CustomerId) -> String {
    format!("split:{new_customer}")
}

/// The `merge_reason` of a lead moved by a split.
pub fn split_reason(from: &CustomerId) -> String {
    format!("split from {from}")
}

/// The leads among `candidates` (found through the blind index, which may match another
/// address's words) whose opened address is the erased one, `email` (normalised).
pub fn of_person(candidates: Vec<Lead>, email: &str) -> Vec<Lead> {
    candidates.into_iter().filter(|l| l.customer.normalized_email().as_deref() == Some(email)).collect()
}

/// The distinct customers of `leads`, in the order first met.
pub fn customers_of(leads: &[Lead]) -> Vec<CustomerId> {
    let mut customers: Vec<CustomerId> = Vec::new();
    for customer in leads.iter().filter_map(|l| l.customer_id.as_ref()) {
        if !customers.contains(customer) {
            customers.push(customer.clone());
        }
    }
    customers
}
