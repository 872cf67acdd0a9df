//! Adapter for the tax department (税务): JSON over HTTP, every request signed.
//!
//! Serves the matters `tax.registration` (税务登记, `POST /api/v1/swdj`) and `tax.deed-tax`
//! (契税申报, `POST /api/v1/qssb`), both polled with `GET /api/v1/slzt`, and the lookup
//! `tax.clearance` (清税查询, `POST /api/v1/qscx`).
//!
//! Settings: `app-key` and `sign-method` (optional: `HMAC-SHA256`, the default, or `HMAC-SM3`);
//! key: `app-secret` (kind `hmac`), held by the gateway, which makes the MAC (`sdk::crypto`).
//! Each request carries `X-App-Key`, `X-Timestamp`, `X-Nonce`, `X-Sign-Method` and
//! `X-Signature` = hex HMAC(app-secret, METHOD\nPATH_AND_QUERY\nTIMESTAMP\nNONCE\nBODY).
//!
//! Materials: before the application, each file is uploaded (`POST /api/v1/wjsc`, a
//! `multipart/form-data` form whose file the host streams from its store), signed over the SM3
//! of the body (`X-Content-SM3`; BODY in the signed string is that hex digest), which the
//! adapter computes by reading the file through in slices, never holding it whole. The same
//! file twice in one application is uploaded once. The application lists the file ids, the
//! licences (免提交) and the promised materials (容缺). The department is idempotent on the
//! request id and the file's SM3, so an upload repeated after a crash gets the same file id.
//!
//! 补正 and 撤回: a returned registration (`zt` 04) is reported `returned` with what the
//! department asks (`bzxx`, read into `requested`); `supplement` uploads the supplement's files
//! under its own request id and sends `POST /api/v1/bzsq` with the corrected fields in the
//! department's names; `withdraw` sends `POST /api/v1/cxsq` and answers the matter's state after
//! it (`withdrawn`, or the decision with its outputs, read with `slzt`, when it came first).
//!
//! The department does not call back: `on-callback` is refused.
//!
//! # Layout
//! - `lib.rs`: the exports, each a thin sequence of department calls.
//! - [`protocol`]: payload checks, bodies, the signed string, answer readers, schemas.
//! - [`lifecycle`]: the supplement's and the withdrawal's bodies and answers, a return's asks.

pub mod lifecycle;
pub mod protocol;

use protocol::{CLEARANCE, Credentials, DEED_TAX, MaterialLists, REGISTRATION, SignMethod};
use sdk::http::{Request, Response};
use sdk::{
    AdapterError, CallbackRequest, Description, FieldError, LookupInfo, Material, MatterInfo,
    Receipt, StatusReport, StepState, Submission, Supplement, Withdrawal,
};
use serde_json::Value;

/// The tax adapter.
pub struct Tax;

fn invalid(problems: Vec<sdk::payload::FieldProblem>) -> AdapterError {
    AdapterError::InvalidInput(problems.into_iter().map(Into::into).collect())
}

fn credentials() -> Result<Credentials, AdapterError> {
    Ok(Credentials {
        app_key: sdk::config::require("app-key")?,
        method: SignMethod::from_setting(sdk::config::get("sign-method").as_deref())?,
    })
}

/// Sign a finished request (path, method and body fixed) and send it.
fn send_signed(request: Request) -> Result<Response, AdapterError> {
    let credentials = credentials()?;
    let headers = credentials.headers(
        request.method(),
        request.path(),
        request.body_bytes(),
        sdk::sign::unix_seconds(),
        &sdk::sign::nonce(),
    )?;
    let request = headers
        .into_iter()
        .fold(request, |r, (k, v)| r.header(k, v));
    Ok(request.send()?)
}

/// Sign an upload (its body holds a material slice) over its body's SM3 and send it. The
/// digest reads the file through the host in slices: memory stays a slice whatever its size.
fn send_upload(request: Request) -> Result<Response, AdapterError> {
    let credentials = credentials()?;
    let digest = request.content().sm3_hex()?;
    let headers = credentials.upload_headers(
        request.method(),
        request.path(),
        &digest,
        sdk::sign::unix_seconds(),
        &sdk::sign::nonce(),
    )?;
    let request = headers
        .into_iter()
        .fold(request, |r, (k, v)| r.header(k, v));
    Ok(request.send()?)
}

