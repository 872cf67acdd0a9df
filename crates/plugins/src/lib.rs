//! The plugin host: where adapters run and what they reach. wasmtime and the HTTP client to
//! the departments are dependencies of this crate alone.
//!
//! Every call into an adapter runs in a fresh component instance, bounded in memory, CPU time
//! and wall-clock time; the instance reaches only its own department, through a connection the
//! host owns (base URL fence, pinned CA, client identity, timeouts, response size limit), and
//! every exchange is recorded in the audit log. Departments' adapters are versions in the
//! store: pushed, checked, activated, staged for a share of calls, rolled back, without
//! dropping a call in flight.
//!
//! # Layout
//! - [`host`]: the wasmtime engine, one loaded adapter and its calls, the host's imports.
//! - [`blobs`]: where materials' bytes are read from ([`blobs::MaterialBlobs`]).
//! - [`connection`]: the host-owned HTTP(S) connection to one department, and its fences.
//! - [`tls`]: rustls configurations of department connections.
//! - `transport`: the pooled HTTP client under the connections (hyper-util over rustls).
//! - `cancelling`: work handed to another runtime ends when its waiter stops waiting.
//! - [`adapters`]: each department's versions, the active choice, hot swaps, staged rollouts,
//!   admission checks, the watched folder.

#![warn(missing_docs, unreachable_pub)]

pub mod adapters;
pub mod blobs;
mod cancelling;
pub mod connection;
pub mod host;
pub mod tls;
mod transport;
