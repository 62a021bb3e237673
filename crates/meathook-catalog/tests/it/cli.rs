//! The `meathook-catalog` command as a real process over a manifest the
//! library wrote: help and version, `--json` for each question, defaults
//! read from the manifest, a closed pipe, bad arguments; with the
//! `postgres` feature, `backfill --json` and the same answers from the
//! database.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: panics are failures

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use meathook_catalog::{MANIFEST_FILE, Manifest};
use meathook_core::{Delivery, DeliveryLog as _, WindowMeta};
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::datetime;

const BIN: &str = env!("CARGO_BIN_EXE_meathook-catalog");
const T0: OffsetDateTime = datetime!(2026-12-01 10:00 UTC);
const FIVE_MINUTES: Duration = Duration::from_secs(300);

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json(out: &Output) -> Value {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A manifest in `dir` of the 5-minute windows of 10:00–11:00 of pipeline
/// `air`, all but 10:15 and 10:35, the file of window `i` holding `10 + i`
/// rows; and one delivery of each of `others`.
fn manifest(dir: &Path, others: &[&str]) -> PathBuf {
    let manifest = Manifest::open(dir.join(MANIFEST_FILE)).unwrap();
    for i in (0..12).filter(|i| ![3, 7].contains(i)) {
        let at = T0 + time::Duration::minutes(5 * i);
        let window = WindowMeta::containing("air", at, FIVE_MINUTES);
        let path = format!("data/air/{i:02}.parquet");
        let rows = 10 + u64::try_from(i).unwrap();
        let mut delivery = Delivery::new(&window, "/data", path, rows, 1000, [7; 32]);
        // Whole seconds: PostgreSQL keeps microseconds, the manifest
        // nanoseconds, and the database test compares the two.
        delivery.delivered_at = window.end + time::Duration::seconds(30);
        manifest.record(&delivery).unwrap();
    }
    for other in others {
        let window = WindowMeta::containing(*other, T0, Duration::from_secs(3600));
        let path = format!("data/{other}/00.parquet");
        manifest
            .record(&Delivery::new(&window, "/data", path, 1, 1, [1; 32]))
            .unwrap();
    }
    manifest.path().to_path_buf()
}

const HOUR_RANGE: [&str; 4] = [
    "--from",
    "2026-12-01T10:00:00Z",
    "--to",
    "2026-12-01T11:00:00Z",
];

#[test]
fn help_and_version_exit_0_and_say_what_the_command_does() {
    let help = run(&["--help"]);
    assert_eq!(help.status.code(), Some(0), "{}", text(&help.stderr));
    let shown = text(&help.stdout);
    for expected in [
        "list",
        "gaps",
        "totals",
        "backfill",
        "--json",
        "Exit status",
        "2  usage error",
    ] {
        assert!(shown.contains(expected), "{expected:?} missing:\n{shown}");
    }
    let gaps_help = text(&run(&["gaps", "--help"]).stdout);
    for expected in ["--window <LEN>", "--manifest <FILE>", "--pipeline <NAME>"] {
        assert!(
            gaps_help.contains(expected),
            "{expected:?} missing:\n{gaps_help}"
        );
    }
    let version = run(&["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(
        text(&version.stdout),
        format!("meathook-catalog {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn json_answers_count_what_the_manifest_holds_with_pipeline_and_window_read_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = manifest(dir.path(), &[]);
    let m = path.to_str().unwrap();

    // Neither --pipeline nor --window: the manifest's one pipeline, and its
    // five-minute windows.
    let gaps = json(&run(&[
        &["gaps", "--json", "--manifest", m][..],
        &HOUR_RANGE,
    ]
    .concat()));
    assert_eq!(gaps["pipeline"], "air");
    assert_eq!(gaps["window_seconds"], 300);
    assert_eq!(gaps["from"], "2026-12-01T10:00:00Z");
    assert_eq!(
        gaps["gaps"],
        serde_json::json!([
            {"window_start": "2026-12-01T10:15:00Z", "window_end": "2026-12-01T10:20:00Z"},
            {"window_start": "2026-12-01T10:35:00Z", "window_end": "2026-12-01T10:40:00Z"},
        ])
    );
    // --json before the subcommand works too; an explicit --window wins.
    let hourly = json(&run(&[
        &["--json", "gaps", "--manifest", m, "--window", "1h"][..],
        &HOUR_RANGE,
    ]
    .concat()));
    assert_eq!(hourly["window_seconds"], 3600);
    assert_eq!(hourly["gaps"], serde_json::json!([]));

    let listed = json(&run(&[
        &["list", "--json", "--manifest", m][..],
        &HOUR_RANGE,
    ]
    .concat()));
    let deliveries = listed["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 10);
    let rows: u64 = deliveries.iter().map(|d| d["rows"].as_u64().unwrap()).sum();
    assert_eq!(
        rows,
        (0..12)
            .filter(|i| ![3, 7].contains(i))
            .map(|i| 10 + i)
            .sum::<u64>()
    );
    assert_eq!(deliveries[0]["path"], "data/air/00.parquet");
    assert_eq!(deliveries[0]["v"], 1, "a delivery is the manifest's record");

    let totals = json(&run(&[
        &["totals", "--json", "--manifest", m][..],
        &HOUR_RANGE,
    ]
    .concat()));
    assert_eq!(totals["pipeline"], Value::Null);
    assert_eq!(
        totals["totals"],
        serde_json::json!([
            {"pipeline": "air", "day": "2026-12-01", "files": 10, "rows": rows, "bytes": 10_000},
        ])
    );

    // The text report agrees, and says the window length it used.
    let text_gaps = run(&[&["gaps", "--manifest", m][..], &HOUR_RANGE].concat());
    assert_eq!(text_gaps.status.code(), Some(0));
    assert_eq!(
        text(&text_gaps.stdout),
        "window_start\twindow_end\n\
         2026-12-01T10:15:00Z\t2026-12-01T10:20:00Z\n\
         2026-12-01T10:35:00Z\t2026-12-01T10:40:00Z\n"
    );
    assert_eq!(
        text(&text_gaps.stderr),
        "2 window(s) of 5m without a delivery of air\n"
    );
}

#[test]
fn without_pipeline_a_manifest_of_several_pipelines_is_a_usage_error_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = manifest(dir.path(), &["rainfall"]);
    let m = path.to_str().unwrap();
    for question in ["list", "gaps"] {
        let out = run(&[&[question, "--manifest", m][..], &HOUR_RANGE].concat());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("Usage: meathook-catalog {question}"))
                && stderr.contains("2 pipelines: air, rainfall"),
            "{stderr}"
        );
    }
    // Named, it is answered; totals needs no pipeline.
    let rain = json(&run(&[
        &["list", "--json", "--manifest", m, "--pipeline", "rainfall"][..],
        &HOUR_RANGE,
    ]
    .concat()));
    assert_eq!(rain["deliveries"].as_array().unwrap().len(), 1);
    let totals = json(&run(&[
        &["totals", "--json", "--manifest", m][..],
        &HOUR_RANGE,
    ]
    .concat()));
    assert_eq!(totals["totals"].as_array().unwrap().len(), 2);
}

#[test]
fn a_closed_pipe_ends_the_output_quietly_with_status_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = manifest(dir.path(), &[]);
    // A week of one-minute gaps: about 420 KB, far more than a pipe holds,
    // so the command is still writing when the reader goes away.
    let mut child = Command::new(BIN)
        .args([
            "gaps",
            "--manifest",
            path.to_str().unwrap(),
            "--window",
            "1m",
        ])
        .args(["--from", "2026-12-01", "--to", "2026-12-08"])
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut header = String::new();
    reader.read_line(&mut header).unwrap();
    assert_eq!(header, "window_start\twindow_end\n");
    drop(reader);
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr, "", "a closed pipe is not an error");
}

