//! Limits and the full policies: backpressure, drops counted by reason,
//! utilisation and credits.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)] // tests; small fixed sizes

use crate::support;

use meathook_core::{ErrorClass, Sink, SinkError};
use meathook_spool::{DiskSpool, FullPolicy, SpoolError};
use support::simfs::SimFs;
use support::{HOUR, Mode, Reading, Recorder, T0, at, hourly, quick_backoff, reading};

const DIR: &str = "/spool";

fn spool(
    fs: &SimFs,
    out: &Recorder<Reading>,
    full: FullPolicy,
) -> DiskSpool<Recorder<Reading>, Reading, SimFs> {
    DiskSpool::new(out.clone(), DIR, hourly())
        .with_fs(fs.clone())
        .with_backoff(quick_backoff())
        .with_full_policy(full)
        .with_min_free_bytes(0)
        .with_max_bytes(4000)
}

/// Fills the spool with one sealed window per batch until it refuses.
async fn fill(s: &mut DiskSpool<Recorder<Reading>, Reading, SimFs>) -> u64 {
    let mut hour = 0;
    loop {
        let batch: Vec<Reading> = (hour * 10..hour * 10 + 10).map(reading).collect();
        match s.ingest(&at(hour as i64 * 3600), batch).await {
            Ok(r) if r.accepted() == 10 => {}
            _ => return hour,
        }
        s.advance(T0 + HOUR * (hour as u32 + 1)).await.unwrap();
        hour += 1;
        assert!(hour < 100, "never full");
    }
}

#[tokio::test]
async fn block_refuses_and_hands_back_until_delivery_frees_space() {
    let fs = SimFs::default();
    let out = Recorder::default();
    out.set_mode(Mode::Transient);
    let mut s = spool(&fs, &out, FullPolicy::Block);
    let hours = fill(&mut s).await;
    assert!(hours >= 3, "{hours}");
    let stats = s.stats();
    assert!(stats.utilisation() > 0.8, "{}", stats.utilisation());
    let refused: Vec<Reading> = (1000..1010).map(reading).collect();
    let err = s
        .ingest(&at(hours as i64 * 3600), refused.clone())
        .await
        .unwrap_err();
    assert_eq!(err.records(), &refused[..]);
    assert!(
        matches!(
            err.error(),
            SpoolError::Full {
                max_bytes: Some(4000),
                by_free_space: false,
                ..
            }
        ),
        "{}",
        err.error()
    );
    assert_eq!(err.error().class(), ErrorClass::Transient);
    assert!(stats.credits().bytes < 400);
    // The inner sink comes back: space returns, ingest works again.
    out.set_mode(Mode::Accept);
    s.flush().await.unwrap();
    assert_eq!(out.records().len() as u64, hours * 10, "nothing dropped");
    assert!(stats.utilisation() < 0.05, "{}", stats.utilisation());
    s.ingest(&at(hours as i64 * 3600), refused).await.unwrap();
    let snap = stats.snapshot();
    assert_eq!(snap.dropped_newest + snap.dropped_oldest, 0);
}

#[tokio::test]
async fn drop_newest_rejects_the_batch_and_counts_it() {
    let fs = SimFs::default();
    let out = Recorder::default();
    out.set_mode(Mode::Transient);
    let mut s = spool(&fs, &out, FullPolicy::DropNewest);
    let hours = fill(&mut s).await;
    let r = s
        .ingest(
            &at(hours as i64 * 3600),
            (1000..1010).map(reading).collect(),
        )
        .await
        .unwrap();
    assert_eq!(r.accepted(), 0);
    assert_eq!(r.rejected().len(), 10);
    assert!(matches!(r.rejected()[0].error, SpoolError::Dropped { .. }));
    // `fill` stopped on a dropped batch of 10, then these 10.
    assert_eq!(s.stats().snapshot().dropped_newest, 20);
    out.set_mode(Mode::Accept);
    s.flush().await.unwrap();
    assert_eq!(out.records().len() as u64, hours * 10);
}

#[tokio::test]
async fn drop_oldest_deletes_the_oldest_windows_and_counts_them() {
    let fs = SimFs::default();
    let out = Recorder::default();
    out.set_mode(Mode::Transient);
    let mut s = spool(&fs, &out, FullPolicy::DropOldest);
    for hour in 0..20u64 {
        let batch: Vec<Reading> = (hour * 10..hour * 10 + 10).map(reading).collect();
        let r = s.ingest(&at(hour as i64 * 3600), batch).await.unwrap();
        assert_eq!(r.accepted(), 10, "hour {hour}");
        s.advance(T0 + HOUR * (hour as u32 + 1)).await.unwrap();
    }
    let dropped = s.stats().snapshot().dropped_oldest;
    assert!(dropped > 0 && dropped.is_multiple_of(10), "{dropped}");
    out.set_mode(Mode::Accept);
    s.flush().await.unwrap();
    let got = out.records();
    assert_eq!(
        got.len() as u64 + dropped,
        200,
        "every record delivered or counted as dropped"
    );
    // What survives is the newest, in order (the in-flight oldest may survive too).
    let last: Vec<Reading> = (190..200).map(reading).collect();
    assert_eq!(&got[got.len() - 10..], &last[..]);
}

#[tokio::test]
async fn minimum_free_space_is_a_limit_too() {
    let fs = SimFs::default();
    fs.set_space(10_000);
    let out = Recorder::default();
    let mut s = DiskSpool::new(out.clone(), DIR, hourly())
        .with_fs(fs.clone())
        .with_min_free_bytes(9_000);
    s.ingest(&at(0), (0..10).map(reading).collect())
        .await
        .unwrap();
    fs.set_space(9_100);
    let err = s
        .ingest(&at(1), (0..10).map(reading).collect())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.error(),
            SpoolError::Full {
                min_free_bytes: 9_000,
                free_bytes: 9_100,
                max_bytes: None,
                by_free_space: true,
                ..
            }
        ),
        "{}",
        err.error()
    );
    let message = err.error().to_string();
    assert!(message.contains("/spool"), "{message}");
    // The cause is the free space, and no limit of 0 is made up.
    assert!(message.contains("9100 bytes free"), "{message}");
    assert!(message.contains("no byte limit"), "{message}");
    assert!(!message.contains("limit 0"), "{message}");
    fs.set_space(1 << 30);
    s.ingest(&at(2), (10..20).map(reading).collect())
        .await
        .unwrap();
    s.flush().await.unwrap();
    assert_eq!(out.records().len(), 20);
}

/// A spool reports when the window it is filling now closes: the end of
/// the current aligned window of its policy.
#[tokio::test]
async fn the_next_window_close_is_the_end_of_the_current_window() {
    let fs = SimFs::default();
    let out = Recorder::default();
    let mut s = spool(&fs, &out, FullPolicy::Block);
    s.open().await.unwrap();
    let before = time::OffsetDateTime::now_utc();
    let mut stats = meathook_core::StackStats::default();
    s.observe(&mut stats);
    let close = stats
        .next_close
        .expect("a windowing layer reports its close");
    assert!(
        close > before && close - before <= time::Duration::hours(1),
        "{close}"
    );
    assert_eq!(
        close.unix_timestamp() % 3600,
        0,
        "hourly windows close on the hour"
    );
}
