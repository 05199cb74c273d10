//! Time as the domain sees it: millisecond Unix timestamps from an injected [`Clock`], so that
//! tests move time instead of sleeping and SQL never computes a date.

use std::fmt;
use std::time::Duration;

/// Milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Wraps a millisecond count.
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// The millisecond count.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Whole seconds, rounded down (for `webhook-timestamp`).
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// This instant moved forward by `d` (saturating).
    pub fn plus(self, d: Duration) -> Self {
        Self(self.0.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }

    /// This instant moved back by `d` (saturating).
    pub fn minus(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }

    /// Time from `earlier` to `self`; zero when `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(self.0 - earlier.0).unwrap_or(0))
    }

    /// RFC 3339 text with millisecond precision, e.g. `2026-11-23T19:51:02.123Z`.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(t) => {
                let fmt = time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
                );
                t.format(&fmt).unwrap_or_else(|_| self.0.to_string())
            }
            Err(_) => self.0.to_string(),
        }
    }

    /// Parses RFC 3339 (`2026-11-23T19:51:02Z`, any offset) or a plain date (`2026-11-23`,
    /// meaning midnight UTC).
    ///
    /// # Errors
    /// Returns a message describing the accepted forms when `s` is neither.
    pub fn parse_rfc3339(s: &str) -> Result<Self, &'static str> {
        const EXPECTED: &str = "expected an RFC 3339 time such as 2026-11-23T10:00:00Z or a date such as 2026-11-23";
        let s = s.trim();
        if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
            return Ok(Self((t.unix_timestamp_nanos() / 1_000_000) as i64));
        }
        let date_fmt = time::macros::format_description!("[year]-[month]-[day]");
        match time::Date::parse(s, &date_fmt) {
            Ok(d) => Ok(Self(d.midnight().assume_utc().unix_timestamp() * 1000)),
            Err(_) => Err(EXPECTED),
        }
    }

    /// The UTC calendar date `(year, month, day)`.
    pub fn date(self) -> (i32, u8, u8) {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        (t.year(), u8::from(t.month()), t.day())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Where "now" comes from. Production uses [`SystemClock`]; tests use a manual clock.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_at_millisecond_precision() {
        let t = Timestamp::from_millis(1_795_462_262_123);
        assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Ok(t));
    }

    #[test]
    fn a_plain_date_means_midnight_utc() {
        let t = Timestamp::parse_rfc3339("2026-11-23").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-23T00:00:00.000Z");
        assert_eq!(t.date(), (2026, 11, 23));
    }

    #[test]
    fn offsets_are_converted_to_utc() {
        let t = Timestamp::parse_rfc3339("2026-11-23T10:00:00+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-23T08:00:00.000Z");
    }

    #[test]
    fn garbage_is_refused_with_the_accepted_forms() {
        assert!(Timestamp::parse_rfc3339("yesterday").unwrap_err().contains("RFC 3339"));
    }
}
