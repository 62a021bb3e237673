//! One 100 MB parquet window committed to the fake Hub, which runs as a
//! separate process (`fake-hub`, release build) so that its memory is not
//! counted: the time and MB/s of spool → parquet → LFS upload → commit,
//! and the committing process's peak RSS against the file's size — once
//! with a basic upload (the file in one request) and once multipart (8 MiB
//! parts). The baseline, measured in the same run against the same server:
//! a plain `PUT` of a file of the same size, read from disk.
//!
//! Then a simulated day under a paused clock (the fake Hub in process):
//! 20 pipelines with 5-minute windows, 240 files an hour against the
//! default budget of 100 commits an hour, once with the pipelines' files
//! spread over each window and once with all of them ready together. It
//! reports how long windows waited for their commit, in seconds and in
//! pacing slots (the baseline: `hour / budget`, 36 s), and the most
//! commits any sliding hour held.
//!
//! Scenarios run in fresh processes (this binary with
//! `MEATHOOK_BENCH_SCENARIO`), so each peak RSS is its own.
#![allow(missing_docs)] // a benchmark binary, not an API
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation
)] // aborts on a broken set-up; figures are floats

mod support;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use meathook::contracts::{ChunkedError, ChunkedResult, RecordChunks};
use meathook::spool::Durability;
use meathook::{
    DiskSpool, Drain, FlushPolicy, HfSink, IngestError, Receipt, Sink, SinkError, WindowMeta,
};
use serde::{Deserialize, Serialize};
use support::{figure, peak_rss_bytes};

const SCENARIO: &str = "MEATHOOK_BENCH_SCENARIO";
const ENDPOINT: &str = "MEATHOOK_BENCH_HUB";
/// Enough records for a parquet file of about 100 MB (about 80 bytes each
/// after zstd: the noise column is random).
const RECORDS: u64 = 1_300_000;
const BATCH: u64 = 10_000;
const MB: f64 = 1e6;
const REPO: &str = "bench/window";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Blob {
    seq: u64,
    value: f64,
    noise: String,
}

