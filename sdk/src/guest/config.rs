//! The department's settings and secrets, from the gateway's config.

// Natively (unit tests) the import is a stub that cannot run: the test harness answers instead.
#[cfg(not(target_arch = "wasm32"))]
use super::testing::double::config as imp;
#[cfg(target_arch = "wasm32")]
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
