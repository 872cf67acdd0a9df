//! The contract as adapter authors see it: generated bindings behind typed wrappers.

/// Bindings generated from `wit/adapter.wit`. Use the re-exports and wrappers instead.
#[doc(hidden)]
#[allow(
    clippy::too_many_arguments,
    reason = "generated code mirrors the WIT signatures"
)]
pub mod wit {
    wit_bindgen::generate!({
        path: "../wit",
        world: "adapter",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "sdk::wit",
    });
}

pub mod cache;
pub mod config;
pub mod http;
pub mod log;
// Natively only: a wasm32 component talks to the real host.
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use wit::Guest as Adapter;
pub use wit::gov::adapter::types::{
    AdapterError, CallbackRequest, Description, FieldError, LookupInfo, MatterInfo, Receipt,
    Rejection, StatusReport, StepState, Submission,
};

/// Export a type implementing [`Adapter`] as this component's adapter.
#[macro_export]
macro_rules! export_adapter {
    ($adapter:ident) => {
        $crate::wit::export!($adapter with_types_in $crate::wit);
    };
}

impl FieldError {
    /// A field error with a machine code and a human reason.
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

impl From<crate::payload::FieldProblem> for FieldError {
    fn from(p: crate::payload::FieldProblem) -> Self {
        FieldError::new(p.field, p.code, p.message)
    }
}

impl From<crate::payload::PayloadError> for AdapterError {
    fn from(e: crate::payload::PayloadError) -> Self {
        AdapterError::InvalidInput(e.problems.into_iter().map(Into::into).collect())
    }
}

impl From<http::HttpError> for AdapterError {
    fn from(e: http::HttpError) -> Self {
        match e {
            http::HttpError::Timeout => {
                AdapterError::Timeout("department did not answer in time".into())
            }
            http::HttpError::Unavailable(why) => AdapterError::Unavailable(why),
            http::HttpError::TooLarge => {
                AdapterError::Protocol("department answer exceeds the size limit".into())
            }
            http::HttpError::Forbidden(why) => {
                AdapterError::Internal(format!("request refused by the host: {why}"))
            }
        }
    }
}

impl From<crate::xml::XmlError> for AdapterError {
    fn from(e: crate::xml::XmlError) -> Self {
        AdapterError::Protocol(e.to_string())
    }
}

impl StatusReport {
    /// A report with no message and no outputs.
    pub fn new(reference: impl Into<String>, state: StepState) -> Self {
        StatusReport {
            reference: reference.into(),
            state,
            message: None,
            outputs: "{}".into(),
        }
    }
}

impl Receipt {
    /// A receipt for an application the department has taken but not decided.
    pub fn accepted(reference: impl Into<String>) -> Self {
        Receipt {
            reference: reference.into(),
            state: StepState::Accepted,
            message: None,
            outputs: "{}".into(),
        }
    }
}

/// Shorthand for a department answer the adapter cannot read.
pub fn protocol_error(what: impl std::fmt::Display) -> AdapterError {
    AdapterError::Protocol(what.to_string())
}
