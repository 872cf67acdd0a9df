//! Case storage: cases, their steps (one per matter), and the events of their timeline.
//!
//! One code path for SQLite (embedded default, WAL) and PostgreSQL (several nodes), through
//! sqlx's `Any` driver: portable SQL only, timestamps as Unix milliseconds, JSON as text.
//! A case and all its steps are written in one transaction before the API answers.
//! With `[store.encryption]`, application payloads (form, lookups' answers, step inputs,
//! held callbacks) are sealed before they are written ([`crate::at_rest`]).

use serde::Serialize;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

use crate::at_rest::PayloadCipher;
pub use gateway_base::model::{Clerk, StepState};
pub use gateway_base::time::now_ms;

pub(crate) mod batch_insert;
mod lookup_writer;

/// Storage failure: the gateway's fault, never the caller's.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("store: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored value no version of the gateway writes (an unknown step state, say).
    #[error("store: {0}")]
    Corrupt(String),
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

/// A stored case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseRecord {
    /// Case id.
    pub id: String,
    /// Service code the application was made for.
    pub service: String,
    /// The application form as submitted.
    pub form: serde_json::Value,
    /// Lookup answers gathered at acceptance, by lookup id.
    pub lookups: serde_json::Value,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The portal client that created it (only it may read it, unless allowed all cases).
    pub client: Option<String>,
}

/// A stored step.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    /// Case id.
    pub case_id: String,
    /// Step id within the case.
    pub step: String,
    /// Matter code.
    pub matter: String,
    /// Department id.
    pub department: String,
    /// Current state.
    pub state: StepState,
    /// The department's reference, once it has one.
    pub reference: Option<String>,
    /// Outputs the department produced (JSON object).
    pub outputs: serde_json::Value,
    /// Latest message from the department or the gateway.
    pub message: Option<String>,
    /// The matter's input (JSON object) as sent to the department.
    #[serde(skip)]
    pub input: String,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// Stable key the department sees on every attempt.
    #[serde(skip)]
    pub idempotency_key: String,
    /// Unix milliseconds of the last change.
    pub updated_at: i64,
}

/// One event of a case's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct EventRecord {
    /// Event id (time-ordered).
    pub id: String,
    /// Unix milliseconds.
    pub at: i64,
    /// The clerk who acted, when a person did (received at the window, replayed by an operator).
    pub clerk: Option<Clerk>,
    /// Step id, when the event concerns one step.
    pub step: Option<String>,
    /// Department id, when it concerns one department.
    pub department: Option<String>,
    /// What happened: `received`, `submitted`, `status`, `callback`, `delivery_failed` ….
    pub kind: String,
    /// The step state after the event, if it changed one.
    pub state: Option<String>,
    /// Human-readable detail.
    pub message: Option<String>,
}

/// How an application was admitted: its idempotency key, the digest of what was sent, the clerk.
#[derive(Debug, Clone, Default)]
pub struct Admission {
    /// The portal's `Idempotency-Key`, if it sent one.
    pub idempotency_key: Option<String>,
    /// SHA-256 of the request body, to tell a true repeat from a reused key.
    pub request_digest: String,
    /// The clerk at the window.
    pub clerk: Option<Clerk>,
    /// The portal client that applied: the case's owner.
    pub client: Option<String>,
}

/// What a lookup serves: why, and the case or the clerk.
#[derive(Debug, Clone)]
pub struct LookupServes {
    /// Why the data is looked up.
    pub purpose: String,
    /// The case it serves.
    pub case_id: Option<String>,
    /// The clerk it serves.
    pub clerk: Option<Clerk>,
}

/// A recorded lookup.
#[derive(Debug, Clone, Serialize)]
pub struct LookupRecord {
    /// Unix ms.
    pub at: i64,
    /// The portal client that asked.
    pub client: String,
    /// The lookup.
    pub lookup: String,
    /// Why.
    pub purpose: String,
    /// The case it served.
    pub case_id: Option<String>,
    /// The clerk it served.
    pub clerk: Option<serde_json::Value>,
    /// `ok` or the error kind.
    pub outcome: String,
}

/// A new step to store with its case.
#[derive(Debug, Clone)]
pub struct NewStep {
    /// Step id.
    pub step: String,
    /// Matter code.
    pub matter: String,
    /// Department id.
    pub department: String,
    /// Steps this one waits for; it starts `waiting` when there are any.
    pub after: Vec<String>,
    /// The matter's input JSON (`{}` until a waiting step is released).
    pub input: String,
}

