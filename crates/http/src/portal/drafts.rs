//! Drafts: an application in preparation, owned by the client that opened it, holding its
//! materials until pre-review and application name it (`?draft=<id>`). Another client's draft
//! is "not found", like a missing one. Uploads are in [`super::materials`].

use super::materials::applicant_scopes;
use crate::AppState;
use crate::auth::Client;
use crate::error::ApiError;
use crate::openapi::Error;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use gateway_cases::materials::{Applicant, DraftCreated, DraftView};

/// Open a draft of an application: upload its materials into it, then name it on pre-review
/// and application (`?draft=<id>`). It is removed `materials.draft_ttl_hours` (default 24)
/// after its last change unless an application consumed it.
#[utoipa::path(
    post,
    path = "/api/v1/services/{code}/drafts",
    tag = "materials",
    params(("code" = String, Path, description = "Service code, e.g. `one-thing.open-restaurant`")),
    responses(
        (status = 201, description = "The draft.", body = DraftCreated),
        (status = 403, description = "`forbidden`: the client lacks `apply:<code>`.", body = Error),
        (status = 404, description = "`not_found`: no such service.", body = Error),
    )
)]
pub(super) async fn create(
    State(o): State<AppState>,
    Extension(client): Extension<Client>,
    Path(code): Path<String>,
) -> Result<(StatusCode, Json<DraftCreated>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(o.create_draft(&client.id, &code).await?),
    ))
}

/// What a draft holds: each material's type, size and SM3 (never its bytes).
#[utoipa::path(
    get,
    path = "/api/v1/drafts/{id}",
    tag = "materials",
    params(("id" = String, Path, description = "Draft id")),
    responses(
        (status = 200, description = "The draft and its materials.", body = DraftView),
        (status = 404, description = "`not_found`: no such draft (or another client's, or expired).", body = Error),
    )
)]
pub(super) async fn draft(
    State(o): State<AppState>,
    Extension(client): Extension<Client>,
    Path(id): Path<String>,
) -> Result<Json<DraftView>, ApiError> {
    let may_apply = applicant_scopes(&client);
    let applicant = Applicant {
        client: &client.id,
        may_apply: &may_apply,
    };
    Ok(Json(o.draft_view(&applicant, &id).await?))
}

/// Remove a material from a draft (then upload it again).
#[utoipa::path(
    delete,
    path = "/api/v1/drafts/{id}/materials/{material}",
    tag = "materials",
    params(
        ("id" = String, Path, description = "Draft id"),
        ("material" = String, Path, description = "Material code, as the service's form lists it"),
    ),
    responses(
        (status = 204, description = "Removed."),
        (status = 404, description = "`not_found`: no such draft (or another client's, or expired), or it holds no such material.", body = Error),
    )
)]
pub(super) async fn remove(
    State(o): State<AppState>,
    Extension(client): Extension<Client>,
    Path((id, material)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let may_apply = applicant_scopes(&client);
    let applicant = Applicant {
        client: &client.id,
        may_apply: &may_apply,
    };
    o.remove_from_draft(&applicant, &id, &material).await?;
    Ok(StatusCode::NO_CONTENT)
}
