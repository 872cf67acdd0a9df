//! `GET /api/v1/supervision/deadlines`: the open steps and their lights (红黄牌), see
//! [`gateway_cases::deadlines`]; `GET /api/v1/supervision/red-cards` and
//! `GET /api/v1/supervision/statistics`: 电子监察's red-card events and figures per department
//! and period, see [`gateway_cases::supervision`].

use crate::AppState;
use crate::error::ApiError;
use crate::openapi::Error;
use axum::Json;
use axum::extract::{Query, State};
use gateway_base::model::FieldProblem;
use gateway_base::time::{now_ms, parse_rfc3339};
use gateway_cases::deadlines::{self, Light, Supervision};
use gateway_cases::supervision::{RedCards, Statistics};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The supervision routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(supervision))
        .routes(routes!(red_cards))
        .routes(routes!(statistics))
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

/// The period and department of a 电子监察 query: `from`, `to` (RFC 3339; default: from the
/// beginning, to a year from now), `department` where allowed. Every problem at once.
fn period(
    params: &[(String, String)],
    with_department: bool,
) -> Result<(i64, i64, Option<String>), ApiError> {
    const YEAR_MS: i64 = 366 * 86_400_000;
    let mut problems = Vec::new();
    let (mut from, mut to, mut department) = (0, now_ms() + YEAR_MS, None);
    for (name, value) in params {
        match name.as_str() {
            "from" | "to" => match parse_rfc3339(value) {
                Some(ms) if name == "from" => from = ms,
                Some(ms) => to = ms,
                None => problems.push(FieldProblem::new(
                    name.as_str(),
                    "format",
                    "应为RFC 3339时间，如 2026-10-09T00:00:00+08:00",
                )),
            },
            "department" if with_department => department = Some(value.clone()),
            other => problems.push(FieldProblem::new(
                other,
                "unknown_field",
                if with_department {
                    "不支持的查询参数（可用：department、from、to）"
                } else {
                    "不支持的查询参数（可用：from、to）"
                },
            )),
        }
    }
    if problems.is_empty() && from >= to {
        problems.push(FieldProblem::new("to", "range", "to 应晚于 from"));
    }
    if !problems.is_empty() {
        return Err(ApiError::InvalidInput(problems));
    }
    Ok((from, to, department))
}

/// `GET /api/v1/supervision/red-cards?department=&from=&to=`: red-card events (红牌: a step
/// past its promised deadline) carded in the period, oldest first: the matter, the department
/// that had it, the clerk who received the case, how many working days late it is (until now,
/// or until it finished).
#[utoipa::path(
    get,
    path = "/api/v1/supervision/red-cards",
    tag = "supervision",
    params(
        ("department" = Option<String>, Query, nullable = false, description = "Only this department"),
        ("from" = Option<String>, Query, nullable = false, format = DateTime, description = "Carded at or after (RFC 3339); default: from the beginning"),
        ("to" = Option<String>, Query, nullable = false, format = DateTime, description = "Carded before (RFC 3339); default: a year from now"),
    ),
    responses(
        (status = 200, description = "Red-card events.", body = RedCards),
        (status = 404, description = "`not_found`: no such department.", body = Error),
        (status = 422, description = "`invalid_input`: a bad `from` or `to`, `to` not after `from`, or an unknown parameter.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
async fn red_cards(
    State(o): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RedCards>, ApiError> {
    let Query(params) = query.map_err(|e| {
        ApiError::InvalidInput(vec![FieldProblem::new("", "format", e.body_text())])
    })?;
    let (from, to, department) = period(&params, true)?;
    Ok(Json(o.red_cards(department.as_deref(), from, to).await?))
}

/// `GET /api/v1/supervision/statistics?from=&to=`: per department for the period: decided
/// steps and the on-time rate, average working days to decision, yellow and red counts,
/// satisfaction (好差评) and rectifications; see [`gateway_cases::supervision`].
#[utoipa::path(
    get,
    path = "/api/v1/supervision/statistics",
    tag = "supervision",
    params(
        ("from" = Option<String>, Query, nullable = false, format = DateTime, description = "Period start (RFC 3339); default: from the beginning"),
        ("to" = Option<String>, Query, nullable = false, format = DateTime, description = "Period end, exclusive (RFC 3339); default: a year from now"),
    ),
    responses(
        (status = 200, description = "Figures per department.", body = Statistics),
        (status = 422, description = "`invalid_input`: a bad `from` or `to`, `to` not after `from`, or an unknown parameter.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
async fn statistics(
    State(o): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Statistics>, ApiError> {
    let Query(params) = query.map_err(|e| {
        ApiError::InvalidInput(vec![FieldProblem::new("", "format", e.body_text())])
    })?;
    let (from, to, _) = period(&params, false)?;
    Ok(Json(o.supervision_statistics(from, to).await?))
}
