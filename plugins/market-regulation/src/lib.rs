//! Adapter for market regulation (市场监管): JSON REST behind OAuth2 client credentials.
//!
//! Serves the matter `market-regulation.business-licence` (营业执照设立登记,
//! `POST /api/licences`, decided later and reported by a signed callback, or polled with
//! `GET /api/licences/{applicationNo}`), the matter `market-regulation.food-permit` (食品经营许可,
//! `POST /api/food-permits`, never called back: polled with `GET /api/food-permits/{applicationNo}`)
//! and the lookup `market-regulation.enterprise` (`GET /api/enterprises/{uscc}`).
//!
//! An application's materials go first: each file uploaded in chunks behind the same OAuth
//! token ([`uploads`]: open, one `PUT` per chunk with its SM3, complete with the whole's SM3),
//! the host streaming each chunk from its store, so a file never enters the adapter; the
//! application then names the files by the department's ids, and each 免提交 licence by its
//! GB/T 36904 identifier, which the department verifies with the gateway. An upload cut off
//! (a crash, a retry) resumes: the open says which chunks the department has.
//!
//! Settings: `client-id`, `client-secret` (token grant). Keys the host holds: `callback-secret`
//! (`hmac`: the HMAC-SHA256 key of the callbacks' `X-Signature`; the adapter asks the host to
//! check a signature and never sees the secret). The access token is cached under `token` for its lifetime less
//! 30 s; a 401 `invalid_token` drops it, fetches a new one and retries the call once.
//!
//! 补正 and 撤回: a returned licence application (`RETURNED`, by callback or polled) is
//! reported with what the department asks (`supplement`, read into `requested`);
//! `supplement` uploads the supplement's files under its own request id and sends `POST
//! /api/licences/{no}/supplements`, decided again later and announced by callback; `withdraw`
//! sends `POST …/withdrawal` (licences and food permits) and answers the application's state
//! after it.
//!
//! # Layout
//! - `lib.rs`: the exports, each a sequence of calls through the host.
//! - [`protocol`]: payloads, tokens, applications, callbacks, lookups as pure functions.
//! - [`uploads`]: the upload in chunks as pure functions.
//! - [`lifecycle`]: the supplement's and the withdrawal's bodies and paths, a return's asks.

pub mod lifecycle;
pub mod protocol;
pub mod uploads;

use protocol::{BUSINESS_LICENCE, ENTERPRISE, FOOD_PERMIT, TOKEN_CACHE_KEY};
use sdk::http::{Body, Request, Response};
use sdk::{
    AdapterError, CallbackRequest, Description, FieldError, LookupInfo, Material, MatterInfo,
    Receipt, StatusReport, StepState, Submission, Supplement, Withdrawal,
};
use serde_json::Value;
use std::collections::BTreeMap;

/// The market-regulation adapter.
pub struct MarketRegulation;

fn invalid(problems: Vec<sdk::payload::FieldProblem>) -> AdapterError {
    AdapterError::InvalidInput(problems.into_iter().map(Into::into).collect())
}

/// A fresh token from the department, cached for its lifetime less the margin.
fn fetch_token() -> Result<String, AdapterError> {
    let form = protocol::token_form(
        &sdk::config::require("client-id")?,
        &sdk::config::require("client-secret")?,
    );
    let response = Request::post(protocol::TOKEN_PATH)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()?;
    let token = protocol::read_token(response.status, &response.body)?;
    sdk::cache::set(TOKEN_CACHE_KEY, token.access_token.as_bytes(), token.ttl_ms);
    Ok(token.access_token)
}

fn cached_or_fetched_token() -> Result<String, AdapterError> {
    match sdk::cache::get_string(TOKEN_CACHE_KEY).filter(|t| !t.is_empty()) {
        Some(token) => Ok(token),
        None => fetch_token(),
    }
}

/// Send an API request with the bearer token; on 401 drop the token, fetch a new one and retry
/// once. A second 401 is left to the answer readers (a `Protocol` error: the department refuses
/// a token it has just issued).
fn call(build: impl Fn() -> Request) -> Result<Response, AdapterError> {
    let token = cached_or_fetched_token()?;
    let response = build()
        .header("Authorization", format!("Bearer {token}"))
        .send()?;
    if response.status != 401 {
        return Ok(response);
    }
    sdk::log::info("access token refused, fetching a new one");
    sdk::cache::delete(TOKEN_CACHE_KEY);
    let token = fetch_token()?;
    Ok(build()
        .header("Authorization", format!("Bearer {token}"))
        .send()?)
}

