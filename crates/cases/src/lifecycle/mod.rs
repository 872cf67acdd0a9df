//! The case after delivery: 补正, 撤回, 容缺, and the paused clock.
//!
//! - [`supplements`]: a department returns a step with what it asks for (`requested`, kept
//!   masked on the step); the applicant's supplement (changed fields merged into the step's
//!   input and checked against the matter's schema, materials uploaded to the case first) is
//!   stored with the step `supplemented` and its clock's new terms, then delivered.
//! - [`withdrawal`]: the applicant withdraws the case; steps no department holds are withdrawn
//!   at once, the departments holding the others are told.
//! - [`commitments`]: 容缺 — a deferrable material promised at application, due a number of
//!   working days after receipt; supplied later, it is delivered to the steps at their
//!   departments that take it.
//! - [`delivery`]: the outbox of supplements and withdrawals, delivered by the dispatcher's
//!   loop through the adapters' `supplement` and `withdraw`, claimed, retried with the same
//!   idempotency key; the receipt's state becomes the step's.
//! - [`views`]: what the case view and the lifecycle routes answer.
//!
//! Contract 0.1 adapters have neither `supplement` nor `withdraw`: the API refuses a
//! supplement or a withdrawal that would need one up front (409, nothing stored).

pub mod commitments;
pub mod delivery;
pub mod supplements;
pub mod views;
pub mod withdrawal;

use crate::Orchestrator;
use gateway_base::redact::redact;
use gateway_plugins::host::contract;
use serde_json::json;

/// What a returning department asks for, as stored on the step: JSON text, every text masked.
pub fn requested_json(requested: &contract::SupplementRequest) -> String {
    json!({
        "fields": requested.fields.iter().map(|f| json!({
            "field": redact(&f.field),
            "code": redact(&f.code),
            "message": redact(&f.message),
        })).collect::<Vec<_>>(),
        "materials": requested.materials.iter().map(|m| json!({
            "code": redact(&m.code),
            "reason": redact(&m.reason),
        })).collect::<Vec<_>>(),
        "due": requested.due.as_deref().map(redact),
    })
    .to_string()
}

impl Orchestrator {
    /// The departments whose adapters cannot take a supplement or a withdrawal (contract 0.1).
    pub(crate) fn untellable(&self, departments: impl IntoIterator<Item = String>) -> Vec<String> {
        departments
            .into_iter()
            .filter(|d| {
                self.adapters
                    .get(d)
                    .is_some_and(|a| !a.contract().has_materials())
            })
            .collect()
    }
}
