//! The adapter versions and the active choice of each department, kept in the store.
//!
//! The store is the source of truth shared by every node: versions (the component itself
//! included, so a node that never saw the upload can load it), the route of each department
//! (active version, staged candidate and its share of calls) and the history of changes.
//! Components are kept as base64 text so one schema serves SQLite and PostgreSQL alike.

use crate::{Store, StoreError};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use gateway_base::time::now_ms;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

/// One stored version, without its bytes.
#[derive(Debug, Clone, Serialize)]
pub struct VersionRecord {
    /// Hex SHA-256 of the component.
    pub digest: String,
    /// The department its `describe` names.
    pub department: String,
    /// The adapter's own version, from `describe`.
    pub adapter_version: String,
    /// The contract version it was built against.
    pub contract_version: String,
    /// What `describe` reported, as JSON.
    pub description: serde_json::Value,
    /// Size of the component in bytes.
    pub size: i64,
    /// The trusted key that signed it, when signatures are required.
    pub signed_by: Option<String>,
    /// `config` (the file named in the config), `push` (admin API) or `file` (watched dir).
    pub source: String,
    /// Who loaded it.
    pub loaded_by: String,
    /// When, in Unix ms.
    pub loaded_at: i64,
}

const VERSION_COLUMNS: &str = "digest, department, adapter_version, contract_version, description, size, signed_by, source, loaded_by, loaded_at";

fn version_of(row: &AnyRow) -> VersionRecord {
    VersionRecord {
        digest: row.get("digest"),
        department: row.get("department"),
        adapter_version: row.get("adapter_version"),
        contract_version: row.get("contract_version"),
        description: serde_json::from_str(&row.get::<String, _>("description"))
            .unwrap_or(serde_json::Value::Null),
        size: row.get("size"),
        signed_by: row.get("signed_by"),
        source: row.get("source"),
        loaded_by: row.get("loaded_by"),
        loaded_at: row.get("loaded_at"),
    }
}

/// Store a version; false when it was already there (the first record stands).
pub async fn insert_version(
    store: &Store,
    v: &VersionRecord,
    component: &[u8],
) -> Result<bool, StoreError> {
    let done = sqlx::query(&format!(
        "INSERT INTO adapter_versions ({VERSION_COLUMNS}, component)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING"
    ))
    .bind(&v.digest)
    .bind(&v.department)
    .bind(&v.adapter_version)
    .bind(&v.contract_version)
    .bind(v.description.to_string())
    .bind(v.size)
    .bind(&v.signed_by)
    .bind(&v.source)
    .bind(&v.loaded_by)
    .bind(v.loaded_at)
    .bind(BASE64.encode(component))
    .execute(store.pool())
    .await?
    .rows_affected();
    Ok(done == 1)
}

/// One version's record.
pub async fn version(store: &Store, digest: &str) -> Result<Option<VersionRecord>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {VERSION_COLUMNS} FROM adapter_versions WHERE digest = $1"
    ))
    .bind(digest)
    .fetch_optional(store.pool())
    .await?;
    Ok(row.as_ref().map(version_of))
}

/// One version's component bytes.
pub async fn component(store: &Store, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let row = sqlx::query("SELECT component FROM adapter_versions WHERE digest = $1")
        .bind(digest)
        .fetch_optional(store.pool())
        .await?;
    Ok(row.and_then(|r| BASE64.decode(r.get::<String, _>("component")).ok()))
}

/// A department's versions, newest first.
pub async fn versions(store: &Store, department: &str) -> Result<Vec<VersionRecord>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {VERSION_COLUMNS} FROM adapter_versions WHERE department = $1 ORDER BY loaded_at DESC, digest"
    ))
    .bind(department)
    .fetch_all(store.pool())
    .await?;
    Ok(rows.iter().map(version_of).collect())
}

/// The newest version of each department, by department.
pub async fn newest_versions(
    store: &Store,
) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
    let rows = sqlx::query(
        "SELECT department, digest FROM adapter_versions ORDER BY loaded_at DESC, digest",
    )
    .fetch_all(store.pool())
    .await?;
    let mut newest = std::collections::BTreeMap::new();
    for row in rows {
        newest
            .entry(row.get::<String, _>("department"))
            .or_insert_with(|| row.get::<String, _>("digest"));
    }
    Ok(newest)
}

