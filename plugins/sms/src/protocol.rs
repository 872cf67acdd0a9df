//! The SMS provider's protocol as pure functions: the send request's body and signature, its
//! answers, the delivery receipt's check and reading. Unit-tested without a host.
//!
//! - `POST /sms/v1/messages`, JSON `{phone_numbers, sign_name, template_code, template_param,
//!   out_id, status_callback}`, with `X-Sms-Key`, `X-Sms-Timestamp` (Unix seconds) and
//!   `X-Sms-Signature` = hex HMAC-SHA256(access secret, `<timestamp>\n<body>`).
//! - The answer is HTTP 200 with `{code, message, biz_id?}`: `OK` (sent, `biz_id` its id; a
//!   repeated `out_id` answers the first message's `biz_id` without sending again),
//!   `isv.BUSINESS_LIMIT_CONTROL` (the number's rate limit: try later), other `isv.*` codes
//!   (the signature, template, parameters or number refused). 401: the credentials.
//! - Delivery receipts: `POST <status_callback>` with `{biz_id, out_id, phone_number, success,
//!   err_code, report_time}` and `X-Sms-Signature` = hex HMAC-SHA256(callback secret, body).
//! - Replies (上行短信): the applicant's answer to a message, `POST` to the same callback with
//!   `{sequence_id, phone_number, content, sign_name, send_time}`, signed alike. `TD`, `T` or
//!   `退订` (any case, full-width letters, blanks and a full stop around) is an unsubscribe.

use sdk::{AdapterError, FieldError, Rejection, StatusReport, StepState};
use serde::Deserialize;
use serde_json::{Value, json};

/// The department id.
pub const DEPARTMENT: &str = "sms";
/// The one matter: send one message.
pub const SEND: &str = "sms.send";
/// Where messages are sent.
pub const MESSAGES_PATH: &str = "/sms/v1/messages";

/// What the gateway hands over (the submission's payload).
#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// The recipient's mobile number.
    pub phone: String,
    /// The sender signature (签名).
    pub sign_name: String,
    /// The template's code at the provider.
    pub template: String,
    /// The template's variables.
    #[serde(default)]
    pub variables: serde_json::Map<String, Value>,
    /// The gateway's id of the message.
    pub out_id: String,
}

/// The input schema of `sms.send`.
pub fn message_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["phone", "sign_name", "template", "out_id"],
        "additionalProperties": false,
        "properties": {
            "phone": {"type": "string", "pattern": "^1[3-9][0-9]{9}$", "description": "手机号码"},
            "sign_name": {"type": "string", "minLength": 1, "description": "短信签名"},
            "template": {"type": "string", "minLength": 1, "description": "模板编码"},
            "variables": {"type": "object", "additionalProperties": {"type": "string"}},
            "out_id": {"type": "string", "minLength": 1, "maxLength": 64},
        }
    })
}

fn problem(field: &str, code: &str, message: &str) -> FieldError {
    FieldError::new(field, code, message)
}

/// Read the payload; every problem at once.
pub fn message(payload: &str) -> Result<Message, Vec<FieldError>> {
    let message: Message = serde_json::from_str(payload)
        .map_err(|e| vec![problem("", "format", &format!("短信内容无法读取：{e}"))])?;
    let b = message.phone.as_bytes();
    let mobile = b.len() == 11
        && b[0] == b'1'
        && (b'3'..=b'9').contains(&b[1])
        && b.iter().all(u8::is_ascii_digit);
    let mut problems = Vec::new();
    if !mobile {
        problems.push(problem("phone", "format", "应为11位手机号码"));
    }
    if message.sign_name.trim().is_empty() {
        problems.push(problem("sign_name", "required", "短信签名不能为空"));
    }
    if message.template.trim().is_empty() {
        problems.push(problem("template", "required", "模板编码不能为空"));
    }
    if problems.is_empty() {
        Ok(message)
    } else {
        Err(problems)
    }
}

