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
/// new one as it is recorded; once the case is final, the stream ends after its last event, so
/// a client that reads to the end (a generated client does) has the whole timeline. Woken by
/// the orchestrator's case events; the store is the record.
#[utoipa::path(
    get,
    path = "/api/v1/cases/{id}/events",
    tag = "applications",
    params(("id" = String, Path, description = "Case id")),
    responses(
        (status = 200, description = "Server-sent events; see the `text/event-stream` description.", content_type = "text/event-stream", body = String),
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
    use axum::response::sse::{KeepAlive, Sse};
    readable_case(&o, &client, &id).await?;
    let stream = follow_case(o, id, |event, _steps| {
        axum::response::sse::Event::default()
            .id(event.id.clone())
            .event(event.kind.as_str())
            .data(serde_json::to_string(&views::Event::from(event)).expect("an event serialises"))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// How a stream renders one recorded event, given the case's steps as read with it.
pub(crate) type Render =
    fn(&gateway_store::EventRecord, &[gateway_store::StepRecord]) -> axum::response::sse::Event;

/// A case's timeline as a stream of server-sent events, each rendered by `render`: every event
/// so far, then each new one as it is recorded, ending after the last once the case is final.
/// The API's stream and the clerk's case page both follow a case through this one loop.
pub(crate) fn follow_case(
    o: AppState,
    id: String,
    render: Render,
) -> impl futures::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>> {
    use futures::StreamExt;
    let follow = Follow {
        changes: o.subscribe(),
        o,
        id,
        render,
        seen: None,
        first: true,
        finished: false,
    };
    futures::stream::unfold(follow, Follow::next_batch).flatten()
}

type Batch = futures::stream::Iter<
    std::vec::IntoIter<Result<axum::response::sse::Event, std::convert::Infallible>>,
>;

/// Where one event stream stands.
struct Follow {
    o: AppState,
    id: String,
    changes: tokio::sync::broadcast::Receiver<gateway_cases::CaseEvent>,
    render: Render,
    /// The last event sent.
    seen: Option<String>,
    first: bool,
    /// The case was final when the last batch was read: that batch was the last.
    finished: bool,
}

impl Follow {
    /// The events recorded since the last batch, once there are any (or the case is final);
    /// `None` ends the stream.
    async fn next_batch(mut self) -> Option<(Batch, Follow)> {
        if self.finished {
            return None;
        }
        loop {
            if !self.first {
                // Wait for a change on this case (or a lag, after which we re-read anyway).
                loop {
                    match self.changes.recv().await {
                        Ok(change) if change.case_id != self.id => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                        _ => break,
                    }
                }
            }
            self.first = false;
            // Steps before events: a step's state and its event are written together, so the
            // events read after a final state include the event that made it final.
            let steps = self.o.store().steps(&self.id).await.ok()?;
            self.finished = steps.iter().all(|s| s.state.is_final());
            let events = self.o.store().events(&self.id).await.ok()?;
            let new: Vec<Result<axum::response::sse::Event, std::convert::Infallible>> = events
                .iter()
                .filter(|e| self.seen.as_ref().is_none_or(|s| e.id > *s))
                .map(|e| Ok((self.render)(e, &steps)))
                .collect();
            if let Some(last) = events.last() {
                self.seen = Some(last.id.clone());
            }
            if !new.is_empty() || self.finished {
                return Some((futures::stream::iter(new), self));
            }
        }
    }
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
