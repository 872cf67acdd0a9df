//! The case lifecycle after delivery: `POST /api/v1/cases/{id}/matters/{step}/supplements`
//! (补正), `POST /api/v1/cases/{id}/withdrawal` (撤回), `GET /api/v1/supervision/commitments`
//! (容缺 outstanding), see [`gateway_cases::lifecycle`]. The case routes are the case owner's,
//! like `GET /api/v1/cases/{id}`: another client's case is not found.

use super::cases::readable_case;
use crate::AppState;
use crate::auth::Client;
use crate::error::ApiError;
use crate::openapi::Error;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use gateway_base::model::FieldProblem;
use gateway_cases::lifecycle::supplements::SupplementArrival;
use gateway_cases::lifecycle::views::{
    Commitments, SupplementAccepted, SupplementRequest, WithdrawalAccepted, WithdrawalRequest,
};
use serde::de::DeserializeOwned;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The lifecycle routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(supplement))
        .routes(routes!(withdraw))
        .routes(routes!(commitments))
}

/// A JSON body of type `T`: not JSON is `malformed_json`, a wrong shape `invalid_input` naming
/// where.
fn body_of<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let value = super::json_body(body)?;
    serde_json::from_value(value).map_err(|e| {
        ApiError::InvalidInput(vec![FieldProblem::new(
            "",
            "type",
            format!("请求体格式不符：{e}"),
        )])
    })
}

/// Hand the applicant's supplement (补正) of a returned matter to its department: the changed
/// fields (merged into the matter's input and checked against its schema) and the codes of
/// materials uploaded to the case first. Stored before the answer; the step is `supplemented`
/// until the department's receipt, and its clock runs again (the working days it spent
/// returned are not counted against its limit).
#[utoipa::path(
    post,
    path = "/api/v1/cases/{id}/matters/{step}/supplements",
    tag = "applications",
    params(
        ("id" = String, Path, description = "Case id"),
        ("step" = String, Path, description = "Step id of the returned matter (`matters[].step` of the case)"),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, pattern = "^[!-~]{1,255}$", example = "portal-2026-000123-s1", description = "1-255 visible ASCII characters, scoped to the client and the case: a repeat answers the same supplement (`Idempotent-Replayed: true`), the same key with another body is `422 idempotency_conflict`"),
    ),
    request_body(
        description = "The changed fields and the materials' codes.",
        content((SupplementRequest = "application/json", examples(("supplement" = (summary = "A corrected field and a material uploaded anew", value = json!({"fields": {"registered_capital": 500}, "materials": ["articles"]})))))),
    ),
    responses(
        (status = 202, description = "Stored; delivery to the department follows.", body = SupplementAccepted),
        (status = 400, description = "`malformed_json`.", body = Error),
        (status = 404, description = "`not_found`: no such case of this client, or no such step.", body = Error),
        (status = 409, description = "`not_returned`: the matter is not returned to the applicant; `unsupported_by_department`: its department's adapter takes no supplements.", body = Error),
        (status = 422, description = "`invalid_input` (every problem: `fields.<path>` against the matter's schema, `materials[i]` not listed or not uploaded), or `idempotency_conflict`.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
async fn supplement(
    State(o): State<AppState>,
    Extension(client): Extension<Client>,
    Path((id, step)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, HeaderMap, Json<SupplementAccepted>), ApiError> {
    let case = readable_case(&o, &client, &id).await?;
    let request: SupplementRequest = body_of(&body)?;
    let arrival = arrival(&client, &step, &headers, &body)?;
    let (accepted, replayed) = o.supplement(&case, &step, request, arrival).await?;
    let mut answer = HeaderMap::new();
    if replayed {
        answer.insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    Ok((StatusCode::ACCEPTED, answer, Json(accepted)))
}

/// A supplement's key (scoped to the client) and the digest of its step and body.
fn arrival(
    client: &Client,
    step: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<SupplementArrival, ApiError> {
    use sha2::Digest;
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let key = v.to_str().ok().filter(|k| {
                (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic())
            });
            let Some(key) = key else {
                return Err(ApiError::InvalidInput(vec![FieldProblem::new(
                    "Idempotency-Key",
                    "format",
                    "应为1至255个可见ASCII字符（不含空格）",
                )]));
            };
            Some(format!("{}:{key}", client.id))
        }
    };
    let mut digest = sha2::Sha256::new();
    digest.update(step.as_bytes());
    digest.update([0]);
    digest.update(body);
    Ok(SupplementArrival {
        idempotency_key: key,
        request_digest: sdk::sign::to_hex(digest.finalize()),
    })
}

/// Withdraw the case (撤回): matters no department holds yet are withdrawn at once and never
/// delivered; each department holding one is told once, and its answer is the matter's final
/// state (`withdrawn`, or the decision it made first).
#[utoipa::path(
    post,
    path = "/api/v1/cases/{id}/withdrawal",
    tag = "applications",
    params(("id" = String, Path, description = "Case id")),
    request_body(
        description = "The applicant's reason.",
        content((WithdrawalRequest = "application/json", examples(("withdrawal" = (summary = "The applicant's reason", value = json!({"reason": "经营计划调整，暂不办理"})))))),
    ),
    responses(
        (status = 202, description = "Stored; the departments holding matters are told.", body = WithdrawalAccepted),
        (status = 400, description = "`malformed_json`.", body = Error),
        (status = 404, description = "`not_found`: no such case of this client.", body = Error),
        (status = 409, description = "`case_decided`: every matter is decided; `already_withdrawn`; `unsupported_by_department`: a department that must be told cannot be (the message names the matters). Nothing changed.", body = Error),
        (status = 422, description = "`invalid_input`: `reason` missing, blank or longer than 500 characters.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
async fn withdraw(
    State(o): State<AppState>,
    Extension(client): Extension<Client>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<WithdrawalAccepted>), ApiError> {
    let case = readable_case(&o, &client, &id).await?;
    let request: WithdrawalRequest = body_of(&body)?;
    let accepted = o.withdraw(&case, request).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// 容缺: every material applicants committed to provide later and have not yet, overdue first.
#[utoipa::path(
    get,
    path = "/api/v1/supervision/commitments",
    tag = "supervision",
    responses(
        (status = 200, description = "Outstanding commitments, overdue first, then by due date.", body = Commitments),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
async fn commitments(State(o): State<AppState>) -> Result<Json<Commitments>, ApiError> {
    Ok(Json(o.outstanding_commitments().await?))
}
