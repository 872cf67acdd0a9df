//! The OpenAPI 3.1 document of the portal listener, and the shapes it describes.
//!
//! Each route is registered with `utoipa_axum::routes!` from its handler's `#[utoipa::path]`,
//! so a route cannot be served without its entry here (the test `the_document_lists_every_route`
//! keeps plain `.route` calls out). The handlers answer with typed values
//! ([`gateway_cases::views`], the health and acceptance types beside their handlers), and the
//! schemas are generated from those same types: the document describes what is answered.

use crate::AppState;
use axum::extract::State;
use axum::{Extension, Json};
use gateway_base::model::{EventKind, FieldProblem, ProblemCode};
use gateway_cases::views::{ApiShapes, Event};
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa::openapi::OpenApi as Document;
use utoipa::{OpenApi, ToSchema};

/// The document's title: ASCII, since generators name the client package after it (a
/// Chinese title made `一网通办_integration_..._client`). The Chinese name is in `x-title-zh`
/// and the description.
pub const TITLE: &str = "Integration Gateway Portal API";

/// The Chinese name of the API, in `info.x-title-zh`.
pub const TITLE_ZH: &str = "一网通办集成网关统一门户接口";

/// The document's fixed parts; paths and their schemas come from the routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Integration Gateway Portal API",
        description = "一网通办集成网关统一门户接口: one API for portals over many department systems. \
Every error has one shape (`Error`). Every request may carry `x-request-id` (echoed in the answer; one is made when \
absent) and a W3C `traceparent`, which is continued on every department call made for the request.\n\n\
Headers that carry people's words (`X-Clerk-Id`, `X-Clerk-Window`, `X-Clerk-Hall`, `X-Lookup-Purpose`) are UTF-8, \
sent percent-encoded as `encodeURIComponent` makes them (`X-Clerk-Window: %E7%AA%97%E5%8F%A3%203` for `窗口 3`); \
raw UTF-8 is read too.\n\n\
Each service has a path of its own (`/api/v1/services/market-regulation.business-licence/applications`) whose body \
is that service's form, and each lookup one whose body is its query; the `{code}` and `{name}` paths take any. \
Department callbacks (`POST /callbacks/{department}`) and licence sharing (`GET /licence-sharing/v1/licences/{id}`) \
are documented apart, at `/callbacks/openapi.json`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(Error, ErrorDetail, ErrorCode, FieldProblem, ProblemCode, Event, EventKind)),
    tags(
        (name = "catalogue", description = "Matters, services and their forms"),
        (name = "applications", description = "Pre-review, submission and cases"),
        (name = "materials", description = "Drafts and the materials uploaded to them or to a case (申请材料)"),
        (name = "services", description = "Each service's pre-review and submission, with its own form as the body"),
        (name = "lookups", description = "Shared data at departments"),
        (name = "licences", description = "Electronic licences (电子证照) and subject views"),
        (name = "supervision", description = "Promised time limits (红黄牌), red-card events and statistics (电子监察)"),
        (name = "notifications", description = "SMS notices of a case (what was sent, masked) and the applicant's number and opt-out"),
        (name = "evaluations", description = "好差评: the applicant's evaluation of a decided case"),
        (name = "operations", description = "Health, readiness and this document"),
    )
)]
struct ApiDoc;

/// The fixed parts of the document, before the routers add their paths.
pub fn base() -> Document {
    ApiDoc::openapi()
}

