//! The audit log: every exchange with a department (and every licence a department reads), in
//! an append-only, hash-chained log, sealed with a signature from time to time, and a `verify`
//! that finds any tampering.
//!
//! A department connection describes each exchange (digests and sizes of the
//! request and the answer, outcome, timing) and adds what the task it runs in knows through
//! [`Context`]: the adapter version (set around every adapter call in `host/call.rs`), the
//! clerk (set from the portal request's `X-Clerk-*` headers, or for a delivery
//! the clerk who received the case) and the case and step (set by the orchestrator around
//! deliveries and polls). Identity numbers in paths are masked.
//!
//! The call path never waits on the database: a record goes into a bounded channel
//! ([`Sink::record`] never blocks) and one writer task per node ([`writer`]) numbers it,
//! chains it (`hash = H(node, seq, prev_hash, record)`, H being SM3 or SHA-256) and writes
//! batches into `audit_log`. Each node keeps a chain of its own, so nodes sharing one
//! PostgreSQL store never race for "the previous hash". Every `seal_every_records` records or
//! `seal_interval_ms` the writer signs the chain's head into `audit_seals`. When the channel is
//! full (the store is down or far behind), the record is dropped, counted in
//! `gateway_audit_dropped_total`, logged as an error, and the number dropped is itself written
//! into the chain as soon as the writer can, so the log attests its own gaps.
//!
//! Besides exchanges the gateway makes, the log holds reads departments make of it: each
//! licence a department reads through the licence-sharing endpoint is a [`LicenceRead`], and
//! that read is answered only once its record is written ([`Sink::record_written`]): a
//! department never reads a licence the log does not show.
//!
//! # Layout
//! - [`chain`]: the hash functions, what is hashed and signed, the tables.
//! - [`writer`]: the per-node writer task: sequence, chain, batches, seals.
//! - [`verify`]: recompute every chain and check every seal; `gateway audit verify`.

pub mod chain;
pub mod verify;
pub mod writer;

use crate::{Store, StoreError};
use gateway_base::model::Clerk;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

pub use gateway_base::config::audit::{AuditConfig, SealKey};
pub use gateway_base::digest::HashAlgorithm;

/// The adapter version a department call was made for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdapterRef {
    /// The version the adapter describes itself with.
    pub version: String,
    /// Hex SHA-256 of its component.
    pub digest: String,
    /// The contract call (`submit`, `lookup` …).
    pub call: String,
}

/// What the task making a department call knows about why it is made.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The adapter call the exchange belongs to.
    pub adapter: Option<AdapterRef>,
    /// The clerk whose request led to it.
    pub clerk: Option<Clerk>,
    /// The case it serves.
    pub case_id: Option<String>,
    /// The step of that case.
    pub step: Option<String>,
}

tokio::task_local! {
    static CONTEXT: Context;
}

/// Run `f` with the current context changed by `change` (what outer scopes set is kept). The
/// current context is read when this is called.
// Not an `async fn`, which would hold `f` twice (see `gateway_base::redact::scope`).
pub fn scope<F: Future>(
    change: impl FnOnce(&mut Context),
    f: F,
) -> impl Future<Output = F::Output> {
    let mut context = current();
    change(&mut context);
    CONTEXT.scope(context, f)
}

/// The current context, to carry to work done for it on another thread (see [`scope`]).
pub fn current() -> Context {
    CONTEXT.try_with(Clone::clone).unwrap_or_default()
}

/// Run `f` on behalf of a case's step (deliveries, polls).
pub async fn for_step<F: Future>(case_id: &str, step: &str, f: F) -> F::Output {
    scope(
        |c| {
            c.case_id = Some(case_id.to_string());
            c.step = Some(step.to_string());
        },
        f,
    )
    .await
}

