//! 补正 and 撤回 in market regulation's protocol, as pure functions.
//!
//! A returned licence application reads `status` `RETURNED` with `supplement` (`reason`,
//! `fields`: `[{"field", "reason"}]` in the department's names, `materials`: `[{"code",
//! "reason"}]`, `dueDate`), by callback or by `GET` ([`requested`]). The supplement is `POST
//! /api/licences/{no}/supplements` (`requestId` the supplement's idempotency key, `fields` the
//! corrected ones by the department's names, `materials` as an application names them); the
//! withdrawal `POST /api/licences/{no}/withdrawal` or `POST /api/food-permits/{no}/withdrawal`
//! (`requestId`, `reason`), answered with the application document after it.

use sdk::lifecycle::FieldMap;
use sdk::payload::{Checker, FieldProblem};
use sdk::{AdapterError, FieldError, MaterialRequest, SupplementRequest};
use serde_json::{Value, json};

use crate::protocol::{food_permit_path, licence_path};

/// The fields of a licence application the department takes in a supplement.
pub const LICENCE_FIELDS: FieldMap = FieldMap(&[
    ("address", "address"),
    ("business_scope", "businessScope"),
    ("registered_capital", "registeredCapital"),
]);

/// Where a licence application's supplement goes.
pub fn supplements_path(application_no: &str) -> String {
    format!("{}/supplements", licence_path(application_no))
}

/// Where a licence application's withdrawal goes.
pub fn licence_withdrawal_path(application_no: &str) -> String {
    format!("{}/withdrawal", licence_path(application_no))
}

/// Where a food permit application's withdrawal goes.
pub fn food_permit_withdrawal_path(application_no: &str) -> String {
    format!("{}/withdrawal", food_permit_path(application_no))
}

/// The supplement's body without its materials, or every problem of the corrected fields.
pub fn supplement_body(request_id: &str, payload: &str) -> Result<Value, Vec<FieldProblem>> {
    let corrections = LICENCE_FIELDS
        .corrections(payload)
        .map_err(|e| e.problems)?;
    let mut c = Checker::new();
    let mut fields = serde_json::Map::new();
    for (name, path, value) in corrections {
        let value = if name == "registeredCapital" {
            match value.parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => json!(v),
                _ => {
                    c.problem(&path, "range", "注册资本须大于0万元");
                    continue;
                }
            }
        } else {
            Value::String(value)
        };
        fields.insert(name.to_string(), value);
    }
    c.finish().map_err(|e| e.problems)?;
    Ok(json!({"requestId": request_id, "fields": fields}))
}

/// The withdrawal's body.
pub fn withdrawal_body(request_id: &str, reason: &str) -> Value {
    let reason = match reason.trim() {
        "" => "申请人主动撤回",
        reason => reason,
    };
    json!({"requestId": request_id, "reason": reason})
}

/// What a returned application's `supplement` asks, in the unified names.
pub fn requested(data: &Value) -> Result<SupplementRequest, AdapterError> {
    let supplement = data
        .get("supplement")
        .filter(|s| s.is_object())
        .ok_or_else(|| AdapterError::Protocol("RETURNED without `supplement`".into()))?;
    let text = |v: &Value, f: &str| -> Result<String, AdapterError> {
        v.get(f)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| AdapterError::Protocol(format!("`supplement` entry without `{f}`")))
    };
    let list = |name: &str| {
        supplement
            .get(name)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut fields = Vec::new();
    for entry in list("fields") {
        let field = LICENCE_FIELDS.unified(&text(&entry, "field")?);
        fields.push(FieldError::new(field, "rule", text(&entry, "reason")?));
    }
    let mut materials = Vec::new();
    for entry in list("materials") {
        materials.push(MaterialRequest::new(
            text(&entry, "code")?,
            text(&entry, "reason")?,
        ));
    }
    if fields.is_empty() && materials.is_empty() {
        return Err(AdapterError::Protocol(
            "`supplement` asks for nothing".into(),
        ));
    }
    let due = supplement
        .get("dueDate")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    Ok(SupplementRequest {
        fields,
        materials,
        due,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_supplement_names_the_departments_fields() {
        let body = supplement_body(
            "K1",
            r#"{"business_scope": "软件开发、技术服务", "registered_capital": 200}"#,
        )
        .unwrap();
        assert_eq!(
            body,
            json!({"requestId": "K1", "fields": {"businessScope": "软件开发、技术服务", "registeredCapital": 200.0}})
        );
        let problems =
            supplement_body("K1", r#"{"enterprise_name": "x", "registered_capital": 0}"#)
                .unwrap_err();
        assert_eq!(problems[0].field, "enterprise_name");
        let problems = supplement_body("K1", r#"{"registered_capital": -1}"#).unwrap_err();
        assert_eq!(problems[0].code, "range");
        assert_eq!(supplements_path("SCJG1"), "/api/licences/SCJG1/supplements");
        assert_eq!(
            food_permit_withdrawal_path("SPJY1"),
            "/api/food-permits/SPJY1/withdrawal"
        );
    }

    #[test]
    fn a_return_is_read_in_unified_names() {
        let doc = json!({"applicationNo": "SCJG1", "status": "RETURNED", "supplement": {
            "reason": "请补正", "dueDate": "2027-01-02",
            "fields": [{"field": "businessScope", "reason": "经营范围不得以等字概括"}],
            "materials": [{"code": "articles-of-association", "reason": "章程经营范围须一致"}]}});
        let asked = requested(&doc).unwrap();
        assert_eq!(asked.fields[0].field, "business_scope");
        assert_eq!(asked.materials[0].code, "articles-of-association");
        assert_eq!(asked.due.as_deref(), Some("2027-01-02"));
        assert!(requested(&json!({"status": "RETURNED"})).is_err());
    }
}
