//! The clerk's window (综合受理窗口) on the portal listener (`/screens/clerk/…`): find a
//! service by name or matter code; open a draft of it (its materials are uploaded into it);
//! the one form with every pre-review problem on its field; submit; the receipt (受理回执)
//! with a QR code; the case with its live timeline and its withdrawal. Every call is the API's
//! own (the Orchestrator's), as a client with the clerk's scopes, the clerk recorded on it.
//!
//! - [`supplement`]: 补正 of a returned matter from the case page.
//! - [`cases`]: the clerk's (or the hall's) received cases, paged, found by case number.
//! - [`lookup`]: the lookups that fill the form (enterprise, property, identity).

mod cases;
pub(super) mod lookup;
mod supplement;

use super::Ctx;
use super::form::{self, Group};
use super::page::{self, Frame};
use super::session::Signed;
use super::words::{event_text, status_text};
use crate::error::ApiError;
use askama::Template;
use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post, put};
use gateway_base::model::FieldProblem;
use gateway_cases::materials::Applicant;
use serde::Deserialize;

/// The clerk's routes (guarded by the clerk role).
pub(super) fn routes() -> axum::Router<Ctx> {
    axum::Router::new()
        .route("/screens/clerk", get(search))
        .route("/screens/clerk/services/{code}/drafts", post(new_draft))
        .route("/screens/clerk/drafts/{id}", get(draft).post(submit))
        .route("/screens/clerk/drafts/{id}/materials/{code}", put(upload))
        .route("/screens/clerk/lookups/{name}", post(lookup::lookup))
        .route("/screens/clerk/cases", get(cases::list))
        .route("/screens/clerk/cases/{id}", get(case))
        .route("/screens/clerk/cases/{id}/receipt", get(receipt))
        .route("/screens/clerk/cases/{id}/events", get(events))
        .route("/screens/clerk/cases/{id}/withdrawal", post(withdraw))
        .route(
            "/screens/clerk/cases/{id}/materials/{code}",
            put(upload_to_case),
        )
        .route(
            "/screens/clerk/cases/{id}/matters/{step}/supplements",
            post(supplement::supplement),
        )
}

/// A service found, as the search lists it.
struct Found {
    code: String,
    name: String,
    description: String,
    /// Its matters: (code, name, department).
    matters: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "screens/clerk_search.html")]
struct Search {
    frame: Frame,
    q: String,
    found: Vec<Found>,
}

#[derive(Deserialize)]
pub(super) struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// `GET /screens/clerk?q=`: the services whose name, description, code or a matter's code or
/// name holds `q` (every service the clerk may apply for, without `q`).
async fn search(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    Query(query): Query<SearchQuery>,
) -> Response {
    let catalogue = ctx.screens.orchestrator.catalogue_view();
    let q = query.q.trim().to_lowercase();
    let client = client_of(&signed);
    let found = catalogue
        .services
        .iter()
        .filter(|s| client.may(&format!("apply:{}", s.code)))
        .filter_map(|s| {
            let matters: Vec<(String, String, String)> = s
                .steps
                .iter()
                .filter_map(|step| catalogue.matters.iter().find(|m| m.code == step.matter))
                .map(|m| (m.code.clone(), m.name.clone(), m.department.clone()))
                .collect();
            let hit = q.is_empty()
                || [&s.code, &s.name, &s.description]
                    .iter()
                    .any(|t| t.to_lowercase().contains(&q))
                || matters
                    .iter()
                    .any(|(c, n, _)| c.to_lowercase().contains(&q) || n.contains(&q));
            hit.then(|| Found {
                code: s.code.clone(),
                name: s.name.clone(),
                description: s.description.clone(),
                matters,
            })
        })
        .collect();
    page::html(&Search {
        frame: Frame::signed(&ctx, &signed, "办事指南与受理"),
        q: query.q,
        found,
    })
}

/// The clerk as the API's client: the clerk's own id and scopes, so the screens allow exactly
/// what an API client with those scopes is allowed.
pub(super) fn client_of(signed: &Signed) -> crate::auth::Client {
    crate::auth::Client::screen(
        format!("screens:{}", signed.profile.user),
        signed.profile.scopes.clone(),
    )
}

fn forbidden_unless(client: &crate::auth::Client, service: &str) -> Result<(), ApiError> {
    if client.may(&format!("apply:{service}")) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!("apply:{service}")))
    }
}