/// Run a delivery of a case's step: as [`for_step`], with the clerk who received the case
/// (a delivery runs long after the clerk's request; the case's `received` event names them).
pub async fn for_delivery<F: Future>(store: &Store, case_id: &str, step: &str, f: F) -> F::Output {
    let clerk = store.received_by(case_id).await.ok().flatten();
    scope(|c| c.clerk = clerk, for_step(case_id, step, f)).await
}

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// An exchange with a department.
    Exchange(Box<Exchange>),
    /// A department read a licence through the licence-sharing endpoint.
    LicenceRead(LicenceRead),
    /// Records this node could not write (its queue was full), counted since the last entry.
    Dropped {
        /// Unix milliseconds when the count was taken.
        at: i64,
        /// How many.
        count: u64,
    },
}

impl Entry {
    /// Unix milliseconds of the entry.
    pub fn at(&self) -> i64 {
        match self {
            Entry::Exchange(e) => e.at,
            Entry::LicenceRead(r) => r.at,
            Entry::Dropped { at, .. } => *at,
        }
    }

    /// The department, for an exchange or a licence read.
    pub fn department(&self) -> Option<&str> {
        match self {
            Entry::Exchange(e) => Some(&e.department),
            Entry::LicenceRead(r) => Some(&r.department),
            Entry::Dropped { .. } => None,
        }
    }
}

/// One request to a department and what came of it. Bodies are not kept, only their digests
/// (in the chain's hash algorithm) and sizes: the log proves what was exchanged without
/// becoming a second copy of citizens' data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    /// Unix milliseconds when the request started.
    pub at: i64,
    /// Department id.
    pub department: String,
    /// HTTP method.
    pub method: String,
    /// The path the adapter asked for, identity and mobile numbers masked.
    pub path: String,
    /// Digest of the request body.
    pub request_digest: String,
    /// Its size in bytes.
    pub request_bytes: u64,
    /// Digest of the answer's body, when there was an answer.
    pub response_digest: Option<String>,
    /// Its size in bytes.
    pub response_bytes: Option<u64>,
    /// The answer's HTTP status.
    pub status: Option<u16>,
    /// Why there was no answer: `forbidden`, `unavailable`, `timeout`, `too_large`.
    pub error: Option<String>,
    /// Milliseconds from the request to the whole answer (or the failure).
    pub duration_ms: u64,
    /// The adapter call it was made in.
    pub adapter: Option<AdapterRef>,
    /// The clerk whose request caused it.
    pub clerk: Option<Clerk>,
    /// The case it served.
    pub case_id: Option<String>,
    /// The step of that case.
    pub step: Option<String>,
    /// The W3C trace id sent with it.
    pub trace_id: String,
}

/// A department's read of one licence (`GET /licence-sharing/v1/licences/{id}`): who read
/// which licence and what they were answered. The holder is not named: the licence id leads to
/// the licence for whoever may read it, and the log stays free of identity numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenceRead {
    /// Unix milliseconds of the read.
    pub at: i64,
    /// The department whose key was presented.
    pub department: String,
    /// The GB/T 36904 identifier asked for, as asked.
    pub licence_id: String,
    /// `found`, `not_found` (no such licence) or `invalid` (the identifier's check fails).
    pub outcome: String,
    /// The W3C trace id of the request.
    pub trace_id: String,
}

/// What the writer task receives.
#[derive(Debug)]
pub(crate) enum Message {
    Entry(Entry),
    /// An entry someone waits for: answered once it is written (not sealed).
    Witnessed(Entry, tokio::sync::oneshot::Sender<()>),
    /// Write everything received so far, seal, and answer.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Where records go: the writer task's queue. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sink {
    tx: tokio::sync::mpsc::Sender<Message>,
    hash: HashAlgorithm,
    dropped: Arc<AtomicU64>,
}

