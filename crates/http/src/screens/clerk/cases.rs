//! The clerk's list of cases (我受理的办件): those this clerk received, or with `scope=hall`
//! every case their hall received, newest first, a page of [`PAGE`] at a time, narrowed by a
//! case number (the only thing searched: no name or identity number goes into an address).

use super::super::Ctx;
use super::super::page::{self, Frame};
use super::super::session::Signed;
use crate::error::ApiError;
use crate::screens::words::status_text;
use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;
use gateway_store::received::ReceivedBy;
use serde::Deserialize;

/// Cases a page.
const PAGE: i64 = 20;

#[derive(Deserialize)]
pub(super) struct ListQuery {
    /// A case number, or a part of one.
    #[serde(default)]
    q: String,
    /// `hall` for the hall's; the clerk's own otherwise.
    #[serde(default)]
    scope: String,
    /// From 1.
    #[serde(default)]
    page: Option<u32>,
}

struct Row {
    id: String,
    service: String,
    received_at: String,
    window: String,
    status: &'static str,
    status_code: String,
}

#[derive(Template)]
#[template(path = "screens/clerk_cases.html")]
struct CasesPage {
    frame: Frame,
    q: String,
    hall: bool,
    /// The clerk's hall, when they have one (the hall's list needs it).
    hall_name: Option<String>,
    rows: Vec<Row>,
    page: u32,
    /// The previous and next pages' addresses, when there are such pages.
    previous: Option<String>,
    next: Option<String>,
}

/// `GET /screens/clerk/cases?q=&scope=&page=`.
pub(super) async fn list(
    State(ctx): State<Ctx>,
    Extension(signed): Extension<Signed>,
    Query(query): Query<ListQuery>,
) -> Response {
    page::answer(&ctx, listed(&ctx, &signed, query).await)
}

async fn listed(ctx: &Ctx, signed: &Signed, query: ListQuery) -> Result<CasesPage, ApiError> {
    let o = &ctx.screens.orchestrator;
    let hall_name = signed.profile.hall.clone();
    let hall = query.scope == "hall" && hall_name.is_some();
    let by = match (&hall_name, hall) {
        (Some(name), true) => ReceivedBy::Hall(name),
        _ => ReceivedBy::Clerk(&signed.profile.user),
    };
    let page = query.page.unwrap_or(1).max(1);
    let q = query.q.trim().to_string();
    // One more than a page: whether there is a next page, without counting them all.
    let mut found = o
        .store()
        .received_cases(
            by,
            Some(&q).filter(|q| !q.is_empty()).map(String::as_str),
            i64::from(page - 1) * PAGE,
            PAGE + 1,
        )
        .await?;
    let more = found.len() as i64 > PAGE;
    found.truncate(PAGE as usize);
    let catalogue = o.catalogue();
    let mut rows = Vec::with_capacity(found.len());
    for case in found {
        let steps = o.store().steps(&case.id).await?;
        let states: Vec<_> = steps.iter().map(|s| s.state).collect();
        let (status_code, status) = status_text(&gateway_cases::CaseStatus::of(&states));
        rows.push(Row {
            service: catalogue
                .services
                .get(&case.service)
                .map_or_else(|| case.service.clone(), |s| s.name.clone()),
            received_at: gateway_base::time::rfc3339(case.created_at),
            window: case
                .clerk
                .map(|c| format!("{} {}", c.window.unwrap_or_default(), c.id))
                .unwrap_or_default(),
            id: case.id,
            status,
            status_code,
        });
    }
    let address = |page: u32| {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        if !q.is_empty() {
            pairs.append_pair("q", &q);
        }
        if hall {
            pairs.append_pair("scope", "hall");
        }
        pairs.append_pair("page", &page.to_string());
        format!("{}/clerk/cases?{}", ctx.desk.prefix, pairs.finish())
    };
    Ok(CasesPage {
        frame: Frame::signed(ctx, signed, "受理的办件"),
        previous: (page > 1).then(|| address(page - 1)),
        next: more.then(|| address(page + 1)),
        q,
        hall,
        hall_name,
        rows,
        page,
    })
}
