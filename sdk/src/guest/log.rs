//! Logging into the gateway's traces. The host masks personal identifiers, but do not log them.

// Natively (unit tests) the import is a stub that cannot run: the test harness answers instead.
#[cfg(not(target_arch = "wasm32"))]
use super::testing::double::log::log;
use super::wit::gov::adapter::log::Level;
#[cfg(target_arch = "wasm32")]
use super::wit::gov::adapter::log::log;

/// Debug-level line.
pub fn debug(message: &str) {
    log(Level::Debug, message)
}

/// Info-level line.
pub fn info(message: &str) {
    log(Level::Info, message)
}

/// Warning.
pub fn warn(message: &str) {
    log(Level::Warn, message)
}

/// Error.
pub fn error(message: &str) {
    log(Level::Error, message)
}
