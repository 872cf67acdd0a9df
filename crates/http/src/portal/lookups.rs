//! Shared-data lookups (四不提交), each recorded with why it is made and for whom.

use super::cases::readable_case;
use super::json_body;
use crate::AppState;
use crate::auth::Client;
use crate::error::ApiError;
use crate::middleware::{clerk, header_text};
use crate::openapi::Error;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use gateway_base::model::FieldProblem;
use gateway_cases::Orchestrator;
use gateway_cases::views::LookupAnswer;

/// Why a lookup is run and for whom: `X-Lookup-Purpose`, and the case (`X-Case-Id`, one the
/// client may read) or the clerk it serves. Every problem at once.
pub(super) async fn lookup_purpose(
    o: &Orchestrator,
    client: &Client,
    headers: &HeaderMap,
) -> Result<gateway_store::LookupServes, ApiError> {
    let mut problems = Vec::new();
    let mut read = |name: &str| {
        header_text(headers, name).unwrap_or_else(|problem| {
            problems.push(problem);
            None
        })
    };
    let purpose = read("X-Lookup-Purpose");
    let case_id = read("X-Case-Id");
    let clerk = clerk(headers).unwrap_or_else(|found| {
        problems.extend(found);
        None
    });
    match &purpose {
        None if !problems.iter().any(|p| p.field == "X-Lookup-Purpose") => problems.push(
            FieldProblem::new("X-Lookup-Purpose", "required", "查询公民数据须说明查询事由"),
        ),
        Some(p) if p.chars().count() > 200 => problems.push(FieldProblem::new(
            "X-Lookup-Purpose",
            "length",
            "查询事由不能超过200个字符",
        )),
        _ => {}
    }
    let unreadable = |name: &str| problems.iter().any(|p| p.field == name);
    if case_id.is_none() && clerk.is_none() && !unreadable("X-Case-Id") && !unreadable("X-Clerk-Id")
    {
        problems.push(FieldProblem::new(
            "X-Case-Id",
            "required",
            "查询须服务于一个办件（X-Case-Id）或窗口工作人员（X-Clerk-Id）",
        ));
    }
    if !problems.is_empty() {
        return Err(ApiError::InvalidInput(problems));
    }
    if let Some(id) = &case_id {
        readable_case(o, client, id).await?;
    }
    Ok(gateway_store::LookupServes {
        purpose: purpose.unwrap_or_default(),
        case_id,
        clerk,
    })
}

/// A shared-data lookup at the department that serves it.
#[utoipa::path(
    post,
    path = "/api/v1/lookups/{name}",
    tag = "lookups",
    params(
        ("name" = String, Path, description = "Lookup name, e.g. `tax.clearance` (the catalogue lists them)"),
        ("X-Lookup-Purpose" = String, Header, example = "%E4%BA%8C%E6%89%8B%E6%88%BF%E8%BD%AC%E7%A7%BB%E7%99%BB%E8%AE%B0%E5%8F%97%E7%90%86", description = "Why the data is looked up (recorded), 1-200 characters: UTF-8, percent-encoded as `encodeURIComponent` makes it (`%E4%BA%8C%E6%89%8B%E6%88%BF%E8%BD%AC%E7%A7%BB%E7%99%BB%E8%AE%B0%E5%8F%97%E7%90%86` is `二手房转移登记受理`); raw UTF-8 is read too."),
        ("X-Case-Id" = Option<String>, Header, nullable = false, description = "The case the lookup serves (one of the client's); this or `X-Clerk-Id` is required."),
        ("X-Clerk-Id" = Option<String>, Header, nullable = false, example = "%E5%BC%A0%E4%B8%89", description = "The clerk the lookup serves, UTF-8 percent-encoded (`张三`); this or `X-Case-Id` is required."),
        ("X-Clerk-Window" = Option<String>, Header, nullable = false, example = "%E7%AA%97%E5%8F%A3%203", description = "The clerk's window, UTF-8 percent-encoded (`窗口 3`)."),
        ("X-Clerk-Hall" = Option<String>, Header, nullable = false, example = "%E9%BC%93%E6%A5%BC%E5%8C%BA%E6%94%BF%E5%8A%A1%E6%9C%8D%E5%8A%A1%E4%B8%AD%E5%BF%83", description = "The service hall, UTF-8 percent-encoded (`鼓楼区政务服务中心`)."),
    ),
    request_body(content = Object, description = "The lookup's query (each lookup also has a path of its own, whose body is its query).", content_type = "application/json"),
    responses(
        (status = 200, description = "The department's answer in the lookup's unified shape.", body = LookupAnswer),
        (status = 400, description = "`malformed_json`: the body is not JSON.", body = Error),
        (status = 404, description = "`not_found`: no such lookup, or no such record.", body = Error),
        (status = 413, description = "`payload_too_large`: the body exceeds `server.body_limit_bytes`.", body = Error),
        (status = 422, description = "`invalid_input` (the query's problems, or the headers': no purpose, neither case nor clerk, an unreadable value) or `rejected`.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
        (status = 502, description = "`department_protocol_error` or `adapter_failed`.", body = Error),
        (status = 503, description = "`department_unavailable`.", body = Error),
        (status = 504, description = "`department_timeout`.", body = Error),
    )
)]
pub(super) async fn lookup(
    State(o): State<AppState>,
    Extension(client): Extension<Client>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<LookupAnswer>, ApiError> {
    let query = json_body(&body)?;
    let served = lookup_purpose(&o, &client, &headers).await?;
    Ok(Json(o.lookup(&client.id, &name, &query, &served).await?))
}
