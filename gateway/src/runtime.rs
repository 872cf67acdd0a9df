//! The async runtime the gateway runs on, and how many worker threads it has.
//!
//! One worker fewer than the cores the process may use (affinity and cgroup quota), and at
//! least one, where tokio's default is one per core. Why: a lookup keeps the gateway's other
//! threads busy beside the runtime's workers — SQLite's connection thread writing its record,
//! the kernel's network stack, and on a hall's small VM often the database too — and a worker
//! per core competes with them for the last core. Idle workers also cost: each time a task
//! is woken from outside the runtime (SQLite's thread answering a write, say), tokio wakes a
//! parked worker to find it, which wakes another to look for more, so a quiet gateway spends
//! more CPU putting workers to sleep and waking them than on its lookups. On a 2-core VM,
//! the bench's lookup load with one worker against two: a fifth less CPU per lookup, the
//! unloaded lookup's added latency down by about 0.2 ms, lookups a second the same on average
//! (a tenth fewer in one set of runs; BENCHMARKS.md, 2026-12-06).
//!
//! `TOKIO_WORKER_THREADS`, which tokio reads, overrides the count (where the gateway has the
//! cores to itself and needs its peak throughput, one per core may serve more).

/// The environment variable that sets the worker count instead (tokio's own).
const WORKERS_VARIABLE: &str = "TOKIO_WORKER_THREADS";

/// The runtime `gateway` runs on.
pub(crate) fn build() -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Some(workers) = workers(cores, std::env::var_os(WORKERS_VARIABLE).is_some()) {
        builder.worker_threads(workers);
    }
    builder.enable_all().build()
}

/// The worker count for `cores` usable cores, or `None` to leave it to tokio, which reads an
/// operator's `TOKIO_WORKER_THREADS` when it is `set`.
fn workers(cores: usize, set: bool) -> Option<usize> {
    (!set).then_some(cores.saturating_sub(1).max(1))
}

#[cfg(test)]
mod tests {
    use super::workers;

    #[test]
    fn one_worker_fewer_than_the_cores_and_at_least_one() {
        assert_eq!(workers(1, false), Some(1));
        assert_eq!(workers(2, false), Some(1));
        assert_eq!(workers(4, false), Some(3));
        assert_eq!(workers(16, false), Some(15));
    }

    #[test]
    fn an_operators_count_is_left_to_tokio() {
        assert_eq!(workers(2, true), None);
        assert_eq!(workers(16, true), None);
    }

    #[test]
    fn the_runtime_has_the_workers_chosen() {
        if std::env::var_os(super::WORKERS_VARIABLE).is_some() {
            return;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let runtime = super::build().unwrap();
        assert_eq!(
            Some(runtime.metrics().num_workers()),
            super::workers(cores, false)
        );
    }
}
