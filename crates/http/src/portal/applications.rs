//! Pre-review and application: every problem at once, then the case stored before the answer.

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
use gateway_base::model::FieldProblem;
use gateway_cases::views::PreReview;
use gateway_store::Arrival;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

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
    /// `received` for a new case; for a repeat with the same `Idempotency-Key`, the case's
    /// status now (`in_progress`, `completed` …), as `GET /api/v1/cases/{id}` shows it.
    pub(crate) status: gateway_cases::CaseStatus,
    /// Where to follow the case.
    pub(crate) links: AcceptedLinks,
}

/// Every problem with a filled form, at once (一次性告知): schema, identifiers, lookups, rules and
/// each department's own check.
#[utoipa::path(
    post,
    path = "/api/v1/services/{code}/pre-review",
    tag = "applications",
    params(
        ("code" = String, Path, description = "Service code, e.g. `market-regulation.business-licence` (each service also has a path of its own, whose body is its form)"),
        DraftQuery,
    ),
    request_body(content = Object, description = "The filled form (the service's form: `GET /api/v1/services/{code}/form`).", content_type = "application/json"),
    responses(
        (status = 200, description = "The review: `ok` when there is no problem.", body = PreReview),
        (status = 400, description = "`malformed_json`: the body is not JSON.", body = Error),
        (status = 404, description = "`not_found`: no such service or draft, or a department found no record.", body = Error),
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
    Extension(client): Extension<Client>,
    Path(code): Path<String>,
    Query(query): Query<DraftQuery>,
    body: Bytes,
) -> Result<Json<PreReview>, ApiError> {
    let form = json_body(&body)?;
    let review = match &query.draft {
        Some(draft) => o.review_with_draft(&code, &form, &client.id, draft).await?,
        None => o.review(&code, &form).await?,
    };
    Ok(Json(review.view()))
}

/// The draft an application was prepared in.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct DraftQuery {
    /// A draft of this client for this service (`POST /api/v1/services/{code}/drafts`): its
    /// materials are reviewed with the form, and an accepted application stores them with the
    /// case and consumes the draft. Without it the service's materials count as not provided.
    #[param(nullable = false)]
    draft: Option<String>,
}

