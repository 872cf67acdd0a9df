//! Adapter for the public-security system (公安): small UTF-8 XML documents over mutual TLS.
//!
//! Serves the matter `public-security.seal-filing` (刻章备案, `POST /gaxt/kzba`; filing is
//! immediate, so the receipt is already approved with the 备案编号) and the lookup
//! `public-security.identity` (身份核查, `POST /gaxt/sfhc`).
//!
//! A filing's materials travel inside its document ([`protocol::material_list`]): each file as
//! base64 with its SM3, which the department checks against the decoded bytes; the host streams
//! the base64 from its store into the request, so a file never enters the adapter. A 免提交
//! licence travels as its GB/T 36904 identifier.
//!
//! 补正 and 撤回: a filing whose impression the department cannot read is answered returned
//! (`blzt` 2, what it asks in `bzxx`, read into `requested`); `supplement` sends `POST
//! /gaxt/kzbz` (the corrected fields and the materials in `<cllb>`, decided at once),
//! `withdraw` `POST /gaxt/kzch`; `status` asks `POST /gaxt/kzcx` for the filing's state.
//!
//! Settings: none. The host holds the client certificate and does the mutual TLS; the adapter
//! only POSTs paths. The department does not call back: `on-callback` is refused.
//!
//! # Layout
//! - `lib.rs`: the exports, each a thin sequence of department calls.
//! - [`protocol`]: payload checks, documents, the materials' list, answer readers, schemas.
//! - [`lifecycle`]: the supplement's, the withdrawal's and the query's documents, a filing's
//!   state in any answer.

pub mod lifecycle;
pub mod protocol;

use protocol::{IDENTITY, SEAL_FILING};
use sdk::http::{Body, Request, Response};
use sdk::{
    AdapterError, CallbackRequest, Description, FieldError, LookupInfo, MatterInfo, Receipt,
    StatusReport, StepState, Submission, Supplement, Withdrawal,
};
use serde_json::Value;

/// The public-security adapter.
pub struct PublicSecurity;

fn invalid(problems: Vec<sdk::payload::FieldProblem>) -> AdapterError {
    AdapterError::InvalidInput(problems.into_iter().map(Into::into).collect())
}

/// Mark identifier fields of a schema with the formats the gateway checks with the national
/// algorithms: each entry is a JSON pointer to a property and its format.
fn with_formats(mut schema: Value, marks: &[(&str, &str)]) -> Value {
    for (pointer, format) in marks {
        if let Some(property) = schema.pointer_mut(pointer).and_then(Value::as_object_mut) {
            property.insert("format".into(), Value::from(*format));
        }
    }
    schema
}

/// Formats of `public-security.seal-filing`'s identifiers. The department refuses any credit
/// code failing GB 32100 (code 20), so the gateway may as well.
const SEAL_FILING_FORMATS: &[(&str, &str)] = &[
    ("/properties/credit_code", "credit-code"),
    (
        "/properties/legal_representative/properties/id_number",
        "resident-id",
    ),
];

/// Formats of `public-security.identity`'s identifiers.
const IDENTITY_FORMATS: &[(&str, &str)] = &[("/properties/id_number", "resident-id")];

fn post(path: &str, document: Body) -> Result<Response, AdapterError> {
    Ok(Request::post(path)
        .header("Content-Type", protocol::CONTENT_TYPE)
        .parts(document)
        .send()?)
}

