//! Adapter for the notification channel `sms` (短信平台): the gateway's notifications (applicant
//! notices, 催办) are its matter `sms.send`, one message per submission; the provider's delivery
//! receipts come back as callbacks (`POST /callbacks/sms`), read here into status reports
//! (`approved`: delivered, `rejected`: undeliverable) the gateway records on the notification.
//!
//! **退订.** The provider forwards the applicant's reply to a message (上行短信) to the same
//! callback. The contract's `on-callback` answers a status report, which has no shape for a
//! reply that names no message, so this is the smallest honest mapping, the one the gateway's
//! notifications read (`gateway_cases::notifications::opt_out`):
//! - a reply `TD`, `T` or `退订` (any case, full-width letters, blanks and a full
//!   stop around): state `withdrawn` — the recipient withdrew from the messages —, reference
//!   `reply:<the provider's sequence id>` (no message of ours), outputs `{"reply": {"opt_out":
//!   true, "phone": "<the number>"}}`: the gateway opts the number out of every case with it;
//! - any other reply: state `processing`, outputs `{"reply": {"opt_out": false}}`, no number;
//!   the gateway does nothing with it.
//!
//! The number is in the outputs because opting it out needs it; the reply's text never leaves
//! the adapter. The gateway keeps the number only as a keyed digest and masked.
//!
//! The submission's idempotency key is the notification's id and goes to the provider as its
//! `out_id`: a message sent again after a crash is answered with the first one's id, not sent
//! twice. The provider's per-number rate limit is `Unavailable` (the gateway retries later); a
//! refused signature, template, parameters or number is `Rejected` (not retried).
//!
//! Settings (`[departments.sms.settings]`): `access-key`. Keys the host holds
//! (`[departments.sms.keys.*]`, kind `hmac`): `access-secret` (signs each request),
//! `callback-secret` (checks each delivery receipt and reply). The adapter never sees either.
//!
//! # Layout
//! - `lib.rs`: the contract, one function per export; only here is the host called.
//! - [`protocol`]: the provider's protocol as pure functions, unit-tested.

pub mod protocol;

use sdk::crypto::Mac;
use sdk::http::Request;
use sdk::{
    AdapterError, CallbackRequest, Description, FieldError, MatterInfo, Receipt, StatusReport,
    Submission,
};

/// The adapter.
pub struct Sms;

fn unknown_matter(matter: &str) -> AdapterError {
    AdapterError::InvalidInput(vec![FieldError::new(
        "",
        "unknown_matter",
        format!("短信平台不办理事项「{matter}」"),
    )])
}

impl sdk::Adapter for Sms {
    fn describe() -> Description {
        Description {
            department: protocol::DEPARTMENT.into(),
            contract_version: sdk::CONTRACT_VERSION.into(),
            adapter_version: env!("CARGO_PKG_VERSION").into(),
            matters: vec![MatterInfo {
                code: protocol::SEND.into(),
                name: "发送短信".into(),
                input_schema: protocol::message_schema().to_string(),
            }],
            lookups: Vec::new(),
        }
    }

    fn validate(matter: String, payload: String) -> Vec<FieldError> {
        if matter != protocol::SEND {
            return vec![FieldError::new("", "unknown_matter", "短信平台只发送短信")];
        }
        protocol::message(&payload).err().unwrap_or_default()
    }

    /// Send one message.
    fn submit(submission: Submission) -> Result<Receipt, AdapterError> {
        if submission.matter != protocol::SEND {
            return Err(unknown_matter(&submission.matter));
        }
        let message = protocol::message(&submission.payload).map_err(AdapterError::InvalidInput)?;
        let key = sdk::config::require("access-key")?;
        let body = protocol::send_body(&message, &submission.callback_url);
        let timestamp = sdk::sign::unix_seconds();
        let signature = sdk::crypto::mac_hex(
            protocol::ACCESS_KEY,
            Mac::HmacSha256,
            &protocol::signed_text(timestamp, &body),
        )?;
        let response = Request::post(protocol::MESSAGES_PATH)
            .header("Content-Type", "application/json")
            .header("X-Sms-Key", key)
            .header("X-Sms-Timestamp", timestamp.to_string())
            .header("X-Sms-Signature", signature)
            .body(body)
            .send()?;
        let biz_id = protocol::read_sent(response.status, &response.body)?;
        sdk::log::info(&format!("message {} taken as {biz_id}", message.out_id));
        Ok(Receipt::accepted(biz_id))
    }

    /// The provider reports delivery by callback only.
    fn status(_matter: String, _reference: String) -> Result<StatusReport, AdapterError> {
        Err(AdapterError::InvalidInput(vec![FieldError::new(
            "",
            "no_status",
            "短信平台以回执回调报告送达结果",
        )]))
    }

    fn lookup(name: String, _query: String) -> Result<String, AdapterError> {
        Err(AdapterError::InvalidInput(vec![FieldError::new(
            "",
            "unknown_lookup",
            format!("短信平台不提供查询「{name}」"),
        )]))
    }

    /// A delivery receipt, or the applicant's reply (退订).
    fn on_callback(request: CallbackRequest) -> Result<StatusReport, AdapterError> {
        protocol::read_callback(&request.headers, &request.body, |signature| {
            Ok(sdk::crypto::verify_mac_hex(
                protocol::CALLBACK_KEY,
                Mac::HmacSha256,
                &request.body,
                signature,
            )?)
        })
    }
}

sdk::export_adapter!(Sms);
