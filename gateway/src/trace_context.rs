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
use std::future::Future;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// A W3C trace context: the trace, the caller's span in it, the sampling flags and the vendors'
/// `tracestate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 16 bytes, never all zero.
    pub trace_id: [u8; 16],
    /// 8 bytes, never all zero: the span of whoever sent this context.
    pub parent_id: [u8; 8],
    /// Trace flags (bit 0: sampled).
    pub flags: u8,
    /// `tracestate`, passed on unchanged.
    pub state: Option<String>,
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

fn random_bytes<const N: usize>() -> [u8; N] {
    // UUIDv4 is 122 random bits from the OS generator; two of them cover 16 bytes with room.
    let mut out = [0u8; N];
    let mut filled = 0;
    while filled < N {
        let random = *uuid::Uuid::new_v4().as_bytes();
        let take = (N - filled).min(random.len());
        out[filled..filled + take].copy_from_slice(&random[..take]);
        filled += take;
    }
    if out.iter().all(|b| *b == 0) {
        out[N - 1] = 1;
    }
    out
}

impl TraceContext {
    /// A new trace, sampled.
    pub fn new_root() -> TraceContext {
        TraceContext {
            trace_id: random_bytes(),
            parent_id: random_bytes(),
            flags: 1,
            state: None,
        }
    }

    /// Parse a `traceparent` header (version 00, or a later version read as 00 would be), and
    /// the `tracestate` that came with it. `None` when the header is not valid: the caller
    /// starts a new trace then, as the W3C recommendation says.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<TraceContext> {
        let value = traceparent.trim();
        let mut parts = value.split('-');
        let version = parts.next()?;
        let trace_id = parts.next()?;
        let parent_id = parts.next()?;
        let flags = parts.next()?;
        let rest = parts.next();
        let hex_lower = |s: &str, len: usize| {
            s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        if !hex_lower(version, 2) || version == "ff" || (version == "00" && rest.is_some()) {
            return None;
        }
        if !hex_lower(trace_id, 32) || !hex_lower(parent_id, 16) || !hex_lower(flags, 2) {
            return None;
        }
        let mut context = TraceContext {
            trace_id: [0; 16],
            parent_id: [0; 8],
            flags: u8::from_str_radix(flags, 16).ok()?,
            // The recommendation bounds tracestate at 512 characters; longer ones are dropped.
            state: tracestate
                .map(str::trim)
                .filter(|s| !s.is_empty() && s.len() <= 512)
                .map(str::to_string),
        };
        hex::decode_to_slice(trace_id, &mut context.trace_id).ok()?;
        hex::decode_to_slice(parent_id, &mut context.parent_id).ok()?;
        if context.trace_id == [0; 16] || context.parent_id == [0; 8] {
            return None;
        }
        Some(context)
    }

    /// The trace id as 32 lowercase hex characters.
    pub fn trace_id_hex(&self) -> String {
        hex::encode(self.trace_id)
    }

    /// A context for a call this process makes: same trace, a new span id as the parent.
    pub fn child(&self) -> TraceContext {
        TraceContext {
            parent_id: random_bytes(),
            ..self.clone()
        }
    }

    /// The `traceparent` header value.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex::encode(self.trace_id),
            hex::encode(self.parent_id),
            self.flags & 1
        )
    }
}

/// The context of the request or delivery this task works for, if any.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The context to send with an outgoing department request: a child of the current one, or a
/// trace of its own when the call is made outside any request or delivery.
pub fn outgoing() -> TraceContext {
    current().map_or_else(TraceContext::new_root, |c| c.child())
}

/// Run `f` within `context`: department calls it makes carry the context's trace.
pub async fn scope<F: Future>(context: TraceContext, f: F) -> F::Output {
    CURRENT.scope(context, f).await
}

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
    // The names a request carries are masked in everything it logs or answers.
    scope(context, crate::redact::scope(next.run(request))).await
}

/// The request span: method, path, request id and trace id on every line logged while a request
/// is handled. Paths and request ids are the caller's text, so they are recorded masked.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .map(|v| crate::redact::redact(&String::from_utf8_lossy(v.as_bytes())))
        .unwrap_or_default();
    let context = request.extensions().get::<TraceContext>();
    let trace_id = context.map(TraceContext::trace_id_hex).unwrap_or_default();
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %crate::redact::redact(request.uri().path()),
        request_id = %request_id,
        trace_id = %trace_id,
    );
    if let Some(context) = context {
        crate::otel::adopt(&span, context);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_traceparent_is_continued_with_a_new_span() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let c = TraceContext::parse(tp, Some("congo=t61rcWkgMzE")).unwrap();
        assert_eq!(c.traceparent(), tp);
        assert_eq!(c.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let child = c.child();
        assert_eq!(child.trace_id, c.trace_id);
        assert_ne!(child.parent_id, c.parent_id);
        assert_eq!(child.state.as_deref(), Some("congo=t61rcWkgMzE"));
    }

    #[test]
    fn invalid_traceparents_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(TraceContext::parse(bad, None).is_none(), "{bad:?}");
        }
        // A later version may carry more fields; its first four are read as version 00's.
        assert!(
            TraceContext::parse(
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                None
            )
            .is_some()
        );
    }

    #[tokio::test]
    async fn outgoing_calls_carry_the_current_trace() {
        let outside = outgoing();
        assert_ne!(outside.trace_id, [0; 16]);
        let context = TraceContext::new_root();
        let trace_id = context.trace_id;
        let inside = scope(context, async { outgoing() }).await;
        assert_eq!(inside.trace_id, trace_id);
    }
}
