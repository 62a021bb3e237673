//! The `Sink` conformance suite against `DiskSpool` over a recording inner
//! sink.

#![allow(clippy::unwrap_used)] // tests: panics are failures

use meathook_core::FlushPolicy;
use meathook_spool::DiskSpool;
use meathook_testkit::conformance::{self, Recorder, SinkHarness};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reading {
    station: String,
    seq: u64,
    note: String,
}

/// Records larger than this are rejected alone.
const MAX_RECORD: usize = 4096;

fn reading(i: usize, note_len: usize) -> Reading {
    Reading {
        station: format!("S{:03}", i % 64),
        seq: i as u64,
        note: "x".repeat(note_len),
    }
}

type Spool = DiskSpool<Recorder<Reading>, Reading>;

/// A spool in a fresh temporary directory, delivering to a recorder. The
/// refusing one may hold 64 bytes, less than any batch of the suite.
struct Spooled;

impl Spooled {
    fn spool(max_bytes: Option<u64>) -> (Spool, (Recorder<Reading>, TempDir)) {
        let dir = tempfile::tempdir().unwrap();
        let below = Recorder::new();
        let mut spool = DiskSpool::new(below.clone(), dir.path(), FlushPolicy::hourly())
            .with_min_free_bytes(0)
            .with_max_record_bytes(MAX_RECORD);
        if let Some(max) = max_bytes {
            spool = spool.with_max_bytes(max);
        }
        (spool, (below, dir))
    }
}

impl SinkHarness<Reading> for Spooled {
    type Sink = Spool;
    type Destination = (Recorder<Reading>, TempDir);

    async fn sink(&mut self) -> (Spool, Self::Destination) {
        Self::spool(None)
    }

    async fn refusing_sink(&mut self) -> Option<(Spool, Self::Destination)> {
        Some(Self::spool(Some(64)))
    }

    async fn delivered(&mut self, (below, _): &Self::Destination) -> Vec<Reading> {
        below.records()
    }

    fn record(&mut self, i: usize) -> Reading {
        reading(i, 8)
    }

    fn rejected_record(&mut self, i: usize) -> Option<Reading> {
        Some(reading(i, 2 * MAX_RECORD))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_spool_conforms() {
    let report = conformance::check(&mut Spooled).await;
    // The spool is not terminal: it gives each batch it delivers its own
    // identity, so a replay into it is a new batch.
    assert_eq!(report.skipped(), ["replay"]);
}
