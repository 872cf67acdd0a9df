//! The process's log subscriber: human-readable lines or one JSON object a line.
//!
//! Every line passes through [`gateway_base::redact`] on its way out. Log sites mask what they
//! know to be personal already; this is the net under them, for a value that reaches a log line
//! by a path nobody thought of (an adapter's error text, a caller's header). Secrets the
//! gateway holds are scrubbed there too.
//!
//! One event is one line, whatever its fields hold: the writer escapes every control character
//! and Unicode line break inside an event (`\n`, `\r`, `\t`, `\u001b` …), in both formats, so
//! an adapter's log message or a caller's text cannot start a line that looks like the
//! gateway's own. Colours are off for the same reason: escape sequences are never written.

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
    let lines = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(Masked(std::io::stdout));
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(export_layer);
    match format {
        LogFormat::Text => registry.with(lines).init(),
        LogFormat::Json => registry.with(lines.json()).init(),
    }
    Ok(export)
}

/// A writer that masks identity and mobile numbers, scrubs secrets and escapes line breaks and
/// control characters in what it writes.
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
        // The formatter writes each event whole, so a number is never split across two writes,
        // and the one line break that ends the event is the last byte.
        let text = String::from_utf8_lossy(buf);
        let (event, end) = match text.strip_suffix('\n') {
            Some(event) => (event, "\n"),
            None => (&*text, ""),
        };
        let masked = gateway_base::redact::redact(event);
        self.0.write_all(escape_controls(&masked).as_bytes())?;
        self.0.write_all(end.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// `text` with every control character and Unicode line or paragraph separator escaped, so it
/// stays on one line. The escapes are JSON's (`\n`, `\uXXXX`), valid inside a JSON string and
/// readable in a text line; outside strings a JSON line holds none of these characters.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    let escaped = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    if !text.chars().any(escaped) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if escaped(c) => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
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

    /// A buffer the subscriber writes into, shared with the test.
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    /// What an adapter logs to forge a line of the gateway's own, in every way a line breaks.
    const FORGERIES: [&str; 5] = [
        "ok\n2026-01-21T10:00:00.000000Z  INFO gateway::admin: adapter activated operator=\"root\"",
        "ok\r\n2026-01-21T10:00:00.000000Z  INFO gateway::admin: adapter activated",
        "ok\u{1b}[2K\r2026-01-21T10:00:00.000000Z  INFO gateway::admin: adapter activated",
        "ok\u{2028}INFO gateway::admin: adapter activated\u{85}INFO again\u{b}\u{c}",
        "ok\n{\"level\":\"INFO\",\"target\":\"gateway::admin\",\"fields\":{\"message\":\"adapter activated\"}}",
    ];

    fn logged(format: LogFormat) -> String {
        use tracing_subscriber::prelude::*;
        let buffer = Buffer::default();
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(Masked(buffer.clone()));
        let subscriber = tracing_subscriber::registry();
        let emit = || {
            for forgery in FORGERIES {
                // As the message, as a field, and in a span's field, as adapters' and callers'
                // text reaches a line.
                let span = tracing::info_span!("request", path = %forgery);
                let _entered = span.enter();
                tracing::info!(target: "adapter", department = %forgery, "{forgery}");
            }
        };
        match format {
            LogFormat::Text => tracing::subscriber::with_default(subscriber.with(layer), emit),
            LogFormat::Json => {
                tracing::subscriber::with_default(subscriber.with(layer.json()), emit)
            }
        }
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn no_adapter_text_starts_a_line_in_either_format() {
        for format in [LogFormat::Text, LogFormat::Json] {
            let output = logged(format);
            let lines: Vec<&str> = output.split('\n').filter(|l| !l.is_empty()).collect();
            assert_eq!(lines.len(), FORGERIES.len(), "{format:?}: {output}");
            for line in &lines {
                assert!(
                    !line
                        .chars()
                        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')),
                    "{format:?}: {line:?}"
                );
                assert!(line.contains("adapter activated"), "{line}");
                if format == LogFormat::Json {
                    let entry: serde_json::Value = serde_json::from_str(line).unwrap();
                    // The escape reads back as the adapter's text: nothing is lost.
                    assert!(
                        entry["fields"]["message"]
                            .as_str()
                            .unwrap()
                            .starts_with("ok"),
                        "{line}"
                    );
                } else {
                    assert!(
                        line.contains("ok\\n") || line.contains("ok\\r") || line.contains("ok\\u"),
                        "{line}"
                    );
                }
            }
        }
    }
}
