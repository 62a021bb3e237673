//! Compaction of a local dataset directory (`meathook::parquet::Compactor`):
//!
//! 1. one day of 20 pipelines with 5-minute windows (288 files each, 5,760
//!    in all, 320 sensor readings a file): the time to compact it and the
//!    peak memory (`VmHWM`) of the process that does, which is this binary
//!    run again with `MEATHOOK_BENCH_SCENARIO=compact` so that writing the
//!    dataset does not count; five runs, each on a fresh copy (hard links)
//!    of the dataset, as min / median / max;
//! 2. files and bytes of the day before and after, and their ratio;
//! 3. DuckDB (the `duckdb` module of the venv `cargo xtask ci python`
//!    makes) answering a query over a month of 2 pipelines (2 × 30 days ×
//!    288 files, 17,280 files and 5.5 M readings) before and after the
//!    month is compacted, five interleaved pairs as min / median / max
//!    (the query alone, timed inside Python), and the ratio of each pair;
//!    both answers are checked to be the same. Without the venv a note on
//!    stderr says so and these figures are left out.
//!
//! The readings follow the sensor-like model of `support::readings`
//! (64 stations, one reading a minute each, one decimal, each drifting
//! slowly), with a timestamp column instead of a string, each pipeline and
//! day its own series. Files are written by `FileSink` with
//! `ParquetEncoder`, each window a batch with a sequence range, at the paths
//! a spool's deliveries take. Everything is under the target directory (a
//! real disk); the files compacted were just written, so they are read from
//! the page cache (a compaction two hours after the day ends may find its
//! early hours evicted).
#![allow(missing_docs)] // a benchmark binary, not an API
#![allow(
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::print_stdout
)] // aborts on a broken set-up; figures are floats; stdout is the report channel

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use meathook::contracts::BatchId;
use meathook::parquet::compact::DEFAULT_HORIZON;
use meathook::parquet::local::SCRATCH_DIR;
use meathook::parquet::{CompactionReport, Compactor};
use meathook::{FileSink, ParquetEncoder, Sink as _, WindowMeta};
use serde::{Deserialize, Serialize};
use support::{figure, peak_rss_bytes, spread};
use time::macros::{date, datetime};
use time::{Date, OffsetDateTime};

const SCENARIO: &str = "MEATHOOK_BENCH_SCENARIO";
/// The dataset directory the `compact` scenario compacts.
const DIR: &str = "MEATHOOK_BENCH_DIR";

const STATIONS: usize = 64;
const WINDOW_MINUTES: usize = 5;
const WINDOWS_PER_DAY: usize = 24 * 60 / WINDOW_MINUTES;
const ROWS_PER_FILE: usize = STATIONS * WINDOW_MINUTES;

/// The day compacted in part 1, and its pipelines.
const DAY: Date = date!(2026 - 03 - 02);
const DAY_PIPELINES: usize = 20;
/// The month queried in part 3, and its pipelines.
const MONTH_START: Date = date!(2026 - 04 - 01);
const MONTH_DAYS: usize = 30;
const MONTH_PIPELINES: usize = 2;
/// Late enough that every day above ended a horizon before.
const NOW: OffsetDateTime = datetime!(2026-06-01 00:00 UTC);

/// Runs of each timed figure.
const RUNS: usize = 5;
/// Tasks writing a dataset at once, each with its own sink.
const WRITERS: usize = 8;
const MIB: f64 = 1024.0 * 1024.0;

/// A reading as a weather API reports it, with its time as a timestamp
/// column.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sensor {
    station_id: String,
    #[serde(with = "meathook::parquet::timestamp")]
    timestamp: OffsetDateTime,
    value: f64,
    unit: String,
}

fn pipeline(i: usize) -> String {
    format!("sensors_{i:02}")
}

