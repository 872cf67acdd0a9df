//! The foundation every other gateway crate stands on; it depends on none of them.
//!
//! What is here is shared and has no I/O of its own beyond reading the config's files: the
//! config with the checks of every section, time and the working-day calendar, the model
//! types several crates speak (field problems, clerks, step states), masking of personal data,
//! the W3C trace context, the names of the metrics, and signing keys.
//!
//! # Layout
//! - [`config`]: the TOML config, one module per section, checked whole (file, key, reason):
//!   parsing and validation only, no runtime object is built to check it.
//! - [`toml_file`]: a TOML file read into typed settings, errors at `file:line:column: key`.
//! - [`time`]: the clock in Unix milliseconds, Beijing time, RFC 3339.
//! - [`calendar`]: working days (the holiday calendar with 调休 days).
//! - [`model`]: [`model::FieldProblem`], [`model::Clerk`], [`model::StepState`].
//! - [`redact`]: masking of identity numbers, phone numbers and names in anything written.
//! - [`trace`]: W3C `traceparent` contexts, held per task, joined to exported spans.
//! - [`telemetry`]: the Prometheus recorder and the gateway's metrics.
//! - [`digest`]: SM3 and SHA-256 digests.
//! - [`signature`]: Ed25519 / SM2 keys, signed components, key files.
//! - [`pem`]: certificates and keys read from PEM files.
//! - [`certificates`]: expiry dates of every configured certificate.

#![warn(missing_docs, unreachable_pub)]

pub mod calendar;
pub mod certificates;
pub mod config;
pub mod digest;
pub mod model;
pub mod pem;
pub mod redact;
pub mod signature;
pub mod telemetry;
pub mod time;
pub mod toml_file;
pub mod trace;
