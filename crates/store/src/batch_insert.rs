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
//!
//! A SQLite file's records are written in the process, on the records connection
//! ([`crate::records`]): there a statement costs no round trip, so a batch is one prepared
//! single-row statement run once per row, in one transaction.
//!
//! A table's rows give their values as [`Param`]s, one per column, which both ways bind.
//!
//! A row may be written again with some of its columns changed (a lookup's record, first
//! written while its department is asked and again with its outcome): such a table's
//! statements end in an upsert, `ON CONFLICT (key) DO UPDATE`, which SQLite and PostgreSQL
//! spell alike ([`BatchInsert::updating`]). One statement may not name the same key twice on
//! PostgreSQL: its writer keeps the last of a row's versions in a batch.

use sqlx::any::{Any, AnyArguments};
use sqlx::query::Query;
use sqlx::{AnyConnection, Connection as _};

/// One bound statement of a chunk.
type Insert<'q> = Query<'q, Any, AnyArguments<'q>>;

/// One column's value in a record row.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param<'a> {
    /// An integer (times, sequence numbers).
    Int(i64),
    /// Text, or `NULL`.
    Text(Option<&'a str>),
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match *self {
            Param::Int(n) => ToSqlOutput::Borrowed(ValueRef::Integer(n)),
            Param::Text(Some(text)) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Param::Text(None) => ToSqlOutput::Borrowed(ValueRef::Null),
        })
    }
}

