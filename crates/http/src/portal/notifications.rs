//! A case's notifications (SMS, see [`gateway_cases::notifications`]): what was sent about it,
//! with masked numbers only, and the applicant's number and opt-out, set by the case's owner.

use super::cases::readable_case;
use crate::AppState;
use crate::auth::Client;
use crate::error::ApiError;
use crate::openapi::Error;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use gateway_base::model::FieldProblem;
use gateway_cases::notifications::{CaseNotifications, ContactRequest};

/// What was sent about a case: the applicant's notices and the chases (催办) about its
/// steps, each with its template, state and masked number; and the applicant's contact
/// (masked) and opt-out.
#[utoipa::path(
    get,
    path = "/api/v1/cases/{id}/notifications",
    tag = "notifications",
    params(("id" = String, Path, description = "Case id")),
    responses(
        (status = 200, description = "The case's notifications.", body = CaseNotifications),
        (status = 404, description = "`not_found`: no such case of this client.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
pub(super) async fn notifications(
    State(o): State<AppState>,
    Extension(client): Extension<Client>,
    Path(id): Path<String>,
) -> Result<Json<CaseNotifications>, ApiError> {
    readable_case(&o, &client, &id).await?;
    Ok(Json(o.case_notifications(&id).await?))
}

/// Register the applicant's mobile number for the case's notices, and/or opt out of them
/// (`{"opt_out": true}`; `false` opts back in). Notices waiting for a number are sent once it
/// is registered; the number is stored sealed and only ever shown masked.
#[utoipa::path(
    put,
    path = "/api/v1/cases/{id}/notifications",
    tag = "notifications",
    params(("id" = String, Path, description = "Case id")),
    request_body(
        description = "The applicant's number, the opt-out, or both.",
        content((ContactRequest = "application/json", examples(
            ("register" = (summary = "Notices go to this number", value = json!({"phone": "13912345678"}))),
            ("opt_out" = (summary = "Send the applicant nothing more", value = json!({"opt_out": true}))),
        ))),
    ),
    responses(
        (status = 200, description = "The case's notifications and contact now.", body = CaseNotifications),
        (status = 400, description = "`malformed_json`: the body is not JSON.", body = Error),
        (status = 404, description = "`not_found`: no such case of this client.", body = Error),
        (status = 422, description = "`invalid_input`: `phone` is not a mobile number (`format`), an unknown field, or neither field given (`required`).", body = Error),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
pub(super) async fn set_contact(
    State(o): State<AppState>,
    Extension(client): Extension<Client>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<CaseNotifications>, ApiError> {
    readable_case(&o, &client, &id).await?;
    let value = super::json_body(&body)?;
    let request: ContactRequest = serde_json::from_value(value).map_err(|e| {
        ApiError::InvalidInput(vec![FieldProblem::new(
            "",
            "invalid",
            format!(
                "请求体应为 {{\"phone\"?: 手机号码, \"opt_out\"?: true|false}}：{}",
                gateway_base::redact::redact(&e.to_string())
            ),
        )])
    })?;
    Ok(Json(o.set_case_contact(&id, &request).await?))
}
