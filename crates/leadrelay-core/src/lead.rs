//! The lead: one customer action on one offer, as stored and delivered.
//!
//! A [`LeadDraft`] holds what a way in read off the wire (lenient, raw strings);
//! [`Lead::from_draft`] turns it into a [`Lead`] whose every value is valid by construction.
//! Values are kept exactly as received (only `""` means absent): what the marketplace sent is
//! what destinations get. Matching and parsing normalise on their own copies.

use std::fmt;

use crate::clock::Timestamp;
use crate::customer::Customer;
use crate::ids::{CustomerId, LeadId, PublisherId};
use crate::offer::OfferId;
use crate::source::{ActionCode, LeadSource, LeadSourceError, Source};
use crate::stage::{Stage, StageTable};
use crate::test_lead;

/// The longest description kept, in bytes. Marketplace notes are short; this bounds storage.
pub const MAX_DESCRIPTION_BYTES: usize = 8 * 1024;
/// The longest customer field or title kept, in bytes.
pub const MAX_FIELD_BYTES: usize = 512;

/// A stored lead.
#[derive(Clone, PartialEq, Eq)]
pub struct Lead {
    /// Time-ordered id; also the `webhook-id` of its HTTPS deliveries.
    pub id: LeadId,
    /// The publisher that owns the lead.
    pub publisher: PublisherId,
    /// The offer, when it could be resolved.
    pub offer: Option<OfferId>,
    /// The offer's display name as the marketplace sent it (or the offer's title).
    pub offer_title: Option<String>,
    /// Where the customer acted.
    pub source: Source,
    /// What the customer did.
    pub action: Option<ActionCode>,
    /// The `LeadSource` string exactly as received, when one was.
    pub raw_lead_source: Option<String>,
    /// The funnel stage, from the stage table.
    pub stage: Stage,
    /// The customer's details.
    pub customer: Customer,
    /// Free text: the customer's notes, `Campaigns: …`, or a test marker.
    pub description: Option<String>,
    /// Campaign id, when known.
    pub campaign: Option<String>,
    /// A test lead (`MSFT_TEST_…` or sent by Validate): never counted as a sales lead.
    pub is_test: bool,
    /// Personal data was withheld (privacy rule); the customer fields are empty.
    pub pii_withheld: bool,
    /// When leadrelay accepted it.
    pub received_at: Timestamp,
    /// The customer it was merged into (set by storage; `None` for test leads and leads with
    /// nothing to match on).
    pub customer_id: Option<CustomerId>,
    /// The earlier lead this one repeats (same customer, offer and action within the window);
    /// a duplicate is kept on the timeline and not delivered again.
    pub duplicate_of: Option<LeadId>,
    /// Why it was merged into its customer.
    pub merge_reason: Option<String>,
    /// The person's data was erased earlier and this lead brought the address back (set by
    /// storage from the erasure tombstones): the publisher decides whether to keep it.
    pub previously_erased: bool,
}

impl fmt::Debug for Lead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lead")
            .field("id", &self.id)
            .field("publisher", &self.publisher)
            .field("offer", &self.offer)
            .field("source", &self.source.as_str())
            .field("action", &self.action.as_ref().map(ActionCode::as_str))
            .field("stage", &self.stage)
            .field("customer", &self.customer)
            .field("is_test", &self.is_test)
            .field("received_at", &self.received_at)
            .finish_non_exhaustive()
    }
}

/// What an ingest route read, before it is checked.
#[derive(Clone, Default)]
pub struct LeadDraft {
    /// The owning publisher (already authorised).
    pub publisher: Option<PublisherId>,
    /// The resolved offer, if any.
    pub offer: Option<OfferId>,
    /// `OfferTitle` / offer name.
    pub offer_title: Option<String>,
    /// `LeadSource` as received.
    pub lead_source: Option<String>,
    /// The `LeadSource` already in parts, when the way in built it rather than received it
    /// (marketplace events, test leads). It wins over parsing `lead_source`.
    pub parsed_source: Option<LeadSource>,
    /// `ActionCode` as received (wins over the action part of `LeadSource`).
    pub action_code: Option<String>,
    /// Customer fields, raw.
    pub customer: Customer,
    /// `Description`.
    pub description: Option<String>,
    /// Campaign id.
    pub campaign: Option<String>,
    /// Forced test flag (Validate and Publish send test leads).
    pub is_test: bool,
    /// Personal data was already withheld where this lead comes from (a re-imported export):
    /// it stays withheld whatever the fields say now.
    pub pii_withheld: bool,
}

