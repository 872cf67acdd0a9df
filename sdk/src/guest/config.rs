//! The department's settings and secrets, from the gateway's config.

use super::wit::gov::adapter::config as imp;

/// A setting, if configured.
pub fn get(key: &str) -> Option<String> {
    imp::get(key)
}

/// A setting the adapter cannot work without; missing is an internal error naming the key.
pub fn require(key: &str) -> Result<String, crate::AdapterError> {
    get(key).ok_or_else(|| {
        crate::AdapterError::Internal(format!("department setting `{key}` is not configured"))
    })
}
