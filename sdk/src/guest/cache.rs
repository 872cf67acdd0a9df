//! A small cache with expiry, shared by all instances of this adapter (tokens, not citizens' data).

// Natively (unit tests) the import is a stub that cannot run: the test harness answers instead.
#[cfg(not(target_arch = "wasm32"))]
use super::testing::double::cache as imp;
#[cfg(target_arch = "wasm32")]
use super::wit::gov::adapter::cache as imp;

/// A cached value, if present and not expired.
pub fn get(key: &str) -> Option<Vec<u8>> {
    imp::get(key)
}

/// A cached string, if present, not expired and UTF-8.
pub fn get_string(key: &str) -> Option<String> {
    get(key).and_then(|v| String::from_utf8(v).ok())
}

/// Store a value for `ttl_ms` milliseconds.
pub fn set(key: &str, value: &[u8], ttl_ms: u32) {
    imp::set(key, value, ttl_ms)
}

/// Forget a value (e.g. a token the department no longer accepts).
pub fn delete(key: &str) {
    imp::delete(key)
}
