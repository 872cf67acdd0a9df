//! Unit-test an adapter natively, against scripted department exchanges, without a gateway.
//!
//! Compiled for any target but `wasm32`, [`http`](crate::http), [`config`](crate::config),
//! [`cache`](crate::cache) and [`log`](crate::log) do not reach the host's imports (a native
//! build has none): they reach the [`Harness`] of the calling thread. A test builds a harness
//! with the department's settings and the exchanges it expects, in order (the request the adapter
//! must send, the answer the department gives), calls the adapter's functions directly
//! (`<Tax as sdk::Adapter>::lookup(..)`), and ends with [`Harness::finish`]. `finish` (or
//! dropping the harness) fails the test with every discrepancy at once: each expected exchange
//! that was not made, each request that was not the one expected next, each header or body that
//! was not what the exchange asked for.
//!
//! The harness behaves like the host where an adapter could notice:
//! - a request that is not scripted is answered `HttpError::Forbidden`, as the host answers a
//!   request it refuses (and recorded, so the test fails); so is a path the host would refuse
//!   (absolute URL, `//host`, dot segments, `\`, `@`, `#`);
//! - response header names are lowercased;
//! - the cache keeps values until their TTL runs out on the harness's clock, which only
//!   [`Harness::advance`] moves (no test sleeps), and silently ignores oversized entries;
//! - `config.get` answers the settings given with [`Harness::setting`], nothing else;
//! - `crypto` signs, verifies, MACs and encrypts with the keys given with [`Harness::key`]
//!   ([`TestKey`], made at test time), with the gateway's algorithms, and refuses any other
//!   name or a key of the wrong kind as the host does (`unknown-key`);
//! - the call's materials are those given with [`Harness::material`] (and
//!   [`Harness::licence`], [`Harness::promised`]): `materials.read` answers their bytes, at
//!   most 1 MiB at a time, and refuses any other code as the host does (`unknown`); a request
//!   body's material slices are streamed from them as the host streams them (raw or base64),
//!   and a slice of a code the call does not carry, or past a file's end, is refused
//!   `Forbidden`. [`Sent::body`] is what the department would receive; [`Sent::parts`] says
//!   what the adapter wrote itself and what it left to the host ([`Exchange::streams`]), and
//!   [`Harness::reads`] what it read.
//!
//! Each test thread has its own harness (cargo runs tests on threads of their own), so tests
//! stay independent; the adapter must be called on the thread that created the harness.
//!
//! With the feature `fuzz`, [`fuzz`] has the proptest strategies for an adapter's property tests:
//! what a department might answer, built from its own answers and words.
//!
//! ```
//! use sdk::testing::{Exchange, Harness};
//! use serde_json::json;
//!
//! /// What an adapter's `lookup` does: one signed call to its department.
//! fn enterprise_name(credit_code: &str) -> Result<String, sdk::AdapterError> {
//!     let key = sdk::config::require("app-key")?;
//!     let answer = sdk::http::Request::get(format!("/api/enterprises/{credit_code}"))
//!         .header("X-App-Key", key)
//!         .send()?;
//!     let record: serde_json::Value = answer.json()?;
//!     Ok(record["name"].as_str().unwrap_or_default().to_string())
//! }
//!
//! let harness = Harness::new().setting("app-key", "k").expect(
//!     Exchange::get("/api/enterprises/91350100M000100Y43")
//!         .header("X-App-Key", "k")
//!         .respond_json(200, &json!({"name": "福州演示餐饮有限公司"})),
//! );
//! assert_eq!(enterprise_name("91350100M000100Y43").unwrap(), "福州演示餐饮有限公司");
//! harness.finish();
//! ```

mod form;
#[cfg(feature = "fuzz")]
pub mod fuzz;
pub(crate) mod keys;

pub use keys::TestKey;

use crate::http::{HttpError, Part};
use crate::wit::gov::adapter::department_http::Response;
use crate::xml::Node;
use crate::{FileInfo, LicenceRef, Material, MaterialSource};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

