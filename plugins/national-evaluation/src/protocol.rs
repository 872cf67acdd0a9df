//! The national 好差评 system's protocol, as pure functions: the unified report mapped to its
//! fields, the string it signs, its answers read.
//!
//! `POST /evaluation/api/v2/report`, JSON in UTF-8, headers `X-App-Key`, `X-Timestamp` (Unix
//! ms), `X-Nonce`, `X-Sign` = lowercase hex HMAC-SM3 with the app secret over
//! `POST\n<path>\n<timestamp>\n<nonce>\n<hex SM3 of the body>`. Every answer is HTTP 200 with
//! `{"code": "200", "msg": …, "data": {"reportNo": …}}`, or a code of its own: `E1xxx` for the
//! request's credentials (signature, app key, timestamp), `E2xxx` for the report's fields.

use sdk::{AdapterError, FieldError, Rejection};
use serde_json::{Value, json};

/// The department id the gateway knows the system by.
pub const DEPARTMENT: &str = "national-evaluation";
/// The matter reports are submitted as.
pub const REPORT: &str = "evaluation.report";
/// Where reports go.
pub const REPORT_PATH: &str = "/evaluation/api/v2/report";

/// The string the signature covers.
pub fn signed_string(path: &str, timestamp: &str, nonce: &str, body: &[u8]) -> String {
    format!(
        "POST\n{path}\n{timestamp}\n{nonce}\n{}",
        sdk::sign::sm3_hex(body)
    )
}

/// 评价渠道 in the national code: 1 窗口即时评, 2 扫码评, 3 网上评, 4 评价卡.
fn channel_code(channel: &str) -> Option<&'static str> {
    match channel {
        "window" => Some("1"),
        "qr" => Some("2"),
        "online" => Some("3"),
        "card" => Some("4"),
        _ => None,
    }
}

/// 办件状态 in the national code: 1 办结（准予）, 2 不予受理/不予许可, 3 撤回, 9 其他.
fn handle_state(result: &str) -> &'static str {
    match result {
        "completed" => "1",
        "rejected" => "2",
        "withdrawn" => "3",
        _ => "9",
    }
}

/// `YYYYMMDDhhmmss` (Beijing time) from the gateway's RFC 3339 in `+08:00`.
fn evaluate_time(rfc3339: &str) -> Option<String> {
    if rfc3339.len() < 19 || !rfc3339.ends_with("+08:00") {
        return None;
    }
    let digits: String = rfc3339[..19].chars().filter(char::is_ascii_digit).collect();
    (digits.len() == 14).then_some(digits)
}

/// The national report of a unified one, `evaluate_id` its idempotency key (the payload's
/// `evaluation_id` when empty): every problem at once.
pub fn report(
    payload: &str,
    region: Option<&str>,
    evaluate_id: &str,
) -> Result<Value, Vec<FieldError>> {
    let value: Value = serde_json::from_str(payload).map_err(|e| {
        vec![FieldError::new(
            "",
            "format",
            format!("上报数据不是JSON：{e}"),
        )]
    })?;
    let mut problems = Vec::new();
    let mut text = |field: &str| -> String {
        match value.get(field).and_then(Value::as_str) {
            Some(s) if !s.is_empty() => s.to_string(),
            _ => {
                problems.push(FieldError::new(field, "required", format!("缺少 {field}")));
                String::new()
            }
        }
    };
    let case_id = text("case_id");
    let service = text("service");
    let version = text("service_version");
    let department = text("department");
    let channel = text("channel");
    let evaluated_at = text("evaluated_at");
    let id = if evaluate_id.is_empty() {
        text("evaluation_id")
    } else {
        evaluate_id.to_string()
    };
    let channel = channel_code(&channel).unwrap_or_else(|| {
        problems.push(FieldError::new(
            "channel",
            "enum",
            "评价渠道应为 window、qr、online 或 card",
        ));
        ""
    });
    let level = value
        .get("level")
        .and_then(Value::as_u64)
        .filter(|l| (1..=5).contains(l))
        .unwrap_or_else(|| {
            problems.push(FieldError::new("level", "enum", "满意度应为 1-5"));
            0
        });
    let time = evaluate_time(&evaluated_at).unwrap_or_else(|| {
        problems.push(FieldError::new(
            "evaluated_at",
            "format",
            "评价时间应为北京时间RFC 3339",
        ));
        String::new()
    });
    if !problems.is_empty() {
        return Err(problems);
    }
    let anonymous = value
        .get("anonymous")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let mut body = json!({
        "evaluateId": id,
        "projNo": case_id,
        "serviceCode": service,
        "serviceName": value.get("service_name").and_then(Value::as_str).unwrap_or_default(),
        "serviceVersion": version,
        "serviceDepartmentCode": department,
        "handleStateCode": handle_state(value.get("result").and_then(Value::as_str).unwrap_or_default()),
        "evaluateChannel": channel,
        "satisfaction": level.to_string(),
        "evaluateTime": time,
        "anonymous": if anonymous { "1" } else { "0" },
        "indicators": value.get("indicators").and_then(Value::as_object).map(|i| {
            i.iter()
                .map(|(code, score)| json!({"indexCode": code, "score": score.as_u64().unwrap_or(0).to_string()}))
                .collect::<Vec<_>>()
        }).unwrap_or_default(),
    });
    if let Some(region) = region {
        body["regionCode"] = json!(region);
    }
    if let Some(comment) = value.get("comment").and_then(Value::as_str) {
        body["evaluateContent"] = json!(comment);
    }
    if !anonymous {
        // Masked by the gateway already; the national system refuses anything unmasked.
        if let Some(name) = value.get("evaluator_name").and_then(Value::as_str) {
            body["applicantName"] = json!(name);
        }
        if let Some(number) = value.get("evaluator_id_number").and_then(Value::as_str) {
            body["applicantCardType"] = json!("111");
            body["applicantCardNumber"] = json!(number);
        }
    }
    Ok(body)
}

