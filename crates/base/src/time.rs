//! The one clock and the one way the gateway writes times: Unix milliseconds inside, RFC 3339
//! in Beijing time (UTC+8) outside, since every deadline is a Beijing-time date.

use ::time::macros::offset;
use ::time::{Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Beijing time: deadlines end at 24:00 here, and every time the gateway shows is written here.
pub const BEIJING: UtcOffset = offset!(+8);

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// An instant in Beijing time.
pub fn instant(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(BEIJING)
}

/// Unix milliseconds of an instant.
pub fn ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The Beijing-time date of an instant.
pub fn beijing_date(ms: i64) -> Date {
    instant(ms).date()
}

/// 24:00 Beijing time at the end of `date` (00:00 of the next day), as Unix milliseconds.
pub fn end_of_day_ms(date: Date) -> i64 {
    let next = date.next_day().unwrap_or(date);
    PrimitiveDateTime::new(next, Time::MIDNIGHT)
        .assume_offset(BEIJING)
        .unix_timestamp()
        * 1000
}

/// RFC 3339 in Beijing time, e.g. `2026-10-13T00:00:00+08:00`.
pub fn rfc3339(ms: i64) -> String {
    instant(ms)
        .format(&::time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Unix milliseconds of an RFC 3339 text, or `None` when it is not one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &::time::format_description::well_known::Rfc3339)
        .ok()
        .map(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_in_beijing_time_and_read_back() {
        let at = parse_rfc3339("2026-10-09T04:00:00Z").unwrap();
        assert_eq!(rfc3339(at), "2026-10-09T12:00:00+08:00");
        assert_eq!(parse_rfc3339(&rfc3339(at)), Some(at));
        assert_eq!(parse_rfc3339("Friday"), None);
        // 23:30 UTC on the 8th is already the 9th in Beijing.
        let late = parse_rfc3339("2026-10-08T23:30:00Z").unwrap();
        assert_eq!(beijing_date(late).to_string(), "2026-10-09");
        assert_eq!(
            rfc3339(end_of_day_ms(beijing_date(late))),
            "2026-10-10T00:00:00+08:00"
        );
    }
}
