//! Times as people read and write them, in one place for the CLI and the
//! dashboard: Unix seconds printed as RFC 3339 (UTC), and parsed from the
//! forms people type or browsers send. Calendar arithmetic is `jiff`'s.
//!
//! Accepted, all in UTC unless an offset says otherwise:
//! - Unix seconds: `1800000000`;
//! - a date: `2027-01-15` (its midnight);
//! - a date and time without a zone, as an HTML `datetime-local` field
//!   sends it: `2027-01-15T08:00` or `2027-01-15T08:00:30`;
//! - RFC 3339: `2027-01-15T08:00:00Z`, `2027-01-15T09:00:00+01:00`.
//!
//! Dates that do not exist (`2027-02-29`), times before 1970 and text
//! around a time are refused.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

/// `secs` as RFC 3339 in UTC: `2027-01-15T08:00:00Z`.
pub fn rfc3339(secs: u64) -> String {
    timestamp(secs).to_string()
}

/// `secs` for people reading a page: `2027-01-15 08:00:00 UTC`.
pub fn readable(secs: u64) -> String {
    timestamp(secs).strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Unix seconds of `text` in one of the accepted forms, if it is one.
pub fn parse(text: &str) -> Option<u64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let seconds = if let Ok(ts) = text.parse::<Timestamp>() {
        ts.as_second()
    } else if let Ok(dt) = text.parse::<DateTime>() {
        // A date and time without a zone, or just a date (its midnight).
        TimeZone::UTC.to_timestamp(dt).ok()?.as_second()
    } else {
        return None;
    };
    u64::try_from(seconds).ok()
}

fn timestamp(secs: u64) -> Timestamp {
    i64::try_from(secs)
        .ok()
        .and_then(|s| Timestamp::from_second(s).ok())
        .unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_rfc3339_and_readable_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_800_000_000), "2027-01-15T08:00:00Z");
        assert_eq!(readable(1_800_000_000), "2027-01-15 08:00:00 UTC");
    }

    #[test]
    fn parses_every_accepted_form_to_the_same_instant() {
        for text in [
            "1800000000",
            "2027-01-15T08:00",
            "2027-01-15T08:00:00",
            "2027-01-15T08:00:00Z",
            "2027-01-15T09:00:00+01:00",
            " 2027-01-15T08:00:00Z ",
        ] {
            assert_eq!(parse(text), Some(1_800_000_000), "{text}");
        }
        assert_eq!(parse("2000-02-29"), Some(951_782_400));
        assert_eq!(parse("1970-01-01"), Some(0));
        assert_eq!(parse("2024-02-29"), Some(1_709_164_800));
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for bad in [
            "",
            "2027-13-01",
            "2027-01-01T25:00",
            "x-y-z",
            "1969-12-31",
            "2027-02-29",
            "2026-02-30",
            "2027-01-15T08:00:00Zjunk",
            "-5",
            "99999999999999999999999",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trips() {
        for secs in [0, 1, 86_399, 951_782_400, 1_800_000_000, 4_102_444_800] {
            assert_eq!(parse(&rfc3339(secs)), Some(secs));
        }
    }
}
