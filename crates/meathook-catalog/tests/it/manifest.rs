//! The manifest behind a real file sink, without a database: attempts are
//! counted across retries of one batch, and a refused record fails the
//! sink's `ingest` so the batch is offered again.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: panics are failures

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use meathook_catalog::{MANIFEST_FILE, Manifest, read_chunk};
use meathook_core::{
    BatchId, Deliveries, Delivery, DeliveryLog, DeliveryLogError, ErrorClass, Sink, SinkError,
    WindowMeta,
};
use meathook_parquet::{FileSink, JsonLinesEncoder};
use serde::{Deserialize, Serialize};
use time::macros::datetime;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reading {
    station: String,
    value: f64,
}

/// Refuses the first `refusals` records, then writes to the manifest.
#[derive(Debug)]
struct RefusesFirst {
    manifest: Manifest,
    refusals: u32,
    calls: AtomicU32,
}

impl DeliveryLog for RefusesFirst {
    fn record(&self, delivery: &Delivery) -> Result<(), DeliveryLogError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.refusals {
            return Err(DeliveryLogError::Write {
                log: self.manifest.path().display().to_string(),
                path: delivery.path.clone(),
                action: "appending",
                source: std::io::Error::other("disk full"),
            });
        }
        self.manifest.record(delivery)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_record_fails_ingest_and_the_retry_counts_its_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = Manifest::open(dir.path().join(MANIFEST_FILE)).unwrap();
    let log = Deliveries::new(RefusesFirst {
        manifest: manifest.clone(),
        refusals: 2,
        calls: AtomicU32::new(0),
    });
    let out = dir.path().join("out");
    let mut sink: FileSink<Reading, _> =
        FileSink::new(out.to_str().unwrap(), JsonLinesEncoder::new())
            .unwrap()
            .with_deliveries(log);
    sink.open().await.unwrap();
    let window = WindowMeta::containing(
        "air",
        datetime!(2026-12-01 10:00 UTC),
        Duration::from_secs(3600),
    )
    .with_batch(BatchId::legacy(1, 2));
    let batch = vec![
        Reading {
            station: "S1".into(),
            value: 1.0,
        },
        Reading {
            station: "S2".into(),
            value: 2.0,
        },
    ];
    for _ in 0..2 {
        let err = sink.ingest(&window, batch.clone()).await.unwrap_err();
        assert_eq!(err.records().len(), 2, "the records are handed back");
        assert_eq!(err.error().class(), ErrorClass::Transient);
        assert!(
            err.error()
                .to_string()
                .contains("not recorded in the catalog"),
            "{}",
            err.error()
        );
    }
    assert_eq!(
        sink.file_counts(),
        (1, 1),
        "landed once, found by the retry"
    );
    sink.ingest(&window, batch.clone()).await.unwrap();
    let records = read_chunk(manifest.path(), 0, 10).unwrap().records;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].attempts, 3);
    assert_eq!(records[0].rows, 2);

    // Another batch starts counting again.
    let next = window.clone().with_batch(BatchId::legacy(3, 4));
    sink.ingest(&next, batch).await.unwrap();
    let records = read_chunk(manifest.path(), 0, 10).unwrap().records;
    assert_eq!(records[1].attempts, 1);
}

/// A manifest path that is a FIFO or a symlink is refused at open, never
/// waited on or appended through.
#[test]
fn a_manifest_that_is_a_fifo_or_symlink_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.jsonl");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"keep me\n").unwrap();
    let link = dir.path().join("link.jsonl");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    for path in [&fifo, &link] {
        let err = Manifest::open(path).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me\n");
}
