//! Parquet encoding of a million readings, all-distinct and sensor-like:
//! time, processor time (the encoder converts and encodes on two threads),
//! memory above the records, bytes per record, and the spool → parquet file path end to end, with the
//! spool's replay alone (into a sink that drops the records) as its baseline.
//!
//! Memory figures come from fresh child processes (this binary re-run with
//! `--scenario NAME`), so that one scenario's peak does not hide another's.
//!
//! The predecessor crate, `meathook-rs` 0.4.2, encodes the same two million
//! records with its own `ParquetEncoder` at its default settings
//! (uncompressed): the baseline program in `benches/baseline`, which
//! `cargo xtask bench parquet` builds and names in `MEATHOOK_BASELINE_BIN`.
//! Its figures carry an `old_crate_` prefix, followed by ours / old for
//! bytes per record and encode time. Without the baseline a note says why.
#![allow(missing_docs)] // a benchmark binary, not an API
#![allow(clippy::expect_used, clippy::cast_possible_truncation)] // aborts on a broken set-up; small fixed sizes

mod old_crate;
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use meathook::contracts::{ChunkedError, ChunkedResult, EncodeSession, Encoder, RecordChunks};
use meathook::spool::Durability;
use meathook::{
    DiskSpool, FileSink, FlushPolicy, IngestError, JsonLinesEncoder, ParquetEncoder, Receipt, Sink,
    WindowMeta,
};
use support::readings::{Reading, readings, sensor_readings};
use support::{best_of, figure, peak_rss_bytes};
use time::macros::datetime;