/// The `reportNo` of an answer, or what went wrong: 5xx and unreadable answers are the
/// system's trouble (retried), `E1xxx` the gateway's credentials (an operator must act),
/// `E2xxx` a refusal of the report itself.
pub fn read_answer(status: u16, body: &[u8]) -> Result<String, AdapterError> {
    if status >= 500 {
        return Err(AdapterError::Unavailable(format!(
            "the national system answered HTTP {status}"
        )));
    }
    let answer: Value = serde_json::from_slice(body).map_err(|e| {
        AdapterError::Protocol(format!(
            "the national system answered unreadable JSON (HTTP {status}): {e}"
        ))
    })?;
    let code = answer
        .get("code")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let message = answer
        .get("msg")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match code {
        "200" => answer
            .pointer("/data/reportNo")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| AdapterError::Protocol("an accepted report without reportNo".into())),
        c if c.starts_with("E1") => Err(AdapterError::Internal(format!(
            "the national system refused the gateway's credentials ({c} {message}): check app-key and app-secret"
        ))),
        c if c.starts_with("E2") => Err(AdapterError::Rejected(Rejection {
            code: c.to_string(),
            message,
        })),
        other => Err(AdapterError::Protocol(format!(
            "the national system answered code `{other}` (HTTP {status})"
        ))),
    }
}

/// The report's schema (the gateway's unified report).
pub fn report_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "好差评数据上报",
        "type": "object",
        "required": ["evaluation_id", "case_id", "service", "service_version", "department", "channel", "level", "evaluated_at"],
        "properties": {
            "evaluation_id": {"type": "string"},
            "case_id": {"type": "string"},
            "service": {"type": "string"},
            "service_name": {"type": "string"},
            "service_version": {"type": "string"},
            "department": {"type": "string"},
            "channel": {"enum": ["window", "qr", "online", "card"]},
            "level": {"type": "integer", "minimum": 1, "maximum": 5},
            "indicators": {"type": "object"},
            "anonymous": {"type": "boolean"},
            "evaluator_name": {"type": ["string", "null"]},
            "evaluator_id_number": {"type": ["string", "null"]},
            "comment": {"type": ["string", "null"]},
            "result": {"type": "string"},
            "evaluated_at": {"type": "string"}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unified(anonymous: bool) -> String {
        json!({
            "evaluation_id": "e1", "case_id": "c1", "service": "tax.registration",
            "service_name": "税务登记", "service_version": "1", "department": "tax",
            "channel": "qr", "level": 5, "indicators": {"overall": 5},
            "anonymous": anonymous, "evaluator_name": "王**", "evaluator_id_number": "1101**********002X",
            "comment": "等了很久", "result": "completed", "evaluated_at": "2026-12-03T21:16:48+08:00"
        })
        .to_string()
    }

    #[test]
    fn a_report_is_mapped_to_the_national_fields() {
        let body = report(&unified(false), Some("350100"), "key-1").unwrap();
        assert_eq!(body["evaluateId"], "key-1");
        assert_eq!(body["projNo"], "c1");
        assert_eq!(body["evaluateChannel"], "2");
        assert_eq!(body["satisfaction"], "5");
        assert_eq!(body["evaluateTime"], "20261203211648");
        assert_eq!(body["handleStateCode"], "1");
        assert_eq!(body["applicantCardNumber"], "1101**********002X");
        assert_eq!(body["regionCode"], "350100");
        let anonymous = report(&unified(true), None, "key-1").unwrap();
        assert!(anonymous.get("applicantCardNumber").is_none());
        assert!(anonymous.get("applicantName").is_none());
        let bad = report(r#"{"channel": "fax", "level": 9}"#, None, "k").unwrap_err();
        assert!(bad.iter().any(|p| p.field == "channel"));
        assert!(bad.iter().any(|p| p.field == "level"));
    }

    #[test]
    fn answers_are_read_by_their_codes() {
        assert_eq!(
            read_answer(
                200,
                br#"{"code":"200","msg":"ok","data":{"reportNo":"HCP1"}}"#
            )
            .unwrap(),
            "HCP1"
        );
        assert!(matches!(
            read_answer(503, b""),
            Err(AdapterError::Unavailable(_))
        ));
        assert!(matches!(
            read_answer(200, br#"{"code":"E2003","msg":"bad"}"#),
            Err(AdapterError::Rejected(r)) if r.code == "E2003"
        ));
        assert!(matches!(
            read_answer(200, br#"{"code":"E1001","msg":"sign"}"#),
            Err(AdapterError::Internal(_))
        ));
        assert!(matches!(
            read_answer(200, b"<html>"),
            Err(AdapterError::Protocol(_))
        ));
    }
}
