//! Contract 0.1 components in a 0.2 host: what they answer, converted up to the host's types
//! (0.2's), and what they are asked, converted down. A 0.1 component never sees a material,
//! never reports `withdrawn` and never asks for a supplement (`requested` is none).

use super::bindings::v0_1::gov::adapter::types as old;
use super::contract as new;

/// The contract versions this host serves, oldest first.
pub const SERVED: [Contract; 3] = [Contract::V0_1, Contract::V0_2, Contract::V0_3];

/// The version of the contract a component implements, as its imports and exports say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Contract {
    /// `gov:adapter@0.1.0`: no materials, no supplement, no withdrawal.
    #[serde(rename = "0.1.0")]
    V0_1,
    /// `gov:adapter@0.2.0`.
    #[serde(rename = "0.2.0")]
    V0_2,
    /// `gov:adapter@0.3.0`: 0.2 and `crypto`, keys the host holds.
    #[serde(rename = "0.3.0")]
    V0_3,
}

impl Contract {
    /// `0.1.0`, `0.2.0`, `0.3.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            Contract::V0_1 => "0.1.0",
            Contract::V0_2 => "0.2.0",
            Contract::V0_3 => "0.3.0",
        }
    }

    /// The served version a WIT package version names (`0.2.0` in `gov:adapter/types@0.2.0`),
    /// by semver: a later patch (`0.2.1`) is the same contract, which wasmtime links to this
    /// host's `0.2.0`.
    pub fn parse(version: &str) -> Option<Contract> {
        let major_minor = |v: &str| -> Option<(u64, u64)> {
            let mut it = v.split('.');
            Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
        };
        let wanted = major_minor(version)?;
        SERVED
            .into_iter()
            .find(|c| major_minor(c.as_str()) == Some(wanted))
    }

    /// Whether it carries materials, supplements and withdrawals.
    pub fn has_materials(self) -> bool {
        self >= Contract::V0_2
    }

    /// Whether it imports `crypto` (keys the host holds).
    pub fn has_crypto(self) -> bool {
        self >= Contract::V0_3
    }
}

impl std::fmt::Display for Contract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(super) fn field_error(e: old::FieldError) -> new::FieldError {
    new::FieldError {
        field: e.field,
        code: e.code,
        message: e.message,
    }
}

pub(super) fn field_errors(errors: Vec<old::FieldError>) -> Vec<new::FieldError> {
    errors.into_iter().map(field_error).collect()
}

pub(super) fn adapter_error(e: old::AdapterError) -> new::AdapterError {
    match e {
        old::AdapterError::InvalidInput(fields) => {
            new::AdapterError::InvalidInput(field_errors(fields))
        }
        old::AdapterError::Rejected(r) => new::AdapterError::Rejected(new::Rejection {
            code: r.code,
            message: r.message,
        }),
        old::AdapterError::Unavailable(m) => new::AdapterError::Unavailable(m),
        old::AdapterError::Timeout(m) => new::AdapterError::Timeout(m),
        old::AdapterError::Protocol(m) => new::AdapterError::Protocol(m),
        old::AdapterError::Internal(m) => new::AdapterError::Internal(m),
    }
}

fn step_state(s: old::StepState) -> new::StepState {
    match s {
        old::StepState::Accepted => new::StepState::Accepted,
        old::StepState::Processing => new::StepState::Processing,
        old::StepState::Approved => new::StepState::Approved,
        old::StepState::Rejected => new::StepState::Rejected,
        old::StepState::Returned => new::StepState::Returned,
    }
}

pub(super) fn description(d: old::Description) -> new::Description {
    new::Description {
        department: d.department,
        contract_version: d.contract_version,
        adapter_version: d.adapter_version,
        matters: d
            .matters
            .into_iter()
            .map(|m| new::MatterInfo {
                code: m.code,
                name: m.name,
                input_schema: m.input_schema,
            })
            .collect(),
        lookups: d
            .lookups
            .into_iter()
            .map(|l| new::LookupInfo {
                name: l.name,
                description: l.description,
                input_schema: l.input_schema,
            })
            .collect(),
    }
}

pub(super) fn receipt(
    r: Result<old::Receipt, old::AdapterError>,
) -> Result<new::Receipt, new::AdapterError> {
    r.map(|r| new::Receipt {
        reference: r.reference,
        state: step_state(r.state),
        message: r.message,
        outputs: r.outputs,
        requested: None,
    })
    .map_err(adapter_error)
}

pub(super) fn status_report(
    r: Result<old::StatusReport, old::AdapterError>,
) -> Result<new::StatusReport, new::AdapterError> {
    r.map(|r| new::StatusReport {
        reference: r.reference,
        state: step_state(r.state),
        message: r.message,
        outputs: r.outputs,
        requested: None,
    })
    .map_err(adapter_error)
}

pub(super) fn text(r: Result<String, old::AdapterError>) -> Result<String, new::AdapterError> {
    r.map_err(adapter_error)
}

/// A submission as a 0.1 component takes it: without materials (the caller checked there are
/// none).
pub(super) fn submission(s: new::Submission) -> old::Submission {
    old::Submission {
        case_id: s.case_id,
        matter: s.matter,
        idempotency_key: s.idempotency_key,
        payload: s.payload,
        callback_url: s.callback_url,
    }
}

pub(super) fn callback_request(r: new::CallbackRequest) -> old::CallbackRequest {
    old::CallbackRequest {
        headers: r.headers,
        body: r.body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_by_semver() {
        assert_eq!(Contract::parse("0.1.0"), Some(Contract::V0_1));
        assert_eq!(Contract::parse("0.2.0"), Some(Contract::V0_2));
        assert_eq!(Contract::parse("0.2.3"), Some(Contract::V0_2));
        assert_eq!(Contract::parse("0.3.0"), Some(Contract::V0_3));
        assert_eq!(Contract::parse("0.4.0"), None);
        assert_eq!(Contract::parse("1.0.0"), None);
        assert_eq!(Contract::parse("x"), None);
        assert!(Contract::V0_2.has_materials() && !Contract::V0_1.has_materials());
    }
}
