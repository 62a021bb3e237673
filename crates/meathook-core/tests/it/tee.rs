//! `Tee`: each batch reaches each branch exactly once, even while the other
//! branch refuses.

use crate::support;

use std::time::Duration;

use meathook_core::{Branch, Capacity, Clock, Sink, Tee, TeeError, TokioClock};
use support::{Recorder, stamp, tick_until};
use time::macros::datetime;

#[tokio::test(start_paused = true)]
async fn the_healthy_branch_gets_each_batch_once_while_the_other_fails() {
    let clock = TokioClock::starting_at(datetime!(2026-11-23 10:00 UTC));
    let failing: Recorder<u32> = Recorder::default();
    let healthy: Recorder<u32> = Recorder::default();
    failing.refuse_next(5);
    let mut tee = Tee::new(failing.clone(), healthy.clone());

    for batch in 0..10u32 {
        let receipt = tee
            .ingest(&stamp(clock.now()), vec![batch * 2, batch * 2 + 1])
            .await
            .unwrap();
        assert_eq!(receipt.accepted(), 2);
        tick_until(
            &mut tee,
            &clock,
            clock.now() + time::Duration::seconds(2),
            Duration::from_secs(1),
        )
        .await;
    }
    tick_until(
        &mut tee,
        &clock,
        clock.now() + time::Duration::minutes(5),
        Duration::from_secs(1),
    )
    .await;

    let expected: Vec<u32> = (0..20).collect();
    assert_eq!(
        healthy.attempts(),
        10,
        "the healthy branch was offered a batch twice"
    );
    let healthy_records: Vec<u32> = healthy.records().into_iter().map(|(_, r)| r).collect();
    assert_eq!(healthy_records, expected);
    let failing_records: Vec<u32> = failing.records().into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        failing_records, expected,
        "the recovered branch lost, duplicated or reordered records"
    );
    let (left, right) = tee.stats();
    assert_eq!(left.failed_attempts, 5);
    assert_eq!(left.held_records, 0);
    assert_eq!(right.failed_attempts, 0);
}

#[tokio::test]
async fn when_both_branches_refuse_the_caller_keeps_the_batch() {
    let left: Recorder<u32> = Recorder::default();
    let right: Recorder<u32> = Recorder::default();
    left.refuse_next(1);
    right.refuse_next(1);
    let mut tee = Tee::new(left.clone(), right.clone());
    let at = datetime!(2026-11-23 10:00 UTC);

    let refused = tee.ingest(&stamp(at), vec![1, 2, 3]).await.unwrap_err();
    assert!(matches!(refused.error(), TeeError::Both { .. }));
    assert_eq!(refused.into_records(), vec![1, 2, 3]);
    let (l, r) = tee.stats();
    assert_eq!(
        (l.held_records, r.held_records),
        (0, 0),
        "a refused batch was also kept"
    );

    tee.flush().await.unwrap();
    assert!(left.records().is_empty() && right.records().is_empty());
}

#[tokio::test]
async fn a_full_backlog_refuses_before_any_branch_is_offered() {
    let lagging: Recorder<u32> = Recorder::default();
    let healthy: Recorder<u32> = Recorder::default();
    lagging.refuse_next(usize::MAX);
    let capacity = Capacity {
        records: 4,
        bytes: usize::MAX,
    };
    let mut tee = Tee::new(lagging.clone(), healthy.clone()).with_capacity(capacity);
    let at = datetime!(2026-11-23 10:00 UTC);

    tee.ingest(&stamp(at), vec![1, 2]).await.unwrap();
    tee.ingest(&stamp(at), vec![3, 4]).await.unwrap();
    let offered = healthy.attempts();
    let refused = tee.ingest(&stamp(at), vec![5]).await.unwrap_err();
    assert!(
        matches!(
            refused.error(),
            TeeError::Backlogged {
                branch: Branch::Left,
                ..
            }
        ),
        "{}",
        refused.error()
    );
    assert_eq!(
        healthy.attempts(),
        offered,
        "the healthy branch saw a batch the tee refused"
    );
    assert_eq!(refused.into_records(), vec![5]);

    lagging.refuse_next(0);
    tee.flush().await.unwrap();
    let records: Vec<u32> = lagging.records().into_iter().map(|(_, r)| r).collect();
    assert_eq!(records, vec![1, 2, 3, 4]);
}
