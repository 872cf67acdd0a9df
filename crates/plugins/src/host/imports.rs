//! What the host gives an adapter: its department's HTTP, settings, a cache and logging.
//! Nothing else: the WASI context grants no files, no sockets, no environment.

use super::bindings::gov::adapter::{cache, config, department_http, log};
use crate::connection::{Connection, SendError};
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

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
}

impl Department {
    /// A department whose adapter may run `max_instances` instances at once on this node.
    pub fn new(
        id: impl Into<String>,
        connection: Arc<Connection>,
        settings: BTreeMap<String, String>,
        max_instances: u32,
    ) -> Self {
        Department {
            id: id.into(),
            connection: ArcSwap::new(connection),
            settings: ArcSwap::from_pointee(settings),
            cache: AdapterCache::default(),
            instances: Arc::new(tokio::sync::Semaphore::new(max_instances as usize)),
            max_instances,
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

/// The state of one store: one call into one fresh adapter instance.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limits: StoreLimits,
    pub(super) department: Arc<Department>,
    /// The department's connection and settings as they were when the call started.
    connection: Arc<Connection>,
    settings: Arc<BTreeMap<String, String>>,
    /// Epoch ticks the guest has spent running wasm in this call.
    pub(super) cpu_ticks: u64,
}

impl HostState {
    pub(super) fn new(department: Arc<Department>, memory_mib: u32) -> Self {
        HostState {
            // Deliberately empty: no preopens, no env, no args, no sockets, no stdio.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size((memory_mib as usize) << 20)
                .instances(16)
                .tables(16)
                .memories(16)
                .trap_on_grow_failure(true)
                .build(),
            connection: department.connection(),
            settings: department.settings(),
            department,
            cpu_ticks: 0,
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
        let dept = self.department.clone();
        let started = Instant::now();
        let outcome = self
            .connection
            .send(&req.method, &req.path, &req.headers, req.body)
            .await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
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
    async fn log(&mut self, level: log::Level, message: String) {
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
