//! The OpenAPI 3.1 document of the portal listener, and the shapes it describes.
//!
//! Each route is registered with `utoipa_axum::routes!` from its handler's `#[utoipa::path]`,
//! so a route cannot be served without its entry here (the test `the_document_lists_every_route`
//! keeps plain `.route` calls out). The handlers build their JSON with `json!`; the types below
//! state those shapes for the document, and the tests check real answers against them. A field
//! that is always present but may be `null` is `required` and nullable; a field that may be
//! absent is not `required`.

use axum::Json;
use axum::response::{Html, IntoResponse};
use gateway_base::model::FieldProblem;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::openapi::OpenApi as Document;
use utoipa::{OpenApi, ToSchema};

/// The document's fixed parts; paths and their schemas come from the routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "一网通办 integration gateway: unified portal API",
        description = "One API for portals over many department systems. Every error has one shape (`Error`). \
Every request may carry `x-request-id` (echoed in the answer; one is made when absent) and a W3C `traceparent`, \
which is continued on every department call made for the request.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(Error, ErrorDetail, ErrorCode, FieldProblem)),
    tags(
        (name = "catalogue", description = "Matters, services and their forms"),
        (name = "applications", description = "Pre-review, submission and cases"),
        (name = "lookups", description = "Shared data at departments"),
        (name = "licences", description = "Electronic licences (电子证照) and subject views"),
        (name = "supervision", description = "Promised time limits (红黄牌)"),
        (name = "departments", description = "Called by department systems"),
        (name = "operations", description = "Health, readiness and this document"),
    )
)]
struct ApiDoc;

/// The fixed parts of the document, before the routers add their paths.
pub fn base() -> Document {
    ApiDoc::openapi()
}

/// Add the credentials to the document: the two schemes, and on every operation that needs a
/// credential (see [`crate::auth`]) the requirement and its 401 and 403 answers.
pub fn secure(document: &mut Value) {
    document["components"]["securitySchemes"] = serde_json::json!({
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key",
                   "description": "The client's API key (the gateway keeps only its SHA-256)."},
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                   "description": "A JWT whose `sub` is a configured client; `scope` may narrow its scopes."},
    });
    let error = |description: &str| {
        serde_json::json!({"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
    };
    let Some(paths) = document["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let open = ["/healthz", "/readyz", "/openapi.json", "/docs"].contains(&path.as_str())
            || path.starts_with("/callbacks/");
        if open {
            continue;
        }
        let Some(operations) = item.as_object_mut() else {
            continue;
        };
        for operation in operations.values_mut() {
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            responses.insert(
                "401".into(),
                error("`unauthorized`: no valid API key or bearer token."),
            );
            responses.insert(
                "403".into(),
                error("`forbidden`: the client lacks the scope this needs."),
            );
            responses.insert(
                "429".into(),
                error("`rate_limited`: the client exceeds its `rate_per_minute`; `Retry-After` says when to retry."),
            );
            if path != "/api/v1/cases/{id}/events" {
                responses.entry("504").or_insert_with(|| {
                    error("`request_timeout`: longer than `server.request_timeout_ms`.")
                });
            }
            operation["security"] = serde_json::json!([{"apiKey": []}, {"bearer": []}]);
        }
    }
}

/// The error format of every route.
#[derive(Debug, Serialize, ToSchema)]
pub struct Error {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The body of an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine code.
    pub code: ErrorCode,
    /// Human-readable reason (identity numbers never echoed).
    pub message: String,
    /// The department at fault, for department and adapter errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub department: Option<String>,
    /// Every problem with the input (`invalid_input`); absent otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldProblem>,
}

/// Error codes, each with its HTTP status.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the body is not JSON.
    MalformedJson,
    /// 404: no such service, lookup, case, licence, department or route.
    NotFound,
    /// 422: problems with the input, every one in `fields`.
    InvalidInput,
    /// 422: an `Idempotency-Key` reused for a different request.
    IdempotencyConflict,
    /// 422: the department refused on the merits.
    Rejected,
    /// 502: the department answered something unreadable.
    DepartmentProtocolError,
    /// 502: the adapter trapped, hit a limit, or failed.
    AdapterFailed,
    /// 503: the department is down or refusing service.
    DepartmentUnavailable,
    /// 504: the department did not answer in time.
    DepartmentTimeout,
    /// 413: the body exceeds `server.body_limit_bytes`.
    PayloadTooLarge,
    /// 429: the client exceeds its `rate_per_minute`; retry after `Retry-After` seconds.
    RateLimited,
    /// 504: the request took longer than `server.request_timeout_ms`.
    RequestTimeout,
    /// 401: no valid credential (API key or bearer token).
    Unauthorized,
    /// 403: the client lacks the scope this needs.
    Forbidden,
    /// 409: not possible in the current state (admin API).
    Conflict,
    /// 422: an adapter component failed a check (admin API).
    AdapterRefused,
    /// 422: a reloaded config was refused whole, every problem with its `file` (admin API).
    ConfigRefused,
    /// 503: the department's adapter runs all the instances it may; retry after `Retry-After`.
    AdapterBusy,
    /// 500: the gateway's own fault.
    Internal,
}

