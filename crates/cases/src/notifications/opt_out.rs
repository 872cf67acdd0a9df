//! 退订: the applicant's reply to a message ("TD", "退订"), which the provider forwards by
//! callback. The channel's adapter reads it (`on-callback`) into a status report the gateway
//! tells from a delivery receipt by its outputs (the contract has no other shape for it; the
//! mapping is the SMS adapter's crate doc):
//!
//! - `outputs` = `{"reply": {"opt_out": true, "phone": "<the number>"}}`, state `withdrawn`
//!   (the recipient withdrew from the messages), `reference` = the provider's id of the reply;
//! - any other reply: `{"reply": {"opt_out": false}}`, state `processing`, no number: nothing
//!   to do (its text is not kept).
//!
//! An opt-out reply from the configured channel opts the number out of every case it is
//! registered on and of cases registering it later (`gateway_store::Store::record_phone_opt_out`:
//! found by a keyed digest, never stored in clear); the sender then ends their notices
//! `opted_out`, and `GET /api/v1/cases/{id}/notifications` shows `opt_out` with `opted_out_by:
//! "reply"`. A reply is never held as an early delivery receipt.

use crate::{CaseError, Orchestrator};
use gateway_base::config::notifications::is_mobile;
use gateway_base::redact::mask_phone;
use gateway_plugins::host::contract;
use serde_json::Value;

/// An applicant's reply, as the channel's adapter read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    /// An opt-out (退订) with the number it came from; none for any other reply.
    pub(crate) opt_out: Option<String>,
}

/// The reply a status report carries, if it is one (its outputs name `reply`).
pub(crate) fn reply_of(report: &contract::StatusReport) -> Option<Reply> {
    let outputs: Value = serde_json::from_str(&report.outputs).ok()?;
    let reply = outputs.get("reply")?;
    let opt_out = reply["opt_out"].as_bool() == Some(true)
        && matches!(report.state, contract::StepState::Withdrawn);
    Some(Reply {
        opt_out: reply["phone"]
            .as_str()
            .filter(|p| opt_out && is_mobile(p))
            .map(str::to_string),
    })
}

impl Orchestrator {
    /// Whether `department` is the notification channel in force.
    pub(crate) fn is_notification_channel(&self, department: &str) -> bool {
        self.notification_settings()
            .config
            .as_ref()
            .is_some_and(|c| c.channel == department)
    }

    /// Record an applicant's reply to the channel: an opt-out opts the number out of every
    /// case with it; anything else is left (and not kept).
    pub(crate) async fn channel_reply(
        &self,
        department: &str,
        reference: &str,
        reply: Reply,
    ) -> Result<(), CaseError> {
        let Some(phone) = reply.opt_out else {
            tracing::info!(%department, %reference, "a reply that is not an opt-out; nothing to do");
            return Ok(());
        };
        let cases = self
            .store
            .record_phone_opt_out(department, &phone, reference)
            .await?;
        tracing::info!(%department, %reference, phone = %mask_phone(&phone), cases, "the applicant replied 退订: the number is opted out");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(state: contract::StepState, outputs: &str) -> contract::StatusReport {
        contract::StatusReport {
            reference: "MO1".into(),
            state,
            message: None,
            outputs: outputs.into(),
            requested: None,
        }
    }

    #[test]
    fn only_an_opt_out_reply_with_a_mobile_number_opts_out() {
        use contract::StepState::{Approved, Processing, Withdrawn};
        let td = r#"{"reply": {"opt_out": true, "phone": "13912345678"}}"#;
        assert_eq!(
            reply_of(&report(Withdrawn, td)),
            Some(Reply {
                opt_out: Some("13912345678".into())
            })
        );
        // Not withdrawn, not a number, not an opt-out: a reply to leave.
        for (state, outputs) in [
            (Processing, td),
            (
                Withdrawn,
                r#"{"reply": {"opt_out": true, "phone": "12345"}}"#,
            ),
            (Processing, r#"{"reply": {"opt_out": false}}"#),
        ] {
            assert_eq!(
                reply_of(&report(state, outputs)),
                Some(Reply { opt_out: None }),
                "{outputs}"
            );
        }
        // A delivery receipt is no reply.
        assert_eq!(reply_of(&report(Approved, "{}")), None);
    }
}
