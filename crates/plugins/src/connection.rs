//! The host-owned connection to one department system.
//!
//! Adapters name a method and a path; this module decides where that goes. It joins the path to
//! the department's base URL and refuses anything that would leave it (absolute URLs,
//! protocol-relative paths, `..` segments, user-info tricks), so an adapter reaches its own
//! department and nothing else. TLS trusts only the department's pinned CA, and presents the
//! gateway's client identity where the department requires mutual TLS.
//!
//! A request body is bytes, or parts ([`OutgoingBody::Parts`]): bytes the adapter wrote around
//! slices of materials this module streams from the store as the request goes out (raw or
//! base64), with the `content-length` computed beforehand. Memory is one slice whatever the
//! material's size, and the audit log's digest is computed over the body as it passes.

use crate::blobs::MaterialBlobs;
use crate::cancelling::run_on;
use crate::transport::{RequestBody, Transport};
use gateway_base::config::{Config, DepartmentConfig};
use gateway_base::digest::HashAlgorithm;
use gateway_store::audit::Outcome;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// Why a department request did not produce a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Refused before sending.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Could not connect, or the connection broke.
    #[error("department unavailable: {0}")]
    Unavailable(String),
    /// No complete answer within the department's timeout.
    #[error("department timed out")]
    Timeout,
    /// The answer exceeded the size limit.
    #[error("department answer too large")]
    TooLarge,
    /// A material of the body could not be read from the gateway's store (the request was
    /// cut off): the gateway's failure, not the department's.
    #[error("material unavailable: {0}")]
    Material(String),
}

/// A request body.
pub enum OutgoingBody {
    /// Bytes, sent as they are.
    Bytes(Vec<u8>),
    /// Parts in order, the materials among them streamed from `blobs` as the request goes out.
    Parts {
        /// The parts.
        parts: Vec<BodyPart>,
        /// Where the materials' bytes are read.
        blobs: Arc<dyn MaterialBlobs>,
    },
}

/// One part of an [`OutgoingBody::Parts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyPart {
    /// Bytes the adapter wrote.
    Bytes(Vec<u8>),
    /// A slice of a stored file, already checked to lie within it.
    Material {
        /// The material's code, for messages.
        code: String,
        /// The file's SM3.
        sm3: String,
        /// First byte of the slice.
        offset: u64,
        /// Bytes in the slice.
        length: u64,
        /// Written as base64 (RFC 4648, no line breaks) rather than raw.
        base64: bool,
    },
}

impl BodyPart {
    /// Bytes this part puts on the wire.
    pub fn wire_len(&self) -> u64 {
        match self {
            BodyPart::Bytes(b) => b.len() as u64,
            BodyPart::Material { length, base64, .. } if *base64 => length.div_ceil(3) * 4,
            BodyPart::Material { length, .. } => *length,
        }
    }
}

impl From<Vec<u8>> for OutgoingBody {
    fn from(bytes: Vec<u8>) -> Self {
        OutgoingBody::Bytes(bytes)
    }
}

impl OutgoingBody {
    /// Bytes the body puts on the wire: its `content-length`.
    pub fn wire_len(&self) -> u64 {
        match self {
            OutgoingBody::Bytes(b) => b.len() as u64,
            OutgoingBody::Parts { parts, .. } => parts.iter().map(BodyPart::wire_len).sum(),
        }
    }
}

/// A department's answer.
#[derive(Debug, Clone)]
pub struct DepartmentResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers with lowercase names.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// One department's base URL, client and limits.
#[derive(Debug)]
pub struct Connection {
    base: url::Url,
    transport: Arc<Transport>,
    timeout: Duration,
    max_response_bytes: usize,
    /// No department yet: every request is refused (a component being described before it is
    /// known which department it is for).
    unbound: bool,
    /// Where every exchange is recorded, once the node's audit log runs.
    audit: std::sync::OnceLock<gateway_store::audit::Recorder>,
    /// The runtime the connection was made on, where its exchanges run ([`Self::on_home`]).
    home: Option<tokio::runtime::Handle>,
}

