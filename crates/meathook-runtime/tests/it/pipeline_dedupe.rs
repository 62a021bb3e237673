//! Dedupe by key: a key is remembered only once the stack accepted its
//! record, so a refused batch is retried, never forgotten.

use crate::support;

use std::time::Duration;

use meathook_core::TokioClock;
use meathook_runtime::{Pipeline, Telemetry};
use support::{Gate, Script, Scripted, Step, sample};
use time::macros::datetime;

fn clock() -> TokioClock {
    TokioClock::starting_at(datetime!(2026-11-23 10:00 UTC))
}

#[tokio::test(start_paused = true)]
async fn repeated_readings_are_stored_once() {
    let script = Script::new([
        Step::Records(vec![1, 2, 2]),
        Step::Records(vec![2, 3]),
        Step::Records(vec![1, 3, 4]),
    ]);
    let gate = Gate::default();
    let pipeline = Pipeline::new(
        Scripted { name: "p", script },
        gate.clone(),
        Duration::from_secs(10),
    )
    .with_key_fn(|r: &u64| *r)
    .with_clock(clock());
    let telemetry = Telemetry::new();
    pipeline
        .run_until(tokio::time::sleep(Duration::from_secs(25)), &telemetry)
        .await
        .unwrap();

    assert_eq!(gate.records(), vec![1, 2, 3, 4]);
    assert_eq!(
        sample(
            &telemetry.encode(),
            "meathook_records_deduped_total{pipeline=\"p\"}"
        ),
        Some(4.0)
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_batch_is_offered_again_and_its_repeats_are_dropped() {
    let script = Script::new([
        Step::Records(vec![1, 2]),
        Step::Records(vec![2, 3]),
        Step::Records(vec![3, 4]),
        Step::Records(vec![4]),
    ]);
    let gate = Gate::default();
    gate.close();
    let pipeline = Pipeline::new(
        Scripted { name: "p", script },
        gate.clone(),
        Duration::from_secs(10),
    )
    .with_key_fn(|r: &u64| *r)
    .with_clock(clock());
    let telemetry = Telemetry::new();
    let reopen = {
        let gate = gate.clone();
        async move {
            // Refuse the polls at 0, 10 and 20 s; accept from 25 s on.
            tokio::time::sleep(Duration::from_secs(25)).await;
            gate.open();
            tokio::time::sleep(Duration::from_secs(20)).await;
        }
    };
    pipeline.run_until(reopen, &telemetry).await.unwrap();

    // Nothing was lost while refused, and nothing stored twice.
    assert_eq!(gate.records(), vec![1, 2, 3, 4, 1000]);
    assert!(
        gate.offers() > gate.batches().len(),
        "the refused batches were never retried"
    );
    // Repeats of held keys were dropped before the stack saw them.
    assert_eq!(
        sample(
            &telemetry.encode(),
            "meathook_records_deduped_total{pipeline=\"p\"}"
        ),
        Some(3.0)
    );
}

#[tokio::test(start_paused = true)]
async fn keys_are_forgotten_after_the_horizon() {
    let script = Script::new([
        Step::Records(vec![9]),
        Step::Records(vec![9]),
        Step::Records(vec![9]),
    ]);
    let gate = Gate::default();
    let pipeline = Pipeline::new(
        Scripted { name: "p", script },
        gate.clone(),
        Duration::from_secs(60),
    )
    .with_key_fn(|r: &u64| *r)
    .with_dedupe_horizon(Duration::from_secs(90))
    .with_clock(clock());
    pipeline
        .run_until(
            tokio::time::sleep(Duration::from_secs(125)),
            &Telemetry::new(),
        )
        .await
        .unwrap();

    // Seen at 0 s, dropped at 60 s, forgotten by 120 s: stored again.
    assert_eq!(gate.records(), vec![9, 9]);
}
