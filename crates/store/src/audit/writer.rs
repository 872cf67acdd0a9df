//! One writer task per node: it alone numbers and chains this node's records, so the chain
//! needs no lock in the database, and it writes them in batches (one transaction) on the
//! store's records connection, in turns with the lookup records.

use super::chain::seal_message;
use super::{AuditConfig, Entry, Message};
use crate::StoreError;
use crate::batch_insert::{BatchInsert, Param};
use crate::records::{RecordsConnection, Waiting};
use base64::Engine as _;
use gateway_base::digest::HashAlgorithm;
use gateway_base::signature::SigningKeyFile;
use sqlx::{AnyPool, Row};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Records written in one transaction at most.
const BATCH: usize = 512;

/// How long a batch may gather after its first record before it is written.
const GATHER: Duration = Duration::from_millis(5);

/// The writer's state: the head of this node's chain and the last seal.
pub(crate) struct Writer {
    pool: AnyPool,
    records: RecordsConnection,
    insert: Arc<BatchInsert>,
    seals: Arc<BatchInsert>,
    node: Arc<str>,
    hash: HashAlgorithm,
    key: Option<SigningKeyFile>,
    every: u64,
    interval: Duration,
    dropped: Arc<AtomicU64>,
    head_seq: i64,
    head_hash: String,
    sealed_seq: i64,
    last_seal: Instant,
}

impl Writer {
    /// Continue this node's chain where the store has it.
    pub(crate) async fn open(
        pool: AnyPool,
        records: RecordsConnection,
        node: String,
        config: &AuditConfig,
        dropped: Arc<AtomicU64>,
    ) -> Result<Writer, StoreError> {
        let mut writer = Writer {
            records,
            insert: Arc::new(BatchInsert::new("audit_log", &ChainedRow::COLUMNS, 64)),
            seals: Arc::new(BatchInsert::new("audit_seals", &SealRow::COLUMNS, 1)),
            pool,
            node: node.into(),
            hash: config.hash,
            key: config.key.clone().map(|k| k.0),
            every: config.seal_every_records,
            interval: Duration::from_millis(config.seal_interval_ms),
            dropped,
            head_seq: 0,
            head_hash: String::new(),
            sealed_seq: 0,
            last_seal: Instant::now(),
        };
        writer.read_head().await?;
        let sealed =
            sqlx::query("SELECT seq FROM audit_seals WHERE node = $1 ORDER BY seq DESC LIMIT 1")
                .bind(&*writer.node)
                .fetch_optional(&writer.pool)
                .await?;
        writer.sealed_seq = sealed.map_or(0, |r| r.get("seq"));
        Ok(writer)
    }

    async fn read_head(&mut self) -> Result<(), StoreError> {
        let head = sqlx::query(
            "SELECT seq, hash FROM audit_log WHERE node = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(&*self.node)
        .fetch_optional(&self.pool)
        .await?;
        (self.head_seq, self.head_hash) =
            head.map_or((0, String::new()), |r| (r.get("seq"), r.get("hash")));
        Ok(())
    }

    /// Receive, chain and write until the queue closes or a flush ends it.
    pub(crate) async fn run(mut self, mut rx: tokio::sync::mpsc::Receiver<Message>) {
        loop {
            let due = self.seal_due();
            let first = tokio::select! {
                message = rx.recv() => match message {
                    Some(message) => Some(message),
                    None => {
                        self.write(Vec::new()).await;
                        self.seal().await;
                        return;
                    }
                },
                () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => None,
            };
            let mut entries = Vec::new();
            let mut flushes = Vec::new();
            let mut witnesses = Vec::new();
            // Nobody waits for most audit records, so the writer lets a batch gather for a
            // moment after its first record: under load one commit then takes tens of records
            // instead of one or two (a commit, not the rows, is what a record costs). A flush,
            // a record someone waits for, a full batch or a closed queue ends the wait.
            let gather_until = Instant::now() + GATHER;
            let mut next = first;
            while let Some(message) = next {
                match message {
                    Message::Entry(entry) => entries.push(entry),
                    Message::Flush(done) => flushes.push(done),
                    Message::Witnessed(entry, done) => {
                        entries.push(entry);
                        witnesses.push(done);
                    }
                }
                next = if entries.len() >= BATCH {
                    None
                } else {
                    match rx.try_recv() {
                        Ok(message) => Some(message),
                        // Someone waits for this batch: write it now.
                        Err(_)
                            if !flushes.is_empty()
                                || !witnesses.is_empty()
                                || entries.is_empty() =>
                        {
                            None
                        }
                        Err(_) => tokio::time::timeout_at(gather_until, rx.recv())
                            .await
                            .ok()
                            .flatten(),
                    }
                };
            }
            self.write(entries).await;
            let unsealed = (self.head_seq - self.sealed_seq) as u64;
            if unsealed >= self.every
                || !flushes.is_empty()
                || due.is_some_and(|d| d <= Instant::now())
            {
                self.seal().await;
            }
            for done in flushes.into_iter().chain(witnesses) {
                let _ = done.send(());
            }
        }
    }

    /// When the head must be sealed by time: only with a key, and only when records wait.
    fn seal_due(&self) -> Option<Instant> {
        (self.key.is_some() && self.head_seq > self.sealed_seq)
            .then(|| self.last_seal + self.interval)
    }

    /// Chain and write the entries (and a note of any dropped ones first), retrying until the
    /// store takes them: nothing is lost while the queue can still hold what comes meanwhile.
    async fn write(&mut self, mut entries: Vec<Entry>) {
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            entries.insert(
                0,
                Entry::Dropped {
                    at: gateway_base::time::now_ms(),
                    count: dropped,
                },
            );
        }
        if entries.is_empty() {
            return;
        }
        // Shared with the attempt, which makes its rows where it is written; kept here for
        // the next attempt.
        let entries = Arc::new(entries);
        loop {
            match self.insert(&entries).await {
                Ok(()) => return,
                Err(e) => {
                    metrics::counter!("gateway_audit_write_errors_total").increment(1);
                    tracing::error!(error = %e, records = entries.len(), "audit log write failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    // Another process with this node id may have written meanwhile (a
                    // misconfiguration): continue after whatever the store holds, so the
                    // chain stays one chain.
                    if let Err(e) = self.read_head().await {
                        tracing::error!(error = %e, "audit log head unreadable");
                    }
                }
            }
        }
    }

    /// Chain the entries after the head and write them. The rows are made where the batch is
    /// written (for a SQLite file, on the records thread: serialising and chaining are most
    /// of a record's cost before its commit), afresh at each attempt, so they own their text
    /// without a copy kept for a retry; the new head comes back with the commit.
    async fn insert(&mut self, entries: &Arc<Vec<Entry>>) -> Result<(), StoreError> {
        let link = Link {
            node: self.node.clone(),
            hash: self.hash,
            seq: self.head_seq,
            prev: self.head_hash.clone(),
        };
        let entries = entries.clone();
        (self.head_seq, self.head_hash) = self
            .records
            .insert_built(
                &self.insert,
                move || link.rows(&entries),
                ChainedRow::values,
                Waiting::Writer,
            )
            .await?;
        Ok(())
    }

    /// Sign the chain's head, when there is a key and something new to seal.
    async fn seal(&mut self) {
        let Some(key) = &self.key else { return };
        if self.head_seq <= self.sealed_seq {
            return;
        }
        let at = gateway_base::time::now_ms();
        let message = seal_message(&self.node, self.head_seq, &self.head_hash, at);
        let signature = match key.sign_bytes(&message) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "audit seal cannot be signed");
                return;
            }
        };
        let seal = SealRow {
            node: self.node.clone(),
            seq: self.head_seq,
            hash: self.head_hash.clone(),
            at,
            key_id: key.id.clone(),
            algorithm: key.algorithm.to_string(),
            public_key: key.public_key.clone(),
            signature: base64::engine::general_purpose::STANDARD.encode(signature),
        };
        let done = self
            .records
            .insert(&self.seals, vec![seal], SealRow::values, Waiting::Writer)
            .await;
        // A failed seal is tried again after the interval (or the next full batch), not at
        // once: a store that is down is not asked in a loop.
        self.last_seal = Instant::now();
        match done {
            Ok(_) => self.sealed_seq = self.head_seq,
            Err(e) => tracing::error!(error = %e, "audit seal write failed"),
        }
    }
}

