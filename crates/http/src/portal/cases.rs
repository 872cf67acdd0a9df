//! One case: its status, each matter with its deadline and light, the timeline, the licences;
//! and the timeline as a live stream.

use crate::AppState;
use crate::auth::Client;
use crate::error::ApiError;
use crate::openapi::Error;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use gateway_cases::Orchestrator;
use gateway_cases::views::{self, CaseView};

/// A case the client may read. Another client's case is "not found", like a missing one: its
/// existence is not the asker's business.
pub(super) async fn readable_case(
    o: &Orchestrator,
    client: &Client,
    id: &str,
) -> Result<gateway_store::CaseRecord, ApiError> {
    o.store()
        .case(id)
        .await?
        .filter(|c| client.may_read_case_of(c.client.as_deref()))
        .ok_or(ApiError::NotFound {
            what: "case",
            id: id.to_string(),
        })
}

/// A live stream of a case's timeline (server-sent events): first every event so far, then each
/// new one as it is recorded. Woken by the orchestrator's case events; the store is the record.
#[utoipa::path(
    get,
    path = "/api/v1/cases/{id}/events",
    tag = "applications",
    params(("id" = String, Path, description = "Case id")),
    responses(
        (status = 200, description = "Server-sent events: `id` the event id, `event` its kind, `data` one `Event` as JSON.", content_type = "text/event-stream", body = String),
        (status = 404, description = "`not_found`: no such case.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
pub(super) async fn case_events(
    State(o): State<AppState>,
    Extension(client): Extension<Client>,
    Path(id): Path<String>,
) -> Result<
    axum::response::sse::Sse<
        impl futures::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
    >,
    ApiError,
> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    readable_case(&o, &client, &id).await?;
    let changes = o.subscribe();
    let stream = futures::stream::unfold(
        (o, id, changes, None::<String>, true),
        |(o, id, mut changes, mut seen, first)| async move {
            loop {
                if !first {
                    // Wait for a change on this case (or a lag, after which we re-read anyway).
                    loop {
                        match changes.recv().await {
                            Ok(change) if change.case_id != id => continue,
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                            _ => break,
                        }
                    }
                }
                let events = o.store().events(&id).await.ok()?;
                let new: Vec<Result<Event, std::convert::Infallible>> = events
                    .iter()
                    .filter(|e| seen.as_ref().is_none_or(|s| e.id > *s))
                    .map(|e| {
                        Ok(Event::default()
                            .id(e.id.clone())
                            .event(e.kind.as_str())
                            .data(
                                serde_json::to_string(&views::Event::from(e))
                                    .expect("an event serialises"),
                            ))
                    })
                    .collect();
                if let Some(last) = events.last() {
                    seen = Some(last.id.clone());
                }
                if !new.is_empty() {
                    let batch = futures::stream::iter(new);
                    return Some((batch, (o, id, changes, seen, false)));
                }
                if first {
                    return Some((
                        futures::stream::iter(Vec::new()),
                        (o, id, changes, seen, false),
                    ));
                }
            }
        },
    );
    use futures::StreamExt;
    Ok(Sse::new(stream.flatten()).keep_alive(KeepAlive::default()))
}

/// One case: its aggregated status, each matter, the timeline and the licences it issued.
#[utoipa::path(
    get,
    path = "/api/v1/cases/{id}",
    tag = "applications",
    params(("id" = String, Path, description = "Case id")),
    responses(
        (status = 200, description = "The case.", body = CaseView),
        (status = 404, description = "`not_found`: no such case.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
pub(super) async fn case(
    State(o): State<AppState>,
    Extension(client): Extension<Client>,
    Path(id): Path<String>,
) -> Result<Json<CaseView>, ApiError> {
    let record = readable_case(&o, &client, &id).await?;
    Ok(Json(o.case_view(&record).await?))
}
