//! 容缺: a deferrable material missing at application is promised; the promise falls due
//! `commitment_days` working days after receipt (default 10). The case lists its outstanding
//! commitments; supervision lists them all, overdue first. Uploading the material later
//! (`PUT /api/v1/cases/{id}/materials/{code}`) fulfils it, and it is handed to every step
//! already at its department whose matter lists it (a supplement with no fields); steps not
//! yet delivered get it with their submission.

use super::views::{Commitment, Commitments, OutstandingCommitment};
use crate::{CaseError, Orchestrator};
use gateway_base::calendar::{Calendar, parse_date};
use gateway_base::config::DEFAULT_COMMITMENT_DAYS;
use gateway_base::model::{FieldProblem, MaterialRef, MaterialSource, StepState};
use gateway_base::time::{beijing_date, now_ms};
use gateway_store::materials::NewMaterialSource;

/// The last working day of a commitment made at `received_ms`, `YYYY-MM-DD`.
pub fn due_date(calendar: &Calendar, received_ms: i64, days: Option<u32>) -> String {
    calendar
        .add_working_days(
            beijing_date(received_ms),
            days.unwrap_or(DEFAULT_COMMITMENT_DAYS),
        )
        .to_string()
}

/// A commitment as shown, judged at `now`.
pub(crate) fn commitment(calendar: &Calendar, m: &MaterialRef, now: i64) -> Option<Commitment> {
    let MaterialSource::Promised { due } = &m.source else {
        return None;
    };
    let last = due.as_deref().and_then(parse_date);
    let today = beijing_date(now);
    let remaining = last.map(|last| {
        if today <= last {
            calendar.working_days_between(today, last)
        } else {
            -calendar.working_days_between(last.next_day().unwrap_or(last), today)
        }
    });
    Some(Commitment {
        code: m.code.clone(),
        name: m.name.clone(),
        due: due.clone(),
        remaining_working_days: remaining,
        overdue: last.is_some_and(|last| today > last),
    })
}

/// 容缺 only with a signed commitment (when `required`): every promised material of an
/// application without a signer is a problem on it, naming the material and what to do.
pub(crate) fn check_signed(
    admission: &gateway_store::Arrival,
    required: bool,
) -> Result<(), CaseError> {
    if !required || admission.commitment.is_some() {
        return Ok(());
    }
    let problems: Vec<FieldProblem> = admission
        .materials
        .iter()
        .filter(|m| matches!(m.source, NewMaterialSource::Promised { .. }))
        .map(|m| {
            FieldProblem::new(
                format!("materials.{}", m.code),
                "required",
                format!(
                    "缺少「{}」：容缺受理须申请人签署承诺（请求头 X-Commitment-Signed-By 填写承诺人），或上传此材料",
                    m.name
                ),
            )
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CaseError::InvalidInput(problems))
    }
}

impl Orchestrator {
    /// A case's outstanding commitments.
    pub async fn commitments_of(&self, case_id: &str) -> Result<Vec<Commitment>, CaseError> {
        let deadlines = self.deadlines();
        let now = now_ms();
        Ok(self
            .store
            .case_materials(case_id)
            .await?
            .iter()
            .filter_map(|m| commitment(deadlines.calendar(), m, now))
            .collect())
    }

    /// Every outstanding commitment, overdue first, then by due date.
    pub async fn outstanding_commitments(&self) -> Result<Commitments, CaseError> {
        let deadlines = self.deadlines();
        let now = now_ms();
        let mut items: Vec<OutstandingCommitment> = self
            .store
            .outstanding_commitments()
            .await?
            .into_iter()
            .filter_map(|(case_id, service, m)| {
                commitment(deadlines.calendar(), &m, now).map(|commitment| OutstandingCommitment {
                    case_id,
                    service,
                    commitment,
                })
            })
            .collect();
        items.sort_by(|a, b| {
            (
                !a.commitment.overdue,
                &a.commitment.due,
                &a.case_id,
                &a.commitment.code,
            )
                .cmp(&(
                    !b.commitment.overdue,
                    &b.commitment.due,
                    &b.case_id,
                    &b.commitment.code,
                ))
        });
        Ok(Commitments {
            overdue: items.iter().filter(|i| i.commitment.overdue).count(),
            items,
        })
    }

