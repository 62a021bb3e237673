//! Files the sink wrote, read by a reader nobody here wrote: pyarrow
//! compares every value with what was ingested, bit for bit for floats.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)] // tests: panics are failures

use crate::support;

use std::process::Command;
use std::time::Duration;

use meathook_core::{BatchId, Sink, WindowMeta};
use meathook_parquet::{FileSink, ParquetEncoder};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde::{Deserialize, Serialize};
use support::*;
use time::macros::datetime;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct V1 {
    station: String,
    value: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct V2 {
    station: String,
    value: f64,
    #[serde(default)]
    humidity: Option<f64>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyarrow_reads_back_every_value_the_sink_was_given() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let hour = Duration::from_secs(3600);

    // Random stations (NaN payloads, ±Inf, u64 extremes, empty lists) and
    // fixed ones, over several windows and batches, in small row groups.
    let encoder = ParquetEncoder::<Station>::builder()
        .with_row_group_size(50)
        .build()
        .unwrap();
    let mut sink = FileSink::new(root, encoder).unwrap();
    let mut runner = TestRunner::deterministic();
    let mut files = Vec::new();
    for b in 0..4u64 {
        let mut records: Vec<Station> = (0..120)
            .map(|_| station().new_tree(&mut runner).unwrap().current())
            .collect();
        records.extend((0..80).map(|i| station_at(b * 1000 + i)));
        let window = WindowMeta::containing(
            "stations",
            datetime!(2026-11-23 08:00 UTC) + hour * b as u32,
            hour,
        );
        let window = if b % 2 == 0 {
            window.with_batch(BatchId::legacy(b * 200, b * 200 + 199))
        } else {
            window
        };
        sink.ingest(&window, records.clone()).await.unwrap();
        let delivery = sink.last_delivery().unwrap();
        files.push(serde_json::json!({
            "path": dir.path().join(&delivery.path),
            "rows": records.iter().map(station_json).collect::<Vec<_>>(),
        }));
    }

    // Schema evolution: a release adds an optional column.
    let mut old = FileSink::new(root, ParquetEncoder::<V1>::new().unwrap()).unwrap();
    let mut new = FileSink::new(root, ParquetEncoder::<V2>::new().unwrap()).unwrap();
    let w = |h: u32| {
        WindowMeta::containing("evolving", datetime!(2026-11-23 00:00 UTC) + hour * h, hour)
    };
    old.ingest(
        &w(0),
        (0..30)
            .map(|i| V1 {
                station: format!("S{i}"),
                value: f64::from(i),
            })
            .collect(),
    )
    .await
    .unwrap();
    new.ingest(
        &w(1),
        (0..20)
            .map(|i| V2 {
                station: format!("S{i}"),
                value: 0.5,
                humidity: Some(f64::from(i)),
            })
            .collect(),
    )
    .await
    .unwrap();

    let spec = serde_json::json!({
        "files": files,
        "datasets": [{
            "dir": dir.path().join("data/evolving"),
            "rows": 50,
            "null_column": "humidity",
            "nulls": 30,
        }],
    });
    let spec_path = dir.path().join("expected.json");
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/check_parquet.py");
    let out = Command::new(python)
        .arg(script)
        .arg(&spec_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pyarrow check failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.starts_with("OK: 4 files"), "{stdout}");
}
