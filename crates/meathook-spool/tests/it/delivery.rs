//! Background delivery: retries with backoff, dead-letter after permanent
//! refusals, and `ingest` never waiting on the inner sink.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)] // tests; small fixed sizes

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use meathook_core::{IngestError, Receipt, Sink, WindowMeta};
use meathook_spool::{DEAD_LETTER_DIR, DiskSpool, SpoolError};
use support::{HOUR, Mode, Reading, Recorder, T0, at, hourly, quick_backoff, reading};
use tokio::sync::Notify;

async fn until(mut cond: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("condition not reached");
}

#[tokio::test]
async fn transient_refusals_are_retried_until_the_inner_sink_accepts_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = Recorder::<Reading>::default();
    out.set_mode(Mode::Transient);
    let mut spool = DiskSpool::new(out.clone(), dir.path(), hourly()).with_backoff(quick_backoff());
    spool
        .ingest(&at(0), (0..10).map(reading).collect())
        .await
        .unwrap();
    spool.advance(T0 + HOUR).await.unwrap();
    until(|| out.attempts() >= 3).await;
    let stats = spool.stats();
    assert!(stats.snapshot().deliveries_failed >= 3);
    assert!(stats.snapshot().deliveries_retried >= 2);
    out.set_mode(Mode::Accept);
    assert_eq!(
        out.wait_for(10).await,
        (0..10).map(reading).collect::<Vec<_>>()
    );
    spool.flush().await.unwrap();
    assert_eq!(out.batches().len(), 1, "delivered exactly once");
    assert_eq!(spool.stats().snapshot().dead_lettered_records, 0);
}

#[tokio::test]
async fn permanent_refusals_move_the_segment_to_dead_letter_with_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Recorder::<Reading>::default();
    out.set_mode(Mode::Permanent);
    let mut spool = DiskSpool::new(out.clone(), dir.path(), hourly())
        .with_backoff(quick_backoff())
        .with_dead_letter_after(3);
    spool
        .ingest(&at(0), (0..7).map(reading).collect())
        .await
        .unwrap();
    spool.advance(T0 + HOUR).await.unwrap();
    let stats = spool.stats();
    until(|| stats.snapshot().dead_lettered_records == 7).await;
    assert_eq!(out.attempts(), 3, "never retried forever");
    let dl = dir.path().join(DEAD_LETTER_DIR);
    let mut names: Vec<String> = std::fs::read_dir(&dl)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names[0].ends_with(".seg") && names[1].ends_with(".seg.reason"),
        "{names:?}"
    );
    let reason = std::fs::read_to_string(dl.join(&names[1])).unwrap();
    assert!(
        reason.contains("destination refused (permanently)") && reason.contains("records: 7"),
        "{reason}"
    );
    // The next window is delivered normally.
    out.set_mode(Mode::Accept);
    spool
        .ingest(&at(3600), (7..9).map(reading).collect())
        .await
        .unwrap();
    spool.flush().await.unwrap();
    assert_eq!(out.records(), (7..9).map(reading).collect::<Vec<_>>());
}

/// Never finishes an ingest until released.
#[derive(Clone)]
struct Stuck(Arc<Notify>);

impl Sink<Reading> for Stuck {
    type Error = support::Refused;

    async fn ingest(
        &mut self,
        _: &WindowMeta,
        records: Vec<Reading>,
    ) -> Result<Receipt<Self::Error>, IngestError<Reading, Self::Error>> {
        self.0.notified().await;
        Ok(Receipt::all(records.len()))
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[tokio::test]
async fn a_hanging_inner_sink_does_not_hold_up_ingest_and_flush_gives_up_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let release = Arc::new(Notify::new());
    let mut spool = DiskSpool::new(Stuck(Arc::clone(&release)), dir.path(), hourly())
        .with_flush_deadline(Duration::from_millis(100));
    spool.ingest(&at(0), vec![reading(0)]).await.unwrap();
    spool.advance(T0 + HOUR).await.unwrap(); // delivery starts and hangs
    let ingests = async {
        for i in 1..50 {
            spool
                .ingest(&at(3600 + i), vec![reading(i as u64)])
                .await
                .unwrap();
        }
    };
    // A guard against a hang, not a speed check.
    tokio::time::timeout(Duration::from_secs(30), ingests)
        .await
        .expect("ingest waited on delivery");
    let err = spool.flush().await.unwrap_err();
    assert!(
        matches!(err, SpoolError::FlushTimeout { segments: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("stay on disk"), "{err}");
    assert_eq!(spool.stats().snapshot().records_appended, 50);
    release.notify_waiters();
}

/// A flush that runs out of time says why: the last delivery attempt's
/// error (here a full destination), not only how many segments are left.
#[tokio::test]
async fn a_flush_timeout_names_the_last_delivery_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Recorder::<Reading>::default();
    out.set_mode(Mode::Transient);
    let mut spool = DiskSpool::new(out.clone(), dir.path(), hourly())
        .with_backoff(quick_backoff())
        .with_flush_deadline(Duration::from_millis(300));
    spool.ingest(&at(0), vec![reading(0)]).await.unwrap();
    let err = spool.flush().await.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(
            err,
            SpoolError::FlushTimeout {
                last_error: Some(_),
                ..
            }
        ),
        "{message}"
    );
    assert!(
        message.contains("the last delivery attempt failed: destination refused (for now)"),
        "{message}"
    );
    // The layer below recovers: the next flush delivers.
    out.set_mode(Mode::Accept);
    spool.flush().await.unwrap();
    assert_eq!(out.records().len(), 1);
    spool.close().await;
}

/// Dead letters are never overwritten: a spool that lost its `sequence`
/// file numbers its segments above those already moved aside.
#[tokio::test]
async fn a_fresh_sequence_never_overwrites_a_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..2u64 {
        let out = Recorder::<Reading>::default();
        out.set_mode(Mode::Permanent);
        let mut spool = DiskSpool::new(out.clone(), dir.path(), hourly())
            .with_backoff(quick_backoff())
            .with_dead_letter_after(1);
        spool
            .ingest(&at(0), (round * 10..round * 10 + 3).map(reading).collect())
            .await
            .unwrap();
        spool.advance(T0 + HOUR).await.unwrap();
        let stats = spool.stats();
        until(|| stats.snapshot().dead_lettered_records == 3).await;
        spool.close().await;
        std::fs::remove_file(dir.path().join("sequence")).unwrap();
    }
    let segments: Vec<String> = std::fs::read_dir(dir.path().join(DEAD_LETTER_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".reason"))
        .collect();
    assert_eq!(segments.len(), 2, "{segments:?}");
}