/// Upload one file in chunks; the department's id of it. Chunks the department has already
/// (the open says) are not sent again.
fn upload(request_id: &str, material: &Material) -> Result<Option<String>, AdapterError> {
    let Some(file) = material.file() else {
        return Ok(None);
    };
    let code = material.code.as_str();
    let open = uploads::open_body(request_id, material, file);
    let response = call(|| Request::post(uploads::FILES_PATH).json(&open))?;
    let opened = uploads::read_opened(response.status, &response.body, file.size)?;
    if !opened.complete {
        for chunk in sdk::materials::chunks(file.size, opened.chunk_size) {
            if opened.received.contains(&chunk.index) {
                continue;
            }
            // Read through once for the digest; the host streams the bytes again to send them.
            let sm3 = chunk.sm3_hex(code)?;
            let path = uploads::chunk_path(&opened.file_id, chunk.index);
            let response = call(|| {
                Request::put(&path)
                    .header("Content-Type", "application/octet-stream")
                    .header(uploads::CHUNK_SM3_HEADER, &sm3)
                    .parts(Body::from(chunk.slice(code)))
            })?;
            uploads::read_chunk(response.status, &response.body)?;
        }
        let done = uploads::complete_body(file);
        let path = uploads::complete_path(&opened.file_id);
        let response = call(|| Request::post(&path).json(&done))?;
        uploads::read_completed(response.status, &response.body, file)?;
    }
    sdk::log::info(&format!(
        "material {code} uploaded, fileId {}",
        opened.file_id
    ));
    Ok(Some(opened.file_id))
}

/// Upload the submission's files and name its materials in the application `body`.
fn attach_materials(body: &mut Value, submission: &Submission) -> Result<(), AdapterError> {
    attach(body, &submission.idempotency_key, &submission.materials)
}

/// Upload `materials`' files under `request_id` and name them all in `body`.
fn attach(body: &mut Value, request_id: &str, materials: &[Material]) -> Result<(), AdapterError> {
    if materials.is_empty() {
        return Ok(());
    }
    let mut uploaded = BTreeMap::new();
    for material in materials {
        if let Some(file_id) = upload(request_id, material)? {
            uploaded.insert(material.code.clone(), file_id);
        }
    }
    body["materials"] = uploads::materials_field(materials, &uploaded);
    Ok(())
}

/// How an answer about an application is read.
type ReadReport = fn(u16, &[u8]) -> Result<StatusReport, AdapterError>;

fn receipt_of(report: StatusReport) -> Receipt {
    Receipt {
        reference: report.reference,
        state: report.state,
        message: report.message,
        outputs: report.outputs,
        requested: report.requested,
    }
}

