//! Shared-data lookups (四不提交), each recorded with why it is made and for whom.

use super::cases::readable_case;
use super::json_body;
use crate::AppState;
use crate::auth::Client;
use crate::error::ApiError;
use crate::middleware::clerk;
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
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let purpose = text("x-lookup-purpose");
    let case_id = text("x-case-id");
    let clerk = clerk(headers);
    let mut problems = Vec::new();
    match &purpose {
        None => problems.push(FieldProblem::new(
            "X-Lookup-Purpose",
            "required",
            "every lookup of citizens' data records why it is made",
        )),
        Some(p) if p.chars().count() > 200 => problems.push(FieldProblem::new(
            "X-Lookup-Purpose",
            "too_long",
            "at most 200 characters",
        )),
        Some(_) => {}
    }
    if case_id.is_none() && clerk.is_none() {
        problems.push(FieldProblem::new(
            "X-Case-Id",
            "required",
            "a lookup serves a case (X-Case-Id) or a clerk at a window (X-Clerk-Id)",
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
        ("name" = String, Path, description = "Lookup name, e.g. `tax.clearance`"),
        ("X-Lookup-Purpose" = String, Header, description = "Why the data is looked up (recorded), e.g. `二手房转移登记受理`; 1-200 characters."),
        ("X-Case-Id" = Option<String>, Header, description = "The case the lookup serves (one of the client's); this or `X-Clerk-Id` is required."),
        ("X-Clerk-Id" = Option<String>, Header, description = "The clerk the lookup serves; this or `X-Case-Id` is required."),
    ),
    request_body(content = Object, description = "The lookup's query.", content_type = "application/json"),
    responses(
        (status = 200, description = "The department's answer in the lookup's unified shape.", body = LookupAnswer),
        (status = 400, description = "`malformed_json`: the body is not JSON.", body = Error),
        (status = 404, description = "`not_found`: no such lookup, or no such record.", body = Error),
        (status = 413, description = "`payload_too_large`: the body exceeds `server.body_limit_bytes`.", body = Error),
        (status = 422, description = "`invalid_input` or `rejected`.", body = Error),
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
