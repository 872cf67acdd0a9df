//! The one connection the record writers (lookup records, the audit log) write through, in
//! turns.
//!
//! Two connections writing into one SQLite file contend for its write lock, and SQLite's busy
//! handler waits for it in sleeps of a millisecond and more, which a lookup waiting for its
//! record would feel; taking turns on one connection waits only as long as the other writer's
//! batch, and the records that queue meanwhile make the next batch.
//!
//! For a SQLite file the connection is the process's own (`rusqlite`). A batch a request waits
//! for (a lookup's record) is written where it is asked for, on the runtime's thread, when
//! nothing stands in the way: the connection free and SQLite's write lock free at once (the
//! connection waits for nothing there: its busy timeout is zero). Otherwise — a case's commit
//! holds the lock, or the other writer's batch the connection — and for batches only their
//! writer waits for (the audit log's), the batch goes to the records thread
//! (`records-sqlite`), which waits its turn there, in SQLite's busy handler, never on the
//! runtime's thread. Why not every batch on the thread: a lookup waiting for its record then
//! cost a wake-up of the thread and another of the runtime, which for a lookup alone took
//! longer than SQLite's own work (BENCHMARKS.md, "Lookup records written where they are asked
//! for"); the audit log's batches, which no answer waits for, are written meanwhile on the
//! other core, and their rows are made there too (serialised and chained: `insert_built`).
//! The same thread checkpoints the WAL now and then (SQLite's automatic
//! checkpoint, which waits for the disk, would run on the runtime's thread: it is off).
//!
//! PostgreSQL, and SQLite in memory (whose every connection is a database of its own), keep
//! one sqlx connection held out of the pool.

use crate::StoreError;
use crate::batch_insert::{BatchInsert, Values};
use sqlx::any::Any;
use sqlx::pool::PoolConnection;
use sqlx::{AnyConnection, AnyPool};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};

/// A job for the records thread: it runs with the writers' connection.
type Job = Box<dyn FnOnce(&mut rusqlite::Connection) + Send>;

/// What the records thread is asked to do.
enum Task {
    /// A batch the caller could not write itself.
    Write(Job),
    /// Copy the WAL's pages into the database file, so the WAL starts over.
    Checkpoint,
}

/// Transactions between two checkpoints: a few pages each, so the WAL stays at a few
/// thousand pages (SQLite's own automatic checkpoint comes at a thousand).
const CHECKPOINT_EVERY: u32 = 256;

/// How long the records thread waits for SQLite's write lock (a case's commit).
const THREAD_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Who waits for a batch to be written, which decides where a SQLite file's is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waiting {
    /// A request's answer (a lookup's record): written where it is asked for when it can be.
    Request,
    /// Only its writer (the audit log): written on the records thread.
    Writer,
    /// Nobody, and it adds a page to rows already written (a lone lookup's outcome): written
    /// where it is asked for like a request's, and not counted toward the next checkpoint, so
    /// that a lookup written twice does not bring checkpoints, which the next record waits
    /// out, twice as often.
    Nobody,
}

/// Where record writers write, in turns.
#[derive(Debug, Clone)]
pub(crate) enum RecordsConnection {
    /// A SQLite file: its connection, written where asked when free, else on the thread.
    Sqlite(Arc<SqliteRecords>),
    /// Any other store: one sqlx connection, taken at the first write.
    Held(Arc<tokio::sync::Mutex<HeldConnection>>),
}

/// A SQLite file's records connection and its thread.
#[derive(Debug)]
pub(crate) struct SqliteRecords {
    /// The writers' connection; busy timeout zero except while the thread holds it.
    connection: Arc<Mutex<rusqlite::Connection>>,
    /// The records thread's queue.
    tasks: mpsc::Sender<Task>,
    /// Transactions since the last checkpoint was asked for.
    since_checkpoint: AtomicU32,
}

impl RecordsConnection {
    /// A connection of `pool`'s, held out of it.
    pub(crate) fn held(pool: AnyPool) -> RecordsConnection {
        RecordsConnection::Held(Arc::new(tokio::sync::Mutex::new(HeldConnection::new(pool))))
    }

