//! Beijing time (UTC+8, China has no daylight saving) in the formats department systems put in
//! their messages and signatures: `yyyyMMddHHmmss`, `yyyy-MM-dd HH:mm:ss`, `yyyyMMdd`.
//!
//! ```
//! use sdk::time::{BeijingTime, Format};
//!
//! // 2026-12-03T16:05:09Z is 00:05:09 on 4 December in Beijing.
//! let t = BeijingTime::from_unix_ms(1_796_313_909_000);
//! assert_eq!(t.format(Format::Compact), "20261204000509");
//! assert_eq!(t.format(Format::Readable), "2026-12-04 00:05:09");
//! assert_eq!(t.format(Format::Date), "20261204");
//! ```
//!
//! The calendar arithmetic (days since 1970 to a civil date, Howard Hinnant's algorithm) is a
//! dozen lines here instead of a date crate: the sdk is linked into every component.

/// Beijing's offset from UTC.
const OFFSET_MS: i64 = 8 * 3600 * 1000;

/// A format departments use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `yyyyMMddHHmmss`: `20261204000509`.
    Compact,
    /// `yyyy-MM-dd HH:mm:ss`: `2026-12-04 00:05:09`.
    Readable,
    /// `yyyyMMdd`: `20261204`.
    Date,
    /// `yyyy-MM-dd`: `2026-12-04`.
    IsoDate,
}

/// A wall-clock time in Beijing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeijingTime {
    /// Year.
    pub year: i64,
    /// Month, 1–12.
    pub month: u32,
    /// Day of the month, 1–31.
    pub day: u32,
    /// Hour, 0–23.
    pub hour: u32,
    /// Minute, 0–59.
    pub minute: u32,
    /// Second, 0–59.
    pub second: u32,
}

impl BeijingTime {
    /// The Beijing wall-clock time of an instant given in milliseconds since 1970 (UTC).
    pub fn from_unix_ms(unix_ms: i64) -> BeijingTime {
        let local_s = (unix_ms + OFFSET_MS).div_euclid(1000);
        let days = local_s.div_euclid(86_400);
        let of_day = local_s.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        BeijingTime {
            year,
            month,
            day,
            hour: of_day / 3600,
            minute: of_day % 3600 / 60,
            second: of_day % 60,
        }
    }

    /// Now, by the clock the component is given (WASI's wall clock; the host's).
    pub fn now() -> BeijingTime {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        BeijingTime::from_unix_ms(ms)
    }

    /// This time in `format`.
    pub fn format(&self, format: Format) -> String {
        let BeijingTime {
            year: y,
            month: mo,
            day: d,
            hour: h,
            minute: mi,
            second: s,
        } = *self;
        match format {
            Format::Compact => format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}"),
            Format::Readable => format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"),
            Format::Date => format!("{y:04}{mo:02}{d:02}"),
            Format::IsoDate => format!("{y:04}-{mo:02}-{d:02}"),
        }
    }
}

/// The proleptic Gregorian date `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_evening_is_the_next_day_in_beijing() {
        // 2024-02-28T16:00:00Z: midnight of the leap day in Beijing.
        let t = BeijingTime::from_unix_ms(1_709_136_000_000);
        assert_eq!(t.format(Format::Readable), "2024-02-29 00:00:00");
        // One millisecond before: still the 28th, 23:59:59.
        let t = BeijingTime::from_unix_ms(1_709_135_999_999);
        assert_eq!(t.format(Format::Compact), "20240228235959");
        assert_eq!(t.format(Format::IsoDate), "2024-02-28");
    }

    #[test]
    fn the_epoch_and_the_end_of_a_year() {
        assert_eq!(
            BeijingTime::from_unix_ms(0).format(Format::Readable),
            "1970-01-01 08:00:00"
        );
        // 2026-12-31T16:00:00Z is New Year in Beijing.
        assert_eq!(
            BeijingTime::from_unix_ms(1_798_732_800_000).format(Format::Date),
            "20270101"
        );
    }

    #[test]
    fn now_is_a_time_of_this_century() {
        let now = BeijingTime::now();
        assert!((2024..2100).contains(&now.year), "{now:?}");
    }
}