/// What every operation shares, added to the document the routers made: the Chinese title,
/// credentials and their answers, 500 and 504 wherever they can happen, the event stream's
/// events, the answer headers, and every open object declared open.
pub fn finish(document: &mut Value) {
    document["info"]["x-title-zh"] = json!(TITLE_ZH);
    secure(document);
    let error = |description: &str| {
        json!({"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
    };
    if let Some(paths) = document["paths"].as_object_mut() {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for operation in item.values_mut() {
                if let Some(responses) = operation["responses"].as_object_mut() {
                    // A panic in a handler is caught and answered (see `portal::router`).
                    responses.entry("500").or_insert_with(|| {
                        error("`internal`: the gateway's own fault (details only in its log).")
                    });
                }
            }
        }
    }
    let replayed = "/api/v1/services/{code}/applications";
    if let Some(accepted) = document["paths"][replayed]["post"]["responses"].get_mut("202") {
        accepted["headers"] = json!({"Idempotent-Replayed": {
            "description": "Present, `true`, when this answer repeats an earlier application with the same `Idempotency-Key` (the same case).",
            "schema": {"type": "string", "enum": ["true"]}}});
    }
    let events = "/api/v1/cases/{id}/events";
    if let Some(ok) = document["paths"][events]["get"]["responses"].get_mut("200") {
        ok["description"] = json!(event_stream_description());
        ok["content"] = json!({"text/event-stream": {"schema": {
            "type": "string",
            "description": "Server-sent events (text/event-stream); each `data` is one `Event` as JSON.",
        }}});
    }
    for (path, body) in [
        ("/api/v1/services/{code}/pre-review", application_example()),
        (
            "/api/v1/services/{code}/applications",
            application_example(),
        ),
        ("/api/v1/lookups/{name}", lookup_example()),
    ] {
        if let Some(media) =
            document["paths"][path]["post"]["requestBody"]["content"].get_mut("application/json")
        {
            media["examples"] = body;
        }
    }
    open_objects(document);
}

/// The README's own application: a business licence (营业执照设立登记).
fn application_example() -> Value {
    json!({"market-regulation.business-licence": {
        "summary": "营业执照设立登记 (market-regulation.business-licence)",
        "value": {
            "enterprise_name": "福州演示餐饮有限公司",
            "address": "福州市鼓楼区五四路2号",
            "legal_representative": {"name": "李四", "id_number": "34052419800101001X"},
            "registered_capital": 100,
            "business_scope": "餐饮服务"
        }
    }})
}

/// The README's lookups: an identity check and a tax clearance.
fn lookup_example() -> Value {
    json!({
        "public-security.identity": {
            "summary": "身份核查 (public-security.identity)",
            "value": {"name": "李四", "id_number": "34052419800101001X"}
        },
        "tax.clearance": {
            "summary": "清税查询 (tax.clearance)",
            "value": {"taxpayer_id": "91350100M000100Y43"}
        }
    })
}

/// How the event stream reads, with every event type the gateway sends.
fn event_stream_description() -> String {
    let kinds: Vec<String> = gateway_base::model::EventKind::ALL
        .iter()
        .map(|k| format!("`{}`", k.as_str()))
        .collect();
    format!(
        "Server-sent events (`text/event-stream`): first every event of the case so far, then each new one as it \
is recorded. Each message has `id` (the event's id), `event` (its kind, one of {}: the `EventKind` schema) and `data` \
(one `Event` as JSON). Once the case is final (`completed`, `rejected`, `failed` or `withdrawn`: every matter \
finished; a `returned` case is not, its matter waits for 补正) the stream ends after its last event, so a client reading to the end has the whole timeline; it stays \
open while the case is open (a comment line every 15 s keeps it alive). A reconnection with `Last-Event-ID` (a \
browser's `EventSource` sends it) goes on after that event; one to a final case with nothing after it is answered \
204, which ends an `EventSource`'s reconnecting.",
        kinds.join(", ")
    )
}

/// Declare `additionalProperties: true` on every object schema that names no properties (a
/// form's values, a department's outputs, a JSON Schema): without it, generators type them as
/// objects with no fields (`Record<string, never>`), which nothing can be assigned to.
pub fn open_objects(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let bare = map.get("type").is_some_and(|t| {
                t == "object"
                    || t.as_array()
                        .is_some_and(|ts| ts.iter().any(|t| t == "object"))
            }) && !map.contains_key("properties")
                && !map.contains_key("additionalProperties")
                && !map.contains_key("patternProperties")
                && !map.contains_key("$ref");
            if bare {
                map.insert("additionalProperties".into(), Value::Bool(true));
            }
            for child in map.values_mut() {
                open_objects(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(open_objects),
        _ => {}
    }
}

/// Add the credentials to the document: the two schemes, and on every operation that needs a
/// credential (see [`crate::auth`]) the requirement and its 401, 403 and 429 answers.
fn secure(document: &mut Value) {
    document["components"]["securitySchemes"] = json!({
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key",
                   "description": "The client's API key (the gateway keeps only its SHA-256)."},
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                   "description": "A JWT whose `sub` is a configured client; `scope` may narrow its scopes."},
    });
    let error = |description: &str| {
        json!({"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
    };
    let Some(paths) = document["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        // What `auth::portal` lets through without a credential.
        let open = ["/healthz", "/readyz", "/openapi.json", "/docs"].contains(&path.as_str())
            || path.starts_with("/callbacks/")
            || path.starts_with("/docs/");
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
            let mut unauthorized = error("`unauthorized`: no valid API key or bearer token.");
            unauthorized["headers"] = json!({"WWW-Authenticate": {
                "description": "`Bearer`", "schema": {"type": "string"}}});
            responses.insert("401".into(), unauthorized);
            responses.insert(
                "403".into(),
                error("`forbidden`: the client lacks the scope this needs."),
            );
            let mut limited = error(
                "`rate_limited`: the client exceeds its `rate_per_minute`; `Retry-After` says when to retry.",
            );
            limited["headers"] = json!({"Retry-After": {
                "description": "Seconds to wait before the next request.",
                "schema": {"type": "integer", "minimum": 0}}});
            responses.insert("429".into(), limited);
            if path != "/api/v1/cases/{id}/events" {
                responses.entry("504").or_insert_with(|| {
                    error("`request_timeout`: longer than `server.request_timeout_ms`.")
                });
            }
            operation["security"] = json!([{"apiKey": []}, {"bearer": []}]);
        }
    }
}

/// The document of the catalogue being served: [`finish`]ed `base` (the routes), plus a path of
/// its own for each service's pre-review and application, whose body is that service's form,
/// and for each lookup, whose body is its query; each form and query a named schema
/// (`MarketRegulationBusinessLicenceForm`, `TaxClearanceQuery`) with an example.
///
/// Why paths of their own: a body's schema cannot depend on the value of a path parameter, so
/// under `{code}` a form can only be "any object"; a path per service gives generated clients
/// one typed method per service (`apply_market_regulation_business_licence(body=…)`, or the
/// path literal in `openapi-fetch`) while the `{code}` routes stay for portals that build
/// forms at run time. They are the same routes: `{code}` matches every one of them.
pub fn with_catalogue(base: &Value, shapes: &ApiShapes) -> Value {
    let mut document = base.clone();
    let mut names = Names::default();
    for service in &shapes.services {
        let name = names.schema(&service.code, "Form");
        let Some(schema) = embeddable(&service.form, &name, &mut document) else {
            continue;
        };
        document["components"]["schemas"][name.as_str()] = schema;
        let summary = format!("{} ({})", service.name, service.code);
        let suffix = names.operation(&service.code);
        for (route, verb) in [("pre-review", "pre_review"), ("applications", "apply")] {
            let generic = &base["paths"][format!("/api/v1/services/{{code}}/{route}")]["post"];
            let operation = typed(
                generic,
                &format!("{verb}_{suffix}"),
                &summary,
                &name,
                service.example.as_ref(),
                &service.code,
            );
            document["paths"][format!("/api/v1/services/{}/{route}", service.code)] =
                json!({"post": operation});
        }
    }
    for lookup in &shapes.lookups {
        let name = names.schema(&lookup.name, "Query");
        let Some(mut schema) = embeddable(&lookup.query, &name, &mut document) else {
            continue;
        };
        if !lookup.description.is_empty() && schema.get("description").is_none() {
            schema["description"] = json!(lookup.description);
        }
        document["components"]["schemas"][name.as_str()] = schema;
        let generic = &base["paths"]["/api/v1/lookups/{name}"]["post"];
        let summary = format!(
            "{} ({}, {})",
            lookup.description, lookup.name, lookup.department
        );
        let operation = typed(
            generic,
            &format!("lookup_{}", names.operation(&lookup.name)),
            &summary,
            &name,
            lookup.example.as_ref(),
            &lookup.name,
        );
        document["paths"][format!("/api/v1/lookups/{}", lookup.name)] = json!({"post": operation});
    }
    open_objects(&mut document);
    document
}

/// A generic operation made specific: its path parameter gone, its body the named schema.
fn typed(
    generic: &Value,
    operation_id: &str,
    summary: &str,
    schema: &str,
    example: Option<&Value>,
    example_name: &str,
) -> Value {
    let mut operation = generic.clone();
    operation["operationId"] = json!(operation_id);
    operation["summary"] = json!(summary);
    operation["tags"] = match generic["tags"][0].as_str() {
        Some("lookups") => json!(["lookups"]),
        _ => json!(["services"]),
    };
    if let Some(parameters) = operation["parameters"].as_array_mut() {
        parameters.retain(|p| p["in"] != "path");
        if parameters.is_empty() {
            operation.as_object_mut().map(|o| o.remove("parameters"));
        }
    }
    let mut media = json!({"schema": {"$ref": format!("#/components/schemas/{schema}")}});
    if let Some(example) = example {
        media["examples"] = json!({example_name: {"value": example}});
    }
    operation["requestBody"]["content"] = json!({"application/json": media});
    operation["requestBody"]["description"] =
        json!(format!("`{example_name}`: the `{schema}` schema."));
    operation
}

/// A JSON Schema from the catalogue or an adapter, as a component named `name`: without the
/// keywords that belong to a document's root (`$schema`, `$id`), its `$defs` moved into
/// components of their own (`<name>_<def>`) with their references. `None` when it refers to
/// anything else: then the service keeps only the `{code}` route.
fn embeddable(schema: &Value, name: &str, document: &mut Value) -> Option<Value> {
    let mut schema = schema.clone();
    let root = schema.as_object_mut()?;
    root.remove("$schema");
    root.remove("$id");
    let mut defs = serde_json::Map::new();
    for key in ["$defs", "definitions"] {
        if let Some(Value::Object(found)) = root.remove(key) {
            for (def, value) in found {
                defs.insert(format!("#/{key}/{def}"), value);
            }
        }
    }
    let target = |reference: &str| {
        let def = reference.rsplit('/').next().unwrap_or_default();
        format!("#/components/schemas/{name}_{def}")
    };
    fn rewrite(
        value: &mut Value,
        defs: &serde_json::Map<String, Value>,
        target: &dyn Fn(&str) -> String,
    ) -> bool {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get_mut("$ref") {
                    if !defs.contains_key(reference.as_str()) {
                        return false;
                    }
                    *reference = target(reference);
                }
                map.values_mut().all(|v| rewrite(v, defs, target))
            }
            Value::Array(items) => items.iter_mut().all(|v| rewrite(v, defs, target)),
            _ => true,
        }
    }
    if !rewrite(&mut schema, &defs, &target) {
        return None;
    }
    titles_described(&mut schema);
    for (reference, mut def) in defs.clone() {
        if !rewrite(&mut def, &defs, &target) {
            return None;
        }
        titles_described(&mut def);
        let component = target(&reference);
        let component = component.trim_start_matches("#/components/schemas/");
        document["components"]["schemas"][component] = def;
    }
    Some(schema)
}

