//! The customer carried by a lead: raw values for delivery, normalised values for matching.
//! `Debug` is written by hand so that a stray `?customer` in a log line prints no personal data.

use std::fmt;

/// The seven customer fields of the marketplace, every one optional. Empty strings mean absent.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Customer {
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Email as received.
    pub email: Option<String>,
    /// Phone as received (free text).
    pub phone: Option<String>,
    /// Country as received (free text: `US`, `USA`, `United States`).
    pub country: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Job title.
    pub title: Option<String>,
}

impl fmt::Debug for Customer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let present = |v: &Option<String>| if v.is_some() { "<redacted>" } else { "<none>" };
        f.debug_struct("Customer")
            .field("first_name", &present(&self.first_name))
            .field("last_name", &present(&self.last_name))
            .field("email", &present(&self.email))
            .field("phone", &present(&self.phone))
            .field("country", &self.country_code())
            .field("company", &present(&self.company))
            .field("title", &present(&self.title))
            .finish()
    }
}

/// A raw value as received; only the empty string means absent (the marketplace sends `""` for
/// a field it has no value for). Nothing is trimmed: `" "` and `"Campaigns: "` reach
/// destinations exactly so. Matching normalises on its own (see [`Customer::match_key`]).
pub fn present(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

impl Customer {
    /// Builds a customer from raw values, kept exactly as received (empty strings are absent).
    pub fn from_raw(
        first_name: Option<String>,
        last_name: Option<String>,
        email: Option<String>,
        phone: Option<String>,
        country: Option<String>,
        company: Option<String>,
        title: Option<String>,
    ) -> Self {
        Self {
            first_name: present(first_name),
            last_name: present(last_name),
            email: present(email),
            phone: present(phone),
            country: present(country),
            company: present(company),
            title: present(title),
        }
    }

    /// The email lowercased, for matching; `None` when absent or not shaped like an address.
    pub fn normalized_email(&self) -> Option<String> {
        let e = self.email.as_deref()?.trim().to_lowercase();
        is_email_shaped(&e).then_some(e)
    }

    /// The phone's digits only, for matching.
    pub fn normalized_phone(&self) -> Option<String> {
        let digits: String = self.phone.as_deref()?.chars().filter(char::is_ascii_digit).collect();
        (!digits.is_empty()).then_some(digits)
    }

    /// The ISO 3166-1 alpha-2 code when the free-text country is recognisable (`US`, `USA`,
    /// `United States of America`).
    pub fn country_code(&self) -> Option<&'static str> {
        let c = self.country.as_deref()?.trim();
        use std::str::FromStr;
        celes::Country::from_str(c).ok().map(|c| c.alpha2)
    }

    /// The email's domain, lowercased, without a trailing dot.
    pub fn email_domain(&self) -> Option<String> {
        let e = self.email.as_deref()?.trim();
        let (_, domain) = e.rsplit_once('@')?;
        let d = domain.trim().trim_end_matches('.').to_lowercase();
        (!d.is_empty()).then_some(d)
    }

    /// Whether the email, with surrounding spaces ignored, is shaped like an address (absent
    /// counts as shaped: there is nothing to refuse).
    pub fn email_is_shaped(&self) -> bool {
        self.email.as_deref().is_none_or(|e| is_email_shaped(e.trim()))
    }

    /// Whether every field is absent.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What identifies a customer across leads, and why two leads matched.
#[derive(Clone, PartialEq, Eq)]
pub enum MatchKey {
    /// The normalised email.
    Email(String),
    /// Normalised first + last name, company and phone digits, when there is no email.
    NameCompanyPhone(String),
}

impl MatchKey {
    /// Why leads with this key were merged, for the timeline.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Email(_) => "same email address",
            Self::NameCompanyPhone(_) => "same name, company and phone (no email)",
        }
    }
}

impl fmt::Debug for MatchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

fn fold(s: &Option<String>) -> Option<String> {
    let folded = s.as_deref()?.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    (!folded.is_empty()).then_some(folded)
}

