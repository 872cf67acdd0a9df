//! Adapter for the real-estate registry (不动产登记): SOAP 1.1 web service, XML in GBK.
//!
//! Serves the matter `real-estate.transfer` (二手房转移登记, operation `submitTransfer`, polled
//! with `queryStatus`) and the lookup `real-estate.property` (`queryByCertificate` or
//! `queryByUnit`). Every call is `POST /services/BdcService` with
//! `Content-Type: text/xml; charset=GBK` and `SOAPAction: "urn:bdc:<operation>"`.
//!
//! A transfer with uploaded files goes as SOAP with attachments, MTOM/XOP: a
//! `multipart/related; type="application/xop+xml"` package whose root part is the GBK envelope
//! and whose other parts are the files, each referenced from the envelope by an `xop:Include`
//! and streamed by the host from its store (the adapter never reads them). Licences (免提交)
//! and promised materials (容缺) are listed in the envelope; without files the transfer is a
//! plain envelope, as before.
//!
//! 补正 and 撤回: a returned transfer (`退回`) is reported with what the registry asks (`bzxx`,
//! read into `requested`); `supplement` calls `submitSupplement` (the corrected fields by the
//! registry's names, materials as a transfer carries them, an MTOM package when there are
//! files), `withdraw` calls `withdrawApplication` and answers the transfer's state after it.
//!
//! Settings: none (the host supplies the base URL). The registry does not call back:
//! `on-callback` is refused.
//!
//! # Layout
//! - `lib.rs`: the exports, each a thin sequence of registry calls.
//! - [`protocol`]: payload checks, GBK envelopes, the materials' elements, answer and fault
//!   readers, schemas.
//! - [`lifecycle`]: the supplement's and the withdrawal's envelopes and answers, a return's asks.

pub mod lifecycle;
pub mod protocol;

use protocol::{PROPERTY, TRANSFER};
use sdk::http::{Multipart, Request, Response};
use sdk::{
    AdapterError, CallbackRequest, Description, FieldError, LookupInfo, MatterInfo, Receipt,
    StatusReport, StepState, Submission, Supplement, Withdrawal,
};
use serde_json::Value;

/// The real-estate adapter.
pub struct RealEstate;

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

/// Formats of `real-estate.transfer`'s identifiers.
const TRANSFER_FORMATS: &[(&str, &str)] = &[
    ("/properties/unit_number", "real-estate-unit"),
    ("/properties/certificate_number", "real-estate-certificate"),
    ("/properties/seller/properties/id_number", "resident-id"),
    ("/properties/buyer/properties/id_number", "resident-id"),
];

/// Formats of `real-estate.property`'s identifiers.
const PROPERTY_FORMATS: &[(&str, &str)] = &[
    ("/properties/unit_number", "real-estate-unit"),
    ("/properties/certificate_number", "real-estate-certificate"),
];

/// POST an MTOM package: the GBK envelope, then each file its `xop:Include`s name, streamed
/// by the host.
fn call_with_attachments(
    operation: &str,
    envelope: Vec<u8>,
    materials: &[sdk::Material],
) -> Result<Response, AdapterError> {
    let mut package = Multipart::xop(envelope, "GBK", "text/xml");
    for (content_id, material) in protocol::attachments(materials) {
        let (Some(file), Some(slice)) = (material.file(), material.slice()) else {
            continue;
        };
        package = package.attachment(&content_id, &file.media_type, slice);
    }
    Ok(Request::post(protocol::SERVICE_PATH)
        .header("SOAPAction", protocol::soap_action(operation))
        .multipart(package)
        .send()?)
}

/// POST one GBK envelope to the service.
fn call(operation: &str, envelope: Vec<u8>) -> Result<Response, AdapterError> {
    Ok(Request::post(protocol::SERVICE_PATH)
        .header("Content-Type", protocol::CONTENT_TYPE)
        .header("SOAPAction", protocol::soap_action(operation))
        .body(envelope)
        .send()?)
}

