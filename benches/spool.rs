//! The spool's figures, each scenario in a fresh process so peak memory is
//! its own, each timed figure as min / median / max of repeated runs:
//!
//! 1. durable ingest, 1,000 batches × 100 records, fsync per batch, against
//!    a raw append + `fdatasync` loop of the same bytes per batch (five
//!    interleaved rounds; the ratio is each round's), and against two more
//!    raw loops in the same rounds: overwriting blocks written and synced
//!    beforehand (what the spool's zeros written ahead commit), and appending
//!    through a writer thread (what the hand-off costs on its own); and the
//!    spool's own mean `fdatasync`, from its stats;
//! 2. the same with durability left to the OS (the ingests alone, 5 runs);
//! 3. bytes on disk per record;
//! 4. replay of a 1-million-record spool into a counting sink (time, the
//!    part of it that opening the spool takes, peak RSS; five fills and
//!    replays);
//! 5. 1,000 ingests while 24 windows wait behind a failing inner sink,
//!    against the same ingests with a healthy one (seven interleaved pairs,
//!    and the delivery attempts made during the timed ingests);
//! 6. durable throughput of 100 spools ingesting at once, 100 batches each
//!    (one `SpoolRoot`, a writer pool of as many threads as the shared
//!    one), against one spool ingesting 1,000 batches, and against the 100
//!    spools on a pool without a commit interval; three interleaved runs
//!    each, as min / median / max;
//! 7. ingest as in 2, on tmpfs (`/dev/shm`), against the predecessor crate,
//!    `meathook-rs` 0.4.2, ingesting the same batches on tmpfs into its
//!    JSON-lines spool tier (`Tier<JsonlStore>`; it has no setting that
//!    leaves durability to the OS, and its `fsync` per ingest writes nothing
//!    to a device on tmpfs): records a second over the ingests alone, best
//!    of 5 each. The old crate runs as the baseline program in
//!    `benches/baseline`, which `cargo xtask bench spool` builds and names in
//!    `MEATHOOK_BASELINE_BIN`; its figures carry an `old_crate_` prefix.
//!    Without it, or without a tmpfs at `/dev/shm`, a note says why.
//!
//! Files go under the target directory (a real disk, not tmpfs), but for 7.
#![allow(missing_docs)] // a benchmark binary, not an API
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::print_stdout
)] // aborts on a broken set-up; figures are floats; stdout is the report channel

mod old_crate;
mod support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use meathook::contracts::{ChunkedError, ChunkedResult, RecordChunks};
use meathook::spool::{Durability, WriterPool};
use meathook::{DiskSpool, Drain, FlushPolicy, IngestError, Receipt, Sink, SinkError, WindowMeta};
use support::readings::{PER_BATCH, Reading, batch};
use support::{figure, peak_rss_bytes, spread};
use time::macros::datetime;

const BATCHES: usize = 1000;
const REPLAY_RECORDS: usize = 1_000_000;
const SCENARIO: &str = "MEATHOOK_BENCH_SCENARIO";

#[derive(Debug)]
struct Down;
impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("counting sink is down")
    }
}
impl std::error::Error for Down {}
impl SinkError for Down {}

/// Counts records chunk by chunk; refuses everything while `down`.
struct Count {
    n: usize,
    down: bool,
}

impl Sink<Reading> for Count {
    type Error = Down;

    async fn ingest(
        &mut self,
        _: &WindowMeta,
        r: Vec<Reading>,
    ) -> Result<Receipt<Down>, IngestError<Reading, Down>> {
        if self.down {
            return Err(IngestError::new(r, Down));
        }
        self.n += r.len();
        Ok(Receipt::all(r.len()))
    }

    async fn ingest_chunks<C: RecordChunks<Reading>>(
        &mut self,
        _: &WindowMeta,
        mut chunks: C,
    ) -> ChunkedResult<Down, C::Error> {
        if self.down {
            return Err(ChunkedError::Sink(Down));
        }
        let mut n = 0;
        while let Some(chunk) = chunks.next_chunk().await.map_err(ChunkedError::Source)? {
            n += chunk.len();
        }
        self.n += n;
        Ok(Receipt::all(n))
    }