    /// A promised material was uploaded: hand it to every step of the case its department is
    /// working on whose matter lists it (one supplement with no fields each, delivered like any other).
    pub(crate) async fn material_supplied(
        &self,
        case_id: &str,
        code: &str,
    ) -> Result<(), CaseError> {
        let catalogue = self.catalogue();
        let steps: Vec<_> = self
            .store
            .steps(case_id)
            .await?
            .into_iter()
            .filter(|s| {
                // A returned step gets it with the applicant's supplement, a supplemented one
                // is about to be decided on what it has: only steps the department is working
                // on are handed it now.
                matches!(s.state, StepState::Accepted | StepState::Processing)
                    && catalogue
                        .matters
                        .get(&s.matter)
                        .is_some_and(|m| m.materials.iter().any(|c| c.code == code))
            })
            .collect();
        if steps.is_empty() {
            return Ok(());
        }
        let tellable = self.untellable(steps.iter().map(|s| s.department.clone()));
        let steps: Vec<_> = steps
            .into_iter()
            .filter(|s| !tellable.contains(&s.department))
            .collect();
        self.store
            .queue_material_supplements(case_id, code, &steps)
            .await?;
        self.wake.notify_one();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_base::time::ms;
    use gateway_store::materials::NewCaseMaterial;
    use time::macros::datetime;

    fn promised(due: Option<&str>) -> MaterialRef {
        MaterialRef {
            code: "premises-proof".into(),
            name: "经营场所证明".into(),
            source: MaterialSource::Promised {
                due: due.map(str::to_string),
            },
        }
    }

    #[test]
    fn a_commitment_falls_due_its_working_days_after_receipt_and_is_overdue_after() {
        let c = Calendar::weekdays_only();
        // Received Friday 2026-03-06: 10 working days later is Friday 2026-03-20.
        let received = ms(datetime!(2026-03-06 15:00 +8));
        assert_eq!(due_date(&c, received, None), "2026-03-20");
        assert_eq!(due_date(&c, received, Some(1)), "2026-03-09");
        let on_time = commitment(&c, &promised(Some("2026-03-20")), received).unwrap();
        assert_eq!(
            (on_time.remaining_working_days, on_time.overdue),
            (Some(11), false)
        );
        // The Monday after the due date: one working day over.
        let late = ms(datetime!(2026-03-23 09:00 +8));
        let overdue = commitment(&c, &promised(Some("2026-03-20")), late).unwrap();
        assert_eq!(
            (overdue.remaining_working_days, overdue.overdue),
            (Some(-1), true)
        );
        // A provided material is no commitment.
        let file = MaterialRef {
            source: MaterialSource::Licence {
                id: "x".into(),
                kind: "k".into(),
                number: "n".into(),
            },
            ..promised(None)
        };
        assert!(commitment(&c, &file, late).is_none());
    }

    #[test]
    fn a_promise_needs_a_signer_only_when_required() {
        let mut admission = gateway_store::Arrival {
            materials: vec![NewCaseMaterial {
                code: "premises-proof".into(),
                name: "经营场所证明".into(),
                source: NewMaterialSource::Promised {
                    due: Some("2026-03-20".into()),
                },
            }],
            ..Default::default()
        };
        assert!(check_signed(&admission, false).is_ok());
        let Err(CaseError::InvalidInput(problems)) = check_signed(&admission, true) else {
            panic!("a promise without a signer is refused");
        };
        assert_eq!(problems[0].field, "materials.premises-proof");
        assert!(problems[0].message.contains("X-Commitment-Signed-By"));
        admission.commitment = Some("张三".into());
        assert!(check_signed(&admission, true).is_ok());
    }
}
