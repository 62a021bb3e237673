//! The `Sink` conformance suite against `FileSink` writing parquet to a local
//! directory, alone and behind a `BoxSink`.

#![allow(clippy::unwrap_used)] // tests: panics are failures

use crate::support;

use std::path::Path;

use meathook_core::BoxSink;
use meathook_parquet::layout;
use meathook_parquet::{FileSink, ParquetEncoder};
use meathook_testkit::conformance::{self, SinkHarness};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;
use time::OffsetDateTime;
use time::macros::datetime;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Row {
    station: String,
    seq: u64,
    value: f64,
    // Nanoseconds, whose range ends in 2262, so a record can be rejected.
    #[serde(with = "meathook_parquet::timestamp_ns")]
    at: OffsetDateTime,
}

fn row(i: usize, at: OffsetDateTime) -> Row {
    Row {
        station: format!("S{:03}", i % 64),
        seq: i as u64,
        value: i as f64 * 0.25,
        at,
    }
}

/// Every row in the data files under `dir`.
fn rows_under(dir: &Path) -> Vec<Row> {
    support::files_under(dir)
        .into_iter()
        .filter(|p| {
            p.starts_with(layout::DATA_DIR) && p.extension().is_some_and(|e| e == "parquet")
        })
        .flat_map(|p| support::read_records::<Row>(std::fs::read(dir.join(p)).unwrap()))
        .collect()
}

fn file_sink(dir: &Path) -> FileSink<Row, ParquetEncoder<Row>> {
    FileSink::new(dir.to_str().unwrap(), ParquetEncoder::new().unwrap()).unwrap()
}

/// `FileSink` over a fresh temporary directory. It refuses every batch when
/// `data` is a file, not a directory; a timestamp parquet cannot hold (in
/// 2300) is rejected alone.
struct Files;

impl SinkHarness<Row> for Files {
    type Sink = FileSink<Row, ParquetEncoder<Row>>;
    type Destination = TempDir;

    async fn sink(&mut self) -> (Self::Sink, TempDir) {
        let dir = tempfile::tempdir().unwrap();
        (file_sink(dir.path()), dir)
    }

    async fn refusing_sink(&mut self) -> Option<(Self::Sink, TempDir)> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(layout::DATA_DIR), b"not a directory").unwrap();
        Some((file_sink(dir.path()), dir))
    }

    async fn delivered(&mut self, dir: &TempDir) -> Vec<Row> {
        rows_under(dir.path())
    }

    fn record(&mut self, i: usize) -> Row {
        row(i, datetime!(2026-11-23 10:56 UTC))
    }

    fn rejected_record(&mut self, i: usize) -> Option<Row> {
        Some(row(i, datetime!(2300-01-01 0:00 UTC)))
    }

    fn is_terminal(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sink_conforms() {
    let report = conformance::check(&mut Files).await;
    assert!(report.skipped().is_empty(), "{report:?}");
}

/// The same sink, erased.
struct Boxed;

impl SinkHarness<Row> for Boxed {
    type Sink = BoxSink<Row>;
    type Destination = TempDir;

    async fn sink(&mut self) -> (Self::Sink, TempDir) {
        let (sink, dir) = Files.sink().await;
        (BoxSink::new(sink), dir)
    }

    async fn refusing_sink(&mut self) -> Option<(Self::Sink, TempDir)> {
        let (sink, dir) = Files.refusing_sink().await?;
        Some((BoxSink::new(sink), dir))
    }

    async fn delivered(&mut self, dir: &TempDir) -> Vec<Row> {
        rows_under(dir.path())
    }

    fn record(&mut self, i: usize) -> Row {
        Files.record(i)
    }

    fn rejected_record(&mut self, i: usize) -> Option<Row> {
        Files.rejected_record(i)
    }

    fn is_terminal(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_boxed_file_sink_conforms() {
    let report = conformance::check(&mut Boxed).await;
    assert!(report.skipped().is_empty(), "{report:?}");
}
