//! The applicant's page behind the receipt's QR code, for a phone (390×844): no sign-in,
//! reached by the case's unguessable status token (`/screens/status/{token}`, never the case
//! id), showing only what holds no personal data — the service, the case number, each matter's
//! state and promised date — and, once the case is decided, 扫码评: the 好差评 evaluation on the
//! `qr` channel through the same [`gateway_cases::Orchestrator::evaluate`] as
//! `POST /api/v1/cases/{id}/evaluations`, once per case.

use super::Ctx;
use super::page::{self, Frame};
use crate::error::ApiError;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use gateway_store::CaseRecord;

/// The applicant's routes (no session: the token is the key).
pub(super) fn routes() -> axum::Router<Ctx> {
    axum::Router::new().route("/screens/status/{token}", get(status).post(evaluate))
}

/// A fresh status token: 256 random bits, URL-safe base64.
pub(crate) fn fresh_token() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// The case's status token (made on its first receipt).
pub(crate) async fn token_of(ctx: &Ctx, case_id: &str) -> Result<String, ApiError> {
    Ok(ctx
        .screens
        .orchestrator
        .store()
        .status_token(case_id, &fresh_token(), gateway_base::time::now_ms())
        .await?)
}

#[derive(Template)]
#[template(path = "screens/applicant_status.html")]
struct StatusPage {
    frame: Frame,
    token: String,
    case_id: String,
    service: String,
    received: String,
    status: &'static str,
    status_code: String,
    /// Each matter: name, state, state code, promised date (`YYYY-MM-DD`).
    matters: Vec<(String, &'static str, String, String)>,
    /// Decided and not yet evaluated by QR: the form is shown.
    may_evaluate: bool,
    /// The QR channel's evaluation, once given: its level.
    evaluated: Option<String>,
    /// Problems of a refused evaluation.
    problems: Vec<String>,
}

/// The five levels, best first, as the form offers them.
const LEVELS: [&str; 5] = gateway_cases::evaluations::LEVELS;

impl StatusPage {
    fn levels(&self) -> &'static [&'static str] {
        &LEVELS
    }
}

/// The case a token opens; an unknown token is "not found", like a case that is not there.
async fn case_of(ctx: &Ctx, token: &str) -> Result<CaseRecord, ApiError> {
    let store = ctx.screens.orchestrator.store();
    let not_found = || ApiError::NotFound {
        what: "page",
        id: String::new(),
    };
    let id = store
        .case_of_status_token(token)
        .await?
        .ok_or_else(not_found)?;
    store.case(&id).await?.ok_or_else(not_found)
}

async fn status_page(
    ctx: &Ctx,
    token: &str,
    problems: Vec<String>,
) -> Result<StatusPage, ApiError> {
    let o = &ctx.screens.orchestrator;
    let record = case_of(ctx, token).await?;
    let view = o.case_view(&record).await?;
    let evaluations = o.case_evaluations(&record).await?;
    let evaluated = evaluations
        .items
        .iter()
        .find(|e| e.channel == "qr")
        .map(|e| e.level_name.clone());
    let catalogue = o.catalogue();
    let (status_code, status) = super::words::status_text(&view.status);
    // Dates only: a phone's reader wants the day, not the instant.
    let day = |at: &str| at.get(..10).unwrap_or(at).to_string();
    Ok(StatusPage {
        frame: Frame::anonymous(ctx, "办件进度"),
        token: token.to_string(),
        case_id: view.case_id.clone(),
        service: catalogue.service_name(&view.service),
        received: day(&view.created_at),
        status,
        status_code,
        matters: view
            .matters
            .iter()
            .map(|m| {
                let (code, text) = super::words::status_text(&m.state);
                (
                    m.matter_name.clone().unwrap_or_else(|| m.matter.clone()),
                    text,
                    code,
                    m.deadline.as_deref().map(day).unwrap_or_default(),
                )
            })
            .collect(),
        may_evaluate: evaluations.decided && evaluated.is_none(),
        evaluated,
        problems,
    })
}

/// `GET /screens/status/{token}`.
async fn status(State(ctx): State<Ctx>, Path(token): Path<String>) -> Response {
    page::answer(&ctx, status_page(&ctx, &token, Vec::new()).await)
}

/// Whether a post comes from this gateway's own page (no session, so no CSRF token: the
/// unguessable address and the browser's word on where the form was are what is checked).
/// Behind a proxy the page's origin is the configured public URL's, not the `Host` the
/// gateway is reached at.
fn from_our_page(headers: &HeaderMap, public_origin: Option<&str>) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    if let (Some(origin), Some(public)) = (headers.get(header::ORIGIN), public_origin)
        && origin
            .to_str()
            .is_ok_and(|o| o.eq_ignore_ascii_case(public))
    {
        return true;
    }
    match (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        (Some(origin), Some(host)) => origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .is_some_and(|(_, rest)| host.to_str().is_ok_and(|h| rest.eq_ignore_ascii_case(h))),
        _ => true,
    }
}

/// `POST /screens/status/{token}` (`level`, optional `comment`): 扫码评, anonymous, on the `qr`
/// channel; back to the page, or the page with the problems (422).
async fn evaluate(
    State(ctx): State<Ctx>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !from_our_page(&headers, ctx.screens.public_origin().as_deref()) {
        return page::refused(&ctx, "请求来源不符，已拒绝。");
    }
    let pairs = super::session::serde_urlencoded_pairs(&body);
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let mut evaluation = serde_json::json!({"channel": "qr", "anonymous": true});
    if let Some(level) = field("level") {
        evaluation["level"] = level.into();
    }
    if let Some(comment) = field("comment") {
        evaluation["comment"] = comment.into();
    }
    let done = async {
        let record = case_of(&ctx, &token).await?;
        ctx.screens
            .orchestrator
            .evaluate(&record, &evaluation, None)
            .await?;
        Ok::<_, ApiError>(())
    }
    .await;
    match done {
        Ok(()) => Redirect::to(&format!("/screens/status/{token}")).into_response(),
        Err(ApiError::InvalidInput(problems)) => {
            let problems = problems.into_iter().map(|p| p.message).collect();
            match status_page(&ctx, &token, problems).await {
                Ok(page) => (StatusCode::UNPROCESSABLE_ENTITY, page::html(&page)).into_response(),
                Err(e) => page::failed(&ctx, e),
            }
        }
        Err(e) => page::failed(&ctx, e),
    }
}
