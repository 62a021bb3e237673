//! Shared by the HF sink's tests: a reading type, a sink pointed at a fake
//! Hub with quick retries, and a reader of what the fake holds.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test support, shared by several test crates

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use meathook_core::{Backoff, BatchId, WindowMeta};
use meathook_hf::HfSink;
use meathook_testkit::hub::FakeHub;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::macros::datetime;

pub const REPO: &str = "org/readings";
pub const TOKEN: &str = "hf_test_token_5b1e0c";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub station: String,
    pub seq: u64,
    pub value: f64,
}

pub fn readings(from: u64, n: u64) -> Vec<Reading> {
    (from..from + n)
        .map(|seq| Reading {
            station: format!("S{:02}", seq % 7),
            seq,
            value: seq as f64 * 0.25 - 3.0,
        })
        .collect()
}

pub const T0: OffsetDateTime = datetime!(2026-11-23 10:00 UTC);

/// The `i`th hourly window of `pipeline`, as a spool would deliver it.
pub fn window(pipeline: &str, i: u64) -> WindowMeta {
    let at = T0 + time::Duration::hours(i as i64);
    WindowMeta::containing(pipeline, at, Duration::from_secs(3600))
        .with_batch(BatchId::legacy(i * 1000, i * 1000 + 999))
}

/// A sink for `REPO` on `hub`, with retries quick enough for a test and a
/// budget whose pacing slot (36 ms) does not hold a test up.
pub fn sink(hub: &FakeHub, scratch: &Path) -> HfSink<Reading> {
    sink_as(&hub.endpoint(), TOKEN, scratch)
}

/// [`sink`] for any record type, `endpoint` and `token`.
pub fn sink_as<R>(endpoint: &str, token: &str, scratch: &Path) -> HfSink<R>
where
    R: serde::Serialize + serde::de::DeserializeOwned,
{
    sink_for(endpoint, REPO, token, scratch)
}

/// [`sink_as`] for the repository `repo`.
pub fn sink_for<R>(endpoint: &str, repo: &str, token: &str, scratch: &Path) -> HfSink<R>
where
    R: serde::Serialize + serde::de::DeserializeOwned,
{
    HfSink::new(reqwest::Client::new(), repo, token)
        .with_endpoint(endpoint)
        .with_scratch_dir(scratch)
        .with_coalesce(Duration::from_millis(20))
        .with_commit_budget(100_000, Duration::from_secs(3600))
        .with_retries(
            5,
            Backoff::new(Duration::from_millis(10), Duration::from_millis(40)),
        )
        .with_timeouts(Duration::from_secs(5), Duration::from_secs(30))
}

/// Every parquet file of `repo` on `main`, read back: path → rows.
pub fn dataset(hub: &FakeHub, repo: &str) -> BTreeMap<String, Vec<Reading>> {
    hub.files(repo, "main")
        .into_iter()
        .filter(|f| f.path.ends_with(".parquet"))
        .map(|f| {
            let bytes = hub
                .download(repo, "main", &f.path)
                .expect("listed file downloads");
            (f.path, read_parquet(bytes))
        })
        .collect()
}

pub fn read_parquet(bytes: Vec<u8>) -> Vec<Reading> {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(bytes),
    )
    .unwrap()
    .build()
    .unwrap();
    reader
        .flat_map(|batch| serde_arrow::from_record_batch::<Vec<Reading>>(&batch.unwrap()).unwrap())
        .collect()
}

/// Asserts the dataset holds exactly `expected` rows: none lost, none
/// twice (every `seq` is unique in the tests).
pub fn assert_exactly(hub: &FakeHub, expected: &[Reading]) {
    let mut rows: Vec<Reading> = dataset(hub, REPO).into_values().flatten().collect();
    rows.sort_by_key(|r| r.seq);
    let seqs: Vec<u64> = rows.iter().map(|r| r.seq).collect();
    let mut unique = seqs.clone();
    unique.dedup();
    assert_eq!(
        seqs.len(),
        unique.len(),
        "duplicate rows in the dataset: {seqs:?}"
    );
    let mut want = expected.to_vec();
    want.sort_by_key(|r| r.seq);
    assert_eq!(rows.len(), want.len(), "rows lost or extra");
    assert_eq!(rows, want);
}
