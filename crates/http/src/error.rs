//! The one error format of the unified API.
//!
//! ```json
//! {"error": {"code": "invalid_input", "message": "…", "fields": [{"field": "…", "code": "…", "message": "…"}]}}
//! ```
//! Classified by where the fault lies: the caller's mistakes are 4xx with every field problem;
//! a department or adapter fault is 502/503/504; the gateway's own is 500 with a generic body
//! (the detail goes to the log, never to the caller).
//!
//! Every body carries the request's id (`request_id`, as in `X-Request-Id`) when the request
//! has one, so a caller can quote it and an operator find the log lines (a trap's backtrace,
//! an internal error's detail). Every text of the body is masked once more on its way out
//! ([`gateway_base::redact`]): a code, a field path or a message an adapter wrote never shows
//! an identity or mobile number, a noted name or a secret, whichever path it took here.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gateway_base::model::FieldProblem;
use gateway_cases::CaseError;
use serde::Serialize;

/// An error answered to a portal.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON (400).
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// The input has problems (422), every one listed.
    #[error("invalid input")]
    InvalidInput(Vec<FieldProblem>),
    /// An `Idempotency-Key` reused for a different request (422).
    #[error("idempotency key `{0}` was used for a different request")]
    IdempotencyConflict(String),
    /// No such service, matter, lookup, case or department (404).
    #[error("{what} `{id}` not found")]
    NotFound {
        /// What was looked for (`case`, `service`, …).
        what: &'static str,
        /// The identifier asked for.
        id: String,
    },
    /// The department refused on the merits, or found nothing (422 / 404).
    #[error("department refused: {code}: {message}")]
    Rejected {
        /// The department that refused.
        department: String,
        /// Its reason code, as the adapter reported it (masked on the way out).
        code: String,
        /// Its message (masked on the way out).
        message: String,
    },
    /// The department could not be reached (503).
    #[error("department {department} unavailable: {message}")]
    Unavailable {
        /// The department.
        department: String,
        /// What failed (masked on the way out).
        message: String,
    },
    /// The department or the adapter call did not finish in time (504).
    #[error("department {department} timed out")]
    Timeout {
        /// The department.
        department: String,
    },
    /// The department answered unreadably (502).
    #[error("department {department} answered unreadably: {message}")]
    Protocol {
        /// The department.
        department: String,
        /// What could not be read (masked on the way out).
        message: String,
    },
    /// The adapter failed: trap, limit, or internal error (502).
    #[error("adapter for {department} failed: {message}")]
    AdapterFailed {
        /// The department whose adapter failed.
        department: String,
        /// A plain message (a trap's backtrace is logged, never answered).
        message: String,
    },
    /// The department's adapter runs all the instances it may at once (503, retry soon).
    #[error("the adapter for {department} is busy: its {max} instances are all in use")]
    Busy {
        /// The department.
        department: String,
        /// Its adapter's bound on instances at once.
        max: u32,
    },
    /// The node's memory budget for adapter instances is spent (503, retry soon).
    #[error(
        "the adapter for {department} cannot run now: the node's memory budget for adapter \
         instances ({budget_mib} MiB) is spent"
    )]
    MemoryBudget {
        /// The department whose call could not run.
        department: String,
        /// `plugins.memory_budget_mib`.
        budget_mib: u32,
    },
    /// The request conflicts with the current state (409), e.g. removing the active version.
    #[error("{0}")]
    Conflict(String),
    /// An adapter component was refused before activation (422), with every reason.
    #[error("adapter refused: {0}")]
    Refused(String, Vec<FieldProblem>),
    /// A reloaded config was refused whole (422), every problem with its file and key; the
    /// running config keeps serving.
    #[error("the new config was refused")]
    ConfigRefused(Vec<FieldProblem>),
    /// The body is larger than `server.body_limit_bytes`, or an upload than its material's
    /// `max_mib` (413).
    #[error("the body exceeds the limit of {0} bytes")]
    TooLarge(usize),
    /// An upload's body broke off before its end (400).
    #[error("the upload did not arrive whole: {0}")]
    UploadIncomplete(String),
    /// An upload took longer than `server.upload_timeout_ms`, or paused longer than
    /// `server.request_timeout_ms` (408).
    #[error("{0}")]
    UploadTimeout(String),
    /// The client sent more requests than its rate allows (429, retry after the header's seconds).
    #[error("client {client} exceeds its rate of {per_minute} requests a minute")]
    RateLimited {
        /// The portal client.
        client: String,
        /// Its allowance.
        per_minute: u32,
    },
    /// The request took longer than `server.request_timeout_ms` (504).
    #[error("the request took longer than {0} ms")]
    RequestTimeout(u64),
    /// No valid credential (401).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// A valid credential without the right to this (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The gateway's own fault (500); the detail is logged, not answered.
    #[error("internal: {0}")]
    Internal(String),
    /// Not possible in the case's lifecycle now (409) with its own code: `not_returned`,
    /// `case_decided`, `already_withdrawn`, `unsupported_by_department`; the message in Chinese.
    #[error("{1}")]
    Lifecycle(&'static str, String),
}

