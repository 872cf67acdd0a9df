//! glibc's malloc arenas, capped at two per core before the gateway starts its threads.
//!
//! glibc gives a thread that allocates while the existing arenas are in use an arena of its
//! own, up to eight per core, and what is freed into an arena stays with it. The gateway's
//! threads (the runtime's workers, SQLite's connection threads, the departments' threads for
//! busy calls, the blocking pool) each came to hold one. Measured under the bench's lookup
//! load on 2 cores (BENCHMARKS.md): four arenas instead of sixteen took the gateway's peak
//! resident memory from 88 to 83–87 MiB and its CPU per lookup down by 6–8 %; two arenas saved
//! more memory but cost 8 % more CPU (likely the runtime's workers waiting for an arena's lock
//! that SQLite's threads hold). So one per core for the runtime's workers and as many again for
//! the other threads. An operator's own `GLIBC_TUNABLES=glibc.malloc.arena_max=…` is left in
//! force.

/// Arenas per core this process may use.
const ARENAS_PER_CORE: usize = 2;

/// Cap the arenas at [`ARENAS_PER_CORE`] per core this process may use (its CPU affinity and
/// cgroup quota). Returns the cap, or `None` where it was left alone (an operator's setting,
/// an allocator other than glibc's).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub(crate) fn cap_arenas() -> Option<usize> {
    if std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max")) {
        return None;
    }
    let arenas = ARENAS_PER_CORE * std::thread::available_parallelism().map_or(2, |n| n.get());
    let cap = libc::c_int::try_from(arenas).unwrap_or(libc::c_int::MAX);
    // SAFETY: `mallopt` sets one of glibc's allocator parameters and touches no memory of
    // ours; it is called before the gateway starts a thread, as a limit on arenas must be.
    let set = unsafe { libc::mallopt(libc::M_ARENA_MAX, cap) };
    (set == 1).then_some(arenas)
}

/// Other allocators have no arenas to cap.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn cap_arenas() -> Option<usize> {
    None
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    #[test]
    fn glibc_takes_two_arenas_per_core_as_its_cap() {
        if std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max")) {
            assert_eq!(super::cap_arenas(), None);
        } else {
            let cores = std::thread::available_parallelism().unwrap().get();
            assert_eq!(super::cap_arenas(), Some(2 * cores));
        }
    }
}
