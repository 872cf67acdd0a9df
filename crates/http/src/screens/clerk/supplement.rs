//! 补正 at the window: what a department asks of a returned matter, shown on the case page
//! with a form to answer it — the asked fields as the matter's schema has them (its Chinese
//! titles and widgets), a file chooser for each asked material (uploaded to the case first, as
//! `PUT /api/v1/cases/{id}/materials/{code}`) — and the answer handed to the same
//! [`gateway_cases::Orchestrator::supplement`] as `POST /api/v1/cases/{id}/matters/{step}/supplements`.

use super::super::Ctx;
use super::super::form::{self, Field};
use super::super::page;
use super::super::session::Signed;
use super::{case_page, client_of, readable};
use crate::error::ApiError;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use gateway_base::model::FieldProblem;
use gateway_cases::lifecycle::supplements::SupplementArrival;
use gateway_cases::lifecycle::views::{Requested, SupplementRequest};
use gateway_cases::views::CaseMatter;

/// What one returned matter asks, and the form answering it.
pub(crate) struct Asked {
    /// The step's id (the form's address names it).
    pub(crate) step: String,
    pub(crate) matter: String,
    pub(crate) department: String,
    /// By when, if the department says (`YYYY-MM-DD`).
    pub(crate) due: String,
    /// The asked fields the matter's schema describes, each with the department's reason (and,
    /// after a refused answer, pre-review's problem) as its problems.
    pub(crate) fields: Vec<Field>,
    /// Asked fields the schema does not describe: (path, reason), shown as text.
    pub(crate) other: Vec<(String, String)>,
    /// Asked materials: code, name, reason.
    pub(crate) materials: Vec<(String, String, String)>,
    /// Problems of a refused answer that name no field of the form.
    pub(crate) problems: Vec<String>,
}

/// A refused answer to show again on its form: its step, what was typed, the problems.
pub(crate) type Answered<'a> = (&'a str, &'a [(String, String)], &'a [FieldProblem]);

/// The fields a department asks for, as the matter's schema has them (`pairs` filled in).
fn asked_fields(
    matter: &gateway_cases::catalogue::Matter,
    requested: &Requested,
    pairs: &[(String, String)],
) -> (Vec<form::Group>, Vec<(String, String)>) {
    let schema = matter.schema.as_object().cloned().unwrap_or_default();
    let mut groups = form::groups(&schema);
    for group in &mut groups {
        group
            .fields
            .retain(|f| requested.fields.iter().any(|r| r.field == f.path));
    }
    groups.retain(|g| !g.fields.is_empty());
    form::fill(&mut groups, pairs);
    let other = requested
        .fields
        .iter()
        .filter(|r| {
            !groups
                .iter()
                .flat_map(|g| &g.fields)
                .any(|f| f.path == r.field)
        })
        .map(|r| (r.field.clone(), r.message.clone()))
        .collect();
    (groups, other)
}

/// What each returned matter of a case asks (empty when none is returned).
pub(crate) fn asked(
    catalogue: &gateway_cases::catalogue::Catalogue,
    matters: &[CaseMatter],
    answered: Option<Answered<'_>>,
) -> Vec<Asked> {
    matters
        .iter()
        .filter_map(|m| {
            let requested = m.requested.as_ref()?;
            let matter = catalogue.matters.get(&m.matter)?;
            let (pairs, problems): (&[(String, String)], &[FieldProblem]) = match answered {
                Some((step, pairs, problems)) if step == m.step => (pairs, problems),
                _ => (&[], &[]),
            };
            let (mut groups, other) = asked_fields(matter, requested, pairs);
            for group in &mut groups {
                for field in &mut group.fields {
                    field.problems = requested
                        .fields
                        .iter()
                        .filter(|r| r.field == field.path)
                        .map(|r| r.message.clone())
                        .collect();
                }
            }
            // Pre-review names a supplement's fields `fields.<path>`.
            let problems: Vec<FieldProblem> = problems
                .iter()
                .map(|p| {
                    let mut p = p.clone();
                    if let Some(path) = p.field.strip_prefix("fields.") {
                        p.field = path.to_string();
                    }
                    p
                })
                .collect();
            let left = form::place(&mut groups, &problems);
            Some(Asked {
                step: m.step.clone(),
                matter: m.matter_name.clone().unwrap_or_else(|| m.matter.clone()),
                department: m.department.clone(),
                due: requested.due.clone().unwrap_or_default(),
                fields: groups.into_iter().flat_map(|g| g.fields).collect(),
                other,
                materials: requested
                    .materials
                    .iter()
                    .map(|r| {
                        let name = matter
                            .materials
                            .iter()
                            .find(|c| c.code == r.code)
                            .map_or_else(|| r.code.clone(), |c| c.name.clone());
                        (r.code.clone(), name, r.reason.clone())
                    })
                    .collect(),
                problems: left.into_iter().map(|p| p.message).collect(),
            })
        })
        .collect()
}

/// `POST /screens/clerk/cases/{id}/matters/{step}/supplements`: the asked fields as typed and
/// the asked materials (uploaded to the case before), as one supplement; back to the case, or
/// the case page again with every problem on its field (422).
pub(super) async fn supplement(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    Path((id, step)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let pairs = super::super::session::serde_urlencoded_pairs(&body);
    match supplemented(&ctx, &signed, &id, &step, &pairs).await {
        Ok(()) => Redirect::to(&format!("/screens/clerk/cases/{id}")).into_response(),
        Err(ApiError::InvalidInput(problems)) => {
            match case_page(&ctx, &signed, &id, Some((&step, &pairs, &problems))).await {
                Ok(page) => (StatusCode::UNPROCESSABLE_ENTITY, page::html(&page)).into_response(),
                Err(e) => page::failed(&ctx, e),
            }
        }
        Err(e) => page::failed(&ctx, e),
    }
}

async fn supplemented(
    ctx: &Ctx,
    signed: &Signed,
    id: &str,
    step: &str,
    pairs: &[(String, String)],
) -> Result<(), ApiError> {
    use sha2::Digest;
    let o = &ctx.screens.orchestrator;
    let record = readable(ctx, signed, id).await?;
    let view = o.case_view(&record).await?;
    let matter = view
        .matters
        .iter()
        .find(|m| m.step == step)
        .ok_or_else(|| ApiError::NotFound {
            what: "step",
            id: step.to_string(),
        })?;
    // A matter no longer returned: the orchestrator says so (409), as to the API.
    let mut fields = serde_json::Map::new();
    if let (Some(requested), Some(definition)) = (
        matter.requested.as_ref(),
        o.catalogue().matters.get(&matter.matter),
    ) {
        let (mut groups, _) = asked_fields(definition, requested, &[]);
        if let serde_json::Value::Object(filled) = form::fill(&mut groups, pairs) {
            fields = filled;
        }
    }
    let materials: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "material")
        .map(|(_, v)| v.clone())
        .collect();
    let request = SupplementRequest { fields, materials };
    let client = client_of(signed);
    let body = serde_json::json!({"fields": request.fields, "materials": request.materials});
    let mut digest = sha2::Sha256::new();
    digest.update(step.as_bytes());
    digest.update([0]);
    digest.update(body.to_string().as_bytes());
    let digest = sdk::sign::to_hex(digest.finalize());
    let arrival = SupplementArrival {
        // The same answer sent twice (a double click) is one supplement.
        idempotency_key: Some(format!("{}:screens-{step}-{}", client.id, &digest[..16])),
        request_digest: digest,
    };
    o.supplement(&record, step, request, arrival).await?;
    Ok(())
}
