//! Arrival: every check a component passes before it may serve a department.
//!
//! In order, each refusal naming its check: the signature (when trusted keys are configured),
//! compilation, the fit between its imports and exports and the host's contract (0.1.0,
//! 0.2.0 or 0.3.0, detected from the component), `describe`, the contract version (what it describes
//! must be the version it implements, by semver), the department it names, that every matter
//! the catalogue gives materials is served by a component of contract 0.2.0 or later (a 0.1
//! component cannot be handed materials), and a self-check — it serves every matter
//! the catalogue routes to its department with the same input schema (a hot swap must not
//! change a published form; that takes a catalogue change), every lookup a service relies on,
//! and `validate` of an empty application answers (field problems, no trap) for each matter.
//! A refused component changes nothing: the running version keeps serving.

use crate::host::{Contract, Department, Limits, LoadError, LoadedAdapter, PluginEngine};
use gateway_store::registry::VersionRecord;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a component was refused, by check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `signature`, `compile`, `contract`, `describe`, `contract_version`, `department`,
    /// `self_check`.
    pub check: &'static str,
    /// What is wrong, for the operator.
    pub reason: String,
}

impl Refusal {
    /// A refusal by `check`, with the reason.
    pub fn new(check: &'static str, reason: impl Into<String>) -> Self {
        Refusal {
            check,
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.check, self.reason)
    }
}

/// What the catalogue needs from one department's adapter, whichever version.
#[derive(Debug, Clone, Default)]
pub struct Needs {
    /// Matter codes, and whether their form is the adapter's own schema (no schema file).
    pub matters: Vec<(String, bool)>,
    /// Lookups that services of the catalogue run.
    pub lookups: Vec<String>,
    /// Matters whose catalogue entry lists materials: they need contract 0.2.0 or later.
    pub with_materials: Vec<String>,
}

/// Compile and describe a component before it is known which department it is for.
pub async fn describe(
    engine: &PluginEngine,
    bytes: &[u8],
    limits: Limits,
) -> Result<LoadedAdapter, Refusal> {
    let nowhere = Department::new(
        "(unbound)",
        crate::connection::Connection::unbound()
            .map_err(|e| Refusal::new("compile", format!("host: {e:#}")))?,
        BTreeMap::new(),
        &limits,
    );
    LoadedAdapter::load(engine, bytes, Arc::new(nowhere), limits)
        .await
        .map_err(|e| match e {
            LoadError::Compile(why) => Refusal::new("compile", why),
            LoadError::Contract(why) => Refusal::new("contract", why),
            LoadError::Describe(why) => Refusal::new("describe", why.to_string()),
        })
}

/// Whether what a component describes as its contract version agrees with the version it
/// implements (detected from the component): the same major version, and for 0.x the same
/// minor (semver's rule for unstable versions). Refused with the versions this host serves.
pub fn contract(adapter: &LoadedAdapter) -> Result<(), Refusal> {
    let described = &adapter.description().contract_version;
    let implemented = adapter.contract();
    if compatible(described, implemented.as_str()) {
        return Ok(());
    }
    let served = crate::host::SERVED
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(" and ");
    Err(Refusal::new(
        "contract_version",
        if crate::host::SERVED
            .iter()
            .any(|c| compatible(described, c.as_str()))
        {
            format!(
                "describes contract {described} but implements {implemented} (its imports and exports)"
            )
        } else {
            format!("built against contract {described}, this gateway serves {served}")
        },
    ))
}

/// Whether a contract version an adapter was built against is compatible with `host`'s:
/// the same major version, and for 0.x the same minor (semver's rule for unstable versions).
pub fn compatible(contract: &str, host: &str) -> bool {
    let parts = |v: &str| -> Option<(u64, u64)> {
        let mut it = v.trim().split('.');
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    };
    match (parts(contract), parts(host)) {
        (Some((0, a)), Some((0, b))) => a == b,
        (Some((a, _)), Some((b, _))) => a == b,
        _ => false,
    }
}

/// Check what a bound adapter serves against the catalogue's needs and the running version,
/// and smoke-test `validate`. Every problem is gathered into one refusal.
pub async fn self_check(
    adapter: &LoadedAdapter,
    needs: &Needs,
    running: Option<&LoadedAdapter>,
) -> Result<(), Refusal> {
    let described = adapter.description();
    let implemented = adapter.contract();
    let lacking: Vec<&str> = needs
        .with_materials
        .iter()
        .filter(|_| implemented < Contract::V0_2)
        .map(String::as_str)
        .collect();
    if !lacking.is_empty() {
        return Err(Refusal::new(
            "contract_version",
            format!(
                "the catalogue lists materials for matter{} {}, which need{} an adapter of \
                 contract 0.2.0 or later; this component implements {implemented}",
                if lacking.len() == 1 { "" } else { "s" },
                lacking.join(", "),
                if lacking.len() == 1 { "s" } else { "" },
            ),
        ));
    }
    let mut problems = Vec::new();
    for (code, schema_is_adapters) in &needs.matters {
        let Some(matter) = described.matters.iter().find(|m| &m.code == code) else {
            problems.push(format!(
                "does not serve matter {code}, which the catalogue routes to it"
            ));
            continue;
        };
        let schema: Result<Value, _> = serde_json::from_str(&matter.input_schema);
        let Ok(schema) = schema else {
            problems.push(format!("matter {code}: the input schema is not JSON"));
            continue;
        };
        if *schema_is_adapters
            && let Some(running) = running
            && let Some(old) = running
                .description()
                .matters
                .iter()
                .find(|m| &m.code == code)
            && serde_json::from_str::<Value>(&old.input_schema).ok() != Some(schema)
        {
            problems.push(format!(
                "matter {code}: the input schema differs from the running version's, which is the published form; change the form through the catalogue"
            ));
        }
        if let Err(e) = adapter.validate(code, "{}").await {
            problems.push(format!(
                "matter {code}: validate of an empty application failed: {e}"
            ));
        }
    }
    for lookup in &needs.lookups {
        if !described.lookups.iter().any(|l| &l.name == lookup) {
            problems.push(format!(
                "does not serve lookup {lookup}, which a service runs"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Refusal::new("self_check", problems.join("; ")))
    }
}

/// The record of an admitted version.
pub fn record(
    adapter: &LoadedAdapter,
    size: usize,
    signed_by: Option<String>,
    source: &str,
    operator: &str,
) -> VersionRecord {
    let d = adapter.description();
    VersionRecord {
        digest: adapter.digest.clone(),
        department: d.department.clone(),
        adapter_version: d.adapter_version.clone(),
        contract_version: d.contract_version.clone(),
        description: json!({
            "department": d.department,
            "contract_version": d.contract_version,
            "adapter_version": d.adapter_version,
            "matters": d.matters.iter().map(|m| json!({"code": m.code, "name": m.name})).collect::<Vec<_>>(),
            "lookups": d.lookups.iter().map(|l| json!({"name": l.name, "description": l.description})).collect::<Vec<_>>(),
        }),
        size: size as i64,
        signed_by,
        source: source.to_string(),
        loaded_by: operator.to_string(),
        loaded_at: gateway_base::time::now_ms(),
    }
}

#[cfg(test)]
mod tests {
    use super::compatible;

    #[test]
    fn contract_versions_follow_semver() {
        assert!(compatible("0.1.0", "0.1.0"));
        assert!(compatible("0.1.3", "0.1.0"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(compatible("1.4.0", "1.0.0"));
        assert!(!compatible("2.0.0", "1.0.0"));
        assert!(!compatible("garbage", "0.1.0"));
    }
}
