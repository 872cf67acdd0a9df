//! One case as a supervisor reads it (`/screens/supervisor/cases/{id}`): its matters with their
//! departments, deadlines and lights, and its timeline (messages masked). Read-only: a
//! supervisor supervises, the window and the departments act. The form (the applicant's
//! names and numbers) is not shown; 电子监察 needs the times, not the person.

use super::{Ctx, department_names, name_of, shown};
use crate::error::ApiError;
use crate::screens::page::{self, Frame};
use crate::screens::session::Signed;
use crate::screens::words::{event_text, light_text, status_text};
use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;

struct MatterRow {
    name: String,
    department: String,
    state: &'static str,
    state_code: String,
    /// The last working day of its deadline.
    last_working_day: String,
    light: &'static str,
    light_text: &'static str,
    /// 按时办结 / 超期办结, once decided.
    finished: &'static str,
}

struct EventRow {
    at: String,
    text: String,
}

#[derive(Template)]
#[template(path = "screens/supervisor_case.html")]
struct CasePage {
    frame: Frame,
    case_id: String,
    service: String,
    status: &'static str,
    status_code: String,
    created_at: String,
    matters: Vec<MatterRow>,
    events: Vec<EventRow>,
}

/// `GET /screens/supervisor/cases/{id}`: the case (any case: 电子监察 reads them all).
pub(super) async fn case(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    Path(id): Path<String>,
) -> Response {
    page::answer(&ctx, case_page(&ctx, &signed, &id).await)
}

async fn case_page(ctx: &Ctx, signed: &Signed, id: &str) -> Result<CasePage, ApiError> {
    let o = &ctx.screens.orchestrator;
    let record = o.store().case(id).await?.ok_or(ApiError::NotFound {
        what: "case",
        id: id.to_string(),
    })?;
    let view = o.case_view(&record).await?;
    let names = department_names(ctx);
    let service = o.catalogue().service_name(&view.service);
    let (status_code, status) = status_text(&view.status);
    let matters = view
        .matters
        .iter()
        .map(|m| {
            let (state_code, state) = status_text(&m.state);
            MatterRow {
                name: m.matter_name.clone().unwrap_or_else(|| m.matter.clone()),
                department: name_of(&names, &m.department),
                state,
                state_code,
                last_working_day: m
                    .deadline
                    .as_deref()
                    .and_then(gateway_base::time::parse_rfc3339)
                    .map(|ms| gateway_base::time::beijing_date(ms - 1).to_string())
                    .unwrap_or_default(),
                light: m.light.map_or("", |l| l.as_str()),
                light_text: m.light.map_or("", light_text),
                finished: match m.finished_late {
                    Some(true) => "超期办结",
                    Some(false) => "按时办结",
                    None => "",
                },
            }
        })
        .collect();
    Ok(CasePage {
        frame: Frame::signed(ctx, signed, "办件详情"),
        case_id: view.case_id.clone(),
        service,
        status,
        status_code,
        created_at: shown(&view.created_at),
        matters,
        events: view
            .timeline
            .iter()
            .map(|e| EventRow {
                at: shown(&e.at),
                text: event_text(e),
            })
            .collect(),
    })
}
