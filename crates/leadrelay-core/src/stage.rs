//! The funnel stage of a lead, derived from its action code through a configurable table.
//! The marketplace swapped the meaning of Contact me and Get it now between 2018 and 2019, so
//! the mapping is data, never code.

use std::collections::HashMap;
use std::fmt;

use crate::source::ActionCode;

/// A stage name such as `initial_interest`: 1–40 of `a-z 0-9 _`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Stage(String);

impl Stage {
    /// The stage of a lead whose action code has no entry in the table.
    pub const UNCLASSIFIED: &'static str = "unclassified";

    /// Checks the name rule.
    ///
    /// # Errors
    /// Returns the rule when `s` breaks it.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if !s.is_empty()
            && s.len() <= 40
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            Ok(Self(s.to_owned()))
        } else {
            Err("must be 1-40 characters of lowercase letters, digits and '_'")
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Action code → stage. Keys compare case-insensitively, as action codes do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageTable {
    by_action: HashMap<String, Stage>,
}

impl Default for StageTable {
    /// SPEC §1: PLT initial interest; INS and Create active; test drive and free trial trial;
    /// DNC do-not-contact (informational only).
    fn default() -> Self {
        let pairs = [
            ("PLT", "initial_interest"),
            ("INS", "active"),
            ("Create", "active"),
            ("StartTestDrive", "trial"),
            ("FreeTrial", "trial"),
            ("DNC", "do_not_contact"),
        ];
        Self::from_pairs(pairs.iter().map(|(a, s)| (a.to_string(), s.to_string())))
            .expect("default stage table is valid")
    }
}

impl StageTable {
    /// Builds a table from `(action code, stage name)` pairs, as configuration gives them.
    ///
    /// # Errors
    /// Names the first pair whose stage name is invalid or whose action code is blank.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Self, String> {
        let mut by_action = HashMap::new();
        for (action, stage) in pairs {
            if action.trim().is_empty() {
                return Err("an action code in the stage table is blank".to_owned());
            }
            let stage = Stage::parse(&stage).map_err(|rule| format!("stage for action '{action}' {rule}"))?;
            by_action.insert(action.trim().to_ascii_lowercase(), stage);
        }
        Ok(Self { by_action })
    }

    /// The stage for an action code (`unclassified` when the code is absent or unknown).
    pub fn stage_for(&self, action: Option<&ActionCode>) -> Stage {
        action
            .and_then(|a| self.by_action.get(&a.as_str().to_ascii_lowercase()))
            .cloned()
            .unwrap_or_else(|| Stage(Stage::UNCLASSIFIED.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_table_follows_the_spec() {
        let t = StageTable::default();
        let stage = |code: &str| t.stage_for(ActionCode::parse(code).as_ref()).to_string();
        assert_eq!(stage("PLT"), "initial_interest");
        assert_eq!(stage("INS"), "active");
        assert_eq!(stage("Create"), "active");
        assert_eq!(stage("StartTestDrive"), "trial");
        assert_eq!(stage("FreeTrial"), "trial");
        assert_eq!(stage("DNC"), "do_not_contact");
        assert_eq!(stage("ins"), "active");
        assert_eq!(stage("Uninstall"), "unclassified");
        assert_eq!(t.stage_for(None).to_string(), "unclassified");
    }

    #[test]
    fn the_2018_meaning_can_be_configured() {
        let t = StageTable::from_pairs([("INS".into(), "initial_interest".into()), ("PLT".into(), "active".into())])
            .unwrap();
        assert_eq!(t.stage_for(Some(&ActionCode::Ins)).as_str(), "initial_interest");
    }

    #[test]
    fn a_bad_stage_name_is_reported_with_its_action() {
        let err = StageTable::from_pairs([("INS".into(), "Active Stage".into())]).unwrap_err();
        assert!(err.contains("INS"), "{err}");
    }
}
