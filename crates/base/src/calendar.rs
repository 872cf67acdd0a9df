//! The working-day calendar (工作日): Monday–Friday, less the holidays, plus the weekend days
//! that are worked (调休上班), as the State Council publishes them each year.
//!
//! The file (`config/holidays.toml`) has a table per year: the dates off (`holidays`, weekday
//! holidays included) and the Saturdays and Sundays that are worked (`workdays`). A year the file
//! does not list is counted Monday–Friday, and a warning is logged once for that year; without a
//! calendar file every year is Monday–Friday.

use crate::config::{ConfigError, parse_toml};
use crate::time::{beijing_date, end_of_day_ms};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use time::{Date, Month, Weekday};

/// One year of the calendar file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct YearFile {
    #[serde(default)]
    holidays: Vec<toml::value::Datetime>,
    #[serde(default)]
    workdays: Vec<toml::value::Datetime>,
}

/// The working-day calendar: Monday–Friday, less the holidays, plus the worked weekends.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    /// The file it came from (none: Monday–Friday only).
    source: Option<PathBuf>,
    /// Years the file lists.
    years: BTreeSet<i32>,
    /// Dates off.
    holidays: BTreeSet<Date>,
    /// Saturdays and Sundays that are working days.
    workdays: BTreeSet<Date>,
    /// Missing years already warned about (shared by clones).
    warned: Arc<Mutex<BTreeSet<i32>>>,
}

impl Calendar {
    /// Monday–Friday only, every year.
    pub fn weekdays_only() -> Calendar {
        Calendar::default()
    }

    /// Read and check a calendar file.
    pub fn load(path: &Path) -> Result<Calendar, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(path, "", format!("cannot read: {e}")))?;
        Self::parse(path, &text)
    }

    /// Parse and check calendar text that came from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Calendar, ConfigError> {
        let file: BTreeMap<String, YearFile> = parse_toml(path, text)?;
        let mut calendar = Calendar {
            source: Some(path.to_path_buf()),
            ..Calendar::default()
        };
        for (key, year) in &file {
            let number = key
                .parse::<i32>()
                .ok()
                .filter(|y| (1949..=9999).contains(y) && key.len() == 4)
                .ok_or_else(|| {
                    ConfigError::new(path, key.as_str(), "not a year (a table per year: [2026])")
                })?;
            calendar.years.insert(number);
            for (list, dates, into_holidays) in [
                ("holidays", &year.holidays, true),
                ("workdays", &year.workdays, false),
            ] {
                for (i, value) in dates.iter().enumerate() {
                    let at = format!("{key}.{list}[{i}]");
                    let date = local_date(value).ok_or_else(|| {
                        ConfigError::new(
                            path,
                            &at,
                            format!("`{value}` is not a date like {key}-10-01"),
                        )
                    })?;
                    if date.year() != number {
                        return Err(ConfigError::new(
                            path,
                            at,
                            format!("{date} is not in {key}"),
                        ));
                    }
                    if into_holidays {
                        calendar.holidays.insert(date);
                    } else if !is_weekend(date) {
                        return Err(ConfigError::new(
                            path,
                            at,
                            format!(
                                "{date} is a {}: workdays lists the Saturdays and Sundays that are worked (调休上班)",
                                date.weekday()
                            ),
                        ));
                    } else if calendar.holidays.contains(&date) {
                        return Err(ConfigError::new(
                            path,
                            at,
                            format!("{date} is listed as a holiday too"),
                        ));
                    } else {
                        calendar.workdays.insert(date);
                    }
                }
            }
        }
        Ok(calendar)
    }

    /// True when `date` is a working day.
    pub fn is_working_day(&self, date: Date) -> bool {
        self.note_year(date.year());
        if self.workdays.contains(&date) {
            true
        } else if self.holidays.contains(&date) {
            false
        } else {
            !is_weekend(date)
        }
    }

    /// The `n`-th working day after `start` (`start` itself is never counted); `start` for 0.
    pub fn add_working_days(&self, start: Date, n: u32) -> Date {
        let mut date = start;
        let mut left = n;
        while left > 0 {
            let Some(next) = date.next_day() else {
                return date;
            };
            date = next;
            if self.is_working_day(date) {
                left -= 1;
            }
        }
        date
    }

    /// The promised deadline of a step received at `received_ms` with a limit of `n` working
    /// days: the end (24:00 Beijing time) of the `n`-th working day after the day of receipt,
    /// as Unix milliseconds.
    pub fn deadline_ms(&self, received_ms: i64, n: u32) -> i64 {
        let last = self.add_working_days(beijing_date(received_ms), n);
        end_of_day_ms(last)
    }

    /// The working days in `from..=to` (0 when `to` is before `from`).
    pub fn working_days_between(&self, from: Date, to: Date) -> i64 {
        if to < from {
            return 0;
        }
        for year in from.year()..=to.year() {
            self.note_year(year);
        }
        let days = i64::from(to.to_julian_day() - from.to_julian_day()) + 1;
        let first = i64::from(from.weekday().number_days_from_monday());
        let weekdays = days / 7 * 5 + (0..days % 7).filter(|i| (first + i) % 7 < 5).count() as i64;
        let off = self
            .holidays
            .range(from..=to)
            .filter(|d| !is_weekend(**d))
            .count() as i64;
        let worked = self.workdays.range(from..=to).count() as i64;
        weekdays - off + worked
    }

    /// Working days left at `now_ms` before `deadline_ms` (see the module doc): the remaining
    /// working time rounded up; negative once overdue.
    pub fn remaining_working_days(&self, deadline_ms: i64, now_ms: i64) -> i64 {
        let today = beijing_date(now_ms);
        let last = beijing_date(deadline_ms - 1);
        if now_ms <= deadline_ms {
            self.working_days_between(today, last)
        } else {
            match last.next_day() {
                Some(after) => -self.working_days_between(after, today),
                None => 0,
            }
        }
    }

    /// Warn once per year the calendar file does not list.
    fn note_year(&self, year: i32) {
        let Some(source) = &self.source else {
            return;
        };
        if self.years.contains(&year) {
            return;
        }
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if warned.insert(year) {
            tracing::warn!(
                year,
                calendar = %source.display(),
                "the holiday calendar has no {year}: counting Monday–Friday only; add {year} from the State Council's notice (国务院办公厅关于{year}年部分节假日安排的通知)"
            );
        }
    }
}