const RECORDS: usize = 1_000_000;
const MIB: f64 = 1024.0 * 1024.0;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--scenario") {
        let name = args.get(pos + 1).expect("scenario name");
        let dir = args.get(pos + 2).map(PathBuf::from);
        match name.as_str() {
            "encode-rss" => encode_rss(),
            "spool-fill" => spool_fill(&dir.expect("spool dir")),
            "spool-deliver" => spool_deliver(&dir.expect("spool dir")),
            "spool-replay" => spool_replay(&dir.expect("spool dir")),
            other => panic!("unknown scenario {other}"),
        }
        return;
    }

    let records = readings(0..RECORDS);
    let encoder = ParquetEncoder::<Reading>::new().expect("encoder");
    let cpu_before = support::cpu_seconds();
    let (took, bytes) = best_of(5, || encoder.encode(&records).expect("encode"));
    let cpu = (support::cpu_seconds() - cpu_before) / 5.0;
    let jsonl = JsonLinesEncoder::<Reading>::new();
    let (json_took, json_bytes) = best_of(3, || jsonl.encode(&records).expect("encode"));
    drop(records);
    figure("encode_1m_zstd_s", took.as_secs_f64(), "s", "<= 0.12");
    figure(
        "encode_1m_zstd_cpu_s",
        cpu,
        "s",
        "processor time per encode, both threads (mean of the 5 rounds)",
    );
    figure(
        "encode_1m_jsonl_s",
        json_took.as_secs_f64(),
        "s",
        "baseline: serde_json of the same records",
    );
    figure(
        "parquet_vs_jsonl_time",
        took.as_secs_f64() / json_took.as_secs_f64(),
        "x",
        "",
    );
    figure(
        "bytes_per_record",
        bytes.len() as f64 / RECORDS as f64,
        "B",
        &format!("jsonl: {:.1}", json_bytes.len() as f64 / RECORDS as f64),
    );

    // Sensor-like readings, against the all-distinct ones above and their
    // JSON lines as the baseline.
    let sensor = sensor_readings(RECORDS);
    let (sensor_took, sensor_out) = best_of(5, || encoder.encode(&sensor).expect("encode"));
    let sensor_bytes = sensor_out.len();
    let sensor_json = jsonl.encode(&sensor).expect("encode").len();
    drop(sensor);
    figure(
        "sensor_encode_1m_zstd_s",
        sensor_took.as_secs_f64(),
        "s",
        "sensor-like readings, best of 5",
    );
    figure(
        "sensor_bytes_per_record",
        sensor_bytes as f64 / RECORDS as f64,
        "B",
        &format!("jsonl: {:.1}", sensor_json as f64 / RECORDS as f64),
    );
    figure(
        "sensor_parquet_vs_jsonl_size",
        sensor_bytes as f64 / sensor_json as f64,
        "x",
        "",
    );

    // The predecessor crate on the same records, in its own process.
    if let Some(old) = old_crate::run(&["parquet"]) {
        let ours = |bytes: usize| bytes as f64 / RECORDS as f64;
        old.ratio(
            "bytes_per_record_vs_old_crate",
            ours(bytes.len()),
            "bytes_per_record",
            "all-distinct readings",
        );
        old.ratio(
            "sensor_bytes_per_record_vs_old_crate",
            ours(sensor_bytes),
            "sensor_bytes_per_record",
            "<= 1",
        );
        old.ratio(
            "sensor_bytes_per_record_vs_old_crate_zstd1",
            ours(sensor_bytes),
            "sensor_zstd1_bytes_per_record",
            "reference: its zstd level 1, not its default",
        );
        old.ratio(
            "encode_1m_vs_old_crate_time",
            took.as_secs_f64(),
            "encode_1m_s",
            "all-distinct readings, best of 5 each",
        );
        old.ratio(
            "sensor_encode_1m_vs_old_crate_time",
            sensor_took.as_secs_f64(),
            "sensor_encode_1m_s",
            "sensor-like readings, best of 5 each",
        );
    }

    let rss = child(&["encode-rss"]);
    figure(
        "encode_1m_rss_above_records_mib",
        parse(&rss, "rss_above_records"),
        "MiB",
        "<= 64",
    );

    let dir = std::env::temp_dir().join(format!("meathook-bench-parquet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_arg = dir.to_string_lossy().into_owned();
    child(&["spool-fill", &dir_arg]);
    let replay = child(&["spool-replay", &dir_arg]);
    let _ = std::fs::remove_dir_all(&dir);
    child(&["spool-fill", &dir_arg]);
    let out = child(&["spool-deliver", &dir_arg]);
    let _ = std::fs::remove_dir_all(&dir);
    figure(
        "spool_replay_1m_s",
        parse(&replay, "seconds"),
        "s",
        "baseline: the same replay into a sink that drops the records",
    );
    figure(
        "spool_to_parquet_1m_s",
        parse(&out, "seconds"),
        "s",
        "<= 0.4",
    );
    figure(
        "spool_to_parquet_1m_peak_rss_mib",
        parse(&out, "peak_rss"),
        "MiB",
        "<= 64 (whole process)",
    );
    figure("spool_to_parquet_files", parse(&out, "files"), "files", "");
}

/// Runs this binary with `--scenario args…` and returns its stdout.
fn child(args: &[&str]) -> String {
    let out = Command::new(std::env::current_exe().expect("exe"))
        .arg("--scenario")
        .args(args)
        .output()
        .expect("scenario child");
    assert!(
        out.status.success(),
        "scenario {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn parse(out: &str, key: &str) -> f64 {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {out}"))
}

fn report(key: &str, value: f64) {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{key}={value}").expect("stdout");
}

/// Peak memory of encoding a million records to a file, above the peak of
/// holding the records.
fn encode_rss() {
    let records = readings(0..RECORDS);
    let before = peak_rss_bytes().expect("/proc");
    let encoder = ParquetEncoder::<Reading>::new().expect("encoder");
    let path = std::env::temp_dir().join(format!("meathook-bench-{}.parquet", std::process::id()));
    let file = std::io::BufWriter::new(std::fs::File::create(&path).expect("file"));
    let mut session = encoder.begin(file).expect("begin");
    for chunk in records.chunks(65_536) {
        session.write(chunk).expect("write");
    }
    session.finish().expect("finish");
    let after = peak_rss_bytes().expect("/proc");
    let _ = std::fs::remove_file(&path);
    report("rss_above_records", (after - before) as f64 / MIB);
}