impl Customer {
    /// The customer identity of these details (SPEC §5): the normalised email; else name,
    /// company and phone when all are present; else none (the lead stands alone).
    pub fn match_key(&self) -> Option<MatchKey> {
        if let Some(email) = self.normalized_email() {
            return Some(MatchKey::Email(email));
        }
        let (first, last, company, phone) =
            (fold(&self.first_name)?, fold(&self.last_name)?, fold(&self.company)?, self.normalized_phone()?);
        Some(MatchKey::NameCompanyPhone(format!("{first} {last}|{company}|{phone}")))
    }
}

/// A deliberately loose address check: one `@`, a non-empty local part, a dotted domain, no
/// spaces. The marketplace validated the address; we only catch obvious garbage.
pub fn is_email_shaped(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else { return false };
    !local.is_empty()
        && !local.contains('@')
        && domain.len() >= 3
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with("..")
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && s.len() <= 254
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(email: &str, phone: &str, country: &str) -> Customer {
        Customer::from_raw(None, None, Some(email.into()), Some(phone.into()), Some(country.into()), None, None)
    }

    #[test]
    fn values_are_normalised_for_matching_and_kept_raw_for_delivery() {
        let c = with("  JSmith@Microsoft.com ", "+1 (617) 555-5555", "USA");
        assert_eq!(c.email.as_deref(), Some("  JSmith@Microsoft.com "), "kept exactly as received");
        assert!(c.email_is_shaped());
        assert_eq!(c.normalized_email().as_deref(), Some("jsmith@microsoft.com"));
        assert_eq!(c.normalized_phone().as_deref(), Some("16175555555"));
        assert_eq!(c.country.as_deref(), Some("USA"));
        assert_eq!(c.country_code(), Some("US"));
        assert_eq!(with("a@b.co", "", "US").country_code(), Some("US"));
        assert_eq!(with("a@b.co", "", "Brazil").country_code(), Some("BR"));
        assert_eq!(with("a@b.co", "", "Atlantis").country_code(), None);
    }

    #[test]
    fn only_empty_values_are_absent_and_spaces_are_kept() {
        let c = Customer::from_raw(Some("".into()), None, None, None, None, None, None);
        assert!(c.is_empty());
        let c = Customer::from_raw(Some(" ".into()), Some("One ".into()), None, None, None, None, None);
        assert_eq!((c.first_name.as_deref(), c.last_name.as_deref()), (Some(" "), Some("One ")));
        assert_eq!(c.match_key(), None, "blank names never match anything");
    }

    #[test]
    fn debug_output_redacts_personal_data() {
        let c = with("someone@contoso.com", "16175555555", "USA");
        let out = format!("{c:?}");
        assert!(!out.contains("someone") && !out.contains("1617"), "{out}");
    }

    #[test]
    fn customers_match_on_email_else_on_name_company_and_phone() {
        let a = with(" Someone@Contoso.com", "", "");
        let b = with("someone@contoso.com", "999", "US");
        assert_eq!(a.match_key(), b.match_key());
        let ncp = |first: &str, company: &str, phone: &str| Customer {
            first_name: Some(first.into()),
            last_name: Some("One".into()),
            company: Some(company.into()),
            phone: Some(phone.into()),
            ..Customer::default()
        };
        assert_eq!(ncp("Some", "Contoso", "+1 617").match_key(), ncp("  some ", "CONTOSO", "1617").match_key());
        assert_ne!(ncp("Some", "Contoso", "1617").match_key(), ncp("Other", "Contoso", "1617").match_key());
        assert_eq!(Customer { phone: None, ..ncp("Some", "Contoso", "1") }.match_key(), None);
        assert!(!format!("{:?}", a.match_key().unwrap()).contains("someone"));
    }

    #[test]
    fn email_shapes() {
        assert!(is_email_shaped("MSFT_TEST_636573304831318844@test.com"));
        assert!(!is_email_shaped("no-at-sign"));
        assert!(!is_email_shaped("a@b"));
        assert!(!is_email_shaped("a b@c.com"));
        assert_eq!(with("x@Uni.EDU.", "", "").email_domain().as_deref(), Some("uni.edu"));
    }
}
