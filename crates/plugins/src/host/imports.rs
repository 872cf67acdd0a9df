//! What the host gives an adapter: its department's HTTP, settings, a cache and logging.
//! Nothing else: the WASI context grants no files, no sockets, no environment.

use super::bindings::gov::adapter::{cache, config, department_http, log};
use super::budget::{Limiter, MemoryBudget};
use super::meter::CpuMeter;
use crate::connection::{Connection, SendError};
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
    /// The adapter's cache, shared across its instances and versions.
    pub cache: AdapterCache,
    /// Instances alive at once, across every version of the department's adapter.
    pub(super) instances: Arc<tokio::sync::Semaphore>,
    /// The bound on `instances`.
    pub(super) max_instances: u32,
    /// Instances running wasm at the same moment (see [`super::meter`]).
    pub(super) running: Arc<tokio::sync::Semaphore>,
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
            cache: AdapterCache::default(),
            instances: Arc::new(tokio::sync::Semaphore::new(limits.max_instances as usize)),
            max_instances: limits.max_instances,
            running: Arc::new(tokio::sync::Semaphore::new(limits.running() as usize)),
        }
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
    /// The call's department exchanges so far.
    pub(super) exchanges: Exchanges,
    /// The call's execution time: the host's work in its imports is not counted.
    pub(super) meter: Arc<CpuMeter>,
}

impl HostState {
    pub(super) fn new(
        department: Arc<Department>,
        memory_mib: u32,
        budget: Arc<MemoryBudget>,
        meter: Arc<CpuMeter>,
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
            department,
            exchanges: Exchanges::default(),
            meter,
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

impl department_http::Host for HostState {
    async fn send(
        &mut self,
        req: department_http::Request,
    ) -> Result<department_http::Response, department_http::HttpError> {
        let _host = self.meter.host_call();
        let dept = self.department.clone();
        let started = Instant::now();
        let outcome = self
            .connection
            .send(&req.method, &req.path, &req.headers, req.body)
            .await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        match &outcome {
            Err(SendError::Forbidden(_)) => {}
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
        match &outcome {
            Ok(r) => {
                tracing::debug!(department = %dept.id, method = %req.method, path = %gateway_base::redact::redact(&req.path), status = r.status, elapsed_ms, "department exchange")
            }
            Err(e) => {
                tracing::warn!(department = %dept.id, method = %req.method, path = %gateway_base::redact::redact(&req.path), error = %e, elapsed_ms, "department exchange failed")
            }
        }
        outcome
            .map(|r| department_http::Response {
                status: r.status,
                headers: r.headers,
                body: r.body,
            })
            .map_err(|e| match e {
                SendError::Forbidden(why) => department_http::HttpError::Forbidden(why),
                SendError::Unavailable(why) => department_http::HttpError::Unavailable(why),
                SendError::Timeout => department_http::HttpError::Timeout,
                SendError::TooLarge => department_http::HttpError::TooLarge,
            })
    }
}

impl config::Host for HostState {
    async fn get(&mut self, key: String) -> Option<String> {
        self.settings.get(&key).cloned()
    }
}

impl cache::Host for HostState {
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

impl log::Host for HostState {
    async fn log(&mut self, level: log::Level, mut message: String) {
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
            log::Level::Trace => tracing::trace!(target: "adapter", %department, "{message}"),
            log::Level::Debug => tracing::debug!(target: "adapter", %department, "{message}"),
            log::Level::Info => tracing::info!(target: "adapter", %department, "{message}"),
            log::Level::Warn => tracing::warn!(target: "adapter", %department, "{message}"),
            log::Level::Error => tracing::error!(target: "adapter", %department, "{message}"),
        }
    }
}

impl super::bindings::gov::adapter::types::Host for HostState {}
