//! `[evaluations]`: 好差评 — the rectification limit and reporting to the national system.
//!
//! ```toml
//! [evaluations]
//! rectification_days = 15            # working days a 不满意 / 非常不满意 gets to be rectified
//! reporting = "national-evaluation"  # the department (adapter) reports go to; none: not reported
//! max_report_attempts = 10           # then the report is `failed` (a dead letter)
//! ```

use super::ConfigError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The `[evaluations]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationsConfig {
    /// Working days a rectification has from the evaluation that opened it (provincial rules
    /// give 15).
    #[serde(default = "default_rectification_days")]
    pub rectification_days: u32,
    /// The department whose adapter takes evaluation reports (the national 好差评 system);
    /// none: evaluations are not reported.
    pub reporting: Option<String>,
    /// Attempts at one report before it is given up (`failed`).
    #[serde(default = "default_attempts")]
    pub max_report_attempts: u32,
}

fn default_rectification_days() -> u32 {
    15
}

fn default_attempts() -> u32 {
    10
}

impl Default for EvaluationsConfig {
    fn default() -> Self {
        EvaluationsConfig {
            rectification_days: default_rectification_days(),
            reporting: None,
            max_report_attempts: default_attempts(),
        }
    }
}

impl EvaluationsConfig {
    /// The limits are sane, and the reporting department is configured.
    pub(super) fn check<T>(
        &self,
        file: &Path,
        departments: &BTreeMap<String, T>,
    ) -> Result<(), ConfigError> {
        if !(1..=365).contains(&self.rectification_days) {
            return Err(ConfigError::new(
                file,
                "evaluations.rectification_days",
                "must be 1 to 365 working days",
            ));
        }
        if self.max_report_attempts == 0 {
            return Err(ConfigError::new(
                file,
                "evaluations.max_report_attempts",
                "must be at least 1",
            ));
        }
        if let Some(department) = &self.reporting
            && !departments.contains_key(department)
        {
            return Err(ConfigError::new(
                file,
                "evaluations.reporting",
                format!("no department `{department}` is configured ([departments.{department}])"),
            ));
        }
        Ok(())
    }
}
