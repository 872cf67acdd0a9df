//! The unified API portals call, and the callback endpoint departments call.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /api/v1/catalogue` | matters and services |
//! | `GET /api/v1/services/{code}/form` | the one form (JSON Schema) of a service |
//! | `POST /api/v1/services/{code}/pre-review` | every problem with a filled form, at once |
//! | `POST /api/v1/services/{code}/applications` | apply: 202 with the case id once stored |
//! | `GET /api/v1/cases/{id}` | one aggregated status, each matter, the timeline |
//! | `GET /api/v1/supervision/deadlines` | open steps by department and light (红黄牌), see [`supervision`] |
//! | `POST /api/v1/lookups/{name}` | shared-data lookups at departments |
//! | `POST /callbacks/{department}` | departments report decisions |
//! | `GET /healthz`, `GET /readyz` | the process is up; this node can work, see [`crate::health`] |
//! | `GET /openapi.json`, `GET /docs` | this API's OpenAPI 3.1 document, and a page to browse it |

pub mod error;
pub mod openapi;
pub mod subjects;
pub mod supervision;

use crate::auth::Client;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json, Router};
use error::ApiError;
use gateway_base::model::FieldProblem;
use gateway_base::model::{Clerk, StepState};
use gateway_cases::{CaseError, CaseStatus, Orchestrator};
use gateway_plugins::host::contract::CallbackRequest;
use gateway_store::Admission;
use openapi::Error;
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Shared state of the handlers.
pub type AppState = Arc<Orchestrator>;

/// Every portal route with its documentation: `routes!` takes both from the handler's
/// `#[utoipa::path]`, so no route is served undocumented.
fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(catalogue))
        .routes(routes!(form))
        .routes(routes!(pre_review))
        .routes(routes!(apply))
        .routes(routes!(case))
        .routes(routes!(case_events))
        .routes(routes!(lookup))
        .routes(routes!(callback))
        .merge(subjects::routes())
        .merge(supervision::routes())
        .merge(crate::health::routes())
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(openapi::docs))
}

/// The OpenAPI 3.1 document of the portal API (what `GET /openapi.json` answers).
pub fn document() -> Value {
    let mut document =
        serde_json::to_value(documented().into_openapi()).expect("the OpenAPI document serialises");
    openapi::secure(&mut document);
    document
}

/// Bounds on every portal request: its time, and its body in the one error format.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// `server.body_limit_bytes`.
    pub body_bytes: usize,
    /// `server.request_timeout_ms`.
    pub timeout_ms: u64,
}

/// End a request that runs past its time with `504 request_timeout`, and give the body
/// limit's refusal the one error format. Event streams are long-lived by design: exempt.
async fn bounded(
    State(limits): State<RequestLimits>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let streaming = request.uri().path().ends_with("/events");
    let response = if streaming {
        next.run(request).await
    } else {
        let bound = std::time::Duration::from_millis(limits.timeout_ms);
        match tokio::time::timeout(bound, next.run(request)).await {
            Ok(response) => response,
            Err(_) => return ApiError::RequestTimeout(limits.timeout_ms).into_response(),
        }
    };
    let plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_none_or(|t| !t.as_bytes().starts_with(b"application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && plain {
        return ApiError::TooLarge(limits.body_bytes).into_response();
    }
    response
}

/// The portal router.
pub fn router(
    state: AppState,
    limits: RequestLimits,
    readiness: Arc<crate::health::Readiness>,
    authenticator: crate::auth::Credentials,
) -> Router {
    let (router, document) = documented().split_for_parts();
    let mut document = serde_json::to_value(&document).expect("the OpenAPI document serialises");
    openapi::secure(&mut document);
    let page = openapi::docs_page(&document);
    router
        .fallback(|| async {
            ApiError::NotFound {
                what: "route",
                id: "this path".into(),
            }
        })
        .layer(axum::middleware::from_fn_with_state(
            authenticator,
            crate::auth::portal,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(limits.body_bytes))
        .layer(axum::middleware::from_fn_with_state(limits, bounded))
        .layer(Extension(readiness))
        .layer(Extension(Arc::new(document)))
        .layer(Extension(Arc::new(page)))
        .with_state(state)
}

/// Parse a JSON body ourselves, so malformed JSON gets the one error format; the names in it
/// are masked in whatever this request logs or answers from now on.
fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    let value = serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    gateway_base::redact::note_names(&value);
    Ok(value)
}

/// The catalogue: matters, services and lookups.
#[utoipa::path(
    get,
    path = "/api/v1/catalogue",
    tag = "catalogue",
    responses((status = 200, description = "Every matter, service and lookup.", body = openapi::Catalogue))
)]
async fn catalogue(State(o): State<AppState>) -> Json<Value> {
    let catalogue = o.catalogue();
    let matters: Vec<Value> = catalogue
        .matters
        .values()
        .map(|m| {
            json!({
                "code": m.code, "name": m.name, "department": m.department,
                "matter_type": m.matter_type, "service_object": m.service_object,
                "time_limit_days": m.time_limit_days,
            })
        })
        .collect();
    let services: Vec<_> = catalogue.services.values().collect();
    let lookups: Vec<Value> = o
        .adapters()
        .all()
        .iter()
        .flat_map(|a| {
            let department = a.description().department.clone();
            a.description()
                .lookups
                .iter()
                .map(move |l| json!({"name": l.name, "description": l.description, "department": department}))
                .collect::<Vec<_>>()
        })
        .collect();
    Json(json!({"matters": matters, "services": services, "lookups": lookups}))
}

