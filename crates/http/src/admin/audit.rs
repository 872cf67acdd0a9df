//! `GET /admin/v1/audit?department=&since=&node=&limit=`: audit records, oldest first.

use crate::AppState;
use crate::error::ApiError;
use gateway_base::model::FieldProblem;
use serde::Deserialize;

/// The audit route.
pub fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/admin/v1/audit", axum::routing::get(read))
        .with_state(state)
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
    axum::extract::State(o): axum::extract::State<AppState>,
    query: Result<axum::extract::Query<ReadQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let axum::extract::Query(query) = query.map_err(|e| {
        ApiError::InvalidInput(vec![FieldProblem::new("query", "invalid", e.body_text())])
    })?;
    let limit = query.limit.unwrap_or(500).clamp(1, 5000);
    let records = o
        .store()
        .audit_records(
            query.department.as_deref(),
            query.node.as_deref(),
            query.since.unwrap_or(0),
            limit,
        )
        .await?;
    Ok(axum::Json(serde_json::json!({ "records": records })))
}