/// A matter (事项) of the catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct Matter {
    /// Matter code, e.g. `tax.registration`.
    pub code: String,
    /// Name.
    pub name: String,
    /// Department id that decides it.
    pub department: String,
    /// 事项类型 (GB/T 39046): `01` 许可 … `20` 公共服务.
    pub matter_type: String,
    /// 服务对象: `1` 自然人, `2` 企业法人 ….
    pub service_object: String,
    /// Promised time limit (承诺时限), in working days.
    pub time_limit_days: u32,
}

/// Whether a service is one matter or a bundle.
#[derive(Debug, Serialize, ToSchema)]
pub enum ServiceKind {
    /// One matter.
    #[serde(rename = "single")]
    Single,
    /// A "one thing" service (一件事) across departments.
    #[serde(rename = "one-thing")]
    OneThing,
}

/// One step of a service.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceStep {
    /// Step id within the service.
    pub id: String,
    /// Matter code.
    pub matter: String,
    /// Steps whose approval this one waits for.
    pub after: Vec<String>,
}

/// A service a portal applies for.
#[derive(Debug, Serialize, ToSchema)]
pub struct Service {
    /// Service code.
    pub code: String,
    /// Name.
    pub name: String,
    /// `single` or `one-thing`.
    pub kind: ServiceKind,
    /// What the applicant gets done.
    pub description: String,
    /// The steps.
    pub steps: Vec<ServiceStep>,
}

/// A shared-data lookup.
#[derive(Debug, Serialize, ToSchema)]
pub struct Lookup {
    /// Lookup name, e.g. `tax.clearance`.
    pub name: String,
    /// What it finds.
    pub description: String,
    /// The department that answers it.
    pub department: String,
}

/// The catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct Catalogue {
    /// Every matter.
    pub matters: Vec<Matter>,
    /// Every service.
    pub services: Vec<Service>,
    /// Every lookup.
    pub lookups: Vec<Lookup>,
}

/// The one form of a service.
#[derive(Debug, Serialize, ToSchema)]
pub struct Form {
    /// Service code.
    pub service: String,
    /// Name.
    pub name: String,
    /// `single` or `one-thing`.
    pub kind: ServiceKind,
    /// The steps.
    pub steps: Vec<ServiceStep>,
    /// The form as one JSON Schema, with Chinese titles.
    #[schema(value_type = Object)]
    pub schema: Value,
}

/// A filled form: a JSON object whose fields the service's form describes.
#[derive(Debug, Serialize, ToSchema)]
#[schema(value_type = Object)]
pub struct FilledForm(pub BTreeMap<String, Value>);

/// The outcome of a pre-review.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreReview {
    /// True when there is no problem.
    pub ok: bool,
    /// Every problem at once (一次性告知).
    pub problems: Vec<FieldProblem>,
    /// Lookup ids whose records the gateway obtained itself (their content stays inside).
    pub obtained: Vec<String>,
}

/// Always `received`: the case is stored.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AcceptedStatus {
    /// Stored, nothing delivered yet.
    Received,
}

