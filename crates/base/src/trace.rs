//! W3C trace context, from the portal's request to every department call.
//!
//! The context of the request, delivery or poll a task works for is held in a task-local
//! ([`scope`]): department calls send a child `traceparent` of it ([`outgoing`]), so a
//! department's logs join the portal's trace. When spans are exported, [`adopt`] makes a
//! tracing span carry the same trace id, and [`span_id`] names that span in what is sent on.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// True once spans are exported (the top crate installs the exporter): until then [`adopt`]
/// and [`span_id`] do no work.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Spans are exported from now on: trace ids must follow them.
pub fn exporting() {
    EXPORTING.store(true, Ordering::Relaxed);
}

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
        sdk::sign::to_hex(self.trace_id)
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
            sdk::sign::to_hex(self.trace_id),
            sdk::sign::to_hex(self.parent_id),
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
// Not an `async fn`, which would hold `f` twice (see `redact::scope`).
pub fn scope<F: Future>(context: TraceContext, f: F) -> impl Future<Output = F::Output> {
    CURRENT.scope(context, f)
}

/// Make `span` continue `context`: exported with its trace id, as a child of its parent span.
/// Call before the span is first entered.
pub fn adopt(span: &tracing::Span, context: &TraceContext) {
    if !EXPORTING.load(Ordering::Relaxed) {
        return;
    }
    let remote = SpanContext::new(
        TraceId::from_bytes(context.trace_id),
        SpanId::from_bytes(context.parent_id),
        TraceFlags::new(context.flags & 1),
        true,
        TraceState::default(),
    );
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
}

/// The exported id of `span` (to name it as the parent in an outgoing `traceparent`); `None`
/// when nothing is exported.
pub fn span_id(span: &tracing::Span) -> Option<[u8; 8]> {
    if !EXPORTING.load(Ordering::Relaxed) {
        return None;
    }
    let context = span.context();
    let id = context.span().span_context().span_id();
    (id != SpanId::INVALID).then(|| id.to_bytes())
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
