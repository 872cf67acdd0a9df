//! `cargo xtask pgo`: the release binaries optimised with a profile of the gateway's own work
//! (profile-guided optimisation on top of the release profile's whole-program optimisation).
//!
//! 1. Build `gateway`, `departments` and the bench binaries (`integration-tests`) instrumented
//!    (`-Cprofile-generate`). For the host target named explicitly, so the flags reach neither
//!    build scripts nor proc macros, and the output stays apart from `target/release`.
//! 2. Run the training load with them: the lookup bench (loaded and unloaded lookups through
//!    the adapter, the pass-through and the load generator), then the case bench (applications
//!    accepted and delivered), so the case paths are not optimised as cold code. Every process
//!    writes its counts when it exits.
//! 3. Merge the counts with the toolchain's `llvm-profdata` (the `llvm-tools` component,
//!    added when missing).
//! 4. Build the same binaries again with `-Cprofile-use`.
//!
//! The result is in `target/<host>/release/`; `cargo xtask bench --pgo` measures it, its
//! pass-through and load generator built the same way as the gateway.

use crate::{bench_command, cargo, run};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Build the trained binaries; returns the directory that holds them.
pub fn build(root: &Path) -> anyhow::Result<PathBuf> {
    let host = host_triple()?;
    let profdata = llvm_profdata(&host)?;
    let work = root.join("target/pgo");
    let raw = work.join("raw");
    if raw.exists() {
        std::fs::remove_dir_all(&raw).with_context(|| format!("clearing {}", raw.display()))?;
    }
    std::fs::create_dir_all(&raw)?;
    let binaries = root.join("target").join(&host).join("release");

    build_binaries(
        &host,
        &format!("-Cprofile-generate={}", raw.display()),
        &["--bin", "bench", "--bin", "bench_cases"],
    )?;
    train(root, &binaries, &raw)?;
    let merged = work.join("merged.profdata");
    let mut merge = Command::new(&profdata);
    merge.arg("merge").arg("-o").arg(&merged).arg(&raw);
    run(merge)?;
    build_binaries(
        &host,
        &format!("-Cprofile-use={}", merged.display()),
        &["--bins"],
    )?;
    eprintln!(
        "profile-guided release binaries: {} (gateway, departments and the bench binaries)",
        binaries.display()
    );
    Ok(binaries)
}

/// `gateway`, `departments` and the bench binaries named by `benches`, built with `rustflag`
/// (the training needs two of the four bench binaries; the bench compares all four).
fn build_binaries(host: &str, rustflag: &str, benches: &[&str]) -> anyhow::Result<()> {
    let mut build = cargo();
    build
        .args(["build", "--release", "--target", host])
        .args(["-p", "gateway", "--bin", "gateway"])
        .args(["-p", "departments", "--bin", "departments"])
        .args(["-p", "integration-tests"])
        .args(benches)
        // The encoded form takes one flag whole: a path with a space in it stays one flag.
        .env("CARGO_ENCODED_RUSTFLAGS", rustflag);
    run(build)
}

/// The training load: what the gateway does in a hall, lookups and cases.
fn train(root: &Path, binaries: &Path, raw: &Path) -> anyhow::Result<()> {
    let profile_file = raw.join("%m_%p.profraw");
    let instrumented = |name: &str| {
        let mut command = bench_command(root, binaries, name);
        command.env("LLVM_PROFILE_FILE", &profile_file);
        command
    };
    let mut lookups = instrumented("bench");
    lookups
        .arg("--binaries")
        .arg(binaries)
        .args(["--calls", "1000", "--fairness-seconds", "0"]);
    run(lookups)?;
    run(instrumented("bench_cases"))?;
    let written = std::fs::read_dir(raw)?.count();
    if written == 0 {
        bail!("the training load wrote no profile to {}", raw.display());
    }
    Ok(())
}

/// The host's target triple, as rustc names it.
fn host_triple() -> anyhow::Result<String> {
    let output = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_string)
        .context("rustc -vV named no host")
}

/// The toolchain's own `llvm-profdata` (its profile format is the one rustc's LLVM writes).
fn llvm_profdata(host: &str) -> anyhow::Result<PathBuf> {
    let output = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .context("running rustc --print sysroot")?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let tool = sysroot
        .join("lib/rustlib")
        .join(host)
        .join("bin/llvm-profdata");
    if !tool.exists() {
        let mut add = Command::new("rustup");
        add.args(["component", "add", "llvm-tools"]);
        run(add)?;
    }
    if !tool.exists() {
        bail!(
            "{} is missing after `rustup component add llvm-tools`",
            tool.display()
        );
    }
    Ok(tool)
}