/// One day of pipeline `p`, window by window: 64 stations, a reading a
/// minute each, one decimal, each station drifting slowly from a level
/// between 24 and 32 (the model of `support::readings::sensor_readings`).
fn day_windows(p: usize, day: Date) -> Vec<Vec<Sensor>> {
    let stations: Vec<String> = (0..STATIONS).map(|i| format!("S{:03}", 100 + i)).collect();
    let mut rng = fastrand::Rng::with_seed(((p as u64) << 32) | u64::from(day.ordinal()));
    let mut level: Vec<f64> = (0..STATIONS).map(|_| 24.0 + rng.f64() * 8.0).collect();
    let midnight = day.midnight().assume_utc();
    (0..WINDOWS_PER_DAY)
        .map(|w| {
            let mut rows = Vec::with_capacity(ROWS_PER_FILE);
            for m in 0..WINDOW_MINUTES {
                let at = midnight + time::Duration::minutes((w * WINDOW_MINUTES + m) as i64);
                for (s, station) in stations.iter().enumerate() {
                    level[s] = (level[s] + (rng.f64() - 0.5) * 0.2).clamp(20.0, 36.0);
                    rows.push(Sensor {
                        station_id: station.clone(),
                        timestamp: at,
                        value: (level[s] * 10.0).round() / 10.0,
                        unit: "deg C".to_owned(),
                    });
                }
            }
            rows
        })
        .collect()
}

/// Writes `pipelines` × `days` with `FileSink`, one file a window, each
/// window a batch whose sequence range continues the pipeline's previous
/// one (as a spool numbers them).
fn write_dataset(root: &Path, pipelines: usize, days: &[Date]) {
    let started = Instant::now();
    let jobs: Vec<(usize, usize)> = (0..pipelines)
        .flat_map(|p| (0..days.len()).map(move |d| (p, d)))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let tasks: Vec<_> = (0..WRITERS)
            .map(|t| {
                let mine: Vec<(usize, Date, usize)> = jobs
                    .iter()
                    .skip(t)
                    .step_by(WRITERS)
                    .map(|&(p, d)| (p, days[d], d))
                    .collect();
                let url = root.to_string_lossy().into_owned();
                tokio::spawn(async move {
                    let mut sink =
                        FileSink::new(url, ParquetEncoder::<Sensor>::new().expect("encoder"))
                            .expect("sink");
                    sink.open().await.expect("open");
                    for (p, day, d) in mine {
                        let name = pipeline(p);
                        for (w, rows) in day_windows(p, day).into_iter().enumerate() {
                            let first = ((d * WINDOWS_PER_DAY + w) * ROWS_PER_FILE) as u64;
                            let at = day.midnight().assume_utc()
                                + time::Duration::minutes((w * WINDOW_MINUTES) as i64);
                            let window = WindowMeta::containing(
                                name.as_str(),
                                at,
                                std::time::Duration::from_secs(60 * WINDOW_MINUTES as u64),
                            )
                            .with_batch(BatchId::legacy(first, first + ROWS_PER_FILE as u64 - 1));
                            sink.ingest(&window, rows).await.expect("ingest");
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("writer task");
        }
    });
    eprintln!(
        "   wrote {} files in {:.1} s",
        jobs.len() * WINDOWS_PER_DAY,
        started.elapsed().as_secs_f64()
    );
}

/// Parquet files under `root/data` and their bytes.
fn parquet_files(root: &Path) -> (u64, u64) {
    fn walk(dir: &Path, out: &mut (u64, u64)) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("dir entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            if meta.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "parquet") {
                out.0 += 1;
                out.1 += meta.len();
            }
        }
    }
    let mut out = (0, 0);
    walk(&root.join("data"), &mut out);
    out
}

/// A copy of the dataset `from` at `to` made of hard links: compaction
/// reads parts and never changes them, so every run starts from the same
/// files without writing them again. The scratch folder is left out.
fn link_tree(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).expect("copy dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().expect("file type").is_dir() {
            if entry.file_name() != SCRATCH_DIR {
                link_tree(&src, &dst);
            }
        } else {
            std::fs::hard_link(&src, &dst).expect("hard link");
        }
    }
}