/// The case store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    log_pool: AnyPool,
    cipher: Option<std::sync::Arc<PayloadCipher>>,
    /// The connection lookup records and the audit log write through, in turns.
    records: batch_insert::RecordsConnection,
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

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS cases (
        id TEXT PRIMARY KEY,
        service TEXT NOT NULL,
        form TEXT NOT NULL,
        lookups TEXT NOT NULL,
        idempotency_key TEXT,
        request_digest TEXT,
        created_at BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS steps (
        case_id TEXT NOT NULL REFERENCES cases(id),
        step TEXT NOT NULL,
        matter TEXT NOT NULL,
        department TEXT NOT NULL,
        state TEXT NOT NULL,
        reference TEXT,
        outputs TEXT NOT NULL,
        message TEXT,
        input TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        idempotency_key TEXT NOT NULL,
        next_attempt_at BIGINT NOT NULL,
        next_poll_at BIGINT NOT NULL,
        claimed_by TEXT,
        claim_until BIGINT,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (case_id, step)
    )",
    "CREATE INDEX IF NOT EXISTS steps_by_reference ON steps (department, reference)",
    "CREATE INDEX IF NOT EXISTS steps_by_state ON steps (state, next_attempt_at)",
    "CREATE TABLE IF NOT EXISTS events (
        id TEXT PRIMARY KEY,
        case_id TEXT NOT NULL REFERENCES cases(id),
        at BIGINT NOT NULL,
        step TEXT,
        department TEXT,
        kind TEXT NOT NULL,
        clerk TEXT,
        state TEXT,
        message TEXT
    )",
    "CREATE INDEX IF NOT EXISTS events_by_case ON events (case_id, id)",
    // A department may call back before its answer to the submission reached the gateway.
    "CREATE TABLE IF NOT EXISTS early_callbacks (
        department TEXT NOT NULL,
        reference TEXT NOT NULL,
        report TEXT NOT NULL,
        received_at BIGINT NOT NULL,
        PRIMARY KEY (department, reference)
    )",
    // Every portal lookup: who asked, why, for which case or clerk, and how it ended.
    "CREATE TABLE IF NOT EXISTS lookup_records (
        id TEXT PRIMARY KEY,
        at BIGINT NOT NULL,
        client TEXT NOT NULL,
        lookup TEXT NOT NULL,
        purpose TEXT NOT NULL,
        case_id TEXT,
        clerk TEXT,
        outcome TEXT NOT NULL
    )",
    // A repeated POST with the same Idempotency-Key finds the first case; NULLs do not collide.
    "CREATE UNIQUE INDEX IF NOT EXISTS cases_by_idempotency_key ON cases (idempotency_key)",
];