impl Connection {
    /// A connection that refuses every request.
    pub fn unbound() -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Connection {
            base: url::Url::parse("http://unbound.invalid")?,
            transport: Arc::new(Transport::new(
                crate::tls::no_trust_config()?,
                Duration::from_secs(1),
            )),
            timeout: Duration::from_secs(1),
            max_response_bytes: 0,
            unbound: true,
            audit: Default::default(),
            home: None,
        }))
    }

    /// Build the connection for a department from the config (reads its TLS files).
    pub fn new(config: &Config, dept: &DepartmentConfig) -> anyhow::Result<Arc<Self>> {
        let base = url::Url::parse(dept.base_url.trim_end_matches('/'))?;
        let timeout = Duration::from_millis(dept.timeout_ms);
        let tls = match &dept.tls {
            Some(tls) => crate::tls::client_config(config, tls)?,
            // A plain-HTTP department: TLS is never used, but the client is built with some.
            None => crate::tls::no_trust_config()?,
        };
        // Only the connection attempt is bounded here: `send` bounds the whole exchange, body
        // included, itself. Redirects are never followed (an answer is given back as it is).
        let transport = Transport::new(tls, timeout.min(Duration::from_secs(5)));
        Ok(Arc::new(Connection {
            base,
            transport: Arc::new(transport),
            timeout,
            max_response_bytes: dept.max_response_bytes,
            unbound: false,
            audit: Default::default(),
            home: tokio::runtime::Handle::try_current().ok(),
        }))
    }

    /// The full URL for an adapter's path, or why it is refused.
    ///
    /// The path is refused when any reading of it could climb out of the base path or reach
    /// another host: an absolute or scheme-relative URL, a backslash, `@`, `#` or a control
    /// character, and — after percent-decoding as often as it decodes (a server may decode
    /// twice) — a `.` or `..` segment (also `..;x`, as some servers drop path parameters), a
    /// slash or backslash that was encoded, a byte sequence that is not UTF-8 (overlong `%c0%ae`
    /// is a dot to some decoders), or a dot or slash look-alike some servers fold (`．`, `／`,
    /// `＼`, `∕`). What passes is sent exactly as given.
    pub fn resolve(&self, path: &str) -> Result<url::Url, SendError> {
        let refuse = |why: &str| Err(SendError::Forbidden(format!("path {path:?}: {why}")));
        if self.unbound {
            return refuse("no department is bound to this adapter yet");
        }
        if !path.starts_with('/') || path.starts_with("//") {
            return refuse("must be a path starting with a single `/`, relative to the department");
        }
        if path
            .chars()
            .any(|c| c.is_control() || c == '\\' || c == '@' || c == '#')
        {
            return refuse("contains a character not allowed in a department path");
        }
        let only_path = path.split('?').next().unwrap_or_default();
        if let Err(why) = check_segments(only_path) {
            return refuse(why);
        }
        // The base URL stays parsed: only the path and query are set on a copy (parsing the
        // whole joined URL again ran the host through IDNA on every exchange).
        let mut url = self.base.clone();
        url.set_path(&format!(
            "{}{only_path}",
            self.base.path().trim_end_matches('/')
        ));
        url.set_query(path.split_once('?').map(|(_, query)| query));
        // Belt and braces: whatever the parser made of it, it must still be the department.
        if url.scheme() != self.base.scheme()
            || url.host() != self.base.host()
            || url.port_or_known_default() != self.base.port_or_known_default()
            || !url
                .path()
                .starts_with(self.base.path().trim_end_matches('/'))
        {
            return refuse("leaves the department's base URL");
        }
        Ok(url)
    }

    /// Record every exchange of this connection into the audit log (once; later calls are
    /// ignored).
    pub fn attach_audit(&self, recorder: gateway_store::audit::Recorder) {
        let _ = self.audit.set(recorder);
    }

    /// Send one request to the department and read the whole answer within the limits; the
    /// exchange, refused ones included, goes into the audit log.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<DepartmentResponse, SendError> {
        self.send_body(method, path, headers, OutgoingBody::Bytes(body))
            .await
    }

    /// [`Self::send`] with a body in parts: the materials among them are streamed from the
    /// store into the request, a slice at a time, and digested for the audit log as they pass.
    pub async fn send_body(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: OutgoingBody,
    ) -> Result<DepartmentResponse, SendError> {
        use tracing::Instrument;
        let mut trace = gateway_base::trace::outgoing();
        let span = tracing::info_span!(
            "department_call",
            method = %method,
            path = %gateway_base::redact::redact(path),
            base_url = %self.base,
        );
        if gateway_base::trace::current().is_none() {
            // A call outside any request or delivery: its trace is the one it sends.
            gateway_base::trace::adopt(&span, &trace);
        }
        // When spans are exported, the department's parent is this call's own span.
        if let Some(id) = gateway_base::trace::span_id(&span) {
            trace.parent_id = id;
        }
        let Some(recorder) = self.audit.get() else {
            return self
                .send_unrecorded(method, path, headers, body, None, trace)
                .instrument(span)
                .await;
        };
        let (mut pending, streamed) = match &body {
            OutgoingBody::Bytes(bytes) => (
                recorder.begin(method, path, bytes, trace.trace_id_hex()),
                None,
            ),
            OutgoingBody::Parts { .. } => (
                recorder.begin(method, path, &[], trace.trace_id_hex()),
                Some(Arc::new(Mutex::new(Digesting::new(recorder.hash())))),
            ),
        };
        let result = self
            .send_unrecorded(method, path, headers, body, streamed.clone(), trace)
            .instrument(span)
            .await;
        if let Some(streamed) = streamed {
            let digesting = std::mem::replace(
                &mut *streamed.lock().expect("digest lock"),
                Digesting::new(recorder.hash()),
            );
            let (digest, bytes) = digesting.finish();
            pending.request_streamed(digest, bytes);
        }
        pending.finish(match &result {
            Ok(response) => Outcome::Answered {
                status: response.status,
                body: &response.body,
            },
            Err(SendError::Forbidden(_)) => Outcome::Failed("forbidden"),
            Err(SendError::Unavailable(_)) => Outcome::Failed("unavailable"),
            Err(SendError::Timeout) => Outcome::Failed("timeout"),
            Err(SendError::TooLarge) => Outcome::Failed("too_large"),
            Err(SendError::Material(_)) => Outcome::Failed("material_unavailable"),
        });
        result
    }

    /// Refuse a request before it is sent, for a reason only the caller knows (a material
    /// part the call does not carry), recorded in the audit log like the refusals of `send`.
    pub fn refuse(&self, method: &str, path: &str, why: String) -> SendError {
        if let Some(recorder) = self.audit.get() {
            let trace = gateway_base::trace::outgoing();
            recorder
                .begin(method, path, &[], trace.trace_id_hex())
                .finish(Outcome::Failed("forbidden"));
        }
        SendError::Forbidden(why)
    }

    async fn send_unrecorded(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: OutgoingBody,
        digest: Option<Arc<Mutex<Digesting>>>,
        trace: gateway_base::trace::TraceContext,
    ) -> Result<DepartmentResponse, SendError> {
        let url = self.resolve(path)?;
        let method = allowed_method(method)?;
        let uri = hyper::Uri::try_from(url.as_str())
            .map_err(|_| SendError::Forbidden(format!("path {path:?}: not a valid URI")))?;
        let failure = Arc::new(Mutex::new(None));
        let mut outgoing = hyper::HeaderMap::with_capacity(headers.len() + 2);
        let body = match body {
            OutgoingBody::Bytes(bytes) => RequestBody::Left(bytes::Bytes::from(bytes).into()),
            OutgoingBody::Parts { parts, blobs } => {
                let streamed = StreamedBody::new(parts, blobs, digest, failure.clone());
                // Set here: a streamed body would otherwise go out chunked, which some
                // departments' servers refuse; hyper holds the body to this length.
                outgoing.insert(
                    hyper::header::CONTENT_LENGTH,
                    hyper::header::HeaderValue::from(streamed.remaining),
                );
                RequestBody::Right(streamed)
            }
        };
        for (name, value) in headers {
            // Refused, not sent: the value is not repeated (it may be a signature or a token).
            let name = hyper::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                SendError::Forbidden(format!("header {name:?}: not a valid header name"))
            })?;
            // The host owns the connection-level headers, and the trace context (so an adapter
            // cannot detach its calls from the request they serve). Names are lowercase here.
            if matches!(
                name.as_str(),
                "host"
                    | "content-length"
                    | "transfer-encoding"
                    | "connection"
                    | "traceparent"
                    | "tracestate"
            ) {
                continue;
            }
            let value = hyper::header::HeaderValue::from_str(value).map_err(|_| {
                SendError::Forbidden(format!(
                    "header {name}: its value is not a valid header value"
                ))
            })?;
            outgoing.append(name, value);
        }
        let trace_header = |text: String| {
            hyper::header::HeaderValue::try_from(text)
                .map_err(|_| SendError::Forbidden("the trace context is not a valid header".into()))
        };
        outgoing.insert("traceparent", trace_header(trace.traceparent())?);
        if let Some(state) = trace.state {
            outgoing.insert("tracestate", trace_header(state)?);
        }
        let mut request = hyper::Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = outgoing;
        let (transport, max_response_bytes) = (self.transport.clone(), self.max_response_bytes);
        let exchange = async move { transport.exchange(request, max_response_bytes).await };
        let timeout = self.timeout;
        let result = self
            .on_home(async move {
                tokio::time::timeout(timeout, exchange)
                    .await
                    .unwrap_or(Err(SendError::Timeout))
            })
            .await;
        // A material that could not be read cut the request off: whatever the client made of
        // that, it is the gateway's failure.
        match failure.lock().expect("failure lock").take() {
            Some(why) if result.is_err() => Err(SendError::Material(why)),
            _ => result,
        }
    }

    /// Run `exchange` on the runtime the connection was made on (the gateway's), wherever the
    /// caller runs. Why: the HTTP client drives each connection it opens in a task of the
    /// runtime that opened it, and keeps the connection for later requests. A call moved to its
    /// department's threads ([`crate::host`]) would otherwise leave its connections' tasks
    /// there, and every later request on them from the portal's threads would cross to those
    /// threads and back: two more thread wake-ups per exchange, for as long as the connection
    /// lives. A caller that stops waiting cancels the exchange.
    async fn on_home(
        &self,
        exchange: impl Future<Output = Result<DepartmentResponse, SendError>> + Send + 'static,
    ) -> Result<DepartmentResponse, SendError> {
        let elsewhere = |home: &tokio::runtime::Handle| {
            tokio::runtime::Handle::try_current().map_or(true, |here| here.id() != home.id())
        };
        match &self.home {
            Some(home) if elsewhere(home) => run_on(home, exchange)
                .await
                .unwrap_or_else(|_| Err(SendError::Unavailable("the gateway is stopping".into()))),
            _ => exchange.await,
        }
    }

    /// Whether the department answers at all, for readiness: a `GET` of the base URL within
    /// `timeout`. Any answer but 502, 503 or 504 means its system is there (a 404 for the bare
    /// base URL is normal); those three, a refused connection or silence mean it is not.
    pub async fn probe(&self, timeout: Duration) -> Result<u16, SendError> {
        let mut request = hyper::Request::new(RequestBody::Left(Default::default()));
        *request.uri_mut() = hyper::Uri::try_from(self.base.as_str())
            .map_err(|_| SendError::Unavailable("the base URL is not a valid URI".into()))?;
        if let Ok(traceparent) = gateway_base::trace::outgoing().traceparent().try_into() {
            request.headers_mut().insert("traceparent", traceparent);
        }
        // The (small) body is read to its end, so the connection goes back to the pool instead
        // of being closed: otherwise every probe is a new connection, and a new TLS handshake
        // for a department behind TLS.
        let answer = self.transport.status(request, self.max_response_bytes);
        let status = match tokio::time::timeout(timeout, answer).await {
            Ok(answered) => answered?,
            Err(_) => return Err(SendError::Timeout),
        };
        if matches!(status, 502..=504) {
            return Err(SendError::Unavailable(format!("answered HTTP {status}")));
        }
        Ok(status)
    }

    /// The department's base URL.
    pub fn base_url(&self) -> &url::Url {
        &self.base
    }
}

