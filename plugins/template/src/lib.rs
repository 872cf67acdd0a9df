//! Adapter for the department `example` (示例部门): JSON over HTTP, an API key on every request.
//!
//! The adapter template, `plugins/template`: `cargo xtask new-adapter <department-id>` copies
//! it for a new department, replacing the department's id and name everywhere (crate, types,
//! matter and lookup codes). It compiles and its tests pass as generated; then write the
//! department's own protocol in `protocol.rs` and adjust the tests to its exchanges. The guide
//! is `docs/writing-an-adapter.md`; the contract is `wit/adapter.wit`.
//!
//! Serves the matter `example.application` (`POST /api/applications`, polled with
//! `GET /api/applications/{applicationNo}`) and the lookup `example.record`
//! (`POST /api/records/query`).
//!
//! Settings (`[departments.example.settings]` in the gateway config, read with
//! [`sdk::config`]): `api-key`, sent as `X-Api-Key` on every request.
//!
//! # Layout
//! - `lib.rs`: the contract, one function per export, each a thin sequence: read the input,
//!   call the department through the host, read the answer. Only here is the host called.
//! - [`protocol`]: the department's protocol as pure functions (payload checks, request
//!   bodies, answer readers, schemas), unit-tested without any host.
//! - `tests/harness.rs`: the exports run against a scripted department ([`sdk::testing`]).
//!
//! # Errors
//! Every export that can fail returns an [`AdapterError`]; its kind decides what the gateway does:
//! - `InvalidInput`: the applicant's data cannot be sent (every field problem at once); the
//!   portal gets a 422 naming the fields. Never retried.
//! - `Rejected`: the department refused on the merits; recorded on the case. Never retried.
//! - `Unavailable`, `Timeout`: the department is down or slow; the gateway retries with backoff
//!   (the `?` on [`sdk::http::Request::send`] maps host errors to these).
//! - `Protocol`: the department answered something unreadable; retried, then a dead letter.
//! - `Internal`: a bug or a missing setting; an operator must act.

pub mod protocol;

use protocol::{APPLICATION, RECORD};
use sdk::http::{Request, Response};
use sdk::{
    AdapterError, CallbackRequest, Description, FieldError, LookupInfo, MatterInfo, Receipt,
    StatusReport, Submission,
};

/// The adapter: a unit type, since nothing survives between calls (each call runs in a fresh
/// instance; keep what must last, such as tokens, in [`sdk::cache`]).
pub struct Example;

fn invalid(problems: Vec<sdk::payload::FieldProblem>) -> AdapterError {
    AdapterError::InvalidInput(problems.into_iter().map(Into::into).collect())
}

/// Send a request with the department's credentials. The host adds the base URL, TLS, the
/// timeout and the size limit; the adapter names only the path.
fn send(request: Request) -> Result<Response, AdapterError> {
    let api_key = sdk::config::require("api-key")?;
    Ok(request.header("X-Api-Key", api_key).send()?)
}

impl sdk::Adapter for Example {
    /// What the adapter serves: the department id (the gateway refuses to load an adapter for
    /// another department), the matters with the JSON Schema of their input, the lookups.
    /// Called at load time: must be cheap and call nothing.
    fn describe() -> Description {
        Description {
            department: protocol::DEPARTMENT.into(),
            contract_version: sdk::CONTRACT_VERSION.into(),
            adapter_version: env!("CARGO_PKG_VERSION").into(),
            matters: vec![MatterInfo {
                code: APPLICATION.into(),
                name: "示例部门申请".into(),
                input_schema: protocol::application_schema().to_string(),
            }],
            lookups: vec![LookupInfo {
                name: RECORD.into(),
                description: "示例部门登记信息查询：按居民身份号码查询登记记录".into(),
                input_schema: protocol::record_schema().to_string(),
            }],
        }
    }

    /// Pre-review: every problem the department would have with this input, all at once
    /// (一次性告知). The host has already checked the schema; check what the department checks
    /// beyond it (identifier check digits, cross-field rules). Calls nothing.
    fn validate(matter: String, payload: String) -> Vec<FieldError> {
        protocol::validate(&matter, &payload)
            .into_iter()
            .map(Into::into)
            .collect()
    }

    /// Hand one matter of a case to the department. The idempotency key is stable across the
    /// gateway's retries: pass it to the department so a retry cannot file twice. The receipt's
    /// reference is what `status` gets later.
    fn submit(submission: Submission) -> Result<Receipt, AdapterError> {
        if submission.matter != APPLICATION {
            return Err(invalid(vec![protocol::unknown_matter(&submission.matter)]));
        }
        let application = protocol::application(&submission.payload).map_err(invalid)?;
        let body = application.body(&submission.idempotency_key);
        let response = send(Request::post(protocol::APPLICATIONS_PATH).json(&body))?;
        let receipt = protocol::read_submitted(response.status, &response.body)?;
        sdk::log::info(&format!(
            "application accepted, applicationNo {}",
            receipt.reference
        ));
        Ok(receipt)
    }

    /// Where a submitted matter stands, polled by the gateway until it is decided. Once
    /// approved, the report's outputs (JSON) can feed later steps and electronic licences.
    fn status(matter: String, reference: String) -> Result<StatusReport, AdapterError> {
        if matter != APPLICATION {
            return Err(invalid(vec![protocol::unknown_matter(&matter)]));
        }
        let response = send(Request::get(protocol::application_path(&reference)))?;
        protocol::read_status(response.status, &response.body)
    }

    /// A shared-data lookup: the unified query in, the unified answer out, both JSON text.
    /// No record is `Rejected` with code `not_found` (the portal shows it on the field).
    fn lookup(name: String, query: String) -> Result<String, AdapterError> {
        if name != RECORD {
            return Err(AdapterError::InvalidInput(vec![FieldError::new(
                "",
                "unknown_lookup",
                format!("示例部门不提供查询「{name}」"),
            )]));
        }
        let id_number = protocol::record_query(&query).map_err(invalid)?;
        let request =
            Request::post(protocol::RECORDS_PATH).json(&protocol::record_body(&id_number));
        let response = send(request)?;
        Ok(protocol::read_record(response.status, &response.body)?.to_string())
    }

    /// A department's call to `POST /callbacks/example`, when its protocol calls back with
    /// decisions: authenticate it (a signature over the body with a secret from
    /// [`sdk::config`]; unauthenticated is `InvalidInput`) and report the new state. This
    /// department is polled instead, so every callback is refused.
    fn on_callback(_request: CallbackRequest) -> Result<StatusReport, AdapterError> {
        Err(AdapterError::InvalidInput(vec![FieldError::new(
            "",
            "no_callbacks",
            "示例部门不回调：请以受理编号查询办理状态",
        )]))
    }
}

// The component's exports; natively (tests) the adapter is called as `<Example as Adapter>::…`.
sdk::export_adapter!(Example);