    async fn flush(&mut self) -> Result<(), Down> {
        Ok(())
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("spool-bench")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn spool(dir: &Path, durability: Durability, down: bool) -> DiskSpool<Count, Reading> {
    DiskSpool::new(Count { n: 0, down }, dir, FlushPolicy::hourly())
        .with_durability(durability)
        .with_min_free_bytes(0)
        .with_backoff(meathook::contracts::Backoff::new(
            Duration::from_millis(5),
            Duration::from_millis(50),
        ))
}

fn at(i: usize) -> WindowMeta {
    WindowMeta::instant(
        "bench",
        datetime!(2026-11-23 10:00 UTC) + time::Duration::milliseconds(i as i64),
    )
}

/// What [`ingest_run`] measured.
struct Ingested {
    took: Duration,
    latencies: Vec<Duration>,
    bytes_appended: u64,
    bytes_on_disk: u64,
    /// The spool's own mean `fdatasync` time.
    mean_fsync: Option<Duration>,
}

/// Ingests 1,000 batches.
fn ingest_run(durability: Durability, name: &str) -> Ingested {
    ingest_in(&scratch(name), durability)
}

/// [`ingest_run`] into the empty directory `dir`.
fn ingest_in(dir: &Path, durability: Durability) -> Ingested {
    let input: Vec<Vec<Reading>> = (0..BATCHES).map(batch).collect();
    runtime().block_on(async {
        let mut s = spool(dir, durability, false);
        s.open().await.expect("open");
        let mut lat = Vec::with_capacity(BATCHES);
        let started = Instant::now();
        for (i, b) in input.into_iter().enumerate() {
            let t = Instant::now();
            s.ingest(&at(i), b).await.expect("ingest");
            lat.push(t.elapsed());
        }
        let took = started.elapsed();
        let mean_fsync = s.stats().mean_fsync();
        s.drain(Drain::KeepActiveWindow).await.expect("drain");
        let snap = s.stats().snapshot();
        s.close().await;
        Ingested {
            took,
            latencies: lat,
            bytes_appended: snap.bytes_appended,
            bytes_on_disk: snap.bytes_on_disk,
            mean_fsync,
        }
    })
}

/// A new file `raw` in the fresh scratch directory `name`, for appending.
fn raw_file(name: &str) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(scratch(name).join("raw"))
        .expect("raw file")
}

/// The raw loop: append `per_batch` bytes and `fdatasync`, 1,000 times.
fn raw_loop(per_batch: usize) -> Duration {
    let mut f = raw_file("raw");
    let buf = vec![0x5a_u8; per_batch];
    let started = Instant::now();
    for _ in 0..BATCHES {
        f.write_all(&buf).expect("write");
        f.sync_data().expect("fdatasync");
    }
    started.elapsed()
}

/// The raw loop into a file whose blocks were written (zeros) and synced
/// beforehand, overwritten in place: `fdatasync` then has no file size or
/// block allocation to commit, only the data.
fn raw_loop_preallocated(per_batch: usize) -> Duration {
    use std::os::unix::fs::FileExt as _;
    // Not `raw_file`: on Linux a positioned write to a file opened for
    // appending goes to its end.
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(scratch("raw-preallocated").join("raw"))
        .expect("raw file");
    f.write_all(&vec![0_u8; per_batch * BATCHES])
        .expect("zeros");
    f.sync_all().expect("fsync");
    let buf = vec![0x5a_u8; per_batch];
    let started = Instant::now();
    for i in 0..BATCHES {
        f.write_all_at(&buf, (i * per_batch) as u64).expect("write");
        f.sync_data().expect("fdatasync");
    }
    started.elapsed()
}

/// The raw loop with every write and `fdatasync` handed to another thread
/// and waited for, as an acknowledgement waits for a writer thread: what a
/// writer thread costs on its own (two wake-ups a batch).
fn raw_loop_handed_off(per_batch: usize) -> Duration {
    let mut f = raw_file("raw-handed-off");
    let (ask, asked) = std::sync::mpsc::channel::<Vec<u8>>();
    let (answer, answered) = std::sync::mpsc::channel::<Vec<u8>>();
    let writer = std::thread::spawn(move || {
        for buf in asked {
            f.write_all(&buf).expect("write");
            f.sync_data().expect("fdatasync");
            if answer.send(buf).is_err() {
                break;
            }
        }
    });
    let mut buf = vec![0x5a_u8; per_batch];
    let started = Instant::now();
    for _ in 0..BATCHES {
        ask.send(buf).expect("writer thread");
        buf = answered.recv().expect("writer thread");
    }
    let took = started.elapsed();
    drop(ask);
    writer.join().expect("writer thread");
    took
}

fn percentile(lat: &mut [Duration], p: f64) -> f64 {
    lat.sort();
    let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
    lat[i].as_secs_f64() * 1e6
}

fn durable() {
    let records = (BATCHES * PER_BATCH) as f64;
    // A first run learns the bytes a batch takes; then five interleaved
    // pairs, raw loop then spool: each pair's ratio, and every ingest's
    // latency.
    let first = ingest_run(Durability::EveryIngest, "durable");
    let (appended, on_disk) = (first.bytes_appended, first.bytes_on_disk);
    let per_batch = (appended / BATCHES as u64) as usize;
    let mut fsyncs = Vec::new();
    let (mut spool, mut raw, mut ratios, mut lat) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut pre, mut pre_ratios, mut handed, mut handed_ratios) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        let r = raw_loop(per_batch);
        let p = raw_loop_preallocated(per_batch);
        let h = raw_loop_handed_off(per_batch);
        let run = ingest_run(Durability::EveryIngest, "durable");
        let (t, l) = (run.took, run.latencies);
        fsyncs.extend(run.mean_fsync.map(|d| d.as_secs_f64() * 1e6));
        spool.push(records / t.as_secs_f64());
        raw.push(records / r.as_secs_f64());
        ratios.push(r.as_secs_f64() / t.as_secs_f64());
        pre.push(records / p.as_secs_f64());
        pre_ratios.push(p.as_secs_f64() / t.as_secs_f64());
        handed.push(records / h.as_secs_f64());
        handed_ratios.push(h.as_secs_f64() / t.as_secs_f64());
        lat.extend(l);
    }
    spread("durable_records_per_s", &spool, "records/s", "");
    figure("durable_p50_latency", percentile(&mut lat, 0.5), "us", "");
    figure("durable_p99_latency", percentile(&mut lat, 0.99), "us", "");
    spread(
        "durable_mean_fdatasync",
        &fsyncs,
        "us",
        "the spool's own syncs, a mean per round",
    );
    spread(
        "raw_fdatasync_records_per_s",
        &raw,
        "records/s",
        "baseline, same bytes per batch",
    );
    spread("durable_vs_raw_ratio", &ratios, "x", ">= 0.9");
    spread(
        "raw_preallocated_fdatasync_records_per_s",
        &pre,
        "records/s",
        "baseline: overwriting written blocks",
    );
    spread("durable_vs_preallocated_raw_ratio", &pre_ratios, "x", "");
    spread(
        "raw_handed_off_fdatasync_records_per_s",
        &handed,
        "records/s",
        "baseline: each batch through a writer thread",
    );
    spread("durable_vs_handed_off_raw_ratio", &handed_ratios, "x", "");
    figure("bytes_per_batch", per_batch as f64, "bytes", "");
    figure(
        "bytes_on_disk_per_record",
        on_disk as f64 / records,
        "bytes",
        "<= 50",
    );
}

