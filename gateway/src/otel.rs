//! Optional export of the gateway's spans to an OpenTelemetry collector (OTLP over HTTP).
//!
//! Off unless `[telemetry] otlp_endpoint` is set. Then the spans the gateway already makes —
//! `request` (every portal and admin request), `delivery`, `poll`, and `department_call` (each
//! exchange with a department) — are exported in batches, protobuf-encoded, to
//! `<otlp_endpoint>/v1/traces`, by the SDK's batch processor on a thread of its own (a slow
//! collector never slows a request; a full queue drops spans).
//!
//! Trace ids are the ones [`crate::trace_context`] propagates: a request span continues the
//! portal's `traceparent` (its exported parent is the portal's span), a delivery or poll span
//! is the root of the trace its department calls carry, and the `traceparent` sent to a
//! department names the exported `department_call` span as its parent. So one trace joins the
//! portal, the gateway and the department.
//!
//! Personal data is masked on the way out as in the logs ([`crate::redact`]): every string
//! attribute, event attribute, span name and status message passes through it before the
//! exporter sees it.

use gateway_base::config::TelemetryConfig;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use std::sync::atomic::{AtomicBool, Ordering};

/// The installed exporter; flush it at shutdown with [`Export::shutdown`].
pub struct Export {
    provider: SdkTracerProvider,
}

impl Export {
    /// Send what is still queued and stop the exporter.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "trace export: flushing at shutdown failed");
        }
    }
}

/// The layer that exports spans, and the handle that flushes them at shutdown; `None` when
/// the config asks for no export.
pub fn layer<S>(
    config: &TelemetryConfig,
) -> anyhow::Result<
    Option<(
        tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>,
        Export,
    )>,
>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    let Some(endpoint) = &config.otlp_endpoint else {
        return Ok(None);
    };
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    // reqwest's blocking client, built (and later dropped) off the async runtime: the batch
    // processor's thread sends with it. Like every client of the gateway it brings its own
    // rustls provider (the process installs none).
    let tls = gateway_plugins::tls::no_trust_config()?;
    let client = std::thread::spawn(move || {
        reqwest::blocking::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(std::time::Duration::from_secs(10))
            .build()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("building the trace exporter's HTTP client panicked"))??;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(traces_url(endpoint))
        .build()?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(Masking {
            inner: exporter,
            failing: AtomicBool::new(false),
        })
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(
                    config
                        .service_name
                        .clone()
                        .unwrap_or_else(|| "gateway".to_string()),
                )
                .build(),
        )
        .build();
    let tracer = provider.tracer("gateway");
    gateway_base::trace::exporting();
    Ok(Some((
        tracing_opentelemetry::layer().with_tracer(tracer),
        Export { provider },
    )))
}

/// `<endpoint>/v1/traces`, unless the endpoint already names that path.
fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    }
}

/// The OTLP exporter behind a mask: identity and mobile numbers never leave in a span. It also
/// says in the log when the collector stops taking spans, and when it takes them again (once
/// each, not once a batch).
#[derive(Debug)]
struct Masking<E> {
    inner: E,
    failing: AtomicBool,
}

impl<E: SpanExporter> SpanExporter for Masking<E> {
    fn export(
        &self,
        mut batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        for span in &mut batch {
            mask_span(span);
        }
        let export = self.inner.export(batch);
        async move {
            let result = export.await;
            match &result {
                Err(e) if !self.failing.swap(true, Ordering::Relaxed) => {
                    tracing::warn!(error = %e, "trace export failed; spans are dropped until the collector takes them")
                }
                Ok(()) if self.failing.swap(false, Ordering::Relaxed) => {
                    tracing::info!("trace export works again")
                }
                _ => {}
            }
            result
        }
    }

    fn shutdown_with_timeout(&mut self, timeout: std::time::Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&mut self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource)
    }
}

fn mask_span(span: &mut SpanData) {
    let masked = gateway_base::redact::redact(&span.name);
    if masked != span.name {
        span.name = masked.into();
    }
    mask_attributes(&mut span.attributes);
    for event in span.events.events.iter_mut() {
        let masked = gateway_base::redact::redact(&event.name);
        if masked != event.name {
            event.name = masked.into();
        }
        mask_attributes(&mut event.attributes);
    }
    if let opentelemetry::trace::Status::Error { description } = &mut span.status {
        *description = gateway_base::redact::redact(description).into();
    }
}

fn mask_attributes(attributes: &mut [KeyValue]) {
    for attribute in attributes {
        match &attribute.value {
            Value::String(text) => {
                let masked = gateway_base::redact::redact(text.as_str());
                if masked != text.as_str() {
                    attribute.value = Value::String(masked.into());
                }
            }
            Value::Array(opentelemetry::Array::String(items)) => {
                let masked: Vec<opentelemetry::StringValue> = items
                    .iter()
                    .map(|s| gateway_base::redact::redact(s.as_str()).into())
                    .collect();
                attribute.value = Value::Array(opentelemetry::Array::String(masked));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_masked_on_the_way_out() {
        let mut attributes = vec![
            KeyValue::new("path", "/api/v1/subjects/persons/11010519491231002X"),
            KeyValue::new("message", "mobile 13812345678 called"),
            KeyValue::new("status", 200_i64),
        ];
        mask_attributes(&mut attributes);
        let text = format!("{attributes:?}");
        assert!(!text.contains("11010519491231002X"), "{text}");
        assert!(!text.contains("13812345678"), "{text}");
        assert!(text.contains("1101**********002X"), "{text}");
    }

    #[test]
    fn the_traces_path_is_added_once() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://127.0.0.1:4318/v1/traces"),
            "http://127.0.0.1:4318/v1/traces"
        );
    }
}
