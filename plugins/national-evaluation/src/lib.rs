//! Adapter for the national 好差评 system (全国一体化政务服务平台好差评系统): the gateway's
//! evaluation reports, in that system's own format, each request signed with HMAC-SM3.
//!
//! The system is reached like a department (`[departments.national-evaluation]`, named by
//! `[evaluations] reporting`). The gateway calls `submit` with matter `evaluation.report`, the
//! unified report as payload (masked personal data only) and the evaluation's id as the
//! idempotency key, which becomes the report's `evaluateId`: the national system answers a
//! repeated `evaluateId` with its first answer, so a retry never files a report twice. The
//! receipt's reference is the system's `reportNo`, its state `approved` (= reported).
//!
//! Settings: `app-key`, optional `region-code` (行政区划代码, sent as `regionCode`); key:
//! `app-secret` (kind `hmac`), held by the gateway, which makes the HMAC-SM3 (`sdk::crypto`).
//!
//! # Layout
//! - `lib.rs`: the contract: `describe` and `submit` (the only exports this system takes; the
//!   others answer a clear error).
//! - [`protocol`]: the report's mapping, the signed string, the answer's reading, pure.

pub mod protocol;

use sdk::http::Request;
use sdk::{
    AdapterError, CallbackRequest, Description, FieldError, MatterInfo, Receipt, StatusReport,
    Submission,
};

/// The adapter.
pub struct NationalEvaluation;

fn unsupported(what: &str) -> AdapterError {
    AdapterError::InvalidInput(vec![FieldError::new(
        "",
        "unsupported",
        format!("好差评系统不提供{what}"),
    )])
}

impl sdk::Adapter for NationalEvaluation {
    fn describe() -> Description {
        Description {
            department: protocol::DEPARTMENT.into(),
            contract_version: sdk::CONTRACT_VERSION.into(),
            adapter_version: env!("CARGO_PKG_VERSION").into(),
            matters: vec![MatterInfo {
                code: protocol::REPORT.into(),
                name: "好差评数据上报".into(),
                input_schema: protocol::report_schema().to_string(),
            }],
            lookups: Vec::new(),
        }
    }

    fn validate(matter: String, payload: String) -> Vec<FieldError> {
        if matter != protocol::REPORT {
            return vec![FieldError::new(
                "",
                "unknown_matter",
                "好差评系统只接收 evaluation.report",
            )];
        }
        match protocol::report(&payload, None, "") {
            Ok(_) => Vec::new(),
            // An empty payload (the gateway's smoke test) is not a report yet.
            Err(_) if payload.trim() == "{}" => Vec::new(),
            Err(problems) => problems,
        }
    }

    /// Report one evaluation; the idempotency key is its `evaluateId`.
    fn submit(submission: Submission) -> Result<Receipt, AdapterError> {
        if submission.matter != protocol::REPORT {
            return Err(unsupported(&format!("事项「{}」", submission.matter)));
        }
        let region = sdk::config::get("region-code");
        let body = protocol::report(
            &submission.payload,
            region.as_deref(),
            &submission.idempotency_key,
        )
        .map_err(AdapterError::InvalidInput)?;
        let body = body.to_string();
        let key = sdk::config::require("app-key")?;
        let timestamp = (sdk::sign::unix_seconds() * 1000).to_string();
        let nonce = sdk::sign::nonce();
        let signed =
            protocol::signed_string(protocol::REPORT_PATH, &timestamp, &nonce, body.as_bytes());
        let signature =
            sdk::crypto::mac_hex("app-secret", sdk::crypto::Mac::HmacSm3, signed.as_bytes())?;
        let response = Request::post(protocol::REPORT_PATH)
            .header("Content-Type", "application/json; charset=UTF-8")
            .header("X-App-Key", key)
            .header("X-Timestamp", timestamp)
            .header("X-Nonce", nonce)
            .header("X-Sign", signature)
            .body(body.into_bytes())
            .send()?;
        let number = protocol::read_answer(response.status, &response.body)?;
        sdk::log::info(&format!("evaluation reported, reportNo {number}"));
        Ok(Receipt {
            reference: number,
            state: sdk::StepState::Approved,
            message: None,
            outputs: "{}".into(),
            requested: None,
        })
    }

    fn status(_matter: String, reference: String) -> Result<StatusReport, AdapterError> {
        // A report is final once filed: nothing to poll.
        Ok(StatusReport {
            reference,
            state: sdk::StepState::Approved,
            message: None,
            outputs: "{}".into(),
            requested: None,
        })
    }

    fn lookup(name: String, _query: String) -> Result<String, AdapterError> {
        Err(unsupported(&format!("查询「{name}」")))
    }

    fn on_callback(_request: CallbackRequest) -> Result<StatusReport, AdapterError> {
        Err(unsupported("回调：上报结果即时返回"))
    }
}

sdk::export_adapter!(NationalEvaluation);