/// `POST /screens/clerk/services/{code}/drafts`: a draft of the service (it holds the
/// materials until the application), then its form.
async fn new_draft(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    Path(code): Path<String>,
) -> Response {
    let client = client_of(&signed);
    let made = async {
        forbidden_unless(&client, &code)?;
        Ok::<_, ApiError>(
            ctx.screens
                .orchestrator
                .create_draft(&client.id, &code)
                .await?,
        )
    }
    .await;
    match made {
        Ok(draft) => {
            Redirect::to(&format!("/screens/clerk/drafts/{}", draft.draft_id)).into_response()
        }
        Err(e) => page::failed(&ctx, e),
    }
}

/// A material as the form shows it.
struct MaterialRow {
    code: String,
    name: String,
    /// `required`, `optional`, `deferrable` (容缺), or `exempt` (免提交: the gateway obtains it).
    need: &'static str,
    need_text: &'static str,
    uploaded: Option<String>,
    problems: Vec<String>,
}

#[derive(Template)]
#[template(path = "screens/clerk_form.html")]
struct FormPage {
    frame: Frame,
    draft: String,
    service: String,
    name: String,
    groups: Vec<Group>,
    materials: Vec<MaterialRow>,
    /// Problems that name no field of the form.
    general: Vec<FieldProblem>,
    problem_count: usize,
    commitment: String,
}

/// A posted form: its pairs, pre-review's problems, and the materials the gateway obtains
/// (免提交).
type Filled<'a> = (&'a [(String, String)], &'a [FieldProblem], Vec<String>);

async fn form_page(
    ctx: &Ctx,
    signed: &Signed,
    draft_id: &str,
    filled: Option<Filled<'_>>,
) -> Result<FormPage, ApiError> {
    let o = &ctx.screens.orchestrator;
    let client = client_of(signed);
    let may_apply = |service: &str| client.may(&format!("apply:{service}"));
    let applicant = Applicant {
        client: &client.id,
        may_apply: &may_apply,
    };
    let draft = o.draft_view(&applicant, draft_id).await?;
    let view = o.form_view(&draft.service)?;
    let mut groups = form::groups(&view.schema);
    let (general, commitment, obtained) = match filled {
        Some((pairs, problems, obtained)) => {
            form::fill(&mut groups, pairs);
            let commitment = pairs
                .iter()
                .find(|(k, _)| k == "commitment")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            (form::place(&mut groups, problems), commitment, obtained)
        }
        None => (Vec::new(), String::new(), Vec::new()),
    };
    let (material_problems, general): (Vec<_>, Vec<_>) = general
        .into_iter()
        .partition(|p| p.field.starts_with("materials."));
    let materials = view
        .materials
        .iter()
        .map(|m| {
            let exempt = obtained.contains(&m.code);
            let (need, need_text) = if exempt {
                ("exempt", "免提交")
            } else {
                match serde_json::to_value(m.need)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .as_deref()
                {
                    Some("required") => ("required", "必须提交"),
                    Some("deferrable") => ("deferrable", "容缺（可后补）"),
                    _ => ("optional", "选择提交"),
                }
            };
            let need_text = if m.obtain.is_some() && !exempt {
                match need {
                    "required" => "必须提交（可免提交时由系统获取）",
                    _ => need_text,
                }
            } else {
                need_text
            };
            MaterialRow {
                code: m.code.clone(),
                name: m.name.clone(),
                need,
                need_text,
                uploaded: draft
                    .materials
                    .iter()
                    .find(|d| d.code == m.code)
                    .map(|d| format!("{}，{} 字节", d.media_type, d.size)),
                problems: material_problems
                    .iter()
                    .filter(|p| p.field == format!("materials.{}", m.code))
                    .map(|p| p.message.clone())
                    .collect(),
            }
        })
        .collect::<Vec<_>>();
    let problem_count = groups
        .iter()
        .flat_map(|g| &g.fields)
        .map(|f| f.problems.len())
        .sum::<usize>()
        + materials.iter().map(|m| m.problems.len()).sum::<usize>()
        + general.len();
    Ok(FormPage {
        frame: Frame::signed(ctx, signed, &view.name),
        draft: draft.draft_id,
        service: view.service,
        name: view.name,
        groups,
        materials,
        general,
        problem_count,
        commitment,
    })
}

/// `GET /screens/clerk/drafts/{id}`: the service's one form, empty, and its materials.
async fn draft(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    Path(id): Path<String>,
) -> Response {
    page::answer(&ctx, form_page(&ctx, &signed, &id, None).await)
}

