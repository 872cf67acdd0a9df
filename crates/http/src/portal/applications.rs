//! Pre-review and application: every problem at once, then the case stored before the answer.

use super::json_body;
use crate::AppState;
use crate::auth::Client;
use crate::error::ApiError;
use crate::middleware::clerk;
use crate::openapi::Error;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use gateway_base::model::FieldProblem;
use gateway_cases::views::PreReview;
use gateway_store::Arrival;
use serde::Serialize;
use utoipa::ToSchema;

/// Always `received`: the case is stored.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AcceptedStatus {
    /// Stored, nothing delivered yet.
    Received,
}

/// Links of an accepted application.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AcceptedLinks {
    /// The case view.
    pub(crate) case: String,
}

/// An accepted application.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Accepted {
    /// The case id.
    pub(crate) case_id: String,
    /// `received`.
    pub(crate) status: AcceptedStatus,
    /// Where to follow the case.
    pub(crate) links: AcceptedLinks,
}

/// Every problem with a filled form, at once (一次性告知): schema, identifiers, lookups, rules and
/// each department's own check.
#[utoipa::path(
    post,
    path = "/api/v1/services/{code}/pre-review",
    tag = "applications",
    params(("code" = String, Path, description = "Service code")),
    request_body(content = Object, description = "The filled form.", content_type = "application/json"),
    responses(
        (status = 200, description = "The review: `ok` when there is no problem.", body = PreReview),
        (status = 400, description = "`malformed_json`: the body is not JSON.", body = Error),
        (status = 404, description = "`not_found`: no such service, or a department found no record.", body = Error),
        (status = 413, description = "`payload_too_large`: the body exceeds `server.body_limit_bytes`.", body = Error),
        (status = 422, description = "`invalid_input` or `rejected` from a department's check.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
        (status = 502, description = "`department_protocol_error` or `adapter_failed`.", body = Error),
        (status = 503, description = "`department_unavailable`.", body = Error),
        (status = 504, description = "`department_timeout`.", body = Error),
    )
)]
pub(super) async fn pre_review(
    State(o): State<AppState>,
    Path(code): Path<String>,
    body: Bytes,
) -> Result<Json<PreReview>, ApiError> {
    let form = json_body(&body)?;
    Ok(Json(o.review(&code, &form).await?.view()))
}

/// Apply: the case and every step are stored before the answer (202).
#[utoipa::path(
    post,
    path = "/api/v1/services/{code}/applications",
    tag = "applications",
    params(
        ("code" = String, Path, description = "Service code"),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, description = "1-255 visible ASCII characters; a repeat returns the same case"),
        ("X-Clerk-Id" = Option<String>, Header, nullable = false, description = "The clerk at the window (UTF-8), recorded on the case"),
        ("X-Clerk-Window" = Option<String>, Header, nullable = false, description = "The clerk's window"),
        ("X-Clerk-Hall" = Option<String>, Header, nullable = false, description = "The service hall"),
    ),
    request_body(content = Object, description = "The filled form.", content_type = "application/json"),
    responses(
        (status = 202, description = "Stored; delivery follows.", body = Accepted,
            headers(("Idempotent-Replayed" = String, description = "`true` when this repeats an earlier request with the same key"))),
        (status = 400, description = "`malformed_json`: the body is not JSON.", body = Error),
        (status = 404, description = "`not_found`: no such service, or a department found no record.", body = Error),
        (status = 413, description = "`payload_too_large`: the body exceeds `server.body_limit_bytes`.", body = Error),
        (status = 422, description = "`invalid_input` (every problem in `fields`), `idempotency_conflict` or `rejected`.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
        (status = 502, description = "`department_protocol_error` or `adapter_failed`.", body = Error),
        (status = 503, description = "`department_unavailable`.", body = Error),
        (status = 504, description = "`department_timeout`.", body = Error),
    )
)]
pub(super) async fn apply(
    State(o): State<AppState>,
    Extension(client): Extension<Client>,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, HeaderMap, Json<Accepted>), ApiError> {
    let form = json_body(&body)?;
    let arrival = arrival(&client, &code, &headers, &body)?;
    let applied = o.apply(&code, form, arrival).await?;
    let case_id = &applied.case_id;
    let mut answer_headers = HeaderMap::new();
    if applied.replayed {
        answer_headers.insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    let body = Accepted {
        case_id: case_id.clone(),
        status: AcceptedStatus::Received,
        links: AcceptedLinks {
            case: format!("/api/v1/cases/{case_id}"),
        },
    };
    Ok((StatusCode::ACCEPTED, answer_headers, Json(body)))
}

/// How an application arrives: its idempotency key (scoped to the client and the service), a
/// digest of the body to tell a true repeat from a reused key, the clerk and the client.
pub(super) fn arrival(
    client: &Client,
    service: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Arrival, ApiError> {
    use sha2::Digest;
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let key = v
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|k| !k.is_empty() && k.len() <= 255);
            let key = key.ok_or_else(|| {
                ApiError::InvalidInput(vec![FieldProblem::new(
                    "Idempotency-Key",
                    "format",
                    "1-255 visible ASCII characters",
                )])
            })?;
            Some(format!("{}:{service}:{key}", client.id))
        }
    };
    let mut digest = sha2::Sha256::new();
    digest.update(service.as_bytes());
    digest.update([0]);
    digest.update(body);
    Ok(Arrival {
        idempotency_key: key,
        request_digest: hex::encode(digest.finalize()),
        clerk: clerk(headers),
        client: Some(client.id.clone()),
    })
}
