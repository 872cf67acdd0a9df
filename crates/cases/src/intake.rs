//! Intake (受理): a clean application is stored durably — the case, one step per matter, its
//! first event, in one transaction — before the caller is answered. A repeat with the same
//! `Idempotency-Key` answers the first case.

use crate::one_thing::Sources;
use crate::{CaseError, Orchestrator};
use gateway_store::{Arrival, NewStep};
use serde_json::Value;

/// An accepted application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The case id.
    pub case_id: String,
    /// True when this was a repeat of an earlier request with the same `Idempotency-Key`.
    pub replayed: bool,
}

impl Orchestrator {
    /// Review and, when clean, durably accept an application. Returns the case id.
    ///
    /// Steps that wait for others are stored as `waiting`; their input is made when the steps
    /// they wait for are approved, from the form, the lookup answers and those steps' outputs.
    /// The materials of the draft `admission.draft` names (the client's own) are reviewed with
    /// the rest, stored with the case, and the draft consumed, in the case's transaction.
    pub async fn apply(
        &self,
        service_code: &str,
        form: Value,
        mut admission: Arrival,
    ) -> Result<Applied, CaseError> {
        if let Some(applied) = self.repeated(&admission).await? {
            return Ok(applied);
        }
        let catalogue = self.catalogue();
        let provided = match &admission.draft {
            Some(draft) => Some(
                self.provided_in_draft(admission.client.as_deref(), draft, service_code)
                    .await?,
            ),
            None => None,
        };
        let review = self
            .review_in(&catalogue, service_code, &form, provided.as_deref())
            .await?;
        if !review.problems.is_empty() {
            return Err(CaseError::InvalidInput(review.problems));
        }
        admission.materials = review.materials.for_case.clone();
        crate::lifecycle::commitments::check_signed(
            &admission,
            self.material_settings().commitment_required,
        )?;
        let service = &catalogue.services[service_code];
        admission.service_name = Some(service.name.clone());
        let sources = Sources {
            form: Some(&form),
            lookups: Some(&review.lookups),
            outputs: Default::default(),
        };
        let steps: Vec<NewStep> = service
            .steps
            .iter()
            .map(|s| NewStep {
                step: s.id.clone(),
                matter: s.matter.clone(),
                department: catalogue.matters[&s.matter].department.clone(),
                after: s.after.clone(),
                input: match (&s.input, s.after.is_empty()) {
                    (None, _) => form.to_string(),
                    (Some(mapping), true) => sources.build_input(mapping).to_string(),
                    (Some(_), false) => "{}".to_string(),
                },
            })
            .collect();
        let case_id = uuid::Uuid::now_v7().to_string();
        if let Err(error) = self
            .store
            .create_case(
                &case_id,
                service_code,
                &form,
                &review.lookups,
                &steps,
                &admission,
            )
            .await
        {
            // Two requests with one key raced; the loser answers with the winner's case.
            return match self.repeated(&admission).await? {
                Some(applied) => Ok(applied),
                None => Err(match error {
                    // The draft was consumed by another application (or expired) meanwhile.
                    gateway_store::StoreError::Gone { what, id } => {
                        CaseError::NotFound { what, id }
                    }
                    other => other.into(),
                }),
            };
        }
        tracing::info!(case = %case_id, service = %service_code, steps = steps.len(), "application accepted");
        self.wake.notify_one();
        Ok(Applied {
            case_id,
            replayed: false,
        })
    }

    /// The earlier case of a repeated request, or a conflict when the key was used for another.
    pub(crate) async fn repeated(&self, admission: &Arrival) -> Result<Option<Applied>, CaseError> {
        let Some(key) = &admission.idempotency_key else {
            return Ok(None);
        };
        match self.store.case_by_idempotency_key(key).await? {
            Some((case_id, digest)) if digest == admission.request_digest => Ok(Some(Applied {
                case_id,
                replayed: true,
            })),
            Some(_) => Err(CaseError::IdempotencyConflict(key.clone())),
            None => Ok(None),
        }
    }
}