/// Raw bytes of a material read from the store at once: the store's default chunk, so a
/// streamed material holds one slice in memory (and the client's write buffer).
const STREAM_SLICE: u64 = 256 * 1024;
/// The same for a material written as base64: a multiple of 3, so every slice but the last
/// encodes without padding and the slices' encodings concatenate into the whole's.
const STREAM_SLICE_BASE64: u64 = 192 * 1024;

/// A body digest computed as the body streams out.
pub(crate) struct Digesting {
    hash: Hasher,
    bytes: u64,
}

enum Hasher {
    Sm3(sm3::Sm3),
    Sha256(sha2::Sha256),
}

impl Digesting {
    fn new(algorithm: HashAlgorithm) -> Self {
        use sha2::Digest as _;
        Digesting {
            hash: match algorithm {
                HashAlgorithm::Sm3 => Hasher::Sm3(sm3::Sm3::new()),
                HashAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            },
            bytes: 0,
        }
    }

    fn update(&mut self, data: &[u8]) {
        use sha2::Digest as _;
        match &mut self.hash {
            Hasher::Sm3(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
        }
        self.bytes += data.len() as u64;
    }

    /// Hex digest and size of what passed.
    fn finish(self) -> (String, u64) {
        use sha2::Digest as _;
        let digest = match self.hash {
            Hasher::Sm3(h) => sdk::sign::to_hex(h.finalize()),
            Hasher::Sha256(h) => sdk::sign::to_hex(h.finalize()),
        };
        (digest, self.bytes)
    }
}

/// A read of the store under way.
type Reading = Pin<Box<dyn Future<Output = Result<Option<Vec<u8>>, String>> + Send>>;

/// A material slice being streamed: the next byte to read and the end.
struct Streaming {
    code: String,
    sm3: String,
    next: u64,
    end: u64,
    base64: bool,
}

/// What the client pulls an [`OutgoingBody::Parts`] from: one part, or one slice of a material,
/// at a time.
pub(crate) struct StreamedBody {
    state: StreamState,
    remaining: u64,
}

struct StreamState {
    parts: VecDeque<BodyPart>,
    blobs: Arc<dyn MaterialBlobs>,
    current: Option<Streaming>,
    reading: Option<(Reading, u64)>,
    remaining: u64,
    digest: Option<Arc<Mutex<Digesting>>>,
    failure: Arc<Mutex<Option<String>>>,
}

/// Why a streamed body stopped.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct StreamError(String);

impl StreamedBody {
    fn new(
        parts: Vec<BodyPart>,
        blobs: Arc<dyn MaterialBlobs>,
        digest: Option<Arc<Mutex<Digesting>>>,
        failure: Arc<Mutex<Option<String>>>,
    ) -> Self {
        let remaining = parts.iter().map(BodyPart::wire_len).sum();
        StreamedBody {
            state: StreamState {
                parts: parts.into(),
                blobs,
                current: None,
                reading: None,
                remaining,
                digest,
                failure,
            },
            remaining,
        }
    }
}

impl StreamState {
    /// Bytes going out: digested, counted.
    fn emit(&mut self, bytes: Vec<u8>) -> http_body::Frame<bytes::Bytes> {
        if let Some(digest) = &self.digest {
            digest.lock().expect("digest lock").update(&bytes);
        }
        self.remaining = self.remaining.saturating_sub(bytes.len() as u64);
        http_body::Frame::data(bytes::Bytes::from(bytes))
    }

