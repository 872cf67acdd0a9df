//! Many rows in few statements: the record writers' multi-row `INSERT`s.
//!
//! Under load a record writer finds tens of rows waiting at once. One `INSERT` per row costs a
//! round trip to the database each (for SQLite through sqlx, a hand-off to the connection's
//! worker thread and back: two thread wake-ups), and that, not SQLite's own work, was most of
//! what recording cost. One statement per batch size would make every size a statement of its
//! own for the database to prepare and keep. So a batch is cut into power-of-two chunks (13
//! rows: 8 + 4 + 1): at most one statement per bit of the batch size, from a set of at most
//! `log2(max) + 1` statements that the statement cache keeps prepared. SQLite's statements have
//! anonymous placeholders (`?`), PostgreSQL's numbered ones (`$1`).

use sqlx::AnyConnection;
use sqlx::any::{Any, AnyArguments};
use sqlx::pool::PoolConnection;
use sqlx::query::Query;
use sqlx::{AnyPool, Connection as _};
use std::sync::Arc;

/// One bound statement of a chunk.
type Insert<'q> = Query<'q, Any, AnyArguments<'q>>;

/// The statements of one table's multi-row `INSERT`, by chunk size.
#[derive(Debug)]
pub(crate) struct BatchInsert {
    /// `numbered[i]` inserts `2^i` rows, its placeholders `$1, $2, …` (PostgreSQL's).
    numbered: Vec<String>,
    /// The same with anonymous placeholders `?` (SQLite's): SQLite binds them in order, where
    /// binding a `$n` makes sqlx ask SQLite its name, which SQLite finds by walking the
    /// statement's list of names: for a chunk of hundreds of values, quadratic work per batch.
    anonymous: Vec<String>,
}

impl BatchInsert {
    /// Statements for `table` (its `columns`, in the order rows bind them), for chunks of up
    /// to `max_rows` rows (rounded down to a power of two).
    pub(crate) fn new(table: &str, columns: &[&str], max_rows: usize) -> BatchInsert {
        let max_rows = max_rows.max(1);
        let largest = usize::BITS - 1 - max_rows.leading_zeros();
        let statements = |placeholder: &dyn Fn(usize) -> String| {
            (0..=largest)
                .map(|bit| {
                    let rows = 1usize << bit;
                    let values = (0..rows)
                        .map(|row| {
                            let first = row * columns.len() + 1;
                            let placeholders = (first..first + columns.len())
                                .map(placeholder)
                                .collect::<Vec<_>>()
                                .join(", ");
                            format!("({placeholders})")
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    format!(
                        "INSERT INTO {table} ({}) VALUES {values}",
                        columns.join(", ")
                    )
                })
                .collect()
        };
        BatchInsert {
            numbered: statements(&|n| format!("${n}")),
            anonymous: statements(&|_| "?".to_string()),
        }
    }

    /// The largest chunk one statement takes.
    pub(crate) fn max_rows(&self) -> usize {
        1 << (self.numbered.len() - 1)
    }

    /// How a batch of `rows` is cut: `(start, len)` of each chunk, largest first.
    pub(crate) fn chunks(&self, rows: usize) -> Vec<(usize, usize)> {
        let mut chunks = Vec::new();
        let mut start = 0;
        while start < rows {
            let left = rows - start;
            let len = if left >= self.max_rows() {
                self.max_rows()
            } else {
                1 << (usize::BITS - 1 - left.leading_zeros())
            };
            chunks.push((start, len));
            start += len;
        }
        chunks
    }

    /// The statements for the database `backend` (as sqlx names it): the `i`th inserts `2^i`
    /// rows.
    fn statements(&self, backend: &str) -> &[String] {
        if backend == "SQLite" {
            &self.anonymous
        } else {
            &self.numbered
        }
    }

    /// Insert every row, `bind` adding one row's values to a statement in column order; all
    /// rows or none (the chunks share a transaction when there is more than one).
    pub(crate) async fn write<'q, R>(
        &'q self,
        conn: &mut AnyConnection,
        rows: &'q [R],
        bind: impl Fn(Insert<'q>, &'q R) -> Insert<'q>,
    ) -> Result<(), sqlx::Error> {
        let statements = self.statements(conn.backend_name());
        let statement = |start: usize, len: usize| {
            let sql = &statements[len.trailing_zeros() as usize];
            rows[start..start + len]
                .iter()
                .fold(sqlx::query(sql), &bind)
        };
        match self.chunks(rows.len())[..] {
            [] => Ok(()),
            [(start, len)] => statement(start, len).execute(conn).await.map(drop),
            ref chunks => {
                let mut tx = conn.begin().await?;
                for &(start, len) in chunks {
                    statement(start, len).execute(&mut *tx).await?;
                }
                tx.commit().await
            }
        }
    }
}

/// The one connection the record writers (lookup records, the audit log) write through, in
/// turns. Two connections writing into one SQLite file contend for its write lock, and
/// SQLite's busy handler waits for it in sleeps of a millisecond and more, which a lookup
/// waiting for its record would feel; taking turns on one connection waits only as long as
/// the other writer's statement, and the records that queue meanwhile make the next batch.
#[derive(Debug, Clone)]
pub(crate) struct RecordsConnection(Arc<tokio::sync::Mutex<HeldConnection>>);

impl RecordsConnection {
    /// A connection from `pool`, taken at the first write.
    pub(crate) fn new(pool: AnyPool) -> RecordsConnection {
        RecordsConnection(Arc::new(tokio::sync::Mutex::new(HeldConnection::new(pool))))
    }

