//! The subject views (企业码 of an enterprise, a person's licences) and one licence by its
//! GB/T 36904 identifier; see [`gateway_cases::licences`] for what is issued and how.

use crate::AppState;
use crate::error::ApiError;
use crate::openapi::Error;
use axum::Json;
use axum::extract::{Path, State};
use gateway_base::model::FieldProblem;
use gateway_cases::views::{EnterpriseView, LicenceView, PersonView};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes: the 企业码 view, a person's licences, one licence.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enterprise))
        .routes(routes!(person))
        .routes(routes!(licence))
}

fn invalid(field: &str, problem: sdk::ids::IdProblem) -> ApiError {
    ApiError::InvalidInput(vec![FieldProblem::new(
        field,
        problem.code,
        problem.message,
    )])
}

/// `GET /api/v1/subjects/enterprises/{credit_code}`: the 企业码 view.
#[utoipa::path(
    get,
    path = "/api/v1/subjects/enterprises/{credit_code}",
    tag = "licences",
    params(("credit_code" = String, Path, description = "Unified social credit code (GB 32100)")),
    responses(
        (status = 200, description = "The enterprise's licences and cases.", body = EnterpriseView),
        (status = 422, description = "`invalid_input` on `credit_code`.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
async fn enterprise(
    State(o): State<AppState>,
    Path(credit_code): Path<String>,
) -> Result<Json<EnterpriseView>, ApiError> {
    sdk::ids::credit_code(&credit_code).map_err(|p| invalid("credit_code", p))?;
    Ok(Json(o.enterprise_view(&credit_code).await?))
}

/// `GET /api/v1/subjects/persons/{id_number}`: a person's licences.
#[utoipa::path(
    get,
    path = "/api/v1/subjects/persons/{id_number}",
    tag = "licences",
    params(("id_number" = String, Path, description = "Resident identity number (GB 11643)")),
    responses(
        (status = 200, description = "The person's licences.", body = PersonView),
        (status = 422, description = "`invalid_input` on `id_number`.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
async fn person(
    State(o): State<AppState>,
    Path(id_number): Path<String>,
) -> Result<Json<PersonView>, ApiError> {
    sdk::ids::resident_id(&id_number).map_err(|p| invalid("id_number", p))?;
    Ok(Json(o.person_view(&id_number).await?))
}

/// `GET /api/v1/licences/{id}`: one licence; an identifier whose check character does not
/// hold is refused (422) before the store is asked.
#[utoipa::path(
    get,
    path = "/api/v1/licences/{id}",
    tag = "licences",
    params(("id" = String, Path, description = "GB/T 36904 licence identifier")),
    responses(
        (status = 200, description = "The licence.", body = LicenceView),
        (status = 404, description = "`not_found`: no such licence.", body = Error),
        (status = 422, description = "`invalid_input` on `id`: the check character fails.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
async fn licence(
    State(o): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<LicenceView>, ApiError> {
    sdk::ids::licence_id(&id).map_err(|p| invalid("id", p))?;
    Ok(Json(o.licence_view(&id).await?))
}
