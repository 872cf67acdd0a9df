//! The console's actions, each a POST with the session's CSRF token (checked by the guard
//! before any of these runs), each calling what the admin API's route calls, for the
//! signed-in operator.

use super::super::Ctx;
use super::super::page::{self, Frame};
use super::super::session::Signed;
use super::{Node, done, failed, operator};
use crate::admin::adapters::{MAX_COMPONENT_BYTES, activate_version, push_component};
use crate::error::ApiError;
use askama::Template;
use axum::extract::multipart::{Multipart, MultipartError};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use gateway_base::config::reload::NeedsRestart;
use gateway_base::model::FieldProblem;
use gateway_store::verifications::{AuditVerification, VerificationProblem};
use serde::Deserialize;

/// A multipart body that broke off or went past the limit, as the API would answer it.
fn upload_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge(MAX_COMPONENT_BYTES)
    } else {
        ApiError::UploadIncomplete(e.body_text())
    }
}

/// `POST /console/adapters` (multipart: `department`, blank for the one the component
/// describes, and `component`, the `.wasm` file): checked and stored as the API's push, not yet
/// serving. The file is read as it arrives and refused once past the push's limit.
pub(super) async fn upload(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    mut multipart: Multipart,
) -> Response {
    let pushed = async {
        let mut department = None;
        let mut component = Vec::new();
        while let Some(mut field) = multipart.next_field().await.map_err(upload_error)? {
            match field.name().unwrap_or_default() {
                "department" => {
                    let text = field.text().await.map_err(upload_error)?;
                    department = Some(text.trim().to_string()).filter(|d| !d.is_empty());
                }
                "component" => {
                    while let Some(chunk) = field.chunk().await.map_err(upload_error)? {
                        if component.len() + chunk.len() > MAX_COMPONENT_BYTES {
                            return Err(ApiError::TooLarge(MAX_COMPONENT_BYTES));
                        }
                        component.extend_from_slice(&chunk);
                    }
                }
                // `_csrf` (checked from the header) and anything else.
                _ => {}
            }
        }
        if component.is_empty() {
            return Err(ApiError::InvalidInput(vec![FieldProblem::new(
                "component",
                "required",
                "the component file",
            )]));
        }
        let o = &ctx.screens.orchestrator;
        let (version, _) = push_component(
            o,
            &component,
            department.as_deref(),
            None,
            &operator(&signed),
        )
        .await?;
        Ok(version.department)
    }
    .await;
    match pushed {
        Ok(department) => done("pushed", Some(&department)),
        Err(e) => failed(&ctx, e),
    }
}

#[derive(Deserialize)]
pub(super) struct ActivateForm {
    #[serde(default)]
    digest: String,
    /// A share of calls (1–100) to stage it for; blank to serve it fully.
    #[serde(default)]
    percent: String,
}

/// `POST /console/adapters/{department}/activate`: a stored version serves fully, or staged
/// for `percent` of calls, as `POST /admin/v1/adapters/{department}/activate`.
pub(super) async fn activate(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    Path(department): Path<String>,
    Form(form): Form<ActivateForm>,
) -> Response {
    let percent = match form.percent.trim() {
        "" => None,
        text => match text.parse::<u8>() {
            Ok(p) => Some(p),
            Err(_) => {
                return failed(
                    &ctx,
                    ApiError::InvalidInput(vec![FieldProblem::new(
                        "percent",
                        "out_of_range",
                        "1-100",
                    )]),
                );
            }
        },
    };
    if form.digest.trim().is_empty() {
        return failed(
            &ctx,
            ApiError::InvalidInput(vec![FieldProblem::new("digest", "required", "")]),
        );
    }
    let o = &ctx.screens.orchestrator;
    match activate_version(
        o,
        &department,
        form.digest.trim(),
        percent,
        &operator(&signed),
    )
    .await
    {
        Ok(_) if percent.is_some() => done("staged", Some(&department)),
        Ok(_) => done("activated", Some(&department)),
        Err(e) => failed(&ctx, e),
    }
}

/// `POST /console/adapters/{department}/promote`: the staged candidate serves everything.
pub(super) async fn promote(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    Path(department): Path<String>,
) -> Response {
    let o = &ctx.screens.orchestrator;
    match o.adapters().promote(&department, &operator(&signed)).await {
        Ok(_) => done("promoted", Some(&department)),
        Err(e) => failed(&ctx, e.into()),
    }
}