/// Compacts `root` as a deployment would (every day that ended the default
/// horizon before [`NOW`]); panics on any folder that failed.
fn compact(root: &Path) -> CompactionReport {
    let report = Compactor::local(root)
        .with_horizon(DEFAULT_HORIZON)
        .run(NOW)
        .expect("compaction");
    if !report.failed.is_empty() {
        for (folder, e) in &report.failed {
            eprintln!("{folder}: {e}");
        }
        panic!("{} folders failed to compact", report.failed.len());
    }
    report
}

/// The `compact` scenario: compacts the directory in [`DIR`] and prints,
/// for the parent, the time, the peak memory and what the report says.
fn compact_scenario() {
    let root = PathBuf::from(std::env::var_os(DIR).expect("MEATHOOK_BENCH_DIR"));
    let rss_at_start = peak_rss_bytes().expect("/proc");
    let cpu = support::cpu_seconds();
    let started = Instant::now();
    let report = compact(&root);
    let took = started.elapsed();
    let cpu = support::cpu_seconds() - cpu;
    let peak = peak_rss_bytes().expect("/proc");
    let sum = |f: fn(&meathook::parquet::Compacted) -> u64| -> u64 {
        report.compacted.iter().map(f).sum()
    };
    let lines = [
        ("seconds", took.as_secs_f64()),
        ("cpu_seconds", cpu),
        ("rss_at_start_mib", rss_at_start as f64 / MIB),
        ("peak_rss_mib", peak as f64 / MIB),
        ("folders", report.compacted.len() as f64),
        ("unchanged", report.unchanged as f64),
        ("replaced", sum(|c| c.replaced as u64) as f64),
        ("rows", sum(|c| c.rows) as f64),
        ("bytes_before", sum(|c| c.bytes_before) as f64),
        ("bytes_after", sum(|c| c.bytes_after) as f64),
    ];
    for (key, value) in lines {
        println!("compact\t{key}\t{value}");
    }
}

/// Runs the `compact` scenario on `root` in a child process; its lines.
fn compact_child(root: &Path) -> impl Fn(&str) -> f64 {
    let out = Command::new(std::env::current_exe().expect("own path"))
        .env(SCENARIO, "compact")
        .env(DIR, root)
        .output()
        .expect("run the compact scenario");
    assert!(
        out.status.success(),
        "the compact scenario failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    move |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("compact\t{key}\t")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} from the compact scenario in {text}"))
    }
}

