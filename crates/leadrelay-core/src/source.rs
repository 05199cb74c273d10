//! The marketplace's `LeadSource` string, `Source-Action|Offer`, and its parts.
//!
//! Parsing rule (reference §3.1): split on the first `|` (the right side is the offer part, an
//! offer id or name, which may itself contain `|`), then split the left side on the first `-`.
//! Every part is trimmed, unknown sources and action codes are kept, never refused.

use std::fmt;

/// Where the customer acted. Unknown values are kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// `AzureMarketplace`
    AzureMarketplace,
    /// `AzurePortal`
    AzurePortal,
    /// `AppSource (SPZA)`
    AppSource,
    /// `SPZA` (the 2018 acronym for AppSource)
    Spza,
    /// `TestDrive` (2018 docs only)
    TestDrive,
    /// Anything else, as received (trimmed).
    Other(String),
}

impl Source {
    /// Recognises a known source (case-insensitively); keeps anything else.
    pub fn parse(s: &str) -> Self {
        let s = s.trim();
        match s.to_ascii_lowercase().as_str() {
            "azuremarketplace" => Self::AzureMarketplace,
            "azureportal" => Self::AzurePortal,
            "appsource (spza)" | "appsource" => Self::AppSource,
            "spza" => Self::Spza,
            "testdrive" => Self::TestDrive,
            _ => Self::Other(s.to_owned()),
        }
    }

    /// The exact marketplace spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::AzureMarketplace => "AzureMarketplace",
            Self::AzurePortal => "AzurePortal",
            Self::AppSource => "AppSource (SPZA)",
            Self::Spza => "SPZA",
            Self::TestDrive => "TestDrive",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the customer did. Compared case-insensitively; unknown codes are kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ActionCode {
    /// `INS`: installation, Get It Now.
    Ins,
    /// `PLT`: partner-led trial, Contact me.
    Plt,
    /// `DNC`: do not contact (a cross-listed partner was asked).
    Dnc,
    /// `Create`: created or subscribed in the Azure portal.
    Create,
    /// `StartTestDrive`: started a test drive.
    StartTestDrive,
    /// `FreeTrial`: our documented extension; the marketplace never documented a code.
    FreeTrial,
    /// Anything else, as received (trimmed).
    Other(String),
}

impl ActionCode {
    /// Recognises a known code (case-insensitively); keeps anything else. `None` for blank.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        Some(match s.to_ascii_lowercase().as_str() {
            "ins" => Self::Ins,
            "plt" => Self::Plt,
            "dnc" => Self::Dnc,
            "create" => Self::Create,
            "starttestdrive" => Self::StartTestDrive,
            "freetrial" => Self::FreeTrial,
            _ => Self::Other(s.to_owned()),
        })
    }

    /// The marketplace spelling (`INS`, `Create`, `StartTestDrive`, …).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Ins => "INS",
            Self::Plt => "PLT",
            Self::Dnc => "DNC",
            Self::Create => "Create",
            Self::StartTestDrive => "StartTestDrive",
            Self::FreeTrial => "FreeTrial",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for ActionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed `LeadSource` string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadSource {
    /// The source part.
    pub source: Source,
    /// The action part, when the string had one.
    pub action: Option<ActionCode>,
    /// The offer part (an offer id or an offer name), when the string had one.
    pub offer: Option<String>,
}

/// Why a `LeadSource` string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeadSourceError {
    /// Nothing but whitespace before the `-` or `|`.
    #[error("has no source part (expected 'Source-Action|Offer', e.g. 'AzureMarketplace-INS|contoso.crm')")]
    MissingSource,
}

impl LeadSource {
    /// Parses `Source-Action|Offer`, `Source-Action`, `Source|Offer` or a bare `Source`,
    /// tolerating spaces around the separators.
    ///
    /// # Errors
    /// [`LeadSourceError::MissingSource`] when the source part is blank.
    pub fn parse(s: &str) -> Result<Self, LeadSourceError> {
        let (left, offer) = match s.split_once('|') {
            Some((l, r)) => (l, Some(r.trim()).filter(|r| !r.is_empty()).map(str::to_owned)),
            None => (s, None),
        };
        let (source, action) = match left.split_once('-') {
            Some((src, act)) => (src.trim(), ActionCode::parse(act)),
            None => (left.trim(), None),
        };
        if source.is_empty() {
            return Err(LeadSourceError::MissingSource);
        }
        Ok(Self { source: Source::parse(source), action, offer })
    }
}