    /// The records connection and thread on the SQLite file at `path` (its schema already
    /// made): commits that do not wait for the disk (`synchronous=NORMAL` under WAL), as the
    /// log pool's. The thread ends when the last clone is dropped.
    pub(crate) async fn sqlite(path: &Path) -> Result<RecordsConnection, StoreError> {
        let path = path.to_path_buf();
        let writers = tokio::task::spawn_blocking(move || -> rusqlite::Result<_> {
            let conn = rusqlite::Connection::open(path)?;
            conn.busy_timeout(std::time::Duration::ZERO)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            conn.pragma_update(None, "wal_autocheckpoint", 0)?;
            Ok(conn)
        })
        .await
        .map_err(|e| sqlx::Error::Io(e.into()))??;
        let connection = Arc::new(Mutex::new(writers));
        let (tasks, queue) = mpsc::channel::<Task>();
        std::thread::Builder::new()
            .name("records-sqlite".into())
            .spawn({
                let connection = connection.clone();
                move || run_thread(&connection, &queue)
            })
            .map_err(sqlx::Error::Io)?;
        Ok(RecordsConnection::Sqlite(Arc::new(SqliteRecords {
            connection,
            tasks,
            since_checkpoint: AtomicU32::new(0),
        })))
    }

    /// Insert `rows` into `insert`'s table, all or none, in this writer's turn; `waiting`
    /// says who waits for it.
    pub(crate) async fn insert<R: Send + 'static, const N: usize>(
        &self,
        insert: &Arc<BatchInsert>,
        rows: Vec<R>,
        values: Values<R, N>,
        waiting: Waiting,
    ) -> Result<(), StoreError> {
        self.insert_built(insert, move || (rows, ()), values, waiting)
            .await
    }

    /// [`Self::insert`] of the rows `build` makes, made where the batch is written: for a
    /// SQLite file's batch that only its writer waits for, on the records thread, so that
    /// what the rows cost to make (the audit log's serialising and chaining) leaves the
    /// runtime's thread too. What `build` gives besides the rows comes back once they are
    /// written.
    pub(crate) async fn insert_built<R: Send + 'static, T: Send + 'static, const N: usize>(
        &self,
        insert: &Arc<BatchInsert>,
        build: impl FnOnce() -> (Vec<R>, T) + Send + 'static,
        values: Values<R, N>,
        waiting: Waiting,
    ) -> Result<T, StoreError> {
        match self {
            RecordsConnection::Sqlite(sqlite) => {
                sqlite.insert(insert, build, values, waiting).await
            }
            RecordsConnection::Held(held) => {
                let (rows, made) = build();
                held.lock()
                    .await
                    .write(async |c| insert.write(c, &rows, values).await)
                    .await?;
                Ok(made)
            }
        }
    }
}

impl SqliteRecords {
    /// Write a request's batch here if the connection and SQLite's write lock are free at
    /// once; any other batch, or one that cannot be written here, on the records thread,
    /// where its rows are made.
    async fn insert<R: Send + 'static, T: Send + 'static, const N: usize>(
        &self,
        insert: &Arc<BatchInsert>,
        build: impl FnOnce() -> (Vec<R>, T) + Send + 'static,
        values: Values<R, N>,
        waiting: Waiting,
    ) -> Result<T, StoreError> {
        let counted = waiting != Waiting::Nobody;
        if waiting == Waiting::Writer {
            return self.on_thread(insert, build, values, counted).await;
        }
        let (rows, made) = build();
        let written_here = self.connection.try_lock().ok().and_then(|mut conn| {
            match insert.write_sqlite(&mut conn, &rows, values) {
                Err(e) if is_busy(&e) => None,
                written => Some(written),
            }
        });
        match written_here {
            Some(written) => {
                self.committed(counted);
                written?;
                Ok(made)
            }
            None => {
                self.on_thread(insert, move || (rows, made), values, counted)
                    .await
            }
        }
    }

