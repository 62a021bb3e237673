//! Many pipelines in one process: 100, 1,000 and 10,000 pipelines, each
//! polling a trivial collector once a second into a spool in front of local
//! parquet, hourly windows, for `MEATHOOK_BENCH_SECONDS` (default 60).
//!
//! Each run is its own process, measured from inside: tick lateness p50/p99
//! (the runtime's histogram), syncs a second (the writer pools' counters),
//! most file descriptors and threads seen (sampled every 100 ms), peak RSS,
//! CPU, and records collected against records delivered (rows in the parquet
//! files after the drain). The baseline is the same run with a writer thread
//! of its own for every spool, as before the shared pool. Runs interleave
//! (baseline, shared, next count, …) for `MEATHOOK_BENCH_RUNS` rounds
//! (default 3), and every figure is reported as min / median / max.
//!
//! Then, at 10,000 pipelines and with the shared pool only, the process is
//! killed with SIGKILL mid-run; a new process opens all the spools (timed),
//! delivers them, and checks that every pipeline's readings arrived as
//! 1, 2, 3, … with no gap and no duplicate, at least as many as the killed
//! process had acknowledged.
//!
//! `MEATHOOK_BENCH_SCALE` lists the pipeline counts (default
//! `100,1000,10000`).
#![allow(missing_docs)] // a benchmark binary, not an API
#![allow(
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::print_stdout
)] // aborts on a broken set-up; ratios; stdout is the report channel

mod support;

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use meathook::spool::{Durability, SpoolRoot, WriterPool};
use meathook::{DiskSpool, FileSink, FlushPolicy, ParquetEncoder, Sink as _};
use serde::{Deserialize, Serialize};
use support::{figure, spread};

const ROLE: &str = "MEATHOOK_BENCH_ROLE";

fn seconds() -> u64 {
    std::env::var("MEATHOOK_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

/// `MEATHOOK_BENCH_DURABILITY=os` leaves durability to the OS, to tell the
/// commit path's cost from the rest of the runtime's.
fn durability() -> Durability {
    match std::env::var("MEATHOOK_BENCH_DURABILITY").as_deref() {
        Ok("os") => Durability::Os,
        _ => Durability::EveryIngest,
    }
}

fn counts() -> Vec<usize> {
    std::env::var("MEATHOOK_BENCH_SCALE")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 1000, 10_000])
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reading {
    pipeline: u32,
    seq: u64,
    value: f64,
}

/// One reading a poll, numbered from 1; counts what it collected and what
/// the pipeline acknowledged (the next poll starts after the ingest).
struct Numbered {
    name: String,
    index: u32,
    next: u64,
    collected: Arc<AtomicU64>,
}

impl meathook::Collector for Numbered {
    type Record = Reading;
    type Error = std::convert::Infallible;

    fn name(&self) -> &str {
        &self.name
    }

    async fn collect(&mut self) -> Result<Vec<Reading>, Self::Error> {
        self.next += 1;
        self.collected.fetch_add(1, Relaxed);
        Ok(vec![Reading {
            pipeline: self.index,
            seq: self.next,
            value: 20.0 + f64::from(self.index % 97) / 10.0,
        }])
    }
}

fn name(i: usize) -> String {
    format!("p{i:05}")
}

fn spool(
    root: &Path,
    i: usize,
    pool: &WriterPool,
    spools: Option<&SpoolRoot>,
) -> DiskSpool<FileSink<Reading, ParquetEncoder<Reading>>, Reading> {
    let sink = FileSink::new(
        root.join("out").to_string_lossy(),
        ParquetEncoder::<Reading>::new().expect("encoder"),
    )
    .expect("sink");
    let spool = DiskSpool::new(
        sink,
        root.join("spool").join(name(i)),
        FlushPolicy::hourly(),
    )
    .with_writer_pool(pool.clone())
    .with_min_free_bytes(0)
    .with_flush_deadline(Duration::from_secs(600))
    .with_durability(durability());
    match spools {
        Some(spools) => spool.with_root(spools),
        None => spool,
    }
}

/// Threads and open descriptors of this process now.
fn threads_and_fds() -> (usize, usize) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let threads = status
        .lines()
        .find(|l| l.starts_with("Threads:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count);
    (threads, fds)
}

/// The tick-lateness histogram in a metrics text: cumulative counts by
/// bucket bound, summed over pipelines.
fn lateness_buckets(text: &str) -> std::collections::BTreeMap<u64, f64> {
    let mut per_le: std::collections::BTreeMap<u64, f64> = std::collections::BTreeMap::new();
    for l in text
        .lines()
        .filter(|l| l.starts_with("meathook_tick_lateness_seconds_bucket"))
    {
        let Some(le) = l.split("le=\"").nth(1).and_then(|r| r.split('"').next()) else {
            continue;
        };
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap_or(f64::NAN)
        };
        let count: f64 = l
            .rsplit(' ')
            .next()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0.0);
        *per_le.entry(le.to_bits()).or_default() += count;
    }
    per_le
}

