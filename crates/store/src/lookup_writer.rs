//! Lookup records written by group commit.
//!
//! Every lookup is recorded before its answer goes out, so a record costs the lookup a durable
//! write. One transaction per lookup would make the store's commit the ceiling of lookups per
//! second; instead one writer task takes every record waiting at that moment (and those of the
//! lookups ready on its thread behind them), writes them as one batch ([`BatchInsert`]: one
//! transaction) on the records connection ([`RecordsConnection`], shared in turns with the
//! audit log), and then tells each waiting request its record is stored. Under load many lookups
//! share a commit; alone, a lookup waits for its own commit exactly as before. Nothing is
//! answered before its record is stored.

use super::batch_insert::{BatchInsert, Param};
use super::records::{RecordsConnection, Waiting};
use super::{LookupServes, StoreError};
use gateway_base::time::now_ms;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{mpsc, oneshot};

/// The most records one batch takes.
const BATCH: usize = 256;

/// One lookup to record, and who waits for it.
struct Pending {
    row: Row,
    done: oneshot::Sender<Result<(), String>>,
}

/// A row of `lookup_records`.
struct Row {
    id: String,
    at: i64,
    client: String,
    lookup: String,
    purpose: String,
    case_id: Option<String>,
    /// The clerk as stored: JSON text.
    clerk: Option<String>,
    outcome: String,
}

impl Row {
    const COLUMNS: [&str; 8] = [
        "id", "at", "client", "lookup", "purpose", "case_id", "clerk", "outcome",
    ];

    fn values(&self) -> [Param<'_>; 8] {
        [
            Param::Text(Some(&self.id)),
            Param::Int(self.at),
            Param::Text(Some(&self.client)),
            Param::Text(Some(&self.lookup)),
            Param::Text(Some(&self.purpose)),
            Param::Text(self.case_id.as_deref()),
            Param::Text(self.clerk.as_deref()),
            Param::Text(Some(&self.outcome)),
        ]
    }
}

/// The sending side; the writer task ends when every clone of the store is gone.
#[derive(Debug, Clone)]
pub(super) struct LookupWriter {
    queue: mpsc::Sender<Pending>,
    /// Lookups begun and not yet ended ([`LookupInFlight`]).
    in_flight: Arc<AtomicUsize>,
}

/// A lookup on its way, from before its department is asked until its answer: while others
/// are, a record waits one pass of the scheduler so that theirs share its commit. Dropped,
/// the lookup has ended.
#[derive(Debug)]
pub struct LookupInFlight(Arc<AtomicUsize>);

impl Drop for LookupInFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl LookupWriter {
    /// Start the writer task on the records connection.
    pub(super) fn start(records: RecordsConnection) -> LookupWriter {
        let (queue, waiting) = mpsc::channel(4 * BATCH);
        let in_flight = Arc::new(AtomicUsize::new(0));
        tokio::spawn(write_batches(records, in_flight.clone(), waiting));
        LookupWriter { queue, in_flight }
    }

    /// A lookup begins.
    pub(super) fn begun(&self) -> LookupInFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        LookupInFlight(self.in_flight.clone())
    }

    /// Record a lookup; returns once it is committed.
    pub(super) async fn record(
        &self,
        client: &str,
        lookup: &str,
        served: &LookupServes,
        outcome: &str,
    ) -> Result<(), StoreError> {
        let (done, committed) = oneshot::channel();
        let row = Row {
            id: uuid::Uuid::now_v7().to_string(),
            at: now_ms(),
            client: client.to_string(),
            lookup: lookup.to_string(),
            purpose: served.purpose.clone(),
            case_id: served.case_id.clone(),
            clerk: served
                .clerk
                .as_ref()
                .map(|c| serde_json::to_string(c).unwrap_or_default()),
            outcome: outcome.to_string(),
        };
        let lost = || StoreError::Database(sqlx::Error::PoolClosed);
        self.queue
            .send(Pending { row, done })
            .await
            .map_err(|_| lost())?;
        committed
            .await
            .map_err(|_| lost())?
            .map_err(|e| StoreError::Database(sqlx::Error::Protocol(e)))
    }
}

async fn write_batches(
    records: RecordsConnection,
    in_flight: Arc<AtomicUsize>,
    mut waiting: mpsc::Receiver<Pending>,
) {
    let insert = Arc::new(BatchInsert::new("lookup_records", &Row::COLUMNS, 64));
    let mut batch = Vec::with_capacity(BATCH);
    while waiting.recv_many(&mut batch, BATCH).await > 0 {
        // A SQLite file's batch is written on this thread as soon as this task runs, which
        // is right after the first lookup woke it: the lookups ready behind that one would
        // each commit alone. While other lookups are on their way, yielding once lets those
        // ready reach their records first and share this commit; a lookup alone is written
        // at once.
        if batch.len() < BATCH && in_flight.load(Ordering::Relaxed) > batch.len() {
            tokio::task::yield_now().await;
            while batch.len() < BATCH
                && let Ok(pending) = waiting.try_recv()
            {
                batch.push(pending);
            }
        }
        let (rows, waiters): (Vec<Row>, Vec<_>) = batch.drain(..).map(|p| (p.row, p.done)).unzip();
        let outcome = records
            .insert(&insert, rows, Row::values, Waiting::Request)
            .await;
        if let Err(e) = &outcome {
            tracing::error!(error = %e, records = waiters.len(), "lookup records not written");
        }
        let outcome = outcome.map_err(|e| e.to_string());
        for done in waiters {
            let _ = done.send(outcome.clone());
        }
    }
}