#[derive(Serialize)]
struct Body<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    department: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    fields: Vec<FieldProblem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Run `f` with `id` as the request id its error answers carry.
pub async fn with_request_id<F: Future>(id: Option<String>, f: F) -> F::Output {
    match id {
        Some(id) => REQUEST_ID.scope(id, f).await,
        None => f.await,
    }
}

/// The current request's id, masked (it is the caller's text) and cut to a sane length.
fn request_id() -> Option<String> {
    REQUEST_ID
        .try_with(|id| id.chars().take(128).collect::<String>())
        .ok()
        .map(|id| gateway_base::redact::redact(&id))
}

/// The answer to a path no route serves: `404 not_found` naming the method and the path, cut
/// at 200 characters. Like every text of an error body it is masked on its way out, so an
/// identity or mobile number in the path comes back as the logs show it, never in clear.
pub(crate) async fn no_route(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    let path: String = uri.path().chars().take(200).collect();
    ApiError::NotFound {
        what: "route",
        id: format!("{method} {path}"),
    }
}

/// Axum's own `413` (a body over a [`axum::extract::DefaultBodyLimit`]) is plain text; this
/// answers it in the one error format instead, naming the limit. An answer that is already
/// JSON (an upload's own [`ApiError::TooLarge`]) passes as it is.
pub(crate) fn too_large_as_json(response: Response, limit_bytes: usize) -> Response {
    let plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_none_or(|t| !t.as_bytes().starts_with(b"application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && plain {
        return ApiError::TooLarge(limit_bytes).into_response();
    }
    response
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &str) {
        match self {
            ApiError::MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            ApiError::InvalidInput(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            ApiError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::IdempotencyConflict(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_conflict")
            }
            ApiError::Rejected { code, .. } if code == "not_found" => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            ApiError::Rejected { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "rejected"),
            ApiError::Unavailable { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "department_unavailable")
            }
            ApiError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "department_timeout"),
            ApiError::Protocol { .. } => (StatusCode::BAD_GATEWAY, "department_protocol_error"),
            ApiError::AdapterFailed { .. } => (StatusCode::BAD_GATEWAY, "adapter_failed"),
            ApiError::Busy { .. } | ApiError::MemoryBudget { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "adapter_busy")
            }
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UploadIncomplete(_) => (StatusCode::BAD_REQUEST, "upload_incomplete"),
            ApiError::UploadTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "upload_timeout"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::RequestTimeout(_) => (StatusCode::GATEWAY_TIMEOUT, "request_timeout"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Refused(..) => (StatusCode::UNPROCESSABLE_ENTITY, "adapter_refused"),
            ApiError::ConfigRefused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "config_refused"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            ApiError::Lifecycle(code, _) => (StatusCode::CONFLICT, code),
        }
    }
}

/// What an answered error leaves for the log: the gateway's own failures as errors, a
/// department's or an adapter's as warnings; the caller's mistakes are not logged. The
/// response carries it to [`crate::middleware::log_failures`], which writes it inside the
/// request's span (with its request id), so answering an error never logs by itself.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// The gateway failed: the detail the caller does not see.
    Internal(String),
    /// A department call failed: which department, and how.
    Department { department: String, error: String },
}

