//! The spool fuzz harness: one input becomes the contents of a spool
//! directory, which is inspected, opened (recovery), flushed into a counting
//! sink and inspected again, all through the public API.
//!
//! Shared by the `spool_recovery` fuzz target and the spool's
//! `tests/it/fuzz_corpus.rs`, which replays the saved corpus and fixtures.
//!
//! The first input byte picks what the rest becomes (`byte % 5`; bit 7
//! picks `.seg` over `.open` where it matters):
//!
//! | mode | the directory holds |
//! |---|---|
//! | 0 | the input as an open segment |
//! | 1 | the input as a sealed segment |
//! | 2 | a valid segment cut after `u16` bytes, then the input |
//! | 3 | a valid segment with the input XOR-ed in at a `u16` offset |
//! | 4 | a valid segment, and the input as the `sequence` file |
//!
//! The valid segment is written by the spool itself once per process, so it
//! follows whatever format the spool writes. Invariants: no panic, no hang
//! (the caller's timeout), no huge allocation (the caller's limit), and
//! the figures agree: what is delivered is what recovery counted, and
//! `inspect` counts what recovery counts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test harness: a panic is the report

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use meathook_core::{
    Backoff, ErrorClass, FlushPolicy, IngestError, Receipt, Sink, SinkError, WindowMeta,
};
use meathook_spool::{DiskSpool, StdFs, inspect};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The record type of the valid segment: strings, a float and a number, so
/// decoding is exercised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Reading {
    station: String,
    value: f64,
    seq: u64,
}

/// The file name the input is written under (segment id 1).
const OPEN: &str = "00000000000000000001.open";
const SEALED: &str = "00000000000000000001.seg";

/// The window of the valid segment: 2026-01-01 00:00 UTC, one hour.
fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap()
}

#[derive(Debug)]
pub(crate) struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused for now")
    }
}

impl std::error::Error for Refused {}

impl SinkError for Refused {
    fn class(&self) -> ErrorClass {
        ErrorClass::Transient
    }
}

/// Counts what it accepts, or refuses everything (to keep segments on disk).
#[derive(Debug, Clone)]
struct Counting {
    accept: bool,
    records: Arc<AtomicU64>,
}

impl Sink<Reading> for Counting {
    type Error = Refused;

    async fn ingest(
        &mut self,
        _window: &WindowMeta,
        records: Vec<Reading>,
    ) -> Result<Receipt<Refused>, IngestError<Reading, Refused>> {
        if !self.accept {
            return Err(IngestError::new(records, Refused));
        }
        self.records
            .fetch_add(records.len() as u64, Ordering::SeqCst);
        Ok(Receipt::all(records.len()))
    }

    async fn flush(&mut self) -> Result<(), Refused> {
        Ok(())
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    })
}

fn spool(dir: &Path, accept: bool, records: Arc<AtomicU64>) -> DiskSpool<Counting, Reading> {
    DiskSpool::new(
        Counting { accept, records },
        dir,
        FlushPolicy::every(Duration::from_secs(3600)).unwrap(),
    )
    .with_min_free_bytes(0)
    .with_backoff(Backoff::new(
        Duration::from_millis(1),
        Duration::from_millis(5),
    ))
    .with_flush_deadline(Duration::from_millis(500))
}

/// A valid open segment (three batches) and the same segment sealed, as the
/// spool writes them.
pub(crate) fn valid_segments() -> &'static (Vec<u8>, Vec<u8>) {
    static SEGMENTS: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    SEGMENTS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        runtime().block_on(async {
            let mut s = spool(dir.path(), false, Arc::default());
            s.open().await.unwrap();
            for b in 0..3u64 {
                let batch = (0..2 + b)
                    .map(|i| Reading {
                        station: format!("S{}", 100 + i),
                        value: 20.25 + i as f64,
                        seq: b * 10 + i,
                    })
                    .collect();
                let at = t0() + time::Duration::seconds(60 * b as i64);
                s.ingest(&WindowMeta::instant("air", at), batch)
                    .await
                    .unwrap();
            }
            let open = only_segment(dir.path());
            let open = std::fs::read(open).unwrap();
            s.advance(t0() + time::Duration::hours(2)).await.unwrap();
            let sealed = std::fs::read(only_segment(dir.path())).unwrap();
            s.close().await;
            (open, sealed)
        })
    })
}

