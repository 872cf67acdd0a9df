//! HTTP to the adapter's own department, through the host.
//!
//! Paths are relative to the department's base URL; the host adds the base, the TLS identity,
//! the timeout and the size limit, and refuses anything aimed elsewhere.

// Natively (unit tests) the import is a stub that cannot run: the test harness answers instead.
#[cfg(not(target_arch = "wasm32"))]
use super::testing::double::department_http as imp;
#[cfg(target_arch = "wasm32")]
use super::wit::gov::adapter::department_http as imp;
pub use super::wit::gov::adapter::department_http::HttpError;
use serde::{Serialize, de::DeserializeOwned};

/// A request to the department, built step by step.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    /// A request with any method.
    pub fn new(method: &str, path: impl Into<String>) -> Self {
        Request {
            method: method.to_string(),
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A GET request.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new("GET", path)
    }

    /// A POST request.
    pub fn post(path: impl Into<String>) -> Self {
        Self::new("POST", path)
    }

    /// Add a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Set a raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Set a JSON body and its content type.
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Self {
        let body = serde_json::to_vec(value).expect("serialising to JSON in memory cannot fail");
        self.header("Content-Type", "application/json").body(body)
    }

    /// The method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path and query.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The body so far (for signing).
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    /// Send it to the department.
    pub fn send(self) -> Result<Response, HttpError> {
        let response = imp::send(&imp::Request {
            method: self.method,
            path: self.path,
            headers: self.headers,
            body: self.body,
        })?;
        Ok(Response {
            status: response.status,
            headers: response.headers,
            body: response.body,
        })
    }
}

/// The department's answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Response headers, names lowercased by the host.
    pub headers: Vec<(String, String)>,
    /// Raw body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON of type `T`; a body that does not parse is a protocol error.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, crate::AdapterError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            crate::protocol_error(format!(
                "department answered HTTP {} with unreadable JSON: {e}",
                self.status
            ))
        })
    }

    /// The body as UTF-8 text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}
