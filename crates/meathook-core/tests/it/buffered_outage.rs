//! `Buffered` in front of a layer that refuses for a while: records are held
//! (moved, never copied), retried with backoff, delivered exactly once, in
//! order, in their own window; at its bound the tier hands records back.

use crate::support;

use std::time::Duration;

use meathook_core::{
    Buffered, BufferedError, Capacity, Clock, FlushPolicy, Sink, StackStats, TokioClock, WindowMeta,
};
use support::{Reading, Recorder, stamp, tick_until};
use time::OffsetDateTime;
use time::macros::datetime;

const FIVE_MINUTES: Duration = Duration::from_secs(300);

#[tokio::test(start_paused = true)]
async fn a_recovering_downstream_gets_every_record_once_in_order_in_its_window() {
    let clock = TokioClock::starting_at(datetime!(2026-11-23 09:58 UTC));
    let down: Recorder<(u64, OffsetDateTime)> = Recorder::default();
    down.refuse_next(6);
    let mut tier = Buffered::new(down.clone(), FlushPolicy::every(FIVE_MINUTES).unwrap());

    let mut sent = Vec::new();
    for seq in 0..180u64 {
        let at = clock.now();
        tier.ingest(&stamp(at), vec![(seq, at)]).await.unwrap();
        sent.push((seq, at));
        let next = at + time::Duration::minutes(1);
        tick_until(&mut tier, &clock, next, Duration::from_secs(10)).await;
    }
    tier.flush().await.unwrap();

    let got = down.records();
    assert_eq!(got.len(), sent.len(), "every record exactly once");
    for ((window_start, (seq, at)), (sent_seq, _)) in got.iter().zip(&sent) {
        assert_eq!(seq, sent_seq, "delivered in order");
        let expected = WindowMeta::containing("air_temperature", *at, FIVE_MINUTES);
        assert_eq!(
            *window_start, expected.start,
            "record {seq} left its window"
        );
    }
    let stats = tier.stats();
    assert_eq!(stats.failed_attempts, 6);
    assert_eq!(stats.held_records, 0);
    // Backoff, not a retry per tick: 36 windows plus the 6 refusals, a few
    // retries at most beyond them.
    assert!(
        down.attempts() <= 36 + 6 + 2,
        "{} attempts",
        down.attempts()
    );
}

#[tokio::test(start_paused = true)]
async fn records_never_need_clone() {
    // `Reading` is not Clone: the tier can only move records, so a retry
    // cannot duplicate them.
    let clock = TokioClock::starting_at(datetime!(2026-11-23 10:00 UTC));
    let down: Recorder<Reading> = Recorder::default();
    down.refuse_next(3);
    let mut tier = Buffered::new(
        down.clone(),
        FlushPolicy::new(Duration::from_secs(60), 2).unwrap(),
    );
    for seq in 0..10 {
        tier.ingest(&stamp(clock.now()), vec![Reading { seq }])
            .await
            .unwrap();
        tick_until(
            &mut tier,
            &clock,
            clock.now() + time::Duration::seconds(20),
            Duration::from_secs(1),
        )
        .await;
    }
    tier.flush().await.unwrap();
    assert_eq!(down.seqs(), (0..10).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn at_its_bound_the_tier_hands_records_back_and_drops_nothing() {
    let clock = TokioClock::starting_at(datetime!(2026-11-23 10:00 UTC));
    let down: Recorder<Reading> = Recorder::default();
    down.refuse_next(usize::MAX);
    let capacity = Capacity {
        records: 10,
        bytes: usize::MAX,
    };
    let mut tier = Buffered::new(
        down.clone(),
        FlushPolicy::new(Duration::from_secs(60), 5).unwrap(),
    )
    .with_capacity(capacity);

    for seq in 0..10 {
        tier.ingest(&stamp(clock.now()), vec![Reading { seq }])
            .await
            .unwrap();
    }
    assert!((tier.utilisation() - 1.0).abs() < f64::EPSILON);
    let mut stats = StackStats::default();
    tier.observe(&mut stats);
    assert_eq!(stats.held_records, 10);
    assert!((stats.utilisation - 1.0).abs() < f64::EPSILON);
    assert_eq!(
        stats.oldest_undelivered,
        Some(datetime!(2026-11-23 10:00 UTC))
    );
    assert!(stats.failed_attempts > 0, "the refusals were not reported");
    let refused = tier
        .ingest(
            &stamp(clock.now()),
            vec![Reading { seq: 10 }, Reading { seq: 11 }],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused.error(),
            BufferedError::Full {
                held_records: 10,
                ..
            }
        ),
        "{refused}"
    );
    assert!(refused.to_string().contains("air_temperature"), "{refused}");
    let handed_back = refused.into_records();
    assert_eq!(handed_back, vec![Reading { seq: 10 }, Reading { seq: 11 }]);

    // A batch larger than the whole capacity can never fit.
    let huge: Vec<_> = (100..111).map(|seq| Reading { seq }).collect();
    let refused = tier.ingest(&stamp(clock.now()), huge).await.unwrap_err();
    assert!(matches!(
        refused.error(),
        BufferedError::TooLarge { records: 11, .. }
    ));
    assert_eq!(refused.into_records().len(), 11);

    // The layer below recovers: everything held arrives, then the handed-back
    // records can be offered again.
    down.refuse_next(0);
    tier.flush().await.unwrap();
    tier.ingest(&stamp(clock.now()), handed_back).await.unwrap();
    tier.flush().await.unwrap();
    assert_eq!(down.seqs(), (0..12).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn a_reading_at_10_56_through_a_5_minute_tier_into_an_hourly_layer_lands_in_10_00() {
    let clock = TokioClock::starting_at(datetime!(2026-11-23 10:56 UTC));
    let down: Recorder<&str> = Recorder::default();
    let hourly = Buffered::new(down.clone(), FlushPolicy::hourly());
    let mut stack = Buffered::new(hourly, FlushPolicy::every(FIVE_MINUTES).unwrap());

    stack
        .ingest(&stamp(clock.now()), vec!["10:56"])
        .await
        .unwrap();
    // The 5-minute tier lets go at 11:00, when the hourly window has closed too.
    tick_until(
        &mut stack,
        &clock,
        datetime!(2026-11-23 11:02 UTC),
        Duration::from_secs(1),
    )
    .await;
    stack
        .ingest(&stamp(clock.now()), vec!["11:02"])
        .await
        .unwrap();
    tick_until(
        &mut stack,
        &clock,
        datetime!(2026-11-23 12:00 UTC),
        Duration::from_secs(1),
    )
    .await;

    let delivered = down.delivered();
    assert_eq!(delivered.len(), 2);
    assert_eq!(delivered[0].0.start, datetime!(2026-11-23 10:00 UTC));
    assert_eq!(delivered[0].0.end, datetime!(2026-11-23 11:00 UTC));
    assert_eq!(delivered[0].1, vec!["10:56"]);
    assert_eq!(delivered[1].0.start, datetime!(2026-11-23 11:00 UTC));
    assert_eq!(delivered[1].1, vec!["11:02"]);
}
