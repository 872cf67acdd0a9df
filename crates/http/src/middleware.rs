//! Request ids and W3C trace context, from the portal's request to every department call.
//!
//! A portal request keeps its `x-request-id` (or gets a UUID), which is echoed in the answer and
//! named on every log line of the request. Its `traceparent` is continued (or a trace started),
//! and held in a task-local for the time the request is handled: [`crate::connection`] reads it
//! and sends a child `traceparent` with every department request, so a department's logs join
//! the portal's trace. Deliveries and polls run outside any request; they start a trace of their
//! own each (the case's original trace is not stored).
//!
//! Headers people write (the clerk's, a lookup's purpose) are read by [`header_text`]: UTF-8,
//! percent-encoded or raw.

use crate::error::Failure;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use gateway_base::model::{Clerk, FieldProblem};
use gateway_base::trace::{TraceContext, scope};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tracing::Instrument;

/// Middleware at the edge of every request: continue the caller's trace (or start one) as
/// the request's task-local, with its request id and the names it masks; handle it inside the
/// request span; log the failure its answer carries.
///
/// One middleware where these were three layers (the trace context, `tower_http`'s trace
/// layer, the failure log): each layer of a router is boxed per route, and each call through
/// one clones the boxed stack below it and boxes its future. Functions called in turn cost
/// none of that (BENCHMARKS.md, "Fewer layers").
async fn edge(mut request: Request, next: Next) -> Response {
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
    let span = request_span(&request);
    let handled = async move {
        let started = std::time::Instant::now();
        tracing::debug!("started processing request");
        let response = log_failures(next.run(request).await);
        tracing::debug!(
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "finished processing request"
        );
        response
    }
    .instrument(span);
    // The names a request carries are masked in everything it logs or answers.
    let run = crate::error::with_request_id(id, handled);
    scope(context, gateway_base::redact::scope(run)).await
}

/// The request span: method, path, request id and trace id on every line logged while a request
/// is handled. Paths and request ids are the caller's text, so they are recorded masked.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let context = request.extensions().get::<TraceContext>();
    // The fields are computed only when the span is enabled (not at `warn`, say).
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %gateway_base::redact::redact(request.uri().path()),
        request_id = %request
            .headers()
            .get("x-request-id")
            .map(|v| gateway_base::redact::redact(&String::from_utf8_lossy(v.as_bytes())))
            .unwrap_or_default(),
        trace_id = %context.map(TraceContext::trace_id_hex).unwrap_or_default(),
    );
    if let Some(context) = context {
        gateway_base::trace::adopt(&span, context);
    }
    span
}

/// Request ids, trace context and the request span around a router (the portal's, the admin's).
pub fn layer(router: axum::Router) -> axum::Router {
    // Outermost first: the id is set first of all and echoed on the way out.
    router.layer(
        tower::ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(axum::middleware::from_fn(edge)),
    )
}

/// The failure an error answer carries ([`crate::error::Failure`]) is logged, masked, on the
/// request's span; the answer goes out without it.
fn log_failures(mut response: Response) -> Response {
    match response.extensions_mut().remove::<Failure>() {
        Some(Failure::Internal(detail)) => {
            tracing::error!(detail = %gateway_base::redact::redact(&detail), "internal error");
        }
        Some(Failure::Department { department, error }) => {
            tracing::warn!(%department, error = %gateway_base::redact::redact(&error), "department call failed");
        }
        None => {}
    }
    response
}

/// The header value of a context, for a department request.
pub fn header_value(context: &TraceContext) -> HeaderValue {
    HeaderValue::from_str(&context.traceparent()).expect("hex and dashes are a valid header")
}

/// The clerk at the window, from `X-Clerk-Id`, `X-Clerk-Window` and `X-Clerk-Hall` (each read
/// by [`header_text`]); `None` without `X-Clerk-Id`. Every unreadable header is a problem.
pub fn clerk(headers: &HeaderMap) -> Result<Option<Clerk>, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let mut read = |name: &str| {
        header_text(headers, name).unwrap_or_else(|problem| {
            problems.push(problem);
            None
        })
    };
    let (id, window, hall) = (
        read("X-Clerk-Id"),
        read("X-Clerk-Window"),
        read("X-Clerk-Hall"),
    );
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(id.map(|id| Clerk { id, window, hall }))
}

/// A header whose value is text a person wrote (a clerk's name, a hall's, why a lookup is
/// made), trimmed; `None` when absent or blank.
///
/// Halls and windows have Chinese names, and `fetch` (every browser portal) and most HTTP
/// libraries refuse anything but ASCII in a header: such values come percent-encoded as UTF-8,
/// as `encodeURIComponent` makes them (`%E7%AA%97%E5%8F%A3`). A value of ASCII with a `%XX`
/// escape is decoded; a value that is not an escape sequence throughout (`100%`) is taken as
/// it is; raw UTF-8 bytes, which earlier clients send, are taken as UTF-8. Bytes that are not
/// UTF-8 (raw or decoded) and control characters are a `format` problem on the header.
pub fn header_text(headers: &HeaderMap, name: &str) -> Result<Option<String>, FieldProblem> {
    let Some(value) = headers.get(name.to_ascii_lowercase().as_str()) else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    let problem = |message: &str| FieldProblem::new(name, "format", message);
    let text = match percent_decoded(bytes) {
        Some(decoded) => String::from_utf8(decoded).map_err(|_| {
            problem("百分号编码解码后不是UTF-8文本（应为 encodeURIComponent 的结果）")
        })?,
        None => std::str::from_utf8(bytes)
            .map_err(|_| problem("应为UTF-8文本，非ASCII字符请按UTF-8百分号编码"))?
            .to_string(),
    };
    if text.chars().any(char::is_control) {
        return Err(problem("不能包含控制字符"));
    }
    let text = text.trim();
    Ok((!text.is_empty()).then(|| text.to_string()))
}

