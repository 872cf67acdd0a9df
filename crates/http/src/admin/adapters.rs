//! Operators' routes for adapter versions: push, list, activate (fully or staged), promote,
//! roll back, remove. Every change records the operator whose token made it.

use crate::AppState;
use crate::auth::Operator;
use crate::error::ApiError;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use gateway_base::model::FieldProblem;
use gateway_plugins::adapters::{AdminError, DepartmentStatus};
use gateway_store::registry::{RouteRecord, VersionRecord};
use serde::Deserialize;
use serde_json::{Value, json};

/// Largest component accepted by a push (the admin API's and the console's upload).
pub(crate) const MAX_COMPONENT_BYTES: usize = 64 << 20;

/// The adapter routes, merged into the admin router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/admin/v1/adapters",
            get(list)
                .post(push)
                .layer(axum::extract::DefaultBodyLimit::max(MAX_COMPONENT_BYTES))
                .layer(axum::middleware::map_response(too_large)),
        )
        .route("/admin/v1/adapters/{department}", get(one))
        .route("/admin/v1/adapters/{department}/activate", post(activate))
        .route("/admin/v1/adapters/{department}/promote", post(promote))
        .route("/admin/v1/adapters/{department}/rollback", post(rollback))
        .route(
            "/admin/v1/adapters/{department}/versions/{digest}",
            delete(remove),
        )
}

/// A component over [`MAX_COMPONENT_BYTES`] is refused in the one error format.
async fn too_large(response: axum::response::Response) -> axum::response::Response {
    crate::error::too_large_as_json(response, MAX_COMPONENT_BYTES)
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::NotFound { what, id } => ApiError::NotFound { what, id },
            AdminError::Conflict(why) => ApiError::Conflict(why),
            AdminError::Refused(refusal) => ApiError::Refused(
                format!("component refused at the {} check", refusal.check),
                vec![FieldProblem::new(
                    "component",
                    refusal.check,
                    refusal.reason,
                )],
            ),
            AdminError::Store(e) => e.into(),
        }
    }
}

/// Every department's route, counts and versions (the API's list and the console's table).
pub(crate) async fn statuses(o: &AppState) -> Result<Vec<DepartmentStatus>, ApiError> {
    let mut departments = Vec::new();
    for id in o.adapters().departments() {
        departments.push(o.adapters().status(&id).await?);
    }
    Ok(departments)
}

async fn list(State(o): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "departments": statuses(&o).await? })))
}

async fn one(
    State(o): State<AppState>,
    Path(department): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let status = o.adapters().status(&department).await?;
    let history = o.adapters().history(&department).await?;
    let mut body = serde_json::to_value(status).map_err(|e| ApiError::Internal(e.to_string()))?;
    body["history"] = json!(history);
    Ok(Json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PushQuery {
    /// The department the component must describe.
    department: Option<String>,
    /// Activate it at once (fully, or for `percent` of calls).
    #[serde(default)]
    activate: bool,
    percent: Option<u8>,
}

async fn push(
    State(o): State<AppState>,
    query: Result<Query<PushQuery>, axum::extract::rejection::QueryRejection>,
    Extension(operator): Extension<Operator>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Query(query) = query.map_err(|e| {
        ApiError::InvalidInput(vec![FieldProblem::new("query", "invalid", e.body_text())])
    })?;
    if body.is_empty() {
        return Err(ApiError::InvalidInput(vec![FieldProblem::new(
            "body",
            "required",
            "the body is the component file (application/wasm)",
        )]));
    }
    let activate = (query.activate || query.percent.is_some()).then_some(query.percent);
    let (version, route) = push_component(
        &o,
        &body,
        query.department.as_deref(),
        activate,
        &operator.id,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "version": version, "route": route })),
    ))
}

/// Check and store a component for `operator`, and activate it when `activate` says so
/// (`Some(None)` fully, `Some(Some(percent))` staged): the API's push and the console's upload.
pub(crate) async fn push_component(
    o: &AppState,
    bytes: &[u8],
    department: Option<&str>,
    activate: Option<Option<u8>>,
    operator: &str,
) -> Result<(VersionRecord, Option<RouteRecord>), ApiError> {
    let version = o
        .adapters()
        .push(bytes, department, "push", operator)
        .await?;
    let route = match activate {
        Some(percent) => Some(
            activate_version(o, &version.department, &version.digest, percent, operator).await?,
        ),
        None => None,
    };
    Ok((version, route))
}

/// Serve a stored version: fully, or staged for `percent` of calls (1–100).
pub(crate) async fn activate_version(
    o: &AppState,
    department: &str,
    digest: &str,
    percent: Option<u8>,
    operator: &str,
) -> Result<RouteRecord, ApiError> {
    if percent.is_some_and(|p| p == 0 || p > 100) {
        return Err(ApiError::InvalidInput(vec![FieldProblem::new(
            "percent",
            "out_of_range",
            "a share of calls from 1 to 100",
        )]));
    }
    Ok(o.adapters()
        .activate(department, digest, percent, operator)
        .await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivateBody {
    digest: String,
    percent: Option<u8>,
}

fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let text = if body.is_empty() { &b"{}"[..] } else { body };
    serde_json::from_slice(text).map_err(|e| ApiError::MalformedJson(e.to_string()))
}

async fn activate(
    State(o): State<AppState>,
    Path(department): Path<String>,
    Extension(operator): Extension<Operator>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let request: ActivateBody = json_body(&body)?;
    let route = activate_version(
        &o,
        &department,
        &request.digest,
        request.percent,
        &operator.id,
    )
    .await?;
    Ok(Json(json!({ "route": route })))
}

async fn promote(
    State(o): State<AppState>,
    Path(department): Path<String>,
    Extension(operator): Extension<Operator>,
) -> Result<Json<Value>, ApiError> {
    let operator = operator.id;
    let route = o.adapters().promote(&department, &operator).await?;
    Ok(Json(json!({ "route": route })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    digest: Option<String>,
}

async fn rollback(
    State(o): State<AppState>,
    Path(department): Path<String>,
    Extension(operator): Extension<Operator>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let operator = operator.id;
    let request: RollbackBody = json_body(&body)?;
    let route = o
        .adapters()
        .rollback(&department, request.digest.as_deref(), &operator)
        .await?;
    Ok(Json(json!({ "route": route })))
}

async fn remove(
    State(o): State<AppState>,
    Path((department, digest)): Path<(String, String)>,
    Extension(operator): Extension<Operator>,
) -> Result<Json<Value>, ApiError> {
    let operator = operator.id;
    let removed = o.adapters().remove(&department, &digest, &operator).await?;
    Ok(Json(json!({ "removed": removed })))
}
