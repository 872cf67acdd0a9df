//! One case: its status, each matter with its deadline and light, the timeline, the licences;
//! and the timeline as a live stream.

use crate::AppState;
use crate::auth::Client;
use crate::error::ApiError;
use crate::openapi::Error;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
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
/// a client that reads to the end (a generated client does) has the whole timeline. A
/// reconnection (`Last-Event-ID`, as a browser's `EventSource` sends it) goes on after that
/// event; one to a final case with nothing after it is answered 204, which tells an
/// `EventSource` to stop reconnecting. Woken by the orchestrator's case events; the store is the
/// record.
#[utoipa::path(
    get,
    path = "/api/v1/cases/{id}/events",
    tag = "applications",
    params(
        ("id" = String, Path, description = "Case id"),
        ("Last-Event-ID" = Option<String>, Header, nullable = false, description = "The id of the last event received: the stream goes on after it."),
    ),
    responses(
        (status = 200, description = "Server-sent events; see the `text/event-stream` description.", content_type = "text/event-stream", body = String),
        (status = 204, description = "A reconnection (`Last-Event-ID`) to a final case with no event after that one: the timeline is whole, stop reconnecting."),
        (status = 404, description = "`not_found`: no such case.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
pub(super) async fn case_events(
    State(o): State<AppState>,
    Extension(client): Extension<Client>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    use axum::response::sse::{KeepAlive, Sse};
    readable_case(&o, &client, &id).await?;
    let after = last_event_id(&headers);
    if timeline_sent(&o, &id, after.as_deref()).await? {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let stream = follow_case(o, id, after, |event, _steps| {
        axum::response::sse::Event::default()
            .id(event.id.clone())
            .event(event.kind.as_str())
            .data(serde_json::to_string(&views::Event::from(event)).expect("an event serialises"))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// The event a reconnecting client last received (`Last-Event-ID`), when it names one.
pub(crate) fn last_event_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_string)
}

/// True when a reconnection after `after` has nothing to receive: the case is final and no
/// event follows that one. Without this, a browser's `EventSource` would reconnect to an ended
/// stream every few seconds for as long as its page stays open.
pub(crate) async fn timeline_sent(
    o: &Orchestrator,
    id: &str,
    after: Option<&str>,
) -> Result<bool, ApiError> {
    let Some(after) = after else {
        return Ok(false);
    };
    let steps = o.store().steps(id).await?;
    if !steps.iter().all(|s| s.state.is_final()) {
        return Ok(false);
    }
    // The store reads a case's events in id order: the last is the newest.
    let events = o.store().events(id).await?;
    Ok(events.last().is_none_or(|e| e.id.as_str() <= after))
}

/// How a stream renders one recorded event, given the case's steps as read with it.
pub(crate) type Render =
    fn(&gateway_store::EventRecord, &[gateway_store::StepRecord]) -> axum::response::sse::Event;

/// A case's timeline as a stream of server-sent events, each rendered by `render`: every event
/// so far (after `after`, a reconnection's last event), then each new one as it is recorded,
/// ending after the last once the case is final.
/// The API's stream and the clerk's case page both follow a case through this one loop.
pub(crate) fn follow_case(
    o: AppState,
    id: String,
    after: Option<String>,
    render: Render,
) -> impl futures::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>> {
    use futures::StreamExt;
    let follow = Follow {
        changes: o.subscribe(),
        o,
        id,
        render,
        seen: after,
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