/// Links of an accepted application.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedLinks {
    /// The case view.
    pub case: String,
}

/// An accepted application.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// The case id.
    pub case_id: String,
    /// `received`.
    pub status: AcceptedStatus,
    /// Where to follow the case.
    pub links: AcceptedLinks,
}

/// A case's aggregated status.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Stored, nothing delivered yet.
    Received,
    /// At the departments.
    InProgress,
    /// Every matter approved.
    Completed,
    /// A department asks for supplements.
    Returned,
    /// A department refused.
    Rejected,
    /// A matter could not be delivered.
    Failed,
}

/// Where one step stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Waiting for the steps it depends on.
    Waiting,
    /// Stored, not yet taken by the department.
    Pending,
    /// Taken by the department.
    Accepted,
    /// Being worked on.
    Processing,
    /// Approved.
    Approved,
    /// Refused.
    Rejected,
    /// Returned for supplements.
    Returned,
    /// Could not be delivered.
    Failed,
    /// Not started: a step it waits for did not succeed.
    Blocked,
}

/// A warning light (红黄牌).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Light {
    /// Overdue.
    Red,
    /// Nearing its limit.
    Yellow,
    /// Within its limit.
    Green,
}

/// One matter of a case.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseMatter {
    /// Step id.
    pub step: String,
    /// Matter code.
    pub matter: String,
    /// Matter name; null when the matter left the catalogue.
    #[schema(required = true)]
    pub matter_name: Option<String>,
    /// Department id.
    pub department: String,
    /// State.
    pub state: StepState,
    /// The department's own reference, once it has one.
    #[schema(required = true)]
    pub reference: Option<String>,
    /// What the department returned (a new credit code …).
    pub outputs: Value,
    /// The department's or the gateway's last word on the step.
    #[schema(required = true)]
    pub message: Option<String>,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// Last change, RFC 3339.
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// End of the promised time limit, RFC 3339; null when the matter left the catalogue.
    #[schema(required = true, format = DateTime)]
    pub deadline: Option<String>,
    /// The light while open; null once final.
    #[schema(required = true)]
    pub light: Option<Light>,
    /// Whether a final step finished after its deadline; null while open.
    #[schema(required = true)]
    pub finished_late: Option<bool>,
}

/// The clerk at the window (全程留痕).
#[derive(Debug, Serialize, ToSchema)]
pub struct Clerk {
    /// Clerk id.
    pub id: String,
    /// Window.
    #[schema(required = true)]
    pub window: Option<String>,
    /// Service hall.
    #[schema(required = true)]
    pub hall: Option<String>,
}

/// One event of a case's timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct Event {
    /// When, RFC 3339.
    #[schema(format = DateTime)]
    pub at: String,
    /// Department id, for step events.
    #[schema(required = true)]
    pub department: Option<String>,
    /// Step id, for step events.
    #[schema(required = true)]
    pub step: Option<String>,
    /// `received`, `ready`, `submitted`, `status`, `callback`, `blocked` ….
    pub kind: String,
    /// The step's state after the event.
    #[schema(required = true)]
    pub state: Option<String>,
    /// What happened.
    #[schema(required = true)]
    pub message: Option<String>,
    /// Who acted at the hall.
    #[schema(required = true)]
    pub clerk: Option<Clerk>,
}

/// Links of a licence.
#[derive(Debug, Serialize, ToSchema)]
pub struct LicenceLinks {
    /// This licence.
    #[serde(rename = "self")]
    pub this: String,
    /// The case that issued it.
    pub case: String,
}

/// An electronic licence (电子证照).
#[derive(Debug, Serialize, ToSchema)]
pub struct Licence {
    /// GB/T 36904 identifier.
    pub id: String,
    /// Licence kind.
    pub kind: String,
    /// Name, e.g. 营业执照.
    pub name: String,
    /// The department's number.
    pub number: String,
    /// `enterprise` or `person`.
    pub holder_kind: String,
    /// Credit code or identity number.
    pub holder_id: String,
    /// Holder's name, when known.
    #[schema(required = true)]
    pub holder_name: Option<String>,
    /// Issuing department id.
    pub issuer: String,
    /// Issuing authority's unified social credit code.
    pub issuer_code: String,
    /// Issuing authority's name.
    #[schema(required = true)]
    pub issuer_name: Option<String>,
    /// The case that issued it.
    pub case_id: String,
    /// The step that issued it.
    pub step: String,
    /// When, RFC 3339.
    #[schema(format = DateTime)]
    pub issued_at: String,
    /// The licence's content.
    pub data: Value,
    /// Links.
    pub links: LicenceLinks,
}

