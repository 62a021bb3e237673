//! The predecessor crate, `meathook-rs` 0.4.2, measured on the benchmarks'
//! own inputs, so that `benches/parquet.rs` and `benches/spool.rs` can set
//! their figures beside it in the same run.
//!
//! ```text
//! meathook-baseline parquet          its ParquetEncoder, default settings
//! meathook-baseline os_ingest DIR    its JSON-lines spool tier, in DIR
//! ```
//!
//! Each prints `figure<TAB>key<TAB>value<TAB>unit<TAB>target` lines, the
//! benchmarks' format; the benchmarks print them again with an `old_crate_`
//! prefix.
//!
//! - `parquet`: the million all-distinct readings of `benches/parquet.rs`
//!   (`readings`) and its million sensor-like ones (`sensor_readings`), from
//!   the benchmarks' own `support/readings.rs`, each encoded by
//!   `ParquetEncoder::default()` (uncompressed, the crate's default) into one
//!   file: bytes per record and encode time (best of 5 each, as ours).
//!   For reference,
//!   the same with `ParquetEncoder<Zstd>` (zstd level 1), which is not its
//!   default.
//! - `os_ingest`: 1,000 batches × 100 records of `benches/spool.rs` (`batch`)
//!   ingested into `Tier<JsonlStore>` (hourly windows, every batch in one
//!   window, a terminal sink that counts): records a second over the
//!   ingests alone, best of 5 runs, each in a fresh directory. The crate
//!   has no setting that leaves durability to the OS: `JsonlStore::append`
//!   always calls `fsync` on the segment (and on the directory when the
//!   segment is new) before it returns. On tmpfs that call writes nothing to
//!   a device, which makes this the nearest to our spool with
//!   `Durability::Os`.
#![allow(clippy::print_stdout)] // stdout is the report channel

#[path = "../../support/mod.rs"]
mod support;

use std::convert::Infallible;
use std::path::Path;
use std::time::{Duration, Instant};

use meathook::{Encoder, FlushPolicy, JsonlStore, ParquetEncoder, Sink, Tier, WindowMeta, Zstd};
use support::readings::{PER_BATCH, Reading, batch, readings, sensor_readings};
use support::{best_of, figure};
use time::macros::datetime;

const RECORDS: usize = 1_000_000;
const BATCHES: usize = 1000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("parquet") => parquet(),
        Some("os_ingest") => match args.get(1) {
            Some(dir) => os_ingest(Path::new(dir)),
            None => usage(),
        },
        _ => usage(),
    }
}

fn usage() {
    eprintln!("usage: meathook-baseline parquet | meathook-baseline os_ingest DIR");
    std::process::exit(2);
}

fn parquet() {
    const DEFAULT: &str = "ParquetEncoder::default() (uncompressed)";
    const ZSTD: &str = "reference: ParquetEncoder<Zstd> (level 1), not the default";
    let per_record = |bytes: &[u8]| bytes.len() as f64 / RECORDS as f64;
    let encoder = ParquetEncoder::default();
    let zstd = ParquetEncoder::<Zstd>::new();

    let records = readings(0..RECORDS);
    let (took, bytes) = best_of(5, || encoder.encode(&records).expect("encode"));
    let zstd_bytes = zstd.encode(&records).expect("encode");
    drop(records);
    figure("encode_1m_s", took.as_secs_f64(), "s", DEFAULT);
    figure("bytes_per_record", per_record(&bytes), "B", DEFAULT);
    figure("zstd1_bytes_per_record", per_record(&zstd_bytes), "B", ZSTD);

    let sensor = sensor_readings(RECORDS);
    let (took, bytes) = best_of(5, || encoder.encode(&sensor).expect("encode"));
    let zstd_bytes = zstd.encode(&sensor).expect("encode");
    drop(sensor);
    figure("sensor_encode_1m_s", took.as_secs_f64(), "s", DEFAULT);
    figure("sensor_bytes_per_record", per_record(&bytes), "B", DEFAULT);
    figure(
        "sensor_zstd1_bytes_per_record",
        per_record(&zstd_bytes),
        "B",
        ZSTD,
    );
}

/// The terminal sink: counts what the tier hands on (nothing, while every
/// batch is in the open window).
struct Count(usize);

impl Sink<Reading> for Count {
    type Error = Infallible;

    async fn ingest(&mut self, _: &WindowMeta, records: Vec<Reading>) -> Result<(), Infallible> {
        self.0 += records.len();
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// One window meta per batch, `i` milliseconds into the same hour, as
/// `benches/spool.rs` stamps them.
fn at(i: usize) -> WindowMeta {
    let t = datetime!(2026-11-23 10:00 UTC) + time::Duration::milliseconds(i as i64);
    WindowMeta {
        pipeline: "bench".to_owned(),
        start: t,
        end: t,
    }
}

/// Ingests the 1,000 batches into a fresh tier in `dir`; the time of the
/// ingests alone.
fn ingest_run(runtime: &tokio::runtime::Runtime, dir: &Path) -> Duration {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("spool dir");
    let input: Vec<Vec<Reading>> = (0..BATCHES).map(batch).collect();
    runtime.block_on(async {
        let mut tier = Tier::new(
            JsonlStore::new(dir.join("bench")),
            FlushPolicy::hourly(),
            Count(0),
        );
        let started = Instant::now();
        for (i, b) in input.into_iter().enumerate() {
            tier.ingest(&at(i), b).await.expect("ingest");
        }
        let took = started.elapsed();
        assert_eq!(tier.inner().0, 0, "the open window was delivered early");
        took
    })
}

fn os_ingest(base: &Path) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = base.join("old-crate-os-ingest");
    let best = (0..5)
        .map(|_| ingest_run(&runtime, &dir))
        .min()
        .expect("five runs");
    let _ = std::fs::remove_dir_all(&dir);
    figure(
        "os_records_per_s",
        (BATCHES * PER_BATCH) as f64 / best.as_secs_f64(),
        "records/s",
        "Tier<JsonlStore>, hourly: fsync per ingest (no OS-durability setting), best of 5",
    );
}
