//! `[notifications]`: what the applicant and the departments' contacts are told by SMS, through
//! which channel (a department-like system with an adapter of its own), with which registered
//! templates, and when chases (催办) are held back (quiet hours). Each department's contacts are
//! `[departments.<id>.contacts]` ([`Contacts`]).
//!
//! Without a `[notifications]` table nothing is recorded or sent.
//!
//! ```toml
//! [notifications]
//! channel = "sms"                     # the department id of the SMS provider
//! signature = "【某某政务服务】"        # the sender signature (签名) registered with it
//! quiet_hours = "22:00-08:00"         # Beijing time: chases wait until they end
//! max_attempts = 8
//! [notifications.templates]
//! received = { code = "SMS_100001", variables = ["case", "service"] }
//! red = { code = "SMS_100007", variables = ["case", "matter", "deadline"] }
//! ```

use super::ConfigError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// What a notification is about: an applicant notice (the first five) or a chase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// The application was received (受理).
    Received,
    /// A matter was returned for supplements (补正): what, by when.
    Returned,
    /// A matter was approved (with the licence number, when one was issued).
    Approved,
    /// A matter was refused (why).
    Rejected,
    /// A matter was withdrawn (撤回).
    Withdrawn,
    /// 催办 to the department's staff: a step turned yellow.
    Yellow,
    /// 催办 to the department's staff: a step turned red.
    Red,
    /// 红牌 escalation to the department's supervisor.
    Escalation,
}

impl Notice {
    /// Every kind.
    pub const ALL: [Notice; 8] = [
        Notice::Received,
        Notice::Returned,
        Notice::Approved,
        Notice::Rejected,
        Notice::Withdrawn,
        Notice::Yellow,
        Notice::Red,
        Notice::Escalation,
    ];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Notice::Received => "received",
            Notice::Returned => "returned",
            Notice::Approved => "approved",
            Notice::Rejected => "rejected",
            Notice::Withdrawn => "withdrawn",
            Notice::Yellow => "yellow",
            Notice::Red => "red",
            Notice::Escalation => "escalation",
        }
    }

    /// The kind a stored text names.
    pub fn parse(text: &str) -> Option<Notice> {
        Notice::ALL.into_iter().find(|n| n.as_str() == text)
    }

    /// True for chases (催办 and escalation): held in quiet hours, sent to departments' contacts.
    pub fn is_chase(self) -> bool {
        matches!(self, Notice::Yellow | Notice::Red | Notice::Escalation)
    }

    /// The variables a template for this kind may ask for (filled by the gateway when sent).
    pub fn variables(self) -> &'static [&'static str] {
        match self {
            Notice::Received => &["case", "service"],
            Notice::Returned => &["case", "matter", "department", "reason", "due"],
            Notice::Approved => &["case", "matter", "department", "licence"],
            Notice::Rejected => &["case", "matter", "department", "reason"],
            Notice::Withdrawn => &["case", "matter", "department"],
            Notice::Yellow | Notice::Red | Notice::Escalation => {
                &["case", "matter", "department", "deadline", "days"]
            }
        }
    }
}

/// One registered template at the channel.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    /// The template's code at the provider (registered there with its text).
    pub code: String,
    /// The variables it takes, each one the gateway fills for its kind ([`Notice::variables`]).
    #[serde(default)]
    pub variables: Vec<String>,
}

/// The `[notifications]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsConfig {
    /// The department id of the channel (an SMS provider configured as `[departments.<id>]`).
    pub channel: String,
    /// The sender signature (签名) registered at the provider, e.g. `【某某政务服务】`.
    pub signature: String,
    /// Beijing time `HH:MM-HH:MM` during which chases wait (may span midnight); none: never.
    /// Applicant notices are not held: they answer the applicant's own action or a decision.
    pub quiet_hours: Option<String>,
    /// Attempts before a notification is given up (`failed`).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// How long an applicant notice waits for the case's phone number to be registered
    /// (`PUT /api/v1/cases/{id}/notifications`) before it is recorded as `no_contact`, in ms.
    #[serde(default = "default_contact_wait_ms")]
    pub contact_wait_ms: u64,
    /// Templates by kind; a kind without a template is not sent.
    #[serde(default)]
    pub templates: BTreeMap<Notice, TemplateConfig>,
    /// The quiet hours as minutes of the Beijing day, `[start, end)`.
    #[serde(skip)]
    pub quiet: Option<(u32, u32)>,
}

fn default_max_attempts() -> u32 {
    8
}

fn default_contact_wait_ms() -> u64 {
    10 * 60 * 1000
}

/// A department's contacts for chases (催办) and escalation (`[departments.<id>.contacts]`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Contacts {
    /// The mobile number of the department's staff on duty: chased on yellow and red.
    pub staff: Option<String>,
    /// The mobile number of the department's supervisor: told of each red card.
    pub supervisor: Option<String>,
}

impl Contacts {
    /// Both numbers are mainland mobile numbers (`departments.<id>.contacts.<which>` in errors).
    pub fn check(&self, file: &Path, department: &str) -> Result<(), ConfigError> {
        for (which, phone) in [("staff", &self.staff), ("supervisor", &self.supervisor)] {
            if let Some(phone) = phone
                && !is_mobile(phone)
            {
                return Err(ConfigError::new(
                    file,
                    format!("departments.{department}.contacts.{which}"),
                    "应为11位手机号码（1开头，第二位3-9）",
                ));
            }
        }
        Ok(())
    }
}

