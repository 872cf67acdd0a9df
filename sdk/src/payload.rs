//! Reading the unified JSON payload, and gathering every field problem before answering.
//!
//! Pre-review tells the applicant every problem at once (一次性告知), so an adapter's `validate`
//! collects problems in a [`Checker`] instead of returning at the first.

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A natural person in a unified payload: an applicant, a legal representative, a buyer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Person {
    /// Name as on the identity card.
    pub name: Option<String>,
    /// Resident identity number.
    pub id_number: Option<String>,
}

/// A trimmed, non-blank value, if there is one.
pub fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// A person's trimmed name and identity number, each if present.
pub fn person(p: &Option<Person>) -> (Option<&str>, Option<&str>) {
    p.as_ref()
        .map_or((None, None), |p| (present(&p.name), present(&p.id_number)))
}

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// Dotted path of the field.
    pub field: String,
    /// Stable machine code.
    pub code: String,
    /// Human-readable reason.
    pub message: String,
}

/// A payload that cannot be read, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadError {
    /// The problems, at least one.
    pub problems: Vec<FieldProblem>,
}

/// Parse a payload into `T`. The host has already checked it against the matter's schema, so a
/// failure here means the adapter's types and its schema disagree.
pub fn parse<T: DeserializeOwned>(payload: &str) -> Result<T, PayloadError> {
    serde_json::from_str(payload).map_err(|e| PayloadError {
        problems: vec![FieldProblem {
            field: String::new(),
            code: "format".into(),
            message: format!("payload does not match the matter's input: {e}"),
        }],
    })
}

/// Parse a payload into `T` and run its checks: the value, or every problem found.
pub fn parse_checked<T: DeserializeOwned>(
    payload: &str,
    check: impl FnOnce(&T) -> Vec<FieldProblem>,
) -> Result<T, Vec<FieldProblem>> {
    let value: T = parse(payload).map_err(|e| e.problems)?;
    let problems = check(&value);
    if problems.is_empty() {
        Ok(value)
    } else {
        Err(problems)
    }
}

/// Collects field problems; [`Checker::finish`] turns them into one answer.
#[derive(Debug, Default)]
pub struct Checker {
    problems: Vec<FieldProblem>,
}

impl Checker {
    /// An empty checker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record a problem.
    pub fn problem(&mut self, field: &str, code: &str, message: impl Into<String>) {
        self.problems.push(FieldProblem {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        });
    }

    /// A present, non-blank value, or a `required` problem.
    pub fn required(&mut self, field: &str, value: Option<&str>) {
        if value.is_none_or(|v| v.trim().is_empty()) {
            self.problem(field, "required", "必填项");
        }
    }

    /// A resident identity number (GB 11643), if present.
    pub fn resident_id(&mut self, field: &str, value: Option<&str>) {
        if let Some(Err(p)) = value.map(crate::ids::resident_id) {
            self.problem(field, p.code, p.message);
        }
    }

    /// A unified social credit code (GB 32100), if present.
    pub fn credit_code(&mut self, field: &str, value: Option<&str>) {
        if let Some(Err(p)) = value.map(crate::ids::credit_code) {
            self.problem(field, p.code, p.message);
        }
    }

    /// The problems so far.
    pub fn problems(&self) -> &[FieldProblem] {
        &self.problems
    }

    /// `Ok` when no problem was found, else every problem.
    pub fn finish(self) -> Result<(), PayloadError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(PayloadError {
                problems: self.problems,
            })
        }
    }

    /// The problems, for `validate`.
    pub fn into_problems(self) -> Vec<FieldProblem> {
        self.problems
    }
}
