//! The gateway's own HTTP stack with none of the gateway's work: an axum server that forwards
//! every request through a reqwest client to one upstream and hands back its answer.
//!
//! It is the fourth row of the lookup benchmark. Between nginx (a proxy in C, no translation)
//! and the gateway (the same axum + hyper + reqwest stack, plus authentication, the adapter
//! call, records and the audit chain) it shows what the stack itself costs on this machine,
//! so the gateway's figure can be split into "the stack" and "the gateway's own work".
//! Runs as a child process of the bench (`bench --passthrough-listen … --passthrough-upstream
//! …`) on a runtime shaped like the gateway's (one tokio worker per core).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;

struct Upstream {
    base: String,
    client: reqwest::Client,
}

/// Serve on `127.0.0.1:<port>`, forwarding to `upstream` (e.g. `http://127.0.0.1:18081`).
pub fn serve(port: u16, upstream: String) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // The same client settings as a gateway department connection.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(64)
            .build()?;
        let state = Arc::new(Upstream {
            base: upstream.trim_end_matches('/').to_string(),
            client,
        });
        let app = axum::Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        // Stops on SIGTERM by returning from `main`, as the gateway does, so an instrumented
        // build writes its profile (`cargo xtask pgo`).
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                terminate.recv().await;
            })
            .await?;
        Ok(())
    })
}

async fn forward(
    State(upstream): State<Arc<Upstream>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = upstream
        .client
        .request(method, format!("{}{path}", upstream.base))
        .body(body);
    for (name, value) in &headers {
        if !matches!(name.as_str(), "host" | "content-length" | "connection") {
            request = request.header(name, value);
        }
    }
    let answer = async {
        let response = request.send().await?;
        let status = response.status();
        let content_type = response.headers().get("content-type").cloned();
        let body = response.bytes().await?;
        Ok::<_, reqwest::Error>((status, content_type, body))
    };
    match answer.await {
        Ok((status, content_type, body)) => {
            let mut response = (status, body).into_response();
            if let Some(t) = content_type {
                response.headers_mut().insert("content-type", t);
            }
            response
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
