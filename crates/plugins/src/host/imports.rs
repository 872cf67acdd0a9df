//! What the host gives an adapter: its department's HTTP, settings, a cache and logging, with
//! contract 0.2 the materials of the call in progress (`materials`), and with 0.3 signatures
//! and ciphers with keys the host holds (`crypto`, in [`super::crypto`]). Nothing else: the
//! WASI context grants no files, no sockets, no environment.
//!
//! Every contract's imports are served by the same host functions: a 0.1 component's request
//! body is one part of bytes, and it never sees a material; a 0.3 request is 0.2's, renamed.

use super::bindings::{v0_1, v0_2, v0_3};
use super::budget::{Limiter, MemoryBudget};
use super::crypto::Keys;
use super::executor::Executor;
use super::materials::CallMaterials;
use super::meter::CpuMeter;
use crate::blobs::MaterialBlobs;
use crate::connection::{BodyPart, Connection, DepartmentResponse, OutgoingBody, SendError};
use arc_swap::ArcSwap;
use gateway_base::config::Limits;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::StoreLimitsBuilder;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Longest log message an adapter may write in one line; the rest is cut (a message is text
/// for an operator, not a channel for data).
const LOG_MESSAGE_MAX: usize = 4096;

/// Everything about one department that outlives a call: its connection, settings and cache.
///
/// The connection and the settings are swappable (a config reload changes the base URL, the
/// timeouts, the TLS files or a secret): every loaded version of the department's adapter
/// reaches them through this one handle, so a reload needs no recompilation. A call takes both
/// when it starts and keeps them to its end; calls started after a reload see the new ones.
#[derive(Debug)]
pub struct Department {
    /// Department id.
    pub id: String,
    /// The host-owned connection.
    connection: ArcSwap<Connection>,
    /// Settings and secrets for `config.get`.
    settings: ArcSwap<BTreeMap<String, String>>,
    /// Keys for `crypto`, swapped by a reload like the settings (key rotation).
    keys: ArcSwap<Keys>,
    /// The adapter's cache, shared across its instances and versions.
    pub cache: AdapterCache,
    /// Instances alive at once, across every version of the department's adapter.
    pub(super) instances: Arc<tokio::sync::Semaphore>,
    /// The bound on `instances`.
    pub(super) max_instances: u32,
    /// Instances running wasm at the same moment (see [`super::meter`]).
    pub(super) running: Arc<tokio::sync::Semaphore>,
    /// The bound on `running`: how many threads `executor` has.
    max_running: u32,
    /// The department's own threads, where its busy instances run; started by its first
    /// busy call (see [`super::executor`]).
    pub(super) executor: std::sync::OnceLock<Executor>,
    /// Its last finished call was busy: the next one starts on `executor`.
    pub(super) last_call_busy: std::sync::atomic::AtomicBool,
}

impl Department {
    /// A department whose adapter may run `limits.max_instances` instances at once on this
    /// node, `limits.running()` of them executing at the same moment.
    pub fn new(
        id: impl Into<String>,
        connection: Arc<Connection>,
        settings: BTreeMap<String, String>,
        limits: &Limits,
    ) -> Self {
        Department {
            id: id.into(),
            connection: ArcSwap::new(connection),
            settings: ArcSwap::from_pointee(settings),
            keys: ArcSwap::from_pointee(Keys::new()),
            cache: AdapterCache::default(),
            instances: Arc::new(tokio::sync::Semaphore::new(limits.max_instances as usize)),
            max_instances: limits.max_instances,
            running: Arc::new(tokio::sync::Semaphore::new(limits.running() as usize)),
            max_running: limits.running(),
            executor: std::sync::OnceLock::new(),
            last_call_busy: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The department's threads (started now if they were not).
    pub(super) fn executor(&self) -> std::io::Result<&Executor> {
        if let Some(executor) = self.executor.get() {
            return Ok(executor);
        }
        let executor = Executor::new(&self.id, self.max_running)?;
        // Two first calls at once: one's threads are kept, the other's end.
        Ok(self.executor.get_or_init(|| executor))
    }

    /// The connection new calls use.
    pub fn connection(&self) -> Arc<Connection> {
        self.connection.load_full()
    }

    /// The settings new calls see.
    pub fn settings(&self) -> Arc<BTreeMap<String, String>> {
        self.settings.load_full()
    }

    /// Point new calls at another connection and settings (a reload); calls in flight finish
    /// with the ones they started with.
    pub fn reconfigure(&self, connection: Arc<Connection>, settings: BTreeMap<String, String>) {
        self.connection.store(connection);
        self.settings.store(Arc::new(settings));
    }

    /// The keys new calls' `crypto` uses (at start and after a reload; calls in flight keep
    /// the ones they started with, as with the settings).
    pub fn set_keys(&self, keys: BTreeMap<String, Arc<gateway_base::config::KeyMaterial>>) {
        self.keys.store(Arc::new(keys));
    }

    /// Instances of this department's adapter running now on this node.
    pub fn live_instances(&self) -> u32 {
        self.max_instances - self.instances.available_permits() as u32
    }
}

/// A small TTL cache per adapter (tokens). Bounded so an adapter cannot grow host memory.
#[derive(Debug, Clone, Default)]
pub struct AdapterCache {
    entries: Arc<Mutex<HashMap<String, CacheEntry>>>,
}

/// A cached value and when it expires.
type CacheEntry = (Vec<u8>, Instant);

const CACHE_MAX_ENTRIES: usize = 256;
const CACHE_MAX_VALUE: usize = 64 * 1024;

impl AdapterCache {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        let mut entries = self.entries.lock().expect("cache lock");
        match entries.get(key) {
            Some((value, expires)) if *expires > Instant::now() => Some(value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn set(&self, key: String, value: Vec<u8>, ttl: Duration) {
        if value.len() > CACHE_MAX_VALUE || key.len() > 256 {
            return;
        }
        let mut entries = self.entries.lock().expect("cache lock");
        let now = Instant::now();
        if entries.len() >= CACHE_MAX_ENTRIES {
            entries.retain(|_, (_, expires)| *expires > now);
        }
        if entries.len() < CACHE_MAX_ENTRIES || entries.contains_key(&key) {
            entries.insert(key, (value, now + ttl));
        }
    }

    fn delete(&self, key: &str) {
        self.entries.lock().expect("cache lock").remove(key);
    }
}

/// What the host saw of a call's department exchanges: the evidence an adapter's claim that
/// its department failed is judged by.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Exchanges {
    /// Requests that went out (not refused by the host).
    pub(crate) sent: u32,
    /// Of which got no answer within the department's timeout, or answered 408 or 504.
    pub(crate) timed_out: u32,
}

/// The state of one store: one call into one fresh adapter instance.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limits: Limiter,
    pub(super) department: Arc<Department>,
    /// The department's connection and settings as they were when the call started.
    connection: Arc<Connection>,
    settings: Arc<BTreeMap<String, String>>,
    /// The department's keys as they were when the call started.
    pub(super) keys: Arc<Keys>,
    /// The call's department exchanges so far.
    pub(super) exchanges: Exchanges,
    /// The call's execution time: the host's work in its imports is not counted.
    pub(super) meter: Arc<CpuMeter>,
    /// The materials the call carries: the only ones it may read or send.
    pub(super) materials: CallMaterials,
    /// Where their bytes are read.
    pub(super) blobs: Option<Arc<dyn MaterialBlobs>>,
    /// Why a material of the call could not be read, if one could not: the gateway's failure.
    pub(super) material_failure: Option<String>,
}

impl HostState {
    pub(super) fn new(
        department: Arc<Department>,
        memory_mib: u32,
        budget: Arc<MemoryBudget>,
        meter: Arc<CpuMeter>,
        materials: CallMaterials,
        blobs: Option<Arc<dyn MaterialBlobs>>,
    ) -> Self {
        let own = StoreLimitsBuilder::new()
            .memory_size((memory_mib as usize) << 20)
            .instances(16)
            .tables(16)
            .memories(16)
            .trap_on_grow_failure(true)
            .build();
        HostState {
            // Deliberately empty: no preopens, no env, no args, no sockets, no stdio.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limits: Limiter::new(own, budget),
            connection: department.connection(),
            settings: department.settings(),
            keys: department.keys.load_full(),
            department,
            exchanges: Exchanges::default(),
            meter,
            materials,
            blobs,
            material_failure: None,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl HostState {
    /// One exchange with the department, whichever contract asked for it: counted as the
    /// evidence the adapter's claims are judged by, and logged.
    async fn exchange(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Result<OutgoingBody, String>,
    ) -> Result<DepartmentResponse, SendError> {
        let dept = self.department.clone();
        let started = Instant::now();
        let outcome = match body {
            Ok(body) => self.connection.send_body(method, path, headers, body).await,
            Err(why) => Err(self.connection.refuse(method, path, why)),
        };
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        match &outcome {
            Err(SendError::Forbidden(_)) => {}
            // The gateway's own failure: no evidence about the department either way.
            Err(SendError::Material(why)) => {
                self.material_failure.get_or_insert(why.clone());
            }
            Err(SendError::Timeout) => {
                self.exchanges.sent += 1;
                self.exchanges.timed_out += 1;
            }
            Ok(r) if matches!(r.status, 408 | 504) => {
                self.exchanges.sent += 1;
                self.exchanges.timed_out += 1;
            }
            _ => self.exchanges.sent += 1,
        }
        // The path is masked only when the line is written (debug lines seldom are).
        let path = || gateway_base::redact::redact(path);
        match &outcome {
            Ok(r) => {
                tracing::debug!(department = %dept.id, %method, path = %path(), status = r.status, elapsed_ms, "department exchange")
            }
            Err(e) => {
                tracing::warn!(department = %dept.id, %method, path = %path(), error = %e, elapsed_ms, "department exchange failed")
            }
        }
        outcome
    }

    /// A 0.2 body's parts, each material slice checked against the call's materials: a code
    /// the call does not carry, or a slice outside its file, is refused before anything is
    /// sent. A body of bytes only is sent as one.
    fn body_of(
        &self,
        parts: Vec<v0_2::gov::adapter::department_http::BodyPart>,
    ) -> Result<OutgoingBody, String> {
        use v0_2::gov::adapter::department_http::{BodyPart as Part, Encoding};
        if parts.iter().all(|p| matches!(p, Part::Bytes(_))) {
            let mut bytes = Vec::new();
            for part in parts {
                if let Part::Bytes(b) = part {
                    if bytes.is_empty() {
                        bytes = b;
                    } else {
                        bytes.extend_from_slice(&b);
                    }
                }
            }
            return Ok(OutgoingBody::Bytes(bytes));
        }
        let mut out = Vec::with_capacity(parts.len());
        for part in parts {
            out.push(match part {
                Part::Bytes(b) => BodyPart::Bytes(b),
                Part::Material(slice) => {
                    let file = self.materials.file(&slice.code)?;
                    let code = slice.code;
                    if slice.offset > file.size {
                        return Err(format!(
                            "material `{code}`: offset {} is past its end ({} bytes)",
                            slice.offset, file.size
                        ));
                    }
                    let length = slice.length.unwrap_or(file.size - slice.offset);
                    if length > file.size - slice.offset {
                        return Err(format!(
                            "material `{code}`: {length} bytes from {} run past its end ({} bytes)",
                            slice.offset, file.size
                        ));
                    }
                    BodyPart::Material {
                        sm3: file.sm3.clone(),
                        code,
                        offset: slice.offset,
                        length,
                        base64: slice.encoding == Encoding::Base64,
                    }
                }
            });
        }
        let blobs = self
            .blobs
            .clone()
            .ok_or_else(|| "this gateway has no material store".to_string())?;
        Ok(OutgoingBody::Parts { parts: out, blobs })
    }
}

impl v0_2::gov::adapter::department_http::Host for HostState {
    async fn send(
        &mut self,
        req: v0_2::gov::adapter::department_http::Request,
    ) -> Result<
        v0_2::gov::adapter::department_http::Response,
        v0_2::gov::adapter::department_http::HttpError,
    > {
        use v0_2::gov::adapter::department_http::{HttpError, Response};
        let _host = self.meter.host_call();
        let body = self.body_of(req.body);
        self.exchange(&req.method, &req.path, &req.headers, body)
            .await
            .map(|r| Response {
                status: r.status,
                headers: r.headers,
                body: r.body,
            })
            .map_err(|e| match e {
                SendError::Forbidden(why) => HttpError::Forbidden(why),
                SendError::Unavailable(why) => HttpError::Unavailable(why),
                SendError::Material(why) => HttpError::Unavailable(format!("the gateway: {why}")),
                SendError::Timeout => HttpError::Timeout,
                SendError::TooLarge => HttpError::TooLarge,
            })
    }
}

/// 0.3's `department-http` is 0.2's under another package name: converted, then served alike.
impl v0_3::gov::adapter::department_http::Host for HostState {
    async fn send(
        &mut self,
        req: v0_3::gov::adapter::department_http::Request,
    ) -> Result<
        v0_3::gov::adapter::department_http::Response,
        v0_3::gov::adapter::department_http::HttpError,
    > {
        use v0_2::gov::adapter::department_http as old;
        use v0_3::gov::adapter::department_http as new;
        let body = req
            .body
            .into_iter()
            .map(|part| match part {
                new::BodyPart::Bytes(b) => old::BodyPart::Bytes(b),
                new::BodyPart::Material(m) => old::BodyPart::Material(old::MaterialSlice {
                    code: m.code,
                    offset: m.offset,
                    length: m.length,
                    encoding: match m.encoding {
                        new::Encoding::Raw => old::Encoding::Raw,
                        new::Encoding::Base64 => old::Encoding::Base64,
                    },
                }),
            })
            .collect();
        let req = old::Request {
            method: req.method,
            path: req.path,
            headers: req.headers,
            body,
        };
        old::Host::send(self, req)
            .await
            .map(|r| new::Response {
                status: r.status,
                headers: r.headers,
                body: r.body,
            })
            .map_err(|e| match e {
                old::HttpError::Forbidden(why) => new::HttpError::Forbidden(why),
                old::HttpError::Unavailable(why) => new::HttpError::Unavailable(why),
                old::HttpError::Timeout => new::HttpError::Timeout,
                old::HttpError::TooLarge => new::HttpError::TooLarge,
            })
    }
}

impl v0_3::gov::adapter::materials::Host for HostState {
    async fn read(
        &mut self,
        code: String,
        offset: u64,
        max: u32,
    ) -> Result<Vec<u8>, v0_3::gov::adapter::materials::ReadError> {
        use v0_2::gov::adapter::materials::{Host as Old02, ReadError as Old};
        use v0_3::gov::adapter::materials::ReadError as New;
        Old02::read(self, code, offset, max)
            .await
            .map_err(|e| match e {
                Old::Unknown(why) => New::Unknown(why),
                Old::Unavailable(why) => New::Unavailable(why),
            })
    }
}

impl v0_1::gov::adapter::department_http::Host for HostState {
    async fn send(
        &mut self,
        req: v0_1::gov::adapter::department_http::Request,
    ) -> Result<
        v0_1::gov::adapter::department_http::Response,
        v0_1::gov::adapter::department_http::HttpError,
    > {
        use v0_1::gov::adapter::department_http::{HttpError, Response};
        let _host = self.meter.host_call();
        self.exchange(
            &req.method,
            &req.path,
            &req.headers,
            Ok(OutgoingBody::Bytes(req.body)),
        )
        .await
        .map(|r| Response {
            status: r.status,
            headers: r.headers,
            body: r.body,
        })
        .map_err(|e| match e {
            SendError::Forbidden(why) => HttpError::Forbidden(why),
            SendError::Unavailable(why) | SendError::Material(why) => HttpError::Unavailable(why),
            SendError::Timeout => HttpError::Timeout,
            SendError::TooLarge => HttpError::TooLarge,
        })
    }
}

impl HostState {
    fn setting(&self, key: &str) -> Option<String> {
        self.settings.get(key).cloned()
    }

    fn log_line(&self, level: tracing::Level, mut message: String) {
        let _host = self.meter.host_call();
        if message.len() > LOG_MESSAGE_MAX {
            let mut cut = LOG_MESSAGE_MAX;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" …(cut)");
        }
        // Masked, secrets scrubbed; the log writer escapes its line breaks.
        let message = gateway_base::redact::redact(&message);
        let department = &self.department.id;
        match level {
            tracing::Level::TRACE => tracing::trace!(target: "adapter", %department, "{message}"),
            tracing::Level::DEBUG => tracing::debug!(target: "adapter", %department, "{message}"),
            tracing::Level::INFO => tracing::info!(target: "adapter", %department, "{message}"),
            tracing::Level::WARN => tracing::warn!(target: "adapter", %department, "{message}"),
            tracing::Level::ERROR => tracing::error!(target: "adapter", %department, "{message}"),
        }
    }
}

/// The imports both contracts share, in the same words: each version's host trait answered by
/// the same host functions.
macro_rules! shared_imports {
    ($v:ident) => {
        impl $v::gov::adapter::config::Host for HostState {
            async fn get(&mut self, key: String) -> Option<String> {
                self.setting(&key)
            }
        }

        impl $v::gov::adapter::cache::Host for HostState {
            async fn get(&mut self, key: String) -> Option<Vec<u8>> {
                self.department.cache.get(&key)
            }

            async fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: u32) {
                self.department
                    .cache
                    .set(key, value, Duration::from_millis(u64::from(ttl_ms)));
            }

            async fn delete(&mut self, key: String) {
                self.department.cache.delete(&key)
            }
        }

        impl $v::gov::adapter::log::Host for HostState {
            async fn log(&mut self, level: $v::gov::adapter::log::Level, message: String) {
                use $v::gov::adapter::log::Level;
                let level = match level {
                    Level::Trace => tracing::Level::TRACE,
                    Level::Debug => tracing::Level::DEBUG,
                    Level::Info => tracing::Level::INFO,
                    Level::Warn => tracing::Level::WARN,
                    Level::Error => tracing::Level::ERROR,
                };
                self.log_line(level, message)
            }
        }
    };
}

shared_imports!(v0_1);
shared_imports!(v0_2);
shared_imports!(v0_3);

// 0.3's `types` are 0.2's (see `bindings`).
impl v0_1::gov::adapter::types::Host for HostState {}
impl v0_2::gov::adapter::types::Host for HostState {}
