//! The adapter author's kit: everything a department adapter needs, and nothing of the gateway.
//!
//! An adapter is a WebAssembly component (`wasm32-wasip2`) that implements [`Adapter`] and
//! exports it with [`export_adapter!`]. It translates the gateway's unified JSON into one
//! department system's protocol and back; the host owns the network, the secrets and the limits.
//!
//! ```ignore
//! use sdk::{Adapter, AdapterError, Description};
//!
//! struct Tax;
//! impl Adapter for Tax {
//!     fn describe() -> Description { /* department id, matters, lookups */ }
//!     fn lookup(name: String, query: String) -> Result<String, AdapterError> {
//!         let answer = sdk::http::Request::post("/api/v1/qscx").json(&query)?.send()?;
//!         /* translate the department's answer into the unified shape */
//!     }
//!     /* validate, submit, status, on_callback; supplement and withdraw have defaults */
//! }
//! sdk::export_adapter!(Tax);
//! ```
//!
//! An application's materials (申请材料) come with the submission; the adapter sends them to its
//! department as slices the host streams into the request ([`http::Body`], [`http::Multipart`]),
//! and reads them, when it must, a slice at a time ([`materials`]): a large file never sits
//! whole in the adapter's memory.
//!
//! # Layout
//! - [`ids`]: resident identity numbers, unified social credit codes, real-estate identifiers,
//!   checked with their national-standard algorithms.
//! - [`sign`]: HMAC-SHA256, HMAC-SM3, SM3, SHA-256, base64, nonces: what department signatures use;
//!   signature checks in constant time.
//! - [`xml`]: building and reading department XML, including GBK/GB18030 bodies and SOAP 1.1.
//! - [`payload`]: reading the unified JSON payload into typed structs, with field errors.
//! - [`encoding`]: GB18030 and GBK bodies, `application/x-www-form-urlencoded` forms in them.
//! - [`time`]: Beijing time in departments' formats (`yyyyMMddHHmmss`, `yyyy-MM-dd HH:mm:ss`).
//! - [`serial`]: fixed-width serial numbers (流水号) derived from the idempotency key.
//! - [`lifecycle`]: a supplement's corrected fields (补正) in a department's names and a
//!   return's asks back in the unified ones ([`lifecycle::FieldMap`]).
//! - `http`, `materials`, `config`, `cache`, `log`, `crypto` (feature `guest`): the host's imports,
//!   wrapped; `http` builds bodies of bytes and material slices (multipart forms, MTOM/XOP,
//!   base64 inside XML, chunks). Compiled natively they answer from the test harness instead,
//!   since only a component has the imports.
//! - `testing` (feature `guest`, native targets): the test harness, a scripted department, so an
//!   adapter's protocol handling is unit-tested with plain `cargo test`; `testing::fuzz` (feature
//!   `fuzz`): proptest strategies of department answers for adapters' property tests.
//!   `crypto` signs, MACs and encrypts with keys the gateway holds (contract 0.3).
//! - `wit` (hidden): the bindings generated from `wit/v0.3.0` (`gov:adapter@0.3.0`).
#![deny(missing_docs)]

pub mod encoding;
pub mod ids;
pub mod lifecycle;
pub mod payload;
pub mod serial;
pub mod sign;
pub mod time;
pub mod xml;

#[cfg(feature = "guest")]
mod guest;
#[cfg(feature = "guest")]
pub use guest::*;

/// The contract version this sdk implements (`gov:adapter@0.3.0`); adapters report it from
/// `describe`.
pub const CONTRACT_VERSION: &str = "0.3.0";
