//! The operators' API, on its own listener (never the portal's).
//!
//! | route | what |
//! | --- | --- |
//! | `GET /admin/v1/dead-letters` | deliveries that failed for good, newest first |
//! | `POST /admin/v1/dead-letters/{case}/{step}/replay` | deliver again (recorded with the operator whose token asked) |
//! | `GET /admin/v1/adapters` | every department's route, counts and versions |
//! | `POST /admin/v1/adapters` | push a component (body: the file; `?department=&activate=&percent=`) |
//! | `GET /admin/v1/adapters/{department}` | one department, with its history |
//! | `POST /admin/v1/adapters/{department}/activate` | `{"digest", "percent"?}`: fully, or staged |
//! | `POST /admin/v1/adapters/{department}/promote` | the staged candidate becomes active |
//! | `POST /admin/v1/adapters/{department}/rollback` | drop the candidate, or `{"digest"?}` go back |
//! | `DELETE /admin/v1/adapters/{department}/versions/{digest}` | remove a version serving nothing |
//! | `POST /admin/v1/config/reload` | read the config file again: apply it whole or refuse it whole ([`reload`]) |
//! | `GET /admin/v1/lookups` | recorded portal lookups: client, purpose, case or clerk, outcome |
//! | `POST /admin/v1/supervision/light-scans` | one light scan (催办, red cards) now or at `{"at"}` (`supervision.rs`) |
//! | `GET /metrics` | Prometheus metrics (see [`gateway_base::telemetry`]) |

pub(crate) mod adapters;
pub mod audit;
pub mod reload;
mod supervision;

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

/// The admin router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/admin/v1/dead-letters", get(dead_letters))
        .route("/admin/v1/dead-letters/{case}/{step}/replay", post(replay))
        .route("/metrics", get(metrics))
        .route("/admin/v1/lookups", get(lookups))
        .merge(adapters::routes())
        .merge(supervision::routes())
        .fallback(crate::error::no_route)
        .with_state(state)
}

async fn metrics(State(o): State<AppState>) -> Result<String, ApiError> {
    o.refresh_gauges().await?;
    Ok(gateway_base::telemetry::handle().render())
}

/// Recorded portal lookups, newest first: who, why, for which case or clerk, how it ended.
async fn lookups(State(o): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({"lookups": o.store().lookup_records(500).await?}),
    ))
}

async fn dead_letters(State(o): State<AppState>) -> Result<Json<Value>, ApiError> {
    let steps = o.store().dead_letters(500).await?;
    let items: Vec<Value> = steps
        .iter()
        .map(|s| {
            json!({
                "case_id": s.case_id, "step": s.step, "matter": s.matter, "department": s.department,
                "attempts": s.attempts, "message": s.message, "updated_at": s.updated_at,
            })
        })
        .collect();
    Ok(Json(json!({"dead_letters": items})))
}

async fn replay(
    State(o): State<AppState>,
    axum::Extension(operator): axum::Extension<crate::auth::Operator>,
    Path((case_id, step)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    replay_dead_letter(&o, &case_id, &step, &operator.id).await?;
    Ok(Json(
        json!({"replayed": true, "case_id": case_id, "step": step}),
    ))
}

/// Deliver a dead letter again for `operator` (the API's replay and the console's): recorded
/// as the clerk of the replay, the operator and nobody else; the dispatcher is woken for it.
pub(crate) async fn replay_dead_letter(
    o: &AppState,
    case_id: &str,
    step: &str,
    operator: &str,
) -> Result<(), ApiError> {
    let operator = gateway_base::model::Clerk {
        id: operator.to_string(),
        window: None,
        hall: None,
    };
    if !o.store().replay(case_id, step, &operator).await? {
        return Err(ApiError::NotFound {
            what: "dead letter",
            id: format!("{case_id}/{step}"),
        });
    }
    tracing::info!(case = %case_id, %step, operator = %operator.id, "dead letter replayed");
    o.wake_dispatcher();
    Ok(())
}
