//! `cargo xtask demo`: the NEA example, offline, for about 20 seconds.
//!
//! Starts the fake NEA API on 127.0.0.1, runs the example against it with
//! one-second polls and ten-second windows into a temporary dataset, stops it
//! with SIGTERM (the drain delivers the open windows), then lists the files
//! written, their row counts and a few rows read back.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cmd::{cargo, run as sh, target_dir};

const RUN_FOR: Duration = Duration::from_secs(20);

pub(crate) fn run() -> Result<(), String> {
    sh(
        cargo([
            "build",
            "--quiet",
            "--all-features",
            "-p",
            "meathook",
            "--example",
            "nea_weather",
            "--example",
            "show_dataset",
        ]),
        "the example must build: `cargo build --example nea_weather`",
    )?;
    sh(
        cargo([
            "build",
            "--quiet",
            "-p",
            "meathook-testkit",
            "--bin",
            "fake-nea",
        ]),
        "the fake NEA server must build",
    )?;
    let bin = target_dir()?.join("debug");
    let dir = std::env::temp_dir().join(format!("meathook-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;

    let mut fake = Command::new(bin.join("fake-nea"))
        .args(["--port", "0", "--stations", "6"])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the fake NEA API: {e}"))?;
    let mut first_line = String::new();
    if let Some(out) = fake.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut first_line);
    }
    let base_url = first_line.trim().to_owned();
    let outcome = demo(&bin, &dir, &base_url);
    let _ = fake.kill();
    let _ = fake.wait();
    outcome
}

fn demo(bin: &Path, dir: &Path, base_url: &str) -> Result<(), String> {
    if !base_url.starts_with("http://") {
        return Err(format!(
            "the fake NEA API did not report its address (got {base_url:?})"
        ));
    }
    let dataset = dir.join("dataset");
    let config = dir.join("meathook.toml");
    let text = format!(
        "spool_dir = \"{spool}\"\n\n[flush]\nevery = \"10s\"\n\n[sink.files]\ndestination = \"{data}\"\n\n[api]\nbase_url = \"{base_url}\"\n\n\
         [collectors.air_temperature]\ninterval = \"1s\"\n\n[collectors.rainfall]\ninterval = \"1s\"\n\n[collectors.relative_humidity]\ninterval = \"1s\"\n",
        spool = dir.join("spool").display(),
        data = dataset.display(),
    );
    std::fs::write(&config, text).map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    eprintln!(
        "== demo: fake NEA API at {base_url}; collecting for {} s into {}",
        RUN_FOR.as_secs(),
        dataset.display()
    );
    let mut example = Command::new(bin.join("examples").join("nea_weather"))
        .arg(&config)
        .env_remove("HF_TOKEN")
        .spawn()
        .map_err(|e| format!("cannot start the example: {e}"))?;
    std::thread::sleep(RUN_FOR);
    let _ = Command::new("kill")
        .args(["-TERM", &example.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(status) = example.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = example.kill();
            return Err("the example did not stop within 40 s of SIGTERM".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if !status.success() {
        return Err(format!("the example exited with {status}"));
    }
    eprintln!("== demo: the example drained and exited 0; the dataset:");
    let mut show = Command::new(bin.join("examples").join("show_dataset"));
    show.arg(&dataset).arg("2");
    sh(
        show,
        "read the files with `cargo run --example show_dataset -- DIR`",
    )
}
