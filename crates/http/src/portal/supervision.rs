//! `GET /api/v1/supervision/deadlines`: the open steps and their lights (红黄牌), see
//! [`gateway_cases::deadlines`].

use crate::AppState;
use crate::error::ApiError;
use crate::openapi::Error;
use axum::Json;
use axum::extract::{Query, State};
use gateway_base::model::FieldProblem;
use gateway_base::time::{now_ms, parse_rfc3339};
use gateway_cases::deadlines::{self, Light, Supervision};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The supervision routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(supervision))
}

/// `GET /api/v1/supervision/deadlines?department=<id>&light=<green|yellow|red>&at=<RFC 3339>`:
/// the open steps, red first then by deadline, and the counts per department and light (the
/// counts follow `department` and `at`, not `light`).
#[utoipa::path(
    get,
    path = "/api/v1/supervision/deadlines",
    tag = "supervision",
    params(
        ("department" = Option<String>, Query, nullable = false, description = "Only this department"),
        ("light" = Option<Light>, Query, nullable = false, description = "Only steps with this light"),
        ("at" = Option<String>, Query, nullable = false, format = DateTime, description = "Judge the lights at this instant (RFC 3339); default now"),
    ),
    responses(
        (status = 200, description = "Open steps and counts.", body = Supervision),
        (status = 404, description = "`not_found`: no such department.", body = Error),
        (status = 422, description = "`invalid_input`: a bad `light` or `at`, or an unknown parameter.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
async fn supervision(
    State(o): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Supervision>, ApiError> {
    let Query(params) = query.map_err(|e| {
        ApiError::InvalidInput(vec![FieldProblem::new("", "format", e.body_text())])
    })?;
    let mut problems = Vec::new();
    let (mut department, mut light, mut at) = (None, None, now_ms());
    for (name, value) in &params {
        match name.as_str() {
            "department" => department = Some(value.clone()),
            "light" => match Light::parse(value) {
                Some(l) => light = Some(l),
                None => problems.push(FieldProblem::new(
                    "light",
                    "enum",
                    "应为 green、yellow 或 red",
                )),
            },
            "at" => match parse_rfc3339(value) {
                Some(ms) => at = ms,
                None => problems.push(FieldProblem::new(
                    "at",
                    "format",
                    "应为RFC 3339时间，如 2026-10-09T12:00:00+08:00",
                )),
            },
            other => problems.push(FieldProblem::new(
                other,
                "unknown_field",
                "不支持的查询参数（可用：department、light、at）",
            )),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::InvalidInput(problems));
    }
    Ok(Json(
        deadlines::supervision(&o, at, department.as_deref(), light).await?,
    ))
}
