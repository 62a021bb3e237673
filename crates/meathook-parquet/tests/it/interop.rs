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

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reading {
    id: u64,
    station: String,
    value: f64,
    #[serde(with = "meathook_parquet::timestamp")]
    at: time::OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Flow {
    id: u64,
    gauge: String,
    litres: i64,
    #[serde(with = "meathook_parquet::timestamp")]
    at: time::OffsetDateTime,
}

/// Two pipelines with different schemas in one directory, several windows
/// each: `datasets.load_dataset(dir, name=PIPELINE)` gives exactly one
/// pipeline's rows (through the dataset card), and DuckDB and polars read
/// the same rows; every reader sees the timestamps as microseconds UTC,
/// sub-microsecond digits truncated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_duckdb_and_polars_read_every_row_of_each_pipeline() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let root = dir.path().join("dataset");
    let hour = Duration::from_secs(3600);
    std::fs::create_dir_all(&root).unwrap();
    // The user's own card text stays.
    std::fs::write(root.join("README.md"), "# Weather\n\nCollected hourly.\n").unwrap();
    let start = datetime!(2026-11-23 08:00 UTC);
    // A nanosecond part the files cannot keep, and instants before 1970.
    let at = |i: u64| {
        let base = if i.is_multiple_of(5) {
            datetime!(1969-12-31 23:59:59 UTC)
        } else {
            start
        };
        base + time::Duration::nanoseconds(i as i64 * 1_234_567_891)
    };
    let micros = |t: time::OffsetDateTime| (t.unix_timestamp_nanos().div_euclid(1_000)) as i64;

    let root_str = root.to_str().unwrap();
    let mut readings = FileSink::new(root_str, ParquetEncoder::<Reading>::new().unwrap()).unwrap();
    let mut flows = FileSink::new(root_str, ParquetEncoder::<Flow>::new().unwrap()).unwrap();
    let (mut want_readings, mut want_flows) = (Vec::new(), Vec::new());
    for h in 0..3u32 {
        let batch: Vec<Reading> = (0..40)
            .map(|k| {
                let i = u64::from(h) * 100 + k;
                Reading {
                    id: i,
                    station: format!("S{}", i % 7),
                    value: i as f64 * 0.25 - 3.0,
                    at: at(i),
                }
            })
            .collect();
        want_readings.extend(batch.iter().map(|r| {
            serde_json::json!({"id": r.id, "station": r.station, "value": r.value, "at": micros(r.at)})
        }));
        let w = WindowMeta::containing("readings", start + hour * h, hour);
        readings.ingest(&w, batch).await.unwrap();

        let batch: Vec<Flow> = (0..25)
            .map(|k| {
                let i = u64::from(h) * 100 + k;
                Flow {
                    id: i,
                    gauge: format!("G{}", i % 3),
                    litres: -(i as i64) * 1_000,
                    at: at(i + 1),
                }
            })
            .collect();
        want_flows.extend(batch.iter().map(|f| {
            serde_json::json!({"id": f.id, "gauge": f.gauge, "litres": f.litres, "at": micros(f.at)})
        }));
        let w = WindowMeta::containing("flows", start + hour * h, hour);
        flows.ingest(&w, batch).await.unwrap();
    }
    let card = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        card.ends_with("---\n# Weather\n\nCollected hourly.\n"),
        "{card}"
    );

    let spec = serde_json::json!({
        "root": root,
        "key": "id",
        "timestamp": "at",
        "pipelines": {"readings": want_readings, "flows": want_flows},
    });
    let spec_path = dir.path().join("expected.json");
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/check_readers.py");
    let out = Command::new(python)
        .arg(script)
        .arg(&spec_path)
        .env("HF_HOME", cache.path().join("hf"))
        .env("HF_DATASETS_CACHE", cache.path().join("datasets"))
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_DATASETS_OFFLINE", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "reader check failed:\n{stdout}\n{stderr}"
    );
    // 3 × 40 readings and 3 × 25 flows, by each of the three readers.
    assert!(stdout.starts_with("OK: 585 rows"), "{stdout}");
}
