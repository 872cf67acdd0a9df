//! Request ids and W3C trace context, from the portal's request to every department call.
//!
//! A portal request keeps its `x-request-id` (or gets a UUID), which is echoed in the answer and
//! named on every log line of the request. Its `traceparent` is continued (or a trace started),
//! and held in a task-local for the time the request is handled: [`crate::connection`] reads it
//! and sends a child `traceparent` with every department request, so a department's logs join
//! the portal's trace. Deliveries and polls run outside any request; they start a trace of their
//! own each (the case's original trace is not stored).

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use gateway_base::model::Clerk;
use gateway_base::trace::{TraceContext, scope};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// Middleware: continue the caller's trace (or start one), make it the request's task-local, and
/// leave it in the request's extensions for the request span.
async fn continue_trace(mut request: Request, next: Next) -> Response {
    let context = {
        // In a block: a borrow of the request must not live across the await below.
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
        header("traceparent")
            .and_then(|tp| TraceContext::parse(tp, header("tracestate")))
            .unwrap_or_else(TraceContext::new_root)
    };
    request.extensions_mut().insert(context.clone());
    // Its id goes into every error it answers (set by the outer layer when the caller sent
    // none).
    let id = request
        .headers()
        .get("x-request-id")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    // The names a request carries are masked in everything it logs or answers.
    let run = crate::error::with_request_id(id, next.run(request));
    scope(context, gateway_base::redact::scope(run)).await
}

/// The request span: method, path, request id and trace id on every line logged while a request
/// is handled. Paths and request ids are the caller's text, so they are recorded masked.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .map(|v| gateway_base::redact::redact(&String::from_utf8_lossy(v.as_bytes())))
        .unwrap_or_default();
    let context = request.extensions().get::<TraceContext>();
    let trace_id = context.map(TraceContext::trace_id_hex).unwrap_or_default();
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %gateway_base::redact::redact(request.uri().path()),
        request_id = %request_id,
        trace_id = %trace_id,
    );
    if let Some(context) = context {
        gateway_base::trace::adopt(&span, context);
    }
    span
}

/// Request ids, trace context and the request span around a router (the portal's, the admin's).
pub fn layer(router: axum::Router) -> axum::Router {
    // Each layer wraps the ones before it: the id is set first of all and echoed on the way
    // out, the trace context is known before the span is made.
    router
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(request_span)
                // Errors are logged where they are understood (a department's failure as a
                // warning, the gateway's own as an error, readiness when it changes); a 5xx
                // here again, say a `/readyz` 503 asked every second, would only repeat them.
                .on_failure(
                    tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG),
                ),
        )
        .layer(axum::middleware::from_fn(continue_trace))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// The header value of a context, for a department request.
pub fn header_value(context: &TraceContext) -> HeaderValue {
    HeaderValue::from_str(&context.traceparent()).expect("hex and dashes are a valid header")
}

/// Middleware: the clerk named by the request's `X-Clerk-*` headers is on every exchange the
/// request causes.
async fn with_clerk(request: Request, next: Next) -> Response {
    let clerk = clerk(request.headers());
    gateway_store::audit::scope(|c| c.clerk = clerk, next.run(request)).await
}

/// The clerk middleware around a router.
pub fn clerk_layer(router: axum::Router) -> axum::Router {
    router.layer(axum::middleware::from_fn(with_clerk))
}

/// The clerk at the window, from `X-Clerk-Id`, `X-Clerk-Window` and `X-Clerk-Hall`.
pub fn clerk(headers: &axum::http::HeaderMap) -> Option<Clerk> {
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
