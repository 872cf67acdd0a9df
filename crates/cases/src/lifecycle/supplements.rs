//! 补正: the applicant's supplement to a returned step, checked and stored in one transaction
//! (the step `supplemented`, its merged input, its clock's new terms, the action that delivers
//! it), then delivered by [`super::delivery`].

use super::views::{SupplementAccepted, SupplementRequest};
use crate::{CaseError, Orchestrator};
use gateway_base::config::SupplementClock;
use gateway_base::model::{FieldProblem, MaterialSource, StepState};
use gateway_base::time::now_ms;
use gateway_store::CaseRecord;
use gateway_store::actions::{NewSupplement, SupplementStored};
use serde_json::Value;

/// How a supplement arrives: its Idempotency-Key (scoped to the client) and the body's digest.
#[derive(Debug, Clone, Default)]
pub struct SupplementArrival {
    /// The portal's key, if it sent one.
    pub idempotency_key: Option<String>,
    /// SHA-256 of the body and the step, to tell a true repeat from a reused key.
    pub request_digest: String,
}

/// Merge `patch` into `target` (RFC 7386: objects merged field by field, `null` removes).
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

impl Orchestrator {
    /// Store the applicant's supplement to a returned step of `case` (the caller's own): only a
    /// `returned` step (`not_returned` otherwise), of a department whose adapter takes
    /// supplements; its fields merged into the step's input and checked against the matter's
    /// schema (every problem named), its materials uploaded to the case already. The step's
    /// clock goes on by the matter's `supplement_clock`. A repeat with the same key answers
    /// the first (`true`: replayed); the same key with another body is a conflict.
    pub async fn supplement(
        &self,
        case: &CaseRecord,
        step_id: &str,
        request: SupplementRequest,
        arrival: SupplementArrival,
    ) -> Result<(SupplementAccepted, bool), CaseError> {
        let accepted = |state| SupplementAccepted {
            case_id: case.id.clone(),
            step: step_id.to_string(),
            state,
        };
        let steps = self.store.steps(&case.id).await?;
        let step = steps
            .iter()
            .find(|s| s.step == step_id)
            .ok_or_else(|| CaseError::NotFound {
                what: "step",
                id: step_id.to_string(),
            })?;
        if let Some(key) = &arrival.idempotency_key
            && let Some(replay) = self
                .store
                .supplement_replay(&case.id, key, &arrival.request_digest)
                .await?
        {
            return match replay {
                SupplementStored::Replayed { step, same: true } if step == step_id => {
                    Ok((accepted(self.step_state(&case.id, step_id).await?), true))
                }
                _ => Err(CaseError::IdempotencyConflict(key.clone())),
            };
        }
        if step.state != StepState::Returned {
            return Err(CaseError::NotReturned {
                step: step_id.to_string(),
                state: step.state,
            });
        }
        let catalogue = self.catalogue();
        let matter = catalogue
            .matters
            .get(&step.matter)
            .ok_or_else(|| CaseError::NotFound {
                what: "matter",
                id: step.matter.clone(),
            })?;
        if !self.untellable([step.department.clone()]).is_empty() {
            return Err(CaseError::LifecycleUnsupported {
                what: "补正",
                matters: vec![matter.name.clone()],
            });
        }
        let mut input: Value = serde_json::from_str(&step.input).unwrap_or(Value::Null);
        let fields = Value::Object(request.fields.clone());
        merge(&mut input, &fields);
        let mut problems: Vec<FieldProblem> = catalogue
            .check_input(matter, &input)
            .into_iter()
            .map(|mut p| {
                p.field = if p.field.is_empty() {
                    "fields".into()
                } else {
                    format!("fields.{}", p.field)
                };
                p
            })
            .collect();
        let stored = self.store.case_materials(&case.id).await?;
        let mut codes = Vec::new();
        for (i, code) in request.materials.iter().enumerate() {
            let field = format!("materials[{i}]");
            if !matter.materials.iter().any(|m| &m.code == code) {
                problems.push(FieldProblem::new(
                    field,
                    "enum",
                    "本事项的材料清单中没有此材料",
                ));
            } else if !stored
                .iter()
                .any(|m| &m.code == code && matches!(m.source, MaterialSource::File { .. }))
            {
                problems.push(FieldProblem::new(
                    field,
                    "required",
                    "材料尚未上传：请先上传到办件（PUT /api/v1/cases/{id}/materials/{code}）",
                ));
            } else if !codes.contains(code) {
                codes.push(code.clone());
            }
        }
        if request.fields.is_empty() && request.materials.is_empty() {
            problems.push(FieldProblem::new(
                "",
                "required",
                "补正内容为空：请提交需补正的字段或材料",
            ));
        }
        if !problems.is_empty() {
            return Err(CaseError::InvalidInput(problems));
        }
        let lifecycle = self.store.step_lifecycles(&case.id).await?;
        let returned_at = lifecycle
            .iter()
            .find(|l| l.step == step_id)
            .and_then(|l| l.returned_at);
        let (paused_days, restart) = match matter.supplement_clock {
            SupplementClock::Resume => (
                returned_at.map_or(0, |at| {
                    crate::deadlines::paused_days(self.deadlines().calendar(), at, now_ms())
                }),
                false,
            ),
            SupplementClock::Restart => (0, true),
        };
        let stored = self
            .store
            .store_supplement(&NewSupplement {
                case_id: &case.id,
                step: step_id,
                fields: &fields.to_string(),
                input: &input.to_string(),
                materials: &codes,
                request_key: arrival.idempotency_key.as_deref(),
                request_digest: &arrival.request_digest,
                returned_at,
                paused_days,
                restart,
            })
            .await?;
        match stored {
            SupplementStored::Stored(_) => {
                tracing::info!(case = %case.id, step = %step_id, paused_days, restart, "supplement stored");
                self.announce(step, StepState::Supplemented);
                self.wake.notify_one();
                Ok((accepted(StepState::Supplemented), false))
            }
            SupplementStored::NotReturned(state) => Err(CaseError::NotReturned {
                step: step_id.to_string(),
                state,
            }),
            SupplementStored::Replayed { .. } => Err(CaseError::IdempotencyConflict(
                arrival.idempotency_key.unwrap_or_default(),
            )),
        }
    }

    /// Whether a returned step of the case asks for this material (anew).
    pub(crate) async fn asked_anew(&self, case_id: &str, code: &str) -> Result<bool, CaseError> {
        let steps = self.store.steps(case_id).await?;
        let returned: Vec<_> = steps
            .iter()
            .filter(|s| s.state == StepState::Returned)
            .map(|s| s.step.as_str())
            .collect();
        if returned.is_empty() {
            return Ok(false);
        }
        Ok(self
            .store
            .step_lifecycles(case_id)
            .await?
            .iter()
            .filter(|l| returned.contains(&l.step.as_str()))
            .filter_map(|l| l.requested.as_ref())
            .any(|r| {
                r["materials"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|m| m["code"] == code))
            }))
    }

    async fn step_state(&self, case_id: &str, step: &str) -> Result<StepState, CaseError> {
        Ok(self
            .store
            .steps(case_id)
            .await?
            .into_iter()
            .find(|s| s.step == step)
            .map_or(StepState::Supplemented, |s| s.state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_merge_into_the_input_and_null_removes() {
        let mut input = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 4});
        merge(&mut input, &json!({"b": {"c": 5}, "e": null, "f": "new"}));
        assert_eq!(input, json!({"a": 1, "b": {"c": 5, "d": 3}, "f": "new"}));
    }
}
