//! Departments call back with decisions; their adapter authenticates and reads the call.
//!
//! The route is served on the portal listener (departments call `server.public_url`) but
//! documented apart, in the departments' document (`/callbacks/openapi.json`): portals never
//! call it.

use crate::AppState;
use crate::error::ApiError;
use crate::openapi::Error;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use gateway_plugins::host::contract::CallbackRequest;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The departments' routes, with their own document.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::callbacks_base()).routes(routes!(callback))
}

/// A callback was taken.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CallbackAck {
    /// Always true.
    pub(crate) ok: bool,
}

/// A department reports a decision; its adapter authenticates and reads the request.
#[utoipa::path(
    post,
    path = "/callbacks/{department}",
    tag = "departments",
    params(("department" = String, Path, description = "Department id")),
    request_body(
        description = "The department's own message, as its protocol says; its adapter authenticates and reads it (e.g. market regulation: signed JSON). Any other content type is handed to the adapter the same way.",
        content(
            (Object = "application/json"),
            (String = "application/xml"),
            (String = "text/xml"),
            (String = "application/x-www-form-urlencoded"),
        ),
    ),
    responses(
        (status = 200, description = "Taken.", body = CallbackAck),
        (status = 404, description = "`not_found`: no such department, or no step with that reference.", body = Error),
        (status = 413, description = "`payload_too_large`: the body exceeds `server.body_limit_bytes`.", body = Error),
        (status = 422, description = "`invalid_input` or `rejected`: the adapter refused the callback.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
        (status = 502, description = "`department_protocol_error` or `adapter_failed`.", body = Error),
        (status = 503, description = "`department_unavailable`.", body = Error),
        (status = 504, description = "`department_timeout`.", body = Error),
    )
)]
async fn callback(
    State(o): State<AppState>,
    Path(department): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<CallbackAck>, ApiError> {
    let headers = headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    o.callback(
        &department,
        CallbackRequest {
            headers,
            body: body.to_vec(),
        },
    )
    .await?;
    Ok(Json(CallbackAck { ok: true }))
}
