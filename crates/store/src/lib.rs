//! The gateway's store: every table and every query, in SQLite or PostgreSQL.
//!
//! One code path for SQLite (embedded default, WAL) and PostgreSQL (several nodes), through
//! sqlx's `Any` driver: portable SQL only, timestamps as Unix milliseconds, JSON as text.
//! A case and all its steps are written in one transaction before the API answers.
//! With `[store.encryption]`, application payloads (form, lookups' answers, step inputs,
//! held callbacks) are sealed before they are written ([`at_rest`]).
//!
//! The schema is one versioned set of migrations (`migrations/`, embedded with
//! `sqlx::migrate!`), run once when the store is opened; a store made before migrations were
//! versioned is brought to its first version first ([`Store::open`]).
//!
//! # Layout
//! - [`actions`]: the lifecycle after delivery — 补正 (what a department asks, the paused
//!   clock, a supplement stored), 撤回 (a case withdrawn), and the outbox of supplements and
//!   withdrawals to deliver (claims, retries, one idempotency key).
//! - [`cases`]: cases, their steps (one per matter), the events of their timeline.
//! - `deliveries`: the delivery queue over the steps: due steps and polls, claims, retries,
//!   dead letters, callbacks held for later.
//! - [`evaluations`]: 好差评 evaluations, the rectifications bad ones open, the outbox of
//!   reports to the national evaluation system, the summary statistics are built from.
//! - [`lookups`]: the record of every portal lookup (who, why, for which case or clerk).
//! - [`licences`]: electronic licences issued by approved steps.
//! - [`materials`]: application materials: files stored once by SM3 in sealed chunks, drafts
//!   and their uploads, each case's materials, their retention.
//! - [`notifications`]: the notification outbox (written with the event or light change that
//!   causes it, claimed, retried, receipts), each case's contact (phone sealed, opt-out).
//! - [`supervision`]: 电子监察: each step's light changes once (red cards), the rows the
//!   supervision statistics are computed from.
//! - [`sessions`]: sessions of the hall's screens, by the SHA-256 of their id.
//! - [`verifications`]: the audit chains' verifications run from the operators' console.
//! - [`registry`]: adapter versions, each department's route, the history of changes.
//! - [`audit`]: the audit log: entries, the per-node hash chain, its writer and verifier.
//! - [`at_rest`]: SM4-GCM / AES-256-GCM sealing of stored payloads, key rotation; keyed
//!   digests (HMAC-SM3) a sealed value is found by (a phone number's 退订).
//! - `records`, `batch_insert`, `lookup_writer`: records written in batches (group commit) on
//!   one connection in turns: a SQLite file's the process's own (a lookup's record written on
//!   the runtime's thread when nothing stands in the way, else on the records thread), another
//!   store's held out of its pool.

#![warn(missing_docs, unreachable_pub)]

pub mod actions;
pub mod at_rest;
pub mod audit;
pub(crate) mod batch_insert;
pub mod cases;
mod deliveries;
pub mod evaluations;
pub mod licences;
mod lookup_writer;
pub mod lookups;
pub mod materials;
pub mod notifications;
pub mod received;
pub(crate) mod records;
pub mod registry;
pub mod sessions;
pub mod status_links;
pub mod supervision;
pub mod verifications;

pub use cases::{Arrival, CaseRecord, EventRecord, NewStep, OpenStep, StepChange, StepRecord};
pub use lookup_writer::LookupRecording;
pub use lookups::{LookupRecord, LookupServes};

use crate::at_rest::PayloadCipher;
use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, install_default_drivers};

/// Storage failure: the gateway's fault, never the caller's.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("store: {0}")]
    Database(#[from] sqlx::Error),
    /// A SQLite file's records connection failed (the `records` module).
    #[error("store: records: {0}")]
    Records(#[from] rusqlite::Error),
    /// The schema could not be brought to this version.
    #[error("store: migrating the schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value no version of the gateway writes (an unknown step state, say).
    #[error("store: {0}")]
    Corrupt(String),
    /// A row a write depends on is gone: the draft an application names was consumed by
    /// another or expired meanwhile (the caller's to judge, not a failure of the store).
    #[error("store: {what} `{id}` is gone")]
    Gone {
        /// What: `draft`.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// A sealed payload does not open (a key is missing, or the value was altered).
    #[error("store: {place}: {error}")]
    Sealed {
        /// Where the value is (`cases.form:<case id>` …).
        place: String,
        /// Why it does not open.
        error: crate::at_rest::OpenError,
    },
}

type Result<T> = std::result::Result<T, StoreError>;

/// The case store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    log_pool: AnyPool,
    cipher: Option<std::sync::Arc<PayloadCipher>>,
    /// Whether the store is SQLite: its write transactions begin `IMMEDIATE` ([`Store::begin_write`]).
    sqlite: bool,
    /// The connection lookup records and the audit log write through, in turns.
    records: records::RecordsConnection,
    lookups: lookup_writer::LookupWriter,
}

/// When a commit returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// Once it is on disk (SQLite `synchronous=FULL`; PostgreSQL's default): cases, steps,
    /// events — what the API promises with a `202`.
    Full,
    /// Once the database has it, its flush to disk following shortly (SQLite WAL with
    /// `synchronous=NORMAL`; PostgreSQL `synchronous_commit = off`): it survives the gateway
    /// being killed, and a power cut can cost only the last moments' records.
    Deferred,
}

