//! The plugin host: compiles adapter components once, then runs every call in a fresh instance.
//!
//! Why a fresh instance per call: no state survives between calls inside an adapter, so one
//! citizen's data never meets another's, and a call that traps leaves nothing broken behind.
//! Pre-instantiation and the pooling allocator keep that cheap (tens of microseconds).
//!
//! Each call is bounded: linear memory ([`Limits::memory_mib`]) and the node's memory budget
//! for all instances together (`budget`), CPU time of the adapter's own code (time inside the
//! call's polls, `meter`: waiting for the department is not counted), wall-clock time of the
//! whole call, the size of what it answers ([`Limits::max_result_bytes`]), and how many of its
//! department's instances live ([`Limits::max_instances`]) and run wasm ([`Limits::max_running`])
//! at once. Every tick the guest yields, so a looping adapter cannot starve the gateway, and one
//! department's instances take turns on their share of the cores.
//!
//! What comes out of an adapter is judged in one place (`call`, its answers in `answers`): its
//! text is masked before it
//! can reach a screen, a log, a trace or the audit log, secrets are scrubbed from its data, its
//! claim that its department timed out or was unavailable is held against the exchanges the
//! host saw, and [`CallError::fault`] says who is at fault.
//!
//! Three versions of the contract are served side by side (`bindings`: one module per
//! `wit/v*`): a component is pre-instantiated for the one it implements, detected from its
//! imports and exports. The host's types ([`contract`]) are 0.2's; a 0.1 component's answers
//! are converted up (`compat`), and it is never handed materials, a supplement or a withdrawal
//! ([`CallError::Unsupported`]). Contract 0.3 adds one import, `crypto` (`crypto`: signing,
//! MACs and SM4 with the department's keys, which never enter the adapter); its exports are
//! 0.2's. A 0.2 call's materials are read from the node's store
//! (`materials`, [`crate::blobs::MaterialBlobs`]) and streamed into department requests by the connection.

mod answers;
#[allow(
    missing_docs,
    unreachable_pub,
    reason = "generated from the WIT contract, whose own docs describe it"
)]
mod bindings;
mod budget;
mod call;
mod call_metrics;
mod compat;
mod crypto;
mod engine;
mod executor;
mod imports;
mod materials;
mod meter;

pub use call::{CallError, CallStats, LoadError, LoadedAdapter, StatsSnapshot};
pub use compat::{Contract, SERVED};
pub use engine::{MAX_MEMORY_MIB, PluginEngine};
pub use imports::{AdapterCache, Department};
pub use materials::READ_MAX;

/// Types of the adapter contract, as the host sees them: contract 0.2's, whichever version a
/// component implements (a 0.1 component's answers are converted up).
pub mod contract {
    pub use super::bindings::v0_2::gov::adapter::department_http::{
        BodyPart, Encoding, HttpError, MaterialSlice, Request, Response,
    };
    pub use super::bindings::v0_2::gov::adapter::materials::ReadError;
    pub use super::bindings::v0_2::gov::adapter::types::{
        AdapterError, CallbackRequest, Description, FieldError, FileInfo, LicenceRef, LookupInfo,
        Material, MaterialRequest, MaterialSource, MatterInfo, Receipt, Rejection, StatusReport,
        StepState, Submission, Supplement, SupplementRequest, Withdrawal,
    };
}

pub use gateway_base::config::Limits;
