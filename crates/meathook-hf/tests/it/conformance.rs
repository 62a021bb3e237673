//! The `Sink` conformance suite against `HfSink` committing to a fake Hub.

#![allow(clippy::unwrap_used)] // tests: panics are failures

use meathook_hf::HfSink;
use meathook_testkit::conformance::{self, SinkHarness};
use meathook_testkit::hub::{FakeHub, FakeHubConfig};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;
use time::OffsetDateTime;
use time::macros::datetime;

const REPO: &str = "org/readings";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Row {
    station: String,
    seq: u64,
    value: f64,
    // Nanoseconds, whose range ends in 2262, so a record can be rejected.
    #[serde(with = "meathook_parquet::timestamp_ns")]
    at: OffsetDateTime,
}

fn row(i: usize, at: OffsetDateTime) -> Row {
    Row {
        station: format!("S{:02}", i % 7),
        seq: i as u64,
        value: i as f64 * 0.25 - 3.0,
        at,
    }
}

/// Every row of every parquet file of the dataset, on `main`.
fn rows(hub: &FakeHub) -> Vec<Row> {
    hub.files(REPO, "main")
        .into_iter()
        .filter(|f| f.path.ends_with(".parquet"))
        .flat_map(|f| {
            let bytes = hub.download(REPO, "main", &f.path).unwrap();
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                bytes::Bytes::from(bytes),
            )
            .unwrap()
            .build()
            .unwrap();
            reader
                .flat_map(|b| serde_arrow::from_record_batch::<Vec<Row>>(&b.unwrap()).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `HfSink` on a fresh fake Hub. The refusing one writes to a dataset that
/// does not exist (a permanent 404); a timestamp parquet cannot hold (in
/// 2300) is rejected alone.
struct Hub;

impl Hub {
    async fn sink(auto_create: bool) -> (HfSink<Row>, (FakeHub, TempDir)) {
        let hub = FakeHub::start(FakeHubConfig {
            auto_create,
            ..FakeHubConfig::default()
        })
        .await
        .unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let sink = crate::support::sink_as(&hub.endpoint(), "hf_test_token", scratch.path());
        (sink, (hub, scratch))
    }
}

impl SinkHarness<Row> for Hub {
    type Sink = HfSink<Row>;
    type Destination = (FakeHub, TempDir);

    async fn sink(&mut self) -> (Self::Sink, Self::Destination) {
        Self::sink(true).await
    }

    async fn refusing_sink(&mut self) -> Option<(Self::Sink, Self::Destination)> {
        Some(Self::sink(false).await)
    }

    async fn delivered(&mut self, (hub, _): &Self::Destination) -> Vec<Row> {
        rows(hub)
    }

    fn record(&mut self, i: usize) -> Row {
        row(i, datetime!(2026-11-23 10:56 UTC))
    }

    fn rejected_record(&mut self, i: usize) -> Option<Row> {
        Some(row(i, datetime!(2300-01-01 0:00 UTC)))
    }

    fn is_terminal(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hf_sink_conforms() {
    let report = conformance::check(&mut Hub).await;
    assert!(report.skipped().is_empty(), "{report:?}");
}
