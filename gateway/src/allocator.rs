//! The gateway's two allocators: jemalloc for everything Rust allocates, and glibc's malloc,
//! which the C libraries linked in (SQLite's among them) still call, with its arenas capped.
//!
//! **jemalloc.** A lookup makes about 500 small allocations, and a request's task moves between
//! the runtime's workers, so much of it is freed on another thread than the one that allocated
//! it. Under the bench's lookup load glibc's malloc took 15–19 % of the gateway's samples, about
//! 4 % of them waiting for its arenas' locks; jemalloc's per-thread caches keep most allocations
//! off any lock. Measured interleaved on 2 cores (BENCHMARKS.md): about a fifth less gateway CPU
//! per lookup and a quarter more lookups a second. Its options ([`JEMALLOC_OPTIONS`]) keep its
//! peak memory within the gateway's budget (77 MiB there, against its default's 82–83 and
//! glibc's 67–88): one arena (its default is four per core; its per-thread caches take the
//! traffic), dirty pages handed back after a second (sooner cost CPU), none kept "muzzy".
//! An operator's `_RJEM_MALLOC_CONF` is read after them and overrides any of them: on a machine
//! with many cores, `narenas:N` or `percpu_arena:percpu`.
//!
//! **glibc's arenas.** glibc gives a thread that allocates while the existing arenas are in use
//! an arena of its own, up to eight per core, and what is freed into an arena stays with it.
//! Capped at two per core the process may use (affinity and cgroup quota) before the gateway
//! starts a thread: with glibc as the only allocator, under the bench's load, four arenas
//! instead of sixteen took the peak resident memory from 88 to 83–87 MiB and the CPU per lookup
//! down 6–8 %. An operator's own `GLIBC_TUNABLES=glibc.malloc.arena_max=…` is left in force.

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's compiled-in options, as the C string jemalloc reads from the symbol
/// `malloc_conf` (prefixed as this build of jemalloc prefixes its API) when it starts, before
/// the first allocation.
// Exporting a symbol is unsafe in Rust's eyes (it could clash with another); this one is the
// name jemalloc defines weakly for exactly this, and the bytes it points to are static and end
// with the NUL a C string needs.
#[allow(unsafe_code)]
#[unsafe(export_name = "_rjem_malloc_conf")]
static JEMALLOC_OPTIONS: &u8 = &OPTIONS[0];

/// [`JEMALLOC_OPTIONS`]' text, NUL-terminated.
const OPTIONS: &[u8] = b"narenas:1,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

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

#[cfg(test)]
mod tests {
    /// Unless an operator's `_RJEM_MALLOC_CONF` says otherwise, jemalloc runs with the options
    /// compiled in (a symbol jemalloc does not find is silently not read).
    #[test]
    #[allow(unsafe_code)]
    fn jemalloc_takes_the_compiled_in_options() {
        if std::env::var_os("_RJEM_MALLOC_CONF").is_some() {
            return;
        }
        assert_eq!(tikv_jemalloc_ctl::opt::narenas::read().unwrap(), 1);
        // SAFETY: both are `ssize_t` options, read as `isize`.
        let (dirty, muzzy): (isize, isize) = unsafe {
            (
                tikv_jemalloc_ctl::raw::read(b"opt.dirty_decay_ms\0").unwrap(),
                tikv_jemalloc_ctl::raw::read(b"opt.muzzy_decay_ms\0").unwrap(),
            )
        };
        assert_eq!((dirty, muzzy), (1000, 0));
    }

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_takes_two_arenas_per_core_as_its_cap() {
        if std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max")) {
            assert_eq!(super::cap_arenas(), None);
        } else {
            let cores = std::thread::available_parallelism().unwrap().get();
            assert_eq!(super::cap_arenas(), Some(2 * cores));
        }
    }
}
