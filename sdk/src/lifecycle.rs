//! Supplements (补正) and withdrawals (撤回): translating the applicant's corrected fields into a
//! department's names and a department's return back into the unified ones.
//!
//! A supplement's payload is a JSON object of only the fields the applicant changed, in the
//! matter's unified shape (`{"address": "…", "legal_representative": {"id_number": "…"}}`). A
//! department names its fields its own way and usually takes only some of them in a 补正; a
//! [`FieldMap`] lists the pairs (unified dotted path, department name), so the adapter
//! translates one way for the supplement ([`FieldMap::corrections`]) and the other way for what a
//! return asks ([`FieldMap::unified`]).

use serde_json::Value;

use crate::payload::{FieldProblem, PayloadError};

/// The fields a department takes in a supplement: (unified dotted path, department's name).
#[derive(Debug, Clone, Copy)]
pub struct FieldMap(pub &'static [(&'static str, &'static str)]);

impl FieldMap {
    /// The department's name of a unified field, if the department takes it in a supplement.
    pub fn department(&self, unified: &str) -> Option<&'static str> {
        self.0.iter().find(|(u, _)| *u == unified).map(|(_, d)| *d)
    }

    /// The unified path of a department's field; a name not in the map is kept as the
    /// department wrote it (the applicant still sees it with its reason).
    pub fn unified(&self, department: &str) -> String {
        self.0
            .iter()
            .find(|(_, d)| *d == department)
            .map_or_else(|| department.to_string(), |(u, _)| (*u).to_string())
    }

    /// The corrected fields of a supplement's payload as (department name, unified path, text),
    /// by path. Every problem at once: a payload that is not an object, a field
    /// the department does not take in a supplement (`rule`), a value that is not a non-blank
    /// text or number (`format`).
    pub fn corrections(
        &self,
        payload: &str,
    ) -> Result<Vec<(&'static str, String, String)>, PayloadError> {
        let fields = flatten(payload)?;
        let mut found = Vec::new();
        let mut problems = Vec::new();
        for (path, value) in fields {
            let Some(name) = self.department(&path) else {
                problems.push(problem(&path, "rule", "该部门补正时不接受更改此项"));
                continue;
            };
            let text = match &value {
                Value::String(s) if !s.trim().is_empty() => s.trim().to_string(),
                Value::Number(n) => n.to_string(),
                _ => {
                    problems.push(problem(&path, "format", "补正的值须为非空文本"));
                    continue;
                }
            };
            found.push((name, path, text));
        }
        if problems.is_empty() {
            Ok(found)
        } else {
            Err(PayloadError { problems })
        }
    }
}

fn problem(field: &str, code: &str, message: &str) -> FieldProblem {
    FieldProblem {
        field: field.into(),
        code: code.into(),
        message: message.into(),
    }
}

/// The leaves of a supplement's payload, each with its dotted path (`legal_representative.name`),
/// sorted by path (whatever order the JSON parser keeps); arrays are leaves. A payload that is not a JSON object is a `format`
/// problem of the whole.
pub fn flatten(payload: &str) -> Result<Vec<(String, Value)>, PayloadError> {
    let value: Value = serde_json::from_str(payload).map_err(|e| PayloadError {
        problems: vec![problem("", "format", &format!("补正内容不是JSON对象：{e}"))],
    })?;
    let Value::Object(object) = value else {
        return Err(PayloadError {
            problems: vec![problem("", "format", "补正内容须为JSON对象")],
        });
    };
    let mut leaves = Vec::new();
    let mut stack: Vec<(String, Value)> = object.into_iter().rev().collect();
    while let Some((path, value)) = stack.pop() {
        match value {
            Value::Object(inner) => {
                for (k, v) in inner.into_iter().rev() {
                    stack.push((format!("{path}.{k}"), v));
                }
            }
            leaf => leaves.push((path, leaf)),
        }
    }
    leaves.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(leaves)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: FieldMap = FieldMap(&[
        ("address", "scjydz"),
        ("legal_representative.id_number", "fddbrsfzjhm"),
    ]);

    #[test]
    fn corrections_are_translated_by_path() {
        let found = MAP
            .corrections(
                r#"{"address": " 五四路3号 ", "legal_representative": {"id_number": "X"}}"#,
            )
            .unwrap();
        assert_eq!(
            found,
            vec![
                ("scjydz", "address".to_string(), "五四路3号".to_string()),
                (
                    "fddbrsfzjhm",
                    "legal_representative.id_number".to_string(),
                    "X".to_string()
                ),
            ]
        );
        assert_eq!(MAP.unified("scjydz"), "address");
        assert_eq!(MAP.unified("qt"), "qt");
    }

    #[test]
    fn every_problem_at_once() {
        let e = MAP
            .corrections(r#"{"credit_code": "9135", "address": "", "x": {"y": 1}}"#)
            .unwrap_err();
        let got: Vec<(&str, &str)> = e
            .problems
            .iter()
            .map(|p| (p.field.as_str(), p.code.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("address", "format"),
                ("credit_code", "rule"),
                ("x.y", "rule")
            ]
        );
        assert_eq!(
            MAP.corrections("[1]").unwrap_err().problems[0].code,
            "format"
        );
        assert!(MAP.corrections("{}").unwrap().is_empty());
    }
}
