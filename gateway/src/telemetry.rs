//! Prometheus metrics: what the gateway does, per department, for operators.
//!
//! One process-wide recorder (the `metrics` facade with the Prometheus exporter, rendered on the
//! admin listener at `/metrics`). Counters are bumped where things happen; gauges that describe
//! the store (cases by light) are refreshed when scraped.
//!
//! | metric | labels | what |
//! | --- | --- | --- |
//! | `gateway_deliveries_total` | department, outcome | deliveries by outcome (`accepted`, `rejected`, `retry`, `dead_letter`, `failed`) |
//! | `gateway_dead_letters_total` | department | steps given up after their attempts |
//! | `gateway_circuit_open` | department | 1 while the department's circuit is open |
//! | `gateway_steps_by_light` | department, light | open steps that are green, yellow or red |
//! | `gateway_deliveries_in_flight` | | deliveries running on this node |

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// The process's Prometheus handle, installing the recorder on first use.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (an embedding process): then ours renders
            // nothing, which is visible, rather than failing start-up.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

/// A delivery ended with this outcome.
pub fn delivery(department: &str, outcome: &'static str) {
    metrics::counter!("gateway_deliveries_total", "department" => department.to_string(), "outcome" => outcome).increment(1);
    if outcome == "dead_letter" {
        metrics::counter!("gateway_dead_letters_total", "department" => department.to_string())
            .increment(1);
    }
}

/// The department's circuit opened (true) or closed (false).
pub fn circuit(department: &str, open: bool) {
    metrics::gauge!("gateway_circuit_open", "department" => department.to_string()).set(if open {
        1.0
    } else {
        0.0
    });
}

/// Deliveries running on this node.
pub fn in_flight(count: usize) {
    metrics::gauge!("gateway_deliveries_in_flight").set(count as f64);
}

/// Open steps per department and light.
pub fn lights(department: &str, light: &'static str, count: usize) {
    metrics::gauge!("gateway_steps_by_light", "department" => department.to_string(), "light" => light).set(count as f64);
}
