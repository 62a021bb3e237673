//! The `meathook-spool` command as a real process: help and version, the
//! JSON documents of `inspect` and `verify` over a spool directory written
//! by a real spool, `inspect --records`, a closed pipe, bad arguments.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use crate::support;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use meathook_core::Sink;
use meathook_spool::DiskSpool;
use serde_json::Value;
use support::{HOUR, Mode, Reading, Recorder, T0, at, hourly, quick_backoff, reading};

const BIN: &str = env!("CARGO_BIN_EXE_meathook-spool");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A spool directory as a stopped process leaves it, its inner sink having
/// refused everything: the hour at `T0` sealed with `sealed` records (in
/// two batches), the next hour open with `open` records, and a stray file.
/// Returns the sealed segment's path.
async fn spool_dir(dir: &Path, sealed: u64, open: u64) -> PathBuf {
    let out = Recorder::<Reading>::default();
    out.set_mode(Mode::Transient);
    let mut spool = DiskSpool::new(out, dir, hourly()).with_backoff(quick_backoff());
    spool.open().await.unwrap();
    let half = sealed / 2;
    spool
        .ingest(&at(0), (0..half).map(reading).collect())
        .await
        .unwrap();
    spool
        .ingest(&at(60), (half..sealed).map(reading).collect())
        .await
        .unwrap();
    spool.advance(T0 + HOUR).await.unwrap();
    spool
        .ingest(
            &at(3600 + 5),
            (sealed..sealed + open).map(reading).collect(),
        )
        .await
        .unwrap();
    spool.close().await;
    std::fs::write(dir.join("notes.txt"), "not a segment").unwrap();
    let mut sealed: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    assert_eq!(sealed.len(), 1, "{sealed:?}");
    sealed.remove(0)
}