fn os() {
    let records = (BATCHES * PER_BATCH) as f64;
    let runs: Vec<f64> = (0..5)
        .map(|_| records / ingest_run(Durability::Os, "os").took.as_secs_f64())
        .collect();
    spread("os_records_per_s", &runs, "records/s", ">= 5000000");
}

/// `/dev/shm` if it is a tmpfs mount.
fn tmpfs() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .any(|f| f.get(1) == Some(&"/dev/shm") && f.get(2) == Some(&"tmpfs"))
        .then(|| PathBuf::from("/dev/shm"))
}

/// Ours with `Durability::Os` on tmpfs against the old crate's spool on
/// tmpfs: the ingests alone, best of 5 each.
fn tmpfs_os() {
    let Some(shm) = tmpfs() else {
        figure(
            "tmpfs_os_records_per_s",
            f64::NAN,
            "records/s",
            "not measured: /dev/shm is not a tmpfs here",
        );
        return;
    };
    let base = shm.join(format!("meathook-bench-spool-{}", std::process::id()));
    let dir = base.join("ours");
    let best = (0..5)
        .map(|_| {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("tmpfs dir");
            ingest_in(&dir, Durability::Os).took
        })
        .min()
        .expect("five runs");
    let _ = std::fs::remove_dir_all(&dir);
    let ours = (BATCHES * PER_BATCH) as f64 / best.as_secs_f64();
    figure(
        "tmpfs_os_records_per_s",
        ours,
        "records/s",
        "Durability::Os on /dev/shm, the ingests alone, best of 5",
    );
    std::fs::create_dir_all(&base).expect("tmpfs dir");
    let old = old_crate::run(&["os_ingest", &base.to_string_lossy()]);
    let _ = std::fs::remove_dir_all(&base);
    if let Some(old) = old {
        old.ratio("tmpfs_os_vs_old_crate", ours, "os_records_per_s", ">= 1");
    }
}