/// A case.
#[derive(Debug, Serialize, ToSchema)]
pub struct Case {
    /// Case id.
    pub case_id: String,
    /// Service code.
    pub service: String,
    /// Aggregated status.
    pub status: CaseStatus,
    /// When received, RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Each matter.
    pub matters: Vec<CaseMatter>,
    /// The timeline, oldest first.
    pub timeline: Vec<Event>,
    /// Licences the case issued.
    pub licences: Vec<Licence>,
}

/// A lookup's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct LookupAnswer {
    /// Lookup name.
    pub lookup: String,
    /// The department that answered.
    pub department: String,
    /// The answer, in the unified shape of the lookup.
    pub result: Value,
}

/// A callback was taken.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallbackAck {
    /// Always true.
    pub ok: bool,
}

/// A case of an enterprise.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnterpriseCase {
    /// Case id.
    pub case_id: String,
    /// Service code.
    pub service: String,
    /// Aggregated status.
    pub status: CaseStatus,
    /// When received, RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// The 企业码 view of an enterprise.
#[derive(Debug, Serialize, ToSchema)]
pub struct Enterprise {
    /// Unified social credit code.
    pub credit_code: String,
    /// Its licences.
    pub licences: Vec<Licence>,
    /// Its cases.
    pub cases: Vec<EnterpriseCase>,
}

/// A person's licences.
#[derive(Debug, Serialize, ToSchema)]
pub struct Person {
    /// Resident identity number.
    pub id_number: String,
    /// Their licences.
    pub licences: Vec<Licence>,
}

/// Open steps per light.
#[derive(Debug, Serialize, ToSchema)]
pub struct LightCounts {
    /// Within their limit.
    pub green: u64,
    /// Nearing it.
    pub yellow: u64,
    /// Overdue.
    pub red: u64,
}

/// One open step on the supervision list.
#[derive(Debug, Serialize, ToSchema)]
pub struct SupervisionItem {
    /// Case id.
    pub case_id: String,
    /// Step id.
    pub step: String,
    /// Matter code.
    pub matter: String,
    /// Matter name.
    pub matter_name: String,
    /// Department id.
    pub department: String,
    /// Open state (`waiting`, `pending`, `accepted`, `processing`).
    pub state: StepState,
    /// When the case was received, RFC 3339.
    #[schema(format = DateTime)]
    pub received_at: String,
    /// End of the time limit, RFC 3339 (24:00 Beijing time of the last working day).
    #[schema(format = DateTime)]
    pub deadline: String,
    /// The last working day, `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub last_working_day: String,
    /// The light.
    pub light: Light,
    /// Working days left; negative once overdue.
    pub remaining_working_days: i64,
}

/// Open steps by department and light.
#[derive(Debug, Serialize, ToSchema)]
pub struct Supervision {
    /// The instant the lights are judged at, RFC 3339.
    #[schema(format = DateTime)]
    pub at: String,
    /// Counts per department.
    pub counts: BTreeMap<String, LightCounts>,
    /// Open steps, red first, then by deadline.
    pub items: Vec<SupervisionItem>,
}

/// The process answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// The state of one readiness check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckState {
    /// Passing.
    Up,
    /// Failing; `detail` says why.
    Down,
    /// No result yet (a department not yet probed).
    Unknown,
}

/// Whether a node is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    /// Every check is up.
    Ready,
    /// At least one is not.
    NotReady,
}

/// One readiness check.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReadinessCheck {
    /// `up`, `down`, or `unknown` (a department not yet probed).
    pub state: CheckState,
    /// Why it is down, or what is close to failing (a certificate near its expiry).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub detail: Option<String>,
    /// When a department was last probed, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub checked_at: Option<String>,
    /// When a certificate expires, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub expires_at: Option<String>,
}