    /// The writer's turn: the connection is its own until the guard is dropped.
    pub(crate) async fn turn(&self) -> tokio::sync::MutexGuard<'_, HeldConnection> {
        self.0.lock().await
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
    pub(crate) fn new(pool: AnyPool) -> HeldConnection {
        HeldConnection { pool, held: None }
    }

    /// Run `write` on the held connection, taking one from the pool first if none is held. A
    /// connection that failed is given back, so the next write starts on a fresh one.
    pub(crate) async fn write<T>(
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

    #[test]
    fn batches_are_cut_into_power_of_two_chunks() {
        let insert = BatchInsert::new("t", &["a", "b"], 100);
        assert_eq!(insert.max_rows(), 64);
        assert_eq!(insert.chunks(0), vec![]);
        assert_eq!(insert.chunks(1), vec![(0, 1)]);
        assert_eq!(insert.chunks(13), vec![(0, 8), (8, 4), (12, 1)]);
        assert_eq!(insert.chunks(130), vec![(0, 64), (64, 64), (128, 2)]);
        for rows in 0..300 {
            let chunks = insert.chunks(rows);
            assert_eq!(chunks.iter().map(|c| c.1).sum::<usize>(), rows);
            assert!(chunks.iter().all(|c| c.1.is_power_of_two()));
        }
    }

    #[test]
    fn each_chunk_size_has_its_statement() {
        let insert = BatchInsert::new("t", &["a", "b"], 4);
        let (postgres, sqlite) = (insert.statements("PostgreSQL"), insert.statements("SQLite"));
        assert_eq!(postgres[0], "INSERT INTO t (a, b) VALUES ($1, $2)");
        assert_eq!(
            postgres[2],
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4), ($5, $6), ($7, $8)"
        );
        assert_eq!(sqlite[1], "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)");
    }

    #[tokio::test]
    async fn a_chunked_batch_writes_every_row_on_sqlite() {
        sqlx::any::install_default_drivers();
        // One connection: each in-memory SQLite connection is a database of its own.
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (a INTEGER, b TEXT)")
            .execute(&pool)
            .await
            .unwrap();
        let insert = BatchInsert::new("t", &["a", "b"], 16);
        let rows: Vec<(i64, String)> = (0..45).map(|n| (n, format!("row {n}"))).collect();
        let mut conn = HeldConnection::new(pool.clone());
        for batch in [&rows[..1], &rows[1..]] {
            conn.write(async |c| {
                insert
                    .write(c, batch, |q, (a, b)| q.bind(*a).bind(b.as_str()))
                    .await
            })
            .await
            .unwrap();
        }
        drop(conn);
        let stored: Vec<(i64, String)> = sqlx::query_as("SELECT a, b FROM t ORDER BY a")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(stored, rows);
    }
}