/// How a table's row gives its values, in column order.
pub(crate) type Values<R, const N: usize> = for<'a> fn(&'a R) -> [Param<'a>; N];

/// The statements of one table's multi-row `INSERT`, by chunk size.
#[derive(Debug)]
pub(crate) struct BatchInsert {
    /// `numbered[i]` inserts `2^i` rows, its placeholders `$1, $2, …` (PostgreSQL's).
    numbered: Vec<String>,
    /// The same with anonymous placeholders `?` (SQLite's): SQLite binds them in order, where
    /// binding a `$n` makes sqlx ask SQLite its name, which SQLite finds by walking the
    /// statement's list of names: for a chunk of hundreds of values, quadratic work per batch.
    anonymous: Vec<String>,
    /// One row's statement, for a SQLite file's records connection.
    single: String,
}

impl BatchInsert {
    /// Statements for `table` (its `columns`, in the order rows bind them), for chunks of up
    /// to `max_rows` rows (rounded down to a power of two).
    pub(crate) fn new(table: &str, columns: &[&str], max_rows: usize) -> BatchInsert {
        Self::with_conflict(table, columns, max_rows, "")
    }

    /// The same, a row already stored under `key` taking the new values of `changed`.
    pub(crate) fn updating(
        table: &str,
        columns: &[&str],
        max_rows: usize,
        key: &str,
        changed: &[&str],
    ) -> BatchInsert {
        let set = changed
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let conflict = format!(" ON CONFLICT ({key}) DO UPDATE SET {set}");
        Self::with_conflict(table, columns, max_rows, &conflict)
    }

    fn with_conflict(
        table: &str,
        columns: &[&str],
        max_rows: usize,
        conflict: &str,
    ) -> BatchInsert {
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
                        "INSERT INTO {table} ({}) VALUES {values}{conflict}",
                        columns.join(", ")
                    )
                })
                .collect()
        };
        let anonymous: Vec<String> = statements(&|_| "?".to_string());
        BatchInsert {
            numbered: statements(&|n| format!("${n}")),
            single: anonymous[0].clone(),
            anonymous,
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

    /// Insert every row through sqlx, all or none (the chunks share a transaction when there
    /// is more than one).
    pub(crate) async fn write<R, const N: usize>(
        &self,
        conn: &mut AnyConnection,
        rows: &[R],
        values: Values<R, N>,
    ) -> Result<(), sqlx::Error> {
        let statements = self.statements(conn.backend_name());
        let statement = |start: usize, len: usize| {
            let sql = &statements[len.trailing_zeros() as usize];
            rows[start..start + len]
                .iter()
                .flat_map(values)
                .fold(sqlx::query(sql), bind)
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

    /// Insert every row on a SQLite connection of the process's own, in one transaction that
    /// takes the write lock at once (waiting out a case's commit in the busy timeout).
    ///
    /// `BEGIN` and `COMMIT` come from the connection's statement cache like the insert: a
    /// rusqlite `Transaction` has SQLite parse both anew for every batch, which for a lookup
    /// alone was a tenth of its record's cost (BENCHMARKS.md, "The transaction's statements
    /// cached").
    pub(crate) fn write_sqlite<R, const N: usize>(
        &self,
        conn: &mut rusqlite::Connection,
        rows: &[R],
        values: Values<R, N>,
    ) -> rusqlite::Result<()> {
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        let written = (|| {
            let mut insert = conn.prepare_cached(&self.single)?;
            for row in rows {
                insert.execute(rusqlite::params_from_iter(values(row)))?;
            }
            conn.prepare_cached("COMMIT")?.execute([]).map(drop)
        })();
        // All or none: a failed batch leaves no transaction open on the shared connection.
        if written.is_err() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        written
    }
}

/// One value added to a sqlx statement.
fn bind<'q>(query: Insert<'q>, value: Param<'q>) -> Insert<'q> {
    match value {
        Param::Int(n) => query.bind(n),
        Param::Text(text) => query.bind(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values((a, b): &(i64, String)) -> [Param<'_>; 2] {
        [Param::Int(*a), Param::Text(Some(b))]
    }

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

    /// The rows of table `t`, in order.
    fn stored(conn: &rusqlite::Connection) -> Vec<(i64, String)> {
        conn.prepare("SELECT a, b FROM t ORDER BY a")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn an_updating_insert_ends_in_an_upsert() {
        let insert = BatchInsert::updating("t", &["a", "b"], 2, "a", &["b"]);
        assert_eq!(
            insert.statements("PostgreSQL")[1],
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT (a) DO UPDATE SET b = excluded.b"
        );
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)", [])
            .unwrap();
        insert
            .write_sqlite(&mut conn, &[(1, "pending".to_string())], values)
            .unwrap();
        insert
            .write_sqlite(
                &mut conn,
                &[(1, "ok".to_string()), (2, "new".into())],
                values,
            )
            .unwrap();
        let stored = stored(&conn);
        assert_eq!(stored, vec![(1, "ok".to_string()), (2, "new".to_string())]);
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
        let mut conn = pool.acquire().await.unwrap();
        for batch in [&rows[..1], &rows[1..]] {
            insert.write(&mut conn, batch, values).await.unwrap();
        }
        drop(conn);
        let stored: Vec<(i64, String)> = sqlx::query_as("SELECT a, b FROM t ORDER BY a")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(stored, rows);
    }

    #[test]
    fn a_batch_writes_every_row_on_the_records_threads_connection() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute("CREATE TABLE t (a INTEGER, b TEXT)", [])
            .unwrap();
        let insert = BatchInsert::new("t", &["a", "b"], 16);
        let rows: Vec<(i64, String)> = (0..45).map(|n| (n, format!("row {n}"))).collect();
        insert.write_sqlite(&mut conn, &rows, values).unwrap();
        let stored = stored(&conn);
        assert_eq!(stored, rows);
        // A NULL is a NULL, not text.
        let nulls = BatchInsert::new("t", &["a", "b"], 1);
        nulls
            .write_sqlite(&mut conn, &[7i64], |a| [Param::Int(*a), Param::Text(None)])
            .unwrap();
        let null: Option<String> = conn
            .query_row("SELECT b FROM t WHERE a = 7 AND b IS NULL", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(null, None);
    }

    #[test]
    fn a_failed_batch_writes_nothing_and_leaves_no_transaction_open() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)", [])
            .unwrap();
        let insert = BatchInsert::new("t", &["a", "b"], 16);
        let clash = [
            (1, "one".to_string()),
            (2, "two".into()),
            (1, "again".into()),
        ];
        assert!(insert.write_sqlite(&mut conn, &clash, values).is_err());
        assert!(
            conn.is_autocommit(),
            "the failed batch's transaction is rolled back"
        );
        let count = |conn: &rusqlite::Connection| -> i64 {
            conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(count(&conn), 0, "none of the failed batch's rows is kept");
        // The cached statements serve the next batch.
        for _ in 0..2 {
            let next = [(count(&conn) + 10, "next".to_string())];
            insert.write_sqlite(&mut conn, &next, values).unwrap();
        }
        assert_eq!(count(&conn), 2);
    }
}