/// The one form of a service: one JSON Schema, every field asked once (四不提交).
#[utoipa::path(
    get,
    path = "/api/v1/services/{code}/form",
    tag = "catalogue",
    params(("code" = String, Path, description = "Service code, e.g. `one-thing.open-business`")),
    responses(
        (status = 200, description = "The service's form.", body = openapi::Form),
        (status = 404, description = "`not_found`: no such service.", body = Error),
    )
)]
async fn form(
    State(o): State<AppState>,
    Path(code): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let catalogue = o.catalogue();
    let service = catalogue.services.get(&code).ok_or(ApiError::NotFound {
        what: "service",
        id: code,
    })?;
    Ok(Json(
        json!({"service": service.code, "name": service.name, "kind": service.kind, "steps": service.steps, "schema": service.form}),
    ))
}

/// Every problem with a filled form, at once (一次性告知): schema, identifiers, lookups, rules and
/// each department's own check.
#[utoipa::path(
    post,
    path = "/api/v1/services/{code}/pre-review",
    tag = "applications",
    params(("code" = String, Path, description = "Service code")),
    request_body(content = openapi::FilledForm, description = "The filled form.", content_type = "application/json"),
    responses(
        (status = 200, description = "The review: `ok` when there is no problem.", body = openapi::PreReview),
        (status = 400, description = "`malformed_json`: the body is not JSON.", body = Error),
        (status = 404, description = "`not_found`: no such service, or a department found no record.", body = Error),
        (status = 413, description = "`payload_too_large`: the body exceeds `server.body_limit_bytes`.", body = Error),
        (status = 422, description = "`invalid_input` or `rejected` from a department's check.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
        (status = 502, description = "`department_protocol_error` or `adapter_failed`.", body = Error),
        (status = 503, description = "`department_unavailable`.", body = Error),
        (status = 504, description = "`department_timeout`.", body = Error),
    )
)]
async fn pre_review(
    State(o): State<AppState>,
    Path(code): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let form = json_body(&body)?;
    let review = o.review(&code, &form).await?;
    Ok(Json(json!({
        "ok": review.problems.is_empty(),
        "problems": review.problems,
        // Which records the gateway obtained itself (四不提交); their content stays inside.
        "obtained": review.lookups.as_object().map(|l| l.keys().cloned().collect::<Vec<_>>()).unwrap_or_default(),
    })))
}