    fn fail(&mut self, why: String) -> StreamError {
        tracing::warn!(error = %why, "a material could not be streamed to its department");
        self.failure
            .lock()
            .expect("failure lock")
            .get_or_insert(why.clone());
        self.parts.clear();
        self.current = None;
        StreamError(why)
    }
}

impl http_body::Body for StreamedBody {
    type Data = bytes::Bytes;
    type Error = StreamError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use base64::Engine as _;
        let s = &mut self.get_mut().state;
        loop {
            if let Some((reading, asked)) = &mut s.reading {
                let asked = *asked;
                let read = std::task::ready!(reading.as_mut().poll(cx));
                s.reading = None;
                let slice = s.current.as_mut().expect("a read belongs to a slice");
                let code = slice.code.clone();
                let bytes = match read {
                    Ok(Some(bytes)) if bytes.len() as u64 == asked => bytes,
                    Ok(Some(bytes)) => {
                        let why = format!(
                            "material `{code}`: the store gave {} bytes at {}, {asked} expected",
                            bytes.len(),
                            slice.next
                        );
                        return Poll::Ready(Some(Err(s.fail(why))));
                    }
                    Ok(None) => {
                        let why = format!("material `{code}`: its file is not in the store");
                        return Poll::Ready(Some(Err(s.fail(why))));
                    }
                    Err(e) => {
                        return Poll::Ready(Some(Err(s.fail(format!("material `{code}`: {e}")))));
                    }
                };
                slice.next += asked;
                let out = if slice.base64 {
                    base64::engine::general_purpose::STANDARD
                        .encode(&bytes)
                        .into_bytes()
                } else {
                    bytes
                };
                return Poll::Ready(Some(Ok(s.emit(out))));
            }
            if let Some(slice) = &s.current {
                if slice.next < slice.end {
                    let step = if slice.base64 {
                        STREAM_SLICE_BASE64
                    } else {
                        STREAM_SLICE
                    };
                    let asked = (slice.end - slice.next).min(step);
                    let (blobs, sm3, offset) = (s.blobs.clone(), slice.sm3.clone(), slice.next);
                    s.reading = Some((
                        Box::pin(async move { blobs.read(&sm3, offset, asked as usize).await }),
                        asked,
                    ));
                    continue;
                }
                s.current = None;
            }
            match s.parts.pop_front() {
                None => return Poll::Ready(None),
                Some(BodyPart::Bytes(bytes)) if bytes.is_empty() => continue,
                Some(BodyPart::Bytes(bytes)) => return Poll::Ready(Some(Ok(s.emit(bytes)))),
                Some(BodyPart::Material {
                    code,
                    sm3,
                    offset,
                    length,
                    base64,
                }) => {
                    s.current = Some(Streaming {
                        code,
                        sm3,
                        next: offset,
                        end: offset + length,
                        base64,
                    });
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        let s = &self.state;
        s.parts.is_empty() && s.current.is_none() && s.reading.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.state.remaining)
    }
}

/// The methods an adapter may use. `CONNECT` would open a tunnel through the department's
/// proxy, `TRACE` reflects the request (headers the host added included); anything else
/// unknown has no business with a department's API either. Names are case-sensitive, as HTTP
/// says, so `get` is refused rather than guessed at.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

fn allowed_method(method: &str) -> Result<hyper::Method, SendError> {
    if !METHODS.contains(&method) {
        return Err(SendError::Forbidden(format!(
            "method {method:?} is not allowed (only {})",
            METHODS.join(", ")
        )));
    }
    hyper::Method::from_bytes(method.as_bytes())
        .map_err(|_| SendError::Forbidden(format!("method {method:?} is not valid")))
}

/// Percent-decode `text` once; `None` when nothing was encoded.
fn percent_decode_once(text: &[u8]) -> Option<Vec<u8>> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(text.len());
    let mut changed = false;
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'%'
            && i + 2 < text.len()
            && let (Some(h), Some(l)) = (hex(text[i + 1]), hex(text[i + 2]))
        {
            out.push(h << 4 | l);
            changed = true;
            i += 3;
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    changed.then_some(out)
}

/// Why the path part of an adapter's path could climb out of the base path, if it could.
fn check_segments(path: &str) -> Result<(), &'static str> {
    // Dots and slashes some servers fold into `.` and `/` (IIS, some Java stacks).
    const LOOK_ALIKES: [char; 8] = ['．', '。', '․', '﹒', '／', '∕', '⁄', '＼'];
    let raw_slashes = path.bytes().filter(|b| *b == b'/').count();
    let mut decoded = path.as_bytes().to_vec();
    // Every layer of encoding, as a server that decodes more than once would see it.
    for round in 0.. {
        let text =
            std::str::from_utf8(&decoded).map_err(|_| "decodes to bytes that are not UTF-8")?;
        if text.chars().any(|c| c.is_control()) {
            return Err("an encoded control character");
        }
        if text.contains('\\') || text.chars().any(|c| LOOK_ALIKES.contains(&c)) {
            return Err("an encoded backslash, or a dot or slash look-alike");
        }
        if text.bytes().filter(|b| *b == b'/').count() != raw_slashes {
            return Err("an encoded slash");
        }
        for segment in text.split('/') {
            // `..;jsessionid=x` is `..` to servers that drop path parameters.
            let bare = segment.split(';').next().unwrap_or_default();
            if bare == "." || bare == ".." {
                return Err("dot segments are not allowed, however encoded");
            }
        }
        match percent_decode_once(&decoded) {
            Some(next) if round < 8 => decoded = next,
            Some(_) => return Err("encoded too many times"),
            None => break,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(base: &str) -> Connection {
        Connection {
            base: url::Url::parse(base).unwrap(),
            transport: Arc::new(Transport::new(
                crate::tls::no_trust_config().unwrap(),
                Duration::from_secs(1),
            )),
            timeout: Duration::from_secs(1),
            max_response_bytes: 1024,
            unbound: false,
            audit: Default::default(),
            home: None,
        }
    }

    /// An exchange asked from another runtime (a call moved to its department's threads) runs
    /// on the runtime the connection was made on, so the connections it opens are driven there;
    /// one asked there runs in place; a caller that stops waiting cancels it.
    #[test]
    fn exchanges_run_on_the_runtime_the_connection_was_made_on() {
        let runtime = |name: &str| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name(name)
                .enable_all()
                .build()
                .unwrap()
        };
        let (home, elsewhere) = (runtime("home"), runtime("elsewhere"));
        let made = Arc::new(Connection {
            home: Some(home.handle().clone()),
            ..connection("http://127.0.0.1:9")
        });
        let thread_of_exchange = |connection: Arc<Connection>| async move {
            let answer = connection
                .on_home(async {
                    let thread = std::thread::current()
                        .name()
                        .unwrap_or_default()
                        .to_string();
                    Ok(DepartmentResponse {
                        status: 200,
                        headers: Vec::new(),
                        body: thread.into_bytes(),
                    })
                })
                .await
                .unwrap();
            String::from_utf8(answer.body).unwrap()
        };
        assert_eq!(elsewhere.block_on(thread_of_exchange(made.clone())), "home");
        assert_eq!(
            home.block_on(home.spawn(thread_of_exchange(made.clone())))
                .unwrap(),
            "home"
        );

        let (started, running) = tokio::sync::oneshot::channel::<()>();
        let (dropped, ended) = tokio::sync::oneshot::channel::<()>();
        elsewhere.block_on(async {
            let waiting = made.on_home(async move {
                // Dropped with the task when it is aborted.
                let _ended = dropped;
                let _ = started.send(());
                std::future::pending().await
            });
            tokio::select! {
                _ = waiting => unreachable!("the exchange never ends"),
                _ = running => {}
            }
            // The waiter is gone: the exchange on the home runtime is cancelled.
            assert!(ended.await.is_err());
        });
    }

    /// Every way of writing a dot segment or a slash, and the other ways out, against paths a
    /// department's API really has.
    #[test]
    fn paths_stay_inside_the_department() {
        let c = connection("http://127.0.0.1:18081/gateway");
        for (path, sent) in [
            (
                "/api/v1/qscx?x=1",
                "http://127.0.0.1:18081/gateway/api/v1/qscx?x=1",
            ),
            ("/api/v1/qscx", "http://127.0.0.1:18081/gateway/api/v1/qscx"),
            ("/a/b.json", "http://127.0.0.1:18081/gateway/a/b.json"),
            ("/a/...b/c", "http://127.0.0.1:18081/gateway/a/...b/c"),
            ("/a/%E7%A8%8E", "http://127.0.0.1:18081/gateway/a/%E7%A8%8E"),
            ("/a/%20b", "http://127.0.0.1:18081/gateway/a/%20b"),
            // A query may say anything: it is not part of the path.
            (
                "/q?next=../../x&p=%2F",
                "http://127.0.0.1:18081/gateway/q?next=../../x&p=%2F",
            ),
        ] {
            assert_eq!(
                c.resolve(path).map(|u| u.to_string()),
                Ok(sent.to_string()),
                "{path}"
            );
        }
        for escape in [
            "http://127.0.0.1:9/x",
            "//127.0.0.1:9/x",
            "https://example.com/",
            "/../../etc",
            "/a/../b",
            "/a/./b",
            "/a/..",
            "/..;/x",
            "/a/..;jsessionid=1/b",
            // Encoded dots, in every case and mixture.
            "/%2e%2e/x",
            "/%2E%2E/x",
            "/a/%2E%2E/b",
            "/.%2e/x",
            "/%2e./x",
            "/%2e/x",
            "/a/%2e",
            // Encoded slashes and backslashes, alone and with dots.
            "/..%2f",
            "/..%2fetc",
            "/%2E%2E%2F",
            "/%2e%2e%2fetc%2fpasswd",
            "/a%2fb",
            "/a%2Fb",
            "/..%5c",
            "/a%5cb",
            // Twice and three times encoded.
            "/%252e%252e/x",
            "/%252E%252E%252F",
            "/%25252e%25252e/x",
            "/a%252fb",
            // Overlong UTF-8 and look-alikes some servers fold.
            "/%c0%ae%c0%ae/x",
            "/%c0%af",
            "/%e0%80%ae%e0%80%ae/x",
            "/%ef%bc%8e%ef%bc%8e/x",
            "/．．/x",
            "/a／b",
            "/a＼b",
            // Control characters, raw or encoded; userinfo; fragments.
            "/a%00b",
            "/a%0d%0aHost:%20evil",
            "/a\nb",
            "@127.0.0.1/x",
            "/x@evil.example/",
            "/x#frag",
            "/x\\..\\y",
            "api",
            "",
        ] {
            assert!(
                matches!(c.resolve(escape), Err(SendError::Forbidden(_))),
                "{escape:?} must be refused"
            );
        }
    }

    #[test]
    fn only_ordinary_methods_are_sent() {
        for method in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
            assert_eq!(allowed_method(method).unwrap().as_str(), method);
        }
        for method in [
            "CONNECT", "TRACE", "TRACK", "get", "Post", "PROPFIND", "", "G ET",
        ] {
            assert!(
                matches!(allowed_method(method), Err(SendError::Forbidden(_))),
                "{method:?} must be refused"
            );
        }
    }

