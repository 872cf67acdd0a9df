//! Version 2.0.0 of the `hostile` test department's adapter, for the hot-load tests: a
//! version whose behaviour can be told apart from 1.0.0, and made to fail on demand.
//!
//! - `hostile.echo`: answers `{"served_by": "2.0.0", "query": …}` (1.0.0 echoes the bare query),
//!   and fails with an internal error when the query says `"fail": true` (1.0.0 echoes it), so
//!   a staged rollout of this version shows a high error rate that 1.0.0 does not have.
//! - `hostile.slow-host`: as in 1.0.0, calls `/slow` on the department.

use sdk::http::Request;
use sdk::{
    AdapterError, CallbackRequest, Description, FieldError, LookupInfo, Receipt, StatusReport,
    Submission,
};
use serde_json::{Value, json};

/// The adapter's own version.
pub const VERSION: &str = "2.0.0";

/// The next hostile adapter.
pub struct HostileNext;

fn lookup_info(name: &str) -> LookupInfo {
    LookupInfo {
        name: name.into(),
        description: format!("{name}, version {VERSION}"),
        input_schema: r#"{"type":"object"}"#.into(),
    }
}

/// The answer to `hostile.echo`.
pub fn echo(query: &str) -> Result<String, AdapterError> {
    let query: Value = serde_json::from_str(query).unwrap_or(Value::Null);
    if query["fail"] == json!(true) {
        return Err(AdapterError::Internal(format!(
            "version {VERSION} fails on request"
        )));
    }
    Ok(json!({ "served_by": VERSION, "query": query }).to_string())
}

impl sdk::Adapter for HostileNext {
    fn describe() -> Description {
        Description {
            department: "hostile".into(),
            contract_version: sdk::CONTRACT_VERSION.into(),
            adapter_version: VERSION.into(),
            matters: Vec::new(),
            lookups: vec![
                lookup_info("hostile.echo"),
                lookup_info("hostile.slow-host"),
            ],
        }
    }

    fn validate(matter: String, _payload: String) -> Vec<FieldError> {
        vec![FieldError::new(
            "",
            "unknown_matter",
            format!("no matter {matter} here"),
        )]
    }

    fn submit(submission: Submission) -> Result<Receipt, AdapterError> {
        Err(AdapterError::Internal(format!(
            "no matter {}",
            submission.matter
        )))
    }

    fn status(matter: String, _reference: String) -> Result<StatusReport, AdapterError> {
        Err(AdapterError::Internal(format!("no matter {matter}")))
    }

    fn lookup(name: String, query: String) -> Result<String, AdapterError> {
        match name.as_str() {
            "hostile.echo" => echo(&query),
            "hostile.slow-host" => {
                let response = Request::get("/slow").send()?;
                Ok(json!({ "status": response.status }).to_string())
            }
            other => Err(AdapterError::InvalidInput(vec![FieldError::new(
                "",
                "unknown_lookup",
                format!("no lookup {other}"),
            )])),
        }
    }

    fn on_callback(_request: CallbackRequest) -> Result<StatusReport, AdapterError> {
        Err(AdapterError::Internal("no callbacks".into()))
    }
}

sdk::export_adapter!(HostileNext);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_tells_its_version_and_fails_on_request() {
        let answer: Value = serde_json::from_str(&echo(r#"{"a":1}"#).unwrap()).unwrap();
        assert_eq!(answer, json!({"served_by": "2.0.0", "query": {"a": 1}}));
        assert!(matches!(
            echo(r#"{"fail":true}"#),
            Err(AdapterError::Internal(_))
        ));
    }
}
