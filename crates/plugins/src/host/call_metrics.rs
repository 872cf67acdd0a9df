//! The metric handles of one adapter version's calls, looked up once.
//!
//! A `metrics` macro builds its labels (each an owned string), hashes them and looks the
//! series up in the recorder's registry every time it runs; a handle kept here records
//! straight into its series. The recorder keeps every series for the life of the process (no
//! idle timeout), so a kept handle never outlives what it records into.

use metrics::{Counter, Gauge, Histogram};
use std::sync::OnceLock;

/// Every call the host makes into an adapter, as its metrics name it.
const CALLS: [&str; 8] = [
    "describe",
    "validate",
    "submit",
    "supplement",
    "withdraw",
    "status",
    "lookup",
    "on_callback",
];

/// The handles of one adapter version bound to one department.
pub(super) struct CallMetrics {
    department: String,
    version: String,
    /// `gateway_adapter_instances` of the department.
    instances: Gauge,
    /// Per call of [`CALLS`], made at its first use: how long it took and how often it ended
    /// well (other outcomes are rare and looked up when they happen).
    calls: [OnceLock<(Histogram, Counter)>; CALLS.len()],
}

impl CallMetrics {
    pub(super) fn new(department: &str, version: &str) -> Self {
        CallMetrics {
            department: department.to_string(),
            version: version.to_string(),
            instances: metrics::gauge!("gateway_adapter_instances", "department" => department.to_string()),
            calls: Default::default(),
        }
    }

    /// The department's live instances.
    pub(super) fn instances(&self) -> Gauge {
        self.instances.clone()
    }

    /// A call of `name` ended with `outcome` after `seconds`.
    pub(super) fn record(&self, name: &'static str, outcome: &str, seconds: f64) {
        let labels = || {
            [
                ("department", self.department.clone()),
                ("version", self.version.clone()),
                ("call", name.to_string()),
            ]
        };
        let kept = CALLS.iter().position(|c| *c == name).map(|i| {
            self.calls[i].get_or_init(|| {
                (
                    metrics::histogram!("gateway_adapter_call_seconds", &labels()),
                    outcome_counter(labels(), "ok"),
                )
            })
        });
        match kept {
            Some((duration, _)) => duration.record(seconds),
            None => metrics::histogram!("gateway_adapter_call_seconds", &labels()).record(seconds),
        }
        match kept {
            Some((_, ok)) if outcome == "ok" => ok.increment(1),
            _ => outcome_counter(labels(), outcome).increment(1),
        }
    }
}

fn outcome_counter(labels: [(&'static str, String); 3], outcome: &str) -> Counter {
    let mut labels = labels.to_vec();
    labels.push(("outcome", outcome.to_string()));
    metrics::counter!("gateway_adapter_calls_total", &labels)
}