fn only_segment(dir: &Path) -> std::path::PathBuf {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "open" || e == "seg"))
        .collect();
    assert_eq!(found.len(), 1, "the spool wrote {found:?}");
    found.remove(0)
}

/// A `u16` offset from the first two bytes, and the bytes after them.
fn offset(rest: &[u8]) -> (usize, &[u8]) {
    match rest {
        [a, b, tail @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), tail),
        _ => (0, rest),
    }
}

/// Lays the input out in `dir` as its first byte says (see the module doc).
fn lay_out(dir: &Path, data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let name = if mode & 0x80 == 0 { OPEN } else { SEALED };
    let (open, sealed) = valid_segments();
    let valid = if mode & 0x80 == 0 { open } else { sealed };
    match mode % 5 {
        0 => std::fs::write(dir.join(OPEN), rest).unwrap(),
        1 => std::fs::write(dir.join(SEALED), rest).unwrap(),
        2 => {
            let (cut, tail) = offset(rest);
            let mut bytes = valid[..cut.min(valid.len())].to_vec();
            bytes.extend_from_slice(tail);
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        3 => {
            let (at, tail) = offset(rest);
            let mut bytes = valid.clone();
            let at = at % (bytes.len() + 1);
            for (i, x) in tail.iter().enumerate() {
                match bytes.get_mut(at + i) {
                    Some(b) => *b ^= x,
                    None => bytes.push(*x),
                }
            }
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        _ => {
            std::fs::write(dir.join(name), valid).unwrap();
            std::fs::write(dir.join("sequence"), rest).unwrap();
        }
    }
}

/// What one run saw, for the regression test's summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Records recovery counted in valid frames.
    pub(crate) recovered: u64,
    /// Records recovery counted as lost to damage.
    pub(crate) lost: u64,
    /// Records the counting sink received.
    pub(crate) delivered: u64,
    /// Whether the flush delivered everything in time.
    pub(crate) flushed: bool,
}

/// Runs one input; panics when an invariant breaks.
pub(crate) fn run(data: &[u8]) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join("spool");
    std::fs::create_dir(&spool_dir).unwrap();
    lay_out(&spool_dir, data);

    // Read-only first: what `meathook-spool inspect|verify` would print.
    let before = inspect(&StdFs, &spool_dir).expect("inspect could not list the directory");
    let _ = before.is_damaged();

    let delivered = Arc::new(AtomicU64::new(0));
    let outcome = runtime().block_on(async {
        let mut s = spool(&spool_dir, true, delivered.clone());
        if let Err(e) = s.open().await {
            panic!("the spool did not open over one damaged segment: {e}");
        }
        let report = s
            .recovery_report()
            .expect("no recovery report after open")
            .clone();
        let flushed = s.flush().await.is_ok();
        // Records found unreadable only when delivery decodes them (a frame
        // whose checksum holds but whose records do not) are counted as
        // quarantined then, beyond what recovery counted.
        let lost_later = s
            .stats()
            .snapshot()
            .quarantined_records
            .saturating_sub(report.lost_records);
        s.close().await;
        let delivered = delivered.load(Ordering::SeqCst);
        assert!(
            delivered + lost_later <= report.records,
            "delivered {delivered} records and lost {lost_later}, recovery found only {}: {report:?}",
            report.records
        );
        if flushed {
            assert_eq!(
                delivered + lost_later,
                report.records,
                "the flush succeeded but a recovered record neither arrived nor was counted lost: {report:?}"
            );
        }
        let recovered_segments: Vec<_> = before.segments.iter().collect();
        let inspected: u64 = recovered_segments.iter().map(|s| s.records).sum();
        assert_eq!(
            inspected, report.records,
            "inspect counted {inspected} records, recovery {}: {before:?} {report:?}",
            report.records
        );
        Outcome {
            recovered: report.records,
            lost: report.lost_records,
            delivered,
            flushed,
        }
    });

    // Inspecting what is left must work too (quarantine copies included).
    let after =
        inspect(&StdFs, &spool_dir).expect("inspect could not list the directory after recovery");
    if outcome.flushed {
        assert!(
            after.segments.is_empty(),
            "the flush succeeded but segments are left: {after:?}"
        );
    }
    outcome
}