fn policy() -> FlushPolicy {
    FlushPolicy::new(Duration::from_secs(3600), 10_000_000).expect("policy")
}

fn window() -> WindowMeta {
    WindowMeta::instant("bench", datetime!(2026-11-23 10:30 UTC))
}

/// Spools a million records into one open window and stops without
/// delivering them.
fn spool_fill(dir: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let sink = FileSink::new(
            dir.join("out").to_string_lossy(),
            ParquetEncoder::<Reading>::new().expect("encoder"),
        )
        .expect("sink");
        let mut spool =
            DiskSpool::new(sink, dir.join("spool"), policy()).with_durability(Durability::Os);
        spool.open().await.expect("open");
        for start in (0..RECORDS).step_by(10_000) {
            spool
                .ingest(&window(), readings(start..start + 10_000))
                .await
                .expect("ingest");
        }
        spool.close().await;
    });
}

/// Reopens the spool and delivers everything to parquet files: the time and
/// the whole process's peak memory.
fn spool_deliver(dir: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let files = rt.block_on(async {
        let sink = FileSink::new(
            dir.join("out").to_string_lossy(),
            ParquetEncoder::<Reading>::new().expect("encoder"),
        )
        .expect("sink");
        let mut spool: DiskSpool<_, Reading> = DiskSpool::new(sink, dir.join("spool"), policy());
        spool.open().await.expect("open");
        spool.flush().await.expect("flush");
        spool.close().await;
        count_files(&dir.join("out").join("data"))
    });
    let took = started.elapsed();
    assert!(files > 0, "no parquet file was delivered");
    report("seconds", took.as_secs_f64());
    report("peak_rss", peak_rss_bytes().expect("/proc") as f64 / MIB);
    report("files", files as f64);
}

/// Reopens the spool and replays everything into [`Discard`]: the spool's
/// share of [`spool_deliver`].
fn spool_replay(dir: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let records = Arc::new(AtomicUsize::new(0));
    let sink = Discard {
        records: Arc::clone(&records),
    };
    rt.block_on(async {
        let mut spool: DiskSpool<_, Reading> = DiskSpool::new(sink, dir.join("spool"), policy());
        spool.open().await.expect("open");
        spool.flush().await.expect("flush");
        spool.close().await;
    });
    let took = started.elapsed();
    let records = records.load(Ordering::Relaxed);
    assert_eq!(records, RECORDS, "the replay lost records");
    report("seconds", took.as_secs_f64());
}

/// A terminal sink that counts the records it is given and drops them.
struct Discard {
    records: Arc<AtomicUsize>,
}

impl Sink<Reading> for Discard {
    type Error = std::convert::Infallible;

    async fn ingest(
        &mut self,
        _window: &WindowMeta,
        records: Vec<Reading>,
    ) -> Result<Receipt<Self::Error>, IngestError<Reading, Self::Error>> {
        self.records.fetch_add(records.len(), Ordering::Relaxed);
        Ok(Receipt::all(records.len()))
    }

    async fn ingest_chunks<C>(
        &mut self,
        _window: &WindowMeta,
        mut chunks: C,
    ) -> ChunkedResult<Self::Error, C::Error>
    where
        C: RecordChunks<Reading>,
        Reading: Send,
    {
        let mut taken = 0;
        while let Some(chunk) = chunks.next_chunk().await.map_err(ChunkedError::Source)? {
            taken += chunk.len();
        }
        self.records.fetch_add(taken, Ordering::Relaxed);
        Ok(Receipt::all(taken))
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                count_files(&p)
            } else {
                usize::from(p.extension().is_some_and(|x| x == "parquet"))
            }
        })
        .sum()
}