/// The host's cache bounds: an adapter that stores more sees its entries dropped there too.
const CACHE_MAX_ENTRIES: usize = 256;
const CACHE_MAX_VALUE: usize = 64 * 1024;
const CACHE_MAX_KEY: usize = 256;

/// One request an adapter sent, as the harness saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The method, e.g. `POST`.
    pub method: String,
    /// Path and query, relative to the department.
    pub path: String,
    /// Headers in the order the adapter added them, names as written.
    pub headers: Vec<(String, String)>,
    /// The body as the department receives it: the adapter's bytes and the material slices
    /// the host streamed into it.
    pub body: Vec<u8>,
    /// The body as the adapter wrote it: its bytes, and the slices it left to the host.
    pub parts: Vec<Part>,
}

impl Sent {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as an XML tree, decoded in the encoding it declares (GBK included).
    pub fn xml(&self) -> Result<Node, crate::xml::XmlError> {
        Node::parse(&crate::xml::decode(&self.body)?)
    }
}

impl fmt::Display for Sent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// A check on a request, run when the request arrives; `Err` is the discrepancy to report.
type Check = Box<dyn FnOnce(&Sent) -> Result<(), String>>;

/// One scripted exchange: the request the adapter must send next, and the department's answer.
///
/// The method and path (with the query) must match exactly; each check added with the builder
/// methods must hold. Without [`respond`](Exchange::respond) or [`fail`](Exchange::fail), the
/// answer is `200` with an empty body.
#[must_use = "an exchange does nothing until given to Harness::expect"]
pub struct Exchange {
    method: String,
    path: String,
    checks: Vec<Check>,
    answer: Result<Response, HttpError>,
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Exchange({} {})", self.method, self.path)
    }
}

