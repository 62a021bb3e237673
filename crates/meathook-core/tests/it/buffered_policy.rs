//! When `Buffered` flushes: on window close, on record and byte caps, and
//! when time passes with no records at all. Paused tokio clock throughout.

use crate::support;

use std::time::Duration;

use meathook_core::{Buffered, Clock, Drain, FlushPolicy, Sink, StackStats, TokioClock};
use support::{Recorder, stamp, tick_until};
use time::macros::datetime;

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn a_window_flushes_when_it_closes_not_before() {
    let clock = TokioClock::starting_at(datetime!(2026-11-23 10:56 UTC));
    let down = Recorder::default();
    let mut tier = Buffered::new(
        down.clone(),
        FlushPolicy::every(Duration::from_secs(300)).unwrap(),
    );

    tier.ingest(&stamp(clock.now()), vec![1u32, 2, 3])
        .await
        .unwrap();
    tick_until(
        &mut tier,
        &clock,
        datetime!(2026-11-23 10:59:59 UTC),
        SECOND,
    )
    .await;
    assert!(
        down.delivered().is_empty(),
        "flushed before the window closed"
    );

    tick_until(
        &mut tier,
        &clock,
        datetime!(2026-11-23 11:00:00 UTC),
        SECOND,
    )
    .await;
    let delivered = down.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].0.start, datetime!(2026-11-23 10:55 UTC));
    assert_eq!(delivered[0].0.end, datetime!(2026-11-23 11:00 UTC));
    assert_eq!(delivered[0].1, vec![1, 2, 3]);
}

#[tokio::test(start_paused = true)]
async fn the_record_cap_flushes_at_once() {
    let clock = TokioClock::starting_at(datetime!(2026-11-23 10:00 UTC));
    let down = Recorder::default();
    let mut tier = Buffered::new(
        down.clone(),
        FlushPolicy::new(Duration::from_secs(3600), 10).unwrap(),
    );

    for i in 0..9u32 {
        tier.ingest(&stamp(clock.now()), vec![i]).await.unwrap();
    }
    assert!(down.delivered().is_empty());
    tier.ingest(&stamp(clock.now()), vec![9]).await.unwrap();
    // No time passed: the cap alone fired.
    let records: Vec<u32> = down.records().into_iter().map(|(_, r)| r).collect();
    assert_eq!(records, (0..10).collect::<Vec<_>>());
    assert_eq!(down.delivered().len(), 1, "one window leaves as one batch");
}

#[tokio::test(start_paused = true)]
async fn the_byte_cap_flushes_at_once() {
    let clock = TokioClock::starting_at(datetime!(2026-11-23 10:00 UTC));
    let down = Recorder::default();
    let policy = FlushPolicy::hourly().with_max_bytes(100).unwrap();
    let mut tier = Buffered::new(down.clone(), policy).with_weigher(|s: &String| s.len());

    tier.ingest(&stamp(clock.now()), vec!["x".repeat(60)])
        .await
        .unwrap();
    assert!(down.delivered().is_empty());
    tier.ingest(&stamp(clock.now()), vec!["y".repeat(40)])
        .await
        .unwrap();
    assert_eq!(down.records().len(), 2);
    assert_eq!(tier.stats().held_bytes, 0);
}

#[tokio::test(start_paused = true)]
async fn windows_close_on_time_when_no_records_arrive() {
    let clock = TokioClock::starting_at(datetime!(2026-11-23 10:56 UTC));
    let down = Recorder::default();
    let mut tier = Buffered::new(down.clone(), FlushPolicy::hourly());

    tier.ingest(&stamp(clock.now()), vec!["only reading"])
        .await
        .unwrap();
    // Polls return nothing from here on; only time passes.
    tick_until(
        &mut tier,
        &clock,
        datetime!(2026-11-23 10:59:59 UTC),
        Duration::from_secs(1),
    )
    .await;
    assert!(down.delivered().is_empty());
    tick_until(
        &mut tier,
        &clock,
        datetime!(2026-11-23 11:00:01 UTC),
        Duration::from_secs(1),
    )
    .await;
    let delivered = down.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].0.start, datetime!(2026-11-23 10:00 UTC));
}

#[tokio::test(start_paused = true)]
async fn flush_delivers_the_open_window_and_flushes_below() {
    let clock = TokioClock::starting_at(datetime!(2026-11-23 10:10 UTC));
    let down = Recorder::default();
    let mut tier = Buffered::new(down.clone(), FlushPolicy::hourly());
    tier.ingest(&stamp(clock.now()), vec![7u8]).await.unwrap();
    tier.flush().await.unwrap();
    assert_eq!(down.records().len(), 1);
    assert_eq!(down.flushes(), 1);
}

#[tokio::test(start_paused = true)]
async fn draining_to_keep_the_active_window_still_empties_memory() {
    let clock = TokioClock::starting_at(datetime!(2026-11-23 10:10 UTC));
    let down = Recorder::default();
    let mut tier = Buffered::new(down.clone(), FlushPolicy::hourly());
    tier.ingest(&stamp(clock.now()), vec![1u8, 2])
        .await
        .unwrap();
    // Memory is not durable: even "keep the active window" hands it below,
    // where a durable layer would keep it.
    tier.drain(Drain::KeepActiveWindow).await.unwrap();
    assert_eq!(down.records().len(), 2);
    let mut stats = StackStats::default();
    tier.observe(&mut stats);
    assert_eq!((stats.held_records, stats.delivered_records), (0, 2));
}
