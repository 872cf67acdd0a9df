//! `GET /admin/v1/audit?department=&since=&node=&limit=`: audit records, oldest first.

use crate::api::error::ApiError;
use gateway_base::model::FieldProblem;
use serde::Deserialize;

/// The audit route.
pub fn router(pool: sqlx::AnyPool) -> axum::Router {
    axum::Router::new()
        .route("/admin/v1/audit", axum::routing::get(read))
        .with_state(pool)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadQuery {
    department: Option<String>,
    node: Option<String>,
    /// Unix milliseconds.
    since: Option<i64>,
    limit: Option<i64>,
}

async fn read(
    axum::extract::State(pool): axum::extract::State<sqlx::AnyPool>,
    query: Result<axum::extract::Query<ReadQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let axum::extract::Query(query) = query.map_err(|e| {
        ApiError::InvalidInput(vec![FieldProblem::new("query", "invalid", e.body_text())])
    })?;
    let limit = query.limit.unwrap_or(500).clamp(1, 5000);
    let records = gateway_store::audit::chain::read(
        &pool,
        query.department.as_deref(),
        query.node.as_deref(),
        query.since.unwrap_or(0),
        limit,
    )
    .await?;
    Ok(axum::Json(serde_json::json!({ "records": records })))
}
