//! The unified API portals call, and the endpoints departments call (callbacks, licence
//! sharing).
//!
//! | route | what |
//! | --- | --- |
//! | `GET /api/v1/catalogue` | matters and services |
//! | `GET /api/v1/services/{code}/form` | the one form (JSON Schema) of a service |
//! | `POST /api/v1/services/{code}/pre-review` | every problem with a filled form, at once |
//! | `POST /api/v1/services/{code}/applications` | apply: 202 with the case id once stored |
//! | `POST /api/v1/services/{code}/drafts`, `GET /api/v1/drafts/{id}` | an application in preparation and its materials, see [`drafts`] |
//! | `PUT`/`DELETE /api/v1/drafts/{id}/materials/{material}`, `PUT /api/v1/cases/{id}/materials/{material}` | upload (streamed) or remove a material, see [`materials`] |
//! | `GET /api/v1/cases/{id}` | one aggregated status, each matter, the timeline |
//! | `POST /api/v1/cases/{id}/matters/{step}/supplements`, `POST /api/v1/cases/{id}/withdrawal`, `GET /api/v1/supervision/commitments` | 补正, 撤回, 容缺 outstanding, see [`lifecycle`] |
//! | `GET /api/v1/supervision/deadlines` | open steps by department and light (红黄牌), see [`supervision`] |
//! | `GET /api/v1/supervision/red-cards`, `GET /api/v1/supervision/statistics` | 电子监察: red-card events; figures per department and period, see [`supervision`] |
//! | `GET`/`PUT /api/v1/cases/{id}/notifications` | what was sent about a case (masked); the applicant's number and opt-out, see [`notifications`] |
//! | `POST`/`GET /api/v1/cases/{id}/evaluations`, `GET /api/v1/supervision/evaluations/statistics`, `/api/v1/supervision/rectifications` … | 好差评, rectifications (整改), statistics, see [`evaluations`] |
//! | `POST /api/v1/lookups/{name}` | shared-data lookups at departments |
//! | `POST /callbacks/{department}` | departments report decisions (in a document of their own, `GET /callbacks/openapi.json`) |
//! | `GET /licence-sharing/v1/licences/{id}` | departments verify a licence with their own key, see [`crate::licence_sharing`] (in the departments' document) |
//! | `GET /healthz`, `GET /readyz` | the process is up; this node can work, see [`crate::health`] |
//! | `GET /openapi.json`, `GET /docs`, `GET /docs/assets/{file}` | this API's OpenAPI 3.1 document, and a page to browse it (its assets served by the gateway, [`crate::docs`]) |

mod applications;
mod callbacks;
pub(crate) mod cases;
mod catalogue;
mod drafts;
mod evaluations;
mod lifecycle;
mod lookups;
mod materials;
mod notifications;
pub mod subjects;
pub mod supervision;

#[cfg(test)]
pub(crate) use applications::IDEMPOTENCY_KEY_PATTERN;

use crate::AppState;
use crate::error::ApiError;
use crate::openapi;
use axum::body::Bytes;
use axum::extract::State;
use axum::{Extension, Router};
use serde_json::Value;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every portal route with its documentation: `routes!` takes both from the handler's
/// `#[utoipa::path]`, so no route is served undocumented.
fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(catalogue::catalogue))
        .routes(routes!(catalogue::form))
        .routes(routes!(applications::pre_review))
        .routes(routes!(applications::apply))
        .routes(routes!(cases::case))
        .routes(routes!(cases::case_events))
        .routes(routes!(lookups::lookup))
        .routes(routes!(drafts::create))
        .routes(routes!(drafts::draft))
        .routes(routes!(materials::to_draft, drafts::remove))
        .routes(routes!(materials::to_case))
        .routes(routes!(
            notifications::notifications,
            notifications::set_contact
        ))
        .merge(evaluations::routes())
        .merge(lifecycle::routes())
        .merge(subjects::routes())
        .merge(supervision::routes())
        .merge(crate::health::routes())
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(openapi::callbacks_json))
        .routes(routes!(openapi::docs))
        .routes(routes!(crate::docs::asset))
}

/// The portal API's document without a catalogue: every route, the `{code}` and `{name}`
/// routes with open bodies (`gateway openapi` prints this; a running gateway adds each
/// service's and lookup's typed path, see [`openapi::with_catalogue`]).
pub fn document() -> Value {
    let mut document =
        serde_json::to_value(documented().into_openapi()).expect("the OpenAPI document serialises");
    openapi::finish(&mut document);
    document
}

/// The departments' routes: callbacks and licence sharing, in a document of their own.
fn departments_documented() -> OpenApiRouter<AppState> {
    callbacks::routes().merge(crate::licence_sharing::routes())
}

