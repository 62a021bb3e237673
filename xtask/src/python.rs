//! `cargo xtask ci python`: the Python environment the interop tests read
//! files with.
//!
//! Creates `target/venv` with `python3 -m venv` and installs pinned
//! versions of `pyarrow` (an independent parquet reader), `prometheus-client`
//! (an independent OpenMetrics parser), `moto[server]` (a local
//! S3-compatible server), `huggingface_hub` (the Hub's official client,
//! pointed at the fake Hub), `datasets` (how most readers open a dataset,
//! from the Hub or a directory), `duckdb` and `polars` (two more
//! engines that must read the files), and `kubernetes-validate` (the
//! Kubernetes API's schemas, offline, for the deploy example's manifests).
//! Re-running is cheap: nothing is installed
//! when the pins already match. The test step then sets
//! [`REQUIRE_ENV`], so a missing interpreter fails the tests instead of
//! skipping them.

use std::path::PathBuf;
use std::process::Command;

use crate::cmd::{root, run as sh};

/// The packages and the exact versions the tests were written against.
const PINS: &[&str] = &[
    "pyarrow==21.0.0",
    "moto[server]==5.1.10",
    "prometheus-client==0.26.0",
    "huggingface_hub==2.4.0",
    "datasets==4.1.1",
    "duckdb==2.0.1",
    "polars==2.1.0",
    "kubernetes-validate==1.37.0",
];

/// Set for the test step: tests that need the venv fail without it.
pub(crate) const REQUIRE_ENV: &str = "MEATHOOK_REQUIRE_PYTHON";

/// The venv's directory.
pub(crate) fn venv() -> PathBuf {
    root().join("target").join("venv")
}

fn python() -> PathBuf {
    venv().join("bin").join("python")
}

pub(crate) fn setup() -> Result<(), String> {
    let stamp = venv().join("meathook-pins.txt");
    let wanted = PINS.join("\n");
    if python().is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        eprintln!("  {} is up to date ({})", venv().display(), PINS.join(", "));
        return Ok(());
    }
    let mut create = Command::new("python3");
    create.args(["-m", "venv"]).arg(venv());
    sh(
        create,
        "install Python 3 with the venv module (Debian/Ubuntu: apt-get install python3-venv)",
    )?;
    let mut install = Command::new(python());
    install
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(PINS);
    sh(
        install,
        "PyPI must be reachable; delete target/venv and rerun `cargo xtask ci python`",
    )?;
    std::fs::write(&stamp, wanted).map_err(|e| format!("cannot write {}: {e}", stamp.display()))
}