fn replay_setup() {
    let dir = scratch("replay");
    runtime().block_on(async {
        let mut s = spool(&dir, Durability::Os, false);
        for b in 0..REPLAY_RECORDS / PER_BATCH {
            s.ingest(&at(b), batch(b)).await.expect("ingest");
        }
        s.drain(Drain::KeepActiveWindow).await.expect("drain");
        s.close().await;
    });
}

fn replay() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("spool-bench")
        .join("replay");
    let (took, opened, n) = runtime().block_on(async {
        let started = Instant::now();
        let mut s = spool(&dir, Durability::Os, false);
        s.open().await.expect("open");
        let opened = started.elapsed();
        s.flush().await.expect("replay");
        let took = started.elapsed();
        let n = s.stats().snapshot().delivered_records;
        s.close().await;
        (took, opened, n)
    });
    assert_eq!(n as usize, REPLAY_RECORDS, "replayed everything");
    // Read by `main`, which reports the spread of three runs.
    println!("replay\tseconds\t{}", took.as_secs_f64());
    println!("replay\topen_seconds\t{}", opened.as_secs_f64());
    println!(
        "replay\tpeak_rss_mib\t{}",
        peak_rss_bytes().unwrap_or(0) as f64 / (1 << 20) as f64
    );
}

fn pending() {
    // Time of the 1,000 ingests, and the delivery attempts the worker made
    // while they ran.
    let ingests = |down: bool, name: &str| -> (Duration, u64) {
        let dir = scratch(name);
        runtime().block_on(async {
            let mut s = spool(&dir, Durability::Os, down);
            if down {
                // 24 sealed windows the failing inner sink keeps refusing.
                for h in 0..24 {
                    let w = WindowMeta::instant(
                        "bench",
                        datetime!(2026-11-22 00:00 UTC) + time::Duration::hours(h),
                    );
                    for b in 0..10 {
                        s.ingest(&w, batch(b)).await.expect("ingest");
                    }
                }
                s.advance(datetime!(2026-11-23 00:00 UTC))
                    .await
                    .expect("advance");
                assert_eq!(s.pending_segments(), 24);
            }
            let input: Vec<Vec<Reading>> = (0..BATCHES).map(batch).collect();
            let failed = s.stats().snapshot().deliveries_failed;
            let started = Instant::now();
            for (i, b) in input.into_iter().enumerate() {
                s.ingest(&at(i), b).await.expect("ingest");
            }
            let took = started.elapsed();
            let attempts = s.stats().snapshot().deliveries_failed - failed;
            s.close().await;
            (took, attempts)
        })
    };
    // Interleaved pairs: the machine's speed drifts between rounds by more
    // than the difference measured, so each pair's ratio is taken and the
    // spread of the ratios reported.
    let (mut ratios, mut attempts) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let (healthy, _) = ingests(false, "healthy");
        let (behind, tried) = ingests(true, "behind");
        ratios.push(behind.as_secs_f64() / healthy.as_secs_f64());
        attempts.push(tried as f64);
    }
    spread("pending24_vs_healthy_ratio", &ratios, "x", "<= 1.2");
    spread(
        "pending24_delivery_attempts_during_ingests",
        &attempts,
        "",
        "",
    );
}

