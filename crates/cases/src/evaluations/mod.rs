//! 好差评 (GB/T 39734 / 39735): the applicant's evaluation of a decided case, the
//! rectification (整改) a bad one opens, statistics, and reporting to the national system.
//!
//! **一事一评.** A case is evaluated once it is decided: every matter final (approved,
//! rejected, failed, blocked, or withdrawn: a case the applicant withdrew is decided too, and
//! may be evaluated — the service up to the withdrawal is what is judged). One evaluation per
//! case and channel (`window` 即时评, `qr` 扫码评, `online`, `card` 评价卡); a second on a
//! channel is refused (409), also when two arrive at once (a unique index decides).
//!
//! **On the case's timeline** (in the evaluation's transaction): an `evaluated` event naming
//! the level and the channel, and `rectification_opened` when it opens one; closing the
//! rectification writes `rectification_closed`. Their messages carry no personal data (no
//! evaluator, no comment, no note).
//!
//! **What is recorded.** The level (非常满意 … 非常不满意, codes 1-5 as GB/T 39046; either
//! form is accepted), the standard's indicators for the channel (online: `overall`,
//! `efficiency`, `guide_accuracy`, `convenience`, `ease_of_use`; at the hall — window, QR on
//! the receipt, card: `overall`, `efficiency`, `service_level`, `attitude`; each 1-5 or a
//! level name, any may be left out), anonymous or named (the name and identity number are
//! stored and shown masked only), a free comment (masked), attached to every matter of the
//! case, their departments, and the clerk who received it ([`gateway_store::Store::received_by`]).
//!
//! # Layout
//! - this file: the evaluation's input, its checks (every problem at once), recording it.
//! - [`rectifications`]: the rectifications bad evaluations open: deadline and light on the
//!   gateway's calendar, visit, fix, close.
//! - [`statistics`]: counts per level, satisfaction rate, rectifications, by department,
//!   matter, clerk or month.
//! - [`reporting`]: the outbox's sender to the national system's adapter.
//! - [`views`]: what the API answers.

pub mod rectifications;
pub mod reporting;
pub mod statistics;
pub mod views;

use crate::{CaseError, CaseStatus, Orchestrator};
use arc_swap::ArcSwap;
use gateway_base::config::EvaluationsConfig;
use gateway_base::model::FieldProblem;
use gateway_base::redact::{mask_name, redact};
use gateway_base::time::{now_ms, rfc3339};
use gateway_store::CaseRecord;
use gateway_store::evaluations::{
    EvaluatedMatter, NewEvaluation, NewRectification, NewReport, Recorded,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use views::{EvaluationList, EvaluationView};

/// The five levels, code 1 first (GB/T 39046 满意度).
pub const LEVELS: [&str; 5] = ["非常满意", "满意", "基本满意", "不满意", "非常不满意"];

/// The channels and the indicators each takes.
pub const CHANNELS: [&str; 4] = ["window", "qr", "online", "card"];

/// The matter the national system's adapter takes reports as.
pub const REPORT_MATTER: &str = "evaluation.report";

/// The indicators a channel takes: online ones, or the hall's.
pub fn indicators_of(channel: &str) -> &'static [&'static str] {
    if channel == "online" {
        &[
            "overall",
            "efficiency",
            "guide_accuracy",
            "convenience",
            "ease_of_use",
        ]
    } else {
        &["overall", "efficiency", "service_level", "attitude"]
    }
}

/// A channel's name on the case's timeline.
pub fn channel_name(channel: &str) -> &'static str {
    match channel {
        "window" => "窗口即时评",
        "qr" => "扫码评",
        "online" => "网上评",
        "card" => "评价卡",
        _ => "其他渠道",
    }
}

/// The name of a level code (1-5).
pub fn level_name(code: u8) -> &'static str {
    LEVELS
        .get(usize::from(code.clamp(1, 5)) - 1)
        .copied()
        .unwrap_or_default()
}

/// The evaluations' settings and the reporter's wake-up, held by the orchestrator.
#[derive(Debug, Default)]
pub struct Evaluations {
    settings: ArcSwap<EvaluationsConfig>,
    wake: tokio::sync::Notify,
}

impl Orchestrator {
    /// Use `[evaluations]` from now on (at start and on reload).
    pub fn configure_evaluations(&self, config: EvaluationsConfig) {
        self.evaluations.settings.store(std::sync::Arc::new(config));
        self.evaluations.wake.notify_one();
    }

    /// `[evaluations]` as it is now.
    pub fn evaluation_settings(&self) -> std::sync::Arc<EvaluationsConfig> {
        self.evaluations.settings.load_full()
    }

