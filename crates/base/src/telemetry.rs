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
//! | `gateway_adapter_calls_total` | department, version, call, outcome | calls into adapters: `ok` or the error kind (`busy`, `memory_budget`, `trap`, `cpu_limit`, `memory_limit`, `timeout`, `result_too_large`, `protocol`, `unavailable` …) |
//! | `gateway_adapter_call_seconds` | department, version, call | histogram of call latency, host calls included |
//! | `gateway_adapter_instances` | department | instances alive now on this node |
//! | `gateway_adapter_limit` | department, limit | configured `memory_mib`, `cpu_ms`, `call_timeout_ms`, `max_instances`, `max_running` (as applied), `max_result_bytes` |
//! | `gateway_adapter_waits_total` | department, bound | calls that waited at admission: `memory` (the node's budget was spent) |
//! | `gateway_adapter_refusals_total` | department, bound | calls refused busy (503 `adapter_busy`): `instances` (the department's bound) or `memory` (the node's budget, after waiting) |
//! | `gateway_adapter_moved_total` | department | busy calls moved off the portal's threads to their department's own (their code ran a tick, or longer than a quick call) |
//! | `gateway_adapter_memory_bytes` | | what the memory budget counts of live adapter instances on this node: their linear memory and 256 KiB each for their host-side state |
//! | `gateway_adapter_memory_budget_bytes` | | `plugins.memory_budget_mib`, in bytes |
//! | `gateway_adapter_pool_resident_bytes` | | what the instance pool keeps resident in slots no instance uses (counted in the budget) |
//! | `gateway_adapter_serving` | department, role, version, digest | share of calls (%) of the active version and the staged candidate |
//! | `gateway_config_reloads_total` | outcome | config reloads: `applied`, `refused` (the old config kept serving), `failed` (the top crate's reload) |
//! | `gateway_calendar_years_ahead` | | 1 when the holiday calendar lists every year it should by today (next year's from 1 November), 0 while one is missing: alert on 0 |

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// The process's Prometheus handle, installing the recorder on first use.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Latencies as histograms (aggregatable across nodes), in seconds.
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0, 10.0, 30.0,
                    ],
                )
                .expect("the bucket list is not empty")
                .build_recorder();
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

/// Whether the holiday calendar covers the years it should by today (1) or misses one (0).
pub fn calendar_years_ahead(years: u8) {
    metrics::gauge!("gateway_calendar_years_ahead").set(f64::from(years));
}

/// Open steps per department and light.
pub fn lights(department: &str, light: &'static str, count: usize) {
    metrics::gauge!("gateway_steps_by_light", "department" => department.to_string(), "light" => light).set(count as f64);
}

/// The limits a department's adapter runs under, as gauges.
pub fn adapter_limits(department: &str, limits: &crate::config::Limits) {
    for (limit, value) in [
        ("memory_mib", limits.memory_mib),
        ("cpu_ms", limits.cpu_ms),
        ("call_timeout_ms", limits.call_timeout_ms),
        ("max_instances", limits.max_instances),
        ("max_running", limits.running()),
        ("max_result_bytes", limits.max_result_bytes),
    ] {
        metrics::gauge!("gateway_adapter_limit", "department" => department.to_string(), "limit" => limit)
            .set(f64::from(value));
    }
}

/// Which versions serve a department now: one series per department and role, replaced on
/// each change (the old series is zeroed so dashboards see the switch).
pub fn adapter_route(
    department: &str,
    version: &str,
    digest: &str,
    candidate: Option<(&str, &str, u8)>,
) {
    use std::collections::HashMap;
    use std::sync::Mutex;
    /// (department, role) → the (version, digest) labels its series carries now.
    type Shown = HashMap<(String, &'static str), (String, String)>;
    static SHOWN: Mutex<Option<Shown>> = Mutex::new(None);
    let mut shown = SHOWN.lock().expect("not poisoned");
    let shown = shown.get_or_insert_with(HashMap::new);
    let mut show = |role: &'static str, now: Option<(&str, &str, f64)>| {
        let key = (department.to_string(), role);
        if let Some((v, d)) = shown.remove(&key) {
            metrics::gauge!("gateway_adapter_serving", "department" => department.to_string(), "role" => role, "version" => v, "digest" => d).set(0.0);
        }
        if let Some((v, d, share)) = now {
            let d = d[..12.min(d.len())].to_string();
            metrics::gauge!("gateway_adapter_serving", "department" => department.to_string(), "role" => role, "version" => v.to_string(), "digest" => d.clone()).set(share);
            shown.insert(key, (v.to_string(), d));
        }
    };
    let share = candidate.map_or(100, |(_, _, p)| 100 - p);
    show("active", Some((version, digest, f64::from(share))));
    show("candidate", candidate.map(|(v, d, p)| (v, d, f64::from(p))));
}
