//! The one connection the record writers (lookup records, the audit log) write through, in
//! turns.
//!
//! Two connections writing into one SQLite file contend for its write lock, and SQLite's busy
//! handler waits for it in sleeps of a millisecond and more, which a lookup waiting for its
//! record would feel; taking turns on one connection waits only as long as the other writer's
//! batch, and the records that queue meanwhile make the next batch.
//!
//! For a SQLite file the connection lives on a thread of its own (`records-sqlite`), which
//! runs each batch as it comes and tells the writer. A lookup waits for its record: through
//! sqlx each statement went to sqlx's connection thread and its result came back as a stream,
//! one wake-up of the runtime per item and one at its end, with the two threads taking a lock
//! in turns; here a batch costs one wake-up of the thread and one of the writer. Waiting for
//! SQLite's write lock (a case being committed) happens on that thread, never on the runtime's.
//! PostgreSQL, and SQLite in memory (whose every connection is a database of its own), keep
//! one sqlx connection held out of the pool.

use crate::StoreError;
use crate::batch_insert::{BatchInsert, Values};
use sqlx::any::Any;
use sqlx::pool::PoolConnection;
use sqlx::{AnyConnection, AnyPool};
use std::path::Path;
use std::sync::{Arc, mpsc};

/// A job for the records thread: it runs with the thread's connection.
type Job = Box<dyn FnOnce(&mut rusqlite::Connection) + Send>;

/// Where record writers write, in turns.
#[derive(Debug, Clone)]
pub(crate) enum RecordsConnection {
    /// A SQLite file: its connection on the records thread.
    Thread(mpsc::Sender<Job>),
    /// Any other store: one sqlx connection, taken at the first write.
    Held(Arc<tokio::sync::Mutex<HeldConnection>>),
}

impl RecordsConnection {
    /// A connection of `pool`'s, held out of it.
    pub(crate) fn held(pool: AnyPool) -> RecordsConnection {
        RecordsConnection::Held(Arc::new(tokio::sync::Mutex::new(HeldConnection::new(pool))))
    }

    /// The records thread on the SQLite file at `path` (its schema already made): commits that
    /// do not wait for the disk (`synchronous=NORMAL` under WAL), as the log pool's. The thread
    /// ends when the last clone is dropped.
    pub(crate) async fn thread(path: &Path) -> Result<RecordsConnection, StoreError> {
        let path = path.to_path_buf();
        let conn = tokio::task::spawn_blocking(move || -> rusqlite::Result<_> {
            let conn = rusqlite::Connection::open(path)?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            Ok(conn)
        })
        .await
        .map_err(|e| sqlx::Error::Io(e.into()))??;
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("records-sqlite".into())
            .spawn(move || {
                let mut conn = conn;
                while let Ok(job) = queue.recv() {
                    job(&mut conn);
                }
            })
            .map_err(sqlx::Error::Io)?;
        Ok(RecordsConnection::Thread(jobs))
    }

    /// Insert `rows` into `insert`'s table, all or none, in this writer's turn.
    pub(crate) async fn insert<R: Send + 'static, const N: usize>(
        &self,
        insert: &Arc<BatchInsert>,
        rows: Vec<R>,
        values: Values<R, N>,
    ) -> Result<(), StoreError> {
        match self {
            RecordsConnection::Thread(jobs) => {
                let (done, written) = tokio::sync::oneshot::channel();
                let insert = insert.clone();
                let job: Job = Box::new(move |conn| {
                    let _ = done.send(insert.write_sqlite(conn, &rows, values));
                });
                let gone = || StoreError::Database(sqlx::Error::PoolClosed);
                jobs.send(job).map_err(|_| gone())?;
                Ok(written.await.map_err(|_| gone())??)
            }
            RecordsConnection::Held(held) => Ok(held
                .lock()
                .await
                .write(async |c| insert.write(c, &rows, values).await)
                .await?),
        }
    }
}

/// A connection kept out of the pool: taken once and given back only when it failed, so the
/// next batch starts on a fresh one. Taking one per batch would cost a pool checkout and,
/// with sqlx's default check before handing a connection out, a ping round trip each time.
#[derive(Debug)]
pub(crate) struct HeldConnection {
    pool: AnyPool,
    held: Option<PoolConnection<Any>>,
}

impl HeldConnection {
    /// Nothing held yet: the first [`Self::write`] takes a connection.
    fn new(pool: AnyPool) -> HeldConnection {
        HeldConnection { pool, held: None }
    }

    /// Run `write` on the held connection, taking one from the pool first if none is held. A
    /// connection that failed is given back, so the next write starts on a fresh one.
    async fn write<T>(
        &mut self,
        write: impl AsyncFnOnce(&mut AnyConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, sqlx::Error> {
        if self.held.is_none() {
            self.held = Some(self.pool.acquire().await?);
        }
        let held = self.held.as_mut().expect("just taken");
        let result = write(held).await;
        if result.is_err() {
            self.held = None;
        }
        result
    }
}