/// Move each schema's `title` into its `description` (`企业名称` → `企业名称。…`): generators
/// name a model after its schema's title (openapi-python-client made a class `营业执照设立登记`,
/// and refused two forms titled alike), while the component's name is the ASCII name wanted.
/// The form's own answer (`GET /api/v1/services/{code}/form`) keeps its titles for display.
fn titles_described(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    if let Some(Value::String(title)) = map.remove("title") {
        let description = match map.get("description").and_then(Value::as_str) {
            Some(d) if !d.is_empty() => format!("{title}：{d}"),
            _ => title,
        };
        map.insert("description".into(), Value::String(description));
    }
    for key in [
        "items",
        "additionalProperties",
        "not",
        "if",
        "then",
        "else",
        "contains",
        "propertyNames",
        "unevaluatedProperties",
        "unevaluatedItems",
    ] {
        if let Some(child) = map.get_mut(key) {
            titles_described(child);
        }
    }
    for key in ["prefixItems", "allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(children)) = map.get_mut(key) {
            children.iter_mut().for_each(titles_described);
        }
    }
    for key in [
        "properties",
        "patternProperties",
        "dependentSchemas",
        "$defs",
    ] {
        if let Some(Value::Object(children)) = map.get_mut(key) {
            children.values_mut().for_each(titles_described);
        }
    }
}