/// A date-only TOML value (`2026-10-01`), else `None`.
fn local_date(value: &toml::value::Datetime) -> Option<Date> {
    match value {
        toml::value::Datetime {
            date: Some(d),
            time: None,
            offset: None,
        } => {
            Date::from_calendar_date(i32::from(d.year), Month::try_from(d.month).ok()?, d.day).ok()
        }
        _ => None,
    }
}

/// Saturday or Sunday.
pub fn is_weekend(date: Date) -> bool {
    matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{ms, rfc3339};
    use time::macros::{date, datetime};

    fn calendar() -> Calendar {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/holidays.toml");
        Calendar::load(&path).expect("config/holidays.toml is valid")
    }

    fn parse(text: &str) -> Result<Calendar, String> {
        Calendar::parse(Path::new("holidays.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn five_working_days_across_national_day_2026_include_the_adjusted_saturday() {
        let c = calendar();
        // Received Tuesday 29 September: 30 Sep (1), 1–7 Oct off, 8 Oct (2), 9 Oct (3),
        // Saturday 10 Oct worked (4), Sunday 11 Oct off, Monday 12 Oct (5).
        assert_eq!(
            c.add_working_days(date!(2026 - 09 - 29), 5),
            date!(2026 - 10 - 12)
        );
        let received = ms(datetime!(2026-09-29 10:00 +8));
        assert_eq!(
            rfc3339(c.deadline_ms(received, 5)),
            "2026-10-13T00:00:00+08:00"
        );
        // Received at 01:00 Beijing time on 30 September (still the 29th in UTC): day 1 is 8 Oct.
        let received = ms(datetime!(2026-09-29 17:00 UTC));
        assert_eq!(
            rfc3339(c.deadline_ms(received, 1)),
            "2026-10-09T00:00:00+08:00"
        );
    }

    #[test]
    fn adjusted_weekends_are_working_days_and_holidays_are_not() {
        let c = calendar();
        for worked in [
            date!(2026 - 01 - 04),
            date!(2026 - 02 - 14),
            date!(2026 - 02 - 28),
            date!(2026 - 05 - 09),
            date!(2026 - 09 - 20),
            date!(2026 - 10 - 10),
            date!(2025 - 01 - 26),
            date!(2025 - 10 - 11),
        ] {
            assert!(is_weekend(worked) && c.is_working_day(worked), "{worked}");
        }
        for off in [
            date!(2026 - 01 - 02),
            date!(2026 - 02 - 23),
            date!(2025 - 10 - 08),
        ] {
            assert!(!is_weekend(off) && !c.is_working_day(off), "{off}");
        }
        assert!(
            !c.is_working_day(date!(2026 - 10 - 11)),
            "an ordinary Sunday"
        );
        // Received on Saturday 19 September 2026: Sunday the 20th is worked, so it is day 1.
        assert_eq!(
            c.add_working_days(date!(2026 - 09 - 19), 1),
            date!(2026 - 09 - 20)
        );
        // Spring Festival 2026: Friday 13 Feb → Sat 14 (1), 15–23 off, 24 (2), 25 (3).
        assert_eq!(
            c.add_working_days(date!(2026 - 02 - 13), 3),
            date!(2026 - 02 - 25)
        );
    }

    #[test]
    fn a_year_missing_from_the_file_is_monday_to_friday() {
        let c = calendar();
        // 2030 is not in the file: 1 October 2030 is a Tuesday and counted as a working day.
        assert!(c.is_working_day(date!(2030 - 10 - 01)));
        assert!(!c.is_working_day(date!(2030 - 10 - 05)));
        // Thursday 31 December 2026 + 1 → Friday 1 January 2027: until 2027 is added, even
        // 元旦 counts as a working day.
        assert_eq!(
            c.add_working_days(date!(2026 - 12 - 31), 1),
            date!(2027 - 01 - 01)
        );
        let none = Calendar::weekdays_only();
        assert!(none.is_working_day(date!(2026 - 10 - 01)));
        assert!(!none.is_working_day(date!(2026 - 10 - 10)));
    }

    #[test]
    fn counting_between_dates_matches_day_by_day() {
        let c = calendar();
        let start = date!(2025 - 12 - 20);
        for span in 0..500 {
            let end = start + time::Duration::days(span);
            let mut slow = 0;
            let mut d = start;
            while d <= end {
                slow += i64::from(c.is_working_day(d));
                d = d.next_day().unwrap();
            }
            assert_eq!(c.working_days_between(start, end), slow, "{start}..={end}");
        }
        assert_eq!(
            c.working_days_between(date!(2026 - 10 - 02), date!(2026 - 10 - 01)),
            0
        );
    }

    #[test]
    fn bad_calendars_are_refused_with_key_and_reason() {
        assert_eq!(
            parse("[2026]\nworkdays = [2026-10-09]").unwrap_err(),
            "holidays.toml: 2026.workdays[0]: 2026-10-09 is a Friday: workdays lists the Saturdays and Sundays that are worked (调休上班)"
        );
        assert_eq!(
            parse("[2026]\nholidays = [2025-10-01]").unwrap_err(),
            "holidays.toml: 2026.holidays[0]: 2025-10-01 is not in 2026"
        );
        assert_eq!(
            parse("[2026]\nholidays = [2026-10-10]\nworkdays = [2026-10-10]").unwrap_err(),
            "holidays.toml: 2026.workdays[0]: 2026-10-10 is listed as a holiday too"
        );
        assert_eq!(
            parse("[26]\nholidays = []").unwrap_err(),
            "holidays.toml: 26: not a year (a table per year: [2026])"
        );
        assert!(parse("[2026]\nholidays = [2026-10-01T08:00:00]").is_err());
        assert!(
            parse("[2026]\nholiday = [2026-10-01]")
                .unwrap_err()
                .starts_with("holidays.toml: 2026.holiday: unknown field `holiday`"),
        );
        assert!(parse("[2026]\nholidays = [\"2026-10-01\"]").is_err());
    }
}
