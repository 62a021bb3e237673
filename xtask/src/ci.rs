//! `cargo xtask ci`: the checks a submission must pass, in order.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::cmd::{cargo, output, run as sh};

type Step = fn() -> Result<(), String>;

const STEPS: &[(&str, Step)] = &[
    ("fmt", fmt),
    ("clippy", clippy),
    ("python", crate::python::setup),
    ("postgres", crate::postgres::ensure),
    ("test", test),
    ("doc", doc),
    ("features", features),
    ("deny", deny),
];

/// Feature sets that matter: the default, the bare core, and everything.
const FEATURE_SETS: &[&[&str]] = &[&[], &["--no-default-features"], &["--all-features"]];

/// Crates that `--no-default-features` must not pull in.
const HEAVY_CRATES: &[&str] = &[
    "reqwest",
    "hyper",
    "arrow",
    "parquet",
    "object_store",
    "serde_arrow",
    "tokio-postgres",
];

pub(crate) fn run_step(name: &str) -> Result<(), String> {
    let (_, step) = STEPS
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| format!("unknown ci step {name:?}; steps: {}", step_names()))?;
    step()
}

fn step_names() -> String {
    STEPS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

pub(crate) fn run(step: Option<&str>) -> Result<(), String> {
    if let Some(step) = step {
        return run_step(step);
    }
    let started = Instant::now();
    for (name, step) in STEPS {
        eprintln!("== ci: {name}");
        let t = Instant::now();
        step().map_err(|e| {
            format!("ci step {name} failed: {e}\n  rerun alone: cargo xtask ci {name}")
        })?;
        eprintln!("== ci: {name} ok ({:.0} s)", t.elapsed().as_secs_f64());
    }
    eprintln!(
        "== ci: all steps passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn fmt() -> Result<(), String> {
    sh(
        cargo(["fmt", "--all", "--", "--check"]),
        "run `cargo fmt --all` and commit the result",
    )
}

fn clippy() -> Result<(), String> {
    for features in FEATURE_SETS {
        let mut cmd = cargo(["clippy", "--workspace", "--all-targets", "--locked"]);
        cmd.args(*features).args(["--", "-D", "warnings"]);
        let hint = format!(
            "fix the warnings above (`cargo clippy --workspace --all-targets {} --fix --allow-dirty` fixes some); \
             an `allow` needs a comment saying why",
            features.join(" ")
        );
        sh(cmd, &hint)?;
    }
    Ok(())
}

fn test() -> Result<(), String> {
    let mut cmd = cargo(["test", "--workspace", "--all-features", "--locked"]);
    // Interop tests read files with pyarrow from the `python` step's venv;
    // here a missing venv is a failure, not a skip.
    cmd.env(crate::python::REQUIRE_ENV, "1").env(
        "MEATHOOK_PYTHON",
        crate::python::venv().join("bin").join("python"),
    );
    sh(
        cmd,
        "run the failing test alone with `cargo test -p <crate> --test <file> <name>` and read its message",
    )
}

fn doc() -> Result<(), String> {
    let mut cmd = cargo([
        "doc",
        "--workspace",
        "--no-deps",
        "--all-features",
        "--locked",
    ]);
    cmd.env("RUSTDOCFLAGS", "-D warnings");
    sh(
        cmd,
        "fix the broken links or missing docs named above; `cargo doc --no-deps --open` shows the result",
    )
}

/// The bare facade must pull in no HTTP, arrow or parquet crate.
fn features() -> Result<(), String> {
    let tree = output(cargo([
        "tree",
        "--locked",
        "-e",
        "normal",
        "--no-default-features",
        "-p",
        "meathook",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ]))?;
    let offenders: Vec<&str> = tree
        .lines()
        .filter(|line| {
            let name = line.split_whitespace().next().unwrap_or("");
            HEAVY_CRATES.contains(&name)
        })
        .collect();
    if offenders.is_empty() {
        eprintln!(
            "  --no-default-features pulls in none of {}",
            HEAVY_CRATES.join(", ")
        );
        Ok(())
    } else {
        Err(format!(
            "--no-default-features pulls in {}\n  how to fix: make the dependency optional behind the `parquet` or \
             `huggingface` feature, or `postgres` for the catalog (see `cargo tree -e normal --no-default-features -p meathook -i <crate>`)",
            offenders.join(", ")
        ))
    }
}

fn deny() -> Result<(), String> {
    if cargo(["deny", "--version"])
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        eprintln!("  cargo-deny is missing; installing it");
        sh(
            cargo(["install", "--locked", "cargo-deny"]),
            "install it by hand: cargo install --locked cargo-deny",
        )?;
    }
    sh(
        cargo([
            "deny",
            "--all-features",
            "check",
            "bans",
            "licenses",
            "sources",
        ]),
        "read the report above; licences are allowed in deny.toml, bans list why a crate is refused",
    )?;
    if advisory_db_reachable() {
        sh(
            cargo(["deny", "--all-features", "check", "advisories"]),
            "update or replace the crate named in the advisory",
        )
    } else {
        eprintln!(
            "  advisories: skipped, the advisory database (github.com) is not reachable from this machine"
        );
        Ok(())
    }
}

fn advisory_db_reachable() -> bool {
    let Ok(mut addrs) = ("github.com", 443).to_socket_addrs() else {
        return false;
    };
    addrs.any(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_ok())
}