impl sdk::Adapter for PublicSecurity {
    fn describe() -> Description {
        Description {
            department: "public-security".into(),
            contract_version: sdk::CONTRACT_VERSION.into(),
            adapter_version: "1.0.0".into(),
            matters: vec![MatterInfo {
                code: SEAL_FILING.into(),
                name: "刻章备案".into(),
                input_schema: with_formats(protocol::seal_filing_schema(), SEAL_FILING_FORMATS)
                    .to_string(),
            }],
            lookups: vec![LookupInfo {
                name: IDENTITY.into(),
                description: "身份核查：核对姓名与公民身份号码是否一致".into(),
                input_schema: with_formats(protocol::identity_schema(), IDENTITY_FORMATS)
                    .to_string(),
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
        if submission.matter != SEAL_FILING {
            return Err(invalid(vec![protocol::unknown_matter(&submission.matter)]));
        }
        let filing = protocol::seal_filing(&submission.payload).map_err(invalid)?;
        let response = post(
            protocol::KZBA_PATH,
            filing.request_with(&submission.idempotency_key, &submission.materials),
        )?;
        let receipt = protocol::read_filing(response.status, &response.body)?;
        sdk::log::info(&format!("seal filing recorded, babh {}", receipt.reference));
        Ok(receipt)
    }

    fn status(matter: String, reference: String) -> Result<StatusReport, AdapterError> {
        if matter != SEAL_FILING {
            return Err(invalid(vec![protocol::unknown_matter(&matter)]));
        }
        let document = lifecycle::query_request(&sdk::sign::nonce(), &reference);
        let response = post(lifecycle::KZCX_PATH, Body::from(document))?;
        let state = lifecycle::read_filing_state(response.status, &response.body)?;
        Ok(StatusReport {
            reference: state.reference,
            state: state.state,
            message: state.message,
            outputs: state.outputs,
            requested: state.requested,
        })
    }

    fn lookup(name: String, query: String) -> Result<String, AdapterError> {
        if name != IDENTITY {
            return Err(AdapterError::InvalidInput(vec![FieldError::new(
                "",
                "unknown_lookup",
                format!("公安部门不提供查询「{name}」"),
            )]));
        }
        let document = protocol::identity_request(&query, &sdk::sign::nonce()).map_err(invalid)?;
        let response = post(protocol::SFHC_PATH, Body::from(document))?;
        Ok(protocol::read_identity(response.status, &response.body)?.to_string())
    }

    fn on_callback(_request: CallbackRequest) -> Result<StatusReport, AdapterError> {
        Err(AdapterError::InvalidInput(vec![FieldError::new(
            "",
            "no_callbacks",
            "公安部门不回调：刻章备案即时办结",
        )]))
    }

    fn supplement(supplement: Supplement) -> Result<Receipt, AdapterError> {
        if supplement.matter != SEAL_FILING {
            return Err(invalid(vec![protocol::unknown_matter(&supplement.matter)]));
        }
        let body = lifecycle::supplement_request(
            &supplement.idempotency_key,
            &supplement.reference,
            &supplement.payload,
            &supplement.materials,
        )?;
        let response = post(lifecycle::KZBZ_PATH, body)?;
        let receipt = lifecycle::read_filing_state(response.status, &response.body)?;
        sdk::log::info(&format!(
            "supplement decided, babh {}: {:?}",
            receipt.reference, receipt.state
        ));
        Ok(receipt)
    }

    fn withdraw(withdrawal: Withdrawal) -> Result<Receipt, AdapterError> {
        // Without a 备案编号 the department never took the filing: nothing to withdraw there.
        let Some(babh) = withdrawal.reference.as_deref().filter(|r| !r.is_empty()) else {
            let mut receipt = Receipt::new("", StepState::Withdrawn);
            receipt.message = Some("公安部门尚未受理，无需撤回".into());
            return Ok(receipt);
        };
        let document =
            lifecycle::withdrawal_request(&withdrawal.idempotency_key, babh, &withdrawal.reason);
        let response = post(lifecycle::KZCH_PATH, Body::from(document))?;
        let receipt = lifecycle::read_filing_state(response.status, &response.body)?;
        sdk::log::info(&format!(
            "withdrawal answered, babh {}: {:?}",
            receipt.reference, receipt.state
        ));
        Ok(receipt)
    }
}

sdk::export_adapter!(PublicSecurity);

#[cfg(test)]
mod tests {
    use super::*;
    use sdk::Adapter;

    fn schema(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn described_schemas_mark_identifiers_with_their_formats() {
        let d = PublicSecurity::describe();
        let filing = schema(&d.matters[0].input_schema);
        let identity = schema(&d.lookups[0].input_schema);
        for (s, marks) in [
            (&filing, SEAL_FILING_FORMATS),
            (&identity, IDENTITY_FORMATS),
        ] {
            for (pointer, format) in marks {
                assert_eq!(
                    s.pointer(&format!("{pointer}/format")),
                    Some(&Value::from(*format))
                );
            }
        }
        // Nothing else changes.
        let mut unmarked = filing.clone();
        for (pointer, _) in SEAL_FILING_FORMATS {
            unmarked
                .pointer_mut(pointer)
                .and_then(Value::as_object_mut)
                .unwrap()
                .remove("format");
        }
        assert_eq!(unmarked, protocol::seal_filing_schema());
    }
}