impl Sink {
    /// Queue an entry without waiting; a full queue drops it (counted, logged, and reported
    /// into the chain by the writer).
    pub fn record(&self, entry: Entry) {
        if self.tx.try_send(Message::Entry(entry)).is_err() {
            metrics::counter!("gateway_audit_dropped_total").increment(1);
            // Logged once per gap (the count restarts when the writer notes it in the chain),
            // not once per record: an overloaded gateway should not also flood its log.
            if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::error!(
                    "audit records are being dropped: the audit writer is behind or stopped"
                );
            }
        }
    }

    /// Queue an entry and wait until it is written: for what must not happen unrecorded (a
    /// department reading a licence). Waits for room in the queue rather than dropping, and
    /// for as long as the writer retries a failing store, so the caller bounds the wait.
    pub async fn record_written(&self, entry: Entry) -> Result<(), AuditStopped> {
        let (done, written) = tokio::sync::oneshot::channel();
        self.tx
            .send(Message::Witnessed(entry, done))
            .await
            .map_err(|_| AuditStopped)?;
        written.await.map_err(|_| AuditStopped)
    }

    /// The recorder for one department's connection.
    pub fn recorder(&self, department: &str) -> Recorder {
        Recorder {
            sink: self.clone(),
            department: department.to_string(),
        }
    }
}

/// The audit writer has stopped (the node is shutting down): nothing more is recorded.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the audit log writer has stopped")]
pub struct AuditStopped;

/// A department connection's way into the log.
#[derive(Debug, Clone)]
pub struct Recorder {
    sink: Sink,
    department: String,
}

/// An exchange under way: what was known when the request left.
pub struct Pending {
    recorder: Recorder,
    exchange: Exchange,
    started: Instant,
}

impl Recorder {
    /// Note a request about to be sent (its body is digested here, before it is handed over).
    pub fn begin(&self, method: &str, path: &str, body: &[u8], trace_id: String) -> Pending {
        let context = CONTEXT.try_with(Clone::clone).unwrap_or_default();
        Pending {
            exchange: Exchange {
                at: gateway_base::time::now_ms(),
                department: self.department.clone(),
                method: method.to_string(),
                path: gateway_base::redact::redact(path),
                request_digest: self.sink.hash.hex(body),
                request_bytes: body.len() as u64,
                response_digest: None,
                response_bytes: None,
                status: None,
                error: None,
                duration_ms: 0,
                adapter: context.adapter,
                clerk: context.clerk,
                case_id: context.case_id,
                step: context.step,
                trace_id,
            },
            recorder: self.clone(),
            started: Instant::now(),
        }
    }
}

impl Recorder {
    /// The hash function bodies are digested with: for a body digested as it is streamed
    /// ([`Pending::request_streamed`]).
    pub fn hash(&self) -> HashAlgorithm {
        self.sink.hash
    }
}

impl Pending {
    /// The request body's digest (hex, in [`Recorder::hash`]) and size, for a body that was
    /// digested as it streamed out rather than handed to [`Recorder::begin`] whole (materials
    /// the plugin host streams from the store into a department request).
    pub fn request_streamed(&mut self, digest: String, bytes: u64) {
        self.exchange.request_digest = digest;
        self.exchange.request_bytes = bytes;
    }

    /// Record how it ended.
    pub fn finish(self, outcome: Outcome<'_>) {
        let Pending {
            recorder,
            mut exchange,
            started,
        } = self;
        exchange.duration_ms = started.elapsed().as_millis() as u64;
        match outcome {
            Outcome::Answered { status, body } => {
                exchange.status = Some(status);
                exchange.response_digest = Some(recorder.sink.hash.hex(body));
                exchange.response_bytes = Some(body.len() as u64);
            }
            Outcome::Failed(why) => exchange.error = Some(why.to_string()),
        }
        recorder.sink.record(Entry::Exchange(Box::new(exchange)));
    }
}

/// How an exchange ended, as the log keeps it.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// The department answered.
    Answered {
        /// Its HTTP status.
        status: u16,
        /// Its body (digested, never kept).
        body: &'a [u8],
    },
    /// No answer: `forbidden`, `unavailable`, `timeout`, `too_large`.
    Failed(&'static str),
}

impl Store {
    /// Audit records by department, node and time, oldest first.
    pub async fn audit_records(
        &self,
        department: Option<&str>,
        node: Option<&str>,
        since: i64,
        limit: i64,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        chain::read(self.pool(), department, node, since, limit).await
    }
}

/// The running audit log of this node.
pub struct AuditLog {
    sink: Sink,
    task: tokio::task::JoinHandle<()>,
}