/// Names made from codes, each used once: `market-regulation.business-licence` is the schema
/// `MarketRegulationBusinessLicenceForm` and the operation suffix
/// `market_regulation_business_licence`; a code that would repeat a name gets a number.
#[derive(Default)]
struct Names {
    taken: std::collections::BTreeSet<String>,
}

impl Names {
    fn words(code: &str) -> Vec<String> {
        code.split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .collect()
    }

    fn unique(&mut self, name: String) -> String {
        let mut candidate = name.clone();
        let mut n = 2;
        while !self.taken.insert(candidate.clone()) {
            candidate = format!("{name}{n}");
            n += 1;
        }
        candidate
    }

    fn schema(&mut self, code: &str, suffix: &str) -> String {
        let pascal: String = Self::words(code)
            .iter()
            .map(|w| {
                let mut chars = w.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect();
        self.unique(format!("{pascal}{suffix}"))
    }

    fn operation(&mut self, code: &str) -> String {
        self.unique(format!("op:{}", Self::words(code).join("_")))
            .trim_start_matches("op:")
            .to_string()
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
    /// 413: the body exceeds `server.body_limit_bytes` (an upload: its material's `max_mib`).
    PayloadTooLarge,
    /// 400: an upload's body broke off before its end; nothing was kept.
    UploadIncomplete,
    /// 408: an upload took longer than `server.upload_timeout_ms`, or paused longer than
    /// `server.request_timeout_ms`; nothing was kept.
    UploadTimeout,
    /// 429: the client exceeds its `rate_per_minute`; retry after `Retry-After` seconds.
    RateLimited,
    /// 504: the request took longer than `server.request_timeout_ms`.
    RequestTimeout,
    /// 401: no valid credential (API key or bearer token).
    Unauthorized,
    /// 403: the client lacks the scope this needs.
    Forbidden,
    /// 409: not possible in the current state (a material provided already; admin API).
    Conflict,
    /// 409: a supplement (补正) for a matter that is not returned to the applicant.
    NotReturned,
    /// 409: a withdrawal (撤回) of a case whose every matter is decided.
    CaseDecided,
    /// 409: a withdrawal of a case withdrawn already.
    AlreadyWithdrawn,
    /// 409: a supplement or withdrawal of matters whose department's adapter cannot deliver it
    /// (contract 0.1); the message names them. Nothing was stored.
    UnsupportedByDepartment,
    /// 409: an evaluation (好差评) of a case not decided yet; the message names the open matters.
    CaseNotDecided,
    /// 409: a second evaluation of a case on one channel (一事一评).
    AlreadyEvaluated,
    /// 409: a rectification's visit or fix recorded already, its close before both, or a
    /// closed one.
    RectificationState,
    /// 422: an adapter component failed a check (admin API).
    AdapterRefused,
    /// 422: a reloaded config was refused whole, every problem with its `file` (admin API).
    ConfigRefused,
    /// 503: the department's adapter runs all the instances it may; retry after `Retry-After`.
    AdapterBusy,
    /// 500: the gateway's own fault.
    Internal,
}

/// The portal document's routes, made once when the router is built; each answer adds the
/// catalogue being served ([`with_catalogue`]).
#[derive(Debug, Clone)]
pub struct Documents {
    /// The portal API's routes, [`finish`]ed.
    pub portal: Arc<Value>,
    /// The departments' document: the callback route.
    pub callbacks: Arc<Value>,
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API, with a typed path for each service and lookup of the catalogue being served.", content_type = "application/json", body = Object))
)]
pub async fn openapi_json(
    State(o): State<AppState>,
    Extension(documents): Extension<Documents>,
) -> Json<Value> {
    Json(with_catalogue(&documents.portal, &o.api_shapes()))
}

/// The departments' document: how a department calls back with a decision, and verifies a
/// licence. Apart from the portal's, since portals never call them (generators would skip the
/// callback's untyped body).
#[utoipa::path(
    get,
    path = "/callbacks/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of the departments' routes (`POST /callbacks/{department}`, `GET /licence-sharing/v1/licences/{id}`), for department systems.", content_type = "application/json", body = Object))
)]
pub async fn callbacks_json(Extension(documents): Extension<Documents>) -> Json<Value> {
    Json((*documents.callbacks).clone())
}

