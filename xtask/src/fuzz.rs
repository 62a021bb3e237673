//! `cargo xtask fuzz [TARGET] [--seconds N]`: runs one fuzz target, or each
//! in turn, for N seconds (60 by default) with libFuzzer through
//! `cargo fuzz`, installing cargo-fuzz if it is missing.
//!
//! The fuzz crate (`fuzz/`) is outside the workspace, with its own target
//! directory. It builds on a stable toolchain: `RUSTC_BOOTSTRAP=1` lets
//! stable rustc take the `-Z` flags cargo-fuzz passes (sanitizer coverage,
//! AddressSanitizer). Targets build in release mode without debug
//! assertions, as users build the crates: an overflow that wraps shows up
//! as a broken invariant of the harness, not as a panic.
//!
//! - `fuzz/corpus/TARGET`: the committed seed corpus, read only;
//! - `fuzz/target/corpus/TARGET`: what the fuzzer learns, kept between runs
//!   (not committed);
//! - `fuzz/fixtures/TARGET`: every crash, hang or huge allocation found is
//!   copied here; commit it with its fix. `cargo test` replays both committed
//!   directories (`tests/it/fuzz_corpus.rs` in meathook-spool and meathook-hf),
//!   so CI needs no cargo-fuzz.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{root, run as sh};

/// The targets, with what each fuzzes.
const TARGETS: &[(&str, &str)] = &[
    (
        "spool_recovery",
        "segment files through inspect, recovery and delivery",
    ),
    (
        "hub_answers",
        "Hub answers through the HF sink's decoders and card merge",
    ),
];

const DEFAULT_SECONDS: u64 = 60;

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut target = None;
    let mut seconds = DEFAULT_SECONDS;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--seconds needs a whole number")?;
            }
            name if TARGETS.iter().any(|(t, _)| *t == name) => target = Some(name.to_owned()),
            other => {
                let names: Vec<&str> = TARGETS.iter().map(|(t, _)| *t).collect();
                return Err(format!(
                    "unknown fuzz argument {other:?}; targets: {}",
                    names.join(", ")
                ));
            }
        }
    }
    ensure_cargo_fuzz()?;
    let mut found = Vec::new();
    for (name, what) in TARGETS {
        if target.as_deref().is_some_and(|t| t != *name) {
            continue;
        }
        eprintln!("== fuzz: {name} ({what}), {seconds} s");
        if let Err(e) = fuzz_one(name, seconds) {
            found.push(e);
        }
    }
    if found.is_empty() {
        Ok(())
    } else {
        Err(found.join("\n"))
    }
}

fn fuzz_dir() -> PathBuf {
    root().join("fuzz")
}

fn ensure_cargo_fuzz() -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let present = Command::new(&cargo)
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    eprintln!("== fuzz: installing cargo-fuzz");
    let mut install = Command::new(&cargo);
    install.args(["install", "cargo-fuzz", "--locked"]);
    sh(
        install,
        "install it by hand: cargo install cargo-fuzz --locked",
    )
}

fn fuzz_one(name: &str, seconds: u64) -> Result<(), String> {
    let dir = fuzz_dir();
    let learned = dir.join("target").join("corpus").join(name);
    let seeds = dir.join("corpus").join(name);
    let artifacts = dir.join("artifacts").join(name);
    for d in [&learned, &seeds, &artifacts] {
        std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }
    // The fuzz crate builds the workspace's crates with the workspace's
    // versions: its lockfile starts as a copy of the workspace's.
    let lock = dir.join("Cargo.lock");
    std::fs::copy(root().join("Cargo.lock"), &lock).map_err(|e| {
        format!(
            "cannot copy the workspace's Cargo.lock to {}: {e}",
            lock.display()
        )
    })?;
    let before = files(&artifacts);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&dir)
        .env("RUSTC_BOOTSTRAP", "1")
        // The harnesses keep one runtime, and its threads, for the whole
        // run: the thread-local destructors and thread handles still live
        // at exit read as leaks. A leak is no memory-safety bug in Rust.
        .env("ASAN_OPTIONS", "detect_leaks=0:detect_odr_violation=0")
        .args(["fuzz", "run", "--release", name])
        .arg(&learned)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        // A hang is any input that takes 10 s; a huge allocation is any
        // single one above 256 MiB, or 2 GiB in all.
        .args(["-timeout=10", "-malloc_limit_mb=256", "-rss_limit_mb=2048"])
        .arg("-detect_leaks=0")
        .arg("-print_final_stats=1");
    if let Some(tmp) = scratch_dir() {
        // The spool target fsyncs its scratch spools: keep them in memory.
        cmd.env("TMPDIR", tmp);
    }
    let result = sh(
        cmd,
        "the input that failed is saved in fuzz/fixtures; replay it with cargo test --test it fuzz_corpus",
    );
    let fixtures = dir.join("fixtures").join(name);
    let mut saved = Vec::new();
    for found in files(&artifacts) {
        if before.contains(&found) {
            continue;
        }
        std::fs::create_dir_all(&fixtures)
            .map_err(|e| format!("cannot create {}: {e}", fixtures.display()))?;
        let Some(file) = found.file_name() else {
            continue;
        };
        let to = fixtures.join(file);
        std::fs::copy(&found, &to)
            .map_err(|e| format!("cannot copy {} to {}: {e}", found.display(), to.display()))?;
        saved.push(to.display().to_string());
    }
    match (result, saved.is_empty()) {
        (Ok(()), true) => Ok(()),
        (Ok(()), false) => Err(format!("{name}: saved {}", saved.join(", "))),
        (Err(e), _) => Err(format!("{name}: {e}\n  saved: {}", saved.join(", "))),
    }
}

/// A directory in memory for scratch files, if the system has one.
fn scratch_dir() -> Option<PathBuf> {
    let shm = Path::new("/dev/shm");
    let dir = shm.join("meathook-fuzz");
    (shm.is_dir() && std::fs::create_dir_all(&dir).is_ok()).then_some(dir)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.sort();
    out
}