/// Part 1 and 2: the day of 20 pipelines.
fn day(base: &Path) {
    let pristine = base.join("day");
    eprintln!("   writing one day of {DAY_PIPELINES} pipelines");
    write_dataset(&pristine, DAY_PIPELINES, &[DAY]);
    let (files_before, bytes_before) = parquet_files(&pristine);
    let expected_files = (DAY_PIPELINES * WINDOWS_PER_DAY) as u64;
    assert_eq!(files_before, expected_files, "files written");
    let expected_rows = (expected_files as usize * ROWS_PER_FILE) as f64;

    let run_dir = base.join("day-run");
    let (mut took, mut cpu, mut peak, mut at_start) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut after = (0, 0);
    for run in 0..RUNS {
        link_tree(&pristine, &run_dir);
        let line = compact_child(&run_dir);
        after = parquet_files(&run_dir);
        // What the report says against what is on disk.
        assert_eq!(line("folders"), DAY_PIPELINES as f64, "folders compacted");
        assert_eq!(line("replaced"), files_before as f64, "parts replaced");
        assert_eq!(line("rows"), expected_rows, "rows compacted");
        assert_eq!(line("bytes_before"), bytes_before as f64, "bytes replaced");
        assert_eq!(line("bytes_after"), after.1 as f64, "bytes compacted");
        assert_eq!(after.0, DAY_PIPELINES as u64, "one file per pipeline");
        eprintln!(
            "   run {}: compacted in {:.2} s, peak RSS {:.1} MiB",
            run + 1,
            line("seconds"),
            line("peak_rss_mib")
        );
        took.push(line("seconds"));
        cpu.push(line("cpu_seconds"));
        peak.push(line("peak_rss_mib"));
        at_start.push(line("rss_at_start_mib"));
    }
    let _ = std::fs::remove_dir_all(&run_dir);
    let _ = std::fs::remove_dir_all(&pristine);

    spread(
        "compact_day20_s",
        &took,
        "s",
        "20 pipelines × 288 files × 320 readings, one process run",
    );
    spread(
        "compact_day20_cpu_s",
        &cpu,
        "s",
        "processor time of that run",
    );
    spread(
        "compact_day20_peak_rss_mib",
        &peak,
        "MiB",
        "VmHWM of the compacting process",
    );
    spread(
        "compact_day20_rss_at_start_mib",
        &at_start,
        "MiB",
        "the same process before compacting (its floor)",
    );
    figure("rows", expected_rows, "rows", "5,760 files × 320");
    figure("files_before", files_before as f64, "files", "parquet");
    figure(
        "files_after",
        after.0 as f64,
        "files",
        "parquet; beside each, a _compacted.json",
    );
    figure("bytes_before", bytes_before as f64, "bytes", "parquet");
    figure("bytes_after", after.1 as f64, "bytes", "parquet");
    figure(
        "bytes_after_vs_before",
        after.1 as f64 / bytes_before as f64,
        "x",
        "",
    );
}

/// The query timed: what a reader of the dataset typically asks.
const QUERY: &str = "SELECT station_id, avg(value) AS mean FROM read_parquet(?) GROUP BY 1";

/// Runs [`QUERY`] with DuckDB over `glob` (and, with `check`, a second
/// query whose answer must not depend on the files' layout) and prints one
/// JSON object: the query's time and both answers.
const DUCKDB_SCRIPT: &str = r#"
import json, sys, time
import duckdb

glob, query, check = sys.argv[1], sys.argv[2], sys.argv[3] == "check"
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
started = time.perf_counter()
rows = con.execute(query, [glob]).fetchall()
seconds = time.perf_counter() - started
out = {"seconds": seconds, "answer": sorted([s, m] for s, m in rows)}
if check:
    out["check"] = con.execute(
        "SELECT station_id, count(*), sum(CAST(round(value * 10) AS BIGINT)),"
        " min(value), max(value), CAST(min(timestamp) AS VARCHAR),"
        " CAST(max(timestamp) AS VARCHAR), count(DISTINCT timestamp)"
        " FROM read_parquet(?) GROUP BY 1 ORDER BY 1",
        [glob],
    ).fetchall()
print(json.dumps(out))
"#;

fn duckdb(python: &Path, root: &Path, check: bool) -> serde_json::Value {
    let glob = root.join("data").join("*").join("*").join("*.parquet");
    let out = Command::new(python)
        .arg("-c")
        .arg(DUCKDB_SCRIPT)
        .arg(glob)
        .arg(QUERY)
        .arg(if check { "check" } else { "time" })
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "the DuckDB query failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("the DuckDB script printed no answer ({e}): {stdout}"))
}

