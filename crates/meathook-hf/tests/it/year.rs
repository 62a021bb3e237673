//! A simulated stretch of a long-lived job: 20 pipelines with 5-minute
//! windows committed to the fake Hub, the days compacted as they end.
//! Along the way and at the end: the repository's files stay under a bound
//! (two a compacted pipeline-day, the parts of the day in progress, the
//! card and `.gitattributes`), commit requests never exceed the budget in
//! any window of it, and every row is on the branch exactly once; at the
//! end DuckDB (over a snapshot) and `datasets.load_dataset` read every row
//! once.
//!
//! CI simulates `MEATHOOK_SIM_DAYS` days (2 by default); a year is
//! `MEATHOOK_SIM_DAYS=365 cargo test --release -p meathook-hf --test it year::`.
//! Simulated time is the windows' (the data's); the commit budget is paced
//! in real time, scaled down (50 commits a second) so that it binds.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: panics are failures

use crate::support;

use std::collections::HashMap;
use std::time::Duration;

use meathook_core::{BatchId, Sink, WindowMeta};
use meathook_hf::HfSink;
use meathook_testkit::hub::{FakeHub, FakeHubConfig};
use support::{REPO, Reading};
use time::macros::datetime;

const PIPELINES: u64 = 20;
const PER_DAY: u64 = 288;
const BUDGET: usize = 50;
const BUDGET_WINDOW: Duration = Duration::from_secs(1);
const START: time::OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

fn days() -> u64 {
    std::env::var("MEATHOOK_SIM_DAYS")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(2)
}

fn name(p: u64) -> String {
    format!("station_group_{p:02}")
}

/// The reading of pipeline `p` in window `w` (counted from the start).
fn reading(p: u64, w: u64) -> Reading {
    Reading {
        station: format!("S{:02}", w % 7),
        seq: w * PIPELINES + p,
        value: (w % 40) as f64 * 0.5,
    }
}

fn sink(hub: &FakeHub, scratch: &std::path::Path, p: u64) -> HfSink<Reading> {
    support::sink(hub, &scratch.join(name(p))).with_commit_budget(BUDGET, BUDGET_WINDOW)
}

/// The rows of every parquet file read so far, by its LFS oid (the
/// sha256 of its bytes): each file is read and parsed once, however many
/// commits hold it.
#[derive(Default)]
struct Rows(HashMap<String, Vec<u64>>);

impl Rows {
    /// The rows (their `seq`s) of the parquet files at `rev`, sorted.
    fn at(&mut self, hub: &FakeHub, rev: &str) -> Vec<u64> {
        let mut rows = Vec::new();
        for f in hub.files(REPO, rev) {
            if !f.path.ends_with(".parquet") {
                continue;
            }
            let oid = f.lfs_oid.expect("parquet files are LFS files");
            let seqs = self.0.entry(oid).or_insert_with_key(|oid| {
                let bytes = hub
                    .lfs_object(oid)
                    .expect("a listed file's object is stored");
                support::read_parquet(bytes).iter().map(|r| r.seq).collect()
            });
            rows.extend_from_slice(seqs);
        }
        rows.sort_unstable();
        rows
    }
}