/// Upper bound of the first bucket holding `q` of the ticks counted in
/// `end` but not in `start`.
fn lateness_quantile(
    start: &std::collections::BTreeMap<u64, f64>,
    end: &std::collections::BTreeMap<u64, f64>,
    q: f64,
) -> f64 {
    let mut sorted: Vec<(f64, f64)> = end
        .iter()
        .map(|(b, c)| (f64::from_bits(*b), c - start.get(b).copied().unwrap_or(0.0)))
        .collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = sorted.last().map_or(0.0, |b| b.1);
    sorted
        .into_iter()
        .find(|(_, c)| *c >= q * total)
        .map_or(f64::NAN, |(le, _)| le)
}

/// Rows in the parquet files under `out`, and how many pipelines' readings
/// are not exactly 1, 2, 3, … (a gap or a duplicate).
fn delivered_rows(out: &Path) -> (usize, usize) {
    let per = delivered(out);
    let rows = per.values().map(Vec::len).sum();
    let broken = per
        .values()
        .filter(|seqs| {
            let mut s = (*seqs).clone();
            s.sort_unstable();
            s.iter().enumerate().any(|(i, v)| *v != i as u64 + 1)
        })
        .count();
    (rows, broken)
}

/// Rows per pipeline in the parquet files under `out`, with every
/// pipeline's sequence numbers.
fn delivered(out: &Path) -> HashMap<u32, Vec<u64>> {
    let mut per: HashMap<u32, Vec<u64>> = HashMap::new();
    let mut stack = vec![out.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                for row in meathook::parquet::read_parquet_json(&path).expect("read parquet") {
                    let pipeline = row["pipeline"].as_u64().expect("pipeline") as u32;
                    let seq = row["seq"].as_u64().expect("seq");
                    per.entry(pipeline).or_default().push(seq);
                }
            }
        }
    }
    per
}

/// The lateness histogram after the first five seconds and at the end, the
/// syncs between them, that span in seconds and the CPU seconds used.
type Measured = (Buckets, Buckets, u64, f64, f64);

type Buckets = std::collections::BTreeMap<u64, f64>;