/// Apply: the case and every step are stored before the answer (202).
#[utoipa::path(
    post,
    path = "/api/v1/services/{code}/applications",
    tag = "applications",
    params(
        ("code" = String, Path, description = "Service code"),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, description = "1-255 visible ASCII characters; a repeat returns the same case"),
        ("X-Clerk-Id" = Option<String>, Header, nullable = false, description = "The clerk at the window (UTF-8), recorded on the case"),
        ("X-Clerk-Window" = Option<String>, Header, nullable = false, description = "The clerk's window"),
        ("X-Clerk-Hall" = Option<String>, Header, nullable = false, description = "The service hall"),
    ),
    request_body(content = openapi::FilledForm, description = "The filled form.", content_type = "application/json"),
    responses(
        (status = 202, description = "Stored; delivery follows.", body = openapi::Accepted,
            headers(("Idempotent-Replayed" = String, description = "`true` when this repeats an earlier request with the same key"))),
        (status = 400, description = "`malformed_json`: the body is not JSON.", body = Error),
        (status = 404, description = "`not_found`: no such service, or a department found no record.", body = Error),
        (status = 413, description = "`payload_too_large`: the body exceeds `server.body_limit_bytes`.", body = Error),
        (status = 422, description = "`invalid_input` (every problem in `fields`), `idempotency_conflict` or `rejected`.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
        (status = 502, description = "`department_protocol_error` or `adapter_failed`.", body = Error),
        (status = 503, description = "`department_unavailable`.", body = Error),
        (status = 504, description = "`department_timeout`.", body = Error),
    )
)]
async fn apply(
    State(o): State<AppState>,
    Extension(client): Extension<Client>,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, HeaderMap, Json<Value>), ApiError> {
    let form = json_body(&body)?;
    let admission = admission(&client, &code, &headers, &body)?;
    let applied = o.apply(&code, form, admission).await?;
    let case_id = &applied.case_id;
    let mut answer_headers = HeaderMap::new();
    if applied.replayed {
        answer_headers.insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    let body = json!({"case_id": case_id, "status": "received", "links": {"case": format!("/api/v1/cases/{case_id}")}});
    Ok((StatusCode::ACCEPTED, answer_headers, Json(body)))
}

/// Why a lookup is run and for whom: `X-Lookup-Purpose`, and the case (`X-Case-Id`, one the
/// client may read) or the clerk it serves. Every problem at once.
async fn lookup_purpose(
    o: &Orchestrator,
    client: &Client,
    headers: &HeaderMap,
) -> Result<gateway_store::LookupServes, ApiError> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let purpose = text("x-lookup-purpose");
    let case_id = text("x-case-id");
    let clerk = clerk(headers);
    let mut problems = Vec::new();
    match &purpose {
        None => problems.push(FieldProblem::new(
            "X-Lookup-Purpose",
            "required",
            "every lookup of citizens' data records why it is made",
        )),
        Some(p) if p.chars().count() > 200 => problems.push(FieldProblem::new(
            "X-Lookup-Purpose",
            "too_long",
            "at most 200 characters",
        )),
        Some(_) => {}
    }
    if case_id.is_none() && clerk.is_none() {
        problems.push(FieldProblem::new(
            "X-Case-Id",
            "required",
            "a lookup serves a case (X-Case-Id) or a clerk at a window (X-Clerk-Id)",
        ));
    }
    if !problems.is_empty() {
        return Err(ApiError::InvalidInput(problems));
    }
    if let Some(id) = &case_id {
        readable_case(o, client, id).await?;
    }
    Ok(gateway_store::LookupServes {
        purpose: purpose.unwrap_or_default(),
        case_id,
        clerk,
    })
}

/// A case the client may read. Another client's case is "not found", like a missing one: its
/// existence is not the asker's business.
async fn readable_case(
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

/// The clerk at the window, from `X-Clerk-Id`, `X-Clerk-Window` and `X-Clerk-Hall`.
pub fn clerk(headers: &HeaderMap) -> Option<Clerk> {
    // Halls and windows have Chinese names: take the header's bytes as UTF-8, not only ASCII.
    let text = |name: &str| {
        let value = headers
            .get(name)
            .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())?;
        Some(value.trim().to_string()).filter(|v| !v.is_empty())
    };
    text("x-clerk-id").map(|id| Clerk {
        id,
        window: text("x-clerk-window"),
        hall: text("x-clerk-hall"),
    })
}

