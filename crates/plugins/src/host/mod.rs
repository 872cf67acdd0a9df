//! The plugin host: compiles adapter components once, then runs every call in a fresh instance.
//!
//! Why a fresh instance per call: no state survives between calls inside an adapter, so one
//! citizen's data never meets another's, and a call that traps leaves nothing broken behind.
//! Pre-instantiation and the pooling allocator keep that cheap (tens of microseconds).
//!
//! Each call is bounded three ways: linear memory ([`Limits::memory_mib`]), CPU time of the
//! adapter's own code (epoch ticks counted only while wasm runs), and wall-clock time of the whole
//! call. Between ticks the guest yields to tokio, so a looping adapter cannot starve the gateway.

#[allow(missing_docs, unreachable_pub, reason = "generated from the WIT contract, whose own docs describe it")]
mod bindings;
mod call;
mod engine;
mod imports;

pub use call::{CallError, CallStats, LoadError, LoadedAdapter, StatsSnapshot};
pub use engine::{MAX_MEMORY_MIB, PluginEngine};
pub use imports::{AdapterCache, Department};

/// Types of the adapter contract, as the host sees them.
pub mod contract {
    pub use super::bindings::gov::adapter::department_http::{HttpError, Request, Response};
    pub use super::bindings::gov::adapter::types::{
        AdapterError, CallbackRequest, Description, FieldError, LookupInfo, MatterInfo, Receipt,
        Rejection, StatusReport, StepState, Submission,
    };
}

pub use gateway_base::config::Limits;