/// Rules from configuration that shape a lead.
#[derive(Debug, Clone)]
pub struct LeadRules {
    /// Action code → stage.
    pub stages: StageTable,
    /// Email-domain suffixes whose leads are stored without personal data (`.edu`).
    pub withheld_email_suffixes: Vec<String>,
}

impl Default for LeadRules {
    fn default() -> Self {
        Self { stages: StageTable::default(), withheld_email_suffixes: vec![".edu".to_owned()] }
    }
}

impl LeadRules {
    /// Whether the privacy rule withholds this customer's personal data: the email's domain
    /// (case-insensitive, trailing dot ignored) ends with a listed suffix (`.edu` matches
    /// `uni.edu` and `edu`).
    pub fn withholds(&self, customer: &Customer) -> bool {
        let Some(domain) = customer.email_domain() else { return false };
        self.withheld_email_suffixes.iter().any(|suffix| {
            let suffix = suffix.trim().trim_start_matches('.').to_ascii_lowercase();
            !suffix.is_empty() && (domain == suffix || domain.ends_with(&format!(".{suffix}")))
        })
    }
}

/// A field of a lead, named apart from any wire format: each way in (the native API, the
/// marketplace's JSON, a CSV row) names it its own way when it reports an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeadField {
    /// The owning publisher.
    Publisher,
    /// The offer id.
    Offer,
    /// `LeadSource`.
    LeadSource,
    /// `OfferTitle`.
    OfferTitle,
    /// The customer's first name.
    FirstName,
    /// The customer's last name.
    LastName,
    /// The customer's email.
    Email,
    /// The customer's phone.
    Phone,
    /// The customer's country.
    Country,
    /// The customer's company.
    Company,
    /// The customer's job title.
    Title,
    /// `Description` (notes).
    Description,
    /// The campaign id.
    Campaign,
}

/// Why a draft is not a lead. Each variant names the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeadError {
    /// No publisher could be determined.
    #[error("is required")]
    MissingPublisher,
    /// The `LeadSource` string cannot be read.
    #[error("{0}")]
    LeadSource(#[from] LeadSourceError),
    /// Neither a `LeadSource` nor a source was given.
    #[error("is required (e.g. 'AzureMarketplace' or 'AzureMarketplace-INS|contoso.crm')")]
    MissingSource,
    /// A field is longer than allowed.
    #[error("is longer than {max} bytes")]
    TooLong {
        /// The field.
        field: LeadField,
        /// The limit.
        max: usize,
    },
}

impl LeadError {
    /// The offending field; the error's `Display` is the rule it breaks.
    pub fn field(&self) -> LeadField {
        match self {
            Self::MissingPublisher => LeadField::Publisher,
            Self::LeadSource(_) | Self::MissingSource => LeadField::LeadSource,
            Self::TooLong { field, .. } => *field,
        }
    }
}

fn check_len(field: LeadField, v: &Option<String>, max: usize) -> Result<(), LeadError> {
    match v {
        Some(s) if s.len() > max => Err(LeadError::TooLong { field, max }),
        _ => Ok(()),
    }
}

