//! The unified API portals call, and the callback endpoint departments call.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /api/v1/catalogue` | matters and services |
//! | `GET /api/v1/services/{code}/form` | the one form (JSON Schema) of a service |
//! | `POST /api/v1/services/{code}/pre-review` | every problem with a filled form, at once |
//! | `POST /api/v1/services/{code}/applications` | apply: 202 with the case id once stored |
//! | `GET /api/v1/cases/{id}` | one aggregated status, each matter, the timeline |
//! | `POST /api/v1/lookups/{name}` | shared-data lookups at departments |
//! | `POST /callbacks/{department}` | departments report decisions |
//! | `GET /healthz` | the process is up |

pub mod error;

use crate::host::contract::CallbackRequest;
use crate::orchestrator::{Orchestrator, case_status};
use crate::store::StepState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use error::ApiError;
use serde_json::{Value, json};
use std::sync::Arc;

/// Shared state of the handlers.
pub type AppState = Arc<Orchestrator>;

/// The portal router.
pub fn router(state: AppState, body_limit: usize) -> Router {
    Router::new()
        .route("/api/v1/catalogue", get(catalogue))
        .route("/api/v1/services/{code}/form", get(form))
        .route("/api/v1/services/{code}/pre-review", post(pre_review))
        .route("/api/v1/services/{code}/applications", post(apply))
        .route("/api/v1/cases/{id}", get(case))
        .route("/api/v1/lookups/{name}", post(lookup))
        .route("/callbacks/{department}", post(callback))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .fallback(|| async {
            ApiError::NotFound {
                what: "route",
                id: "this path".into(),
            }
        })
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Parse a JSON body ourselves, so malformed JSON gets the one error format.
fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson(e.to_string()))
}

async fn catalogue(State(o): State<AppState>) -> Json<Value> {
    let matters: Vec<Value> = o
        .catalogue
        .matters
        .values()
        .map(|m| {
            json!({
                "code": m.code, "name": m.name, "department": m.department,
                "matter_type": m.matter_type, "service_object": m.service_object,
                "time_limit_days": m.time_limit_days,
            })
        })
        .collect();
    let services: Vec<_> = o.catalogue.services.values().collect();
    let lookups: Vec<Value> = o
        .adapters
        .all()
        .iter()
        .flat_map(|a| {
            let department = a.description().department.clone();
            a.description()
                .lookups
                .iter()
                .map(move |l| json!({"name": l.name, "description": l.description, "department": department}))
                .collect::<Vec<_>>()
        })
        .collect();
    Json(json!({"matters": matters, "services": services, "lookups": lookups}))
}

async fn form(
    State(o): State<AppState>,
    Path(code): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let service = o.catalogue.services.get(&code).ok_or(ApiError::NotFound {
        what: "service",
        id: code,
    })?;
    Ok(Json(
        json!({"service": service.code, "name": service.name, "kind": service.kind, "steps": service.steps, "schema": service.form}),
    ))
}

async fn pre_review(
    State(o): State<AppState>,
    Path(code): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let form = json_body(&body)?;
    let review = o.review(&code, &form).await?;
    Ok(Json(json!({
        "ok": review.problems.is_empty(),
        "problems": review.problems,
        // Which records the gateway obtained itself (四不提交); their content stays inside.
        "obtained": review.lookups.as_object().map(|l| l.keys().cloned().collect::<Vec<_>>()).unwrap_or_default(),
    })))
}

async fn apply(
    State(o): State<AppState>,
    Path(code): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let form = json_body(&body)?;
    let case_id = o.apply(&code, form).await?;
    let body = json!({"case_id": case_id, "status": "received", "links": {"case": format!("/api/v1/cases/{case_id}")}});
    Ok((StatusCode::ACCEPTED, Json(body)))
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

async fn case(State(o): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let record = o.store.case(&id).await?.ok_or(ApiError::NotFound {
        what: "case",
        id: id.clone(),
    })?;
    let steps = o.store.steps(&id).await?;
    let events = o.store.events(&id).await?;
    let states: Vec<StepState> = steps.iter().map(|s| s.state).collect();
    let matters: Vec<Value> = steps
        .iter()
        .map(|s| {
            let matter = o.catalogue.matters.get(&s.matter);
            json!({
                "step": s.step, "matter": s.matter, "matter_name": matter.map(|m| m.name.as_str()),
                "department": s.department, "state": s.state, "reference": s.reference,
                "outputs": s.outputs, "message": s.message, "attempts": s.attempts,
                "updated_at": rfc3339(s.updated_at),
            })
        })
        .collect();
    let timeline: Vec<Value> = events
        .iter()
        .map(|e| json!({"at": rfc3339(e.at), "department": e.department, "step": e.step, "kind": e.kind, "state": e.state, "message": e.message}))
        .collect();
    Ok(Json(json!({
        "case_id": record.id, "service": record.service, "status": case_status(&states),
        "created_at": rfc3339(record.created_at), "matters": matters, "timeline": timeline,
    })))
}

async fn lookup(
    State(o): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let query = json_body(&body)?;
    let adapter = o.adapters.for_lookup(&name).ok_or(ApiError::NotFound {
        what: "lookup",
        id: name.clone(),
    })?;
    let department = adapter.department().id.clone();
    let answer = adapter
        .lookup(&name, &query.to_string())
        .await
        .map_err(|e| ApiError::from_call(&department, e))?;
    let result: Value = serde_json::from_str(&answer).map_err(|e| ApiError::AdapterFailed {
        department: department.clone(),
        message: format!("adapter answered a lookup with invalid JSON: {e}"),
    })?;
    Ok(Json(
        json!({"lookup": name, "department": department, "result": result}),
    ))
}

async fn callback(
    State(o): State<AppState>,
    Path(department): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let headers = headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    o.callback(
        &department,
        CallbackRequest {
            headers,
            body: body.to_vec(),
        },
    )
    .await?;
    Ok(Json(json!({"ok": true})))
}
