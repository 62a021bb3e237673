//! Injected disk faults through the filesystem seam: running out of space
//! part way through a write, failed fsyncs, a crash that drops unsynced
//! bytes. Nothing unwritten is acknowledged; everything acknowledged
//! survives; the spool carries on once the fault clears.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)] // tests; small fixed sizes

use crate::support;

use meathook_core::{ErrorClass, Sink, SinkError};
use meathook_spool::{DiskSpool, SpoolError};
use support::simfs::SimFs;
use support::{HOUR, Reading, Recorder, T0, at, hourly, reading};

const DIR: &str = "/spool";

fn spool(fs: &SimFs, out: &Recorder<Reading>) -> DiskSpool<Recorder<Reading>, Reading, SimFs> {
    DiskSpool::new(out.clone(), DIR, hourly()).with_fs(fs.clone())
}

/// Crashes (dropping everything unsynced), restarts, delivers everything;
/// returns all that `out` received, before and after the crash.
async fn crash_and_replay(
    fs: &SimFs,
    old: DiskSpool<Recorder<Reading>, Reading, SimFs>,
    out: &Recorder<Reading>,
) -> Vec<Reading> {
    old.close().await;
    fs.crash(|_| 0);
    let mut again = spool(fs, out);
    again.flush().await.unwrap();
    again.close().await;
    out.records()
}

#[tokio::test]
async fn enospc_mid_write_acknowledges_nothing_of_the_batch_and_recovers_when_space_returns() {
    let fs = SimFs::default();
    let out = Recorder::default();
    let mut s = spool(&fs, &out);
    s.ingest(&at(0), (0..10).map(reading).collect())
        .await
        .unwrap();
    fs.fail_writes_after(30); // the next frame is cut after 30 bytes
    let err = s
        .ingest(&at(1), (10..20).map(reading).collect())
        .await
        .unwrap_err();
    assert_eq!(err.records().len(), 10, "the records are handed back");
    assert!(
        matches!(err.error(), SpoolError::Io { op: "append", .. }),
        "{}",
        err.error()
    );
    assert_eq!(err.error().class(), ErrorClass::Transient);
    assert!(
        err.error().to_string().contains("no space left"),
        "{}",
        err.error()
    );
    // Still full: refused again, nothing half-written is acknowledged.
    assert!(
        s.ingest(&at(2), (20..30).map(reading).collect())
            .await
            .is_err()
    );
    fs.heal_writes();
    s.ingest(&at(3), (30..40).map(reading).collect())
        .await
        .unwrap();
    let expected: Vec<Reading> = (0..10).chain(30..40).map(reading).collect();
    // Delivered now...
    s.flush().await.unwrap();
    assert_eq!(out.records(), expected);
    // ...and, written again from scratch, after a crash too.
    let fs2 = SimFs::default();
    let out2 = Recorder::default();
    let mut s2 = spool(&fs2, &out2);
    s2.ingest(&at(0), (0..10).map(reading).collect())
        .await
        .unwrap();
    fs2.fail_writes_after(30);
    assert!(
        s2.ingest(&at(1), (10..20).map(reading).collect())
            .await
            .is_err()
    );
    fs2.heal_writes();
    s2.ingest(&at(3), (30..40).map(reading).collect())
        .await
        .unwrap();
    assert_eq!(crash_and_replay(&fs2, s2, &out2).await, expected);
}

#[tokio::test]
async fn a_failed_fsync_refuses_the_batch_abandons_the_segment_and_keeps_what_was_acknowledged() {
    let fs = SimFs::default();
    let out = Recorder::default();
    let mut s = spool(&fs, &out);
    s.ingest(&at(0), (0..10).map(reading).collect())
        .await
        .unwrap();
    fs.fail_next_syncs(1);
    let err = s
        .ingest(&at(1), (10..20).map(reading).collect())
        .await
        .unwrap_err();
    assert!(
        matches!(err.error(), SpoolError::Io { op: "fsync", .. }),
        "{}",
        err.error()
    );
    assert_eq!(err.into_records().len(), 10);
    assert_eq!(s.stats().snapshot().fsync_failures, 1);
    // The next batch goes to a new segment of the same window: the failed
    // one is never synced again.
    s.ingest(&at(2), (20..30).map(reading).collect())
        .await
        .unwrap();
    assert_eq!(
        s.stats().snapshot().segments_created,
        2,
        "a new segment after the failed fsync"
    );
    let expected: Vec<Reading> = (0..10).chain(20..30).map(reading).collect();
    assert_eq!(
        crash_and_replay(&fs, s, &out).await,
        expected,
        "the refused batch never appears"
    );
}