/// Whether `text` is a mainland mobile number: 11 digits, `1`, then `3`–`9`.
pub fn is_mobile(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 11
        && b[0] == b'1'
        && (b'3'..=b'9').contains(&b[1])
        && b.iter().all(u8::is_ascii_digit)
}

/// `HH:MM` as minutes of the day.
fn minutes(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// `HH:MM-HH:MM` as `(start, end)` minutes of the day, start and end different.
pub fn parse_quiet_hours(text: &str) -> Option<(u32, u32)> {
    let (start, end) = text.split_once('-')?;
    let (start, end) = (minutes(start.trim())?, minutes(end.trim())?);
    (start != end).then_some((start, end))
}

impl NotificationsConfig {
    /// The channel is a configured department, the quiet hours read, every template's
    /// variables known for its kind.
    pub(super) fn check(
        &mut self,
        file: &Path,
        departments: &BTreeMap<String, super::DepartmentConfig>,
    ) -> Result<(), ConfigError> {
        if !departments.contains_key(&self.channel) {
            return Err(ConfigError::new(
                file,
                "notifications.channel",
                format!(
                    "no department `{}` is configured (the channel is a [departments.<id>] table)",
                    self.channel
                ),
            ));
        }
        if self.signature.trim().is_empty() {
            return Err(ConfigError::new(
                file,
                "notifications.signature",
                "the sender signature (签名) registered at the provider is required",
            ));
        }
        if let Some(text) = &self.quiet_hours {
            self.quiet = Some(parse_quiet_hours(text).ok_or_else(|| {
                ConfigError::new(
                    file,
                    "notifications.quiet_hours",
                    "应为北京时间 HH:MM-HH:MM，如 22:00-08:00",
                )
            })?);
        }
        if self.max_attempts == 0 {
            return Err(ConfigError::new(
                file,
                "notifications.max_attempts",
                "must be above 0",
            ));
        }
        for (notice, template) in &self.templates {
            let key = format!("notifications.templates.{}", notice.as_str());
            if template.code.trim().is_empty() {
                return Err(ConfigError::new(file, key, "a template code is required"));
            }
            if let Some(unknown) = template
                .variables
                .iter()
                .find(|v| !notice.variables().contains(&v.as_str()))
            {
                return Err(ConfigError::new(
                    file,
                    format!("{key}.variables"),
                    format!(
                        "`{unknown}` is not a variable of {} (known: {})",
                        notice.as_str(),
                        notice.variables().join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether `minute_of_day` (Beijing time) falls in the quiet hours.
    pub fn is_quiet(&self, minute_of_day: u32) -> bool {
        match self.quiet {
            None => false,
            Some((start, end)) if start < end => (start..end).contains(&minute_of_day),
            Some((start, end)) => minute_of_day >= start || minute_of_day < end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_read_and_span_midnight() {
        assert_eq!(parse_quiet_hours("22:00-08:00"), Some((1320, 480)));
        assert_eq!(parse_quiet_hours("12:00-13:30"), Some((720, 810)));
        for bad in ["22-08", "25:00-08:00", "08:00-08:00", "8:00-9:00", ""] {
            assert_eq!(parse_quiet_hours(bad), None, "{bad}");
        }
        let mut config: NotificationsConfig =
            toml::from_str("channel = \"sms\"\nsignature = \"【x】\"").unwrap();
        config.quiet = parse_quiet_hours("22:00-08:00");
        assert!(config.is_quiet(23 * 60));
        assert!(config.is_quiet(0));
        assert!(config.is_quiet(7 * 60 + 59));
        assert!(!config.is_quiet(8 * 60));
        assert!(!config.is_quiet(21 * 60 + 59));
        config.quiet = parse_quiet_hours("12:00-13:00");
        assert!(config.is_quiet(12 * 60 + 30));
        assert!(!config.is_quiet(13 * 60));
    }

    #[test]
    fn contacts_must_be_mobile_numbers() {
        let file = Path::new("gateway.toml");
        let good = Contacts {
            staff: Some("13912345678".into()),
            supervisor: None,
        };
        good.check(file, "tax").unwrap();
        let bad = Contacts {
            staff: None,
            supervisor: Some("0591-87654321".into()),
        };
        let error = bad.check(file, "tax").unwrap_err();
        assert_eq!(error.key, "departments.tax.contacts.supervisor");
        assert!(!is_mobile("12912345678"));
        assert!(!is_mobile("1391234567"));
    }

    #[test]
    fn templates_take_only_their_kinds_variables() {
        let departments: BTreeMap<String, super::super::DepartmentConfig> = [(
            "sms".to_string(),
            toml::from_str("name = \"短信\"\nbase_url = \"http://127.0.0.1:1\"").unwrap(),
        )]
        .into();
        let file = Path::new("gateway.toml");
        let mut config: NotificationsConfig = toml::from_str(
            "channel = \"sms\"\nsignature = \"【x】\"\n[templates]\nreceived = { code = \"T1\", variables = [\"case\", \"licence\"] }",
        )
        .unwrap();
        let error = config.check(file, &departments).unwrap_err();
        assert_eq!(error.key, "notifications.templates.received.variables");
        config
            .templates
            .get_mut(&Notice::Received)
            .unwrap()
            .variables = vec!["case".into()];
        config.check(file, &departments).unwrap();
        config.channel = "nope".into();
        assert_eq!(
            config.check(file, &departments).unwrap_err().key,
            "notifications.channel"
        );
    }
}