impl Lead {
    /// Checks a draft and builds the lead.
    ///
    /// # Errors
    /// A [`LeadError`] naming the first field that breaks a rule.
    pub fn from_draft(
        draft: LeadDraft,
        id: LeadId,
        received_at: Timestamp,
        rules: &LeadRules,
    ) -> Result<Lead, LeadError> {
        use crate::customer::present;
        let publisher = draft.publisher.ok_or(LeadError::MissingPublisher)?;
        let raw_lead_source = present(draft.lead_source);
        let parsed = match (draft.parsed_source, &raw_lead_source) {
            (Some(parsed), _) => parsed,
            (None, Some(raw)) if !raw.trim().is_empty() => LeadSource::parse(raw)?,
            (None, _) => return Err(LeadError::MissingSource),
        };
        let action = draft.action_code.as_deref().and_then(ActionCode::parse).or(parsed.action.clone());
        let c = &draft.customer;
        let offer_title = present(draft.offer_title);
        let campaign = present(draft.campaign);
        for (field, v) in [
            (LeadField::FirstName, &c.first_name),
            (LeadField::LastName, &c.last_name),
            (LeadField::Email, &c.email),
            (LeadField::Phone, &c.phone),
            (LeadField::Country, &c.country),
            (LeadField::Company, &c.company),
            (LeadField::Title, &c.title),
            (LeadField::OfferTitle, &offer_title),
            (LeadField::LeadSource, &raw_lead_source),
            (LeadField::Campaign, &campaign),
        ] {
            check_len(field, v, MAX_FIELD_BYTES)?;
        }
        let description = present(draft.description);
        check_len(LeadField::Description, &description, MAX_DESCRIPTION_BYTES)?;
        let offer_title =
            offer_title.or_else(|| parsed.offer.clone().filter(|o| crate::offer::OfferId::parse(o).is_err()));
        let is_test = draft.is_test
            || test_lead::looks_like_test_lead(
                &draft.customer,
                description.as_deref(),
                parsed.source.as_str(),
                action.as_ref().map(ActionCode::as_str),
            );
        // The privacy rule: keep source, action, offer, country and time; drop everything that
        // names or reaches the person, including free-text notes.
        let pii_withheld = draft.pii_withheld || rules.withholds(&draft.customer);
        let (customer, description) = if pii_withheld {
            (Customer { country: draft.customer.country, ..Customer::default() }, None)
        } else {
            (draft.customer, description)
        };
        Ok(Lead {
            id,
            publisher,
            offer: draft.offer,
            offer_title,
            stage: rules.stages.stage_for(action.as_ref()),
            source: parsed.source,
            action,
            raw_lead_source,
            customer,
            description,
            campaign,
            is_test,
            pii_withheld,
            received_at,
            customer_id: None,
            duplicate_of: None,
            merge_reason: None,
            previously_erased: false,
        })
    }

    /// The identity used to merge this lead into a customer; test leads never merge.
    pub fn customer_match(&self) -> Option<crate::customer::MatchKey> {
        if self.is_test { None } else { self.customer.match_key() }
    }