#[tokio::test]
async fn a_failed_fsync_without_a_crash_delivers_only_what_was_acknowledged() {
    let fs = SimFs::default();
    let out = Recorder::default();
    let mut s = spool(&fs, &out);
    s.ingest(&at(0), (0..10).map(reading).collect())
        .await
        .unwrap();
    fs.fail_next_syncs(1);
    assert!(
        s.ingest(&at(1), (10..20).map(reading).collect())
            .await
            .is_err()
    );
    s.ingest(&at(2), (20..30).map(reading).collect())
        .await
        .unwrap();
    s.advance(T0 + HOUR).await.unwrap();
    s.flush().await.unwrap();
    assert_eq!(
        out.records(),
        (0..10).chain(20..30).map(reading).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_failed_seal_fsync_keeps_the_window_for_delivery() {
    let fs = SimFs::default();
    let out = Recorder::default();
    let mut s = spool(&fs, &out);
    s.ingest(&at(0), (0..5).map(reading).collect())
        .await
        .unwrap();
    fs.fail_next_syncs(1);
    let err = s.advance(T0 + HOUR).await.unwrap_err();
    assert!(matches!(err, SpoolError::Io { op: "seal", .. }), "{err}");
    s.flush().await.unwrap();
    assert_eq!(out.records(), (0..5).map(reading).collect::<Vec<_>>());
}

/// An abandon whose rename reached the directory but whose directory sync
/// failed: the worker finds the segment under its new name and delivers
/// it, and everything queued behind it, instead of stalling for ever.
#[tokio::test]
async fn an_abandon_with_a_failed_directory_sync_does_not_stall_delivery() {
    let fs = SimFs::default();
    let out = Recorder::default();
    let mut s = spool(&fs, &out).with_flush_deadline(std::time::Duration::from_secs(10));
    s.ingest(&at(0), (0..10).map(reading).collect())
        .await
        .unwrap();
    fs.fail_next_syncs(1); // the next append's fsync fails: abandon
    fs.fail_dir_syncs(0, 1); // and the abandon's directory sync too
    let refused = s
        .ingest(&at(1), (10..20).map(reading).collect())
        .await
        .unwrap_err();
    assert_eq!(refused.records().len(), 10, "handed back");
    s.ingest(&at(2), (20..30).map(reading).collect())
        .await
        .unwrap();
    s.advance(T0 + HOUR).await.unwrap();
    s.flush().await.unwrap();
    let mut got: Vec<f64> = out.records().iter().map(|r| r.value).collect();
    got.sort_by(f64::total_cmp);
    let mut want: Vec<f64> = (0..10).chain(20..30).map(|i| reading(i).value).collect();
    want.sort_by(f64::total_cmp);
    assert_eq!(got, want);
    s.close().await;
}

/// Under group commit, a failed sync of one window's segment in the middle
/// of an append that fills another's: the batch is acknowledged, the writer
/// seals the right segment (it used to index past the end and panic), and a
/// restart delivers everything acknowledged exactly once.
#[tokio::test]
async fn a_group_sync_failure_during_a_filling_append_seals_the_right_segment() {
    let fs = SimFs::default();
    let out = Recorder::default();
    let mut s = spool(&fs, &out)
        .with_durability(meathook_spool::Durability::Interval(
            std::time::Duration::from_millis(50),
        ))
        .with_max_segment_bytes(600);
    s.ingest(&at(0), vec![reading(0)]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(120)).await;
    fs.fail_next_syncs(1); // the group sync of the first window's segment
    s.ingest(&at(3601), (1..101).map(reading).collect())
        .await
        .unwrap();
    s.ingest(&at(3602), vec![reading(101)]).await.unwrap();
    s.advance(T0 + HOUR * 3).await.unwrap();
    s.flush().await.unwrap();
    s.close().await;
    let mut got: Vec<f64> = out.records().iter().map(|r| r.value).collect();
    got.sort_by(f64::total_cmp);
    let mut want: Vec<f64> = (0..102).map(|i| reading(i).value).collect();
    want.sort_by(f64::total_cmp);
    assert_eq!(got, want, "every acknowledged reading, once");
}