/// Apply: the case and every step are stored before the answer (202).
#[utoipa::path(
    post,
    path = "/api/v1/services/{code}/applications",
    tag = "applications",
    params(
        ("code" = String, Path, description = "Service code, e.g. `market-regulation.business-licence` (each service also has a path of its own, whose body is its form)"),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, pattern = "^[!-~]{1,255}$", example = "portal-2026-000123", description = "1-255 visible ASCII characters, scoped to the client and the service: a repeat returns the same case (`Idempotent-Replayed: true`), the same key with another body is `422 idempotency_conflict`"),
        ("X-Clerk-Id" = Option<String>, Header, nullable = false, example = "%E5%BC%A0%E4%B8%89", description = "The clerk at the window, recorded on the case: UTF-8, percent-encoded as `encodeURIComponent` makes it (`%E5%BC%A0%E4%B8%89` is `张三`); raw UTF-8 is read too"),
        ("X-Clerk-Window" = Option<String>, Header, nullable = false, example = "%E7%AA%97%E5%8F%A3%203", description = "The clerk's window, UTF-8 percent-encoded (`%E7%AA%97%E5%8F%A3%203` is `窗口 3`)"),
        DraftQuery,
        ("X-Clerk-Hall" = Option<String>, Header, nullable = false, example = "%E9%BC%93%E6%A5%BC%E5%8C%BA%E6%94%BF%E5%8A%A1%E6%9C%8D%E5%8A%A1%E4%B8%AD%E5%BF%83", description = "The service hall, UTF-8 percent-encoded (`鼓楼区政务服务中心`)"),
        ("X-Commitment-Signed-By" = Option<String>, Header, nullable = false, example = "%E5%BC%A0%E4%B8%89", description = "容缺受理: who signs the commitment (容缺承诺书) to provide the deferrable materials the application lacks (the pre-review's `materials.deferrable`), UTF-8 percent-encoded (`张三`); each is due its material's `commitment_days` working days after receipt. With `[materials] commitment_required`, an application lacking one without this header is `422 invalid_input` on `materials.<code>`"),
    ),
    request_body(content = Object, description = "The filled form (the service's form: `GET /api/v1/services/{code}/form`).", content_type = "application/json"),
    responses(
        (status = 202, description = "Stored; delivery follows. A repeat with the same `Idempotency-Key` answers the same case, with its status now, and `Idempotent-Replayed: true`.", body = Accepted),
        (status = 400, description = "`malformed_json`: the body is not JSON.", body = Error),
        (status = 404, description = "`not_found`: no such service or draft (consumed by another application, or expired), or a department found no record.", body = Error),
        (status = 413, description = "`payload_too_large`: the body exceeds `server.body_limit_bytes`.", body = Error),
        (status = 422, description = "`invalid_input` (every problem in `fields`: the form's, its materials', or an unreadable header's), `idempotency_conflict` or `rejected`.", body = Error),
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
    Query(query): Query<DraftQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, HeaderMap, Json<Accepted>), ApiError> {
    let form = json_body(&body)?;
    let mut arrival = arrival(&client, &code, &headers, &body)?;
    if let Some(draft) = query.draft {
        // The same form with another draft is another application.
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("{}\0draft={draft}", arrival.request_digest));
        arrival.request_digest = sdk::sign::to_hex(digest);
        arrival.draft = Some(draft);
    }
    let applied = o.apply(&code, form, arrival).await?;
    let case_id = &applied.case_id;
    let mut answer_headers = HeaderMap::new();
    let mut status = gateway_cases::CaseStatus::Received;
    if applied.replayed {
        answer_headers.insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
        // The case may have moved on since the first answer: a portal retrying after a lost
        // answer must not be told `received` about a case that is completed.
        let states: Vec<_> = o
            .store()
            .steps(case_id)
            .await
            .map_err(|e| ApiError::Internal(format!("reading the replayed case's steps: {e}")))?
            .iter()
            .map(|s| s.state)
            .collect();
        status = gateway_cases::CaseStatus::of(&states);
    }
    let body = Accepted {
        case_id: case_id.clone(),
        status,
        links: AcceptedLinks {
            case: format!("/api/v1/cases/{case_id}"),
        },
    };
    Ok((StatusCode::ACCEPTED, answer_headers, Json(body)))
}

/// The pattern of an `Idempotency-Key`, as documented on `apply` (the document's tests hold
/// them equal): 1-255 visible ASCII characters, what [`idempotency_key_is_valid`] checks.
#[cfg(test)]
pub(crate) const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]{1,255}$";

/// Whether a key is 1-255 visible ASCII characters (the documented pattern `^[!-~]{1,255}$`).
fn idempotency_key_is_valid(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
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
    let mut problems = Vec::new();
    let key = headers.get("idempotency-key").and_then(|v| {
        let key = v.to_str().ok().filter(|k| idempotency_key_is_valid(k));
        if key.is_none() {
            problems.push(FieldProblem::new(
                "Idempotency-Key",
                "format",
                "应为1至255个可见ASCII字符（不含空格）",
            ));
        }
        key.map(|key| format!("{}:{service}:{key}", client.id))
    });
    let clerk = clerk(headers).unwrap_or_else(|found| {
        problems.extend(found);
        None
    });
    // 容缺承诺: who commits to provide the deferrable materials the application lacks.
    let commitment = crate::middleware::header_text(headers, "X-Commitment-Signed-By")
        .unwrap_or_else(|problem| {
            problems.push(problem);
            None
        });
    if !problems.is_empty() {
        return Err(ApiError::InvalidInput(problems));
    }
    let mut digest = sha2::Sha256::new();
    digest.update(service.as_bytes());
    digest.update([0]);
    digest.update(body);
    Ok(Arrival {
        idempotency_key: key,
        request_digest: sdk::sign::to_hex(digest.finalize()),
        clerk,
        client: Some(client.id.clone()),
        materials: Vec::new(),
        draft: None,
        commitment,
        service_name: None,
    })
}