    /// The evaluations of a case the caller may read.
    pub async fn case_evaluations(&self, case: &CaseRecord) -> Result<EvaluationList, CaseError> {
        let items = self.store().case_evaluations(&case.id).await?;
        let steps = self.store().steps(&case.id).await?;
        Ok(EvaluationList {
            case_id: case.id.clone(),
            decided: !steps.is_empty() && steps.iter().all(|s| s.state.is_final()),
            items: items.iter().map(EvaluationView::from).collect(),
        })
    }

    /// Record the applicant's evaluation of a decided case (`body` as the API received it),
    /// with the rectification a 不满意 / 非常不满意 opens and the report to the national
    /// system, in one transaction. `client` is the portal client evaluating (the owner).
    pub async fn evaluate(
        &self,
        case: &CaseRecord,
        body: &Value,
        client: Option<&str>,
    ) -> Result<EvaluationView, CaseError> {
        let input = Input::read(body).map_err(CaseError::InvalidInput)?;
        let steps = self.store().steps(&case.id).await?;
        let open: Vec<String> = steps
            .iter()
            .filter(|s| !s.state.is_final())
            .map(|s| format!("{}（{}）", s.matter, s.state))
            .collect();
        if steps.is_empty() || !open.is_empty() {
            return Err(CaseError::NotDecided { open });
        }
        let settings = self.evaluation_settings();
        let now = now_ms();
        let id = uuid::Uuid::now_v7().to_string();
        let evaluation = NewEvaluation {
            id: id.clone(),
            case_id: case.id.clone(),
            channel: input.channel.clone(),
            level: input.level,
            indicators: input.indicators.clone(),
            anonymous: input.anonymous,
            evaluator_name: input.name.as_deref().map(|n| mask_name(n.trim())),
            evaluator_id_number: input.id_number.as_deref().map(sdk::ids::mask),
            comment: input.comment.as_deref().map(|c| input.mask(c)),
            service: case.service.clone(),
            clerk: self.store().received_by(&case.id).await?,
            client: client.map(str::to_string),
            matters: steps
                .iter()
                .map(|s| EvaluatedMatter {
                    step: s.step.clone(),
                    matter: s.matter.clone(),
                    department: s.department.clone(),
                })
                .collect(),
            created_at: now,
            // The timeline names the level and the channel only: no evaluator, no comment.
            event_message: format!(
                "好差评：{}（{}）",
                level_name(input.level),
                channel_name(&input.channel)
            ),
        };
        let rectification = (input.level >= 4).then(|| NewRectification {
            id: uuid::Uuid::now_v7().to_string(),
            limit_days: settings.rectification_days,
            event_message: format!(
                "差评整改已开启，限{}个工作日内回访、整改并办结",
                settings.rectification_days
            ),
        });
        let states: Vec<_> = steps.iter().map(|s| s.state).collect();
        let report = settings.reporting.as_ref().map(|department| NewReport {
            department: department.clone(),
            payload: self
                .report_payload(&evaluation, CaseStatus::of(&states))
                .to_string(),
        });
        match self
            .store()
            .record_evaluation(&evaluation, rectification.as_ref(), report.as_ref())
            .await?
        {
            Recorded::Duplicate => Err(CaseError::AlreadyEvaluated {
                channel: input.channel,
            }),
            Recorded::Stored => {
                if report.is_some() {
                    self.evaluations.wake.notify_one();
                }
                let stored = self.store().case_evaluations(&case.id).await?;
                let record = stored.iter().find(|e| e.id == id).ok_or_else(|| {
                    CaseError::Store(gateway_store::StoreError::Corrupt(format!(
                        "evaluation {id} stored but not read back"
                    )))
                })?;
                Ok(EvaluationView::from(record))
            }
        }
    }

    /// The unified report of an evaluation, which the national system's adapter turns into
    /// that system's format: masked data only.
    fn report_payload(&self, e: &NewEvaluation, result: CaseStatus) -> Value {
        let catalogue = self.catalogue();
        let service_name = catalogue
            .services
            .get(&e.service)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let lead = e.matters.first();
        json!({
            "evaluation_id": e.id,
            "case_id": e.case_id,
            "service": e.service,
            "service_name": service_name,
            // The catalogue keeps no versions of a service: the one in force is version 1.
            "service_version": "1",
            "department": lead.map(|m| m.department.as_str()).unwrap_or_default(),
            "departments": e.matters.iter().map(|m| &m.department).collect::<Vec<_>>(),
            "matters": e.matters.iter().map(|m| &m.matter).collect::<Vec<_>>(),
            "result": result.as_str(),
            "channel": e.channel,
            "level": e.level,
            "indicators": e.indicators,
            "anonymous": e.anonymous,
            "evaluator_name": e.evaluator_name,
            "evaluator_id_number": e.evaluator_id_number,
            "comment": e.comment,
            "clerk": e.clerk.as_ref().map(|c| c.id.as_str()),
            "evaluated_at": rfc3339(e.created_at),
        })
    }
}