impl AuditLog {
    /// Create the tables and start this node's writer, on the store's records connection.
    pub async fn start(
        store: &Store,
        node: String,
        config: &AuditConfig,
    ) -> Result<AuditLog, StoreError> {
        let pool = store.log_pool().clone();
        let (tx, rx) = tokio::sync::mpsc::channel(config.queue);
        let dropped = Arc::new(AtomicU64::new(0));
        let writer = writer::Writer::open(
            pool,
            store.records_connection(),
            node,
            config,
            dropped.clone(),
        )
        .await?;
        let task = tokio::spawn(writer.run(rx));
        Ok(AuditLog {
            sink: Sink {
                tx,
                hash: config.hash,
                dropped,
            },
            task,
        })
    }

    /// Where this node's records go.
    pub fn sink(&self) -> &Sink {
        &self.sink
    }

    /// Write what is queued, seal the head, and stop the writer (within `grace`).
    pub async fn close(self, grace: std::time::Duration) {
        let (done, flushed) = tokio::sync::oneshot::channel();
        if self.sink.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = tokio::time::timeout(grace, flushed).await;
        }
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(n: u64) -> Entry {
        Entry::Exchange(Box::new(Exchange {
            at: n as i64,
            department: "tax".into(),
            method: "POST".into(),
            path: "/x".into(),
            request_digest: String::new(),
            request_bytes: n,
            response_digest: None,
            response_bytes: None,
            status: Some(200),
            error: None,
            duration_ms: 1,
            adapter: None,
            clerk: None,
            case_id: None,
            step: None,
            trace_id: String::new(),
        }))
    }

    #[tokio::test]
    async fn a_full_queue_drops_without_waiting_and_the_chain_says_how_many() {
        let path = std::env::temp_dir().join(format!("audit-{}.db", uuid::Uuid::new_v4()));
        let store = Store::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let key = gateway_base::signature::SigningKeyFile::generate(
            "t",
            gateway_base::signature::Algorithm::Ed25519,
        );
        let config = AuditConfig {
            queue: 1,
            key: Some(SealKey(key.clone())),
            ..AuditConfig::default()
        };
        let log = AuditLog::start(&store, "n1".into(), &config).await.unwrap();
        // On this single-threaded runtime the writer cannot run in between: one record fits,
        // the others are dropped at once rather than waited for.
        for n in 0..100 {
            log.sink().record(exchange(n));
        }
        log.close(std::time::Duration::from_secs(5)).await;
        let verifier = gateway_base::signature::Verifier::new(&key.trusted_key()).unwrap();
        let report = verify::verify(store.pool(), &[verifier]).await.unwrap();
        assert!(report.ok(), "{report}");
        let chain = &report.chains[0];
        assert_eq!((chain.records, chain.dropped), (2, 99), "{report}");
        assert_eq!(chain.sealed_seq, 2, "closing seals the head");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    #[tokio::test]
    async fn a_witnessed_record_is_stored_when_its_wait_ends_and_a_stopped_log_says_so() {
        let path = std::env::temp_dir().join(format!("audit-{}.db", uuid::Uuid::new_v4()));
        let store = Store::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let log = AuditLog::start(&store, "n1".into(), &AuditConfig::default())
            .await
            .unwrap();
        let read = |outcome: &str| {
            Entry::LicenceRead(LicenceRead {
                at: 7,
                department: "market-regulation".into(),
                licence_id: "1.2.156.3005.2.x".into(),
                outcome: outcome.into(),
                trace_id: String::new(),
            })
        };
        // Queued among records nobody waits for; the wait ends once it is written.
        log.sink().record(exchange(1));
        log.sink().record_written(read("found")).await.unwrap();
        let records = store
            .audit_records(Some("market-regulation"), None, 0, 10)
            .await
            .unwrap();
        assert_eq!(records.len(), 1, "{records:?}");
        assert_eq!(records[0]["record"]["kind"], "licence_read");
        assert_eq!(records[0]["record"]["outcome"], "found");
        let sink = log.sink().clone();
        log.close(std::time::Duration::from_secs(5)).await;
        assert!(sink.record_written(read("found")).await.is_err());
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