/// Where a batch joins the chain: after record `seq`, whose hash is `prev`.
struct Link {
    node: Arc<str>,
    hash: HashAlgorithm,
    seq: i64,
    prev: String,
}

impl Link {
    /// The entries as rows, each linked to the one before it, and the chain's new head.
    fn rows(self, entries: &[Entry]) -> (Vec<ChainedRow>, (i64, String)) {
        let Link {
            node,
            hash: algorithm,
            mut seq,
            mut prev,
        } = self;
        let rows = entries
            .iter()
            .map(|entry| {
                seq += 1;
                let record = serde_json::to_string(entry).expect("an audit entry serialises");
                let hash = super::chain::link(algorithm, &node, seq, &prev, &record);
                ChainedRow {
                    node: node.clone(),
                    seq,
                    at: entry.at(),
                    department: entry.department().map(str::to_string),
                    record,
                    prev_hash: std::mem::replace(&mut prev, hash.clone()),
                    hash,
                }
            })
            .collect();
        (rows, (seq, prev))
    }
}

/// One record as it goes into `audit_log`, linked to the one before it.
struct ChainedRow {
    node: Arc<str>,
    seq: i64,
    at: i64,
    department: Option<String>,
    record: String,
    prev_hash: String,
    hash: String,
}

impl ChainedRow {
    const COLUMNS: [&str; 7] = [
        "node",
        "seq",
        "at",
        "department",
        "record",
        "prev_hash",
        "hash",
    ];

    fn values(&self) -> [Param<'_>; 7] {
        [
            Param::Text(Some(&self.node)),
            Param::Int(self.seq),
            Param::Int(self.at),
            Param::Text(self.department.as_deref()),
            Param::Text(Some(&self.record)),
            Param::Text(Some(&self.prev_hash)),
            Param::Text(Some(&self.hash)),
        ]
    }
}

/// A signature of the chain's head, as it goes into `audit_seals`.
struct SealRow {
    node: Arc<str>,
    seq: i64,
    hash: String,
    at: i64,
    key_id: String,
    algorithm: String,
    public_key: String,
    signature: String,
}

impl SealRow {
    const COLUMNS: [&str; 8] = [
        "node",
        "seq",
        "hash",
        "at",
        "key_id",
        "algorithm",
        "public_key",
        "signature",
    ];

    fn values(&self) -> [Param<'_>; 8] {
        [
            Param::Text(Some(&self.node)),
            Param::Int(self.seq),
            Param::Text(Some(&self.hash)),
            Param::Int(self.at),
            Param::Text(Some(&self.key_id)),
            Param::Text(Some(&self.algorithm)),
            Param::Text(Some(&self.public_key)),
            Param::Text(Some(&self.signature)),
        ]
    }
}