impl ReadinessCheck {
    /// A passing check.
    pub fn up(checked_at: Option<String>) -> Self {
        ReadinessCheck {
            state: CheckState::Up,
            detail: None,
            checked_at,
            expires_at: None,
        }
    }

    /// A failing check and why.
    pub fn down(detail: String, checked_at: Option<String>) -> Self {
        ReadinessCheck {
            state: CheckState::Down,
            detail: Some(detail),
            checked_at,
            expires_at: None,
        }
    }

    /// A check with no result yet.
    pub fn unknown() -> Self {
        ReadinessCheck {
            state: CheckState::Unknown,
            detail: Some("not probed yet".into()),
            checked_at: None,
            expires_at: None,
        }
    }

    /// A certificate: down once expired; named with its days left when within `warning_days`.
    pub fn certificate(
        c: &gateway_base::certificates::Certificate,
        now_ms: i64,
        warning_days: u32,
    ) -> Self {
        let days = c.days_left(now_ms);
        let (state, detail) = if now_ms >= c.not_after_ms {
            (CheckState::Down, Some(format!("{} expired", c.subject)))
        } else if days <= i64::from(warning_days) {
            (
                CheckState::Up,
                Some(format!("{} expires in {days} days", c.subject)),
            )
        } else {
            (CheckState::Up, None)
        };
        ReadinessCheck {
            state,
            detail,
            checked_at: None,
            expires_at: Some(gateway_base::time::rfc3339(c.not_after_ms)),
        }
    }
}

/// Whether this node can do its work.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` when every check is up, else `not_ready`.
    pub status: ReadyStatus,
    /// Checks by name: `store`, `adapter.<department>`, `department.<department>`.
    pub checks: BTreeMap<String, ReadinessCheck>,
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", content_type = "application/json", body = Object))
)]
pub async fn openapi_json(
    axum::Extension(document): axum::Extension<std::sync::Arc<Value>>,
) -> impl IntoResponse {
    Json((*document).clone())
}

/// This document, browsable.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "operations",
    responses((status = 200, description = "An HTML page rendering `/openapi.json`.", content_type = "text/html", body = String))
)]
pub async fn docs(axum::Extension(page): axum::Extension<std::sync::Arc<String>>) -> Html<String> {
    Html((*page).clone())
}