/// The send request's body.
pub fn send_body(message: &Message, status_callback: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "phone_numbers": message.phone,
        "sign_name": message.sign_name,
        "template_code": message.template,
        "template_param": message.variables,
        "out_id": message.out_id,
        "status_callback": status_callback,
    }))
    .expect("JSON in memory")
}

/// The host key (`hmac`) that signs each request: the provider's access secret.
pub const ACCESS_KEY: &str = "access-secret";

/// The host key (`hmac`) that checks the provider's callbacks.
pub const CALLBACK_KEY: &str = "callback-secret";

/// What a request sent at `timestamp` (Unix seconds) with `body` signs: its `X-Sms-Signature`
/// is the hex HMAC-SHA256 of this under the access secret.
pub fn signed_text(timestamp: u64, body: &[u8]) -> Vec<u8> {
    let mut signed = format!("{timestamp}\n").into_bytes();
    signed.extend_from_slice(body);
    signed
}

#[derive(Deserialize)]
struct Answer {
    code: String,
    #[serde(default)]
    message: String,
    biz_id: Option<String>,
}

/// The provider's answer to a send: the message's id, or why not.
pub fn read_sent(status: u16, body: &[u8]) -> Result<String, AdapterError> {
    match status {
        200 => {}
        401 | 403 => {
            return Err(AdapterError::Internal(format!(
                "the SMS provider refused the gateway's credentials (HTTP {status}): check access-key and access-secret"
            )));
        }
        429 | 500..=599 => {
            return Err(AdapterError::Unavailable(format!(
                "the SMS provider answered HTTP {status}"
            )));
        }
        other => {
            return Err(sdk::protocol_error(format!(
                "the SMS provider answered HTTP {other}"
            )));
        }
    }
    let answer: Answer = serde_json::from_slice(body).map_err(|e| {
        sdk::protocol_error(format!("unreadable answer from the SMS provider: {e}"))
    })?;
    match answer.code.as_str() {
        "OK" => answer
            .biz_id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| sdk::protocol_error("the SMS provider's OK has no biz_id")),
        // The number's rate limit: the message waits, the gateway tries again later.
        "isv.BUSINESS_LIMIT_CONTROL" => Err(AdapterError::Unavailable(format!(
            "rate limited by the SMS provider: {}",
            answer.message
        ))),
        code => Err(AdapterError::Rejected(Rejection {
            code: code.to_string(),
            message: answer.message,
        })),
    }
}

/// What a reply's `content` must be, trimmed and upper-cased, to unsubscribe: the keywords
/// operators and providers treat as 退订 (not 取消, which an applicant may mean of the case).
const OPT_OUT_WORDS: [&str; 3] = ["TD", "T", "退订"];

/// Whether a reply's text asks to unsubscribe.
pub fn is_opt_out(content: &str) -> bool {
    let word = content
        .trim()
        .trim_end_matches(['.', '。', '!', '！'])
        .trim()
        .to_uppercase();
    // Full-width letters (ＴＤ) as typed on some phones.
    let word: String = word
        .chars()
        .map(|c| match c {
            'Ａ'..='Ｚ' => char::from_u32(c as u32 - 'Ａ' as u32 + 'A' as u32).unwrap_or(c),
            _ => c,
        })
        .collect();
    OPT_OUT_WORDS.contains(&word.as_str())
}

#[derive(Deserialize)]
struct Reply {
    sequence_id: Value,
    phone_number: String,
    content: String,
}