    /// The `Source-Action|Offer` string for destinations that want one (Salesforce
    /// `lead_source`): the offer part is the offer id when known, else the offer title.
    pub fn lead_source_string(&self) -> String {
        LeadSource {
            source: self.source.clone(),
            action: self.action.clone(),
            offer: self.offer.as_ref().map(|o| o.as_str().to_owned()).or_else(|| self.offer_title.clone()),
        }
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(lead_source: &str) -> LeadDraft {
        LeadDraft {
            publisher: Some(PublisherId::parse("contoso").unwrap()),
            lead_source: Some(lead_source.into()),
            ..LeadDraft::default()
        }
    }

    fn build(d: LeadDraft) -> Result<Lead, LeadError> {
        Lead::from_draft(
            d,
            LeadId::generate(Timestamp::from_millis(1)),
            Timestamp::from_millis(1),
            &LeadRules::default(),
        )
    }

    #[test]
    fn the_action_code_field_wins_over_the_lead_source_part() {
        let mut d = draft("AzureMarketplace-PLT|contoso.crm");
        d.action_code = Some("INS".into());
        let lead = build(d).unwrap();
        assert_eq!(lead.action, Some(ActionCode::Ins));
        assert_eq!(lead.stage.as_str(), "active");
        assert_eq!(lead.raw_lead_source.as_deref(), Some("AzureMarketplace-PLT|contoso.crm"));
    }

    #[test]
    fn a_bare_source_takes_its_action_from_the_action_code() {
        let mut d = draft("AzureMarketplace");
        d.action_code = Some("StartTestDrive".into());
        let lead = build(d).unwrap();
        assert_eq!(lead.stage.as_str(), "trial");
        assert_eq!(lead.lead_source_string(), "AzureMarketplace-StartTestDrive");
    }

    #[test]
    fn an_offer_name_in_the_lead_source_becomes_the_title() {
        let lead = build(draft("AppSource (SPZA)-PLT|Contoso CRM")).unwrap();
        assert_eq!(lead.offer_title.as_deref(), Some("Contoso CRM"));
    }

    #[test]
    fn a_missing_lead_source_is_refused_naming_the_field() {
        let mut d = draft("x");
        d.lead_source = Some("  ".into());
        assert_eq!(build(d).unwrap_err().field(), LeadField::LeadSource);
    }

    #[test]
    fn values_are_kept_exactly_as_received() {
        let mut d = draft("AzureMarketplace-INS|contoso.crm");
        d.description = Some("Campaigns: ".into());
        d.offer_title = Some(" ".into());
        d.customer.company = Some(" Contoso ".into());
        let lead = build(d).unwrap();
        assert_eq!(lead.description.as_deref(), Some("Campaigns: "));
        assert_eq!(lead.offer_title.as_deref(), Some(" "));
        assert_eq!(lead.customer.company.as_deref(), Some(" Contoso "));
        assert_eq!(lead.raw_lead_source.as_deref(), Some("AzureMarketplace-INS|contoso.crm"));
    }

    #[test]
    fn a_lead_source_in_parts_is_used_as_is_and_no_raw_string_is_invented() {
        let mut d = draft("ignored");
        d.lead_source = None;
        d.parsed_source = Some(LeadSource {
            source: Source::AppSource,
            action: Some(ActionCode::Plt),
            offer: Some("contoso.crm".into()),
        });
        let lead = build(d).unwrap();
        assert_eq!(lead.lead_source_string(), "AppSource (SPZA)-PLT");
        assert_eq!(lead.raw_lead_source, None);
        assert_eq!(lead.stage.as_str(), "initial_interest");
    }

    #[test]
    fn an_oversized_field_is_refused_naming_it() {
        let mut d = draft("AzureMarketplace");
        d.customer.company = Some("x".repeat(MAX_FIELD_BYTES + 1));
        let err = build(d).unwrap_err();
        assert_eq!(err.field(), LeadField::Company);
        assert_eq!(err.to_string(), format!("is longer than {MAX_FIELD_BYTES} bytes"));
    }

    #[test]
    fn the_documented_test_lead_is_flagged() {
        let mut d = draft("MSFT_TEST_636573304831318844-MSFT_TEST_636573304831318844|Contoso Test");
        d.customer = crate::test_lead::test_customer(Timestamp::from_millis(0));
        assert!(build(d).unwrap().is_test);
    }

    #[test]
    fn edu_leads_are_kept_without_personal_data() {
        let mut d = draft("AzureMarketplace-INS|contoso.crm");
        d.customer = Customer::from_raw(
            Some("Ada".into()),
            Some("Lovelace".into()),
            Some("ada@Math.Uni.EDU.".into()),
            Some("123".into()),
            Some("UK".into()),
            Some("Uni".into()),
            Some("Prof".into()),
        );
        d.description = Some("call me".into());
        let lead = build(d).unwrap();
        assert!(lead.pii_withheld);
        assert_eq!(lead.customer, Customer { country: Some("UK".into()), ..Customer::default() });
        assert_eq!(lead.description, None);
        assert_eq!(lead.stage.as_str(), "active");
    }

    #[test]
    fn the_withheld_suffixes_are_configurable_and_match_whole_labels() {
        let rules = LeadRules { withheld_email_suffixes: vec!["ac.uk".into()], ..LeadRules::default() };
        let with = |e: &str| Customer { email: Some(e.into()), ..Customer::default() };
        assert!(rules.withholds(&with("a@ox.ac.uk")));
        assert!(!rules.withholds(&with("a@mac.uk")));
        assert!(!rules.withholds(&with("a@uni.edu")));
        assert!(LeadRules::default().withholds(&with("a@uni.edu")));
        assert!(!LeadRules::default().withholds(&with("a@education.com")));
    }

    #[test]
    fn lead_debug_output_has_no_personal_data() {
        let mut d = draft("AzureMarketplace-INS");
        d.customer.email = Some("someone@contoso.com".into());
        d.description = Some("call me at home".into());
        let out = format!("{:?}", build(d).unwrap());
        assert!(!out.contains("someone") && !out.contains("call me"), "{out}");
    }
}
