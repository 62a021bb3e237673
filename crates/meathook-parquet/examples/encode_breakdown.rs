//! Where the time of encoding a million readings goes.
//!
//! `cargo run --release -p meathook-parquet --example encode_breakdown [RECORDS]`
//!
//! Times, fastest of five rounds each: `ParquetEncoder::encode` end to end;
//! serde_arrow converting the records into row-group-sized arrow batches
//! with the encoder's schema; and the parquet crate writing those ready
//! batches on one thread with the encoder's settings, then without
//! statistics and without compression, for comparison. The conversion and
//! the writing run on two threads in the encoder, so its time is near the
//! larger of the two when two cores are free, and near their sum when one
//! is. Run it under `perf record` to see the functions.
// A measuring tool: it reports on stdout and aborts on a broken set-up.
#![allow(clippy::print_stdout, clippy::expect_used)]
#![allow(clippy::cast_possible_truncation)] // small fixed sizes

use std::time::Instant;

use arrow_array::RecordBatch;
use meathook_core::Encoder;
use meathook_parquet::{DEFAULT_ROW_GROUP_SIZE, ParquetEncoder};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};
use time::macros::datetime;

/// The reading record of the benchmarks.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reading {
    station_id: String,
    timestamp: String,
    value: f64,
    unit: String,
}

/// The benchmark's readings: 64 stations, RFC 3339 timestamps, distinct
/// values.
fn readings(count: usize) -> Vec<Reading> {
    let stations: Vec<String> = (0..64).map(|i| format!("S{:03}", 100 + i)).collect();
    let start = datetime!(2026-11-23 10:00 UTC);
    (0..count)
        .map(|i| Reading {
            station_id: stations[i % 64].clone(),
            timestamp: (start + time::Duration::milliseconds((i / 64) as i64 * 3_600))
                .format(&time::format_description::well_known::Rfc3339)
                .expect("format"),
            value: 20.0 + ((i as u64).wrapping_mul(2_654_435_761) % 1_000_003) as f64 * 1e-5,
            unit: "deg C".to_owned(),
        })
        .collect()
}

/// The fastest of five rounds, in seconds, and the last result.
fn fastest<T>(mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut out = f();
    for _ in 0..5 {
        let started = Instant::now();
        out = f();
        best = best.min(started.elapsed().as_secs_f64());
    }
    (best, out)
}

/// The encoder's settings for this record type (see `parquet.rs`).
fn settings() -> WriterPropertiesBuilder {
    let zstd = ZstdLevel::try_new(meathook_parquet::DEFAULT_ZSTD_LEVEL).expect("level");
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(zstd))
        .set_max_row_group_row_count(Some(DEFAULT_ROW_GROUP_SIZE))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_column_dictionary_enabled(ColumnPath::from("value"), false)
        .set_column_encoding(ColumnPath::from("value"), Encoding::BYTE_STREAM_SPLIT)
}

fn write(batches: &[RecordBatch], props: WriterProperties) -> Vec<u8> {
    let mut writer =
        ArrowWriter::try_new(Vec::new(), batches[0].schema(), Some(props)).expect("writer");
    for batch in batches {
        writer.write(batch).expect("write");
        writer.flush().expect("flush");
    }
    writer.into_inner().expect("finish")
}

fn main() {
    let count = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let records = readings(count);
    let per_record = |bytes: &[u8]| bytes.len() as f64 / count as f64;

    let encoder = ParquetEncoder::<Reading>::new().expect("encoder");
    let (took, bytes) = fastest(|| encoder.encode(&records).expect("encode"));
    println!(
        "ParquetEncoder::encode              {took:.4} s  {:.3} B/record",
        per_record(&bytes)
    );

    let fields = encoder.schema().fields().to_vec();
    let (took, batches) = fastest(|| {
        records
            .chunks(DEFAULT_ROW_GROUP_SIZE)
            .map(|chunk| serde_arrow::to_record_batch(&fields, &chunk).expect("convert"))
            .collect::<Vec<_>>()
    });
    println!("serde_arrow, records to arrow       {took:.4} s");

    let variants = [
        ("parquet from arrow, same settings ", settings().build()),
        (
            "parquet from arrow, no statistics ",
            settings()
                .set_statistics_enabled(EnabledStatistics::None)
                .build(),
        ),
        (
            "parquet from arrow, uncompressed  ",
            settings()
                .set_compression(Compression::UNCOMPRESSED)
                .build(),
        ),
    ];
    for (name, props) in variants {
        let (took, bytes) = fastest(|| write(&batches, props.clone()));
        println!("{name}  {took:.4} s  {:.3} B/record", per_record(&bytes));
    }
}