/// Durable ingest of `each` batches by each of `spools` spools ingesting
/// concurrently through `pool`; records a second.
fn aggregate_run(spools: usize, each: usize, pool: &WriterPool) -> f64 {
    let dir = scratch(&format!("aggregate-{spools}"));
    runtime().block_on(async {
        let root = meathook::spool::SpoolRoot::open(dir.join("root")).expect("root");
        let mut opened = Vec::new();
        for i in 0..spools {
            let mut s = spool(&root.join(&format!("s{i}")), Durability::EveryIngest, false)
                .with_root(&root)
                .with_writer_pool(pool.clone());
            s.open().await.expect("open");
            opened.push(s);
        }
        let started = Instant::now();
        let tasks: Vec<_> = opened
            .into_iter()
            .enumerate()
            .map(|(i, mut s)| {
                let input: Vec<Vec<Reading>> = (0..each).map(|b| batch(i * each + b)).collect();
                tokio::spawn(async move {
                    for (b, records) in input.into_iter().enumerate() {
                        s.ingest(&at(i * each + b), records).await.expect("ingest");
                    }
                    s
                })
            })
            .collect();
        let mut done = Vec::new();
        for t in tasks {
            done.push(t.await.expect("task"));
        }
        let took = started.elapsed();
        for s in done {
            s.close().await;
        }
        (each * spools * PER_BATCH) as f64 / took.as_secs_f64()
    })
}

fn aggregate() {
    let threads = WriterPool::shared().expect("writer threads").threads();
    let pool = WriterPool::new(threads).expect("writer threads");
    let no_interval = WriterPool::new(threads)
        .expect("writer threads")
        .with_commit_interval(Duration::ZERO);
    let (mut one, mut hundred, mut without) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        one.push(aggregate_run(1, BATCHES, &pool));
        hundred.push(aggregate_run(100, 100, &pool));
        without.push(aggregate_run(100, 100, &no_interval));
    }
    spread("durable_1_spool_records_per_s", &one, "records/s", "");
    spread(
        "durable_100_spools_records_per_s",
        &hundred,
        "records/s",
        "",
    );
    spread(
        "durable_100_spools_no_commit_interval_records_per_s",
        &without,
        "records/s",
        "baseline: a pool with a zero commit interval",
    );
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (o_med, h_med, w_med) = (median(&mut one), median(&mut hundred), median(&mut without));
    figure("durable_100_vs_1_ratio_of_medians", h_med / o_med, "x", "");
    figure(
        "durable_100_with_vs_without_commit_interval_ratio_of_medians",
        h_med / w_med,
        "x",
        "",
    );
}

fn main() {
    if let Ok(scenario) = std::env::var(SCENARIO) {
        match scenario.as_str() {
            "durable" => durable(),
            "os" => os(),
            "tmpfs" => tmpfs_os(),
            "replay-setup" => replay_setup(),
            "replay" => replay(),
            "pending" => pending(),
            "aggregate" => aggregate(),
            other => panic!("unknown scenario {other}"),
        }
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    let run = |scenario: &str| {
        let status = std::process::Command::new(&exe)
            .env(SCENARIO, scenario)
            .status()
            .expect("run scenario");
        assert!(status.success(), "scenario {scenario} failed: {status}");
    };
    for scenario in ["durable", "os", "tmpfs"] {
        run(scenario);
    }
    // Replay five times, each in a fresh process (its peak memory is its
    // own) after a fresh fill.
    let (mut took, mut opened, mut rss) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        run("replay-setup");
        let out = std::process::Command::new(&exe)
            .env(SCENARIO, "replay")
            .output()
            .expect("run replay");
        assert!(out.status.success(), "replay failed: {}", out.status);
        let text = String::from_utf8_lossy(&out.stdout);
        let value = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("replay\t{key}\t")))
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN)
        };
        took.push(value("seconds"));
        opened.push(value("open_seconds"));
        rss.push(value("peak_rss_mib"));
    }
    spread("replay_1m_seconds", &took, "s", "<= 0.2");
    spread(
        "replay_1m_open_seconds",
        &opened,
        "s",
        "recovery, part of the above",
    );
    spread("replay_peak_rss", &rss, "MiB", "<= 64");
    for scenario in ["pending", "aggregate"] {
        run(scenario);
    }
}
