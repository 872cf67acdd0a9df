//! The working-day calendar (工作日): Monday–Friday, less the holidays, plus the weekend days
//! that are worked (调休上班), as the State Council publishes them each year.
//!
//! The file (`config/holidays.toml`) has a table per year: the dates off (`holidays`, weekday
//! holidays included) and the Saturdays and Sundays that are worked (`workdays`). A year the file
//! does not list is counted Monday–Friday, and a warning is logged once for that year; without a
//! calendar file every year is Monday–Friday.
//!
//! The next year's arrangement appears each November, so from 1 November (Beijing time) the file
//! is expected to hold next year too: [`Calendar::outlook`] says, for a given day, which years
//! are missing (this year, next year from 1 November, and any gap between the years listed).
//! [`Calendar::check`] lists every problem of a file at once (what `gateway calendar check`
//! prints); [`Calendar::parse`] refuses a file on its first (what loading the config does).

use crate::time::{beijing_date, end_of_day_ms};
use crate::toml_file::{ConfigError, parse_toml};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use time::{Month, Weekday};

/// A calendar date (the calendar's API is in Beijing-time dates).
pub use time::Date;

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

    /// Parse and check calendar text that came from `path`; refused on its first problem.
    pub fn parse(path: &Path, text: &str) -> Result<Calendar, ConfigError> {
        let (calendar, mut problems) = Self::check(path, text);
        if problems.is_empty() {
            Ok(calendar)
        } else {
            Err(problems.swap_remove(0))
        }
    }

    /// Parse and check calendar text that came from `path`, listing every problem: a key that
    /// is not a year, a value that is not a date, a date outside its year, a workday that is
    /// not a Saturday or Sunday, a date listed both as a holiday and as a workday. The calendar
    /// returned leaves out what has a problem (none is left of a file that is not TOML).
    pub fn check(path: &Path, text: &str) -> (Calendar, Vec<ConfigError>) {
        let mut calendar = Calendar {
            source: Some(path.to_path_buf()),
            ..Calendar::default()
        };
        let file: BTreeMap<String, YearFile> = match parse_toml(path, text) {
            Ok(file) => file,
            Err(e) => return (calendar, vec![e]),
        };
        let mut problems = Vec::new();
        for (key, year) in &file {
            let Some(number) = key
                .parse::<i32>()
                .ok()
                .filter(|y| (1949..=9999).contains(y) && key.len() == 4)
            else {
                problems.push(ConfigError::new(
                    path,
                    key.as_str(),
                    "not a year (a table per year: [2026])",
                ));
                continue;
            };
            calendar.years.insert(number);
            for (list, dates, into_holidays) in [
                ("holidays", &year.holidays, true),
                ("workdays", &year.workdays, false),
            ] {
                for (i, value) in dates.iter().enumerate() {
                    let at = format!("{key}.{list}[{i}]");
                    let Some(date) = local_date(value) else {
                        problems.push(ConfigError::new(
                            path,
                            &at,
                            format!("`{value}` is not a date like {key}-10-01"),
                        ));
                        continue;
                    };
                    if date.year() != number {
                        problems.push(ConfigError::new(
                            path,
                            at,
                            format!("{date} is not in {key}"),
                        ));
                    } else if into_holidays {
                        calendar.holidays.insert(date);
                    } else if !is_weekend(date) {
                        problems.push(ConfigError::new(
                            path,
                            at,
                            format!(
                                "{date} is a {}: workdays lists the Saturdays and Sundays that are worked (调休上班)",
                                date.weekday()
                            ),
                        ));
                    } else if calendar.holidays.contains(&date) {
                        problems.push(ConfigError::new(
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
        (calendar, problems)
    }

    /// The file the calendar came from; `None` for Monday–Friday only.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The years the file lists, in order.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.iter().copied()
    }

    /// The working days of each month of `year`, January first.
    pub fn working_days_per_month(&self, year: i32) -> [i64; 12] {
        let mut days = [0; 12];
        for (i, month) in (1..=12u8).enumerate() {
            let Ok(month) = Month::try_from(month) else {
                continue;
            };
            let (Ok(first), Ok(last)) = (
                Date::from_calendar_date(year, month, 1),
                Date::from_calendar_date(year, month, month.length(year)),
            ) else {
                continue;
            };
            days[i] = self.working_days_between(first, last);
        }
        days
    }

    /// What the calendar covers, as seen on `today` (a Beijing-time date): which years it
    /// should list by then and does not. This year is always expected, and next year from
    /// 1 November (the State Council's notice usually appears in November); a gap between the
    /// years listed is missing too. Without a calendar file nothing is expected.
    pub fn outlook(&self, today: Date) -> Outlook {
        let year = today.year();
        let next_expected = today.month() >= Month::November;
        let expected_until = if next_expected { year + 1 } else { year };
        let from = self.years.first().copied().unwrap_or(year).min(year);
        let missing = if self.source.is_none() {
            Vec::new()
        } else {
            (from..=expected_until)
                .filter(|y| !self.years.contains(y))
                .collect()
        };
        Outlook {
            today,
            next_year_present: self.years.contains(&(year + 1)),
            next_expected,
            missing,
        }
    }

    /// What differs from `other`, year by year: (years added, years removed, years changed).
    pub fn differences(&self, other: &Calendar) -> (Vec<i32>, Vec<i32>, Vec<i32>) {
        let added = self.years.difference(&other.years).copied().collect();
        let removed = other.years.difference(&self.years).copied().collect();
        let days = |c: &Calendar, y: i32| {
            let in_year = |d: &&Date| d.year() == y;
            (
                c.holidays
                    .iter()
                    .filter(in_year)
                    .copied()
                    .collect::<Vec<_>>(),
                c.workdays
                    .iter()
                    .filter(in_year)
                    .copied()
                    .collect::<Vec<_>>(),
            )
        };
        let changed = self
            .years
            .intersection(&other.years)
            .copied()
            .filter(|y| days(self, *y) != days(other, *y))
            .collect();
        (added, removed, changed)
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

/// What a calendar covers as seen on one day: see [`Calendar::outlook`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outlook {
    /// The day it is judged on (Beijing time).
    pub today: Date,
    /// The file lists next year.
    pub next_year_present: bool,
    /// From 1 November: next year is expected.
    pub next_expected: bool,
    /// The years expected by `today` that the file does not list, in order.
    pub missing: Vec<i32>,
}

impl Outlook {
    /// `gateway_calendar_years_ahead`: 1 when the calendar covers every year it should by
    /// today (next year once November has come), 0 while a year is missing.
    pub fn years_ahead(&self) -> u8 {
        u8::from(self.missing.is_empty())
    }

    /// The warning for operators, when a year is missing.
    pub fn warning(&self) -> Option<String> {
        let years: Vec<String> = self.missing.iter().map(i32::to_string).collect();
        let last = self.missing.last()?;
        Some(format!(
            "the holiday calendar has no {}: those days count Monday–Friday only (no holidays, no 调休 working weekends); add {} from the State Council's notice (国务院办公厅关于{last}年部分节假日安排的通知) and reload the config",
            years.join(", "),
            if years.len() == 1 { "it" } else { "them" },
        ))
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

/// A date written `YYYY-MM-DD`, else `None`.
pub fn parse_date(text: &str) -> Option<Date> {
    Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
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
        // (The position in the file, when the config error carries one, comes before the key.)
        let unknown = parse("[2026]\nholiday = [2026-10-01]").unwrap_err();
        assert!(
            unknown.starts_with("holidays.toml")
                && unknown.contains("2026.holiday: unknown field `holiday`"),
            "{unknown}"
        );
        assert!(parse("[2026]\nholidays = [\"2026-10-01\"]").is_err());
    }

    #[test]
    fn check_lists_every_problem_at_once() {
        let text = "[2026]\nholidays = [2025-10-01, 2026-10-10]\nworkdays = [2026-10-09, 2026-10-10]\n[27]\nholidays = []\n";
        let (calendar, problems) = Calendar::check(Path::new("holidays.toml"), text);
        let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            [
                "holidays.toml: 2026.holidays[0]: 2025-10-01 is not in 2026",
                "holidays.toml: 2026.workdays[0]: 2026-10-09 is a Friday: workdays lists the Saturdays and Sundays that are worked (调休上班)",
                "holidays.toml: 2026.workdays[1]: 2026-10-10 is listed as a holiday too",
                "holidays.toml: 27: not a year (a table per year: [2026])",
            ]
        );
        // Loading the config stops at the first.
        assert_eq!(parse(text).unwrap_err(), problems[0]);
        // What is left: 2026 with its one holiday, the bad dates left out.
        assert_eq!(calendar.years().collect::<Vec<_>>(), [2026]);
        assert!(calendar.is_working_day(date!(2026 - 10 - 09)));
        assert!(!calendar.is_working_day(date!(2026 - 10 - 10)));
    }

    #[test]
    fn next_year_is_expected_from_the_first_of_november() {
        let c = calendar(); // 2025 and 2026
        let on = |d: Date| c.outlook(d);
        assert_eq!(on(date!(2026 - 10 - 31)).missing, Vec::<i32>::new());
        assert_eq!(on(date!(2026 - 10 - 31)).years_ahead(), 1);
        assert!(on(date!(2026 - 10 - 31)).warning().is_none());
        let november = on(date!(2026 - 11 - 01));
        assert_eq!(november.missing, [2027]);
        assert_eq!(november.years_ahead(), 0);
        assert!(!november.next_year_present && november.next_expected);
        let warning = november.warning().unwrap();
        assert!(
            warning.starts_with("the holiday calendar has no 2027: ")
                && warning.contains("国务院办公厅关于2027年部分节假日安排的通知"),
            "{warning}"
        );
        // Still missing in January, with the new year's own days counted Monday–Friday.
        assert_eq!(on(date!(2027 - 01 - 04)).missing, [2027]);
        assert_eq!(on(date!(2027 - 11 - 02)).missing, [2027, 2028]);
        // Earlier years need nothing more.
        assert!(on(date!(2025 - 12 - 01)).missing.is_empty());
        assert!(on(date!(2025 - 12 - 01)).next_year_present);
        // A gap between the years listed is missing too.
        let gap = parse("[2025]\n[2027]\n").unwrap();
        assert_eq!(gap.outlook(date!(2026 - 06 - 01)).missing, [2026]);
        assert_eq!(gap.outlook(date!(2026 - 06 - 01)).years_ahead(), 0);
        // An empty file expects this year; no file at all expects nothing.
        assert_eq!(
            parse("").unwrap().outlook(date!(2026 - 06 - 01)).missing,
            [2026]
        );
        let none = Calendar::weekdays_only().outlook(date!(2026 - 12 - 01));
        assert!(none.missing.is_empty() && none.warning().is_none());
    }

    #[test]
    fn working_days_per_month() {
        let c = calendar();
        let months = c.working_days_per_month(2026);
        // January 2026: 22 weekdays, less 1 and 2 January (元旦), plus Sunday 4 January (调休).
        assert_eq!(months[0], 21);
        // October 2026: 22 weekdays, less 1, 2, 5, 6 and 7 October, plus Saturday the 10th.
        assert_eq!(months[9], 18);
        let mut total = 0;
        let mut d = date!(2026 - 01 - 01);
        while d.year() == 2026 {
            total += i64::from(c.is_working_day(d));
            d = d.next_day().unwrap();
        }
        assert_eq!(months.iter().sum::<i64>(), total);
    }

    #[test]
    fn differences_name_the_years_added_removed_and_changed() {
        let before = parse("[2025]\n[2026]\nholidays = [2026-10-01]\n").unwrap();
        let after = parse("[2026]\nholidays = [2026-10-02]\n[2027]\n").unwrap();
        assert_eq!(
            after.differences(&before),
            (vec![2027], vec![2025], vec![2026])
        );
        assert_eq!(
            before.differences(&before.clone()),
            (vec![], vec![], vec![])
        );
    }
}
