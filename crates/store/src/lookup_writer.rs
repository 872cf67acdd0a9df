//! Lookup records written by group commit, and a lookup alone's written while it runs.
//!
//! Every lookup is recorded before its answer goes out, so a record costs the lookup a durable
//! write. One transaction per lookup would make the store's commit the ceiling of lookups per
//! second; instead one writer task takes every record waiting at that moment (and those of the
//! lookups ready on its thread behind them), writes them as one batch ([`BatchInsert`]: one
//! transaction) on the records connection ([`RecordsConnection`], shared in turns with the
//! audit log), and then tells each waiting request its record is stored. Under load many lookups
//! share a commit, each recorded once, with its outcome, when its call has ended.
//!
//! A lookup that begins alone (no other in flight) has nothing to share a commit with, and
//! waiting for its own after its call would add the commit to its answer's time. So its record
//! is written as it begins, while its department is being asked — the outcome `pending` — and
//! written again with the outcome once the call has ended, after its answer: two writes where
//! the machine has nothing else to do, none on the answer's path. Either way nothing is
//! answered before its record is stored. A lookup dropped before it ended (its client gone,
//! its time bound run out) is recorded `cancelled`. Reads of the records first wait for what
//! is queued ([`LookupWriter::settled`]), so a lookup answered is read with its outcome.

use super::batch_insert::{BatchInsert, Param};
use super::records::{RecordsConnection, Waiting};
use super::{LookupServes, StoreError};
use gateway_base::time::now_ms;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{mpsc, oneshot};

/// The most records one batch takes.
const BATCH: usize = 256;

/// The outcome of a lookup whose record is written while its call runs.
const PENDING: &str = "pending";

/// The outcome of a lookup dropped before its call ended.
const CANCELLED: &str = "cancelled";

/// What the writer task is handed.
enum Queued {
    /// A row to write (again, for a lookup alone), and who waits for it.
    Record {
        row: Row,
        done: Option<oneshot::Sender<Result<(), String>>>,
    },
    /// Tell the sender once everything queued before it is written.
    Settled(oneshot::Sender<()>),
}

/// A row of `lookup_records`.
#[derive(Clone)]
struct Row {
    id: String,
    at: i64,
    client: String,
    lookup: String,
    purpose: String,
    case_id: Option<String>,
    /// The clerk as stored: JSON text.
    clerk: Option<String>,
    outcome: &'static str,
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
            Param::Text(Some(self.outcome)),
        ]
    }
}

/// The sending side; the writer task ends when every clone of the store is gone.
#[derive(Debug, Clone)]
pub(super) struct LookupWriter {
    queue: mpsc::Sender<Queued>,
    /// Lookups begun and not yet ended ([`LookupRecording`]).
    in_flight: Arc<AtomicUsize>,
}

/// A lookup on its way, from before its department is asked until its answer: end it with
/// [`LookupRecording::ended`], which returns once its record is stored. While others are on
/// their way, a record waits one pass of the scheduler so that theirs share its commit.
/// Dropped before it ended, the lookup is recorded `cancelled`.
#[must_use = "a lookup is recorded `cancelled` unless it is ended with its outcome"]
pub struct LookupRecording {
    queue: mpsc::Sender<Queued>,
    in_flight: Arc<AtomicUsize>,
    row: Row,
    /// For a lookup that began alone: its first write, under way while it runs.
    written: Option<oneshot::Receiver<Result<(), String>>>,
    /// Its row with its outcome has been handed to the writer.
    ended: bool,
}

impl LookupWriter {
    /// Start the writer task on the records connection.
    pub(super) fn start(records: RecordsConnection) -> LookupWriter {
        let (queue, waiting) = mpsc::channel(4 * BATCH);
        let in_flight = Arc::new(AtomicUsize::new(0));
        tokio::spawn(write_batches(records, in_flight.clone(), waiting));
        LookupWriter { queue, in_flight }
    }

