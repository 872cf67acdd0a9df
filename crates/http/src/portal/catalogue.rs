//! The catalogue and the one form of each service: what a portal shows before anyone applies.

use crate::AppState;
use crate::error::ApiError;
use crate::openapi::Error;
use axum::Json;
use axum::extract::{Path, State};
use gateway_cases::views::{CatalogueView, FormView};

/// The catalogue: matters, services and lookups.
#[utoipa::path(
    get,
    path = "/api/v1/catalogue",
    tag = "catalogue",
    responses((status = 200, description = "Every matter, service and lookup.", body = CatalogueView))
)]
pub(super) async fn catalogue(State(o): State<AppState>) -> Json<CatalogueView> {
    Json(o.catalogue_view())
}

/// The one form of a service: one JSON Schema, every field asked once (四不提交).
#[utoipa::path(
    get,
    path = "/api/v1/services/{code}/form",
    tag = "catalogue",
    params(("code" = String, Path, description = "Service code, e.g. `one-thing.open-business`")),
    responses(
        (status = 200, description = "The service's form.", body = FormView),
        (status = 404, description = "`not_found`: no such service.", body = Error),
    )
)]
pub(super) async fn form(
    State(o): State<AppState>,
    Path(code): Path<String>,
) -> Result<Json<FormView>, ApiError> {
    Ok(Json(o.form_view(&code)?))
}