impl Exchange {
    /// An exchange for a request with any method.
    pub fn new(method: &str, path: impl Into<String>) -> Self {
        Exchange {
            method: method.to_string(),
            path: path.into(),
            checks: Vec::new(),
            answer: Ok(Response {
                status: 200,
                headers: Vec::new(),
                body: Vec::new(),
            }),
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

    /// Any check on the whole request; return `Err(why)` for a discrepancy.
    pub fn check(mut self, check: impl FnOnce(&Sent) -> Result<(), String> + 'static) -> Self {
        self.checks.push(Box::new(check));
        self
    }

    /// The request carries this header with exactly this value (name case-insensitive).
    pub fn header(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let (name, value) = (name.into(), value.into());
        self.check(move |sent| match sent.header(&name) {
            Some(v) if v == value => Ok(()),
            Some(v) => Err(format!("header {name} is {v:?}, expected {value:?}")),
            None => Err(format!("header {name} is missing, expected {value:?}")),
        })
    }

    /// The request carries this header, with a non-empty value.
    pub fn header_present(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.check(move |sent| match sent.header(&name) {
            Some(v) if !v.is_empty() => Ok(()),
            Some(_) => Err(format!("header {name} is empty")),
            None => Err(format!("header {name} is missing")),
        })
    }

    /// The request does not carry this header.
    pub fn header_absent(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.check(move |sent| match sent.header(&name) {
            Some(v) => Err(format!("header {name} is present ({v:?}), expected none")),
            None => Ok(()),
        })
    }

    /// The body is exactly these bytes.
    pub fn body(self, expected: impl Into<Vec<u8>>) -> Self {
        let expected = expected.into();
        self.check(move |sent| {
            if sent.body == expected {
                Ok(())
            } else {
                Err(format!(
                    "body is {:?}, expected {:?}",
                    sent.text(),
                    String::from_utf8_lossy(&expected)
                ))
            }
        })
    }

    /// The body carries material `code` as a slice the host streams (not bytes the adapter
    /// read and copied in).
    pub fn streams(self, code: impl Into<String>) -> Self {
        let code = code.into();
        self.check(move |sent| {
            if sent
                .parts
                .iter()
                .any(|p| matches!(p, Part::Material(s) if s.code == code))
            {
                Ok(())
            } else {
                Err(format!(
                    "the body does not stream material {code}: the adapter wrote {} part(s) itself",
                    sent.parts.len()
                ))
            }
        })
    }

    /// The body the department receives has this SM3 (hex, lowercase).
    pub fn body_sm3(self, expected: impl Into<String>) -> Self {
        let expected = expected.into();
        self.check(move |sent| {
            let actual = crate::sign::sm3_hex(&sent.body);
            if actual == expected {
                Ok(())
            } else {
                Err(format!(
                    "body ({} bytes) has SM3 {actual}, expected {expected}",
                    sent.body.len()
                ))
            }
        })
    }

    /// The body is JSON, handed to `inspect` (which asserts: its panic fails the test at once).
    pub fn body_json(self, inspect: impl FnOnce(&Value) + 'static) -> Self {
        self.check(move |sent| match sent.json() {
            Some(value) => {
                inspect(&value);
                Ok(())
            }
            None => Err(format!("body is not JSON: {:?}", sent.text())),
        })
    }

    /// The body is XML in the encoding it declares (GBK for many departments), handed to
    /// `inspect` as a tree (which asserts: its panic fails the test at once).
    pub fn body_xml(self, inspect: impl FnOnce(&Node) + 'static) -> Self {
        self.check(move |sent| match sent.xml() {
            Ok(node) => {
                inspect(&node);
                Ok(())
            }
            Err(e) => Err(format!("body is not readable XML ({e}): {:?}", sent.text())),
        })
    }

    /// The department answers with this status and body.
    pub fn respond(mut self, status: u16, body: impl Into<Vec<u8>>) -> Self {
        let headers = self.answer.map(|r| r.headers).unwrap_or_default();
        self.answer = Ok(Response {
            status,
            headers,
            body: body.into(),
        });
        self
    }

    /// The department answers with this status and JSON body (`content-type: application/json`).
    pub fn respond_json(self, status: u16, body: &Value) -> Self {
        self.respond(status, body.to_string())
            .response_header("Content-Type", "application/json")
    }

    /// A header on the department's answer (the name is lowercased, as the host does).
    pub fn response_header(mut self, name: &str, value: impl Into<String>) -> Self {
        if let Ok(response) = &mut self.answer {
            response
                .headers
                .push((name.to_ascii_lowercase(), value.into()));
        }
        self
    }

    /// The host answers the adapter with this error instead of a response
    /// (`HttpError::Timeout`, `HttpError::Unavailable(..)` ...).
    pub fn fail(mut self, error: HttpError) -> Self {
        self.answer = Err(error);
        self
    }
}

/// What the harness holds for its thread.
struct State {
    settings: BTreeMap<String, String>,
    /// Exchanges not yet made, each with its place in the script (1-based) for reports.
    script: VecDeque<(usize, Exchange)>,
    scripted: usize,
    sent: Vec<Sent>,
    problems: Vec<String>,
    /// Values and the instant (on `now`) they expire.
    cache: HashMap<String, (Vec<u8>, Duration)>,
    now: Duration,
    logs: Vec<String>,
    /// The call's materials, by code, with the bytes of the files.
    materials: BTreeMap<String, (Material, Option<Vec<u8>>)>,
    /// Every `materials.read`, as asked.
    reads: Vec<Read>,
    /// Reads answer `unavailable` with this reason (the host's store failing).
    failing_reads: Option<String>,
    /// The department's keys, by name, for `crypto`.
    keys: BTreeMap<String, TestKey>,
}

/// One `materials.read` the adapter made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// The material code.
    pub code: String,
    /// From where.
    pub offset: u64,
    /// At most how many bytes it asked for.
    pub max: u32,
    /// How many it got.
    pub got: usize,
}

/// A file material as the host hands it to an adapter: its size and SM3 computed from `bytes`.
pub fn material_file(code: &str, name: &str, media_type: &str, bytes: &[u8]) -> Material {
    Material {
        code: code.to_string(),
        name: name.to_string(),
        source: MaterialSource::File(FileInfo {
            media_type: media_type.to_string(),
            size: bytes.len() as u64,
            sm3: crate::sign::sm3_hex(bytes),
        }),
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<RefCell<State>>>> = const { RefCell::new(None) };
}

fn current() -> Rc<RefCell<State>> {
    CURRENT.with(|c| c.borrow().clone()).unwrap_or_else(|| {
        panic!(
            "an adapter called the host outside a test harness: natively, sdk::http, sdk::config, \
             sdk::cache and sdk::log answer from a sdk::testing::Harness created on this thread"
        )
    })
}

/// The scripted department, settings, cache and log of one test (see the [module](self)).
#[must_use = "the harness answers the adapter only while it lives: bind it (`let harness = ...`)"]
pub struct Harness {
    state: Rc<RefCell<State>>,
    finished: bool,
}

impl fmt::Debug for Harness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.borrow();
        f.debug_struct("Harness")
            .field("settings", &state.settings.keys().collect::<Vec<_>>())
            .field("pending", &state.script.len())
            .field("sent", &state.sent.len())
            .finish()
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// A harness for this thread: no settings, no exchanges, an empty cache.
    ///
    /// Panics if this thread already has one (one test, one harness).
    pub fn new() -> Self {
        let state = Rc::new(RefCell::new(State {
            settings: BTreeMap::new(),
            script: VecDeque::new(),
            scripted: 0,
            sent: Vec::new(),
            problems: Vec::new(),
            cache: HashMap::new(),
            now: Duration::ZERO,
            logs: Vec::new(),
            materials: BTreeMap::new(),
            reads: Vec::new(),
            failing_reads: None,
            keys: BTreeMap::new(),
        }));
        CURRENT.with(|c| {
            let mut c = c.borrow_mut();
            assert!(
                c.is_none(),
                "this thread already has a sdk::testing::Harness: finish or drop it first"
            );
            *c = Some(state.clone());
        });
        Harness {
            state,
            finished: false,
        }
    }

    /// A department key, as `[departments.<id>.keys.<name>]` gives it to `crypto` (see
    /// [`TestKey`]).
    pub fn key(self, name: impl Into<String>, key: TestKey) -> Self {
        self.state.borrow_mut().keys.insert(name.into(), key);
        self
    }

    /// A department setting, as `[departments.<id>.settings]` gives it to `config.get`.
    pub fn setting(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.state
            .borrow_mut()
            .settings
            .insert(key.into(), value.into());
        self
    }

    /// A file the applicant uploaded, among the call's materials.
    pub fn material(
        self,
        code: &str,
        name: &str,
        media_type: &str,
        bytes: impl Into<Vec<u8>>,
    ) -> Self {
        let bytes = bytes.into();
        let material = material_file(code, name, media_type, &bytes);
        self.state
            .borrow_mut()
            .materials
            .insert(code.to_string(), (material, Some(bytes)));
        self
    }

    /// A licence the gateway holds in place of a file (免提交), among the call's materials.
    pub fn licence(self, code: &str, name: &str, licence: LicenceRef) -> Self {
        let material = Material {
            code: code.to_string(),
            name: name.to_string(),
            source: MaterialSource::Licence(licence),
        };
        self.state
            .borrow_mut()
            .materials
            .insert(code.to_string(), (material, None));
        self
    }

    /// A material promised for later (容缺受理), among the call's materials.
    pub fn promised(self, code: &str, name: &str, due: Option<&str>) -> Self {
        let material = Material {
            code: code.to_string(),
            name: name.to_string(),
            source: MaterialSource::Promised(due.map(str::to_string)),
        };
        self.state
            .borrow_mut()
            .materials
            .insert(code.to_string(), (material, None));
        self
    }

    /// Every `materials.read` (and every material slice of a body) fails `unavailable`, as when
    /// the host's store fails.
    pub fn failing_reads(self, why: &str) -> Self {
        self.state.borrow_mut().failing_reads = Some(why.to_string());
        self
    }

    /// The call's materials, as the host hands them (for the `Submission` or `Supplement`).
    pub fn materials(&self) -> Vec<Material> {
        self.state
            .borrow()
            .materials
            .values()
            .map(|(m, _)| m.clone())
            .collect()
    }

    /// Every `materials.read` the adapter made, in order.
    pub fn reads(&self) -> Vec<Read> {
        self.state.borrow().reads.clone()
    }

    /// The next exchange the adapter must make (exchanges are made in the order given).
    pub fn expect(self, exchange: Exchange) -> Self {
        {
            let mut state = self.state.borrow_mut();
            state.scripted += 1;
            let n = state.scripted;
            state.script.push_back((n, exchange));
        }
        self
    }

    /// A value already in the cache (left by an earlier call), for `ttl_ms` from now.
    pub fn cached(self, key: &str, value: impl AsRef<[u8]>, ttl_ms: u32) -> Self {
        double::cache::set(key, value.as_ref(), ttl_ms);
        self
    }

    /// Move the cache's clock forward: entries whose TTL runs out by then expire.
    pub fn advance(&self, by: Duration) {
        self.state.borrow_mut().now += by;
    }

    /// What the cache holds under `key` now (unexpired), as the adapter would read it.
    pub fn cache_value(&self, key: &str) -> Option<Vec<u8>> {
        double::cache::get(key)
    }

    /// Every request the adapter sent so far, scripted or not, in order.
    pub fn sent(&self) -> Vec<Sent> {
        self.state.borrow().sent.clone()
    }

    /// Every line the adapter logged so far, as `level: message`.
    pub fn logs(&self) -> Vec<String> {
        self.state.borrow().logs.clone()
    }

    /// The discrepancies so far, without ending the test.
    pub fn problems(&self) -> Vec<String> {
        let state = self.state.borrow();
        let mut problems = state.problems.clone();
        problems.extend(
            state
                .script
                .iter()
                .map(|(n, e)| format!("exchange {n} ({} {}) was not made", e.method, e.path)),
        );
        problems
    }

    /// End the test: panics listing every discrepancy, if there is any.
    pub fn finish(mut self) {
        self.finished = true;
        self.release();
        let problems = self.problems();
        if !problems.is_empty() {
            panic!("{}", report(&problems));
        }
    }

    fn release(&self) {
        CURRENT.with(|c| {
            let mut c = c.borrow_mut();
            if c.as_ref().is_some_and(|s| Rc::ptr_eq(s, &self.state)) {
                *c = None;
            }
        });
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        self.release();
        let problems = self.problems();
        if problems.is_empty() {
            return;
        }
        if std::thread::panicking() {
            // A second panic would abort the test binary: tell, and let the first one fail it.
            eprintln!("{}", report(&problems));
        } else {
            panic!("{}", report(&problems));
        }
    }
}

fn report(problems: &[String]) -> String {
    let mut out = format!(
        "the adapter's department exchanges differ from the script ({} problem(s)):",
        problems.len()
    );
    for p in problems {
        out.push_str("\n  - ");
        out.push_str(p);
    }
    out
}

/// Why the host would refuse a path, as `gateway`'s connection does; `None` when it is fine.
fn refused_path(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') || path.starts_with("//") {
        return Some("must be a path starting with a single `/`, relative to the department");
    }
    if path
        .chars()
        .any(|c| c.is_control() || c == '\\' || c == '@' || c == '#')
    {
        return Some("contains a character not allowed in a department path");
    }
    let only_path = path.split('?').next().unwrap_or_default();
    if only_path
        .split('/')
        .any(|seg| seg == ".." || seg == "." || seg.eq_ignore_ascii_case("%2e%2e"))
    {
        return Some("dot segments are not allowed");
    }
    None
}