/// How an application arrives: its idempotency key (scoped to the client and the service), a
/// digest of the body to tell a true repeat from a reused key, the clerk and the client.
fn admission(
    client: &Client,
    service: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Admission, ApiError> {
    use sha2::Digest;
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let key = v
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|k| !k.is_empty() && k.len() <= 255);
            let key = key.ok_or_else(|| {
                ApiError::InvalidInput(vec![FieldProblem::new(
                    "Idempotency-Key",
                    "format",
                    "1-255 visible ASCII characters",
                )])
            })?;
            Some(format!("{}:{service}:{key}", client.id))
        }
    };
    let mut digest = sha2::Sha256::new();
    digest.update(service.as_bytes());
    digest.update([0]);
    digest.update(body);
    Ok(Admission {
        idempotency_key: key,
        request_digest: hex::encode(digest.finalize()),
        clerk: clerk(headers),
        client: Some(client.id.clone()),
    })
}

fn event_json(e: &gateway_store::EventRecord) -> Value {
    json!({
        "at": rfc3339(e.at), "department": e.department, "step": e.step, "kind": e.kind,
        "state": e.state, "message": e.message, "clerk": e.clerk,
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
async fn case_events(
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
                            .event(e.kind.clone())
                            .data(event_json(e).to_string()))
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

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// One case: its aggregated status, each matter, the timeline and the licences it issued.
#[utoipa::path(
    get,
    path = "/api/v1/cases/{id}",
    tag = "applications",
    params(("id" = String, Path, description = "Case id")),
    responses(
        (status = 200, description = "The case.", body = openapi::Case),
        (status = 404, description = "`not_found`: no such case.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
    )
)]
async fn case(
    State(o): State<AppState>,
    Extension(client): Extension<Client>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let record = readable_case(&o, &client, &id).await?;
    let steps = o.store().steps(&id).await?;
    let events = o.store().events(&id).await?;
    let licences = o.store().licences_of_case(&id).await?;
    let states: Vec<StepState> = steps.iter().map(|s| s.state).collect();
    let now = gateway_base::time::now_ms();
    let catalogue = o.catalogue();
    let matters: Vec<Value> = steps
        .iter()
        .map(|s| {
            let matter = catalogue.matters.get(&s.matter);
            // The promised limit: deadline, and the light while open (红黄牌).
            let clock = matter.map(|m| {
                o.deadlines().clock(
                    m.time_limit_days,
                    record.created_at,
                    s.state,
                    s.updated_at,
                    now,
                )
            });
            json!({
                "step": s.step, "matter": s.matter, "matter_name": matter.map(|m| m.name.as_str()),
                "department": s.department, "state": s.state, "reference": s.reference,
                "outputs": s.outputs, "message": s.message, "attempts": s.attempts,
                "updated_at": rfc3339(s.updated_at),
                "deadline": clock.map(|c| gateway_base::time::rfc3339(c.deadline_ms)),
                "light": clock.and_then(|c| c.light),
                "finished_late": clock.and_then(|c| c.finished_late),
            })
        })
        .collect();
    let timeline: Vec<Value> = events.iter().map(event_json).collect();
    Ok(Json(json!({
        "case_id": record.id, "service": record.service, "status": CaseStatus::of(&states),
        "created_at": rfc3339(record.created_at), "matters": matters, "timeline": timeline,
        "licences": licences.iter().map(subjects::view).collect::<Vec<_>>(),
    })))
}

/// A shared-data lookup at the department that serves it.
#[utoipa::path(
    post,
    path = "/api/v1/lookups/{name}",
    tag = "lookups",
    params(
        ("name" = String, Path, description = "Lookup name, e.g. `tax.clearance`"),
        ("X-Lookup-Purpose" = String, Header, description = "Why the data is looked up (recorded), e.g. `二手房转移登记受理`; 1-200 characters."),
        ("X-Case-Id" = Option<String>, Header, description = "The case the lookup serves (one of the client's); this or `X-Clerk-Id` is required."),
        ("X-Clerk-Id" = Option<String>, Header, description = "The clerk the lookup serves; this or `X-Case-Id` is required."),
    ),
    request_body(content = Object, description = "The lookup's query.", content_type = "application/json"),
    responses(
        (status = 200, description = "The department's answer in the lookup's unified shape.", body = openapi::LookupAnswer),
        (status = 400, description = "`malformed_json`: the body is not JSON.", body = Error),
        (status = 404, description = "`not_found`: no such lookup, or no such record.", body = Error),
        (status = 413, description = "`payload_too_large`: the body exceeds `server.body_limit_bytes`.", body = Error),
        (status = 422, description = "`invalid_input` or `rejected`.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
        (status = 502, description = "`department_protocol_error` or `adapter_failed`.", body = Error),
        (status = 503, description = "`department_unavailable`.", body = Error),
        (status = 504, description = "`department_timeout`.", body = Error),
    )
)]
async fn lookup(
    State(o): State<AppState>,
    Extension(client): Extension<Client>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let query = json_body(&body)?;
    let served = lookup_purpose(&o, &client, &headers).await?;
    let adapter = o.adapters().for_lookup(&name).ok_or(ApiError::NotFound {
        what: "lookup",
        id: name.clone(),
    })?;
    let department = adapter.department().id.clone();
    let answer = adapter.lookup(&name, &query.to_string()).await;
    let outcome = answer.as_ref().map_or_else(|e| e.kind(), |_| "ok");
    o.store()
        .record_lookup(&client.id, &name, &served, outcome)
        .await?;
    let answer = answer.map_err(|e| ApiError::from(CaseError::from_call(&department, e)))?;
    let result: Value = serde_json::from_str(&answer).map_err(|e| ApiError::AdapterFailed {
        department: department.clone(),
        message: format!("adapter answered a lookup with invalid JSON: {e}"),
    })?;
    gateway_base::redact::note_names(&result);
    Ok(Json(
        json!({"lookup": name, "department": department, "result": result}),
    ))
}

/// A department reports a decision; its adapter authenticates and reads the request.
#[utoipa::path(
    post,
    path = "/callbacks/{department}",
    tag = "departments",
    params(("department" = String, Path, description = "Department id")),
    request_body(content = String, description = "Whatever the department sends; its adapter reads it.", content_type = "*/*"),
    responses(
        (status = 200, description = "Taken.", body = openapi::CallbackAck),
        (status = 404, description = "`not_found`: no such department, or no step with that reference.", body = Error),
        (status = 413, description = "`payload_too_large`: the body exceeds `server.body_limit_bytes`.", body = Error),
        (status = 422, description = "`invalid_input` or `rejected`: the adapter refused the callback.", body = Error),
        (status = 500, description = "`internal`.", body = Error),
        (status = 502, description = "`department_protocol_error` or `adapter_failed`.", body = Error),
        (status = 503, description = "`department_unavailable`.", body = Error),
        (status = 504, description = "`department_timeout`.", body = Error),
    )
)]
async fn callback(
    State(o): State<AppState>,
    Path(department): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let headers = headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    o.callback(
        &department,
        CallbackRequest {
            headers,
            body: body.to_vec(),
        },
    )
    .await?;
    Ok(Json(json!({"ok": true})))
}