/// Fails loudly unless the answers over the parts and over the compacted
/// files are the same: the same stations and counts, the same sums and
/// extremes, and means equal up to the order of summation.
fn same_answers(parts: &serde_json::Value, compacted: &serde_json::Value, rows: u64) {
    assert_eq!(
        parts["check"], compacted["check"],
        "DuckDB's answers differ before and after compaction"
    );
    let counted: u64 = parts["check"]
        .as_array()
        .expect("check rows")
        .iter()
        .map(|r| r[1].as_u64().expect("count"))
        .sum();
    assert_eq!(
        counted, rows,
        "DuckDB counted {counted} rows, {rows} written"
    );
    let answer = |v: &serde_json::Value| -> Vec<(String, f64)> {
        v["answer"]
            .as_array()
            .expect("answer rows")
            .iter()
            .map(|r| {
                (
                    r[0].as_str().expect("station").to_owned(),
                    r[1].as_f64().expect("mean"),
                )
            })
            .collect()
    };
    let (a, b) = (answer(parts), answer(compacted));
    assert_eq!(a.len(), STATIONS, "one mean per station");
    assert_eq!(a.len(), b.len(), "the same stations");
    for ((sa, ma), (sb, mb)) in a.iter().zip(&b) {
        assert!(
            sa == sb && (ma - mb).abs() <= 1e-9 * ma.abs(),
            "DuckDB's means differ before and after compaction: {sa} {ma} against {sb} {mb}"
        );
    }
}

/// Part 3: DuckDB over a month of 2 pipelines, before and after compaction.
fn month(base: &Path) {
    let Some(python) = meathook_testkit::python::interpreter() else {
        eprintln!("   NOTE: no DuckDB figures this run: no Python venv (`cargo xtask ci python`)");
        return;
    };
    let parts = base.join("month");
    let compacted = base.join("month-compacted");
    let days: Vec<Date> = (0..MONTH_DAYS)
        .map(|d| MONTH_START + time::Duration::days(d as i64))
        .collect();
    eprintln!("   writing {MONTH_DAYS} days of {MONTH_PIPELINES} pipelines");
    write_dataset(&parts, MONTH_PIPELINES, &days);
    link_tree(&parts, &compacted);
    let report = compact(&compacted);
    assert_eq!(report.compacted.len(), MONTH_PIPELINES * MONTH_DAYS);
    let files = (MONTH_PIPELINES * MONTH_DAYS * WINDOWS_PER_DAY) as u64;
    assert_eq!(parquet_files(&parts).0, files, "files written");
    assert_eq!(
        parquet_files(&compacted).0,
        (MONTH_PIPELINES * MONTH_DAYS) as u64,
        "one file per pipeline and day"
    );

    let rows = files * ROWS_PER_FILE as u64;
    let (mut before, mut after, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..RUNS {
        let check = run == 0;
        let b = duckdb(&python, &parts, check);
        let a = duckdb(&python, &compacted, check);
        if check {
            same_answers(&b, &a, rows);
        } else {
            assert_eq!(b["answer"].as_array().map(Vec::len), Some(STATIONS));
            assert_eq!(a["answer"].as_array().map(Vec::len), Some(STATIONS));
        }
        let (b, a) = (
            b["seconds"].as_f64().expect("seconds"),
            a["seconds"].as_f64().expect("seconds"),
        );
        eprintln!(
            "   run {}: DuckDB {b:.2} s over the parts, {a:.3} s compacted",
            run + 1
        );
        before.push(b);
        after.push(a);
        ratio.push(a / b);
    }
    let _ = std::fs::remove_dir_all(&parts);
    let _ = std::fs::remove_dir_all(&compacted);

    spread(
        "duckdb_month2_before_s",
        &before,
        "s",
        "avg(value) by station, 2 pipelines × 30 days × 288 files",
    );
    spread(
        "duckdb_month2_after_s",
        &after,
        "s",
        "the same query, 60 compacted files",
    );
    spread(
        "duckdb_month2_after_vs_before",
        &ratio,
        "x",
        "each interleaved pair's ratio",
    );
}

fn main() {
    if let Ok(scenario) = std::env::var(SCENARIO) {
        match scenario.as_str() {
            "compact" => compact_scenario(),
            other => panic!("unknown scenario {other}"),
        }
        return;
    }
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("compaction-bench");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).expect("scratch dir");
    day(&base);
    month(&base);
    let _ = std::fs::remove_dir_all(&base);
}