/// The host's imports, answered by the thread's harness. Same signatures as the generated
/// imports, so each wrapper switches between them with one `use`.
pub(crate) mod double {
    use super::{
        CACHE_MAX_ENTRIES, CACHE_MAX_KEY, CACHE_MAX_VALUE, Read, Sent, State, current, refused_path,
    };
    use crate::http::{Part, Slice};
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    /// The bytes of a call's file material, or why the host would refuse it.
    fn file_bytes(state: &State, code: &str) -> Result<Vec<u8>, String> {
        match state.materials.get(code) {
            Some((_, Some(bytes))) => Ok(bytes.clone()),
            Some((_, None)) => Err(format!(
                "material `{code}` of this call is not a file (a licence, or not provided yet)"
            )),
            None => Err(format!("no material `{code}` in this call")),
        }
    }

    pub mod department_http {
        use super::*;
        pub use crate::wit::gov::adapter::department_http::{
            BodyPart, Encoding, HttpError, MaterialSlice, Request, Response,
        };

        /// The body as the host streams it, or why the host refuses it.
        fn streamed(state: &State, parts: &[Part]) -> Result<Vec<u8>, HttpError> {
            use base64::Engine as _;
            let mut body = Vec::new();
            for part in parts {
                match part {
                    Part::Bytes(b) => body.extend_from_slice(b),
                    Part::Material(slice) => {
                        let bytes = file_bytes(state, &slice.code).map_err(HttpError::Forbidden)?;
                        let size = bytes.len() as u64;
                        let length = slice.length.unwrap_or(size.saturating_sub(slice.offset));
                        if slice.offset > size || length > size - slice.offset {
                            return Err(HttpError::Forbidden(format!(
                                "material `{}`: {length} bytes from {} run past its end ({size} bytes)",
                                slice.code, slice.offset
                            )));
                        }
                        if let Some(why) = &state.failing_reads {
                            return Err(HttpError::Unavailable(format!("the gateway: {why}")));
                        }
                        let bytes = &bytes[slice.offset as usize..(slice.offset + length) as usize];
                        match slice.encoding {
                            Encoding::Raw => body.extend_from_slice(bytes),
                            Encoding::Base64 => body.extend_from_slice(
                                base64::engine::general_purpose::STANDARD
                                    .encode(bytes)
                                    .as_bytes(),
                            ),
                        }
                    }
                }
            }
            Ok(body)
        }

