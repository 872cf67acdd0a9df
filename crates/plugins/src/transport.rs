//! The HTTP client under every department connection: hyper-util's pooled client over rustls.
//!
//! [`crate::connection`] decides what may be sent and records it; this module only carries a
//! request there and its answer back. It is the client reqwest wraps, used without reqwest's
//! per-request layers, which the gateway never wants for a department (redirects are refused,
//! nothing is retried, no proxy is configured) but which ran on every exchange anyway: the
//! redirect policy printed the request's URI and parsed it again, the retry layer cloned the
//! headers, the proxy matcher looked the host up. Measured under load they were ~7 % of the
//! gateway's CPU per lookup (BENCHMARKS.md, "The department client without reqwest's layers").

use crate::connection::{DepartmentResponse, SendError, StreamedBody};
use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::time::Duration;

/// A request's body: bytes, or materials streamed from the store as it goes out.
pub(crate) type RequestBody = Either<Full<Bytes>, StreamedBody>;

/// One department's pooled client: kept-alive connections, TLS where the URL is `https`.
#[derive(Debug)]
pub(crate) struct Transport {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, RequestBody>,
}

/// How long an idle kept-alive connection stays in the pool (reqwest's default, kept).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle connections kept per department.
const MAX_IDLE: usize = 64;

impl Transport {
    /// A client speaking HTTP/1.1, in TLS with `tls` for `https` URLs, giving up a connection
    /// attempt after `connect_timeout`.
    pub(crate) fn new(tls: rustls::ClientConfig, connect_timeout: Duration) -> Self {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        // Requests are written whole: waiting for an acknowledgement before the next segment
        // only delays them.
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(connect_timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_max_idle_per_host(MAX_IDLE)
            .build(connector);
        Transport { client }
    }

    /// Send `request` and read its whole answer, refusing one longer than `max_response_bytes`
    /// (by its `content-length` before reading, or as it arrives).
    pub(crate) async fn exchange(
        &self,
        request: hyper::Request<RequestBody>,
        max_response_bytes: usize,
    ) -> Result<DepartmentResponse, SendError> {
        let (head, mut body) = self.send(request).await?.into_parts();
        let headers = head
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let declared = head
            .headers
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max_response_bytes as u64) {
            return Err(SendError::TooLarge);
        }
        let mut read = Vec::with_capacity(declared.map_or(0, |n| n as usize));
        while let Some(data) = next_data(&mut body).await? {
            if read.len() + data.len() > max_response_bytes {
                return Err(SendError::TooLarge);
            }
            read.extend_from_slice(&data);
        }
        Ok(DepartmentResponse {
            status: head.status.as_u16(),
            headers,
            body: read,
        })
    }

    /// Send `request` and give its answer's status, the body read and dropped up to
    /// `max_response_bytes` (read to its end, the connection goes back to the pool).
    pub(crate) async fn status(
        &self,
        request: hyper::Request<RequestBody>,
        max_response_bytes: usize,
    ) -> Result<u16, SendError> {
        let (head, mut body) = self.send(request).await?.into_parts();
        let mut read = 0;
        while read <= max_response_bytes
            && let Some(data) = next_data(&mut body).await?
        {
            read += data.len();
        }
        Ok(head.status.as_u16())
    }

    async fn send(
        &self,
        request: hyper::Request<RequestBody>,
    ) -> Result<hyper::Response<Incoming>, SendError> {
        self.client.request(request).await.map_err(|e| classify(&e))
    }
}

/// The next bytes of an answer's body (trailers skipped), `None` at its end.
async fn next_data(body: &mut Incoming) -> Result<Option<Bytes>, SendError> {
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.map_err(|e| classify(&e))?.into_data() {
            return Ok(Some(data));
        }
    }
    Ok(None)
}

/// A failed exchange: a timeout anywhere in its causes (the connection attempt's bound) is a
/// timeout; anything else leaves the department unavailable, with the whole chain of causes
/// (connection refused, certificate unknown) for the audit log and the operator.
fn classify(error: &(dyn std::error::Error + 'static)) -> SendError {
    let mut reason = error.to_string();
    let mut timed_out = false;
    let mut source = error.source();
    while let Some(s) = source {
        timed_out |= s
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut);
        reason = format!("{reason}: {s}");
        source = s.source();
    }
    if timed_out {
        SendError::Timeout
    } else {
        SendError::Unavailable(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timed_out_connection_attempt_is_a_timeout_and_the_rest_say_why() {
        #[derive(Debug, thiserror::Error)]
        #[error("client error (Connect)")]
        struct Outer(#[source] std::io::Error);
        let timed_out = Outer(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connect timeout",
        ));
        assert_eq!(classify(&timed_out), SendError::Timeout);
        let refused = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused",
        ));
        assert_eq!(
            classify(&refused),
            SendError::Unavailable("client error (Connect): Connection refused".into())
        );
    }
}