/// The departments' document: the callback route and licence sharing.
pub fn callbacks_document() -> Value {
    let mut document = serde_json::to_value(departments_documented().into_openapi())
        .expect("the OpenAPI document serialises");
    openapi::open_objects(&mut document);
    openapi::department_security(&mut document);
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

/// What every portal request passes through, in one middleware: a handler's panic answered,
/// the request's time bound, the clerk on every exchange it causes, the client's credential.
/// Functions called in turn rather than a layer each: a router boxes every layer per route,
/// and each call through one clones the boxed stack below it (BENCHMARKS.md, "Fewer
/// layers").
async fn gate(
    State(gate): State<Gate>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    // Headers that cannot be read name no clerk here; the routes that record a clerk
    // (applications, lookups) refuse them with 422.
    let clerk = crate::middleware::clerk(request.headers()).ok().flatten();
    // Event streams are long-lived by design: exempt from the time bound; so are uploads as
    // a whole, which bound their own time and pauses ([`materials`]).
    let streaming = request.uri().path().ends_with("/events")
        || materials::is_upload(request.method(), request.uri().path());
    let limits = gate.limits;
    let authenticated = async move {
        crate::auth::portal(&gate.credentials, request, next)
            .await
            .unwrap_or_else(IntoResponse::into_response)
    };
    let bounded = async move {
        let response = if streaming {
            authenticated.await
        } else {
            let bound = std::time::Duration::from_millis(limits.timeout_ms);
            match tokio::time::timeout(bound, authenticated).await {
                Ok(response) => response,
                Err(_) => return ApiError::RequestTimeout(limits.timeout_ms).into_response(),
            }
        };
        // The body limit's refusal in the one error format.
        crate::error::too_large_as_json(response, limits.body_bytes)
    };
    caught(gateway_store::audit::scope(|c| c.clerk = clerk, bounded)).await
}

/// What [`gate`] holds: the request limits and the credentials in force.
#[derive(Clone)]
struct Gate {
    limits: RequestLimits,
    credentials: crate::auth::Credentials,
}

/// The portal router (with the departments' routes, each authenticated its own way).
pub fn router(
    state: AppState,
    limits: RequestLimits,
    readiness: Arc<crate::health::Readiness>,
    authenticator: crate::auth::Credentials,
    audit: gateway_store::audit::Sink,
) -> Router {
    let (router, document) = documented().split_for_parts();
    let mut document = serde_json::to_value(&document).expect("the OpenAPI document serialises");
    openapi::finish(&mut document);
    let (callbacks, _) = callbacks::routes().split_for_parts();
    let (sharing, _) = crate::licence_sharing::routes().split_for_parts();
    // The department's key is checked here, on these routes alone (the portal's middleware
    // lets `/licence-sharing/…` through without a client credential).
    let sharing = sharing
        .route_layer(axum::middleware::from_fn_with_state(
            authenticator.clone(),
            crate::auth::department,
        ))
        .layer(Extension(audit));
    let documents = openapi::Documents {
        portal: Arc::new(document),
        callbacks: Arc::new(callbacks_document()),
    };
    // Served here, documented in the departments' document.
    router
        .merge(callbacks)
        .merge(sharing)
        .fallback(crate::error::no_route)
        // One layer: a router boxes each of its layers per route (see [`gate`]).
        .layer(
            tower::ServiceBuilder::new()
                .layer(Extension(readiness))
                .layer(Extension(documents))
                .layer(axum::middleware::from_fn_with_state(
                    Gate {
                        limits,
                        credentials: authenticator,
                    },
                    gate,
                ))
                .layer(axum::extract::DefaultBodyLimit::max(limits.body_bytes)),
        )
        .with_state(state)
}

/// A handler that panics is answered `500 internal` in the one error format, and logged, instead
/// of the connection being dropped without an answer.
// Not an `async fn`, which would hold `handled` twice (BENCHMARKS.md, "Where the copies go").
fn caught(
    handled: impl std::future::Future<Output = axum::response::Response>,
) -> impl std::future::Future<Output = axum::response::Response> {
    use axum::response::IntoResponse;
    use futures::FutureExt;
    std::panic::AssertUnwindSafe(handled)
        .catch_unwind()
        .map(|caught| match caught {
            Ok(response) => response,
            Err(panic) => {
                let reason = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                ApiError::Internal(format!("a handler panicked: {reason}")).into_response()
            }
        })
}

/// Parse a JSON body ourselves, so malformed JSON gets the one error format; the names in it
/// are masked in whatever this request logs or answers from now on.
pub(crate) fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    let value = serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    gateway_base::redact::note_names(&value);
    Ok(value)
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
                    prop_assert_eq!(
                        error.into_response().status(),
                        axum::http::StatusCode::BAD_REQUEST
                    );
                }
            }
        }
    }
}