        pub fn send(request: &Request) -> Result<Response, HttpError> {
            let state = current();
            let parts: Vec<Part> = request
                .body
                .iter()
                .map(|p| match p {
                    BodyPart::Bytes(b) => Part::Bytes(b.clone()),
                    BodyPart::Material(m) => Part::Material(Slice {
                        code: m.code.clone(),
                        offset: m.offset,
                        length: m.length,
                        encoding: m.encoding,
                    }),
                })
                .collect();
            let body = streamed(&state.borrow(), &parts);
            let sent = Sent {
                method: request.method.clone(),
                path: request.path.clone(),
                headers: request.headers.clone(),
                body: body.as_ref().cloned().unwrap_or_default(),
                parts,
            };
            let refuse = |state: &Rc<RefCell<State>>, why: String| {
                state.borrow_mut().problems.push(why.clone());
                Err(HttpError::Forbidden(why))
            };
            state.borrow_mut().sent.push(sent.clone());
            match body {
                Err(HttpError::Forbidden(why)) => {
                    return refuse(&state, format!("{sent}: the host refuses this body: {why}"));
                }
                Err(other) => return Err(other),
                Ok(_) => {}
            }
            if let Some(why) = refused_path(&sent.path) {
                return refuse(&state, format!("{sent}: the host refuses this path: {why}"));
            }
            // Take the exchange out before running its checks: they may read the harness.
            let next = {
                let mut s = state.borrow_mut();
                match s.script.front() {
                    Some((_, e)) if e.method == sent.method && e.path == sent.path => {
                        s.script.pop_front()
                    }
                    _ => None,
                }
            };
            let Some((n, exchange)) = next else {
                let expected = state
                    .borrow()
                    .script
                    .front()
                    .map(|(n, e)| format!("exchange {n} ({} {})", e.method, e.path))
                    .unwrap_or_else(|| "no further request".into());
                return refuse(
                    &state,
                    format!("unexpected request {sent}: the script expects {expected} next"),
                );
            };
            for check in exchange.checks {
                if let Err(why) = check(&sent) {
                    state
                        .borrow_mut()
                        .problems
                        .push(format!("exchange {n} ({sent}): {why}"));
                }
            }
            exchange.answer
        }
    }