#[derive(Deserialize)]
pub(super) struct RollbackForm {
    /// A version to go back to; blank: drop the candidate, else the version before.
    #[serde(default)]
    digest: String,
}

/// `POST /console/adapters/{department}/rollback`: drop a staged candidate, else go back to
/// the version before (or to `digest`), as the API's rollback.
pub(super) async fn rollback(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    Path(department): Path<String>,
    Form(form): Form<RollbackForm>,
) -> Response {
    let o = &ctx.screens.orchestrator;
    let digest = Some(form.digest.trim()).filter(|d| !d.is_empty());
    match o
        .adapters()
        .rollback(&department, digest, &operator(&signed))
        .await
    {
        Ok(_) => done("rolled-back", Some(&department)),
        Err(e) => failed(&ctx, e.into()),
    }
}

/// `POST /console/dead-letters/{case}/{step}/replay`: deliver again, recorded with the
/// operator, as the API's replay.
pub(super) async fn replay(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    Path((case_id, step)): Path<(String, String)>,
) -> Response {
    let o = &ctx.screens.orchestrator;
    match crate::admin::replay_dead_letter(o, &case_id, &step, &operator(&signed)).await {
        Ok(()) => done("replayed", None),
        Err(e) => failed(&ctx, e),
    }
}

/// `POST /console/audit/verification`: recompute every chain and check every seal with the
/// configured key (as `gateway audit verify`); the outcome is kept in the store as the last
/// verification, which every node's console shows, also after a restart.
pub(super) async fn verify_audit(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
) -> Response {
    let state = &ctx.screens.console;
    let store = ctx.screens.orchestrator.store();
    let report = match gateway_store::audit::verify::verify(store.pool(), &state.audit_keys).await {
        Ok(report) => report,
        Err(e) => return failed(&ctx, e.into()),
    };
    let operator = operator(&signed);
    if report.ok() {
        tracing::info!(%operator, chains = report.chains.len(), "audit chains verified from the console");
    } else {
        tracing::error!(%operator, problems = report.problems.len(), "audit chain verification found problems");
    }
    let verification = AuditVerification {
        at: gateway_base::time::now_ms(),
        node: ctx.screens.orchestrator.delivery().node.clone(),
        operator,
        ok: report.ok(),
        chains: i64::try_from(report.chains.len()).unwrap_or(i64::MAX),
        records: report
            .chains
            .iter()
            .map(|c| i64::try_from(c.records).unwrap_or(i64::MAX))
            .sum(),
        seals: report
            .chains
            .iter()
            .map(|c| i64::try_from(c.seals).unwrap_or(i64::MAX))
            .sum(),
        unsealed: report
            .chains
            .iter()
            .map(|c| c.last_seq - c.sealed_seq)
            .sum(),
        signatures_checked: report.signatures_checked,
        problems: report
            .problems
            .iter()
            .map(|p| VerificationProblem {
                node: p.node.clone(),
                seq: p.seq,
                what: p.what.clone(),
            })
            .collect(),
    };
    if let Err(e) = store.record_audit_verification(&verification).await {
        return failed(&ctx, e.into());
    }
    done("verified", None)
}

#[derive(Template)]
#[template(path = "screens/console_reload.html")]
struct Reloaded {
    frame: Frame,
    file: String,
    /// Applied: what changed and what waits for a restart.
    changes: Vec<String>,
    needs_restart: Vec<NeedsRestart>,
    /// Refused: every problem with its file, key and reason.
    refused: Vec<FieldProblem>,
}

/// `POST /console/config/reload`: read the config file again, as the API's reload; the page
/// lists what changed and what needs a restart, or, refused, every problem field by field
/// (422).
pub(super) async fn reload(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    Extension(node): Extension<Node>,
) -> Response {
    let outcome = crate::admin::reload::reload_as(node.reload.as_ref(), &operator(&signed)).await;
    let page = |changes, needs_restart, refused| Reloaded {
        frame: Frame::signed(&ctx, &signed, "重新加载配置"),
        file: node.reload.file().display().to_string(),
        changes,
        needs_restart,
        refused,
    };
    match outcome {
        Ok(reloaded) => page::html(&page(reloaded.changes, reloaded.needs_restart, Vec::new())),
        Err(ApiError::ConfigRefused(problems)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            page::html(&page(Vec::new(), Vec::new(), problems)),
        )
            .into_response(),
        Err(e) => failed(&ctx, e),
    }
}
