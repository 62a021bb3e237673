//! A million-record window through `ingest_chunks`: the file has the
//! expected row groups and every value. Memory is measured by
//! `cargo xtask bench parquet`, not here.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)] // tests: panics are failures

use crate::support;

use std::convert::Infallible;
use std::time::Duration;

use arrow_array::{Array, Float64Array, StringArray};
use meathook_core::{BatchId, RecordChunks, Sink, WindowMeta};
use meathook_parquet::{DEFAULT_ROW_GROUP_SIZE, FileSink, ParquetEncoder};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use support::*;
use time::macros::datetime;

const RECORDS: u64 = 1_000_000;
const CHUNK: u64 = 65_536;

struct Generated {
    next: u64,
}

impl RecordChunks<Reading> for Generated {
    type Error = Infallible;

    async fn next_chunk(&mut self) -> Result<Option<Vec<Reading>>, Infallible> {
        if self.next >= RECORDS {
            return Ok(None);
        }
        let end = (self.next + CHUNK).min(RECORDS);
        let chunk = (self.next..end).map(reading_at).collect();
        self.next = end;
        Ok(Some(chunk))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_records_stream_into_row_groups() {
    let dir = tempfile::tempdir().unwrap();
    let encoder = ParquetEncoder::<Reading>::new().unwrap();
    let mut sink = FileSink::new(dir.path().to_str().unwrap(), encoder).unwrap();
    let window = WindowMeta::containing(
        "readings",
        datetime!(2026-11-23 10:00 UTC),
        Duration::from_secs(3600),
    )
    .with_batch(BatchId::legacy(1, RECORDS));
    let receipt = sink
        .ingest_chunks(&window, Generated { next: 0 })
        .await
        .unwrap();
    assert_eq!(receipt.accepted(), RECORDS as usize);
    assert!(receipt.rejected().is_empty());

    let delivery = sink.last_delivery().unwrap().clone();
    assert_eq!(delivery.rows, RECORDS);
    let file = std::fs::File::open(dir.path().join(&delivery.path)).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let meta = builder.metadata().clone();
    let expected_groups = (RECORDS as usize).div_ceil(DEFAULT_ROW_GROUP_SIZE);
    assert_eq!(meta.num_row_groups(), expected_groups);
    assert!(
        meta.row_groups()
            .iter()
            .all(|rg| rg.num_rows() == DEFAULT_ROW_GROUP_SIZE as i64)
    );

    let mut i = 0u64;
    for batch in builder.with_batch_size(65_536).build().unwrap() {
        let batch = batch.unwrap();
        let col = |n: &str| batch.column_by_name(n).unwrap().clone();
        let station = col("station_id");
        let station = station.as_any().downcast_ref::<StringArray>().unwrap();
        let timestamp = col("timestamp");
        let timestamp = timestamp.as_any().downcast_ref::<StringArray>().unwrap();
        let value = col("value");
        let value = value.as_any().downcast_ref::<Float64Array>().unwrap();
        let unit = col("unit");
        let unit = unit.as_any().downcast_ref::<StringArray>().unwrap();
        for row in 0..batch.num_rows() {
            let want = reading_at(i);
            assert_eq!(station.value(row), want.station_id, "row {i}");
            assert_eq!(timestamp.value(row), want.timestamp, "row {i}");
            assert_eq!(value.value(row).to_bits(), want.value.to_bits(), "row {i}");
            assert_eq!(unit.value(row), want.unit, "row {i}");
            assert!(!value.is_null(row));
            i += 1;
        }
    }
    assert_eq!(i, RECORDS);
}
