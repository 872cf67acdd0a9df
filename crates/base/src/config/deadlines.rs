//! `[deadlines]`: the holiday calendar and when a step turns yellow (红黄牌).
//!
//! The calendar is read and checked with the rest of the config, at start-up and on every
//! reload: a broken calendar refuses the config whole. [`calendar_of`] reads only the
//! `[deadlines]` table of a config file, so `gateway calendar check` can list every problem of
//! a calendar even when the rest of that config would not load on the machine it runs on.

use super::ConfigError;
use crate::calendar::Calendar;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The `[deadlines]` table of the gateway config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadlinesConfig {
    /// The holiday calendar file, relative to the config file; none: Monday–Friday only.
    pub calendar: Option<PathBuf>,
    /// Yellow when at most this many working days remain (0: no yellow at all).
    #[serde(default = "default_yellow")]
    pub yellow_remaining_working_days: u32,
    /// The calendar, read and checked when the config is loaded.
    #[serde(skip)]
    pub days: Calendar,
}

fn default_yellow() -> u32 {
    1
}

impl Default for DeadlinesConfig {
    fn default() -> Self {
        DeadlinesConfig {
            calendar: None,
            yellow_remaining_working_days: default_yellow(),
            days: Calendar::default(),
        }
    }
}

impl DeadlinesConfig {
    /// Read and check the calendar file named in the config at `file` (paths relative to
    /// `base_dir`), keeping it in [`DeadlinesConfig::days`].
    pub(super) fn load_calendar(
        &mut self,
        file: &Path,
        base_dir: &Path,
    ) -> Result<(), ConfigError> {
        let Some(calendar) = &self.calendar else {
            return Ok(());
        };
        let path = base_dir.join(calendar);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ConfigError::new(
                file,
                "deadlines.calendar",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        self.days = Calendar::parse(&path, &text)?;
        Ok(())
    }
}

/// The calendar file the config at `file` names in `[deadlines] calendar` (resolved against the
/// config's folder), reading nothing else of the config; `None` when it names none.
pub fn calendar_of(file: &Path) -> Result<Option<PathBuf>, ConfigError> {
    /// The config file, with everything but `[deadlines]` ignored.
    #[derive(Deserialize)]
    struct Only {
        #[serde(default)]
        deadlines: DeadlinesConfig,
    }
    let text = std::fs::read_to_string(file)
        .map_err(|e| ConfigError::new(file, "", format!("cannot read: {e}")))?;
    let only: Only = super::parse_toml(file, &text)?;
    let base_dir = file.parent().unwrap_or(Path::new(""));
    Ok(only.deadlines.calendar.map(|c| base_dir.join(c)))
}