/// Upload each file among the materials for application `qqid` (a file whose bytes another
/// material already sent is not sent again): each material's code and the department's file
/// id.
fn upload(qqid: &str, materials: &[Material]) -> Result<Vec<(String, String)>, AdapterError> {
    let mut uploaded: Vec<(String, String)> = Vec::new();
    let mut by_digest: Vec<(String, String)> = Vec::new();
    for material in materials {
        let Some(file) = material.file() else {
            continue;
        };
        if let Some((_, id)) = by_digest.iter().find(|(sm3, _)| *sm3 == file.sm3) {
            uploaded.push((material.code.clone(), id.clone()));
            continue;
        }
        let form = protocol::upload_form(qqid, material, file);
        let response = send_upload(Request::post(protocol::WJSC_PATH).multipart(form))?;
        let id = protocol::read_uploaded(&material.code, response.status, &response.body)?;
        sdk::log::info(&format!(
            "material {} uploaded ({} bytes), wjid {id}",
            material.code, file.size
        ));
        by_digest.push((file.sm3.clone(), id.clone()));
        uploaded.push((material.code.clone(), id));
    }
    Ok(uploaded)
}

/// The application body with its materials: files uploaded first, then listed with the
/// licences and promised materials.
fn with_materials(mut body: Value, submission: &Submission) -> Result<Value, AdapterError> {
    let uploaded = upload(&submission.idempotency_key, &submission.materials)?;
    MaterialLists::of(&submission.materials, &uploaded).add_to(&mut body);
    Ok(body)
}

impl sdk::Adapter for Tax {
    fn describe() -> Description {
        Description {
            department: "tax".into(),
            contract_version: sdk::CONTRACT_VERSION.into(),
            adapter_version: "1.0.0".into(),
            matters: vec![
                MatterInfo {
                    code: REGISTRATION.into(),
                    name: "税务登记".into(),
                    input_schema: protocol::registration_schema().to_string(),
                },
                MatterInfo {
                    code: DEED_TAX.into(),
                    name: "契税申报".into(),
                    input_schema: protocol::deed_tax_schema().to_string(),
                },
            ],
            lookups: vec![LookupInfo {
                name: CLEARANCE.into(),
                description: "清税查询：按统一社会信用代码或居民身份号码查询纳税人是否结清税款"
                    .into(),
                input_schema: protocol::clearance_schema().to_string(),
            }],
        }
    }

    fn validate(matter: String, payload: String) -> Vec<FieldError> {
        protocol::validate(&matter, &payload)
            .into_iter()
            .map(Into::into)
            .collect()
    }

    fn submit(submission: Submission) -> Result<Receipt, AdapterError> {
        match submission.matter.as_str() {
            REGISTRATION => {
                let registration = protocol::registration(&submission.payload).map_err(invalid)?;
                let body =
                    with_materials(registration.body(&submission.idempotency_key), &submission)?;
                let response = send_signed(Request::post(protocol::SWDJ_PATH).json(&body))?;
                let receipt = protocol::read_registration(response.status, &response.body)?;
                sdk::log::info(&format!(
                    "tax registration accepted, slh {}",
                    receipt.reference
                ));
                Ok(receipt)
            }
            DEED_TAX => {
                let deed_tax = protocol::deed_tax(&submission.payload).map_err(invalid)?;
                let body = with_materials(deed_tax.body(&submission.idempotency_key), &submission)?;
                let response = send_signed(Request::post(protocol::QSSB_PATH).json(&body))?;
                let receipt = protocol::read_deed_tax(response.status, &response.body)?;
                sdk::log::info(&format!(
                    "deed tax return accepted, slh {}",
                    receipt.reference
                ));
                Ok(receipt)
            }
            other => Err(invalid(vec![protocol::unknown_matter(other)])),
        }
    }

    fn status(matter: String, reference: String) -> Result<StatusReport, AdapterError> {
        let read = match matter.as_str() {
            REGISTRATION => protocol::read_status,
            DEED_TAX => protocol::read_deed_tax_status,
            other => return Err(invalid(vec![protocol::unknown_matter(other)])),
        };
        let response = send_signed(Request::get(protocol::status_path(&reference)))?;
        read(&reference, response.status, &response.body)
    }