    pub mod materials {
        use super::*;
        pub use crate::wit::gov::adapter::materials::ReadError;

        pub fn read(code: &str, offset: u64, max: u32) -> Result<Vec<u8>, ReadError> {
            let state = current();
            let mut state = state.borrow_mut();
            let bytes = file_bytes(&state, code).map_err(ReadError::Unknown)?;
            if let Some(why) = &state.failing_reads {
                return Err(ReadError::Unavailable(why.clone()));
            }
            let max = max.min(crate::materials::READ_MAX);
            let from = (offset.min(bytes.len() as u64)) as usize;
            let to = (from + max as usize).min(bytes.len());
            state.reads.push(Read {
                code: code.to_string(),
                offset,
                max,
                got: to - from,
            });
            Ok(bytes[from..to].to_vec())
        }
    }

    pub mod config {
        use super::*;

        pub fn get(key: &str) -> Option<String> {
            current().borrow().settings.get(key).cloned()
        }
    }

    pub mod cache {
        use super::*;

        pub fn get(key: &str) -> Option<Vec<u8>> {
            let state = current();
            let mut state = state.borrow_mut();
            let now = state.now;
            match state.cache.get(key) {
                Some((value, expires)) if *expires > now => Some(value.clone()),
                Some(_) => {
                    state.cache.remove(key);
                    None
                }
                None => None,
            }
        }