    #[tokio::test]
    async fn a_refused_method_is_never_sent() {
        let c = connection("http://127.0.0.1:9/gateway");
        for method in ["CONNECT", "TRACE"] {
            let sent = c.send(method, "/x", &[], Vec::new()).await;
            assert!(
                matches!(sent, Err(SendError::Forbidden(_))),
                "{method}: {sent:?}"
            );
        }
    }

    /// A header no HTTP server could read (a name with a space, a value breaking the line) is
    /// the adapter's error, refused before anything is sent: the port here refuses
    /// connections, so a request that went out would come back `Unavailable`. The refusal
    /// names the header, never its value (a signature, a token).
    #[tokio::test]
    async fn a_header_that_is_not_http_is_never_sent() {
        let c = connection("http://127.0.0.1:9/gateway");
        let bad = [("X Sign", "abc"), ("X-Sign", "secret-1\r\nX-Injected: yes")];
        for (name, value) in bad {
            let sent = c
                .send("POST", "/x", &[(name.into(), value.into())], Vec::new())
                .await;
            assert!(
                matches!(&sent, Err(SendError::Forbidden(why)) if why.contains(&name.to_ascii_lowercase()) || why.contains(name)),
                "{name}: {sent:?}"
            );
            assert!(!format!("{sent:?}").contains("secret-1"), "{sent:?}");
        }
        let fine = c
            .send("POST", "/x", &[("X-Sign".into(), "abc".into())], Vec::new())
            .await;
        assert!(matches!(fine, Err(SendError::Unavailable(_))), "{fine:?}");
    }