/// An evaluation as the API sent it, checked.
#[derive(Debug, Clone, PartialEq)]
struct Input {
    channel: String,
    level: u8,
    indicators: BTreeMap<String, u8>,
    anonymous: bool,
    name: Option<String>,
    id_number: Option<String>,
    comment: Option<String>,
}

/// The most a comment may hold, in characters.
const MAX_COMMENT: usize = 500;

/// A level given as its code (1-5) or its name.
fn level_of(value: &Value) -> Option<u8> {
    match value {
        Value::Number(n) => n.as_u64().filter(|c| (1..=5).contains(c)).map(|c| c as u8),
        Value::String(s) => LEVELS
            .iter()
            .position(|l| *l == s.trim())
            .map(|i| i as u8 + 1),
        _ => None,
    }
}

impl Input {
    /// Read and check the body: every problem at once, each naming its field.
    fn read(body: &Value) -> Result<Input, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        let Some(fields) = body.as_object() else {
            return Err(vec![FieldProblem::new("", "type", "评价应为JSON对象")]);
        };
        for key in fields.keys() {
            if !matches!(
                key.as_str(),
                "channel" | "level" | "indicators" | "anonymous" | "evaluator" | "comment"
            ) {
                problems.push(FieldProblem::new(
                    key,
                    "unknown_field",
                    "不支持的字段（可用：channel、level、indicators、anonymous、evaluator、comment）",
                ));
            }
        }
        let channel = match fields.get("channel").and_then(Value::as_str) {
            Some(c) if CHANNELS.contains(&c) => c.to_string(),
            Some(_) | None if fields.get("channel").is_some() => {
                problems.push(FieldProblem::new(
                    "channel",
                    "enum",
                    "评价渠道应为 window（窗口即时评）、qr（扫码评）、online（网上评）或 card（评价卡）",
                ));
                String::new()
            }
            _ => {
                problems.push(FieldProblem::new(
                    "channel",
                    "required",
                    "缺少评价渠道（window、qr、online 或 card）",
                ));
                String::new()
            }
        };
        let level_hint =
            "评价等级应为 非常满意、满意、基本满意、不满意、非常不满意 之一（或代码 1-5）";
        let level = match fields.get("level") {
            None => {
                problems.push(FieldProblem::new("level", "required", level_hint));
                0
            }
            Some(v) => level_of(v).unwrap_or_else(|| {
                problems.push(FieldProblem::new("level", "enum", level_hint));
                0
            }),
        };
        let mut indicators = BTreeMap::new();
        match fields.get("indicators") {
            None | Some(Value::Null) => {}
            Some(Value::Object(given)) => {
                let known = indicators_of(&channel);
                for (name, value) in given {
                    let field = format!("indicators.{name}");
                    if !channel.is_empty() && !known.contains(&name.as_str()) {
                        problems.push(FieldProblem::new(
                            &field,
                            "unknown_field",
                            format!("「{channel}」渠道的评价指标为：{}", known.join("、")),
                        ));
                    } else if let Some(code) = level_of(value) {
                        indicators.insert(name.clone(), code);
                    } else {
                        problems.push(FieldProblem::new(&field, "enum", level_hint));
                    }
                }
            }
            Some(_) => problems.push(FieldProblem::new(
                "indicators",
                "type",
                "评价指标应为对象，如 {\"overall\": 1}",
            )),
        }
        let (mut name, mut id_number) = (None, None);
        match fields.get("evaluator") {
            None | Some(Value::Null) => {}
            Some(Value::Object(e)) => {
                for key in e.keys() {
                    if key != "name" && key != "id_number" {
                        problems.push(FieldProblem::new(
                            format!("evaluator.{key}"),
                            "unknown_field",
                            "评价人只含 name、id_number",
                        ));
                    }
                }
                match e.get("name") {
                    Some(Value::String(n)) if !n.trim().is_empty() && n.chars().count() <= 50 => {
                        name = Some(n.trim().to_string())
                    }
                    Some(_) => problems.push(FieldProblem::new(
                        "evaluator.name",
                        "format",
                        "评价人姓名应为1-50个字符的文本",
                    )),
                    None => {}
                }
                match e.get("id_number") {
                    Some(Value::String(n)) if sdk::ids::resident_id(n.trim()).is_ok() => {
                        id_number = Some(n.trim().to_string())
                    }
                    Some(_) => problems.push(FieldProblem::new(
                        "evaluator.id_number",
                        "checksum",
                        "评价人证件号码不是有效的居民身份号码",
                    )),
                    None => {}
                }
            }
            Some(_) => problems.push(FieldProblem::new(
                "evaluator",
                "type",
                "评价人应为对象，如 {\"name\": \"张三\"}",
            )),
        }
        let named = name.is_some() || id_number.is_some();
        let anonymous = match fields.get("anonymous") {
            None => !named,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                problems.push(FieldProblem::new(
                    "anonymous",
                    "type",
                    "anonymous 应为 true 或 false",
                ));
                !named
            }
        };
        if anonymous && named {
            problems.push(FieldProblem::new(
                "evaluator",
                "conflict",
                "匿名评价不应提供评价人信息",
            ));
        }
        if !anonymous && name.is_none() {
            problems.push(FieldProblem::new(
                "evaluator.name",
                "required",
                "实名评价需提供评价人姓名",
            ));
        }
        let comment = match fields.get("comment") {
            None | Some(Value::Null) => None,
            Some(Value::String(c)) if c.chars().count() <= MAX_COMMENT => {
                Some(c.trim().to_string()).filter(|c| !c.is_empty())
            }
            Some(_) => {
                problems.push(FieldProblem::new(
                    "comment",
                    "format",
                    format!("评价意见应为不超过{MAX_COMMENT}个字符的文本"),
                ));
                None
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Input {
            channel,
            level,
            indicators,
            anonymous,
            name,
            id_number,
            comment,
        })
    }

    /// A text of the evaluator's masked: identity and phone numbers, secrets, and the
    /// evaluator's own name and number wherever they appear.
    fn mask(&self, text: &str) -> String {
        let mut masked = redact(text);
        if let Some(name) = &self.name {
            masked = masked.replace(name.as_str(), &mask_name(name.trim()));
        }
        if let Some(number) = &self.id_number {
            masked = masked.replace(number.as_str(), &sdk::ids::mask(number));
        }
        masked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_read_as_names_or_codes_and_anything_else_is_named() {
        let ok = Input::read(&json!({"channel": "online", "level": "非常不满意",
            "indicators": {"overall": 5, "ease_of_use": "满意"}}))
        .unwrap();
        assert_eq!(ok.level, 5);
        assert_eq!(ok.indicators["ease_of_use"], 2);
        assert!(ok.anonymous);
        assert_eq!(
            Input::read(&json!({"channel": "window", "level": 3}))
                .unwrap()
                .level,
            3
        );
        let bad = Input::read(&json!({"channel": "fax", "level": "还行",
            "indicators": {"overall": 9}, "extra": 1}))
        .unwrap_err();
        let fields: Vec<&str> = bad.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["extra", "channel", "level", "indicators.overall"]);
        assert!(bad[2].message.contains("非常满意"), "{:?}", bad[2]);
        // A window indicator on the online channel.
        let wrong = Input::read(&json!({"channel": "online", "level": 1,
            "indicators": {"attitude": 1}}))
        .unwrap_err();
        assert_eq!(wrong[0].field, "indicators.attitude");
    }

    #[test]
    fn a_named_evaluation_is_masked_and_needs_a_name() {
        let input = Input::read(&json!({"channel": "qr", "level": 4, "anonymous": false,
            "evaluator": {"name": "王小明", "id_number": "11010519491231002X"},
            "comment": "王小明 11010519491231002X 电话13912345678 等了很久"}))
        .unwrap();
        assert!(!input.anonymous);
        let masked = input.mask(input.comment.as_deref().unwrap());
        assert!(
            !masked.contains("王小明") && masked.contains("王**"),
            "{masked}"
        );
        assert!(!masked.contains("11010519491231002X"), "{masked}");
        assert!(!masked.contains("13912345678"), "{masked}");
        let unnamed =
            Input::read(&json!({"channel": "qr", "level": 4, "anonymous": false})).unwrap_err();
        assert_eq!(unnamed[0].field, "evaluator.name");
        let both = Input::read(&json!({"channel": "qr", "level": 4, "anonymous": true,
            "evaluator": {"name": "王小明"}}))
        .unwrap_err();
        assert_eq!(both[0].field, "evaluator");
    }
}
