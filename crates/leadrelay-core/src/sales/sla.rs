//! When the first touch of an opportunity is due: a number of hours after it opens, counted
//! around the clock or, with business hours, only inside the working hours of the publisher's
//! time zone (daylight-saving changes included).

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp as Instant, Zoned};

use crate::clock::Timestamp;
use crate::sales::settings::{BusinessHours, SalesSettings};

/// The time zone of an IANA name (`UTC` included), from the database embedded in the binary,
/// so a server's own zone files cannot change the answer.
pub fn time_zone(name: &str) -> Option<TimeZone> {
    if name.is_empty() || name.len() > 64 {
        return None;
    }
    TimeZone::get(name).ok()
}

/// The first-touch due time of an opportunity opened at `opened`.
pub fn first_touch_due(opened: Timestamp, settings: &SalesSettings) -> Timestamp {
    let hours = i64::from(settings.first_touch_sla_hours);
    match (&settings.business_hours, time_zone(&settings.time_zone)) {
        (Some(hours_of_work), Some(tz)) => add_working_minutes(opened, hours * 60, hours_of_work, &tz),
        _ => Timestamp::from_millis(opened.as_millis().saturating_add(hours * 3_600_000)),
    }
}

/// The end of the calendar day holding `now` in the named time zone (UTC when unknown): the
/// bound of "due today".
pub fn end_of_day(now: Timestamp, zone: &str) -> Timestamp {
    let tz = time_zone(zone).unwrap_or(TimeZone::UTC);
    let fallback = Timestamp::from_millis(now.as_millis() - now.as_millis().rem_euclid(86_400_000) + 86_400_000);
    let Ok(instant) = Instant::from_millisecond(now.as_millis()) else { return fallback };
    let date = instant.to_zoned(tz.clone()).date();
    date.tomorrow()
        .ok()
        .and_then(|d| at_minute(d, 0, &tz))
        .map_or(fallback, |midnight| Timestamp::from_millis(midnight.as_millisecond()))
}

/// `at` as a person in the named zone reads it (`2026-12-01 14:05`; UTC when the zone is
/// unknown).
pub fn local_text(at: Timestamp, zone: &str) -> String {
    let tz = time_zone(zone).unwrap_or(TimeZone::UTC);
    match Instant::from_millisecond(at.as_millis()) {
        Ok(instant) => instant.to_zoned(tz).strftime("%Y-%m-%d %H:%M").to_string(),
        Err(_) => at.to_rfc3339(),
    }
}

/// `at` as the value of a browser's `datetime-local` control in the named zone
/// (`2026-12-01T14:05`).
pub fn local_input(at: Timestamp, zone: &str) -> String {
    local_text(at, zone).replacen(' ', "T", 1)
}

/// A time a person entered in the named zone: `2026-12-01T14:05` (a `datetime-local` control),
/// with seconds or a space instead of `T` too. A time that a daylight-saving change skips is
/// taken as the later one. `None` when it is not such a time.
pub fn parse_local(text: &str, zone: &str) -> Option<Timestamp> {
    let tz = time_zone(zone).unwrap_or(TimeZone::UTC);
    let text = text.trim().replacen(' ', "T", 1);
    let civil: jiff::civil::DateTime = text.parse().ok()?;
    let zoned = civil.to_zoned(tz).ok()?;
    Some(Timestamp::from_millis(zoned.timestamp().as_millisecond()))
}

/// `opened` plus `minutes` of working time. Gives up after ten years of calendar (settings are
/// checked to have at least one working day, so that never happens) and then counts around the
/// clock.
fn add_working_minutes(opened: Timestamp, minutes: i64, hours: &BusinessHours, tz: &TimeZone) -> Timestamp {
    let fallback = Timestamp::from_millis(opened.as_millis().saturating_add(minutes * 60_000));
    let Ok(start) = Instant::from_millisecond(opened.as_millis()) else { return fallback };
    let now = start.to_zoned(tz.clone());
    let mut date: Date = now.date();
    let mut cursor: Instant = start;
    let mut left_ms = minutes * 60_000;
    for _ in 0..3660 {
        let weekday = date.weekday().to_monday_one_offset();
        let day_is_working = u8::try_from(weekday).is_ok_and(|d| hours.days.contains(&d));
        if day_is_working
            && let (Some(open), Some(close)) =
                (at_minute(date, hours.start_minute, tz), at_minute(date, hours.end_minute, tz))
        {
            let from = cursor.max(open);
            if from < close {
                let available = close.as_millisecond() - from.as_millisecond();
                if left_ms <= available {
                    return Timestamp::from_millis(from.as_millisecond() + left_ms);
                }
                left_ms -= available;
            }
        }
        let Ok(next) = date.tomorrow() else { return fallback };
        date = next;
        if let Some(midnight) = at_minute(date, 0, tz) {
            cursor = cursor.max(midnight);
        }
    }
    fallback
}