    fn lookup(name: String, query: String) -> Result<String, AdapterError> {
        if name != CLEARANCE {
            return Err(AdapterError::InvalidInput(vec![FieldError::new(
                "",
                "unknown_lookup",
                format!("税务部门不提供查询「{name}」"),
            )]));
        }
        let taxpayer_id = protocol::clearance_query(&query).map_err(invalid)?;
        let request =
            Request::post(protocol::QSCX_PATH).json(&protocol::clearance_body(&taxpayer_id));
        let response = send_signed(request)?;
        let answer = protocol::read_clearance(response.status, &response.body)?;
        Ok(serde_json::to_string(&answer).expect("serialising to JSON in memory cannot fail"))
    }

    fn on_callback(_request: CallbackRequest) -> Result<StatusReport, AdapterError> {
        Err(AdapterError::InvalidInput(vec![FieldError::new(
            "",
            "no_callbacks",
            "税务部门不回调：请以受理号查询办理状态",
        )]))
    }

    fn supplement(supplement: Supplement) -> Result<Receipt, AdapterError> {
        if supplement.matter != REGISTRATION && supplement.matter != DEED_TAX {
            return Err(invalid(vec![protocol::unknown_matter(&supplement.matter)]));
        }
        let qqid = &supplement.idempotency_key;
        let mut body = lifecycle::supplement_body(qqid, &supplement.reference, &supplement.payload)
            .map_err(invalid)?;
        let uploaded = upload(qqid, &supplement.materials)?;
        MaterialLists::of(&supplement.materials, &uploaded).add_to(&mut body);
        let response = send_signed(Request::post(lifecycle::BZSQ_PATH).json(&body))?;
        let receipt = lifecycle::read_action(response.status, &response.body)?;
        sdk::log::info(&format!(
            "supplement taken for slh {}, {} material(s)",
            receipt.reference,
            supplement.materials.len()
        ));
        Ok(receipt)
    }

    fn withdraw(withdrawal: Withdrawal) -> Result<Receipt, AdapterError> {
        // Without a 受理号 the department never took the matter: nothing to withdraw there.
        let Some(slh) = withdrawal.reference.as_deref().filter(|r| !r.is_empty()) else {
            let mut receipt = Receipt::new("", StepState::Withdrawn);
            receipt.message = Some("税务部门尚未受理，无需撤回".into());
            return Ok(receipt);
        };
        let body = lifecycle::withdrawal_body(&withdrawal.idempotency_key, slh, &withdrawal.reason);
        let response = send_signed(Request::post(lifecycle::CXSQ_PATH).json(&body))?;
        let receipt = lifecycle::read_action(response.status, &response.body)?;
        sdk::log::info(&format!(
            "withdrawal answered for slh {}: {:?}",
            receipt.reference, receipt.state
        ));
        if receipt.state == StepState::Approved {
            // Decided before the withdrawal: its outputs are in the status.
            return Tax::status(withdrawal.matter, slh.to_string()).map(Receipt::from);
        }
        Ok(receipt)
    }
}

sdk::export_adapter!(Tax);

#[cfg(test)]
mod tests {
    use super::*;
    use sdk::Adapter;
    use serde_json::Value;

    #[test]
    fn describe_lists_both_matters_with_parsable_schemas() {
        let d = Tax::describe();
        assert_eq!(d.department, "tax");
        let matters: Vec<(&str, &str)> = d
            .matters
            .iter()
            .map(|m| (m.code.as_str(), m.name.as_str()))
            .collect();
        assert_eq!(
            matters,
            vec![
                ("tax.registration", "税务登记"),
                ("tax.deed-tax", "契税申报")
            ]
        );
        for m in &d.matters {
            let schema: Value = serde_json::from_str(&m.input_schema).unwrap();
            assert_eq!(
                schema["$schema"],
                "https://json-schema.org/draft/2020-12/schema"
            );
        }
        assert_eq!(d.lookups[0].name, "tax.clearance");
    }

    #[test]
    fn validate_dispatches_on_the_matter() {
        assert!(!Tax::validate(DEED_TAX.into(), "{}".into()).is_empty());
        let unknown = Tax::validate("tax.other".into(), "{}".into());
        assert_eq!(unknown[0].code, "unknown_matter");
    }
}