        pub fn set(key: &str, value: &[u8], ttl_ms: u32) {
            if value.len() > CACHE_MAX_VALUE || key.len() > CACHE_MAX_KEY {
                return;
            }
            let state = current();
            let mut state = state.borrow_mut();
            let now = state.now;
            if state.cache.len() >= CACHE_MAX_ENTRIES {
                state.cache.retain(|_, (_, expires)| *expires > now);
            }
            if state.cache.len() < CACHE_MAX_ENTRIES || state.cache.contains_key(key) {
                let expires = now + Duration::from_millis(u64::from(ttl_ms));
                state
                    .cache
                    .insert(key.to_string(), (value.to_vec(), expires));
            }
        }

        pub fn delete(key: &str) {
            current().borrow_mut().cache.remove(key);
        }
    }

    pub mod log {
        use super::*;
        use crate::wit::gov::adapter::log::Level;

        pub fn log(level: Level, message: &str) {
            let level = match level {
                Level::Trace => "trace",
                Level::Debug => "debug",
                Level::Info => "info",
                Level::Warn => "warn",
                Level::Error => "error",
            };
            // Shown with a failing test's output, next to the exchanges.
            eprintln!("[adapter {level}] {message}");
            current()
                .borrow_mut()
                .logs
                .push(format!("{level}: {message}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Request;

    /// The message `finish` panics with, if it does.
    fn finish_report(harness: Harness) -> Option<String> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| harness.finish()))
            .err()
            .map(|p| p.downcast_ref::<String>().cloned().unwrap_or_default())
    }