/// A pool on `url` whose commits are as durable as `durability` says.
async fn connect(url: &str, durability: Durability, max: u32) -> Result<AnyPool> {
    let sqlite = url.starts_with("sqlite:");
    let pool = AnyPoolOptions::new()
        .max_connections(max)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if sqlite {
                    // WAL lets readers run beside the writer; the busy timeout queues writers
                    // instead of failing them.
                    sqlx::query("PRAGMA journal_mode=WAL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA busy_timeout=5000")
                        .execute(&mut *conn)
                        .await?;
                    let sync = match durability {
                        Durability::Full => "PRAGMA synchronous=FULL",
                        Durability::Deferred => "PRAGMA synchronous=NORMAL",
                    };
                    sqlx::query(sync).execute(&mut *conn).await?;
                    sqlx::query("PRAGMA foreign_keys=ON")
                        .execute(&mut *conn)
                        .await?;
                } else if durability == Durability::Deferred {
                    sqlx::query("SET synchronous_commit = off")
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await?;
    Ok(pool)
}

/// The file of a `sqlite:` URL; `None` for another database or SQLite in memory.
fn sqlite_file(url: &str) -> Result<Option<std::path::PathBuf>> {
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
        return Ok(None);
    }
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse()?;
    Ok(Some(options.get_filename().to_path_buf()))
}

/// The schema's versions, embedded in the binary.
static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!();

/// Bring the schema to this version: a store from before versioned migrations gets the
/// columns added after its first release, then every migration not yet applied runs (each
/// once, recorded in `_sqlx_migrations`; PostgreSQL nodes starting together take turns).
async fn migrate(pool: &AnyPool) -> Result<()> {
    let versioned = sqlx::query("SELECT version FROM _sqlx_migrations WHERE 1 = 0")
        .fetch_all(pool)
        .await
        .is_ok();
    let present = |table: &str, column: &str| {
        let sql = format!("SELECT {column} FROM {table} WHERE 1 = 0");
        async move { sqlx::query(&sql).fetch_all(pool).await.is_ok() }
    };
    if !versioned && present("cases", "id").await {
        for (table, column) in [("cases", "client"), ("steps", "input_codes")] {
            if !present(table, column).await {
                sqlx::query(&format!("ALTER TABLE {table} ADD COLUMN {column} TEXT"))
                    .execute(pool)
                    .await?;
            }
        }
    }
    MIGRATIONS.run(pool).await?;
    Ok(())
}

impl Store {
    /// Open (and create) the store at a `sqlite:` or `postgres://` URL.
    pub async fn open(url: &str) -> Result<Self> {
        install_default_drivers();
        let url = if url.starts_with("sqlite:") && !url.contains('?') && !url.contains(":memory:") {
            format!("{url}?mode=rwc")
        } else {
            url.to_string()
        };
        let sqlite = url.starts_with("sqlite:");
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .and_then(|p| p.split('?').next())
            && let Some(dir) = std::path::Path::new(path).parent()
            && !dir.as_os_str().is_empty()
        {
            let _ = std::fs::create_dir_all(dir);
        }
        let pool = connect(&url, Durability::Full, if sqlite { 4 } else { 16 }).await?;
        migrate(&pool).await?;
        // Records of what happened (lookups, the audit log) go through their own connections,
        // which commit without waiting for the disk; see [`Store::log_pool`].
        let log_pool = if url.contains(":memory:") {
            pool.clone()
        } else {
            connect(&url, Durability::Deferred, 2).await?
        };
        let records = match sqlite_file(&url)? {
            Some(path) => records::RecordsConnection::sqlite(&path).await?,
            None => records::RecordsConnection::held(log_pool.clone()),
        };
        Ok(Store {
            lookups: lookup_writer::LookupWriter::start(records.clone()),
            records,
            pool,
            log_pool,
            cipher: None,
            sqlite,
        })
    }

    /// Seal application payloads with these keys from now on (and open what they sealed).
    pub fn with_cipher(mut self, cipher: Option<std::sync::Arc<PayloadCipher>>) -> Self {
        self.cipher = cipher;
        self
    }

    /// A payload as it is written for `place`: sealed when encryption is configured.
    /// Begin a transaction that writes. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and writes after is refused
    /// (`SQLITE_BUSY_SNAPSHOT`, which the busy timeout does not wait out) when another
    /// connection wrote in between, whereas an immediate one waits its turn. PostgreSQL
    /// transactions begin as usual.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(if self.sqlite {
            self.pool.begin_with("BEGIN IMMEDIATE").await?
        } else {
            self.pool.begin().await?
        })
    }

    pub(crate) fn seal(&self, place: &str, plain: String) -> String {
        match &self.cipher {
            Some(cipher) => cipher.seal(place, &plain),
            None => plain,
        }
    }

    /// A stored payload as text again; plain values (written before encryption) pass.
    pub(crate) fn unseal(&self, place: &str, stored: String) -> Result<String> {
        PayloadCipher::open(self.cipher.as_deref(), place, stored).map_err(|error| {
            StoreError::Sealed {
                place: place.to_string(),
                error,
            }
        })
    }

    /// A stored JSON payload.
    pub(crate) fn open_json(&self, place: &str, stored: String) -> Result<serde_json::Value> {
        Ok(serde_json::from_str(&self.unseal(place, stored)?).unwrap_or_default())
    }

    /// The connection pool of cases, steps and events.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The pool for records of what happened — lookup records, the audit log — whose commits
    /// do not wait for the disk (SQLite `synchronous=NORMAL`, PostgreSQL `synchronous_commit =
    /// off`): many are written per request, and an fsync each would cap the gateway's
    /// throughput at the disk's. The audit chain shows what a power cut cut off (records after
    /// the last seal); a case is never among them.
    pub fn log_pool(&self) -> &AnyPool {
        &self.log_pool
    }

    /// The one connection of [`Self::log_pool`] that record writers write through, in turns.
    pub(crate) fn records_connection(&self) -> records::RecordsConnection {
        self.records.clone()
    }

    /// True when the store answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}