/// A callback, its `X-Sms-Signature` checked by `genuine` (the adapter asks the host, which
/// holds the callback secret): a delivery receipt (`approved` when
/// delivered, `rejected` when not), or the applicant's reply.
///
/// The contract's status report has no shape for a reply, so it is mapped as the gateway's
/// notifications read it: an unsubscribe is state `withdrawn` (the recipient withdrew from the
/// messages) with outputs `{"reply": {"opt_out": true, "phone": <the number>}}`; any other
/// reply is `processing` with `{"reply": {"opt_out": false}}` and no number. The reference is
/// `reply:<sequence_id>`, which names no message; the reply's text is not passed on.
pub fn read_callback(
    headers: &[(String, String)],
    body: &[u8],
    genuine: impl FnOnce(&str) -> Result<bool, AdapterError>,
) -> Result<StatusReport, AdapterError> {
    check_signature(headers, genuine)?;
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| sdk::protocol_error(format!("unreadable callback: {e}")))?;
    if value.get("biz_id").is_some() {
        return receipt_of(body);
    }
    let reply: Reply = serde_json::from_value(value)
        .map_err(|e| sdk::protocol_error(format!("unreadable reply: {e}")))?;
    let sequence = match &reply.sequence_id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let opt_out = is_opt_out(&reply.content);
    let (state, outputs) = if opt_out {
        (
            StepState::Withdrawn,
            json!({"reply": {"opt_out": true, "phone": reply.phone_number}}),
        )
    } else {
        (StepState::Processing, json!({"reply": {"opt_out": false}}))
    };
    let mut report = StatusReport::new(format!("reply:{sequence}"), state);
    report.outputs = outputs.to_string();
    report.message = Some(if opt_out { "退订" } else { "其他回复" }.to_string());
    Ok(report)
}

fn check_signature(
    headers: &[(String, String)],
    genuine: impl FnOnce(&str) -> Result<bool, AdapterError>,
) -> Result<(), AdapterError> {
    let signature = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-sms-signature"))
        .map(|(_, v)| v.as_str());
    let verified = match signature {
        Some(signature) => genuine(signature)?,
        None => false,
    };
    if !verified {
        return Err(AdapterError::InvalidInput(vec![FieldError::new(
            "",
            "signature",
            "回执签名无效",
        )]));
    }
    Ok(())
}

#[derive(Deserialize)]
struct Receipt {
    biz_id: String,
    success: bool,
    #[serde(default)]
    err_code: String,
}

/// A delivery receipt, its signature checked by `genuine` as [`read_callback`] does:
/// `approved` when delivered, `rejected` when not.
pub fn read_receipt(
    headers: &[(String, String)],
    body: &[u8],
    genuine: impl FnOnce(&str) -> Result<bool, AdapterError>,
) -> Result<StatusReport, AdapterError> {
    check_signature(headers, genuine)?;
    receipt_of(body)
}

