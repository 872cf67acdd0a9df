//! 好差评 routes, see [`gateway_cases::evaluations`]:
//!
//! | route | what |
//! | --- | --- |
//! | `POST /api/v1/cases/{id}/evaluations` | evaluate a decided case (the case's owner) |
//! | `GET /api/v1/cases/{id}/evaluations` | its evaluations |
//! | `GET /api/v1/supervision/evaluations/statistics` | counts per level, satisfaction rate, rectifications |
//! | `GET /api/v1/supervision/rectifications` | rectifications with their lights |
//! | `GET /api/v1/supervision/rectifications/{id}` | one |
//! | `POST /api/v1/supervision/rectifications/{id}/visit` · `/fix` · `/close` | its record |

use super::cases::readable_case;
use super::json_body;
use crate::AppState;
use crate::auth::Client;
use crate::error::ApiError;
use crate::middleware::clerk;
use crate::openapi::Error;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use gateway_base::calendar::parse_date;
use gateway_base::model::FieldProblem;
use gateway_base::time::{beijing_date, now_ms, parse_rfc3339};
use gateway_cases::deadlines::Light;
use gateway_cases::evaluations::rectifications::{ActionInput, Filter};
use gateway_cases::evaluations::statistics::By;
use gateway_cases::evaluations::views::{
    ActionRequest, EvaluationList, EvaluationRequest, EvaluationStatistics, EvaluationView,
    RectificationList, RectificationView,
};
use gateway_store::evaluations::RectificationStep;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The evaluation routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(evaluate_case, case_evaluations))
        .routes(routes!(evaluation_statistics))
        .routes(routes!(rectifications))
        .routes(routes!(rectification))
        .routes(routes!(visit_rectification))
        .routes(routes!(fix_rectification))
        .routes(routes!(close_rectification))
}