impl fmt::Display for LeadSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.source.as_str())?;
        if let Some(action) = &self.action {
            write!(f, "-{action}")?;
        }
        if let Some(offer) = &self.offer {
            write!(f, "|{offer}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> LeadSource {
        LeadSource::parse(s).unwrap()
    }

    #[test]
    fn the_documented_full_form_parses() {
        let ls = parse("AzureMarketplace-INS|checkpoint.check-point-r77-10sg-byol");
        assert_eq!(ls.source, Source::AzureMarketplace);
        assert_eq!(ls.action, Some(ActionCode::Ins));
        assert_eq!(ls.offer.as_deref(), Some("checkpoint.check-point-r77-10sg-byol"));
    }

    #[test]
    fn the_markdown_spaced_form_parses_like_the_compact_one() {
        assert_eq!(
            parse("AppSource (SPZA)-PLT | bitnami.openedxcypress"),
            parse("AppSource (SPZA)-PLT|bitnami.openedxcypress")
        );
        assert_eq!(parse("AppSource (SPZA)-PLT | x").source, Source::AppSource);
    }

    #[test]
    fn a_bare_source_has_no_action_or_offer() {
        let ls = parse("AzureMarketplace");
        assert_eq!((ls.source, ls.action, ls.offer), (Source::AzureMarketplace, None, None));
        assert_eq!(parse("SPZA").source, Source::Spza);
        assert_eq!(parse("TestDrive").source, Source::TestDrive);
        assert_eq!(parse("AzurePortal-Create").action, Some(ActionCode::Create));
    }

    #[test]
    fn the_test_lead_form_keeps_its_markers_and_offer_name() {
        let ls = parse("MSFT_TEST_636573304831318844-MSFT_TEST_636573304831318844|Contoso Test | Edition");
        assert_eq!(ls.source, Source::Other("MSFT_TEST_636573304831318844".into()));
        assert_eq!(ls.action, Some(ActionCode::Other("MSFT_TEST_636573304831318844".into())));
        assert_eq!(ls.offer.as_deref(), Some("Contoso Test | Edition"));
    }

    #[test]
    fn the_pipe_is_split_before_the_hyphen_so_offer_ids_keep_their_hyphens() {
        let ls = parse("AzurePortal-StartTestDrive|docusign.3701c77e-1cfa-4c56-91e6-3ed0b622145a");
        assert_eq!(ls.action, Some(ActionCode::StartTestDrive));
        assert_eq!(ls.offer.as_deref(), Some("docusign.3701c77e-1cfa-4c56-91e6-3ed0b622145a"));
    }

    #[test]
    fn free_text_sources_from_2018_are_kept() {
        let ls = parse("Test run through MS Flow");
        assert_eq!(ls.source, Source::Other("Test run through MS Flow".into()));
    }

    #[test]
    fn unknown_codes_are_kept_and_known_ones_match_any_case() {
        assert_eq!(ActionCode::parse("ins"), Some(ActionCode::Ins));
        assert_eq!(ActionCode::parse("starttestdrive"), Some(ActionCode::StartTestDrive));
        assert_eq!(ActionCode::parse("Uninstall"), Some(ActionCode::Other("Uninstall".into())));
        assert_eq!(ActionCode::parse("  "), None);
    }

    #[test]
    fn a_blank_source_is_refused() {
        assert_eq!(LeadSource::parse(" -INS|x"), Err(LeadSourceError::MissingSource));
        assert_eq!(LeadSource::parse(""), Err(LeadSourceError::MissingSource));
    }

    #[test]
    fn formatting_gives_the_compact_marketplace_form() {
        assert_eq!(parse("AppSource (SPZA) - PLT | contoso.crm").to_string(), "AppSource (SPZA)-PLT|contoso.crm");
        assert_eq!(parse("AzureMarketplace").to_string(), "AzureMarketplace");
    }

    fn part(no: &'static str) -> impl Strategy<Value = String> {
        proptest::string::string_regex("[A-Za-z0-9_() .]{1,20}")
            .unwrap()
            .prop_map(|s| s.trim().to_owned())
            .prop_filter(no, |s| !s.is_empty())
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,80}") {
            let _ = LeadSource::parse(&s);
        }

        #[test]
        fn format_then_parse_gives_back_the_same_value(
            source in part("empty source"),
            action in proptest::option::of(part("empty action")),
            offer in proptest::option::of(proptest::string::string_regex("[A-Za-z0-9_.| -]{0,30}").unwrap()
                .prop_map(|s| s.trim().to_owned()).prop_filter("empty offer", |s| !s.is_empty())),
        ) {
            let value = LeadSource {
                source: Source::parse(&source),
                action: action.as_deref().and_then(ActionCode::parse),
                offer,
            };
            prop_assert_eq!(LeadSource::parse(&value.to_string()).unwrap(), value);
        }

        #[test]
        fn parsing_is_stable_after_one_round(s in "[A-Za-z ()_|.-]{1,40}") {
            if let Ok(once) = LeadSource::parse(&s) {
                let twice = LeadSource::parse(&once.to_string()).unwrap();
                prop_assert_eq!(twice, once);
            }
        }
    }
}