impl sdk::Adapter for MarketRegulation {
    fn describe() -> Description {
        Description {
            department: "market-regulation".into(),
            contract_version: sdk::CONTRACT_VERSION.into(),
            adapter_version: "1.0.0".into(),
            matters: vec![
                MatterInfo {
                    code: BUSINESS_LICENCE.into(),
                    name: "营业执照设立登记".into(),
                    input_schema: protocol::licence_schema().to_string(),
                },
                MatterInfo {
                    code: FOOD_PERMIT.into(),
                    name: "食品经营许可".into(),
                    input_schema: protocol::food_permit_schema().to_string(),
                },
            ],
            lookups: vec![LookupInfo {
                name: ENTERPRISE.into(),
                description: "企业登记信息查询：按统一社会信用代码查询企业名称、住所、法定代表人、注册资本、登记状态".into(),
                input_schema: protocol::enterprise_schema().to_string(),
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
            BUSINESS_LICENCE => {
                let licence = protocol::licence(&submission.payload).map_err(invalid)?;
                let mut body = licence.body(&submission.idempotency_key, &submission.callback_url);
                attach_materials(&mut body, &submission)?;
                let response = call(|| Request::post(protocol::LICENCES_PATH).json(&body))?;
                let receipt = protocol::read_submitted(response.status, &response.body)?;
                sdk::log::info(&format!(
                    "licence application accepted, applicationNo {}",
                    receipt.reference
                ));
                Ok(receipt)
            }
            FOOD_PERMIT => {
                let permit = protocol::food_permit(&submission.payload).map_err(invalid)?;
                let mut body = permit.body(&submission.idempotency_key);
                attach_materials(&mut body, &submission)?;
                let response = call(|| Request::post(protocol::FOOD_PERMITS_PATH).json(&body))?;
                let receipt = protocol::read_permit_submitted(response.status, &response.body)?;
                sdk::log::info(&format!(
                    "food permit application accepted, applicationNo {}",
                    receipt.reference
                ));
                Ok(receipt)
            }
            other => Err(invalid(vec![protocol::unknown_matter(other)])),
        }
    }

    fn status(matter: String, reference: String) -> Result<StatusReport, AdapterError> {
        match matter.as_str() {
            BUSINESS_LICENCE => {
                let response = call(|| Request::get(protocol::licence_path(&reference)))?;
                protocol::read_status(response.status, &response.body)
            }
            FOOD_PERMIT => {
                let response = call(|| Request::get(protocol::food_permit_path(&reference)))?;
                protocol::read_permit_status(response.status, &response.body)
            }
            other => Err(invalid(vec![protocol::unknown_matter(other)])),
        }
    }

    fn lookup(name: String, query: String) -> Result<String, AdapterError> {
        if name != ENTERPRISE {
            return Err(AdapterError::InvalidInput(vec![FieldError::new(
                "",
                "unknown_lookup",
                format!("市场监管部门不提供查询「{name}」"),
            )]));
        }
        let credit_code = protocol::enterprise_query(&query).map_err(invalid)?;
        let response = call(|| Request::get(protocol::enterprise_path(&credit_code)))?;
        Ok(protocol::read_enterprise(response.status, &response.body)?.to_string())
    }

    fn on_callback(request: CallbackRequest) -> Result<StatusReport, AdapterError> {
        let report = protocol::read_callback(&request.headers, &request.body, |signature| {
            Ok(sdk::crypto::verify_mac_hex(
                protocol::CALLBACK_KEY,
                sdk::crypto::Mac::HmacSha256,
                &request.body,
                signature,
            )?)
        })?;
        sdk::log::info(&format!(
            "licence callback for applicationNo {}",
            report.reference
        ));
        Ok(report)
    }

    fn supplement(supplement: Supplement) -> Result<Receipt, AdapterError> {
        match supplement.matter.as_str() {
            BUSINESS_LICENCE => {}
            FOOD_PERMIT => {
                return Err(AdapterError::Rejected(sdk::Rejection {
                    code: "not_returned".into(),
                    message: "市场监管部门不退回食品经营许可申请，无需补正".into(),
                }));
            }
            other => return Err(invalid(vec![protocol::unknown_matter(other)])),
        }
        let request_id = &supplement.idempotency_key;
        let mut body =
            lifecycle::supplement_body(request_id, &supplement.payload).map_err(invalid)?;
        attach(&mut body, request_id, &supplement.materials)?;
        let path = lifecycle::supplements_path(&supplement.reference);
        let response = call(|| Request::post(&path).json(&body))?;
        let receipt = protocol::read_submitted(response.status, &response.body)?;
        sdk::log::info(&format!(
            "supplement accepted, applicationNo {}",
            receipt.reference
        ));
        Ok(receipt)
    }

    fn withdraw(withdrawal: Withdrawal) -> Result<Receipt, AdapterError> {
        // Without an application number the department never took it: nothing to withdraw.
        let Some(no) = withdrawal.reference.as_deref().filter(|r| !r.is_empty()) else {
            let mut receipt = Receipt::new("", StepState::Withdrawn);
            receipt.message = Some("市场监管部门尚未受理，无需撤回".into());
            return Ok(receipt);
        };
        let body = lifecycle::withdrawal_body(&withdrawal.idempotency_key, &withdrawal.reason);
        let (path, read) = match withdrawal.matter.as_str() {
            BUSINESS_LICENCE => (
                lifecycle::licence_withdrawal_path(no),
                protocol::read_status as ReadReport,
            ),
            FOOD_PERMIT => (
                lifecycle::food_permit_withdrawal_path(no),
                protocol::read_permit_status as ReadReport,
            ),
            other => return Err(invalid(vec![protocol::unknown_matter(other)])),
        };
        let response = call(|| Request::post(&path).json(&body))?;
        let report = read(response.status, &response.body)?;
        sdk::log::info(&format!(
            "withdrawal answered, applicationNo {}: {:?}",
            report.reference, report.state
        ));
        Ok(receipt_of(report))
    }
}

sdk::export_adapter!(MarketRegulation);

#[cfg(test)]
mod tests {
    use super::*;
    use sdk::Adapter;
    use serde_json::Value;

    #[test]
    fn describe_lists_both_matters_with_parsable_schemas() {
        let d = MarketRegulation::describe();
        assert_eq!(d.department, "market-regulation");
        let matters: Vec<(&str, &str)> = d
            .matters
            .iter()
            .map(|m| (m.code.as_str(), m.name.as_str()))
            .collect();
        assert_eq!(
            matters,
            vec![
                ("market-regulation.business-licence", "营业执照设立登记"),
                ("market-regulation.food-permit", "食品经营许可"),
            ]
        );
        for m in &d.matters {
            let schema: Value = serde_json::from_str(&m.input_schema).unwrap();
            assert_eq!(
                schema["$schema"],
                "https://json-schema.org/draft/2020-12/schema"
            );
        }
        assert_eq!(d.lookups[0].name, "market-regulation.enterprise");
    }

    #[test]
    fn validate_dispatches_on_the_matter() {
        assert!(!MarketRegulation::validate(FOOD_PERMIT.into(), "{}".into()).is_empty());
        let unknown = MarketRegulation::validate("market-regulation.other".into(), "{}".into());
        assert_eq!(unknown[0].code, "unknown_matter");
    }
}