/// The instant of `minute` minutes after midnight on `date` in `tz` (a local time skipped by a
/// daylight-saving change resolves to the instant after the gap).
fn at_minute(date: Date, minute: u16, tz: &TimeZone) -> Option<Instant> {
    let zoned: Zoned = if minute >= 24 * 60 {
        date.tomorrow().ok()?.to_zoned(tz.clone()).ok()?
    } else {
        let time = Time::new(i8::try_from(minute / 60).ok()?, i8::try_from(minute % 60).ok()?, 0, 0).ok()?;
        date.to_datetime(time).to_zoned(tz.clone()).ok()?
    };
    Some(zoned.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    fn weekdays_9_to_17(tz: &str) -> SalesSettings {
        SalesSettings {
            time_zone: tz.into(),
            business_hours: Some(BusinessHours {
                days: vec![1, 2, 3, 4, 5],
                start_minute: 9 * 60,
                end_minute: 17 * 60,
            }),
            ..SalesSettings::default()
        }
    }

    #[test]
    fn around_the_clock_it_is_a_plain_sum() {
        let s = SalesSettings::default();
        assert_eq!(first_touch_due(at("2026-12-04T18:00:00Z"), &s), at("2026-12-05T18:00:00Z"));
    }

    #[test]
    fn business_hours_skip_nights_and_weekends() {
        let mut s = weekdays_9_to_17("UTC");
        s.first_touch_sla_hours = 8;
        // Friday 16:00: one hour on Friday, seven on Monday.
        assert_eq!(first_touch_due(at("2026-12-04T16:00:00Z"), &s), at("2026-12-07T16:00:00Z"));
        // Saturday: the clock starts on Monday at 9.
        assert_eq!(first_touch_due(at("2026-12-05T10:00:00Z"), &s), at("2026-12-07T17:00:00Z"));
        // 24 working hours from Monday 9:00 end on Wednesday 17:00.
        s.first_touch_sla_hours = 24;
        assert_eq!(first_touch_due(at("2026-12-07T09:00:00Z"), &s), at("2026-12-09T17:00:00Z"));
    }

    #[test]
    fn the_time_zone_and_its_daylight_saving_change_count() {
        let mut s = weekdays_9_to_17("America/Sao_Paulo");
        s.first_touch_sla_hours = 1;
        // 12:30 UTC is 09:30 in São Paulo (UTC-3): due at 10:30 local.
        assert_eq!(first_touch_due(at("2026-12-07T12:30:00Z"), &s), at("2026-12-07T13:30:00Z"));
        let mut s = weekdays_9_to_17("Europe/Lisbon");
        s.first_touch_sla_hours = 2;
        // Lisbon moves to summer time on Sunday 2026-03-29; Friday 16:00 local (UTC+0) + 2 h:
        // one hour on Friday, one on Monday from 09:00 local, which is 08:00 UTC.
        assert_eq!(first_touch_due(at("2026-03-27T16:00:00Z"), &s), at("2026-03-30T09:00:00Z"));
    }

    #[test]
    fn today_ends_at_the_next_local_midnight() {
        assert_eq!(end_of_day(at("2026-12-07T12:30:00Z"), "UTC"), at("2026-12-08T00:00:00Z"));
        assert_eq!(end_of_day(at("2026-12-07T12:30:00Z"), "America/Sao_Paulo"), at("2026-12-08T03:00:00Z"));
        assert_eq!(end_of_day(at("2026-12-08T02:00:00Z"), "America/Sao_Paulo"), at("2026-12-08T03:00:00Z"));
    }

    #[test]
    fn local_times_are_read_and_written_in_the_zone() {
        let t = at("2026-07-01T13:05:00Z");
        assert_eq!(local_text(t, "Europe/Lisbon"), "2026-07-01 14:05");
        assert_eq!(local_input(t, "Europe/Lisbon"), "2026-07-01T14:05");
        assert_eq!(parse_local("2026-07-01T14:05", "Europe/Lisbon"), Some(t));
        assert_eq!(parse_local("2026-07-01 13:05:00", "no/such-zone"), Some(t), "UTC when unknown");
        assert_eq!(parse_local("tomorrow", "UTC"), None);
    }

    #[test]
    fn unknown_zones_are_refused() {
        assert!(time_zone("Europe/Lisbon").is_some());
        assert!(time_zone("UTC").is_some());
        assert!(time_zone("Mars/Olympus").is_none());
        assert!(time_zone("").is_none());
    }
}