/// This document, browsable: Swagger UI served by the gateway itself ([`crate::docs`]), which
/// fetches `/openapi.json`; nothing is loaded from outside the gateway.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "operations",
    responses((status = 200, description = "An HTML page rendering `/openapi.json`, its scripts and styles from `/docs/assets/` (Content-Security-Policy: the gateway's own origin only).", content_type = "text/html", body = String))
)]
pub async fn docs() -> axum::response::Response {
    crate::docs::page()
}

/// The departments' document's fixed parts.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Integration Gateway Department Callbacks",
        description = "一网通办集成网关：部门回调与电子证照共享. How a department system reports a decision on a step it was given, \
and how it verifies an electronic licence an applicant named (免提交).\n\n\
A callback's body is the department's own message (JSON, XML or form fields, as its protocol says); the department's \
adapter authenticates it (signatures, shared secrets) and reads it.\n\n\
Licence sharing (GB/T 36906 in spirit) answers a licence by its GB/T 36904 identifier to a department that presents \
its own bearer token (`Authorization: Bearer …`; the gateway keeps its SHA-256 as \
`[departments.<id>] licence_sharing_key_sha256`). Every read is recorded in the gateway's audit log (department, \
licence id, outcome) before it is answered. Not part of the portal API.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(Error, ErrorDetail, ErrorCode, FieldProblem, ProblemCode)),
    tags((name = "departments", description = "Called by department systems"))
)]
struct CallbacksDoc;

/// The departments' document's fixed parts.
pub fn callbacks_base() -> Document {
    CallbacksDoc::openapi()
}

