//! The OpenAPI 3.1 document of the portal listener, and the shapes it describes.
//!
//! Each route is registered with `utoipa_axum::routes!` from its handler's `#[utoipa::path]`,
//! so a route cannot be served without its entry here (the test `the_document_lists_every_route`
//! keeps plain `.route` calls out). The handlers answer with typed values
//! ([`gateway_cases::views`], the health and acceptance types beside their handlers), and the
//! schemas are generated from those same types: the document describes what is answered.

use axum::Json;
use axum::response::{Html, IntoResponse};
use gateway_base::model::FieldProblem;
use serde::Serialize;
use serde_json::Value;
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
