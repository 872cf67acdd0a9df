//! The contract as adapter authors see it: generated bindings behind typed wrappers.

/// Bindings generated from `wit/v0.3.0` (`gov:adapter@0.3.0`). Use the re-exports and
/// wrappers instead.
#[doc(hidden)]
#[allow(
    clippy::too_many_arguments,
    reason = "generated code mirrors the WIT signatures"
)]
pub mod wit {
    wit_bindgen::generate!({
        path: "../wit/v0.3.0",
        world: "adapter",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "sdk::wit",
    });
}

pub mod cache;
pub mod config;
pub mod crypto;
pub mod http;
pub mod log;
pub mod materials;
// Natively only: a wasm32 component talks to the real host.
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use wit::gov::adapter::types::{
    AdapterError, CallbackRequest, Description, FieldError, FileInfo, LicenceRef, LookupInfo,
    Material, MaterialRequest, MaterialSource, MatterInfo, Receipt, Rejection, StatusReport,
    StepState, Submission, Supplement, SupplementRequest, Withdrawal,
};

/// One department adapter: what the gateway calls. Implement it on a unit struct and export it
/// with [`export_adapter!`](crate::export_adapter).
///
/// `supplement` and `withdraw` (contract 0.2) have defaults that answer a clear
/// [`AdapterError::Internal`]: a department whose system takes neither needs nothing more.
pub trait Adapter {
    /// What this adapter is and serves. Must be cheap and call nothing.
    fn describe() -> Description;
    /// Every problem the department would have with this matter's input (the host checked
    /// the schema already).
    fn validate(matter: String, payload: String) -> Vec<FieldError>;
    /// Hand one matter of a case to the department, with its materials
    /// ([`Submission::materials`]: read them with [`materials`](crate::materials), send them
    /// with [`http::Body`](crate::http::Body)).
    fn submit(submission: Submission) -> Result<Receipt, AdapterError>;
    /// Read where a submitted matter stands.
    fn status(matter: String, reference: String) -> Result<StatusReport, AdapterError>;
    /// Run a shared-data lookup; the query and the answer are JSON text.
    fn lookup(name: String, query: String) -> Result<String, AdapterError>;
    /// Read a department's call to the gateway; an unauthenticated call is `InvalidInput`.
    fn on_callback(request: CallbackRequest) -> Result<StatusReport, AdapterError>;
    /// Hand the applicant's supplement of a returned matter to the department (补正).
    ///
    /// By default: not supported by this adapter ([`unsupported`]).
    fn supplement(supplement: Supplement) -> Result<Receipt, AdapterError> {
        let _ = supplement;
        Err(unsupported("supplement"))
    }
    /// Tell the department the applicant withdraws a matter (撤回); the receipt's state is the
    /// matter's state after it.
    ///
    /// By default: not supported by this adapter ([`unsupported`]).
    fn withdraw(withdrawal: Withdrawal) -> Result<Receipt, AdapterError> {
        let _ = withdrawal;
        Err(unsupported("withdraw"))
    }
}

/// The error of a call this adapter does not implement (`supplement`, `withdraw`): an
/// [`AdapterError::Internal`] that names it, so the gateway's log says what is missing.
pub fn unsupported(call: &str) -> AdapterError {
    AdapterError::Internal(format!(
        "this adapter does not implement `{call}` (its department's protocol has none, or it \
         is not written yet)"
    ))
}

/// The component's exports, answered by an [`Adapter`]: what [`export_adapter!`] exports.
#[doc(hidden)]
pub struct Export<A>(core::marker::PhantomData<A>);

impl<A: Adapter> wit::Guest for Export<A> {
    fn describe() -> Description {
        A::describe()
    }
    fn validate(matter: String, payload: String) -> Vec<FieldError> {
        A::validate(matter, payload)
    }
    fn submit(submission: Submission) -> Result<Receipt, AdapterError> {
        A::submit(submission)
    }
    fn status(matter: String, reference: String) -> Result<StatusReport, AdapterError> {
        A::status(matter, reference)
    }
    fn lookup(name: String, query: String) -> Result<String, AdapterError> {
        A::lookup(name, query)
    }
    fn on_callback(request: CallbackRequest) -> Result<StatusReport, AdapterError> {
        A::on_callback(request)
    }
    fn supplement(supplement: Supplement) -> Result<Receipt, AdapterError> {
        A::supplement(supplement)
    }
    fn withdraw(withdrawal: Withdrawal) -> Result<Receipt, AdapterError> {
        A::withdraw(withdrawal)
    }
}

/// Export a type implementing [`Adapter`] as this component's adapter.
#[macro_export]
macro_rules! export_adapter {
    ($adapter:ident) => {
        #[doc(hidden)]
        type __GatewaySdkExport = $crate::Export<$adapter>;
        $crate::wit::export!(__GatewaySdkExport with_types_in $crate::wit);
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

impl From<materials::ReadError> for AdapterError {
    fn from(e: materials::ReadError) -> Self {
        match e {
            // The host's store failed: the host knows, and judges the call its own failure.
            materials::ReadError::Unavailable(why) => AdapterError::Unavailable(why),
            materials::ReadError::Unknown(why) => {
                AdapterError::Internal(format!("material refused by the host: {why}"))
            }
        }
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
    /// A report with no message, no outputs and nothing requested.
    pub fn new(reference: impl Into<String>, state: StepState) -> Self {
        StatusReport {
            reference: reference.into(),
            state,
            message: None,
            outputs: "{}".into(),
            requested: None,
        }
    }
}

impl Receipt {
    /// A receipt for an application the department has taken but not decided.
    pub fn accepted(reference: impl Into<String>) -> Self {
        Receipt::new(reference, StepState::Accepted)
    }

    /// A receipt in `state`, with no message, no outputs and nothing requested.
    pub fn new(reference: impl Into<String>, state: StepState) -> Self {
        Receipt {
            reference: reference.into(),
            state,
            message: None,
            outputs: "{}".into(),
            requested: None,
        }
    }
}

impl From<StatusReport> for Receipt {
    /// A status read as the receipt of a call (a withdrawal answered with the decision).
    fn from(r: StatusReport) -> Self {
        Receipt {
            reference: r.reference,
            state: r.state,
            message: r.message,
            outputs: r.outputs,
            requested: r.requested,
        }
    }
}

impl MaterialRequest {
    /// A material asked for (by its code in the matter's list) and why.
    pub fn new(code: impl Into<String>, reason: impl Into<String>) -> Self {
        MaterialRequest {
            code: code.into(),
            reason: reason.into(),
        }
    }
}

impl Material {
    /// The uploaded file, when the material is one (not a licence, not promised).
    pub fn file(&self) -> Option<&FileInfo> {
        match &self.source {
            MaterialSource::File(file) => Some(file),
            _ => None,
        }
    }

    /// The whole file as a body part (raw), or `None` when the material is not a file.
    pub fn slice(&self) -> Option<http::Slice> {
        let file = self.file()?;
        Some(http::Slice::new(&self.code, 0, file.size))
    }
}

/// Shorthand for a department answer the adapter cannot read.
pub fn protocol_error(what: impl std::fmt::Display) -> AdapterError {
    AdapterError::Protocol(what.to_string())
}