/// The departments' credential for licence sharing, named by the routes that need it.
pub fn department_security(document: &mut Value) {
    document["components"]["securitySchemes"] = json!({
        "departmentKey": {"type": "http", "scheme": "bearer",
            "description": "The department's licence-sharing token (the gateway keeps only its SHA-256, `[departments.<id>] licence_sharing_key_sha256`)."},
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiError;
    use axum::response::IntoResponse;

    fn document() -> Value {
        crate::portal::document()
    }

    /// Every route the portal document lists, by method and path (the callback route is in the
    /// departments' document).
    // A slice, so each part of a change adds its routes without counting the others'.
    const ROUTES: &[(&str, &str)] = &[
        ("get", "/api/v1/catalogue"),
        ("get", "/api/v1/services/{code}/form"),
        ("post", "/api/v1/services/{code}/pre-review"),
        ("post", "/api/v1/services/{code}/applications"),
        ("get", "/api/v1/cases/{id}"),
        ("get", "/api/v1/cases/{id}/events"),
        ("post", "/api/v1/lookups/{name}"),
        ("post", "/api/v1/services/{code}/drafts"),
        ("get", "/api/v1/drafts/{id}"),
        ("put", "/api/v1/drafts/{id}/materials/{material}"),
        ("delete", "/api/v1/drafts/{id}/materials/{material}"),
        ("put", "/api/v1/cases/{id}/materials/{material}"),
        ("get", "/callbacks/openapi.json"),
        ("get", "/api/v1/subjects/enterprises/{credit_code}"),
        ("get", "/api/v1/subjects/persons/{id_number}"),
        ("get", "/api/v1/licences/{id}"),
        ("get", "/api/v1/supervision/deadlines"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/openapi.json"),
        ("get", "/docs"),
        ("get", "/docs/assets/{file}"),
        ("post", "/api/v1/cases/{id}/matters/{step}/supplements"),
        ("post", "/api/v1/cases/{id}/withdrawal"),
        ("get", "/api/v1/supervision/commitments"),
        ("post", "/api/v1/cases/{id}/evaluations"),
        ("get", "/api/v1/cases/{id}/evaluations"),
        ("get", "/api/v1/supervision/evaluations/statistics"),
        ("get", "/api/v1/supervision/rectifications"),
        ("get", "/api/v1/supervision/rectifications/{id}"),
        ("post", "/api/v1/supervision/rectifications/{id}/visit"),
        ("post", "/api/v1/supervision/rectifications/{id}/fix"),
        ("post", "/api/v1/supervision/rectifications/{id}/close"),
        ("get", "/api/v1/cases/{id}/notifications"),
        ("put", "/api/v1/cases/{id}/notifications"),
        ("get", "/api/v1/supervision/red-cards"),
        ("get", "/api/v1/supervision/statistics"),
    ];

    #[test]
    fn the_document_is_openapi_3_1_with_an_ascii_title() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        // Generators name the client package after the title.
        let title = doc["info"]["title"].as_str().unwrap();
        assert!(title.is_ascii() && title == TITLE, "{title}");
        assert_eq!(doc["info"]["x-title-zh"], TITLE_ZH);
    }

    /// A catalogue of two services and a lookup, as the orchestrator describes it.
    fn shapes() -> ApiShapes {
        use gateway_cases::views::{LookupShape, ServiceShape};
        ApiShapes {
            services: vec![
                ServiceShape {
                    code: "market-regulation.business-licence".into(),
                    name: "营业执照设立登记".into(),
                    form: json!({
                        "$schema": "https://json-schema.org/draft/2020-12/schema",
                        "title": "营业执照设立登记", "type": "object",
                        "required": ["enterprise_name"], "additionalProperties": false,
                        "properties": {
                            "enterprise_name": {"type": "string", "title": "企业名称"},
                            "title": {"type": "string"},
                            "legal_representative": {"$ref": "#/$defs/person"},
                            "extra": {"type": "object"}
                        },
                        "$defs": {"person": {"type": "object", "properties": {"name": {"type": "string"}}}}
                    }),
                    example: Some(json!({"enterprise_name": "福州演示餐饮有限公司"})),
                },
                ServiceShape {
                    code: "elsewhere".into(),
                    name: "refers outside".into(),
                    form: json!({"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}}),
                    example: None,
                },
            ],
            lookups: vec![LookupShape {
                name: "tax.clearance".into(),
                description: "清税查询".into(),
                department: "tax".into(),
                query: json!({"type": "object", "required": ["taxpayer_id"],
                              "properties": {"taxpayer_id": {"type": "string"}}}),
                example: Some(json!({"taxpayer_id": "91350100M000100Y43"})),
            }],
        }
    }

    #[test]
    fn each_service_and_lookup_gets_a_typed_path_and_a_named_schema() {
        let doc = with_catalogue(&document(), &shapes());
        let form = &doc["components"]["schemas"]["MarketRegulationBusinessLicenceForm"];
        assert_eq!(form["required"], json!(["enterprise_name"]));
        assert!(
            form.get("$schema").is_none() && form.get("$defs").is_none(),
            "{form}"
        );
        assert_eq!(
            form["properties"]["legal_representative"]["$ref"],
            "#/components/schemas/MarketRegulationBusinessLicenceForm_person"
        );
        assert!(
            doc["components"]["schemas"]["MarketRegulationBusinessLicenceForm_person"].is_object()
        );
        // Titles name models in generators: they become descriptions, the component name rules.
        assert!(form.get("title").is_none(), "{form}");
        assert_eq!(form["description"], "营业执照设立登记");
        assert_eq!(
            form["properties"]["enterprise_name"]["description"],
            "企业名称"
        );
        assert_eq!(
            form["properties"]["title"]["type"], "string",
            "a field called title stays"
        );
        for (route, id) in [("pre-review", "pre_review"), ("applications", "apply")] {
            let operation = &doc["paths"]
                [format!("/api/v1/services/market-regulation.business-licence/{route}")]["post"];
            assert_eq!(
                operation["operationId"],
                format!("{id}_market_regulation_business_licence")
            );
            let media = &operation["requestBody"]["content"]["application/json"];
            assert_eq!(
                media["schema"]["$ref"],
                "#/components/schemas/MarketRegulationBusinessLicenceForm"
            );
            assert_eq!(
                media["examples"]["market-regulation.business-licence"]["value"]["enterprise_name"],
                "福州演示餐饮有限公司"
            );
            let parameters = operation["parameters"]
                .as_array()
                .map_or(0, |p| p.iter().filter(|p| p["in"] == "path").count());
            assert_eq!(parameters, 0, "no `{{code}}` left: {operation}");
            assert!(operation["responses"]["422"].is_object());
        }
        let lookup = &doc["paths"]["/api/v1/lookups/tax.clearance"]["post"];
        assert_eq!(lookup["operationId"], "lookup_tax_clearance");
        assert_eq!(
            lookup["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/TaxClearanceQuery"
        );
        assert_eq!(
            lookup["parameters"].as_array().unwrap().len(),
            5,
            "the purpose and the case or clerk headers stay"
        );
        // A schema that refers outside itself keeps only the `{code}` route.
        assert!(
            doc["paths"]
                .get("/api/v1/services/elsewhere/applications")
                .is_none()
        );
        assert!(doc["components"]["schemas"].get("ElsewhereForm").is_none());
        assert_open_and_typed(&doc);
    }

    /// What generated clients need of the whole document: no object without a declared shape
    /// (`Record<string, never>` in TypeScript), no header that may be null, an example on every
    /// request body, 500 wherever a request is answered, no body of an unknown content type.
    fn assert_open_and_typed(doc: &Value) {
        fn bare_objects(value: &Value, at: &str, found: &mut Vec<String>) {
            match value {
                Value::Object(map) => {
                    if map.get("type") == Some(&json!("object"))
                        && !map.contains_key("properties")
                        && !map.contains_key("additionalProperties")
                    {
                        found.push(at.to_string());
                    }
                    for (k, v) in map {
                        bare_objects(v, &format!("{at}/{k}"), found);
                    }
                }
                Value::Array(items) => {
                    for (i, v) in items.iter().enumerate() {
                        bare_objects(v, &format!("{at}/{i}"), found);
                    }
                }
                _ => {}
            }
        }
        let mut found = Vec::new();
        bare_objects(doc, "", &mut found);
        assert!(found.is_empty(), "objects without a shape: {found:#?}");
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for parameter in operation["parameters"].as_array().into_iter().flatten() {
                    let schema = parameter["schema"].to_string();
                    assert!(!schema.contains("null"), "{method} {path}: {parameter}");
                }
                if let Some(content) = operation["requestBody"]["content"].as_object() {
                    for (media_type, media) in content {
                        assert_ne!(media_type, "*/*", "{method} {path}");
                        assert!(
                            media["examples"].as_object().is_some_and(|e| !e.is_empty()),
                            "{method} {path}: a request body without examples"
                        );
                    }
                }
                assert!(
                    operation["responses"]["500"].is_object(),
                    "{method} {path}: no 500"
                );
                for (status, response) in operation["responses"].as_object().unwrap() {
                    if let Some(content) = response["content"].as_object() {
                        assert!(!content.contains_key("*/*"), "{method} {path} {status}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_document_types_what_generated_clients_need() {
        let doc = document();
        assert_open_and_typed(&doc);
        let schemas = &doc["components"]["schemas"];
        // Fixed sets are enums.
        assert_eq!(
            schemas["FieldProblem"]["properties"]["code"]["$ref"],
            "#/components/schemas/ProblemCode"
        );
        let codes = schemas["ProblemCode"]["enum"].as_array().unwrap();
        for code in [
            "required",
            "type",
            "format",
            "checksum",
            "rule",
            "not_found",
            "invalid",
        ] {
            assert!(codes.contains(&json!(code)), "{code}");
        }
        let ref_of = |schema: &Value| {
            schema["$ref"]
                .as_str()
                .or_else(|| schema["oneOf"][1]["$ref"].as_str())
                .map(str::to_string)
        };
        let event = &schemas["Event"]["properties"];
        assert_eq!(
            ref_of(&event["kind"]).as_deref(),
            Some("#/components/schemas/EventKind")
        );
        assert_eq!(
            ref_of(&event["state"]).as_deref(),
            Some("#/components/schemas/StepState")
        );
        assert_eq!(
            ref_of(&schemas["Licence"]["properties"]["holder_kind"]).as_deref(),
            Some("#/components/schemas/HolderKind")
        );
        for open in [
            &schemas["LookupAnswer"]["properties"]["result"],
            &schemas["CaseMatter"]["properties"]["outputs"],
            &schemas["Licence"]["properties"]["data"],
            &schemas["Form"]["properties"]["schema"],
        ] {
            assert_eq!(open["additionalProperties"], true, "{open}");
        }
        // Idempotency: the key's pattern is the one the handler checks, the replay is a header.
        let apply = &doc["paths"]["/api/v1/services/{code}/applications"]["post"];
        let key = apply["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "Idempotency-Key")
            .unwrap();
        assert_eq!(
            key["schema"]["pattern"],
            crate::portal::IDEMPOTENCY_KEY_PATTERN
        );
        assert_eq!(
            apply["responses"]["202"]["headers"]["Idempotent-Replayed"]["schema"]["enum"],
            json!(["true"])
        );
        // Headers people write have an ASCII example (percent-encoded).
        for parameter in apply["parameters"].as_array().unwrap() {
            if parameter["in"] == "header" {
                let example = parameter["example"].as_str().unwrap_or_default();
                assert!(!example.is_empty() && example.is_ascii(), "{parameter}");
            }
        }
        // The event stream: its content type, and every event kind named.
        let stream = &doc["paths"]["/api/v1/cases/{id}/events"]["get"]["responses"]["200"];
        assert!(
            stream["content"]["text/event-stream"].is_object(),
            "{stream}"
        );
        let described = stream["description"].as_str().unwrap();
        for kind in EventKind::ALL {
            assert!(
                described.contains(&format!("`{}`", kind.as_str())),
                "{kind:?}"
            );
        }
        // The callback is documented apart, with typed bodies.
        assert!(doc["paths"].get("/callbacks/{department}").is_none());
        let callbacks = crate::portal::callbacks_document();
        let body = &callbacks["paths"]["/callbacks/{department}"]["post"]["requestBody"]["content"];
        assert_eq!(
            body["application/json"]["schema"]["additionalProperties"],
            true
        );
        assert_eq!(body["text/xml"]["schema"]["type"], "string");
        assert!(body.get("*/*").is_none());
        // Licence sharing too: in the departments' document with its key and answers, the
        // portal's `Licence` as its body; not in the portal's.
        let sharing = "/licence-sharing/v1/licences/{id}";
        assert!(doc["paths"].get(sharing).is_none());
        let read = &callbacks["paths"][sharing]["get"];
        assert_eq!(read["security"], json!([{"departmentKey": []}]), "{read}");
        assert_eq!(
            callbacks["components"]["securitySchemes"]["departmentKey"]["scheme"],
            "bearer"
        );
        for status in ["200", "401", "404", "422"] {
            assert!(read["responses"].get(status).is_some(), "{status}: {read}");
        }
        assert_eq!(
            read["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Licence"
        );
        // Every schema the departments' document refers to is in it.
        let text = callbacks.to_string();
        for reference in text.split("\"#/components/schemas/").skip(1) {
            let name = &reference[..reference.find('"').unwrap()];
            assert!(
                callbacks["components"]["schemas"][name].is_object(),
                "{name} is referred to but missing"
            );
        }
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
            ("portal/drafts.rs", include_str!("portal/drafts.rs")),
            ("portal/materials.rs", include_str!("portal/materials.rs")),
            ("portal/callbacks.rs", include_str!("portal/callbacks.rs")),
            ("licence_sharing.rs", include_str!("licence_sharing.rs")),
            ("portal/subjects.rs", include_str!("portal/subjects.rs")),
            (
                "portal/supervision.rs",
                include_str!("portal/supervision.rs"),
            ),
            ("openapi.rs", include_str!("openapi.rs")),
            ("docs/mod.rs", include_str!("docs/mod.rs")),
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