    /// The headers the host owns are its own whatever the adapter says, in any case of their
    /// names: the department sees the host's `Host` and trace context, never the adapter's.
    #[tokio::test]
    async fn the_hosts_own_headers_are_never_the_adapters() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (head_tx, head_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            let _ = head_tx.send(String::from_utf8_lossy(&got).to_ascii_lowercase());
            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
            socket.write_all(answer).await.unwrap();
        });
        let forged = [
            (
                "TraceParent",
                "00-11111111111111111111111111111111-2222222222222222-01",
            ),
            ("HOST", "elsewhere.example"),
            ("X-Sign", "abc"),
        ];
        let headers: Vec<(String, String)> = forged
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let sent = connection(&base)
            .send("POST", "/x", &headers, Vec::new())
            .await;
        assert_eq!(sent.map(|r| r.status), Ok(200));
        let head = head_rx.await.unwrap();
        assert!(head.contains("x-sign: abc"), "{head}");
        assert!(!head.contains("1111111111"), "{head}");
        assert!(head.contains("traceparent: 00-"), "{head}");
        assert!(!head.contains("elsewhere"), "{head}");
        assert!(
            head.contains(&format!("host: {}", &base["http://".len()..])),
            "{head}"
        );
    }

    /// Materials in memory, one of them missing its bytes past `broken_after`.
    struct Blobs {
        files: std::collections::HashMap<String, Vec<u8>>,
        broken_after: Option<u64>,
    }

    impl MaterialBlobs for Blobs {
        fn read<'a>(&'a self, sm3: &'a str, offset: u64, max: usize) -> crate::blobs::BlobRead<'a> {
            Box::pin(async move {
                if self.broken_after.is_some_and(|at| offset >= at) {
                    return Err("chunk 3 does not open".to_string());
                }
                Ok(self.files.get(sm3).map(|f| {
                    let from = (offset as usize).min(f.len());
                    f[from..(from + max).min(f.len())].to_vec()
                }))
            })
        }
    }

    /// A department that answers each request with its body, as it received it.
    async fn echo() -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    let mut buf = vec![0u8; 64 * 1024];
                    let (head_end, length) = loop {
                        let Ok(n) = socket.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        got.extend_from_slice(&buf[..n]);
                        if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&got[..at]).to_ascii_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length: "))
                                .and_then(|v| v.trim().parse::<usize>().ok());
                            break (at + 4, length);
                        }
                    };
                    let Some(length) = length else {
                        let _ = socket
                            .write_all(b"HTTP/1.1 411 Length Required\r\ncontent-length: 0\r\n\r\n")
                            .await;
                        return;
                    };
                    while got.len() < head_end + length {
                        let Ok(n) = socket.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        got.extend_from_slice(&buf[..n]);
                    }
                    let body = &got[head_end..head_end + length];
                    let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(body).await;
                });
            }
        });
        base
    }

    #[tokio::test]
    async fn materials_stream_into_the_body_raw_and_base64() {
        use base64::Engine as _;
        let mut c = connection(&echo().await);
        c.max_response_bytes = 8 << 20;
        // Sizes around the slices the body reads, and the empty file.
        let sizes = [
            0usize, 1, 2, 3, 4, 196_607, 196_608, 196_609, 262_145, 1_000_003,
        ];
        let files: std::collections::HashMap<String, Vec<u8>> = sizes
            .iter()
            .map(|n| {
                (
                    format!("f{n}"),
                    (0..*n).map(|i| (i * 31 % 256) as u8).collect(),
                )
            })
            .collect();
        let blobs: Arc<dyn MaterialBlobs> = Arc::new(Blobs {
            files: files.clone(),
            broken_after: None,
        });
        for n in sizes {
            let file = &files[&format!("f{n}")];
            for base64 in [false, true] {
                let parts = vec![
                    BodyPart::Bytes(b"<a>".to_vec()),
                    BodyPart::Material {
                        code: "m".into(),
                        sm3: format!("f{n}"),
                        offset: 0,
                        length: n as u64,
                        base64,
                    },
                    BodyPart::Bytes(b"</a>".to_vec()),
                ];
                let body = OutgoingBody::Parts {
                    parts,
                    blobs: blobs.clone(),
                };
                let expected = [
                    b"<a>".to_vec(),
                    if base64 {
                        base64::engine::general_purpose::STANDARD
                            .encode(file)
                            .into_bytes()
                    } else {
                        file.clone()
                    },
                    b"</a>".to_vec(),
                ]
                .concat();
                assert_eq!(body.wire_len(), expected.len() as u64);
                let answer = c.send_body("POST", "/x", &[], body).await.unwrap();
                assert!(answer.body == expected, "size {n}, base64 {base64}");
            }
        }
        // A slice from the middle.
        let body = OutgoingBody::Parts {
            parts: vec![BodyPart::Material {
                code: "m".into(),
                sm3: "f1000003".into(),
                offset: 300_000,
                length: 500_000,
                base64: false,
            }],
            blobs: blobs.clone(),
        };
        let answer = c.send_body("PUT", "/x", &[], body).await.unwrap();
        assert!(answer.body == files["f1000003"][300_000..800_000]);
    }

    #[tokio::test]
    async fn a_material_the_store_cannot_read_cuts_the_request_off() {
        let c = connection(&echo().await);
        let blobs: Arc<dyn MaterialBlobs> = Arc::new(Blobs {
            files: [("f".to_string(), vec![7u8; 1 << 20])].into(),
            broken_after: Some(512 * 1024),
        });
        let parts = vec![BodyPart::Material {
            code: "m".into(),
            sm3: "f".into(),
            offset: 0,
            length: 1 << 20,
            base64: false,
        }];
        let sent = c
            .send_body("POST", "/x", &[], OutgoingBody::Parts { parts, blobs })
            .await;
        assert!(
            matches!(&sent, Err(SendError::Material(why)) if why.contains("chunk 3 does not open")),
            "{sent:?}"
        );
        // A file the store does not have at all.
        let blobs: Arc<dyn MaterialBlobs> = Arc::new(Blobs {
            files: Default::default(),
            broken_after: None,
        });
        let parts = vec![BodyPart::Material {
            code: "m".into(),
            sm3: "gone".into(),
            offset: 0,
            length: 10,
            base64: true,
        }];
        let sent = c
            .send_body("POST", "/x", &[], OutgoingBody::Parts { parts, blobs })
            .await;
        assert!(
            matches!(&sent, Err(SendError::Material(why)) if why.contains("not in the store")),
            "{sent:?}"
        );
    }

    #[tokio::test]
    async fn probes_reuse_their_connection() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // A department that answers every request on a connection with a 404 and a body too
        // big to arrive with the head (what a client drops unread costs it the connection),
        // and counts the connections it accepts.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let body = "no such page\n".repeat(16 * 1024);
                        let answer = format!(
                            "HTTP/1.1 404 Not Found\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let mut c = connection(&base);
        c.max_response_bytes = 1 << 20;
        for _ in 0..3 {
            assert_eq!(c.probe(Duration::from_secs(2)).await, Ok(404));
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "every probe opened a connection"
        );
    }
}
