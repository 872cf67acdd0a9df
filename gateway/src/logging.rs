//! The process's log subscriber: human-readable lines or one JSON object a line.
//!
//! Every line passes through [`crate::redact`] on its way out. Log sites mask what they know to
//! be personal already; this is the net under them, for a value that reaches a log line by a
//! path nobody thought of (an adapter's error text, a caller's header).

use gateway_base::config::LogFormat;
use std::io::Write;
use tracing_subscriber::fmt::MakeWriter;

/// The format to use: `GATEWAY_LOG_FORMAT` when set, else the config's.
pub fn format(configured: LogFormat) -> anyhow::Result<LogFormat> {
    match std::env::var("GATEWAY_LOG_FORMAT") {
        Ok(value) if !value.trim().is_empty() => LogFormat::parse(&value).ok_or_else(|| {
            anyhow::anyhow!("GATEWAY_LOG_FORMAT: `{value}` is neither `text` nor `json`")
        }),
        _ => Ok(configured),
    }
}

/// Install the subscriber: `RUST_LOG` filters (default `info`), lines go to stdout, masked;
/// with `[telemetry] otlp_endpoint`, spans are exported too ([`crate::otel`]). The answer
/// flushes the export at shutdown.
pub fn init(
    format: LogFormat,
    telemetry: &gateway_base::config::TelemetryConfig,
) -> anyhow::Result<Option<crate::otel::Export>> {
    use tracing_subscriber::prelude::*;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let (export_layer, export) = match crate::otel::layer(telemetry)? {
        Some((layer, export)) => (Some(layer), Some(export)),
        None => (None, None),
    };
    let lines = tracing_subscriber::fmt::layer().with_writer(Masked(std::io::stdout));
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(export_layer);
    match format {
        LogFormat::Text => registry.with(lines).init(),
        LogFormat::Json => registry.with(lines.json()).init(),
    }
    Ok(export)
}

/// A writer that masks identity and mobile numbers in what it writes.
#[derive(Clone, Copy)]
pub struct Masked<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Masked<M> {
    type Writer = MaskedWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        MaskedWriter(self.0.make_writer())
    }
}

/// One line's writer, from [`Masked`].
pub struct MaskedWriter<W>(W);

impl<W: Write> Write for MaskedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The formatter writes each event whole, so a number is never split across two writes.
        let text = String::from_utf8_lossy(buf);
        self.0
            .write_all(gateway_base::redact::redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_masked_on_the_way_out() {
        let mut out = MaskedWriter(Vec::new());
        out.write_all(br#"{"fields":{"message":"id 11010519491231002X"}}"#)
            .unwrap();
        assert_eq!(
            String::from_utf8(out.0).unwrap(),
            r#"{"fields":{"message":"id 1101**********002X"}}"#
        );
    }
}