/// Delete a version; false when there was none.
pub async fn delete_version(store: &Store, digest: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM adapter_versions WHERE digest = $1")
        .bind(digest)
        .execute(store.pool())
        .await?
        .rows_affected();
    Ok(done == 1)
}

/// Which versions serve a department.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteRecord {
    /// The department.
    pub department: String,
    /// The version that serves its calls.
    pub active: String,
    /// A staged version that serves `percent` of its calls.
    pub candidate: Option<String>,
    /// The candidate's share of calls, 0-100.
    pub percent: u8,
    /// Who made this choice.
    pub updated_by: String,
    /// When, in Unix ms.
    pub updated_at: i64,
}

/// Every department's route.
pub async fn routes(store: &Store) -> Result<Vec<RouteRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT department, active, candidate, percent, updated_by, updated_at FROM adapter_routes",
    )
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|r| RouteRecord {
            department: r.get("department"),
            active: r.get("active"),
            candidate: r.get("candidate"),
            percent: r.get::<i64, _>("percent").clamp(0, 100) as u8,
            updated_by: r.get("updated_by"),
            updated_at: r.get("updated_at"),
        })
        .collect())
}

/// Set a department's route and record the change in its history, in one transaction.
pub async fn set_route(
    store: &Store,
    route: &RouteRecord,
    action: &str,
    digest: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    let mut tx = store.begin_write().await?;
    sqlx::query(
        "INSERT INTO adapter_routes (department, active, candidate, percent, updated_by, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (department) DO UPDATE SET active = excluded.active,
           candidate = excluded.candidate, percent = excluded.percent,
           updated_by = excluded.updated_by, updated_at = excluded.updated_at",
    )
    .bind(&route.department)
    .bind(&route.active)
    .bind(&route.candidate)
    .bind(i64::from(route.percent))
    .bind(&route.updated_by)
    .bind(route.updated_at)
    .execute(&mut *tx)
    .await?;
    insert_history(
        &mut tx,
        &route.department,
        action,
        Some(digest),
        &route.updated_by,
        detail,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Drop a department's candidate if it is still `candidate` (another node may have acted
/// first); true when this call dropped it.
pub async fn drop_candidate(
    store: &Store,
    department: &str,
    candidate: &str,
    operator: &str,
    action: &str,
    detail: Option<&str>,
) -> Result<bool, StoreError> {
    let mut tx = store.begin_write().await?;
    let done = sqlx::query(
        "UPDATE adapter_routes SET candidate = NULL, percent = 0, updated_by = $1, updated_at = $2
         WHERE department = $3 AND candidate = $4",
    )
    .bind(operator)
    .bind(now_ms())
    .bind(department)
    .bind(candidate)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if done == 1 {
        insert_history(
            &mut tx,
            department,
            action,
            Some(candidate),
            operator,
            detail,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(done == 1)
}

/// Record a change that is not a route change (a push, a removal, a refusal).
pub async fn record(
    store: &Store,
    department: &str,
    action: &str,
    digest: Option<&str>,
    operator: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    let mut tx = store.begin_write().await?;
    insert_history(&mut tx, department, action, digest, operator, detail).await?;
    tx.commit().await?;
    Ok(())
}

async fn insert_history(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    department: &str,
    action: &str,
    digest: Option<&str>,
    operator: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO adapter_history (id, department, action, digest, operator, at, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(department)
    .bind(action)
    .bind(digest)
    .bind(operator)
    .bind(now_ms())
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One change to a department's adapters.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRecord {
    /// `push`, `activate`, `stage`, `promote`, `rollback`, `auto-rollback`, `remove`.
    pub action: String,
    /// The version concerned.
    pub digest: Option<String>,
    /// Who did it (an operator id, `config`, `file:<name>`, or `auto-rollback`).
    pub operator: String,
    /// When, in Unix ms.
    pub at: i64,
    /// Why, when there is more to say.
    pub detail: Option<String>,
}

/// A department's changes, newest first.
pub async fn history(
    store: &Store,
    department: &str,
    limit: i64,
) -> Result<Vec<HistoryRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT action, digest, operator, at, detail FROM adapter_history
         WHERE department = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(department)
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|r| HistoryRecord {
            action: r.get("action"),
            digest: r.get("digest"),
            operator: r.get("operator"),
            at: r.get("at"),
            detail: r.get("detail"),
        })
        .collect())
}