    /// Make the rows and write them on the records thread, in its turn.
    async fn on_thread<R: Send + 'static, T: Send + 'static, const N: usize>(
        &self,
        insert: &Arc<BatchInsert>,
        build: impl FnOnce() -> (Vec<R>, T) + Send + 'static,
        values: Values<R, N>,
        counted: bool,
    ) -> Result<T, StoreError> {
        let (done, written) = tokio::sync::oneshot::channel();
        let insert = insert.clone();
        let job: Job = Box::new(move |conn| {
            let (rows, made) = build();
            let _ = done.send(insert.write_sqlite(conn, &rows, values).map(|()| made));
        });
        let gone = || StoreError::Database(sqlx::Error::PoolClosed);
        self.tasks.send(Task::Write(job)).map_err(|_| gone())?;
        let written = written.await.map_err(|_| gone())?;
        self.committed(counted);
        Ok(written?)
    }

    /// Count a transaction if `counted`; every [`CHECKPOINT_EVERY`] the thread checkpoints.
    fn committed(&self, counted: bool) {
        if counted && self.since_checkpoint.fetch_add(1, Ordering::Relaxed) + 1 >= CHECKPOINT_EVERY
        {
            self.since_checkpoint.store(0, Ordering::Relaxed);
            let _ = self.tasks.send(Task::Checkpoint);
        }
    }
}

/// True when SQLite refused for a lock another connection holds.
fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// The records thread: batches that wait for their turn, and checkpoints.
fn run_thread(connection: &Mutex<rusqlite::Connection>, queue: &mpsc::Receiver<Task>) {
    while let Ok(task) = queue.recv() {
        let mut conn = connection.lock().unwrap_or_else(PoisonError::into_inner);
        match task {
            Task::Write(job) => {
                // Here, unlike on the runtime's thread, waiting for the lock is the point.
                let _ = conn.busy_timeout(THREAD_BUSY_TIMEOUT);
                // A job that panics (its rows are made here) fails its own batch, whose
                // writer hears so, not the thread every later record needs.
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut conn)));
                if ran.is_err() {
                    tracing::error!("records: a batch's job panicked; the batch is not written");
                    let _ = conn.execute_batch("ROLLBACK");
                }
                let _ = conn.busy_timeout(std::time::Duration::ZERO);
            }
            // With the connection held, no batch is written meanwhile, so the checkpoint
            // copies every page of the WAL and the next batch starts it over (a checkpoint
            // beside a steady writer never catches up, and the WAL would grow without end).
            // Batches asked for meanwhile come here and wait, as they would for a case's
            // commit. PASSIVE: it does not wait for readers.
            Task::Checkpoint => {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "records: WAL checkpoint failed");
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch_insert::Param;

    fn values((a, b): &(i64, String)) -> [Param<'_>; 2] {
        [Param::Int(*a), Param::Text(Some(b))]
    }

    #[tokio::test]
    async fn rows_are_made_on_the_thread_and_a_batch_that_cannot_be_made_fails_alone() {
        let path = std::env::temp_dir().join(format!("records-{}.db", uuid::Uuid::new_v4()));
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute("CREATE TABLE t (a INTEGER, b TEXT)", [])
            .unwrap();
        let records = RecordsConnection::sqlite(&path).await.unwrap();
        let insert = Arc::new(BatchInsert::new("t", &["a", "b"], 16));

        let caller = std::thread::current().id();
        let failed = records
            .insert_built(
                &insert,
                || -> (Vec<(i64, String)>, ()) { panic!("these rows cannot be made") },
                values,
                Waiting::Writer,
            )
            .await;
        assert!(failed.is_err(), "a panicking batch must fail, not hang");
        // The thread survived it: the next batch is made and written there.
        let (made_on, name) = records
            .insert_built(
                &insert,
                move || {
                    let here = std::thread::current();
                    (
                        vec![(1, "one".to_string())],
                        (here.id(), here.name().map(str::to_string)),
                    )
                },
                values,
                Waiting::Writer,
            )
            .await
            .unwrap();
        assert_ne!(made_on, caller);
        assert_eq!(name.as_deref(), Some("records-sqlite"));
        records
            .insert(
                &insert,
                vec![(2, "two".to_string())],
                values,
                Waiting::Request,
            )
            .await
            .unwrap();

        let stored: Vec<(i64, String)> = rusqlite::Connection::open(&path)
            .unwrap()
            .prepare("SELECT a, b FROM t ORDER BY a")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(stored, vec![(1, "one".into()), (2, "two".into())]);
        drop(records);
        let _ = std::fs::remove_file(&path);
    }
}