    /// A lookup begins; alone, its record is queued at once.
    pub(super) fn begun(
        &self,
        client: &str,
        lookup: &str,
        served: &LookupServes,
    ) -> LookupRecording {
        let alone = self.in_flight.fetch_add(1, Ordering::Relaxed) == 0;
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
            outcome: PENDING,
        };
        let mut written = None;
        if alone {
            let (done, stored) = oneshot::channel();
            let first = Queued::Record {
                row: row.clone(),
                done: Some(done),
            };
            // A full queue is not a lookup alone's: it is recorded as under load.
            if self.queue.try_send(first).is_ok() {
                written = Some(stored);
            }
        }
        LookupRecording {
            queue: self.queue.clone(),
            in_flight: self.in_flight.clone(),
            row,
            written,
            ended: false,
        }
    }

    /// Returns once every record queued before it is written (or failed).
    pub(super) async fn settled(&self) {
        let (done, settled) = oneshot::channel();
        if self.queue.send(Queued::Settled(done)).await.is_ok() {
            let _ = settled.await;
        }
    }
}

impl LookupRecording {
    /// The lookup ended with `outcome` (`ok` or the error's kind): returns once its record is
    /// stored — for a lookup alone, its first write; its outcome is written after.
    pub async fn ended(mut self, outcome: &'static str) -> Result<(), StoreError> {
        let lost = || StoreError::Database(sqlx::Error::PoolClosed);
        let failed = |e: String| StoreError::Database(sqlx::Error::Protocol(e));
        self.row.outcome = outcome;
        let row = self.row.clone();
        // Cancelled at an await below before `ended` is set, the lookup is recorded
        // `cancelled` when dropped (a send not completed has sent nothing).
        match self.written.take() {
            Some(written) => {
                if let Err(e) = written.await.map_err(|_| lost())?.map_err(failed) {
                    self.ended = true;
                    return Err(e);
                }
                let sent = self.queue.send(Queued::Record { row, done: None }).await;
                self.ended = true;
                sent.map_err(|_| lost())
            }
            None => {
                let (done, stored) = oneshot::channel();
                let sent = self.queue.send(Queued::Record {
                    row,
                    done: Some(done),
                });
                sent.await.map_err(|_| lost())?;
                self.ended = true;
                stored.await.map_err(|_| lost())?.map_err(failed)
            }
        }
    }
}

impl Drop for LookupRecording {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        if !self.ended {
            self.row.outcome = CANCELLED;
            let row = self.row.clone();
            if self
                .queue
                .try_send(Queued::Record { row, done: None })
                .is_err()
            {
                tracing::warn!(lookup = %self.row.lookup, "a cancelled lookup's record was not queued: the records queue is full or closed");
            }
        }
    }
}

async fn write_batches(
    records: RecordsConnection,
    in_flight: Arc<AtomicUsize>,
    mut waiting: mpsc::Receiver<Queued>,
) {
    let insert = Arc::new(BatchInsert::updating(
        "lookup_records",
        &Row::COLUMNS,
        64,
        "id",
        &["outcome"],
    ));
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
                && let Ok(queued) = waiting.try_recv()
            {
                batch.push(queued);
            }
        }
        let mut rows = Vec::with_capacity(batch.len());
        let mut waiters = Vec::with_capacity(batch.len());
        let mut settled = Vec::new();
        for queued in batch.drain(..) {
            match queued {
                Queued::Record { row, done } => {
                    rows.push(row);
                    waiters.extend(done);
                }
                Queued::Settled(done) => settled.push(done),
            }
        }
        keep_last_of_each(&mut rows);
        let outcome = if rows.is_empty() {
            Ok(())
        } else {
            // A batch nobody waits for is lone lookups' outcomes (and cancellations).
            let waiting = if waiters.is_empty() {
                Waiting::Nobody
            } else {
                Waiting::Request
            };
            records.insert(&insert, rows, Row::values, waiting).await
        };
        if let Err(e) = &outcome {
            tracing::error!(error = %e, records = waiters.len(), "lookup records not written");
        }
        let outcome = outcome.map_err(|e| e.to_string());
        for done in waiters {
            let _ = done.send(outcome.clone());
        }
        for done in settled {
            let _ = done.send(());
        }
    }
}

/// A lookup's record and its outcome can meet in one batch (one dropped right after it began
/// alone): one statement may not write a row twice on PostgreSQL, so the last is kept.
fn keep_last_of_each(rows: &mut Vec<Row>) {
    if rows.len() < 2 || rows.iter().all(|r| r.outcome != CANCELLED) {
        return;
    }
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<Row> = rows
        .drain(..)
        .rev()
        .filter(|r| seen.insert(r.id.clone()))
        .collect();
    kept.reverse();
    *rows = kept;
}