impl ApiError {
    fn failure(&self) -> Option<Failure> {
        match self {
            ApiError::Internal(detail) => Some(Failure::Internal(detail.clone())),
            ApiError::Unavailable { department, .. }
            | ApiError::Timeout { department }
            | ApiError::Protocol { department, .. }
            | ApiError::AdapterFailed { department, .. } => Some(Failure::Department {
                department: department.clone(),
                error: self.to_string(),
            }),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let (message, department, fields): (String, Option<&str>, &[FieldProblem]) = match &self {
            ApiError::InvalidInput(fields) => (
                format!("{} problem(s) with the input", fields.len()),
                None,
                fields,
            ),
            ApiError::Internal(_) => ("the gateway failed; the error is logged".into(), None, &[]),
            ApiError::Rejected {
                department,
                message,
                code,
            } => (format!("{code}: {message}"), Some(department), &[]),
            ApiError::Refused(message, fields) => (message.clone(), None, fields),
            ApiError::ConfigRefused(fields) => (
                format!(
                    "the new config was refused whole ({} problem(s)); the running config keeps serving",
                    fields.len()
                ),
                None,
                fields,
            ),
            ApiError::Busy { department, .. } | ApiError::MemoryBudget { department, .. } => {
                (self.to_string(), Some(department), &[])
            }
            ApiError::Unavailable { department, .. }
            | ApiError::Timeout { department }
            | ApiError::Protocol { department, .. }
            | ApiError::AdapterFailed { department, .. } => {
                (self.to_string(), Some(department), &[])
            }
            _ => (self.to_string(), None, &[]),
        };
        use gateway_base::redact::redact;
        let body = Body {
            error: ErrorBody {
                code,
                message: redact(&message),
                department,
                fields: fields
                    .iter()
                    .map(|f| FieldProblem {
                        field: redact(&f.field),
                        code: redact(&f.code),
                        message: redact(&f.message),
                        ..f.clone()
                    })
                    .collect(),
                request_id: request_id(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(failure) = self.failure() {
            response.extensions_mut().insert(failure);
        }
        if matches!(self, ApiError::Unauthorized(_)) {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        if let ApiError::RateLimited { per_minute, .. } = &self {
            // The time one request's share of the minute takes to come back.
            let seconds = (60 / (*per_minute).max(1)).max(1);
            if let Ok(value) = axum::http::HeaderValue::from_str(&seconds.to_string()) {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, value);
            }
        }
        if matches!(self, ApiError::Busy { .. } | ApiError::MemoryBudget { .. }) {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

impl From<CaseError> for ApiError {
    fn from(e: CaseError) -> Self {
        if let Some(code) = e.lifecycle_code() {
            return ApiError::Lifecycle(code, e.to_string());
        }
        if let Some(code) = e.evaluation_code() {
            return ApiError::Lifecycle(code, e.to_string());
        }
        match e {
            CaseError::InvalidInput(problems) => ApiError::InvalidInput(problems),
            CaseError::IdempotencyConflict(key) => ApiError::IdempotencyConflict(key),
            CaseError::NotFound { what, id } => ApiError::NotFound { what, id },
            CaseError::Rejected {
                department,
                code,
                message,
            } => ApiError::Rejected {
                department,
                code,
                message,
            },
            CaseError::Unavailable {
                department,
                message,
            } => ApiError::Unavailable {
                department,
                message,
            },
            CaseError::Timeout { department } => ApiError::Timeout { department },
            CaseError::Protocol {
                department,
                message,
            } => ApiError::Protocol {
                department,
                message,
            },
            CaseError::AdapterFailed {
                department,
                message,
            } => ApiError::AdapterFailed {
                department,
                message,
            },
            CaseError::Busy { department, max } => ApiError::Busy { department, max },
            CaseError::MemoryBudget {
                department,
                budget_mib,
            } => ApiError::MemoryBudget {
                department,
                budget_mib,
            },
            CaseError::Conflict(why) => ApiError::Conflict(why),
            CaseError::TooLarge { limit_bytes } => {
                ApiError::TooLarge(usize::try_from(limit_bytes).unwrap_or(usize::MAX))
            }
            CaseError::UploadIncomplete(why) => ApiError::UploadIncomplete(why),
            e @ CaseError::UploadTimeout { .. } => ApiError::UploadTimeout(e.to_string()),
            CaseError::Store(e) => ApiError::Internal(e.to_string()),
            // Answered above with their own codes.
            e @ (CaseError::NotReturned { .. }
            | CaseError::CaseDecided
            | CaseError::AlreadyWithdrawn
            | CaseError::LifecycleUnsupported { .. }
            | CaseError::NotDecided { .. }
            | CaseError::AlreadyEvaluated { .. }
            | CaseError::RectificationState(_)) => ApiError::Conflict(e.to_string()),
        }
    }
}

impl From<gateway_store::StoreError> for ApiError {
    fn from(e: gateway_store::StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}