    #[test]
    fn a_script_followed_finishes_quietly() {
        let harness = Harness::new().expect(
            Exchange::post("/x?y=1")
                .header("X-A", "1")
                .header_present("X-B")
                .header_absent("X-C")
                .body(r#"{"k":1}"#)
                .body_json(|v| assert_eq!(v["k"], 1))
                .respond(201, "ok")
                .response_header("X-Reply", "r"),
        );
        let response = Request::post("/x?y=1")
            .header("x-a", "1")
            .header("X-B", "b")
            .body(r#"{"k":1}"#)
            .send()
            .unwrap();
        assert_eq!(response.status, 201);
        assert_eq!(response.text(), "ok");
        assert_eq!(response.headers, vec![("x-reply".into(), "r".into())]);
        assert_eq!(harness.sent()[0].to_string(), "POST /x?y=1");
        assert_eq!(finish_report(harness), None);
    }

    #[test]
    fn every_discrepancy_is_reported_at_once() {
        let harness = Harness::new()
            .expect(Exchange::get("/a").header("X-A", "1").respond(200, "a"))
            .expect(Exchange::get("/b"));
        // Wrong header: still answered, reported.
        assert_eq!(Request::get("/a").send().unwrap().text(), "a");
        // Not the one expected next: refused as the host refuses.
        assert!(matches!(
            Request::post("/c").send(),
            Err(HttpError::Forbidden(_))
        ));
        let report = finish_report(harness).unwrap();
        assert!(report.contains("3 problem(s)"), "{report}");
        assert!(
            report.contains("exchange 1 (GET /a): header X-A is missing"),
            "{report}"
        );
        assert!(
            report.contains("unexpected request POST /c: the script expects exchange 2 (GET /b)"),
            "{report}"
        );
        assert!(
            report.contains("exchange 2 (GET /b) was not made"),
            "{report}"
        );
    }

    #[test]
    fn errors_and_paths_the_host_refuses() {
        let harness = Harness::new().expect(Exchange::get("/slow").fail(HttpError::Timeout));
        assert!(matches!(
            Request::get("/slow").send(),
            Err(HttpError::Timeout)
        ));
        for path in ["http://elsewhere/x", "//elsewhere/x", "/a/../b", "/a@b"] {
            assert!(matches!(
                Request::get(path).send(),
                Err(HttpError::Forbidden(_))
            ));
        }
        let report = finish_report(harness).unwrap();
        assert!(report.contains("4 problem(s)"), "{report}");
        assert!(report.contains("the host refuses this path"), "{report}");
    }

    #[test]
    fn the_cache_expires_on_the_harness_clock() {
        let harness = Harness::new().cached("seeded", "s", 10);
        crate::cache::set("token", b"t", 1000);
        crate::cache::set("big", &vec![0; CACHE_MAX_VALUE + 1], 1000);
        assert_eq!(crate::cache::get_string("token").as_deref(), Some("t"));
        assert_eq!(crate::cache::get("big"), None);
        harness.advance(Duration::from_millis(10));
        assert_eq!(harness.cache_value("seeded"), None);
        harness.advance(Duration::from_millis(989));
        assert_eq!(harness.cache_value("token"), Some(b"t".to_vec()));
        harness.advance(Duration::from_millis(1));
        assert_eq!(crate::cache::get("token"), None);
        crate::cache::set("token", b"u", 0);
        assert_eq!(crate::cache::get("token"), None);
        harness.finish();
    }

    #[test]
    fn settings_and_logs() {
        let harness = Harness::new().setting("app-key", "k");
        assert_eq!(crate::config::get("app-key").as_deref(), Some("k"));
        assert!(matches!(
            crate::config::require("app-secret"),
            Err(crate::AdapterError::Internal(m)) if m.contains("app-secret")
        ));
        crate::log::warn("slow answer");
        assert_eq!(harness.logs(), vec!["warn: slow answer".to_string()]);
        harness.finish();
    }

    #[test]
    fn one_harness_per_thread_and_none_after_it() {
        let harness = Harness::new();
        assert!(std::panic::catch_unwind(Harness::new).is_err());
        harness.finish();
        assert!(std::panic::catch_unwind(|| crate::config::get("k")).is_err());
        // The thread is free again.
        Harness::new().finish();
    }

    #[test]
    fn dropping_an_unfinished_harness_reports_too() {
        let dropped = std::panic::catch_unwind(|| {
            let _harness = Harness::new().expect(Exchange::get("/never"));
        });
        let report = dropped.unwrap_err();
        let report = report.downcast_ref::<String>().unwrap();
        assert!(report.contains("GET /never) was not made"), "{report}");
    }
}
