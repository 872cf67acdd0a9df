//! Lookup records written by group commit.
//!
//! Every lookup is recorded before its answer goes out, so a record costs the lookup a durable
//! write. One transaction per lookup would make the store's commit (an fsync on SQLite with
//! `synchronous=FULL`) the ceiling of lookups per second; instead one writer task takes every
//! record waiting at that moment, writes them in one transaction, and then tells each waiting
//! request its record is stored. Under load many lookups share a commit; alone, a lookup waits
//! for its own commit exactly as before. Nothing is answered before its record is durable.

use super::{LookupServes, StoreError, now_ms};
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

/// The most records one transaction takes.
const BATCH: usize = 256;

/// One lookup to record, and who waits for it.
struct Pending {
    at: i64,
    client: String,
    lookup: String,
    served: LookupServes,
    outcome: String,
    done: oneshot::Sender<Result<(), String>>,
}

/// The sending side; the writer task ends when every clone of the store is gone.
#[derive(Debug, Clone)]
pub(super) struct LookupWriter {
    queue: mpsc::Sender<Pending>,
}

impl LookupWriter {
    /// Start the writer task on `pool`.
    pub(super) fn start(pool: AnyPool) -> LookupWriter {
        let (queue, waiting) = mpsc::channel(4 * BATCH);
        tokio::spawn(write_batches(pool, waiting));
        LookupWriter { queue }
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
        let pending = Pending {
            at: now_ms(),
            client: client.to_string(),
            lookup: lookup.to_string(),
            served: served.clone(),
            outcome: outcome.to_string(),
            done,
        };
        let lost = || StoreError::Database(sqlx::Error::PoolClosed);
        self.queue.send(pending).await.map_err(|_| lost())?;
        committed
            .await
            .map_err(|_| lost())?
            .map_err(|e| StoreError::Database(sqlx::Error::Protocol(e)))
    }
}

async fn write_batches(pool: AnyPool, mut waiting: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(BATCH);
    while waiting.recv_many(&mut batch, BATCH).await > 0 {
        let outcome = write(&pool, &batch).await.map_err(|e| e.to_string());
        if let Err(e) = &outcome {
            tracing::error!(error = %e, records = batch.len(), "lookup records not written");
        }
        for pending in batch.drain(..) {
            let _ = pending.done.send(outcome.clone());
        }
    }
}

async fn write(pool: &AnyPool, batch: &[Pending]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for p in batch {
        sqlx::query(
            "INSERT INTO lookup_records (id, at, client, lookup, purpose, case_id, clerk, outcome)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(p.at)
        .bind(&p.client)
        .bind(&p.lookup)
        .bind(&p.served.purpose)
        .bind(p.served.case_id.as_deref())
        .bind(
            p.served
                .clerk
                .as_ref()
                .map(|c| serde_json::to_string(c).unwrap_or_default()),
        )
        .bind(&p.outcome)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}
