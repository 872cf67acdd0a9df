//! `POST /admin/v1/supervision/light-scans` `{"at"?: RFC 3339}`: run one light scan now, or
//! judged at another instant (a drill, or a test that cannot wait for days to pass): each
//! step's new yellow or red is recorded once, with its chases, as
//! [`gateway_cases::notifications::chases`] says. Operators only: what a rehearsal finds is
//! recorded for real.

use crate::AppState;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use gateway_base::model::FieldProblem;
use gateway_base::time::{now_ms, parse_rfc3339, rfc3339};
use serde_json::{Value, json};

/// The supervision routes of the admin API.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/admin/v1/supervision/light-scans", post(scan))
}

async fn scan(State(o): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let at = if body.is_empty() {
        now_ms()
    } else {
        let value = crate::portal::json_body(&body)?;
        match value.get("at") {
            None | Some(Value::Null) => now_ms(),
            Some(at) => at.as_str().and_then(parse_rfc3339).ok_or_else(|| {
                ApiError::InvalidInput(vec![FieldProblem::new(
                    "at",
                    "format",
                    "应为RFC 3339时间，如 2026-10-09T12:00:00+08:00",
                )])
            })?,
        }
    };
    let recorded = o.scan_lights(at).await?;
    Ok(Json(json!({
        "at": rfc3339(at),
        "recorded": recorded.iter().map(|c| json!({
            "case_id": c.case_id, "step": c.step, "light": c.light,
            "department": c.department, "matter": c.matter,
        })).collect::<Vec<_>>(),
    })))
}
