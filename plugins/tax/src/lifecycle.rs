//! 补正 and 撤回 in the tax department's protocol, as pure functions.
//!
//! A returned registration reads `zt` 04 (退回补正) with `bzxx`: `bzzd` the fields to correct
//! (`zdmc` the department's name, `yy` why), `bzcl` the materials (`clbm`, `yy`), `bzqx` the due
//! date; [`requested`] reads it into the unified `requested`. A supplement is `POST
//! /api/v1/bzsq` (`qqid` the supplement's idempotency key, `slh`, `bzzd` the corrected fields by
//! the department's names, materials listed as on an application, files uploaded under the
//! supplement's `qqid`); a withdrawal `POST /api/v1/cxsq` (`qqid`, `slh`, `cxyy`). Both answer
//! the matter's `zt` after them.

use sdk::lifecycle::FieldMap;
use sdk::payload::{Checker, FieldProblem};
use sdk::{AdapterError, FieldError, MaterialRequest, Receipt, StepState, SupplementRequest};
use serde_json::{Value, json};

use crate::protocol::read_answer;

/// 补正申请.
pub const BZSQ_PATH: &str = "/api/v1/bzsq";
/// 撤回申请.
pub const CXSQ_PATH: &str = "/api/v1/cxsq";

/// The fields of a 税务登记 the department takes in a supplement (the credit code is the
/// taxpayer: never).
pub const REGISTRATION_FIELDS: FieldMap = FieldMap(&[
    ("enterprise_name", "nsrmc"),
    ("legal_representative.name", "fddbrxm"),
    ("legal_representative.id_number", "fddbrsfzjhm"),
    ("address", "scjydz"),
    ("business_scope", "jyfw"),
]);

/// The `bzsq` body without its materials (added like an application's), or every problem of
/// the corrected fields.
pub fn supplement_body(qqid: &str, slh: &str, payload: &str) -> Result<Value, Vec<FieldProblem>> {
    let corrections = REGISTRATION_FIELDS
        .corrections(payload)
        .map_err(|e| e.problems)?;
    let mut c = Checker::new();
    let mut bzzd = serde_json::Map::new();
    for (name, path, value) in corrections {
        if name == "fddbrsfzjhm" {
            c.resident_id(&path, Some(&value));
        }
        bzzd.insert(name.to_string(), Value::String(value));
    }
    c.finish().map_err(|e| e.problems)?;
    Ok(json!({"qqid": qqid, "slh": slh, "bzzd": bzzd}))
}

/// The `cxsq` body.
pub fn withdrawal_body(qqid: &str, slh: &str, reason: &str) -> Value {
    let reason = reason.trim();
    json!({"qqid": qqid, "slh": slh, "cxyy": if reason.is_empty() { "申请人主动撤回" } else { reason }})
}

/// The matter's state by `zt`.
pub fn state_of(zt: &str) -> Result<StepState, AdapterError> {
    Ok(match zt {
        "01" => StepState::Processing,
        "02" => StepState::Approved,
        "03" => StepState::Rejected,
        "04" => StepState::Returned,
        "05" => StepState::Withdrawn,
        other => {
            return Err(AdapterError::Protocol(format!(
                "unknown status code zt={other}"
            )));
        }
    })
}

/// The answer of `bzsq` or `cxsq`: the matter's reference and state after it. A refusal is the
/// department's on the merits (`Rejected`): `2008` the matter is not returned (nothing to
/// supplement), `2004` no such 受理号; `1001` a request it cannot read is `Internal`; `3005` a
/// file it does not hold is `Unavailable` (uploaded again on the next attempt).
pub fn read_action(status: u16, body: &[u8]) -> Result<Receipt, AdapterError> {
    let data = read_answer(status, body)?.map_err(|(code, msg)| match code.as_str() {
        "1001" => AdapterError::Internal(format!(
            "department could not read the request ({code} {msg})"
        )),
        "3005" => AdapterError::Unavailable(format!(
            "department does not hold an uploaded file ({code} {msg}); uploaded again"
        )),
        _ => AdapterError::Rejected(sdk::Rejection { code, message: msg }),
    })?;
    let field = |f: &str| {
        data.get(f)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| AdapterError::Protocol(format!("department answer has no `{f}`")))
    };
    let mut receipt = Receipt::new(field("slh")?, state_of(field("zt")?)?);
    receipt.message = data.get("ztmc").and_then(Value::as_str).map(str::to_string);
    Ok(receipt)
}

