//! Test leads: recognising the marketplace's `MSFT_TEST_<ticks>` marker, and making our own in
//! the marketplace's test format for Validate and Publish.

use crate::clock::Timestamp;
use crate::customer::Customer;

/// The marker every test lead carries.
pub const MARKER: &str = "MSFT_TEST_";

/// Whether a value starts with the test marker (case-insensitive).
pub fn is_marked(value: &str) -> bool {
    let v = value.trim_start().as_bytes();
    v.len() >= MARKER.len() && v[..MARKER.len()].eq_ignore_ascii_case(MARKER.as_bytes())
}

/// Recognition rule (reference §11.3): any of first name, last name, company, title,
/// description or the email's local part starts with the marker, or the source or action part
/// of the `LeadSource` does.
pub fn looks_like_test_lead(
    customer: &Customer,
    description: Option<&str>,
    source: &str,
    action: Option<&str>,
) -> bool {
    let fields = [
        customer.first_name.as_deref(),
        customer.last_name.as_deref(),
        customer.company.as_deref(),
        customer.title.as_deref(),
        customer.email.as_deref(),
        description,
        Some(source),
        action,
    ];
    fields.into_iter().flatten().any(is_marked)
}

/// .NET `DateTime.Ticks` for an instant: 100-ns units since 0001-01-01, as the marketplace's
/// test leads use (`636573304831318844` is 2018-03-22 15:48:03 UTC).
pub fn dotnet_ticks(at: Timestamp) -> i64 {
    const UNIX_EPOCH_TICKS: i64 = 621_355_968_000_000_000;
    UNIX_EPOCH_TICKS + at.as_millis() * 10_000
}

/// The marker value for an instant, `MSFT_TEST_<ticks>`.
pub fn marker_at(at: Timestamp) -> String {
    format!("{MARKER}{}", dotnet_ticks(at))
}

/// The customer of a test lead: every text field the marker, email `<marker>@test.com`, phone
/// `1234567890`, country `US`.
pub fn test_customer(at: Timestamp) -> Customer {
    let m = marker_at(at);
    Customer {
        first_name: Some(m.clone()),
        last_name: Some(m.clone()),
        email: Some(format!("{m}@test.com")),
        phone: Some("1234567890".to_owned()),
        country: Some("US".to_owned()),
        company: Some(m.clone()),
        title: Some(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_match_the_documented_test_lead() {
        // 636573304831318844 decodes to 2018-03-22 15:48:03.1318844 UTC.
        let at = Timestamp::parse_rfc3339("2018-03-22T15:48:03.131Z").unwrap();
        assert_eq!(dotnet_ticks(at), 636_573_304_831_310_000);
        assert_eq!(marker_at(at).len(), "MSFT_TEST_636573304831318844".len());
    }

    #[test]
    fn the_documented_test_lead_is_recognised() {
        let c = test_customer(Timestamp::from_millis(0));
        assert!(looks_like_test_lead(&c, None, "AzureMarketplace", Some("INS")));
        let only_source = Customer::default();
        assert!(looks_like_test_lead(&only_source, None, "MSFT_TEST_636573304831318844", None));
        assert!(looks_like_test_lead(&only_source, Some("msft_test_1"), "AzureMarketplace", None));
    }

    #[test]
    fn an_ordinary_lead_is_not_a_test_lead() {
        let c = Customer {
            email: Some("someone@contoso.com".into()),
            first_name: Some("Some".into()),
            ..Customer::default()
        };
        assert!(!looks_like_test_lead(&c, Some("Test run through Power Automate"), "AzureMarketplace", Some("INS")));
    }
}