/// The bytes a percent-encoded value stands for: `None` unless the value is ASCII with at
/// least one `%` and every `%` starts a `%XX` escape.
fn percent_decoded(bytes: &[u8]) -> Option<Vec<u8>> {
    if !bytes.is_ascii() || !bytes.contains(&b'%') {
        return None;
    }
    let hex = |b: u8| (b as char).to_digit(16);
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let high = hex(*bytes.get(i + 1)?)?;
            let low = hex(*bytes.get(i + 2)?)?;
            decoded.push((high * 16 + low) as u8);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    Some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_bytes(value).unwrap());
        }
        headers
    }

    #[test]
    fn percent_encoded_and_raw_utf8_read_the_same() {
        // encodeURIComponent("二手房转移登记受理")
        let encoded =
            b"%E4%BA%8C%E6%89%8B%E6%88%BF%E8%BD%AC%E7%A7%BB%E7%99%BB%E8%AE%B0%E5%8F%97%E7%90%86";
        let raw = "二手房转移登记受理".as_bytes();
        for value in [
            &encoded[..],
            raw,
            b"  %E4%BA%8C%E6%89%8B%E6%88%BF%E8%BD%AC%E7%A7%BB%E7%99%BB%E8%AE%B0%E5%8F%97%E7%90%86 ",
        ] {
            let h = headers(&[("x-lookup-purpose", value)]);
            assert_eq!(
                header_text(&h, "X-Lookup-Purpose").unwrap().as_deref(),
                Some("二手房转移登记受理")
            );
        }
    }

    #[test]
    fn plain_ascii_and_stray_percent_signs_are_kept() {
        for (value, read) in [
            (&b"clerk-007"[..], "clerk-007"),
            (b"100%", "100%"),
            (b"50%off", "50%off"),
            (b"a%2Fb", "a/b"),
            (b"%20x%20", "x"),
        ] {
            let h = headers(&[("x-clerk-id", value)]);
            assert_eq!(
                header_text(&h, "X-Clerk-Id").unwrap().as_deref(),
                Some(read)
            );
        }
        let h = headers(&[("x-clerk-id", b"   ")]);
        assert_eq!(header_text(&h, "X-Clerk-Id").unwrap(), None);
        assert_eq!(header_text(&HeaderMap::new(), "X-Clerk-Id").unwrap(), None);
    }

    #[test]
    fn undecodable_values_and_control_characters_are_format_problems() {
        for value in [&b"%FF%FE"[..], b"\xff\xfe", b"a%0Ab", b"%E4%BA"] {
            let h = headers(&[("x-clerk-hall", value)]);
            let problem = header_text(&h, "X-Clerk-Hall").unwrap_err();
            assert_eq!(
                (problem.field.as_str(), problem.code.as_str()),
                ("X-Clerk-Hall", "format")
            );
        }
    }

    #[test]
    fn the_clerk_comes_from_three_headers_each_decoded() {
        let h = headers(&[
            ("x-clerk-id", b"%E5%BC%A0%E4%B8%89"),
            ("x-clerk-window", "3号窗口".as_bytes()),
            ("x-clerk-hall", b"%E9%BC%93%E6%A5%BC%E5%8C%BA%E6%94%BF%E5%8A%A1%E6%9C%8D%E5%8A%A1%E4%B8%AD%E5%BF%83"),
        ]);
        assert_eq!(
            clerk(&h).unwrap(),
            Some(Clerk {
                id: "张三".into(),
                window: Some("3号窗口".into()),
                hall: Some("鼓楼区政务服务中心".into()),
            })
        );
        let h = headers(&[("x-clerk-window", b"3")]);
        assert_eq!(clerk(&h).unwrap(), None, "no clerk without an id");
        let h = headers(&[("x-clerk-id", b"%FF"), ("x-clerk-hall", b"%00")]);
        assert_eq!(clerk(&h).unwrap_err().len(), 2, "every problem at once");
    }

    /// A writer the test's subscriber logs into.
    #[derive(Clone, Default)]
    struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_error_answer_is_logged_once_by_the_layer_inside_the_request_span() {
        use crate::error::ApiError;
        use tower::ServiceExt as _;
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let subscriber = std::sync::Arc::new(subscriber);
        let run = |error: fn() -> ApiError| {
            let app = layer(
                axum::Router::new().route("/x", axum::routing::get(move || async move { error() })),
            );
            let request = Request::builder()
                .uri("/x")
                .header("x-request-id", "req-42")
                .body(axum::body::Body::empty())
                .unwrap();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let _guard = tracing::subscriber::set_default(subscriber.clone());
            runtime.block_on(app.oneshot(request)).unwrap()
        };
        let response = run(|| ApiError::Internal("store failed for 110105194912310021".into()));
        assert_eq!(response.status(), 500);
        assert!(response.extensions().get::<Failure>().is_none());
        let response = run(|| ApiError::NotFound {
            what: "case",
            id: "c-1".into(),
        });
        assert_eq!(response.status(), 404);
        let logged = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert_eq!(logged.matches("internal error").count(), 1, "{logged}");
        assert!(
            logged.contains("req-42"),
            "inside the request span: {logged}"
        );
        assert!(!logged.contains("110105194912310021"), "masked: {logged}");
        assert_eq!(
            logged.lines().count(),
            1,
            "a caller's mistake is not logged: {logged}"
        );
    }
}
