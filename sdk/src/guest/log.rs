//! Logging into the gateway's traces. The host masks personal identifiers, but do not log them.

use super::wit::gov::adapter::log::{Level, log};

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