fn blobs(from: u64, n: u64) -> Vec<Blob> {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = fastrand::Rng::with_seed(from);
    (from..from + n)
        .map(|seq| Blob {
            seq,
            value: rng.f64(),
            noise: (0..96).map(|_| char::from(ABC[rng.usize(..64)])).collect(),
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
#[error("the placeholder sink delivers nothing")]
struct Never;
impl SinkError for Never {}

/// Fills the spool; never asked to deliver (the window stays active).
struct Hold;

impl Sink<Blob> for Hold {
    type Error = Never;
    async fn ingest(
        &mut self,
        _: &WindowMeta,
        r: Vec<Blob>,
    ) -> Result<Receipt<Never>, IngestError<Blob, Never>> {
        Err(IngestError::new(r, Never))
    }
    async fn ingest_chunks<C: RecordChunks<Blob>>(
        &mut self,
        _: &WindowMeta,
        _: C,
    ) -> ChunkedResult<Never, C::Error> {
        Err(ChunkedError::Sink(Never))
    }
    async fn flush(&mut self) -> Result<(), Never> {
        Ok(())
    }
}

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .to_path_buf()
}

fn work(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("hf-bench")
        .join(name)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Daily windows: the whole fill lands in one.
fn policy() -> FlushPolicy {
    FlushPolicy::every(Duration::from_secs(24 * 3600)).expect("a day is a valid window")
}

fn fill(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    runtime().block_on(async {
        // One segment holds the whole window, so it becomes one file.
        let mut s = DiskSpool::new(Hold, dir, policy())
            .with_durability(Durability::Os)
            .with_max_segment_bytes(1 << 30)
            .with_min_free_bytes(0);
        s.open().await.expect("open");
        // Today's window stays open, so the drain keeps it on disk.
        let w = WindowMeta::instant("blobs", time::OffsetDateTime::now_utc());
        for b in 0..RECORDS / BATCH {
            s.ingest(&w, blobs(b * BATCH, BATCH)).await.expect("ingest");
        }
        s.drain(Drain::KeepActiveWindow).await.expect("drain");
        s.close().await;
    });
}

fn commit(dir: &Path, endpoint: &str, label: &str) {
    let before = peak_rss_bytes().unwrap_or(0);
    let took = runtime().block_on(async {
        let sink = HfSink::<Blob>::new(reqwest::Client::new(), REPO, "hf_bench")
            .with_endpoint(endpoint)
            .with_scratch_dir(dir.with_extension("scratch"))
            .with_coalesce(Duration::ZERO);
        let mut s = DiskSpool::new(sink, dir, policy())
            .with_durability(Durability::Os)
            .with_min_free_bytes(0);
        s.open().await.expect("open");
        let started = Instant::now();
        s.flush().await.expect("the window is committed");
        let took = started.elapsed();
        assert_eq!(s.stats().snapshot().delivered_records, RECORDS);
        s.close().await;
        took
    });
    let size = committed_size(endpoint);
    let peak = peak_rss_bytes().unwrap_or(0);
    figure(
        &format!("{label}_file_mb"),
        size as f64 / MB,
        "MB",
        "about 100",
    );
    figure(&format!("{label}_seconds"), took.as_secs_f64(), "s", "");
    figure(
        &format!("{label}_mb_per_s"),
        size as f64 / MB / took.as_secs_f64(),
        "MB/s",
        "",
    );
    figure(&format!("{label}_peak_rss_mb"), peak as f64 / MB, "MB", "");
    figure(
        &format!("{label}_peak_rss_vs_file"),
        peak as f64 / size as f64,
        "x",
        "<= 1.5",
    );
    figure(
        &format!("{label}_rss_at_start_mb"),
        before as f64 / MB,
        "MB",
        "process start",
    );
}

/// The size of the parquet file the fake holds.
fn committed_size(endpoint: &str) -> u64 {
    let url = format!("{endpoint}/api/datasets/{REPO}/tree/main/data?recursive=true");
    let body =
        runtime().block_on(async { reqwest::get(url).await.unwrap().bytes().await.unwrap() });
    let listing: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let sizes: Vec<u64> = listing
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["path"].as_str().is_some_and(|p| p.ends_with(".parquet")))
        .map(|e| e["size"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes.len(), 1, "one file: {listing}");
    sizes[0]
}

/// The baseline: a batch call and one `PUT` of `size` bytes read from a
/// file, as bare as the protocol allows.
fn raw_put(endpoint: &str, size: u64) {
    use sha2::Digest as _;
    let path = work("raw.bin");
    let mut rng = fastrand::Rng::with_seed(7);
    let bytes: Vec<u8> = (0..size).map(|_| rng.u8(..)).collect();
    std::fs::write(&path, &bytes).unwrap();
    let oid: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    drop(bytes);
    let took = runtime().block_on(async {
        let client = reqwest::Client::new();
        let batch = client
            .post(format!(
                "{endpoint}/datasets/{REPO}.git/info/lfs/objects/batch"
            ))
            .bearer_auth("hf_bench")
            .header("content-type", "application/vnd.git-lfs+json")
            .body(
                serde_json::json!({"operation": "upload", "transfers": ["basic"],
                    "objects": [{"oid": oid, "size": size}]})
                .to_string(),
            )
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let batch: serde_json::Value = serde_json::from_slice(&batch).unwrap();
        let href = batch["objects"][0]["actions"]["upload"]["href"]
            .as_str()
            .unwrap()
            .to_owned();
        let started = Instant::now();
        let body = tokio::fs::read(&path).await.unwrap();
        let status = client.put(href).body(body).send().await.unwrap().status();
        assert!(status.is_success(), "{status}");
        started.elapsed()
    });
    figure(
        "raw_put_mb_per_s",
        size as f64 / MB / took.as_secs_f64(),
        "MB/s",
        "baseline",
    );
    let _ = std::fs::remove_file(path);
}

/// A reading as a sensor pipeline makes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reading {
    seq: u64,
    value: f64,
}

/// The simulated day: every window's wait from hand-over to committed,
/// and the commits per sliding hour. Pipeline `p` hands its windows over
/// `p × stagger` after they close.
fn day(label: &str, stagger: Duration) {
    use meathook_testkit::hub::{FakeHub, FakeHubConfig};
    const PIPELINES: u32 = 20;
    const WINDOWS: u32 = 288;
    const BUDGET: usize = 100;
    let window = Duration::from_secs(300);
    let hour = Duration::from_secs(3600);
    let scratch = work(&format!("day-{label}"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    let (mut waits, commits) = rt.block_on(async {
        let hub = FakeHub::start(FakeHubConfig::default()).await.expect("hub");
        let started = tokio::time::Instant::now();
        let t0 = time::macros::datetime!(2026-11-23 00:00 UTC);
        let mut tasks = Vec::new();
        for p in 0..PIPELINES {
            let mut sink = HfSink::<Reading>::new(reqwest::Client::new(), REPO, "hf_bench")
                .with_endpoint(hub.endpoint())
                .with_scratch_dir(scratch.join(p.to_string()))
                .with_commit_budget(BUDGET, hour);
            tasks.push(tokio::spawn(async move {
                sink.open().await.expect("open");
                let mut waits = Vec::new();
                for w in 0..WINDOWS {
                    let ready = started + window * (w + 1) + stagger * p;
                    tokio::time::sleep_until(ready).await;
                    let meta = WindowMeta::containing(format!("p{p:02}"), t0 + window * w, window)
                        .with_batch(meathook::contracts::BatchId::legacy(
                            u64::from(w),
                            u64::from(w),
                        ));
                    let records = (0..60)
                        .map(|i| Reading {
                            seq: u64::from(w) * 60 + i,
                            value: f64::from(p) + f64::from(w % 10) / 10.0,
                        })
                        .collect();
                    sink.ingest(&meta, records).await.expect("committed");
                    waits.push(ready.elapsed());
                }
                waits
            }));
        }
        let mut waits = Vec::new();
        for t in tasks {
            waits.extend(t.await.expect("pipeline"));
        }
        let commits: Vec<_> = hub.commits().iter().map(|c| c.at).collect();
        (waits, commits)
    });
    let _ = std::fs::remove_dir_all(&scratch);
    waits.sort_unstable();
    let at = |q: usize| waits[(waits.len() * q / 100).min(waits.len() - 1)].as_secs_f64();
    let slot = hour.as_secs_f64() / BUDGET as f64;
    let most = commits
        .iter()
        .map(|s| {
            commits
                .iter()
                .filter(|t| **t >= *s && **t < *s + hour)
                .count()
        })
        .max()
        .unwrap_or(0);
    figure(
        &format!("day_{label}_windows"),
        waits.len() as f64,
        "windows",
        "5760",
    );
    figure(
        &format!("day_{label}_commits"),
        commits.len() as f64,
        "commits",
        "",
    );
    figure(&format!("day_{label}_wait_p50"), at(50), "s", "");
    figure(&format!("day_{label}_wait_p99"), at(99), "s", "<= 72");
    figure(&format!("day_{label}_wait_max"), at(100), "s", "");
    figure(
        &format!("day_{label}_wait_p99_in_slots"),
        at(99) / slot,
        "x",
        "<= 2",
    );
    figure(
        &format!("day_{label}_most_commits_in_an_hour"),
        most as f64,
        "commits",
        "<= 100",
    );
}

/// A child process killed when dropped, even by a panic.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `fake-hub` with `args`; returns it and its endpoint.
fn fake_hub(args: &[&str]) -> (Server, String) {
    let bin = target_dir().join("release").join("fake-hub");
    assert!(
        bin.is_file(),
        "{} is missing: `cargo xtask bench hf` builds it",
        bin.display()
    );
    let data = work(&format!("hub-{}", args.join("")));
    let _ = std::fs::remove_dir_all(&data);
    let mut child = Command::new(bin)
        .args(["--port", "0", "--no-verify", "--data"])
        .arg(&data)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("fake-hub starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (Server(child), line.trim().to_owned())
}

fn scenario(name: &str, endpoint: &str) {
    let status = Command::new(std::env::current_exe().unwrap())
        .env(SCENARIO, name)
        .env(ENDPOINT, endpoint)
        .status()
        .expect("run scenario");
    assert!(status.success(), "scenario {name} failed: {status}");
}

fn main() {
    if let Ok(name) = std::env::var(SCENARIO) {
        let endpoint = std::env::var(ENDPOINT).unwrap_or_default();
        let spool = work("spool");
        match name.as_str() {
            "fill" => fill(&spool),
            "basic" | "multipart" => commit(&spool, &endpoint, &name),
            "raw" => raw_put(&endpoint, committed_size(&endpoint)),
            "day-spread" => day("spread", Duration::from_secs(15)),
            "day-together" => day("together", Duration::ZERO),
            other => panic!("unknown scenario {other}"),
        }
        return;
    }
    std::fs::create_dir_all(work("")).unwrap();
    // Basic: the fake asks for one PUT of the whole file.
    let (basic, endpoint) = fake_hub(&["--multipart-mib", "100000"]);
    scenario("fill", "");
    scenario("basic", &endpoint);
    scenario("raw", &endpoint);
    drop(basic);
    // Multipart: parts of 8 MiB above 16 MiB (the fake's defaults).
    let (multipart, endpoint) = fake_hub(&[]);
    scenario("fill", "");
    scenario("multipart", &endpoint);
    drop(multipart);
    scenario("day-spread", "");
    scenario("day-together", "");
    let _ = std::fs::remove_dir_all(work(""));
}
