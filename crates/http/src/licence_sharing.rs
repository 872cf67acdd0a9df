//! Licence sharing (GB/T 36906 in spirit): a department verifies an electronic licence an
//! applicant named by its GB/T 36904 identifier, instead of asking for a copy (免提交).
//!
//! `GET /licence-sharing/v1/licences/{id}` is served on the portal listener (departments
//! already reach it for callbacks) and documented with the callbacks, in the departments'
//! document (`/callbacks/openapi.json`): portals never call it, and their credentials are worth
//! nothing here. A department authenticates with its own bearer token, whose SHA-256 is
//! `[departments.<id>] licence_sharing_key_sha256` ([`crate::auth::department`]).
//!
//! What a department may read: any licence the gateway holds, by identifier. The identifier
//! is what the department was handed with the application (a 免提交 material travels as it),
//! and it is unguessable in practice (its serial is a digest of case and step). The answer is
//! the licence as issued, the same `Licence` the portal's `GET /api/v1/licences/{id}` answers,
//! holder's identity number included: verifying the holder is what the department is for. The
//! gateway keeps neither revocation nor expiry of licences, so every licence it answers stands
//! as issued.
//!
//! Every read is in the audit log ([`gateway_store::audit::LicenceRead`]: department, licence
//! id, outcome; never the holder), and the licence is answered only once that record is
//! written. A request without a valid key is refused before anything is read and is not
//! recorded (there is no department to name).

use crate::AppState;
use crate::auth::Department;
use crate::error::ApiError;
use crate::openapi::Error;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use gateway_base::model::FieldProblem;
use gateway_cases::CaseError;
use gateway_cases::views::LicenceView;
use gateway_store::audit::{Entry, LicenceRead, Sink};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The licence-sharing routes (documented in the departments' document).
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(licence))
}

/// The longest identifier text the audit log keeps of a request whose identifier does not
/// check (a valid one is about 70 characters).
const KEPT_INVALID_ID_CHARS: usize = 100;

/// `GET /licence-sharing/v1/licences/{id}`: one licence, for the department verifying it.
#[utoipa::path(
    get,
    path = "/licence-sharing/v1/licences/{id}",
    tag = "departments",
    security(("departmentKey" = [])),
    params(("id" = String, Path, description = "GB/T 36904 licence identifier, as handed to the department with the application")),
    responses(
        (status = 200, description = "The licence as issued (the gateway keeps no revocation or expiry: every licence it answers stands).", body = LicenceView),
        (status = 401, description = "`unauthorized`: no bearer token, or not a department's licence-sharing key.", body = Error),
        (status = 404, description = "`not_found`: the gateway holds no licence with this identifier.", body = Error),
        (status = 422, description = "`invalid_input` on `id`: the identifier's form or check character fails.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
        (status = 504, description = "`request_timeout`: the read could not be recorded in time (nothing is answered unrecorded).", body = Error),
    )
)]
async fn licence(
    State(o): State<AppState>,
    Extension(department): Extension<Department>,
    Extension(audit): Extension<Sink>,
    Path(id): Path<String>,
) -> Result<Json<LicenceView>, ApiError> {
    let (answer, outcome) = match sdk::ids::licence_id(&id) {
        Err(problem) => (
            Err(ApiError::InvalidInput(vec![FieldProblem::new(
                "id",
                problem.code,
                problem.message,
            )])),
            "invalid",
        ),
        Ok(_) => match o.licence_view(&id).await {
            Ok(view) => (Ok(Json(view)), "found"),
            Err(e @ CaseError::NotFound { .. }) => (Err(e.into()), "not_found"),
            // Nothing was read, so nothing is recorded: the store's failure is the answer.
            Err(e) => return Err(e.into()),
        },
    };
    let licence_id = if outcome == "invalid" {
        // Whatever text was sent: masked and cut, since it is not known to be an identifier.
        gateway_base::redact::redact(&id)
            .chars()
            .take(KEPT_INVALID_ID_CHARS)
            .collect()
    } else {
        id
    };
    let read = LicenceRead {
        at: gateway_base::time::now_ms(),
        department: department.id.clone(),
        licence_id,
        outcome: outcome.to_string(),
        trace_id: gateway_base::trace::current()
            .map(|c| c.trace_id_hex())
            .unwrap_or_default(),
    };
    audit
        .record_written(Entry::LicenceRead(read))
        .await
        .map_err(|e| ApiError::Internal(format!("licence read by {}: {e}", department.id)))?;
    answer
}
