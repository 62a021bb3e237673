//! Backpressure: a stalled destination fills the memory tier; polling
//! stretches, then pauses; nothing collected is lost; it all arrives once the
//! destination recovers.

use crate::support;

use std::time::Duration;

use meathook_core::{Backoff, Buffered, Capacity, FlushPolicy, TokioClock};
use meathook_runtime::{Pipeline, Telemetry};
use support::{Gate, Script, Scripted, offsets};
use time::macros::datetime;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn a_stalled_destination_slows_then_pauses_polling_and_loses_nothing() {
    let t0 = Instant::now();
    let gate = Gate::default();
    gate.close();
    let capacity = Capacity {
        records: 20,
        bytes: usize::MAX,
    };
    let stack = Buffered::new(
        gate.clone(),
        FlushPolicy::new(Duration::from_secs(60), 1).unwrap(),
    )
    .with_capacity(capacity)
    .with_backoff(Backoff::new(
        Duration::from_secs(1),
        Duration::from_secs(10),
    ));
    let script = Script::new([]);
    let pipeline = Pipeline::new(
        Scripted {
            name: "p",
            script: script.clone(),
        },
        stack,
        Duration::from_secs(1),
    )
    .with_clock(TokioClock::starting_at(datetime!(2026-11-23 10:00 UTC)));
    let telemetry = Telemetry::new();
    let recover = {
        let gate = gate.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(120)).await;
            gate.open();
            tokio::time::sleep(Duration::from_secs(120)).await;
        }
    };
    pipeline.run_until(recover, &telemetry).await.unwrap();

    let polls = offsets(t0, &script.polls());
    let before_recovery: Vec<f64> = polls.iter().copied().filter(|t| *t < 120.0).collect();
    // Full speed is one poll a second; the tier holds 20 records, so polling
    // must have slowed and stopped well before 120 polls.
    assert!(
        before_recovery.len() <= 21,
        "{} polls while stalled: {before_recovery:?}",
        before_recovery.len()
    );
    let gaps: Vec<f64> = before_recovery.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().any(|g| *g > 1.5 && *g < 119.0),
        "polling never stretched: {gaps:?}"
    );
    let paused_for = 120.0 - before_recovery.last().copied().unwrap_or(0.0);
    assert!(
        paused_for > 30.0,
        "polling never paused: last poll at {:?}",
        before_recovery.last()
    );
    // After recovery polling resumes at full speed, and every collected
    // record arrived exactly once, in order.
    let after: Vec<f64> = polls.iter().copied().filter(|t| *t >= 125.0).collect();
    assert!(
        after.len() > 100,
        "polling did not resume: {} polls",
        after.len()
    );
    let expected: Vec<u64> = (1000..1000 + polls.len() as u64).collect();
    assert_eq!(gate.records(), expected);
}
