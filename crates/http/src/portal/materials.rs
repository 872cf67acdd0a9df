//! Uploads of materials: the body is the file's bytes, streamed into the store as it arrives
//! (never buffered whole; `server.body_limit_bytes` does not apply, the material's own
//! `max_mib` does). The request timeout does not cut an upload short; `server.upload_timeout_ms`
//! bounds it as a whole, and a pause longer than `server.request_timeout_ms` ends it.
//!
//! A refused upload is answered at once; what the client still sends is read and dropped for a
//! moment ([`DRAIN`]) so the answer reaches it before the connection closes, then the
//! connection is closed.

use crate::AppState;
use crate::auth::Client;
use crate::error::ApiError;
use crate::openapi::Error;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use futures::StreamExt;
use gateway_cases::materials::{Applicant, StoredMaterial};
use std::time::Duration;
use utoipa::ToSchema;

/// A material's bytes, as the body of an upload.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub(crate) struct MaterialFile(#[allow(dead_code)] Vec<u8>);

/// After a refusal, how long and how much of the rest of a body is read and dropped.
const DRAIN: (Duration, usize) = (Duration::from_secs(2), 8 * 1024 * 1024);

/// Whether the client may apply for a service (`apply:<service>`).
pub(super) fn applicant_scopes(client: &Client) -> impl Fn(&str) -> bool + Send + Sync + '_ {
    move |service: &str| client.may(&format!("apply:{service}"))
}

/// Whether a request is an upload: exempt from the request timeout as a whole.
pub(super) fn is_upload(method: &axum::http::Method, path: &str) -> bool {
    method == axum::http::Method::PUT && path.contains("/materials/")
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Read and drop what is left of a refused body, briefly, in the background.
fn drain(mut body: axum::body::BodyDataStream) {
    tokio::spawn(async move {
        let (time, bytes) = DRAIN;
        let mut read = 0;
        let _ = tokio::time::timeout(time, async {
            while let Some(Ok(piece)) = body.next().await {
                read += piece.len();
                if read > bytes {
                    break;
                }
            }
        })
        .await;
    });
}

/// Upload a material into a draft. The body is the file's bytes (any `Content-Type`; it is
/// ignored): its type is decided from its content (PDF, JPEG, PNG, OFD), its SM3 computed as
/// it streams. The same bytes are stored once. The material must be one of the service's
/// (its form lists them) and not in the draft yet (delete it first to replace it).
#[utoipa::path(
    put,
    path = "/api/v1/drafts/{id}/materials/{material}",
    tag = "materials",
    params(
        ("id" = String, Path, description = "Draft id"),
        ("material" = String, Path, description = "Material code, as the service's form lists it"),
    ),
    request_body(
        description = "The file's bytes: PDF, JPEG, PNG or OFD, at most the material's `max_mib`.",
        content((MaterialFile = "application/octet-stream", examples(("pdf" = (summary = "A (very small) PDF", value = json!("%PDF-1.7\n…\n%%EOF\n")))))),
    ),
    responses(
        (status = 201, description = "Stored.", body = StoredMaterial),
        (status = 400, description = "`upload_incomplete`: the body broke off before its end; nothing was kept.", body = Error),
        (status = 404, description = "`not_found`: no such draft (or another client's, or expired), or the service has no such material.", body = Error),
        (status = 408, description = "`upload_timeout`: longer than `server.upload_timeout_ms`, or a pause longer than `server.request_timeout_ms`; nothing was kept.", body = Error),
        (status = 409, description = "`conflict`: the draft has this material already (delete it first).", body = Error),
        (status = 413, description = "`payload_too_large`: larger than the material's `max_mib`; nothing was kept.", body = Error),
        (status = 422, description = "`invalid_input` on `materials.<code>`: `empty`, `format` (not PDF/JPEG/PNG/OFD by its content, or not one the material takes), `truncated`.", body = Error),
    )
)]
pub(super) async fn to_draft(
    State(o): State<AppState>,
    Extension(client): Extension<Client>,
    Path((id, material)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<StoredMaterial>), ApiError> {
    let may_apply = applicant_scopes(&client);
    let applicant = Applicant {
        client: &client.id,
        may_apply: &may_apply,
    };
    let mut stream = body.into_data_stream();
    let stored = o
        .upload_to_draft(
            &applicant,
            &id,
            &material,
            declared_length(&headers),
            &mut stream,
        )
        .await;
    match stored {
        Ok(stored) => Ok((StatusCode::CREATED, Json(stored))),
        Err(e) => {
            drain(stream);
            Err(e.into())
        }
    }
}

/// Upload a material of a stored case: a supplement (补正), or a material promised under
/// 容缺受理. The case must be the client's own; the material one its service lists and not
/// provided yet (a promised one may be). The body is as for a draft's upload.
#[utoipa::path(
    put,
    path = "/api/v1/cases/{id}/materials/{material}",
    tag = "materials",
    params(
        ("id" = String, Path, description = "Case id"),
        ("material" = String, Path, description = "Material code, as the service's form lists it"),
    ),
    request_body(
        description = "The file's bytes: PDF, JPEG, PNG or OFD, at most the material's `max_mib`.",
        content((MaterialFile = "application/octet-stream", examples(("pdf" = (summary = "A (very small) PDF", value = json!("%PDF-1.7\n…\n%%EOF\n")))))),
    ),
    responses(
        (status = 201, description = "Stored with the case.", body = StoredMaterial),
        (status = 400, description = "`upload_incomplete`: the body broke off before its end; nothing was kept.", body = Error),
        (status = 404, description = "`not_found`: no such case of this client, or its service has no such material.", body = Error),
        (status = 408, description = "`upload_timeout`: longer than `server.upload_timeout_ms`, or a pause longer than `server.request_timeout_ms`; nothing was kept.", body = Error),
        (status = 409, description = "`conflict`: the case has this material already.", body = Error),
        (status = 413, description = "`payload_too_large`: larger than the material's `max_mib`; nothing was kept.", body = Error),
        (status = 422, description = "`invalid_input` on `materials.<code>`: `empty`, `format`, `truncated`.", body = Error),
    )
)]
pub(super) async fn to_case(
    State(o): State<AppState>,
    Extension(client): Extension<Client>,
    Path((id, material)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<StoredMaterial>), ApiError> {
    let may_apply = applicant_scopes(&client);
    let applicant = Applicant {
        client: &client.id,
        may_apply: &may_apply,
    };
    let mut stream = body.into_data_stream();
    let stored = o
        .upload_to_case(
            &applicant,
            &id,
            &material,
            declared_length(&headers),
            &mut stream,
        )
        .await;
    match stored {
        Ok(stored) => Ok((StatusCode::CREATED, Json(stored))),
        Err(e) => {
            drain(stream);
            Err(e.into())
        }
    }
}