/// Evaluate a decided case (一事一评): once per channel. A 不满意 or 非常不满意 opens a
/// rectification; with `[evaluations] reporting` the evaluation is reported to the national
/// system (durably, once).
#[utoipa::path(
    post,
    path = "/api/v1/cases/{id}/evaluations",
    tag = "evaluations",
    params(("id" = String, Path, description = "Case id")),
    request_body(
        description = "The evaluation.",
        content((EvaluationRequest = "application/json", examples(
            ("anonymous" = (summary = "An anonymous online evaluation", value = json!({"channel": "online", "level": "满意", "indicators": {"overall": 2, "efficiency": 1, "guide_accuracy": 2, "convenience": 2, "ease_of_use": 1}}))),
            ("named" = (summary = "A named window evaluation with a comment", value = json!({"channel": "window", "level": "不满意", "anonymous": false, "evaluator": {"name": "王小明"}, "indicators": {"attitude": 4}, "comment": "等候时间较长"}))),
        ))),
    ),
    responses(
        (status = 201, description = "Recorded.", body = EvaluationView),
        (status = 400, description = "`malformed_json`.", body = Error),
        (status = 404, description = "`not_found`: no such case (or another client's).", body = Error),
        (status = 409, description = "`case_not_decided` (the message names the open matters), or `already_evaluated` on this channel.", body = Error),
        (status = 422, description = "`invalid_input`: every problem with the evaluation, each naming its field (an unknown level, channel or indicator …).", body = Error),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
async fn evaluate_case(
    State(o): State<AppState>,
    Extension(client): Extension<Client>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<EvaluationView>), ApiError> {
    let case = readable_case(&o, &client, &id).await?;
    let body = json_body(&body)?;
    let view = o.evaluate(&case, &body, Some(&client.id)).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// A case's evaluations, and whether it may be evaluated (decided).
#[utoipa::path(
    get,
    path = "/api/v1/cases/{id}/evaluations",
    tag = "evaluations",
    params(("id" = String, Path, description = "Case id")),
    responses(
        (status = 200, description = "Its evaluations.", body = EvaluationList),
        (status = 404, description = "`not_found`: no such case (or another client's).", body = Error),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
async fn case_evaluations(
    State(o): State<AppState>,
    Extension(client): Extension<Client>,
    Path(id): Path<String>,
) -> Result<Json<EvaluationList>, ApiError> {
    let case = readable_case(&o, &client, &id).await?;
    Ok(Json(o.case_evaluations(&case).await?))
}

type Params = Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>;

fn params(query: Params) -> Result<Vec<(String, String)>, ApiError> {
    query
        .map(|Query(p)| p)
        .map_err(|e| ApiError::InvalidInput(vec![FieldProblem::new("", "format", e.body_text())]))
}

fn instant(value: &str, problems: &mut Vec<FieldProblem>) -> i64 {
    parse_rfc3339(value).unwrap_or_else(|| {
        problems.push(FieldProblem::new(
            "at",
            "format",
            "应为RFC 3339时间，如 2026-10-09T12:00:00+08:00",
        ));
        now_ms()
    })
}

/// Evaluation statistics over Beijing days `from`..=`to`: per department, matter, receiving
/// clerk or month, the counts per level, the satisfaction rate — (非常满意 + 满意 + 基本满意)
/// / all evaluations — and the rectifications of those evaluations open and overdue at `at`.
#[utoipa::path(
    get,
    path = "/api/v1/supervision/evaluations/statistics",
    tag = "supervision",
    params(
        ("from" = Option<String>, Query, nullable = false, format = Date, description = "First day (YYYY-MM-DD, Beijing); default the first of `to`'s month"),
        ("to" = Option<String>, Query, nullable = false, format = Date, description = "Last day; default today"),
        ("by" = Option<String>, Query, nullable = false, description = "`department` (default), `matter`, `clerk` or `period` (month)"),
        ("at" = Option<String>, Query, nullable = false, format = DateTime, description = "Judge rectifications at this instant (RFC 3339); default now"),
    ),
    responses(
        (status = 200, description = "The statistics.", body = EvaluationStatistics),
        (status = 422, description = "`invalid_input`: a bad date, grouping or instant, or an unknown parameter.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
async fn evaluation_statistics(
    State(o): State<AppState>,
    query: Params,
) -> Result<Json<EvaluationStatistics>, ApiError> {
    let mut problems = Vec::new();
    let (mut from, mut to, mut by, mut at) =
        (None, beijing_date(now_ms()), By::Department, now_ms());
    for (name, value) in params(query)? {
        let date = |problems: &mut Vec<FieldProblem>| {
            parse_date(&value).or_else(|| {
                problems.push(FieldProblem::new(&name, "format", "应为日期 YYYY-MM-DD"));
                None
            })
        };
        match name.as_str() {
            "from" => from = date(&mut problems),
            "to" => to = date(&mut problems).unwrap_or(to),
            "by" => match By::parse(&value) {
                Some(b) => by = b,
                None => problems.push(FieldProblem::new(
                    "by",
                    "enum",
                    "应为 department、matter、clerk 或 period",
                )),
            },
            "at" => at = instant(&value, &mut problems),
            other => problems.push(FieldProblem::new(
                other,
                "unknown_field",
                "不支持的查询参数（可用：from、to、by、at）",
            )),
        }
    }
    let from = from.unwrap_or_else(|| to.replace_day(1).unwrap_or(to));
    if from > to {
        problems.push(FieldProblem::new(
            "from",
            "out_of_range",
            "起始日期不应晚于结束日期",
        ));
    }
    if !problems.is_empty() {
        return Err(ApiError::InvalidInput(problems));
    }
    Ok(Json(o.evaluation_statistics(from, to, by, at).await?))
}

/// Rectifications (整改) opened by `at`, lit at `at` like steps: open ones red first then
/// by deadline, then the closed ones; the counts are of the open ones per light.
#[utoipa::path(
    get,
    path = "/api/v1/supervision/rectifications",
    tag = "supervision",
    params(
        ("department" = Option<String>, Query, nullable = false, description = "Only those concerning this department"),
        ("state" = Option<String>, Query, nullable = false, description = "`open` or `closed`"),
        ("light" = Option<Light>, Query, nullable = false, description = "Only open ones with this light"),
        ("at" = Option<String>, Query, nullable = false, format = DateTime, description = "Judge the lights at this instant (RFC 3339); default now"),
    ),
    responses(
        (status = 200, description = "The rectifications.", body = RectificationList),
        (status = 422, description = "`invalid_input`: a bad `state`, `light` or `at`, or an unknown parameter.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
async fn rectifications(
    State(o): State<AppState>,
    query: Params,
) -> Result<Json<RectificationList>, ApiError> {
    let mut problems = Vec::new();
    let (mut filter, mut at) = (Filter::default(), now_ms());
    for (name, value) in params(query)? {
        match name.as_str() {
            "department" => filter.department = Some(value),
            "state" => match value.as_str() {
                "open" => filter.open = Some(true),
                "closed" => filter.open = Some(false),
                _ => problems.push(FieldProblem::new("state", "enum", "应为 open 或 closed")),
            },
            "light" => match Light::parse(&value) {
                Some(l) => filter.light = Some(l),
                None => problems.push(FieldProblem::new(
                    "light",
                    "enum",
                    "应为 green、yellow 或 red",
                )),
            },
            "at" => at = instant(&value, &mut problems),
            other => problems.push(FieldProblem::new(
                other,
                "unknown_field",
                "不支持的查询参数（可用：department、state、light、at）",
            )),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::InvalidInput(problems));
    }
    Ok(Json(o.rectifications(at, &filter).await?))
}

/// One rectification, lit now (or at `at`).
#[utoipa::path(
    get,
    path = "/api/v1/supervision/rectifications/{id}",
    tag = "supervision",
    params(
        ("id" = String, Path, description = "Rectification id"),
        ("at" = Option<String>, Query, nullable = false, format = DateTime, description = "Judge the light at this instant (RFC 3339); default now"),
    ),
    responses(
        (status = 200, description = "The rectification.", body = RectificationView),
        (status = 404, description = "`not_found`.", body = Error),
        (status = 422, description = "`invalid_input`: a bad `at`, or an unknown parameter.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
async fn rectification(
    State(o): State<AppState>,
    Path(id): Path<String>,
    query: Params,
) -> Result<Json<RectificationView>, ApiError> {
    let mut problems = Vec::new();
    let mut at = now_ms();
    for (name, value) in params(query)? {
        match name.as_str() {
            "at" => at = instant(&value, &mut problems),
            other => problems.push(FieldProblem::new(
                other,
                "unknown_field",
                "不支持的查询参数（可用：at）",
            )),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::InvalidInput(problems));
    }
    Ok(Json(o.rectification(&id, at).await?))
}

async fn record(
    o: AppState,
    id: &str,
    step: RectificationStep,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Json<RectificationView>, ApiError> {
    let body = json_body(body)?;
    let clerk = clerk(headers).map_err(ApiError::InvalidInput)?;
    let input = ActionInput::read(&body, clerk.as_ref().map(|c| c.id.as_str()))?;
    Ok(Json(o.step_rectification(id, step, &input).await?))
}

/// Record the return visit (回访): when, by whom, what the applicant said. Once.
#[utoipa::path(
    post,
    path = "/api/v1/supervision/rectifications/{id}/visit",
    tag = "supervision",
    params(
        ("id" = String, Path, description = "Rectification id"),
        ("X-Clerk-Id" = Option<String>, Header, nullable = false, description = "The staff member, when the body names none (UTF-8, percent-encoded)"),
    ),
    request_body(
        description = "The record.",
        content((ActionRequest = "application/json", examples(("visit" = (summary = "A record", value = json!({"by": "staff-1", "note": "电话回访：申请人反映窗口等候时间过长"})))))),
    ),
    responses(
        (status = 200, description = "Recorded.", body = RectificationView),
        (status = 400, description = "`malformed_json`.", body = Error),
        (status = 404, description = "`not_found`.", body = Error),
        (status = 409, description = "`rectification_state`: recorded already, or the rectification is closed.", body = Error),
        (status = 422, description = "`invalid_input`: every problem with the record.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
async fn visit_rectification(
    State(o): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<RectificationView>, ApiError> {
    record(o, &id, RectificationStep::Visit, &headers, &body).await
}

/// Record the fix: what was done, by whom. Once.
#[utoipa::path(
    post,
    path = "/api/v1/supervision/rectifications/{id}/fix",
    tag = "supervision",
    params(
        ("id" = String, Path, description = "Rectification id"),
        ("X-Clerk-Id" = Option<String>, Header, nullable = false, description = "The staff member, when the body names none (UTF-8, percent-encoded)"),
    ),
    request_body(
        description = "The record.",
        content((ActionRequest = "application/json", examples(("fix" = (summary = "A record", value = json!({"by": "staff-1", "note": "增设窗口，高峰期分流"})))))),
    ),
    responses(
        (status = 200, description = "Recorded.", body = RectificationView),
        (status = 400, description = "`malformed_json`.", body = Error),
        (status = 404, description = "`not_found`.", body = Error),
        (status = 409, description = "`rectification_state`: recorded already, or the rectification is closed.", body = Error),
        (status = 422, description = "`invalid_input`: every problem with the record.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
async fn fix_rectification(
    State(o): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<RectificationView>, ApiError> {
    record(o, &id, RectificationStep::Fix, &headers, &body).await
}

/// Close the rectification (a supervisor, with a note): only after the visit and the fix.
#[utoipa::path(
    post,
    path = "/api/v1/supervision/rectifications/{id}/close",
    tag = "supervision",
    params(
        ("id" = String, Path, description = "Rectification id"),
        ("X-Clerk-Id" = Option<String>, Header, nullable = false, description = "The supervisor, when the body names none (UTF-8, percent-encoded)"),
    ),
    request_body(
        description = "The record.",
        content((ActionRequest = "application/json", examples(("close" = (summary = "A record", value = json!({"by": "staff-1", "note": "整改到位，申请人认可"})))))),
    ),
    responses(
        (status = 200, description = "Closed.", body = RectificationView),
        (status = 400, description = "`malformed_json`.", body = Error),
        (status = 404, description = "`not_found`.", body = Error),
        (status = 409, description = "`rectification_state`: the visit or the fix is not recorded yet, or it is closed already.", body = Error),
        (status = 422, description = "`invalid_input`: every problem with the record.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
async fn close_rectification(
    State(o): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<RectificationView>, ApiError> {
    record(o, &id, RectificationStep::Close, &headers, &body).await
}
