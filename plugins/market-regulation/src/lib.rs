//! Adapter for market regulation (市场监管): JSON REST behind OAuth2 client credentials.
//!
//! Serves the matter `market-regulation.business-licence` (营业执照设立登记,
//! `POST /api/licences`, decided later and reported by a signed callback, or polled with
//! `GET /api/licences/{applicationNo}`) and the lookup `market-regulation.enterprise`
//! (`GET /api/enterprises/{uscc}`).
//!
//! Settings: `client-id`, `client-secret` (token grant), `callback-secret` (HMAC-SHA256 key of the
//! callbacks' `X-Signature`). The access token is cached under `token` for its lifetime less
//! 30 s; a 401 `invalid_token` drops it, fetches a new one and retries the call once.

pub mod protocol;

use protocol::{BUSINESS_LICENCE, ENTERPRISE, TOKEN_CACHE_KEY};
use sdk::http::{Request, Response};
use sdk::{
    AdapterError, CallbackRequest, Description, FieldError, LookupInfo, MatterInfo, Receipt,
    StatusReport, Submission,
};

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

impl sdk::Adapter for MarketRegulation {
    fn describe() -> Description {
        Description {
            department: "market-regulation".into(),
            contract_version: sdk::CONTRACT_VERSION.into(),
            adapter_version: "1.0.0".into(),
            matters: vec![MatterInfo {
                code: BUSINESS_LICENCE.into(),
                name: "营业执照设立登记".into(),
                input_schema: protocol::licence_schema().to_string(),
            }],
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
        if submission.matter != BUSINESS_LICENCE {
            return Err(invalid(vec![protocol::unknown_matter(&submission.matter)]));
        }
        let licence = protocol::licence(&submission.payload).map_err(invalid)?;
        let body = licence.body(&submission.idempotency_key, &submission.callback_url);
        let response = call(|| Request::post(protocol::LICENCES_PATH).json(&body))?;
        let receipt = protocol::read_submitted(response.status, &response.body)?;
        sdk::log::info(&format!(
            "licence application accepted, applicationNo {}",
            receipt.reference
        ));
        Ok(receipt)
    }

    fn status(matter: String, reference: String) -> Result<StatusReport, AdapterError> {
        if matter != BUSINESS_LICENCE {
            return Err(invalid(vec![protocol::unknown_matter(&matter)]));
        }
        let response = call(|| Request::get(protocol::licence_path(&reference)))?;
        protocol::read_status(response.status, &response.body)
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
        let secret = sdk::config::require("callback-secret")?;
        let report = protocol::read_callback(&request.headers, &request.body, &secret)?;
        sdk::log::info(&format!(
            "licence callback for applicationNo {}",
            report.reference
        ));
        Ok(report)
    }
}

sdk::export_adapter!(MarketRegulation);