/// What a return (`bzxx`) asks, in the unified names.
pub fn requested(bzxx: &Value) -> Result<SupplementRequest, AdapterError> {
    if !bzxx.is_object() {
        return Err(AdapterError::Protocol("status 04 without `bzxx`".into()));
    }
    let list = |name: &str| {
        bzxx.get(name)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let text = |v: &Value, f: &str| -> Result<String, AdapterError> {
        v.get(f)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| AdapterError::Protocol(format!("`bzxx` entry without `{f}`")))
    };
    let mut fields = Vec::new();
    for entry in list("bzzd") {
        let field = REGISTRATION_FIELDS.unified(&text(&entry, "zdmc")?);
        fields.push(FieldError::new(field, "rule", text(&entry, "yy")?));
    }
    let mut materials = Vec::new();
    for entry in list("bzcl") {
        materials.push(MaterialRequest::new(
            text(&entry, "clbm")?,
            text(&entry, "yy")?,
        ));
    }
    let due = bzxx
        .get("bzqx")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    if fields.is_empty() && materials.is_empty() {
        return Err(AdapterError::Protocol(
            "`bzxx` asks for nothing (no `bzzd`, no `bzcl`)".into(),
        ));
    }
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
            "SW1",
            r#"{"address": "福州市鼓楼区五四路3号", "legal_representative": {"name": "张三"}}"#,
        )
        .unwrap();
        assert_eq!(
            body,
            json!({"qqid": "K1", "slh": "SW1", "bzzd": {"scjydz": "福州市鼓楼区五四路3号", "fddbrxm": "张三"}})
        );
        let problems = supplement_body(
            "K1",
            "SW1",
            r#"{"credit_code": "91350100M000100Y43", "legal_representative": {"id_number": "110105194912310021"}}"#,
        )
        .unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["credit_code"]);
        let problems = supplement_body(
            "K1",
            "SW1",
            r#"{"legal_representative": {"id_number": "110105194912310021"}}"#,
        )
        .unwrap_err();
        assert_eq!(problems[0].field, "legal_representative.id_number");
    }

    #[test]
    fn a_return_is_read_in_unified_names() {
        let bzxx = json!({"bzyy": "请补正", "bzqx": "2026-12-18",
            "bzzd": [{"zdmc": "scjydz", "yy": "生产经营地址须具体到门牌号"}],
            "bzcl": [{"clbm": "premises-proof", "clmc": "经营场所证明", "yy": "请提供"}]});
        let r = requested(&bzxx).unwrap();
        assert_eq!(r.fields[0].field, "address");
        assert_eq!(r.fields[0].message, "生产经营地址须具体到门牌号");
        assert_eq!(r.materials[0].code, "premises-proof");
        assert_eq!(r.due.as_deref(), Some("2026-12-18"));
        assert!(matches!(
            requested(&json!({"bzzd": []})),
            Err(AdapterError::Protocol(_))
        ));
        assert!(matches!(
            requested(&Value::Null),
            Err(AdapterError::Protocol(_))
        ));
    }

    #[test]
    fn action_answers() {
        let ok = r#"{"code":"0000","msg":"成功","data":{"slh":"SW1","zt":"05","ztmc":"已撤回"}}"#;
        let r = read_action(200, ok.as_bytes()).unwrap();
        assert_eq!(
            (r.reference.as_str(), r.state),
            ("SW1", StepState::Withdrawn)
        );
        let not = r#"{"code":"2008","msg":"当前状态不可补正：已办结","data":null}"#;
        assert!(matches!(
            read_action(200, not.as_bytes()),
            Err(AdapterError::Rejected(r)) if r.code == "2008"
        ));
        let odd = r#"{"code":"0000","data":{"slh":"SW1","zt":"09"}}"#;
        assert!(matches!(
            read_action(200, odd.as_bytes()),
            Err(AdapterError::Protocol(_))
        ));
        assert_eq!(withdrawal_body("K", "SW1", "  ")["cxyy"], "申请人主动撤回");
    }
}