/// This process's resident memory (`VmRSS`), in MiB; 0 where unknown.
fn resident_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib / 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_stretch_of_days_stays_within_its_files_and_budget_with_every_row_once() {
    let days = days();
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    hub.create_repo(REPO);
    let scratch = tempfile::tempdir().unwrap();
    let mut sinks: Vec<HfSink<Reading>> = (0..PIPELINES)
        .map(|p| sink(&hub, scratch.path(), p))
        .collect();
    let mut compactor = sink(&hub, scratch.path(), PIPELINES)
        .compactor()
        .await
        .unwrap()
        .with_horizon(time::Duration::ZERO);
    let mut expected = Vec::new();
    let mut max_files = 0;
    let mut rows = Rows::default();
    let started = std::time::Instant::now();
    // How many commits there were when each day's last reading was in.
    let mut ingested = Vec::new();
    for day in 0..days {
        // Every pipeline delivers its windows of the day at once, as the
        // spools of one process do; the shared committer coalesces them.
        let mut running = tokio::task::JoinSet::new();
        for (p, mut sink) in sinks.drain(..).enumerate() {
            let p = p as u64;
            running.spawn(async move {
                for w in day * PER_DAY..(day + 1) * PER_DAY {
                    let at = START + time::Duration::minutes(5 * w as i64);
                    let window = WindowMeta::containing(name(p), at, Duration::from_secs(300))
                        .with_batch(BatchId::legacy(w, w));
                    sink.ingest(&window, vec![reading(p, w)]).await.unwrap();
                }
                (p, sink)
            });
        }
        let mut back: Vec<(u64, HfSink<Reading>)> = running.join_all().await;
        back.sort_by_key(|(p, _)| *p);
        sinks = back.into_iter().map(|(_, s)| s).collect();
        expected.extend(
            (day * PER_DAY..(day + 1) * PER_DAY)
                .flat_map(|w| (0..PIPELINES).map(move |p| reading(p, w).seq)),
        );
        ingested.push(hub.commit_count());
        let before = hub.files(REPO, "main").len() as u64;
        max_files = max_files.max(before);

        // The day is over: compaction takes it, a commit a pipeline.
        let now = START + time::Duration::days((day + 1) as i64);
        let report = compactor.run(now).await.unwrap();
        assert!(report.failed.is_empty(), "day {day}: {report:?}");
        assert_eq!(report.compacted.len() as u64, PIPELINES, "day {day}");
        let files = hub.files(REPO, "main").len() as u64;
        assert_eq!(report.files.files, files);
        // The bound: two files a compacted pipeline-day, the card and
        // `.gitattributes`; the parts of a day in progress add at most
        // PIPELINES × PER_DAY (5,760) before it is compacted. A year:
        // 14,602 after each compaction, 20,362 at most: far under 100,000.
        assert_eq!(files, 2 + 2 * PIPELINES * (day + 1), "day {day}");
        assert!(
            before <= 2 + 2 * PIPELINES * day + PIPELINES * PER_DAY,
            "day {day}: {before}"
        );
        let mut want = expected.clone();
        want.sort_unstable();
        assert_eq!(rows.at(&hub, "main"), want, "day {day}: every row once");
        if (day + 1) % 30 == 0 || day + 1 == days {
            eprintln!(
                "day {}: {files} files, {} commits, resident {} MiB, {:.0?} since the start",
                day + 1,
                hub.commit_count(),
                resident_mib(),
                started.elapsed()
            );
        }
    }
    // No window of the budget's length holds more commit requests than the
    // budget (the repository's creation aside).
    let ats: Vec<tokio::time::Instant> = hub.commits().iter().skip(1).map(|c| c.at).collect();
    for (i, first) in ats.iter().enumerate() {
        let within = ats[i..]
            .iter()
            .take_while(|at| **at < *first + BUDGET_WINDOW)
            .count();
        assert!(
            within <= BUDGET,
            "{within} commits within {BUDGET_WINDOW:?} of commit {i}"
        );
    }
    // At a sample of commits: no row twice, none that was never sent, and
    // every row of the days that had been delivered before it.
    let per_day = usize::try_from(PIPELINES * PER_DAY).unwrap();
    for (i, commit) in hub.commits().iter().enumerate().step_by(97) {
        let at = rows.at(&hub, &commit.oid);
        let mut unique = at.clone();
        unique.dedup();
        assert_eq!(at.len(), unique.len(), "a row twice at commit {i}");
        assert!(
            at.last().is_none_or(|last| *last < expected.len() as u64),
            "a row never sent at commit {i}"
        );
        let done = ingested.iter().filter(|n| **n <= i + 1).count();
        let mut delivered: Vec<u64> = expected[..done * per_day].to_vec();
        delivered.sort_unstable();
        let missing = delivered
            .iter()
            .filter(|seq| at.binary_search(seq).is_err())
            .count();
        assert_eq!(missing, 0, "rows of delivered days missing at commit {i}");
    }
    eprintln!(
        "simulated {days} days of {PIPELINES} pipelines: {} commits, {max_files} files at most before a compaction",
        hub.commits().len()
    );

    // The readers users have: DuckDB over a snapshot, and `datasets`.
    let Some(python) = meathook_testkit::python::interpreter() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/year_readers.py");
    let names: Vec<String> = (0..PIPELINES).map(name).collect();
    let mut cmd = std::process::Command::new(&python);
    cmd.env("HF_ENDPOINT", hub.endpoint())
        .env("HF_HOME", work.path().join("hf-home"))
        .env("HF_DATASETS_CACHE", work.path().join("datasets-cache"))
        .env("HF_HUB_OFFLINE", "0")
        .env("HF_DATASETS_OFFLINE", "0")
        .env_remove("HF_TOKEN")
        .arg(script)
        .arg(hub.endpoint())
        .arg(REPO)
        .arg(support::TOKEN)
        .arg(work.path().join("cache"))
        .arg(names.join(","));
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(
        out.stdout
            .rsplit(|b| *b == b'\n')
            .find(|l| !l.is_empty())
            .unwrap(),
    )
    .unwrap();
    let per_pipeline = days * PER_DAY;
    for n in &names {
        for reader in ["duckdb", "datasets"] {
            assert_eq!(
                answer[n][reader],
                serde_json::json!([per_pipeline, per_pipeline]),
                "{reader} reading {n}: {answer}"
            );
        }
    }
}
