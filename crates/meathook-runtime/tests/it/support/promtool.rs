//! Prometheus' own parsers, through `promtool` (from `cargo xtask ci
//! promtool`), for the tests that check the metrics exposition.
#![allow(clippy::expect_used)] // a test helper: a step that cannot run fails the test

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `promtool` (`MEATHOOK_PROMTOOL`, else the one `cargo xtask ci promtool`
/// unpacked into `target/promtool/`, else one on `PATH`), or `None` with a
/// message when there is none. Under `cargo xtask ci`, which sets
/// `MEATHOOK_REQUIRE_PROMTOOL`, a missing `promtool` panics: the tests fail
/// instead of skipping.
pub fn path() -> Option<PathBuf> {
    let unpacked = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/promtool/promtool");
    let candidate = std::env::var_os("MEATHOOK_PROMTOOL")
        .map(PathBuf::from)
        .or_else(|| unpacked.is_file().then(|| unpacked.clone()))
        .or_else(|| {
            let out = Command::new("sh")
                .args(["-c", "command -v promtool"])
                .output()
                .ok()?;
            let found = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            (out.status.success() && !found.is_empty()).then(|| PathBuf::from(found))
        });
    if let Some(found) = candidate.filter(|p| p.is_file()) {
        return Some(found);
    }
    let hint = format!(
        "no promtool at {} or on PATH: run `cargo xtask ci promtool` to unpack it",
        unpacked.display()
    );
    assert!(
        std::env::var_os("MEATHOOK_REQUIRE_PROMTOOL").is_none(),
        "{hint}"
    );
    eprintln!("SKIPPED: {hint}");
    None
}

/// `promtool check metrics`: Prometheus' parser of the text format 0.0.4
/// (the one node_exporter's textfile collector uses) and its lint. `Err`
/// holds what it said when it found a problem.
pub fn check_metrics(promtool: &Path, text: &str) -> Result<(), String> {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let text = text.to_owned();
    // Written from a thread: a large text must not block on a full pipe
    // while promtool's answer waits to be read.
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let out = child.wait_with_output().expect("promtool runs");
    writer
        .join()
        .expect("writer")
        .expect("text written to promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("promtool check metrics: {}: {said}", out.status))
    }
}

/// Prometheus' OpenMetrics parser (the scraper's), through `promtool tsdb
/// create-blocks-from openmetrics`. Backfilling needs a timestamp on each
/// sample, so one is appended to every sample line (prometheus-client
/// writes neither timestamps nor exemplars); the blocks land in a scratch
/// directory that is removed again.
pub fn check_openmetrics(promtool: &Path, text: &str) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!(
        "meathook-openmetrics-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let stamped: String = text
        .lines()
        .map(|line| {
            if line.starts_with('#') {
                format!("{line}\n")
            } else {
                format!("{line} 1700000000\n")
            }
        })
        .collect();
    let input = dir.join("metrics.om");
    std::fs::write(&input, stamped).expect("scratch file");
    let out = Command::new(promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(dir.join("blocks"))
        .output()
        .expect("promtool runs");
    let _ = std::fs::remove_dir_all(&dir);
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "promtool's OpenMetrics parser: {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The `# TYPE` lines of an exposition: family name → type.
pub fn types(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| (name.to_owned(), kind.to_owned()))
        .collect()
}

/// The series of an exposition (`name{labels}` of each sample line).
pub fn series(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' ').map(|(series, _)| series.to_owned()))
        .collect()
}
