//! `meathook compact` as a user runs it: a real process over a dataset
//! directory, its answers in text and JSON, the manifest record, and bad
//! arguments.
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used)] // test helpers: a failed set-up step fails the test

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use meathook::contracts::{BatchId, Sink as _, WindowMeta};
use serde::{Deserialize, Serialize};

const BIN: &str = env!("CARGO_BIN_EXE_meathook");

#[derive(Debug, Serialize, Deserialize)]
struct Reading {
    station: String,
    value: f64,
}

/// Three hourly files of `air` on 2026-01-01 and one on 2026-01-02.
async fn dataset(dir: &Path) {
    let mut sink = meathook::parquet::FileSink::new(
        dir.to_str().unwrap(),
        meathook::ParquetEncoder::<Reading>::new().unwrap(),
    )
    .unwrap();
    for hour in [0u64, 1, 2, 24] {
        let start =
            time::macros::datetime!(2026-01-01 00:00 UTC) + time::Duration::hours(hour as i64);
        let window = WindowMeta::containing("air", start, Duration::from_secs(3600))
            .with_batch(BatchId::legacy(hour * 10, hour * 10 + 1));
        let readings = (0..2)
            .map(|i| Reading {
                station: format!("S{i}"),
                value: hour as f64,
            })
            .collect();
        sink.ingest(&window, readings).await.unwrap();
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn files_in(folder: &Path) -> usize {
    std::fs::read_dir(folder).unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_compacts_finished_days_and_records_them_in_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("dataset");
    dataset(&root).await;
    let manifest = dir.path().join("deliveries.jsonl");
    let out = run(&[
        "compact",
        root.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let compacted = answer["compacted"].as_array().unwrap();
    // The first day has three files; the second has one, left as it is.
    assert_eq!(compacted.len(), 1, "{answer}");
    assert_eq!(compacted[0]["folder"], "data/air/2026-01-01");
    assert_eq!(compacted[0]["replaced"], 3);
    assert_eq!(compacted[0]["rows"], 6);
    assert_eq!(answer["unchanged"], 1);
    assert_eq!(answer["failed"].as_array().unwrap().len(), 0);
    assert_eq!(files_in(&root.join("data/air/2026-01-01")), 2);
    assert_eq!(files_in(&root.join("data/air/2026-01-02")), 1);
    let mut records = Vec::new();
    meathook::catalog::for_each_record(&manifest, |r| records.push(r)).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].replaces.len(), 3);

    // Text, for one day named: a header and nothing compacted.
    let out = run(&[
        "compact",
        root.to_str().unwrap(),
        "--pipeline",
        "air",
        "--date",
        "2026-01-02",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        ["folder\tfile\treplaced\trows\tbytes_before\tbytes_after"]
    );
}

#[test]
fn bad_arguments_exit_2_and_a_missing_directory_exits_1() {
    for args in [
        vec!["compact", ".", "--date", "2026-01-01"],
        vec!["compact", ".", "--pipeline", "air", "--date", "1 Jan"],
        vec!["compact", ".", "--horizon", "2 hours"],
        vec!["compact", ".", "--layout", "flat"],
        vec!["compact", "ftp://host/dataset"],
        vec!["compact"],
        vec!["squash"],
    ] {
        let out = run(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // An object store (here an empty one in memory): nothing to do.
    let out = run(&["compact", "memory://bucket/prefix", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["compacted"].as_array().unwrap().len(), 0);
    let out = run(&["compact", "/nonexistent/dataset"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/dataset"));
}

/// A dataset on the (fake) Hub: the day is compacted in one commit, with
/// the token from `HF_TOKEN` and the endpoint from `HF_ENDPOINT`; without a
/// token the command says so and starts nothing.
#[cfg(feature = "huggingface")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_compacts_a_day_of_a_dataset_on_the_hub() {
    use meathook_testkit::hub::{FakeHub, FakeHubConfig, TokenRole};
    let token = "hf_compact_token_51c2";
    let hub = FakeHub::start(FakeHubConfig {
        tokens: [(token.to_owned(), TokenRole::Write)].into(),
        ..FakeHubConfig::default()
    })
    .await
    .unwrap();
    hub.create_repo("org/weather");
    let scratch = tempfile::tempdir().unwrap();
    let mut sink = meathook::HfSink::<Reading>::new(reqwest::Client::new(), "org/weather", token)
        .with_endpoint(hub.endpoint())
        .with_scratch_dir(scratch.path())
        .with_coalesce(Duration::from_millis(10))
        .with_commit_budget(100_000, Duration::from_secs(3600));
    for hour in 0..3u64 {
        let start =
            time::macros::datetime!(2026-01-01 00:00 UTC) + time::Duration::hours(hour as i64);
        let window = WindowMeta::containing("air", start, Duration::from_secs(3600))
            .with_batch(BatchId::legacy(hour * 10, hour * 10 + 1));
        let readings = (0..2)
            .map(|i| Reading {
                station: format!("S{i}"),
                value: hour as f64,
            })
            .collect();
        sink.ingest(&window, readings).await.unwrap();
    }
    let args = [
        "compact",
        "hf://datasets/org/weather",
        "--pipeline",
        "air",
        "--date",
        "2026-01-01",
        "--commits-per-hour",
        "100000",
        "--json",
    ];
    let endpoint = hub.endpoint();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(args)
            .env("HF_ENDPOINT", endpoint)
            .env("HF_TOKEN", token)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains(token), "the token is in the output");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["compacted"][0]["replaced"], 3, "{answer}");
    let folder: Vec<String> = hub
        .files("org/weather", "main")
        .into_iter()
        .filter(|f| f.path.starts_with("data/air/2026-01-01/"))
        .map(|f| f.path)
        .collect();
    assert_eq!(folder.len(), 2, "{folder:?}");

    let endpoint = hub.endpoint();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["compact", "hf://datasets/org/weather"])
            .env("HF_ENDPOINT", endpoint)
            .env_remove("HF_TOKEN")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HF_TOKEN"));
}