#[test]
fn help_and_version_exit_0_and_say_what_the_command_does() {
    let help = run(&["--help"]);
    assert_eq!(help.status.code(), Some(0), "{}", text(&help.stderr));
    let shown = text(&help.stdout);
    for expected in ["inspect", "verify", "Exit status", "1  verify found damage"] {
        assert!(shown.contains(expected), "{expected:?} missing:\n{shown}");
    }
    let inspect_help = text(&run(&["inspect", "--help"]).stdout);
    for expected in ["--records <SEGMENT_FILE>", "--json", "2  usage error"] {
        assert!(
            inspect_help.contains(expected),
            "{expected:?} missing:\n{inspect_help}"
        );
    }
    let version = run(&["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(
        text(&version.stdout),
        format!("meathook-spool {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_and_verify_json_count_what_the_spool_wrote_and_verify_flags_damage() {
    let dir = tempfile::tempdir().unwrap();
    let sealed = spool_dir(dir.path(), 10, 3).await;

    let inspected = run(&["inspect", "--json", arg(dir.path())]);
    assert_eq!(
        inspected.status.code(),
        Some(0),
        "{}",
        text(&inspected.stderr)
    );
    let doc: Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(doc["totals"]["segments"], 2, "{doc:#}");
    assert_eq!(doc["totals"]["records"], 13, "{doc:#}");
    assert_eq!(doc["damaged"], false);
    let segments = doc["segments"].as_array().unwrap();
    let states: Vec<&str> = segments
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["sealed", "open"]);
    let records: Vec<u64> = segments
        .iter()
        .map(|s| s["records"].as_u64().unwrap())
        .collect();
    assert_eq!(records, [10, 3]);
    assert_eq!(segments[0]["pipeline"], "air");
    assert_eq!(segments[0]["window_start"], "2026-11-23T10:00:00Z");
    assert_eq!(segments[0]["window_end"], "2026-11-23T11:00:00Z");
    assert_eq!(segments[1]["window_start"], "2026-11-23T11:00:00Z");
    let bytes: u64 = segments.iter().map(|s| s["bytes"].as_u64().unwrap()).sum();
    assert_eq!(doc["totals"]["bytes"], bytes);
    assert_eq!(
        segments[0]["bytes"],
        std::fs::metadata(&sealed).unwrap().len()
    );
    let stray = doc["stray"].as_array().unwrap();
    assert_eq!(stray.len(), 1);
    assert!(stray[0].as_str().unwrap().ends_with("notes.txt"));
    assert!(doc["oldest_created"].is_string(), "{doc:#}");

    let verified = run(&["verify", "--json", arg(dir.path())]);
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        text(&verified.stdout)
    );
    let verified: Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(verified["damaged"], false);

    // A flipped byte in the payload of the sealed segment's first frame
    // (its header is the first frame magic, F5 4D 48 46; 40 bytes) costs
    // that frame's records.
    let mut damaged = std::fs::read(&sealed).unwrap();
    let frame = damaged
        .windows(4)
        .position(|w| w == [0xF5, 0x4D, 0x48, 0x46])
        .unwrap();
    damaged[frame + 45] ^= 0x40;
    std::fs::write(&sealed, damaged).unwrap();
    let verified = run(&["verify", "--json", arg(dir.path())]);
    assert_eq!(
        verified.status.code(),
        Some(1),
        "{}",
        text(&verified.stdout)
    );
    let doc: Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(doc["damaged"], true);
    let first = &doc["segments"][0];
    assert_eq!(first["lost"], 5, "{doc:#}");
    assert!(!first["problems"].as_array().unwrap().is_empty(), "{doc:#}");
    // The records that survive, and on standard error what was lost.
    let records = run(&["inspect", "--records", arg(&sealed)]);
    assert_eq!(records.status.code(), Some(0));
    let indexes: Vec<u64> = text(&records.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["index"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(indexes, [5, 6, 7, 8, 9], "the second frame's records");
    let stderr = text(&records.stderr);
    assert!(stderr.contains("5 records lost to damage"), "{stderr}");
    // Without --json: the same verdict, in text.
    let verified = run(&["verify", arg(dir.path())]);
    assert_eq!(verified.status.code(), Some(1));
    assert!(text(&verified.stdout).ends_with("verify: damage found\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_records_prints_each_record_written_with_its_window_and_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let sealed = spool_dir(dir.path(), 10, 3).await;
    let out = run(&["inspect", "--records", arg(&sealed)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "an undamaged segment has no notes");
    let lines: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 10);
    let first_seq = lines[0]["seq"].as_u64().unwrap();
    for (i, line) in (0u64..).zip(&lines) {
        assert_eq!(
            line["record"],
            serde_json::to_value(reading(i)).unwrap(),
            "{line}"
        );
        assert_eq!(line["seq"], first_seq + i);
        assert_eq!(line["index"], i);
        assert_eq!(line["pipeline"], "air");
        assert_eq!(line["window_start"], "2026-11-23T10:00:00Z");
        assert_eq!(line["window_end"], "2026-11-23T11:00:00Z");
        assert_eq!(line["incarnation"].as_str().unwrap().len(), 16, "{line}");
        // Two batches of five: one frame each.
        assert_eq!(line["frame"]["count"], 5, "{line}");
        assert_eq!(line["frame"]["index"], i / 5 * 5, "{line}");
        assert_eq!(line["frame"]["first_seq"], first_seq + i / 5 * 5, "{line}");
    }
    assert_eq!(lines[0]["incarnation"], lines[9]["incarnation"]);
    // --json changes nothing: the records are JSON already.
    let with_json = run(&["inspect", "--json", "--records", arg(&sealed)]);
    assert_eq!(with_json.stdout, out.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_the_output_quietly_with_status_0() {
    let dir = tempfile::tempdir().unwrap();
    // About 1.5 MB of JSON lines: far more than a pipe holds, so the
    // command is still writing when the reader goes away.
    let sealed = spool_dir(dir.path(), 8000, 1).await;
    let mut child = Command::new(BIN)
        .args(["inspect", "--records", arg(&sealed)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    reader.read_line(&mut first).unwrap();
    let line: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(line["index"], 0);
    drop(reader);
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr, "", "a closed pipe is not an error");
}

#[test]
fn bad_arguments_exit_2_with_the_usage() {
    for args in [
        &["frobnicate"][..],
        &["inspect"][..],
        &["verify"][..],
        &["inspect", "--no-such-flag", "."][..],
        &["inspect", ".", "--records", "x.seg"][..],
    ] {
        let out = run(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("Usage: meathook-spool"),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn a_directory_or_segment_that_cannot_be_read_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let out = run(&["verify", arg(&missing)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot read spool directory"),
        "{}",
        text(&out.stderr)
    );
    let not_a_segment = dir.path().join("00000000000000000001.seg");
    std::fs::write(&not_a_segment, "not a spool segment. ".repeat(10)).unwrap();
    let out = run(&["inspect", "--records", arg(&not_a_segment)]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot read segment file") && stderr.contains("bad magic"),
        "{stderr}"
    );
}