const STEP_COLUMNS: &str = "case_id, step, matter, department, state, reference, outputs, message, input, attempts, idempotency_key, updated_at";

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
        for statement in SCHEMA {
            sqlx::query(statement).execute(&pool).await?;
        }
        // Columns added after the first release: added to older stores, once.
        for (table, column) in [("cases", "client TEXT"), ("steps", "input_codes TEXT")] {
            let name = column.split(' ').next().unwrap_or_default();
            let present = sqlx::query(&format!("SELECT {name} FROM {table} WHERE 1 = 0"))
                .fetch_all(&pool)
                .await
                .is_ok();
            if !present {
                sqlx::query(&format!("ALTER TABLE {table} ADD COLUMN {column}"))
                    .execute(&pool)
                    .await?;
            }
        }
        // Records of what happened (lookups, the audit log) go through their own connections,
        // which commit without waiting for the disk; see [`Store::log_pool`].
        let log_pool = if url.contains(":memory:") {
            pool.clone()
        } else {
            connect(&url, Durability::Deferred, 2).await?
        };
        let records = batch_insert::RecordsConnection::new(log_pool.clone());
        Ok(Store {
            lookups: lookup_writer::LookupWriter::start(records.clone()),
            records,
            pool,
            log_pool,
            cipher: None,
        })
    }

    /// Seal application payloads with these keys from now on (and open what they sealed).
    pub fn with_cipher(mut self, cipher: Option<std::sync::Arc<PayloadCipher>>) -> Self {
        self.cipher = cipher;
        self
    }

    /// A payload as it is written for `place`: sealed when encryption is configured.
    fn seal(&self, place: &str, plain: String) -> String {
        match &self.cipher {
            Some(cipher) => cipher.seal(place, &plain),
            None => plain,
        }
    }

    /// A stored payload as text again; plain values (written before encryption) pass.
    fn unseal(&self, place: &str, stored: String) -> Result<String> {
        PayloadCipher::open(self.cipher.as_deref(), place, stored).map_err(|error| {
            StoreError::Sealed {
                place: place.to_string(),
                error,
            }
        })
    }

    /// A stored JSON payload.
    fn open_json(&self, place: &str, stored: String) -> Result<serde_json::Value> {
        Ok(serde_json::from_str(&self.unseal(place, stored)?).unwrap_or_default())
    }

    /// Store a new case with its steps and its first event, in one transaction.
    pub async fn create_case(
        &self,
        id: &str,
        service: &str,
        form: &serde_json::Value,
        lookups: &serde_json::Value,
        steps: &[NewStep],
        admission: &Admission,
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO cases (id, service, form, lookups, idempotency_key, request_digest, created_at, client)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(service)
        .bind(self.seal(&format!("cases.form:{id}"), form.to_string()))
        .bind(self.seal(&format!("cases.lookups:{id}"), lookups.to_string()))
        .bind(admission.idempotency_key.as_deref())
        .bind(admission.request_digest.as_str())
        .bind(now)
        .bind(admission.client.as_deref())
            .execute(&mut *tx)
            .await?;
        for step in steps {
            sqlx::query(
                "INSERT INTO steps (case_id, step, matter, department, state, reference, outputs, message, input, input_codes, attempts, idempotency_key, next_attempt_at, next_poll_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, NULL, '{}', NULL, $6, $7, 0, $8, $9, $10, $11)",
            )
            .bind(id)
            .bind(&step.step)
            .bind(&step.matter)
            .bind(&step.department)
            .bind(if step.after.is_empty() { "pending" } else { "waiting" })
            .bind(self.seal(&input_place(id, &step.step), step.input.clone()))
            .bind(credit_codes(&step.input))
            .bind(format!("{id}:{}", step.step))
            .bind(now)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let event = Event {
            step: None,
            department: None,
            kind: "received",
            state: None,
            message: Some(&format!("application for {service} received")),
        };
        insert_event(&mut tx, id, now, &event, admission.clerk.as_ref()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A case, if it exists.
    pub async fn case(&self, id: &str) -> Result<Option<CaseRecord>> {
        let row = sqlx::query(
            "SELECT id, service, form, lookups, created_at, client FROM cases WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(CaseRecord {
            form: self.open_json(&format!("cases.form:{id}"), r.get("form"))?,
            lookups: self.open_json(&format!("cases.lookups:{id}"), r.get("lookups"))?,
            id: r.get("id"),
            service: r.get("service"),
            created_at: r.get("created_at"),
            client: r.get("client"),
        }))
    }

    /// The steps of a case, in step order.
    pub async fn steps(&self, case_id: &str) -> Result<Vec<StepRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {STEP_COLUMNS} FROM steps WHERE case_id = $1 ORDER BY step"
        ))
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| self.step_from_row(r)).collect()
    }

    /// The timeline of a case, oldest first.
    pub async fn events(&self, case_id: &str) -> Result<Vec<EventRecord>> {
        let rows = sqlx::query("SELECT id, at, step, department, kind, state, message, clerk FROM events WHERE case_id = $1 ORDER BY id")
            .bind(case_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| EventRecord {
                id: r.get("id"),
                clerk: r
                    .get::<Option<String>, _>("clerk")
                    .and_then(|c| serde_json::from_str(&c).ok()),
                at: r.get("at"),
                step: r.get("step"),
                department: r.get("department"),
                kind: r.get("kind"),
                state: r.get("state"),
                message: r.get("message"),
            })
            .collect())
    }

    /// Steps waiting for delivery whose next attempt is due.
    pub async fn due_deliveries(&self, limit: i64) -> Result<Vec<StepRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {STEP_COLUMNS} FROM steps WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2"
        ))
        .bind(now_ms())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| self.step_from_row(r)).collect()
    }

    /// Steps at a department whose status poll is due.
    pub async fn due_polls(&self, limit: i64) -> Result<Vec<StepRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {STEP_COLUMNS} FROM steps WHERE state IN ('accepted', 'processing') AND next_poll_at <= $1 ORDER BY next_poll_at LIMIT $2"
        ))
        .bind(now_ms())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| self.step_from_row(r)).collect()
    }

    /// The step a department's reference belongs to.
    pub async fn step_by_reference(
        &self,
        department: &str,
        reference: &str,
    ) -> Result<Option<StepRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {STEP_COLUMNS} FROM steps WHERE department = $1 AND reference = $2"
        ))
        .bind(department)
        .bind(reference)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(|r| self.step_from_row(r)).transpose()
    }

    /// Record a step's new state (and reference, outputs, message) with its event, atomically.
    /// `next_poll_at` schedules the next status poll for steps still at the department.
    #[allow(
        clippy::too_many_arguments,
        reason = "one row update, named at the call site"
    )]
    pub async fn update_step(
        &self,
        step: &StepRecord,
        state: StepState,
        reference: Option<&str>,
        outputs: Option<&str>,
        message: Option<&str>,
        kind: &str,
        next_poll_at: i64,
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE steps SET state = $1, reference = COALESCE($2, reference), outputs = COALESCE($3, outputs),
             message = $4, next_poll_at = $5, updated_at = $6, claimed_by = NULL, claim_until = NULL
             WHERE case_id = $7 AND step = $8",
        )
        .bind(state.as_str())
        .bind(reference)
        .bind(outputs)
        .bind(message)
        .bind(next_poll_at)
        .bind(now)
        .bind(&step.case_id)
        .bind(&step.step)
        .execute(&mut *tx)
        .await?;
        let event = Event {
            step: Some(&step.step),
            department: Some(&step.department),
            kind,
            state: Some(state.as_str()),
            message,
        };
        insert_event(&mut tx, &step.case_id, now, &event, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Record a failed delivery attempt and when to try again.
    pub async fn retry_later(
        &self,
        step: &StepRecord,
        message: &str,
        next_attempt_at: i64,
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE steps SET attempts = attempts + 1, message = $1, next_attempt_at = $2, updated_at = $3,
             claimed_by = NULL, claim_until = NULL WHERE case_id = $4 AND step = $5")
            .bind(message)
            .bind(next_attempt_at)
            .bind(now)
            .bind(&step.case_id)
            .bind(&step.step)
            .execute(&mut *tx)
            .await?;
        insert_event(
            &mut tx,
            &step.case_id,
            now,
            &Event {
                step: Some(&step.step),
                department: Some(&step.department),
                kind: "delivery_retry",
                state: None,
                message: Some(message),
            },
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Release a waiting step for delivery with its input; false if it was no longer waiting
    /// (another task released or blocked it first).
    pub async fn release_step(&self, step: &StepRecord, input: &str) -> Result<bool> {
        let message = "前置事项已办结，本事项开始办理";
        self.leave_waiting(step, StepState::Pending, Some(input), message, "ready")
            .await
    }

    /// Block a waiting step, with the reason; false if it was no longer waiting.
    pub async fn block_step(&self, step: &StepRecord, message: &str) -> Result<bool> {
        self.leave_waiting(step, StepState::Blocked, None, message, "blocked")
            .await
    }

    /// Move a step out of `waiting` with its event, only if it is still waiting.
    async fn leave_waiting(
        &self,
        step: &StepRecord,
        state: StepState,
        input: Option<&str>,
        message: &str,
        kind: &str,
    ) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE steps SET state = $1, input = COALESCE($2, input), input_codes = COALESCE($3, input_codes),
             message = $4, next_attempt_at = $5, updated_at = $6 WHERE case_id = $7 AND step = $8 AND state = 'waiting'",
        )
        .bind(state.as_str())
        .bind(input.map(|i| self.seal(&input_place(&step.case_id, &step.step), i.to_string())))
        .bind(input.map(credit_codes))
        .bind(message)
        .bind(now)
        .bind(now)
        .bind(&step.case_id)
        .bind(&step.step)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if done {
            let event = Event {
                step: Some(&step.step),
                department: Some(&step.department),
                kind,
                state: Some(state.as_str()),
                message: Some(message),
            };
            insert_event(&mut tx, &step.case_id, now, &event, None).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Push a delivery back without spending an attempt (the department's circuit is open).
    pub async fn postpone_delivery(&self, step: &StepRecord, next_attempt_at: i64) -> Result<()> {
        sqlx::query(
            "UPDATE steps SET next_attempt_at = $1, claimed_by = NULL, claim_until = NULL WHERE case_id = $2 AND step = $3",
        )
        .bind(next_attempt_at)
        .bind(&step.case_id)
        .bind(&step.step)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Release the claims a node holds: a restarted node takes back its own work at once.
    pub async fn release_claims(&self, node: &str) -> Result<u64> {
        let released = sqlx::query(
            "UPDATE steps SET claimed_by = NULL, claim_until = NULL WHERE claimed_by = $1",
        )
        .bind(node)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(released)
    }

    /// Push a step's next poll back without an event (a poll that found nothing new).
    pub async fn postpone_poll(&self, step: &StepRecord, next_poll_at: i64) -> Result<()> {
        sqlx::query("UPDATE steps SET next_poll_at = $1 WHERE case_id = $2 AND step = $3")
            .bind(next_poll_at)
            .bind(&step.case_id)
            .bind(&step.step)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Record a portal lookup (the query and answer are not kept: only who, why and how).
    pub async fn record_lookup(
        &self,
        client: &str,
        lookup: &str,
        served: &LookupServes,
        outcome: &str,
    ) -> Result<()> {
        // Group commit: concurrent lookups share one transaction; each returns once stored.
        self.lookups.record(client, lookup, served, outcome).await
    }

    /// The latest recorded lookups, newest first.
    pub async fn lookup_records(&self, limit: i64) -> Result<Vec<LookupRecord>> {
        let rows = sqlx::query(
            "SELECT at, client, lookup, purpose, case_id, clerk, outcome FROM lookup_records
             ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| LookupRecord {
                at: r.get("at"),
                client: r.get("client"),
                lookup: r.get("lookup"),
                purpose: r.get("purpose"),
                case_id: r.get("case_id"),
                clerk: r
                    .get::<Option<String>, _>("clerk")
                    .and_then(|c| serde_json::from_str(&c).ok()),
                outcome: r.get("outcome"),
            })
            .collect())
    }

    /// The case an idempotency key was first used for, with the digest of that request.
    pub async fn case_by_idempotency_key(&self, key: &str) -> Result<Option<(String, String)>> {
        let row = sqlx::query("SELECT id, request_digest FROM cases WHERE idempotency_key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| {
            (
                r.get("id"),
                r.get::<Option<String>, _>("request_digest")
                    .unwrap_or_default(),
            )
        }))
    }

    /// Claim a due delivery for this node until `until`; false when another node holds it or it
    /// is no longer pending. A node that dies holding a claim loses it when the claim expires.
    pub async fn claim_delivery(&self, step: &StepRecord, node: &str, until: i64) -> Result<bool> {
        let now = now_ms();
        let claimed = sqlx::query(
            "UPDATE steps SET claimed_by = $1, claim_until = $2
             WHERE case_id = $3 AND step = $4 AND state = 'pending' AND next_attempt_at <= $5
             AND (claim_until IS NULL OR claim_until < $6)",
        )
        .bind(node)
        .bind(until)
        .bind(&step.case_id)
        .bind(&step.step)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(claimed == 1)
    }

    /// Claim a due status poll by moving its next poll time; false when another node did first.
    pub async fn claim_poll(&self, step: &StepRecord, next_poll_at: i64) -> Result<bool> {
        let claimed = sqlx::query(
            "UPDATE steps SET next_poll_at = $1 WHERE case_id = $2 AND step = $3 AND next_poll_at <= $4
             AND state IN ('accepted', 'processing')",
        )
        .bind(next_poll_at)
        .bind(&step.case_id)
        .bind(&step.step)
        .bind(now_ms())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(claimed == 1)
    }

    /// Dead letters: steps whose delivery failed for good, newest first.
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<StepRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {STEP_COLUMNS} FROM steps WHERE state = 'failed' ORDER BY updated_at DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| self.step_from_row(r)).collect()
    }

    /// Send a dead letter again: back to pending with fresh attempts, recorded with the operator.
    /// False when the step is not a dead letter.
    pub async fn replay(&self, case_id: &str, step: &str, operator: &Clerk) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE steps SET state = 'pending', attempts = 0, next_attempt_at = $1, updated_at = $2,
             claimed_by = NULL, claim_until = NULL WHERE case_id = $3 AND step = $4 AND state = 'failed'",
        )
        .bind(now)
        .bind(now)
        .bind(case_id)
        .bind(step)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if done {
            let event = Event {
                step: Some(step),
                department: None,
                kind: "replayed",
                state: Some("pending"),
                message: Some("dead letter replayed by an operator"),
            };
            insert_event(&mut tx, case_id, now, &event, Some(operator)).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Keep a callback whose reference no step has yet (the department answered the submission
    /// more slowly than it called back); the first one for a reference is kept.
    pub async fn hold_callback(
        &self,
        department: &str,
        reference: &str,
        report: &serde_json::Value,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO early_callbacks (department, reference, report, received_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(department)
        .bind(reference)
        .bind(self.seal(
            &format!("early_callbacks.report:{department}:{reference}"),
            report.to_string(),
        ))
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Take a held callback for a reference, if one arrived early.
    pub async fn take_callback(
        &self,
        department: &str,
        reference: &str,
    ) -> Result<Option<serde_json::Value>> {
        let row = sqlx::query(
            "SELECT report FROM early_callbacks WHERE department = $1 AND reference = $2",
        )
        .bind(department)
        .bind(reference)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        sqlx::query("DELETE FROM early_callbacks WHERE department = $1 AND reference = $2")
            .bind(department)
            .bind(reference)
            .execute(&self.pool)
            .await?;
        let place = format!("early_callbacks.report:{department}:{reference}");
        Ok(serde_json::from_str(&self.unseal(&place, row.get("report"))?).ok())
    }

    /// The connection pool, for modules that keep tables of their own (deadlines, licences).
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
    pub(crate) fn records_connection(&self) -> batch_insert::RecordsConnection {
        self.records.clone()
    }

    /// True when the store answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

async fn insert_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    case_id: &str,
    at: i64,
    event: &Event<'_>,
    clerk: Option<&Clerk>,
) -> Result<()> {
    // UUIDv7 ids sort by time, so the timeline reads in order on every backend.
    sqlx::query("INSERT INTO events (id, case_id, at, step, department, kind, state, message, clerk) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(case_id)
        .bind(at)
        .bind(event.step)
        .bind(event.department)
        .bind(event.kind)
        .bind(event.state)
        .bind(event.message)
        .bind(clerk.map(|c| serde_json::to_string(c).expect("a clerk serialises")))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The fields of one timeline event.
struct Event<'a> {
    step: Option<&'a str>,
    department: Option<&'a str>,
    kind: &'a str,
    state: Option<&'a str>,
    message: Option<&'a str>,
}

/// Where a step's input is, as its sealed value's associated data.
fn input_place(case_id: &str, step: &str) -> String {
    format!("steps.input:{case_id}:{step}")
}

/// The unified social credit codes an input names, as `"code"` strings side by side: the
/// 企业码 view finds an enterprise's cases by them, also when the input itself is sealed.
/// (Credit codes are public registry identifiers, not personal data.)
fn credit_codes(input: &str) -> String {
    fn walk(value: &serde_json::Value, found: &mut Vec<String>) {
        match value {
            serde_json::Value::String(s) if sdk::ids::credit_code(s).is_ok() => {
                found.push(format!("\"{s}\""));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            serde_json::Value::Object(fields) => fields.values().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    if let Ok(value) = serde_json::from_str(input) {
        walk(&value, &mut found);
    }
    found.join(",")
}

impl Store {
    fn step_from_row(&self, r: &sqlx::any::AnyRow) -> Result<StepRecord> {
        let case_id: String = r.get("case_id");
        let step: String = r.get("step");
        let input = self.unseal(&input_place(&case_id, &step), r.get("input"))?;
        let state = r.get::<String, _>("state").parse().map_err(
            |e: gateway_base::model::UnknownState| {
                StoreError::Corrupt(format!("steps.state of {case_id}/{step}: {e}"))
            },
        )?;
        Ok(StepRecord {
            input,
            case_id,
            step,
            matter: r.get("matter"),
            department: r.get("department"),
            state,
            reference: r.get("reference"),
            outputs: serde_json::from_str(&r.get::<String, _>("outputs")).unwrap_or_default(),
            message: r.get("message"),
            attempts: r.get("attempts"),
            idempotency_key: r.get("idempotency_key"),
            updated_at: r.get("updated_at"),
        })
    }
}
