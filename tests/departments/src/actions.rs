//! What the departments received after an application: the applicant's supplements (补正) and
//! withdrawals (撤回), each department in its own protocol, recorded the same way here so that
//! tests can assert "once" and "nothing after" ([`crate::Department::supplements`],
//! [`crate::Department::withdrawals`]).
//!
//! Each action is idempotent on the department's request id for it (tax `qqid`, real estate
//! `ywh`, public security `RequestID`, market regulation `Idempotency-Key`): the first answer is
//! kept and a repeat gets it back, recorded as a repeat and never taken twice.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::common::Answer;

/// Which action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// 补正: what the applicant corrected or added to a returned matter.
    Supplement,
    /// 撤回: the applicant withdrew the matter.
    Withdrawal,
}

/// One supplement or withdrawal a department took (a repeat of the same request id is not
/// another one: it is counted in [`ActionRecord::repeats`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub kind: ActionKind,
    /// The department's reference of the matter (受理号, 受理编号 …).
    pub reference: String,
    /// The department's request id of the action (the gateway's idempotency key).
    pub request_id: String,
    /// What the department read from the request, as JSON in the department's own field names
    /// (corrected fields, material codes, the reason of a withdrawal).
    pub body: serde_json::Value,
    /// Times the same request id came again and got the first answer.
    pub repeats: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Actions {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    records: Vec<ActionRecord>,
    answers: HashMap<(ActionKind, String), Answer>,
}

impl Actions {
    /// Run `take` once per request id of `kind`: its `Ok` answer is recorded with `reference`
    /// and `body` and kept, a repeat gets it back (and counts as a repeat) without calling
    /// `take`; an `Err` answer (a refusal) is returned and not kept, so a corrected retry can
    /// still be taken. `take` runs under the lock: one of two concurrent copies takes it.
    pub fn once(
        &self,
        kind: ActionKind,
        request_id: &str,
        take: impl FnOnce() -> Result<(String, serde_json::Value, Answer), Answer>,
    ) -> Answer {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let key = (kind, request_id.to_owned());
        if let Some(first) = inner.answers.get(&key).cloned() {
            if let Some(record) = inner
                .records
                .iter_mut()
                .find(|r| r.kind == kind && r.request_id == request_id)
            {
                record.repeats += 1;
            }
            tracing::info!(
                ?kind,
                request_id,
                "repeated request id, first answer returned"
            );
            return first;
        }
        match take() {
            Ok((reference, body, answer)) => {
                inner.records.push(ActionRecord {
                    kind,
                    reference,
                    request_id: request_id.to_owned(),
                    body,
                    repeats: 0,
                });
                inner.answers.insert(key, answer.clone());
                answer
            }
            Err(refusal) => refusal,
        }
    }

    /// Whether a request id of `kind` was answered already (so its checks need not run again).
    pub fn answered(&self, kind: ActionKind, request_id: &str) -> bool {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.answers.contains_key(&(kind, request_id.to_owned()))
    }

    /// Every action taken, in arrival order.
    pub fn all(&self) -> Vec<ActionRecord> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.records.clone()
    }

    /// The actions of `kind` taken for `reference`, in arrival order.
    pub fn of(&self, kind: ActionKind, reference: &str) -> Vec<ActionRecord> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .records
            .iter()
            .filter(|r| r.kind == kind && r.reference == reference)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use serde_json::json;

    #[test]
    fn an_action_is_taken_once_per_request_id() {
        let actions = Actions::default();
        let answer = |n: u32| Answer::json(StatusCode::OK, &json!({"n": n}));
        let first = actions.once(ActionKind::Supplement, "k1", || {
            Ok(("R1".into(), json!({"a": 1}), answer(1)))
        });
        let again = actions.once(ActionKind::Supplement, "k1", || {
            panic!("a repeat is not taken again")
        });
        assert_eq!(first.body, again.body);
        // A refusal is not kept: the corrected retry is taken.
        let refused = actions.once(ActionKind::Withdrawal, "k2", || {
            Err(Answer::json(StatusCode::OK, &json!({"refused": true})))
        });
        assert!(String::from_utf8_lossy(&refused.body).contains("refused"));
        assert!(!actions.answered(ActionKind::Withdrawal, "k2"));
        actions.once(ActionKind::Withdrawal, "k2", || {
            Ok(("R1".into(), json!({}), answer(2)))
        });
        let supplements = actions.of(ActionKind::Supplement, "R1");
        assert_eq!(supplements.len(), 1);
        assert_eq!(supplements[0].repeats, 1);
        assert_eq!(supplements[0].body, json!({"a": 1}));
        assert_eq!(actions.of(ActionKind::Withdrawal, "R1").len(), 1);
        assert!(actions.of(ActionKind::Supplement, "R2").is_empty());
        assert_eq!(actions.all().len(), 2);
    }
}