fn receipt_of(body: &[u8]) -> Result<StatusReport, AdapterError> {
    let receipt: Receipt = serde_json::from_slice(body)
        .map_err(|e| sdk::protocol_error(format!("unreadable delivery receipt: {e}")))?;
    let state = if receipt.success {
        StepState::Approved
    } else {
        StepState::Rejected
    };
    let mut report = StatusReport::new(receipt.biz_id, state);
    report.message = (!receipt.err_code.is_empty()).then_some(receipt.err_code);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the host answers for the key holding `secret`.
    fn under<'a>(
        secret: &'a str,
        body: &'a [u8],
    ) -> impl FnOnce(&str) -> Result<bool, AdapterError> + 'a {
        move |signature| {
            Ok(sdk::sign::verify_hmac_sha256_hex(
                secret.as_bytes(),
                body,
                signature,
            ))
        }
    }

    #[test]
    fn a_payload_is_read_with_every_problem_at_once() {
        let ok = message(
            r#"{"phone":"13912345678","sign_name":"【x】","template":"T1","variables":{"case":"c"},"out_id":"n1"}"#,
        )
        .unwrap();
        assert_eq!(ok.variables["case"], "c");
        let bad = message(r#"{"phone":"12345","sign_name":" ","template":"","out_id":"n1"}"#)
            .unwrap_err();
        let fields: Vec<&str> = bad.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["phone", "sign_name", "template"]);
        assert!(message("{}").is_err());
    }

    #[test]
    fn answers_map_to_receipts_retries_and_refusals() {
        assert_eq!(
            read_sent(200, br#"{"code":"OK","message":"OK","biz_id":"B1"}"#).unwrap(),
            "B1"
        );
        assert!(matches!(
            read_sent(
                200,
                br#"{"code":"isv.BUSINESS_LIMIT_CONTROL","message":"too many"}"#
            ),
            Err(AdapterError::Unavailable(_))
        ));
        match read_sent(
            200,
            br#"{"code":"isv.SMS_SIGNATURE_ILLEGAL","message":"bad sign"}"#,
        ) {
            Err(AdapterError::Rejected(r)) => assert_eq!(r.code, "isv.SMS_SIGNATURE_ILLEGAL"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read_sent(503, b""),
            Err(AdapterError::Unavailable(_))
        ));
        assert!(matches!(
            read_sent(401, b""),
            Err(AdapterError::Internal(_))
        ));
        assert!(matches!(
            read_sent(200, b"<html>"),
            Err(AdapterError::Protocol(_))
        ));
    }

    #[test]
    fn receipts_are_checked_and_read() {
        let body = br#"{"biz_id":"B1","out_id":"n1","phone_number":"13912345678","success":true,"err_code":"DELIVERED","report_time":"2026-12-03 10:00:00"}"#;
        let signature = sdk::sign::hmac_sha256_hex(b"cb", body);
        let headers = vec![("X-Sms-Signature".to_string(), signature)];
        let report = read_receipt(&headers, body, under("cb", body)).unwrap();
        assert_eq!(report.reference, "B1");
        assert_eq!(report.state, StepState::Approved);
        assert!(matches!(
            read_receipt(&headers, body, under("other", body)),
            Err(AdapterError::InvalidInput(_))
        ));
    }

    #[test]
    fn an_unsubscribe_reply_is_withdrawn_with_its_number_and_any_other_reply_carries_none() {
        let signed = |body: &[u8]| {
            vec![(
                "X-Sms-Signature".to_string(),
                sdk::sign::hmac_sha256_hex(b"cb", body),
            )]
        };
        for content in ["TD", " td ", "退订", "ＴＤ", "T。"] {
            let body = serde_json::to_vec(&json!({"sequence_id": 7, "phone_number": "13912345678",
                "content": content, "sign_name": "【x】", "send_time": "2026-12-03 10:00:00"}))
            .unwrap();
            let report = read_callback(&signed(&body), &body, under("cb", &body)).unwrap();
            assert_eq!(report.state, StepState::Withdrawn, "{content}");
            assert_eq!(report.reference, "reply:7");
            let outputs: Value = serde_json::from_str(&report.outputs).unwrap();
            assert_eq!(
                outputs,
                json!({"reply": {"opt_out": true, "phone": "13912345678"}})
            );
        }
        let body = br#"{"sequence_id":"8","phone_number":"13912345678","content":"TD\u4e00\u4e0b","sign_name":"x","send_time":"t"}"#;
        let report = read_callback(&signed(body), body, under("cb", body)).unwrap();
        assert_eq!(report.state, StepState::Processing);
        assert_eq!(report.reference, "reply:8");
        assert!(!report.outputs.contains("1391234"), "{}", report.outputs);
        assert!(!report.outputs.contains("TD"), "the text is not passed on");
        // Unsigned: refused; a receipt on the same callback is still a receipt.
        assert!(matches!(
            read_callback(&[], body, under("cb", body)),
            Err(AdapterError::InvalidInput(_))
        ));
        let receipt = br#"{"biz_id":"B1","out_id":"n1","phone_number":"13912345678","success":false,"err_code":"UNDELIV","report_time":"t"}"#;
        let report = read_callback(&signed(receipt), receipt, under("cb", receipt)).unwrap();
        assert_eq!(
            (report.reference.as_str(), report.state),
            ("B1", StepState::Rejected)
        );
    }

    #[test]
    fn the_signature_covers_the_timestamp_and_the_body() {
        assert_ne!(signed_text(1, b"{}"), signed_text(2, b"{}"));
        assert_eq!(signed_text(1, b"{}"), b"1\n{}");
    }
}
