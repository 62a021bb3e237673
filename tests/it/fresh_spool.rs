//! A fresh spool in front of a destination that already holds files: a
//! lost or wiped volume, a pod on a new volume, a missing `sequence` file.
//! The new spool numbers its batches from 0 again, yet its files never land
//! on a path an earlier spool delivered, so nothing is refused, replaced or
//! silently dropped as "already there".
#![cfg(feature = "parquet")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::path::{Path, PathBuf};
use std::time::Duration;

use meathook::{FileSink, FlushPolicy, JsonLinesEncoder, Sink, SinkExt as _, WindowMeta};
use serde::{Deserialize, Serialize};
use time::macros::datetime;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reading {
    station: String,
    value: f64,
}

fn readings(from: u32, n: u32) -> Vec<Reading> {
    (from..from + n)
        .map(|i| Reading {
            station: format!("S{i:03}"),
            value: f64::from(i) * 0.5,
        })
        .collect()
}

/// Every JSON line under `root/data`, in no particular order.
fn landed(root: &Path) -> (Vec<PathBuf>, Vec<Reading>) {
    let mut files = Vec::new();
    let mut stack = vec![root.join("data")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    let rows = files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<Reading>>()
        })
        .collect();
    (files, rows)
}

/// One spool incarnation on `spool_dir`: ingests `records` into one hourly
/// window and flushes them to `dest`.
async fn run_once(spool_dir: &Path, dest: &Path, records: Vec<Reading>) {
    let sink = FileSink::new(dest.to_str().unwrap(), JsonLinesEncoder::new()).unwrap();
    let mut spool = sink
        .spooled(spool_dir, FlushPolicy::hourly())
        .with_flush_deadline(Duration::from_secs(30));
    let window = WindowMeta::instant("air_temperature", datetime!(2026-11-23 10:15 UTC));
    spool.ingest(&window, records).await.unwrap();
    spool.flush().await.unwrap();
    spool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_spool_never_lands_on_a_path_an_earlier_one_delivered() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dataset");
    let spool_dir = tmp.path().join("spool");

    // The first spool delivers three readings as batch 0-2 of its run.
    run_once(&spool_dir, &dest, readings(0, 3)).await;
    let (first, _) = landed(&dest);
    assert_eq!(first.len(), 1);

    // The volume is lost: the next spool starts from nothing, numbers its
    // first batch 0-2 again, in the same window.
    std::fs::remove_dir_all(&spool_dir).unwrap();
    run_once(&spool_dir, &dest, readings(100, 3)).await;

    // A sequence file lost on its own does the same.
    std::fs::remove_file(spool_dir.join("sequence")).unwrap();
    run_once(&spool_dir, &dest, readings(200, 3)).await;

    let (files, mut rows) = landed(&dest);
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files.contains(&first[0]), "the first file was replaced");
    rows.sort_by(|a, b| a.station.cmp(&b.station));
    let mut expected: Vec<Reading> = [0, 100, 200]
        .into_iter()
        .flat_map(|from| readings(from, 3))
        .collect();
    expected.sort_by(|a, b| a.station.cmp(&b.station));
    assert_eq!(rows, expected, "every reading exactly once");
}
