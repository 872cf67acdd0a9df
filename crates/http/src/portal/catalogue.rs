//! The catalogue and the one form of each service: what a portal shows before anyone applies.

use super::AppState;
use crate::error::ApiError;
use crate::openapi::{self, Error};
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

/// The catalogue: matters, services and lookups.
#[utoipa::path(
    get,
    path = "/api/v1/catalogue",
    tag = "catalogue",
    responses((status = 200, description = "Every matter, service and lookup.", body = openapi::Catalogue))
)]
pub(super) async fn catalogue(State(o): State<AppState>) -> Json<Value> {
    let catalogue = o.catalogue();
    let matters: Vec<Value> = catalogue
        .matters
        .values()
        .map(|m| {
            json!({
                "code": m.code, "name": m.name, "department": m.department,
                "matter_type": m.matter_type, "service_object": m.service_object,
                "time_limit_days": m.time_limit_days,
            })
        })
        .collect();
    let services: Vec<_> = catalogue.services.values().collect();
    let lookups: Vec<Value> = o
        .adapters()
        .all()
        .iter()
        .flat_map(|a| {
            let department = a.description().department.clone();
            a.description()
                .lookups
                .iter()
                .map(move |l| json!({"name": l.name, "description": l.description, "department": department}))
                .collect::<Vec<_>>()
        })
        .collect();
    Json(json!({"matters": matters, "services": services, "lookups": lookups}))
}

/// The one form of a service: one JSON Schema, every field asked once (四不提交).
#[utoipa::path(
    get,
    path = "/api/v1/services/{code}/form",
    tag = "catalogue",
    params(("code" = String, Path, description = "Service code, e.g. `one-thing.open-business`")),
    responses(
        (status = 200, description = "The service's form.", body = openapi::Form),
        (status = 404, description = "`not_found`: no such service.", body = Error),
    )
)]
pub(super) async fn form(
    State(o): State<AppState>,
    Path(code): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let catalogue = o.catalogue();
    let service = catalogue.services.get(&code).ok_or(ApiError::NotFound {
        what: "service",
        id: code,
    })?;
    Ok(Json(
        json!({"service": service.code, "name": service.name, "kind": service.kind, "steps": service.steps, "schema": service.form}),
    ))
}