/// `PUT /screens/clerk/drafts/{id}/materials/{code}`: a material's bytes into the draft
/// (streamed, as the API's upload; the screens' script sends it with the CSRF header).
async fn upload(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    Path((id, code)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let client = client_of(&signed);
    let may_apply = |service: &str| client.may(&format!("apply:{service}"));
    let applicant = Applicant {
        client: &client.id,
        may_apply: &may_apply,
    };
    let length = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let o = &ctx.screens.orchestrator;
    // A material uploaded again replaces the one before (the clerk chose another file).
    let _ = o.remove_from_draft(&applicant, &id, &code).await;
    let mut stream = body.into_data_stream();
    uploaded(
        o.upload_to_draft(&applicant, &id, &code, length, &mut stream)
            .await,
    )
}

/// `PUT /screens/clerk/cases/{id}/materials/{code}`: a material a returned matter asks for
/// (补正), or one promised under 容缺, into the case, as `PUT /api/v1/cases/{id}/materials/{code}`.
async fn upload_to_case(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    Path((id, code)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let client = client_of(&signed);
    let may_apply = |service: &str| client.may(&format!("apply:{service}"));
    let applicant = Applicant {
        client: &client.id,
        may_apply: &may_apply,
    };
    let length = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let mut stream = body.into_data_stream();
    uploaded(
        ctx.screens
            .orchestrator
            .upload_to_case(&applicant, &id, &code, length, &mut stream)
            .await,
    )
}

/// An upload's answer for the screens' script: what was stored (201), or why not, in Chinese.
fn uploaded(
    result: Result<gateway_cases::materials::StoredMaterial, gateway_cases::CaseError>,
) -> Response {
    match result {
        Ok(stored) => (
            StatusCode::CREATED,
            format!("{}，{} 字节", stored.media_type, stored.size),
        )
            .into_response(),
        Err(e) => {
            let error = ApiError::from(e);
            let text = match &error {
                ApiError::InvalidInput(p) => p
                    .iter()
                    .map(|p| p.message.clone())
                    .collect::<Vec<_>>()
                    .join("；"),
                _ => "上传未成功，请重试".into(),
            };
            let status = error.into_response().status();
            (status, text).into_response()
        }
    }
}

/// `POST /screens/clerk/drafts/{id}`: pre-review the filled form with the draft's materials;
/// with any problem the form comes back with every problem on its field (422), without one
/// the application is made (as `POST /api/v1/services/{code}/applications?draft=`) and the
/// receipt follows.
async fn submit(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let pairs = super::session::serde_urlencoded_pairs(&body);
    match submitted(&ctx, &signed, &id, &pairs).await {
        Ok(Ok(case_id)) => {
            Redirect::to(&format!("/screens/clerk/cases/{case_id}/receipt")).into_response()
        }
        Ok(Err(page)) => (StatusCode::UNPROCESSABLE_ENTITY, page::html(&page)).into_response(),
        Err(e) => page::failed(&ctx, e),
    }
}

async fn submitted(
    ctx: &Ctx,
    signed: &Signed,
    id: &str,
    pairs: &[(String, String)],
) -> Result<Result<String, FormPage>, ApiError> {
    use sha2::Digest;
    let o = &ctx.screens.orchestrator;
    let client = client_of(signed);
    let mut page = form_page(ctx, signed, id, Some((pairs, &[], Vec::new()))).await?;
    forbidden_unless(&client, &page.service)?;
    let form = form::fill(&mut page.groups, pairs);
    gateway_base::redact::note_names(&form);
    let review = o
        .review_with_draft(&page.service, &form, &client.id, id)
        .await?
        .view();
    if !review.ok {
        let obtained = review
            .materials
            .obtained
            .iter()
            .map(|m| m.code.clone())
            .collect();
        let page = form_page(ctx, signed, id, Some((pairs, &review.problems, obtained))).await?;
        return Ok(Err(page));
    }
    let commitment = pairs
        .iter()
        .find(|(k, _)| k == "commitment")
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty());
    let body = serde_json::to_vec(&form).expect("a form serialises");
    let mut digest = sha2::Sha256::new();
    digest.update(page.service.as_bytes());
    digest.update([0]);
    digest.update(&body);
    digest.update(format!("\0draft={id}").as_bytes());
    let arrival = gateway_store::Arrival {
        // The draft is the application: submitting it twice (a double click) is one case.
        idempotency_key: Some(format!("{}:{}:draft-{id}", client.id, page.service)),
        request_digest: sdk::sign::to_hex(digest.finalize()),
        clerk: Some(signed.clerk()),
        client: Some(client.id.clone()),
        materials: Vec::new(),
        draft: Some(id.to_string()),
        commitment,
        service_name: None,
    };
    let applied = o.apply(&page.service, form, arrival).await?;
    Ok(Ok(applied.case_id))
}

/// A case the clerk may read (the clerk's own, or any with `cases:all`); another is "not found".
async fn readable(
    ctx: &Ctx,
    signed: &Signed,
    id: &str,
) -> Result<gateway_store::CaseRecord, ApiError> {
    let client = client_of(signed);
    ctx.screens
        .orchestrator
        .store()
        .case(id)
        .await?
        .filter(|c| client.may_read_case_of(c.client.as_deref()))
        .ok_or(ApiError::NotFound {
            what: "case",
            id: id.to_string(),
        })
}

struct MatterRow {
    /// The step's id: the live timeline updates its row by it.
    step: String,
    name: String,
    department: String,
    state: String,
    state_code: String,
    deadline: String,
    light: String,
}

struct EventRow {
    at: String,
    text: String,
}

#[derive(Template)]
#[template(path = "screens/clerk_case.html")]
struct CasePage {
    frame: Frame,
    case_id: String,
    service: String,
    status: String,
    status_code: String,
    created_at: String,
    matters: Vec<MatterRow>,
    events: Vec<EventRow>,
    open: bool,
    /// What returned matters ask (补正), each with its form.
    asked: Vec<supplement::Asked>,
}

/// The case page; `answered`: a refused supplement, shown again on its form.
async fn case_page(
    ctx: &Ctx,
    signed: &Signed,
    id: &str,
    answered: Option<supplement::Answered<'_>>,
) -> Result<CasePage, ApiError> {
    let o = &ctx.screens.orchestrator;
    let record = readable(ctx, signed, id).await?;
    let view = o.case_view(&record).await?;
    let catalogue = o.catalogue();
    let asked = supplement::asked(&catalogue, &view.matters, answered);
    let service = catalogue.service_name(&view.service);
    let (status_code, status) = status_text(&view.status);
    let open = matches!(
        status_code.as_str(),
        "received" | "in_progress" | "returned"
    );
    Ok(CasePage {
        frame: Frame::signed(ctx, signed, "办件详情"),
        case_id: view.case_id.clone(),
        service,
        status: status.into(),
        status_code: status_code.clone(),
        created_at: view.created_at.clone(),
        matters: view
            .matters
            .iter()
            .map(|m| {
                let (code, text) = status_text(&m.state);
                let light = m.light.map_or("", |l| l.as_str()).to_string();
                MatterRow {
                    step: m.step.clone(),
                    name: m.matter_name.clone().unwrap_or_else(|| m.matter.clone()),
                    department: m.department.clone(),
                    state: text.into(),
                    state_code: code,
                    deadline: m.deadline.clone().unwrap_or_default(),
                    light,
                }
            })
            .collect(),
        events: view
            .timeline
            .iter()
            .map(|e| EventRow {
                at: e.at.clone(),
                text: event_text(e),
            })
            .collect(),
        open,
        asked,
    })
}

/// `GET /screens/clerk/cases/{id}`: the case, each matter, the timeline (followed live).
async fn case(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    Path(id): Path<String>,
) -> Response {
    page::answer(&ctx, case_page(&ctx, &signed, &id, None).await)
}

#[derive(Template)]
#[template(path = "screens/clerk_receipt.html")]
struct Receipt {
    frame: Frame,
    case_id: String,
    service: String,
    created_at: String,
    clerk: String,
    window: String,
    hall: String,
    /// Each matter: name, department, promised working days.
    matters: Vec<(String, String, u32)>,
    promised_days: u32,
    qr: String,
    status_url: String,
}

/// `GET /screens/clerk/cases/{id}/receipt`: the printable 受理回执: the case number, the
/// promised time limit of each matter, and a QR code of the applicant's status page (its token).
async fn receipt(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let made = async {
        let o = &ctx.screens.orchestrator;
        let record = readable(&ctx, &signed, &id).await?;
        let view = o.case_view(&record).await?;
        let catalogue = o.catalogue();
        let service = catalogue.service_name(&view.service);
        let matters: Vec<(String, String, u32)> = view
            .matters
            .iter()
            .map(|m| {
                let limit = catalogue
                    .matters
                    .get(&m.matter)
                    .map_or(0, |c| c.time_limit_days);
                (
                    m.matter_name.clone().unwrap_or_else(|| m.matter.clone()),
                    m.department.clone(),
                    limit,
                )
            })
            .collect();
        let promised_days = matters.iter().map(|m| m.2).max().unwrap_or(0);
        // The applicant's page: by the case's unguessable token, not its id, no sign-in; at
        // the address a phone outside the hall can open.
        let token = super::applicant::token_of(&ctx, &view.case_id).await?;
        let status_url = format!(
            "{}/screens/status/{token}",
            ctx.screens.public_base(&headers)
        );
        let qr = qrcode::QrCode::new(status_url.as_bytes())
            .map(|code| {
                code.render::<qrcode::render::svg::Color>()
                    .min_dimensions(160, 160)
                    .build()
            })
            .map_err(|e| ApiError::Internal(format!("QR code: {e}")))?;
        Ok::<_, ApiError>(Receipt {
            frame: Frame::signed(&ctx, &signed, "受理回执"),
            case_id: view.case_id.clone(),
            service,
            created_at: view.created_at.clone(),
            clerk: signed.profile.name.clone(),
            window: signed.profile.window.clone().unwrap_or_default(),
            hall: signed.profile.hall.clone().unwrap_or_default(),
            matters,
            promised_days,
            qr,
            status_url,
        })
    }
    .await;
    page::answer(&ctx, made)
}

/// `GET /screens/clerk/cases/{id}/events`: the case's timeline as server-sent events for the
/// case page's script — each event as `{at, text, status, status_code}` in Chinese (a step's
/// also `{step, state, state_code}`), from the
/// same store and wake-ups as the API's stream; the stream ends when the case is final, and the
/// page's reconnection after it is answered 204, as the API's stream answers it.
async fn events(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    use crate::portal::cases::{follow_case, last_event_id, timeline_sent};
    use axum::response::sse::{Event, KeepAlive, Sse};
    if let Err(e) = readable(&ctx, &signed, &id).await {
        return page::failed(&ctx, e);
    }
    let o = ctx.screens.orchestrator.clone();
    // The page's EventSource reconnects when a final case's stream ends: 204 stops it, and a
    // reconnection mid-case goes on after what the page already shows.
    let after = last_event_id(&headers);
    match timeline_sent(&o, &id, after.as_deref()).await {
        Ok(true) => return axum::http::StatusCode::NO_CONTENT.into_response(),
        Ok(false) => {}
        Err(e) => return page::failed(&ctx, e),
    }
    let stream = follow_case(o, id, after, |event, steps| {
        let states: Vec<_> = steps.iter().map(|s| s.state).collect();
        let (code, status) = status_text(&gateway_cases::CaseStatus::of(&states));
        let view = gateway_cases::views::Event::from(event);
        // A step's event also carries the step's new state, for its row on the page.
        let step_state = view.state.as_ref().map(status_text);
        let data = serde_json::json!({
            "at": view.at,
            "text": event_text(&view),
            "status": status,
            "status_code": code,
            "step": view.step,
            "state": step_state.as_ref().map(|s| s.1),
            "state_code": step_state.as_ref().map(|s| s.0.as_str()),
        });
        Event::default().id(event.id.clone()).data(data.to_string())
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[derive(Deserialize)]
pub(super) struct Withdrawal {
    #[serde(default)]
    reason: String,
}

/// `POST /screens/clerk/cases/{id}/withdrawal`: 撤回 with the applicant's reason, as
/// `POST /api/v1/cases/{id}/withdrawal`; back to the case.
async fn withdraw(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    Path(id): Path<String>,
    axum::Form(withdrawal): axum::Form<Withdrawal>,
) -> Response {
    let done = async {
        let record = readable(&ctx, &signed, &id).await?;
        ctx.screens
            .orchestrator
            .withdraw(
                &record,
                gateway_cases::lifecycle::views::WithdrawalRequest {
                    reason: withdrawal.reason,
                },
            )
            .await?;
        Ok::<_, ApiError>(())
    }
    .await;
    match done {
        Ok(()) => Redirect::to(&format!("/screens/clerk/cases/{id}")).into_response(),
        Err(e) => page::failed(&ctx, e),
    }
}