#[cfg(test)]
mod fuzz {
    //! Property test (fuzz target) for body parsing: any bytes are a JSON value or the one
    //! `malformed_json` answer (400), never a panic, however deep or large. 256 cases, or
    //! `PROPTEST_CASES`.
    use super::*;
    use axum::response::IntoResponse;
    use proptest::prelude::*;

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            any::<String>().prop_map(|s| serde_json::to_vec(&s).expect("a string")),
            (1usize..100_000).prop_map(|depth| "[".repeat(depth).into_bytes()),
            (1usize..200).prop_map(|depth| format!(
                "{}{}",
                "{\"a\":".repeat(depth),
                "}".repeat(depth)
            )
            .into_bytes()),
            "-?[0-9]{1,400}(\\.[0-9]{0,40})?(e[+-]?[0-9]{1,5})?".prop_map(String::into_bytes),
        ]
    }

    proptest! {
        #[test]
        fn any_body_is_json_or_malformed_json(bytes in body()) {
            let parsed = serde_json::from_slice::<Value>(&bytes);
            match json_body(&Bytes::from(bytes)) {
                Ok(value) => prop_assert_eq!(Some(value), parsed.ok()),
                Err(error) => {
                    prop_assert!(parsed.is_err());
                    prop_assert!(matches!(error, ApiError::MalformedJson(_)));
                    prop_assert_eq!(error.into_response().status(), StatusCode::BAD_REQUEST);
                }
            }
        }
    }
}
