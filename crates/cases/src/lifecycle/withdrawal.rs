//! 撤回: the applicant withdraws a case. One transaction ([`gateway_store::Store::withdraw_case`]):
//! steps no department holds (waiting, or pending and not being delivered) are withdrawn at
//! once and never delivered; each step a department holds gets a withdrawal, delivered once
//! (one idempotency key) by [`super::delivery`], whose receipt sets the step's final state.

use super::views::{WithdrawalAccepted, WithdrawalRequest};
use crate::{CaseError, Orchestrator};
use gateway_base::model::{FieldProblem, StepState};
use gateway_store::CaseRecord;
use gateway_store::actions::Withdrawal;
use std::collections::BTreeSet;

/// The longest reason taken, in characters.
const MAX_REASON: usize = 500;

impl Orchestrator {
    /// Withdraw `case` (the caller's own). Refused when every matter is decided
    /// (`case_decided`), when it was withdrawn already (`already_withdrawn`), or when a
    /// department that must be told has an adapter without `withdraw` (contract 0.1,
    /// `unsupported_by_department` naming the matters) — nothing changed.
    pub async fn withdraw(
        &self,
        case: &CaseRecord,
        request: WithdrawalRequest,
    ) -> Result<WithdrawalAccepted, CaseError> {
        let reason = request.reason.trim();
        let length = reason.chars().count();
        if length == 0 || length > MAX_REASON {
            return Err(CaseError::InvalidInput(vec![FieldProblem::new(
                "reason",
                if length == 0 { "required" } else { "length" },
                format!("撤回理由应为1至{MAX_REASON}个字符"),
            )]));
        }
        let steps = self.store.steps(&case.id).await?;
        let untellable: BTreeSet<String> = self
            .untellable(steps.iter().map(|s| s.department.clone()))
            .into_iter()
            .collect();
        let catalogue = self.catalogue();
        match self
            .store
            .withdraw_case(&case.id, reason, &untellable)
            .await?
        {
            Withdrawal::Done { at_once, told } => {
                tracing::info!(case = %case.id, withdrawn = at_once.len(), notifying = told.len(), "case withdrawn");
                for step in steps.iter().filter(|s| at_once.contains(&s.step)) {
                    self.announce(step, StepState::Withdrawn);
                }
                self.wake.notify_one();
                Ok(WithdrawalAccepted {
                    case_id: case.id.clone(),
                    withdrawn: at_once,
                    notifying: told,
                })
            }
            Withdrawal::Decided => Err(CaseError::CaseDecided),
            Withdrawal::AlreadyWithdrawn => Err(CaseError::AlreadyWithdrawn),
            Withdrawal::Untellable(matters) => Err(CaseError::LifecycleUnsupported {
                what: "撤回",
                matters: matters
                    .iter()
                    .map(|m| {
                        catalogue
                            .matters
                            .get(m)
                            .map_or(m.clone(), |m| m.name.clone())
                    })
                    .collect(),
            }),
        }
    }

    /// A step whose delivery attempt failed while its case was withdrawn: withdrawn instead of
    /// retried. True when it was.
    pub(crate) async fn withdrawn_instead_of_retry(
        &self,
        step: &gateway_store::StepRecord,
    ) -> bool {
        match self.store.withdraw_instead_of_retry(step).await {
            Ok(true) => {
                self.announce(step, StepState::Withdrawn);
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::error!(case = %step.case_id, error = %e, "checking a withdrawal failed");
                false
            }
        }
    }
}
