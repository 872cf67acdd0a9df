//! The subject views (企业码 of an enterprise, a person's licences) and one licence by its
//! GB/T 36904 identifier; see [`gateway_cases::licences`] for what is issued and how.

use crate::error::ApiError;
use crate::openapi::Error;
use crate::portal::AppState;
use axum::Json;
use axum::extract::{Path, State};
use gateway_base::model::FieldProblem;
use gateway_base::time::rfc3339;
use gateway_cases::CaseStatus;
use gateway_cases::licences::ISSUERS;
use gateway_store::licences::{HolderKind, Licence};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The licence as the API shows it.
pub fn view(licence: &Licence) -> Value {
    let l = licence;
    {
        let issuer_code = l.id.split('.').nth(6).unwrap_or_default();
        json!({
            "id": l.id, "kind": l.kind, "name": l.name, "number": l.number,
            "holder_kind": l.holder_kind, "holder_id": l.holder_id,
            "holder_name": l.holder_name,
            "issuer": l.issuer, "issuer_code": issuer_code,
            "issuer_name": ISSUERS.iter().find(|i| i.department == l.issuer).map(|i| i.name),
            "case_id": l.case_id, "step": l.step, "issued_at": rfc3339(l.issued_at),
            "data": serde_json::from_str::<Value>(&l.data).unwrap_or(Value::Null),
            "links": {
                "self": format!("/api/v1/licences/{}", l.id),
                "case": format!("/api/v1/cases/{}", l.case_id),
            },
        })
    }
}

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
        (status = 200, description = "The enterprise's licences and cases.", body = crate::openapi::Enterprise),
        (status = 422, description = "`invalid_input` on `credit_code`.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
async fn enterprise(
    State(o): State<AppState>,
    Path(credit_code): Path<String>,
) -> Result<Json<Value>, ApiError> {
    sdk::ids::credit_code(&credit_code).map_err(|p| invalid("credit_code", p))?;
    let licences = o
        .store()
        .licences_of_holder(HolderKind::Enterprise, &credit_code)
        .await?;
    let mut cases = Vec::new();
    for (case_id, service, created_at) in o.store().cases_of_enterprise(&credit_code).await? {
        let states: Vec<_> = o
            .store()
            .steps(&case_id)
            .await?
            .iter()
            .map(|s| s.state)
            .collect();
        cases.push(json!({
            "case_id": case_id, "service": service, "status": CaseStatus::of(&states),
            "created_at": rfc3339(created_at),
        }));
    }
    Ok(Json(json!({
        "credit_code": credit_code,
        "licences": licences.iter().map(view).collect::<Vec<_>>(),
        "cases": cases,
    })))
}

/// `GET /api/v1/subjects/persons/{id_number}`: a person's licences.
#[utoipa::path(
    get,
    path = "/api/v1/subjects/persons/{id_number}",
    tag = "licences",
    params(("id_number" = String, Path, description = "Resident identity number (GB 11643)")),
    responses(
        (status = 200, description = "The person's licences.", body = crate::openapi::Person),
        (status = 422, description = "`invalid_input` on `id_number`.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
async fn person(
    State(o): State<AppState>,
    Path(id_number): Path<String>,
) -> Result<Json<Value>, ApiError> {
    sdk::ids::resident_id(&id_number).map_err(|p| invalid("id_number", p))?;
    let licences = o
        .store()
        .licences_of_holder(HolderKind::Person, &id_number)
        .await?;
    Ok(Json(json!({
        "id_number": id_number,
        "licences": licences.iter().map(view).collect::<Vec<_>>(),
    })))
}

/// `GET /api/v1/licences/{id}`: one licence; an identifier whose check character does not
/// hold is refused (422) before the store is asked.
#[utoipa::path(
    get,
    path = "/api/v1/licences/{id}",
    tag = "licences",
    params(("id" = String, Path, description = "GB/T 36904 licence identifier")),
    responses(
        (status = 200, description = "The licence.", body = crate::openapi::Licence),
        (status = 404, description = "`not_found`: no such licence.", body = Error),
        (status = 422, description = "`invalid_input` on `id`: the check character fails.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
async fn licence(
    State(o): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    sdk::ids::licence_id(&id).map_err(|p| invalid("id", p))?;
    let licence = o.store().licence(&id).await?.ok_or(ApiError::NotFound {
        what: "licence",
        id,
    })?;
    Ok(Json(view(&licence)))
}