#[test]
fn bad_arguments_exit_2_with_the_usage_and_failures_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = manifest(dir.path(), &[]);
    let m = path.to_str().unwrap();
    for args in [
        &[][..],
        &["frobnicate"][..],
        &["gaps", "--manifest", m, "--frob"][..],
        &[
            "list",
            "--manifest",
            m,
            "--from",
            "2026-12-02",
            "--to",
            "2026-12-01",
        ][..],
        &["backfill"][..],
    ] {
        let out = run(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("Usage: meathook-catalog"),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // A value that does not parse: status 2, the reason, and where to look.
    for (args, why) in [
        (["--window", "5w"], "\"5w\" is not a window length"),
        (["--from", "yesterday"], "\"yesterday\" is not a time"),
    ] {
        let out = run(&[&["gaps", "--manifest", m][..], &args].concat());
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(why) && stderr.contains("--help"),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let missing = dir.path().join("missing.jsonl");
    let out = run(&["totals", "--manifest", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("there is no delivery manifest at"),
        "{}",
        text(&out.stderr)
    );
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_json_and_the_database_give_the_manifests_answers() {
    use crate::support::{TestSchema, database_url};

    let schema = TestSchema::new("cli");
    let catalog = schema.connect().await;
    let dir = tempfile::tempdir().unwrap();
    let path = manifest(dir.path(), &[]);
    let m = path.to_str().unwrap();
    let url = database_url();
    let db = ["--database", &url, "--schema", &schema.name];
    let filled = json(&run(
        &[&["backfill", "--json", "--manifest", m][..], &db].concat()
    ));
    assert_eq!(filled["written"], 10);
    assert_eq!(filled["manifest"], m);
    assert_eq!(schema.count(&catalog).await, 10);

    for question in [
        &["gaps", "--pipeline", "air", "--window", "5m"][..],
        &["list", "--pipeline", "air"][..],
        &["totals"][..],
    ] {
        let from_db = json(&run(&[question, &["--json"], &db, &HOUR_RANGE].concat()));
        let from_manifest = json(&run(
            &[question, &["--json", "--manifest", m], &HOUR_RANGE].concat()
        ));
        assert_eq!(from_db, from_manifest, "{question:?}");
    }
    // Without --pipeline the database is not guessed at.
    let out = run(&[&["list"][..], &db, &HOUR_RANGE].concat());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    schema.drop(&catalog).await;
}