/// Runs `n` pipelines for the bench duration (or until killed) and reports.
fn run(n: usize, shared: bool, root: &Path) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(meathook::contracts::MAX_BLOCKING + 16)
        .enable_all()
        .build()
        .expect("runtime");
    let collected = Arc::new(AtomicU64::new(0));
    let shared_pool = WriterPool::shared().expect("writer threads");
    // Shared: one pool of writer threads and one lock for every spool.
    let spools = shared.then(|| SpoolRoot::open(root.join("spool")).expect("spool root"));
    let pools: Arc<std::sync::Mutex<Vec<WriterPool>>> = Arc::default();
    let mut builder = meathook::Meathook::builder();
    for i in 0..n {
        let root = root.to_path_buf();
        let collected = Arc::clone(&collected);
        let (shared_pool, pools, spools) =
            (shared_pool.clone(), Arc::clone(&pools), spools.clone());
        builder = builder.pipeline(move || {
            let pool = if shared {
                shared_pool.clone()
            } else {
                let own = WriterPool::new(1).expect("a writer thread");
                pools.lock().expect("pools").push(own.clone());
                own
            };
            meathook::Pipeline::new(
                Numbered {
                    name: name(i),
                    index: i as u32,
                    next: 0,
                    collected: Arc::clone(&collected),
                },
                spool(&root, i, &pool, spools.as_ref()),
                Duration::from_secs(1),
            )
        });
    }
    let telemetry = builder.telemetry();
    let (most_threads, most_fds) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    {
        let (t, f) = (Arc::clone(&most_threads), Arc::clone(&most_fds));
        let collected = Arc::clone(&collected);
        std::thread::spawn(move || {
            let mut last_print = Instant::now();
            loop {
                let (threads, fds) = threads_and_fds();
                t.fetch_max(threads, Relaxed);
                f.fetch_max(fds, Relaxed);
                if last_print.elapsed() >= Duration::from_secs(1) {
                    last_print = Instant::now();
                    // Polls whose ingest finished: each pipeline's next poll
                    // waits for its ingest, so all but one per pipeline.
                    let c = collected.load(Relaxed);
                    println!("progress\t{}", c.saturating_sub(n as u64));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
    }
    let started = Instant::now();
    let cpu0 = support::cpu_seconds();
    let run_for = Duration::from_secs(seconds());
    let measured: Arc<std::sync::Mutex<Option<Measured>>> = Arc::default();
    let stop = {
        let (telemetry, measured, pools) =
            (telemetry.clone(), Arc::clone(&measured), Arc::clone(&pools));
        let shared_pool = shared_pool.clone();
        // Syncs so far: the shared pool's, or every spool's own pool's.
        let syncs = move || -> u64 {
            if shared {
                shared_pool.stats().syncs()
            } else {
                let pools = pools.lock().expect("pools");
                pools.iter().map(|p| p.stats().syncs()).sum()
            }
        };
        async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let warm = lateness_buckets(&telemetry.encode());
            let s0 = syncs();
            let t0 = Instant::now();
            tokio::time::sleep(run_for.saturating_sub(Duration::from_secs(5))).await;
            let s1 = syncs();
            let end = lateness_buckets(&telemetry.encode());
            *measured.lock().expect("measured") = Some((
                warm,
                end,
                s1 - s0,
                t0.elapsed().as_secs_f64(),
                support::cpu_seconds() - cpu0,
            ));
        }
    };
    let result = rt.block_on(builder.run_until(stop));
    if let Err(e) = &result {
        eprintln!("the run ended with an error: {e}");
    }
    let drained_at = started.elapsed();
    let (warm, end, synced, window, cpu) =
        measured.lock().expect("measured").take().expect("measured");
    let none = Buckets::new();
    let (rows, gaps) = delivered_rows(&root.join("out"));
    println!(
        "result\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        lateness_quantile(&none, &end, 0.5),
        lateness_quantile(&none, &end, 0.99),
        lateness_quantile(&warm, &end, 0.5),
        lateness_quantile(&warm, &end, 0.99),
        synced as f64 / window,
        most_fds.load(Relaxed),
        most_threads.load(Relaxed),
        support::peak_rss_bytes().unwrap_or(0),
        cpu / started.elapsed().as_secs_f64(),
        collected.load(Relaxed),
        rows,
        gaps,
        drained_at.as_secs_f64(),
        u8::from(result.is_ok()),
    );
}

/// Opens every spool under `root` (timed), delivers them and checks each
/// pipeline's readings.
fn recover(n: usize, root: &Path) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(meathook::contracts::MAX_BLOCKING + 16)
        .enable_all()
        .build()
        .expect("runtime");
    let pool = WriterPool::shared().expect("writer threads");
    rt.block_on(async {
        let started = Instant::now();
        let lock = SpoolRoot::open(root.join("spool")).expect("spool root");
        let mut spools = Vec::new();
        for i in 0..n {
            let mut s = spool(root, i, &pool, Some(&lock));
            s.open().await.expect("open");
            spools.push(s);
        }
        let opened = started.elapsed();
        for s in &mut spools {
            s.flush().await.expect("flush");
        }
        for s in spools {
            s.close().await;
        }
        println!("recovered\t{}", opened.as_secs_f64());
    });
}

fn child(role: &str, n: usize, root: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().expect("own path"))
        .env(ROLE, role)
        .env("RUST_LOG", "error")
        .args([n.to_string(), root.display().to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn")
}

fn lines(child: &mut std::process::Child) -> Vec<String> {
    let out = child.stdout.take().expect("stdout");
    BufReader::new(out).lines().map_while(Result::ok).collect()
}

/// Interleaved runs of each count and mode (`MEATHOOK_BENCH_RUNS`, default 3).
fn runs() -> usize {
    std::env::var("MEATHOOK_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
}

fn orchestrate() {
    let base = tempfile::tempdir().expect("tempdir");
    // Every run's fields, by pipeline count and mode (shared or not).
    let mut results: std::collections::BTreeMap<(usize, bool), Vec<Vec<f64>>> =
        std::collections::BTreeMap::new();
    for round in 0..runs() {
        for n in counts() {
            for shared in [false, true] {
                // Each run's files stay until every run is done: deleting
                // 10,000 spools slows the filesystem for the next run.
                let root = base.path().join(format!("{n}-{shared}-{round}"));
                // The previous run's files are written back before this one
                // starts, so its syncs do not pay for them.
                let _ = Command::new("sync").status();
                let mut c = child(if shared { "shared" } else { "own" }, n, &root);
                let out = lines(&mut c);
                let _ = c.wait();
                let fields = out
                    .iter()
                    .find_map(|l| l.strip_prefix("result\t"))
                    .map(|r| {
                        r.split('\t')
                            .map(|v| v.parse().unwrap_or(f64::NAN))
                            .collect()
                    });
                if fields.is_none() {
                    eprintln!("{n} pipelines (shared: {shared}), run {round}: no result");
                }
                results
                    .entry((n, shared))
                    .or_default()
                    .push(fields.unwrap_or_default());
            }
        }
    }
    for ((n, shared), runs) in &results {
        let (n, shared) = (*n, *shared);
        let mode = if shared { "shared" } else { "own_threads" };
        let key = |what: &str| format!("{what}_{n}_{mode}");
        let target = |t: &str| {
            if shared && n == 10_000 {
                t.to_owned()
            } else {
                String::new()
            }
        };
        let field = |i: usize, scale: f64| -> Vec<f64> {
            runs.iter()
                .map(|f| f.get(i).map_or(f64::NAN, |v| v * scale))
                .collect()
        };
        let missing = runs.iter().filter(|f| f.is_empty()).count();
        figure(&key("runs_without_result"), missing as f64, "", "0");
        spread(&key("lateness_p50_ms"), &field(0, 1e3), "ms", "");
        spread(
            &key("lateness_p99_ms"),
            &field(1, 1e3),
            "ms",
            &target("<= 100"),
        );
        spread(&key("lateness_p50_after_5s_ms"), &field(2, 1e3), "ms", "");
        let p99_after = field(3, 1e3);
        spread(
            &key("lateness_p99_after_5s_ms"),
            &p99_after,
            "ms",
            &target("<= 100"),
        );
        spread(&key("syncs_per_s"), &field(4, 1.0), "/s", "");
        spread(&key("fds_max"), &field(5, 1.0), "", &target("<= 1000"));
        spread(&key("threads_max"), &field(6, 1.0), "", &target("<= 64"));
        let mib = 1.0 / f64::from(1 << 20);
        spread(&key("rss_mib"), &field(7, mib), "MiB", &target("<= 1024"));
        spread(&key("cpu_cores"), &field(8, 1.0), "cores", "");
        spread(&key("collected"), &field(9, 1.0), "records", "");
        // Collected less delivered, each run: 0 when nothing was lost.
        let lost: Vec<f64> = field(9, 1.0)
            .iter()
            .zip(field(10, 1.0))
            .map(|(c, d)| c - d)
            .collect();
        spread(&key("collected_less_delivered"), &lost, "records", "0");
        spread(&key("pipelines_with_gaps"), &field(11, 1.0), "", "0");
        spread(&key("wall_s"), &field(12, 1.0), "s", "");
        spread(&key("drained_ok"), &field(13, 1.0), "", "1");
    }
    // SIGKILL at the largest count, then recovery in a new process.
    let n = counts().into_iter().max().unwrap_or(0);
    let root = base.path().join("kill");
    let mut c = child("shared", n, &root);
    let out = c.stdout.take().expect("stdout");
    let mut acked = 0u64;
    let started = Instant::now();
    for line in BufReader::new(out).lines().map_while(Result::ok) {
        if let Some(rest) = line.strip_prefix("progress\t") {
            acked = rest
                .split('\t')
                .next()
                .and_then(|a| a.parse().ok())
                .unwrap_or(acked);
            if started.elapsed() >= Duration::from_secs(seconds() / 2) {
                let _ = Command::new("kill")
                    .args(["-KILL", &c.id().to_string()])
                    .status();
                break;
            }
        }
    }
    let _ = c.wait();
    let mut r = child("recover", n, &root);
    let out = lines(&mut r);
    let _ = r.wait();
    let opened = out
        .iter()
        .find_map(|l| l.strip_prefix("recovered\t"))
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    let (rows, broken) = delivered_rows(&root.join("out"));
    figure(&format!("sigkill_{n}_open_s"), opened, "s", "<= 10");
    figure(
        &format!("sigkill_{n}_acknowledged_before_kill"),
        acked as f64,
        "records",
        "",
    );
    figure(
        &format!("sigkill_{n}_delivered"),
        rows as f64,
        "records",
        ">= acknowledged",
    );
    figure(
        &format!("sigkill_{n}_pipelines_with_gaps_or_duplicates"),
        broken as f64,
        "",
        "0",
    );
}

fn main() {
    let role = std::env::var(ROLE).unwrap_or_default();
    let args: Vec<String> = std::env::args().collect();
    let n = || {
        args.get(1)
            .and_then(|n| n.parse().ok())
            .expect("pipeline count")
    };
    let root = || PathBuf::from(args.get(2).expect("root"));
    match role.as_str() {
        "shared" => run(n(), true, &root()),
        "own" => run(n(), false, &root()),
        "recover" => recover(n(), &root()),
        _ => orchestrate(),
    }
}