impl sdk::Adapter for RealEstate {
    fn describe() -> Description {
        Description {
            department: "real-estate".into(),
            contract_version: sdk::CONTRACT_VERSION.into(),
            adapter_version: "1.0.0".into(),
            matters: vec![MatterInfo {
                code: TRANSFER.into(),
                name: "二手房转移登记".into(),
                input_schema: with_formats(protocol::transfer_schema(), TRANSFER_FORMATS)
                    .to_string(),
            }],
            lookups: vec![LookupInfo {
                name: PROPERTY.into(),
                description: "不动产登记信息查询：按不动产权证书号或不动产单元号（二选一）查询权利人、坐落、面积、用途".into(),
                input_schema: with_formats(protocol::property_schema(), PROPERTY_FORMATS)
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
        if submission.matter != TRANSFER {
            return Err(invalid(vec![protocol::unknown_matter(&submission.matter)]));
        }
        let transfer = protocol::transfer(&submission.payload).map_err(invalid)?;
        let materials = &submission.materials;
        let envelope = transfer.envelope_with(&submission.idempotency_key, materials)?;
        let response = if materials.iter().any(|m| m.file().is_some()) {
            call_with_attachments("submitTransfer", envelope, materials)?
        } else {
            call("submitTransfer", envelope)?
        };
        let receipt = protocol::read_transfer(response.status, &response.body)?;
        sdk::log::info(&format!(
            "transfer registration accepted, slbh {}",
            receipt.reference
        ));
        Ok(receipt)
    }

    fn status(matter: String, reference: String) -> Result<StatusReport, AdapterError> {
        if matter != TRANSFER {
            return Err(invalid(vec![protocol::unknown_matter(&matter)]));
        }
        let response = call("queryStatus", protocol::status_request(&reference)?)?;
        protocol::read_status(&reference, response.status, &response.body)
    }

    fn lookup(name: String, query: String) -> Result<String, AdapterError> {
        if name != PROPERTY {
            return Err(AdapterError::InvalidInput(vec![FieldError::new(
                "",
                "unknown_lookup",
                format!("不动产登记部门不提供查询「{name}」"),
            )]));
        }
        let (operation, envelope) = protocol::property_request(&query).map_err(invalid)?;
        let response = call(operation, envelope)?;
        Ok(protocol::read_property(response.status, &response.body)?.to_string())
    }

    fn on_callback(_request: CallbackRequest) -> Result<StatusReport, AdapterError> {
        Err(AdapterError::InvalidInput(vec![FieldError::new(
            "",
            "no_callbacks",
            "不动产登记部门不回调：请以受理编号查询办理状态",
        )]))
    }

    fn supplement(supplement: Supplement) -> Result<Receipt, AdapterError> {
        if supplement.matter != TRANSFER {
            return Err(invalid(vec![protocol::unknown_matter(&supplement.matter)]));
        }
        let materials = &supplement.materials;
        let envelope = lifecycle::supplement_envelope(
            &supplement.idempotency_key,
            &supplement.reference,
            &supplement.payload,
            materials,
        )?;
        let response = if materials.iter().any(|m| m.file().is_some()) {
            call_with_attachments("submitSupplement", envelope, materials)?
        } else {
            call("submitSupplement", envelope)?
        };
        let receipt =
            lifecycle::read_action(response.status, &response.body, "submitSupplementResponse")?;
        sdk::log::info(&format!("supplement taken, slbh {}", receipt.reference));
        Ok(receipt)
    }

    fn withdraw(withdrawal: Withdrawal) -> Result<Receipt, AdapterError> {
        // Without a 受理编号 the registry never took the transfer: nothing to withdraw there.
        let Some(slbh) = withdrawal.reference.as_deref().filter(|r| !r.is_empty()) else {
            let mut receipt = Receipt::new("", StepState::Withdrawn);
            receipt.message = Some("不动产登记部门尚未受理，无需撤回".into());
            return Ok(receipt);
        };
        let envelope =
            lifecycle::withdrawal_envelope(&withdrawal.idempotency_key, slbh, &withdrawal.reason)?;
        let response = call("withdrawApplication", envelope)?;
        let receipt = lifecycle::read_action(
            response.status,
            &response.body,
            "withdrawApplicationResponse",
        )?;
        sdk::log::info(&format!(
            "withdrawal answered, slbh {}: {:?}",
            receipt.reference, receipt.state
        ));
        Ok(receipt)
    }
}

sdk::export_adapter!(RealEstate);

#[cfg(test)]
mod tests {
    use super::*;
    use sdk::Adapter;

    fn schema(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn described_schemas_mark_identifiers_with_their_formats() {
        let d = RealEstate::describe();
        let transfer = schema(&d.matters[0].input_schema);
        let property = schema(&d.lookups[0].input_schema);
        for (s, marks) in [(&transfer, TRANSFER_FORMATS), (&property, PROPERTY_FORMATS)] {
            for (pointer, format) in marks {
                assert_eq!(
                    s.pointer(&format!("{pointer}/format")),
                    Some(&Value::from(*format))
                );
            }
        }
        // Nothing else changes.
        let mut unmarked = transfer.clone();
        for (pointer, _) in TRANSFER_FORMATS {
            unmarked
                .pointer_mut(pointer)
                .and_then(Value::as_object_mut)
                .unwrap()
                .remove("format");
        }
        assert_eq!(unmarked, protocol::transfer_schema());
        assert_eq!(transfer["properties"]["price"].get("format"), None);
    }
}
