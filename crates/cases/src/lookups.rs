//! Shared-data lookups (四不提交): a portal asks a department for a record through its adapter,
//! and every lookup is recorded — who asked, why, for which case or clerk, how it ended —
//! before the answer goes back (a lookup alone: its record written while its department is
//! asked, its outcome after).

use crate::views::LookupAnswer;
use crate::{CaseError, Orchestrator};
use gateway_store::LookupServes;
use serde_json::Value;

impl Orchestrator {
    /// Run the lookup `name` with `query` for `client`, serving `served`.
    pub async fn lookup(
        &self,
        client: &str,
        name: &str,
        query: &Value,
        served: &LookupServes,
    ) -> Result<LookupAnswer, CaseError> {
        let adapter = self
            .adapters()
            .for_lookup(name)
            .ok_or_else(|| CaseError::NotFound {
                what: "lookup",
                id: name.to_string(),
            })?;
        let department = adapter.department().id.clone();
        let recording = self.store().lookup_begun(client, name, served);
        let answer = adapter.lookup(name, &query.to_string()).await;
        let outcome = answer.as_ref().map_or_else(|e| e.kind(), |_| "ok");
        recording.ended(outcome).await?;
        let answer = answer.map_err(|e| CaseError::from_call(&department, e))?;
        let parsed = serde_json::from_str::<Value>(&answer);
        if let Ok(value) = &parsed {
            gateway_base::redact::note_names(value);
        }
        let result = match parsed {
            Ok(Value::Object(result)) => result,
            Ok(_) => {
                return Err(CaseError::AdapterFailed {
                    department,
                    message: "adapter answered a lookup with JSON that is not an object".into(),
                });
            }
            Err(e) => {
                return Err(CaseError::AdapterFailed {
                    department,
                    message: format!("adapter answered a lookup with invalid JSON: {e}"),
                });
            }
        };
        Ok(LookupAnswer {
            lookup: name.to_string(),
            department,
            result,
        })
    }
}