/// The docs page: Scalar's viewer with the document inlined. The viewer's script comes from its
/// CDN when the page is opened in a browser; the document itself never leaves the gateway.
pub fn docs_page(document: &Value) -> String {
    utoipa_scalar::Scalar::new(document.clone())
        .to_html()
        .replace(
            "<title>Scalar</title>",
            "<title>一网通办 gateway API</title>",
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiError;
    use axum::response::IntoResponse;

    fn document() -> Value {
        crate::portal::document()
    }

    /// Every route the portal listener serves, by method and path.
    const ROUTES: [(&str, &str); 16] = [
        ("get", "/api/v1/catalogue"),
        ("get", "/api/v1/services/{code}/form"),
        ("post", "/api/v1/services/{code}/pre-review"),
        ("post", "/api/v1/services/{code}/applications"),
        ("get", "/api/v1/cases/{id}"),
        ("get", "/api/v1/cases/{id}/events"),
        ("post", "/api/v1/lookups/{name}"),
        ("post", "/callbacks/{department}"),
        ("get", "/api/v1/subjects/enterprises/{credit_code}"),
        ("get", "/api/v1/subjects/persons/{id_number}"),
        ("get", "/api/v1/licences/{id}"),
        ("get", "/api/v1/supervision/deadlines"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/openapi.json"),
        ("get", "/docs"),
    ];

    #[test]
    fn the_document_is_openapi_3_1() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["info"]["title"].is_string());
    }

    #[test]
    fn the_document_lists_every_route() {
        // Routes join the portal router only through `routes!`, which takes the path from the
        // handler's documentation: a plain `.route` would serve a path the document leaves out.
        let plain_route = concat!(".rou", "te(");
        for (file, source) in [
            ("portal/mod.rs", include_str!("portal/mod.rs")),
            ("portal/catalogue.rs", include_str!("portal/catalogue.rs")),
            (
                "portal/applications.rs",
                include_str!("portal/applications.rs"),
            ),
            ("portal/cases.rs", include_str!("portal/cases.rs")),
            ("portal/lookups.rs", include_str!("portal/lookups.rs")),
            ("portal/callbacks.rs", include_str!("portal/callbacks.rs")),
            ("portal/subjects.rs", include_str!("portal/subjects.rs")),
            (
                "portal/supervision.rs",
                include_str!("portal/supervision.rs"),
            ),
            ("openapi.rs", include_str!("openapi.rs")),
            ("health.rs", include_str!("health.rs")),
        ] {
            assert!(
                !source.contains(plain_route),
                "{file}: portal routes are added with `routes!(handler)` and a `#[utoipa::path]`"
            );
        }
        let doc = document();
        let mut documented: Vec<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .map(|method| (method.clone(), path.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        documented.sort();
        let mut expected: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        expected.sort();
        assert_eq!(documented, expected);
    }

    #[test]
    fn every_route_documents_its_answers_and_errors_have_one_schema() {
        let doc = document();
        let error_ref = "#/components/schemas/Error";
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let responses = operation["responses"].as_object().unwrap();
                assert!(
                    responses.keys().any(|s| s.starts_with('2')),
                    "{method} {path}: no success answer documented"
                );
                for (status, response) in responses {
                    let json = &response["content"]["application/json"]["schema"];
                    if status.starts_with('4') || status.starts_with('5') {
                        if path == "/readyz" {
                            continue;
                        }
                        assert_eq!(json["$ref"], error_ref, "{method} {path} {status}");
                    }
                }
            }
        }
        let detail = &doc["components"]["schemas"]["ErrorDetail"];
        assert_eq!(detail["required"], serde_json::json!(["code", "message"]));
        assert_eq!(
            doc["components"]["schemas"]["FieldProblem"]["required"],
            serde_json::json!(["field", "code", "message"])
        );
    }

    /// The errors the gateway really answers match the documented `Error` schema.
    #[tokio::test]
    async fn real_errors_match_the_error_schema() {
        let doc = document();
        let schema = serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": "#/components/schemas/Error",
            "components": doc["components"],
        });
        let validator = jsonschema::validator_for(&schema).unwrap();
        let department = || "tax".to_string();
        let errors = [
            ApiError::MalformedJson("eof".into()),
            ApiError::InvalidInput(vec![FieldProblem::new("a.b", "required", "必填")]),
            ApiError::IdempotencyConflict("k".into()),
            ApiError::NotFound {
                what: "case",
                id: "x".into(),
            },
            ApiError::Rejected {
                department: department(),
                code: "E1".into(),
                message: "no".into(),
            },
            ApiError::Unavailable {
                department: department(),
                message: "down".into(),
            },
            ApiError::Timeout {
                department: department(),
            },
            ApiError::Protocol {
                department: department(),
                message: "garbage".into(),
            },
            ApiError::AdapterFailed {
                department: department(),
                message: "trap".into(),
            },
            ApiError::Unauthorized("no credential".into()),
            ApiError::TooLarge(1024),
            ApiError::RateLimited {
                client: "c".into(),
                per_minute: 60,
            },
            ApiError::RequestTimeout(1000),
            ApiError::Forbidden("no scope".into()),
            ApiError::Conflict("active".into()),
            ApiError::Refused(
                "refused".into(),
                vec![FieldProblem::new("component", "signature", "unsigned")],
            ),
            ApiError::Busy {
                department: department(),
                max: 4,
            },
            ApiError::ConfigRefused(vec![
                FieldProblem::new("departments.tax.base_url", "config", "relative URL")
                    .in_file("/etc/gateway/gateway.toml"),
            ]),
            ApiError::Internal("disk".into()),
        ];
        for error in errors {
            let response = error.into_response();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            let body: Value = serde_json::from_slice(&body).unwrap();
            assert!(validator.is_valid(&body), "{body}");
        }
    }
}
