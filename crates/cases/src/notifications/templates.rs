//! The variables of a notification's template, filled from its case when it is sent (so an
//! approval's notice carries the licence its approval issued, which is recorded just after the
//! event that caused the notice). A template asks for some of its kind's variables
//! ([`Notice::variables`]); each is text:
//!
//! | variable | what |
//! | --- | --- |
//! | `case` | the case id |
//! | `service` | the service's name |
//! | `matter`, `department` | the step's matter and department names |
//! | `reason` | the department's message (why refused, what to supplement), masked, ≤ 60 characters |
//! | `due` | the date a supplement is due by, when the returning department said |
//! | `licence` | the number of the licence the approval issued |
//! | `deadline` | the step's last working day (`YYYY-MM-DD`) |
//! | `days` | working days left (yellow), or overdue (red, escalation) |

use crate::Orchestrator;
use gateway_base::config::{Notice, TemplateConfig};
use gateway_base::time::{beijing_date, now_ms};
use gateway_store::StoreError;
use gateway_store::notifications::NotificationRecord;
use serde_json::{Map, Value};

/// Longest `reason` sent, in characters: an SMS is short.
const REASON_CHARS: usize = 60;

/// How long an approval's notice waits for its licence to be recorded before it goes without.
const LICENCE_WAIT_MS: i64 = 10_000;

impl Orchestrator {
    /// The variables `template` asks for, filled for notification `n`; `None` while the
    /// licence an approval issues is not recorded yet (it is, just after the approval's event:
    /// the notice waits a moment for it rather than going out without its number).
    pub(crate) async fn notification_variables(
        &self,
        n: &NotificationRecord,
        notice: Notice,
        template: &TemplateConfig,
    ) -> Result<Option<Map<String, Value>>, StoreError> {
        let case = self.store.case(&n.case_id).await?;
        let step = match &n.step {
            Some(id) => self
                .store
                .steps(&n.case_id)
                .await?
                .into_iter()
                .find(|s| &s.step == id),
            None => None,
        };
        let catalogue = self.catalogue();
        let settings = self.notification_settings();
        let matter = step.as_ref().and_then(|s| catalogue.matters.get(&s.matter));
        let mut variables = Map::new();
        for name in &template.variables {
            let value = match name.as_str() {
                "case" => n.case_id.clone(),
                "service" => case
                    .as_ref()
                    .map(|c| {
                        catalogue
                            .services
                            .get(&c.service)
                            .map_or_else(|| c.service.clone(), |s| s.name.clone())
                    })
                    .unwrap_or_default(),
                "matter" => matter.map(|m| m.name.clone()).unwrap_or_default(),
                "department" => n
                    .department
                    .as_ref()
                    .map(|d| settings.department_names.get(d).unwrap_or(d).clone())
                    .unwrap_or_default(),
                "reason" => {
                    let message = step
                        .as_ref()
                        .and_then(|s| s.message.clone())
                        .unwrap_or_default();
                    gateway_base::redact::redact(&message)
                        .chars()
                        .take(REASON_CHARS)
                        .collect()
                }
                // The date the returning department asked the supplement by, if it said.
                "due" => match &n.step {
                    Some(id) => self
                        .store
                        .step_lifecycles(&n.case_id)
                        .await?
                        .into_iter()
                        .find(|l| &l.step == id)
                        .and_then(|l| l.requested)
                        .and_then(|r| r.get("due").and_then(Value::as_str).map(str::to_string))
                        .unwrap_or_default(),
                    None => String::new(),
                },
                "licence" => {
                    let number = match &n.step {
                        Some(id) => self
                            .store
                            .licences_of_case(&n.case_id)
                            .await?
                            .into_iter()
                            .find(|l| &l.step == id)
                            .map(|l| l.number),
                        None => None,
                    };
                    let issues = step
                        .as_ref()
                        .is_some_and(|s| crate::licences::kind_of(&s.matter).is_some());
                    if number.is_none()
                        && notice == Notice::Approved
                        && issues
                        && now_ms() - n.created_at < LICENCE_WAIT_MS
                    {
                        return Ok(None);
                    }
                    number.unwrap_or_default()
                }
                "deadline" | "days" => {
                    let (Some(case), Some(_), Some(matter)) = (&case, &step, matter) else {
                        variables.insert(name.clone(), Value::String(String::new()));
                        continue;
                    };
                    let deadlines = self.deadlines();
                    // As the step's clock keeps it (补正 pauses it).
                    let lifecycle = self
                        .store
                        .step_lifecycles(&n.case_id)
                        .await?
                        .into_iter()
                        .find(|l| Some(&l.step) == n.step.as_ref())
                        .unwrap_or_default();
                    let deadline_ms = deadlines.calendar().deadline_ms(
                        gateway_store::cases::clock_start(case.created_at, lifecycle.clock_from),
                        gateway_store::cases::limit_days(
                            matter.time_limit_days,
                            lifecycle.paused_days,
                        ),
                    );
                    if name == "deadline" {
                        beijing_date(deadline_ms - 1).to_string()
                    } else {
                        let remaining = deadlines
                            .calendar()
                            .remaining_working_days(deadline_ms, now_ms());
                        let days = match notice {
                            Notice::Yellow => remaining.max(0),
                            _ => (-remaining).max(0),
                        };
                        days.to_string()
                    }
                }
                _ => String::new(),
            };
            variables.insert(name.clone(), Value::String(value));
        }
        Ok(Some(variables))
    }
}
