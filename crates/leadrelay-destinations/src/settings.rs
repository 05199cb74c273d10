//! Typed settings. Each kind declares its settings as one `serde` struct with
//! `#[serde(deny_unknown_fields)]`; [`parse`] reads a JSON object into it and reports every
//! wrong field at once, under `settings.<field>`, without echoing a value (settings hold
//! secrets). The kind then checks meaning (`check`) and gets a typed configuration. Create,
//! Validate and the worker all go through the same parse and check, so a setting means the
//! same thing everywhere, and stored settings that no longer pass are refused, not guessed at.

use std::borrow::Cow;

use leadrelay_core::destination::{DestinationError, FieldError};
use serde::de::{self, DeserializeOwned, Visitor};

/// A kind's settings struct.
pub(crate) trait KindSettings: DeserializeOwned + serde::Serialize {
    /// What the settings object holds, for the error when `settings` is not an object.
    const SHAPE: &'static str;

    /// The rule a field breaks when its value has the wrong JSON type.
    fn type_rule(field: &str) -> Cow<'static, str> {
        let _ = field;
        Cow::Borrowed("must be a string")
    }

    /// The rule for a key the kind no longer takes, when it deserves more than "unknown".
    fn retired_field(field: &str) -> Option<&'static str> {
        let _ = field;
        None
    }
}

/// Field errors, one per field: the first rule a field breaks is the one reported.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<FieldError>);

impl Problems {
    /// Records that `field` breaks `rule`, unless the field already has a problem.
    pub(crate) fn add(&mut self, field: &str, rule: impl Into<String>) {
        let path = format!("settings.{field}");
        if !self.0.iter().any(|e| e.path == path) {
            self.0.push(FieldError::new(path, rule));
        }
    }

    /// Whether there is any problem.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `value`, or every problem found.
    pub(crate) fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, Vec<FieldError>> {
        if self.0.is_empty() { Ok(value()) } else { Err(self.0) }
    }
}

/// Reads `settings` into `T`. Unknown keys and values of the wrong type are recorded in the
/// returned [`Problems`] (the field is then absent from `T`), so that the kind's own checks can
/// add theirs and the publisher sees every problem in one answer.
///
/// # Errors
/// When `settings` is not an object.
pub(crate) fn parse<T: KindSettings>(
    kind: &str,
    settings: &serde_json::Value,
) -> Result<(T, Problems), Vec<FieldError>> {
    let Some(map) = settings.as_object() else {
        return Err(vec![FieldError::new("settings", T::SHAPE)]);
    };
    let fields = field_names::<T>();
    let mut problems = Problems::default();
    let mut good = serde_json::Map::new();
    for (key, value) in map {
        if !fields.contains(&key.as_str()) {
            let rule = T::retired_field(key).map_or_else(
                || format!("is not a setting of {kind} destinations (expected {})", fields.join(", ")),
                str::to_owned,
            );
            problems.add(key, rule);
            continue;
        }
        let alone = serde_json::Value::Object(std::iter::once((key.clone(), value.clone())).collect());
        if T::deserialize(&alone).is_err() {
            problems.add(key, T::type_rule(key));
            continue;
        }
        good.insert(key.clone(), value.clone());
    }
    // Every field is optional (absence is the kind's `is required` rule), so this holds.
    let parsed =
        T::deserialize(&serde_json::Value::Object(good)).map_err(|_| vec![FieldError::new("settings", T::SHAPE)])?;
    Ok((parsed, problems))
}

/// Serialises checked settings for storage.
pub(crate) fn to_stored<T: KindSettings>(settings: &T) -> serde_json::Value {
    serde_json::to_value(settings).expect("settings structs always serialise")
}

/// The worker's and Validate's answer for stored settings that no longer pass the kind's checks
/// (written by an older version, or checked under a switch that is now off).
pub(crate) fn stored_error(errors: Vec<FieldError>) -> DestinationError {
    let problems: Vec<String> = errors.iter().map(|e| format!("{} {}", e.path, e.message)).collect();
    DestinationError::permanent(format!("the stored settings are not valid: {}", problems.join("; ")))
        .with_hint("create the destination again with valid settings, then replay its dead letters to it")
}

/// The field names of a settings struct, as serde knows them: `deserialize_struct` is handed
/// them, so a deserializer that only listens for that call learns them without a second list
/// to keep in step.
fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Listen(Option<&'static [&'static str]>);
    #[derive(Debug)]
    struct Heard;
    impl std::fmt::Display for Heard {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("field names heard")
        }
    }
    impl std::error::Error for Heard {}
    impl de::Error for Heard {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Heard
        }
    }
    impl<'de> de::Deserializer<'de> for &mut Listen {
        type Error = Heard;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Heard> {
            Err(Heard)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Heard> {
            self.0 = Some(fields);
            Err(Heard)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut listen = Listen(None);
    let _ = T::deserialize(&mut listen);
    listen.0.expect("settings types are structs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, serde::Serialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        name: Option<String>,
        port: Option<u16>,
    }

    impl KindSettings for Sample {
        const SHAPE: &'static str = "must be an object with name";
        fn type_rule(field: &str) -> Cow<'static, str> {
            match field {
                "port" => "must be a port number".into(),
                _ => "must be a string".into(),
            }
        }
    }

    #[test]
    fn every_unknown_key_and_wrong_type_is_reported_once_without_the_value() {
        let v = serde_json::json!({"name": 7, "port": "s3cret", "extra": 1, "other": null});
        let (parsed, problems) = parse::<Sample>("sample", &v).unwrap();
        assert!(parsed.name.is_none() && parsed.port.is_none());
        let errors = problems.finish(|| ()).unwrap_err();
        let got: Vec<(&str, &str)> = errors.iter().map(|e| (e.path.as_str(), e.message.as_str())).collect();
        assert_eq!(
            got,
            [
                ("settings.extra", "is not a setting of sample destinations (expected name, port)"),
                ("settings.name", "must be a string"),
                ("settings.other", "is not a setting of sample destinations (expected name, port)"),
                ("settings.port", "must be a port number"),
            ]
        );
        assert!(!format!("{errors:?}").contains("s3cret"));
    }

    #[test]
    fn good_settings_parse_and_a_non_object_is_refused_whole() {
        let (parsed, problems) = parse::<Sample>("sample", &serde_json::json!({"name": "x", "port": 25})).unwrap();
        assert!(problems.is_empty());
        assert_eq!((parsed.name.as_deref(), parsed.port), (Some("x"), Some(25)));
        let err = parse::<Sample>("sample", &serde_json::json!([1])).unwrap_err();
        assert_eq!((err[0].path.as_str(), err[0].message.as_str()), ("settings", "must be an object with name"));
        assert_eq!(field_names::<Sample>(), ["name", "port"]);
    }
}
