//! A pipeline's schedule under tokio's paused clock: ticks, jitter, the
//! collect timeout, collector errors and a server's retry hint.

use crate::support;

use std::time::Duration;

use meathook_core::TokioClock;
use meathook_runtime::{Pipeline, Telemetry};
use support::{Gate, Script, Scripted, Step, offsets, sample};
use time::macros::datetime;
use tokio::time::Instant;

fn clock() -> TokioClock {
    TokioClock::starting_at(datetime!(2026-11-23 10:00 UTC))
}

#[tokio::test(start_paused = true)]
async fn polls_happen_on_every_tick_and_windows_advance_without_records() {
    let t0 = Instant::now();
    let script = Script::new([Step::Records(vec![]), Step::Records(vec![])]);
    let gate = Gate::default();
    let pipeline = Pipeline::new(
        Scripted {
            name: "p",
            script: script.clone(),
        },
        gate.clone(),
        Duration::from_secs(10),
    )
    .with_clock(clock());
    let telemetry = Telemetry::new();
    pipeline
        .run_until(tokio::time::sleep(Duration::from_secs(65)), &telemetry)
        .await
        .unwrap();

    assert_eq!(
        offsets(t0, &script.polls()),
        vec![0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    );
    // Two empty polls gave no batch, yet time reached the stack every tick.
    assert_eq!(gate.advances(), 7);
    assert_eq!(gate.records(), (1000..1005).collect::<Vec<_>>());
    assert!(gate.drained(), "the stop did not drain the stack");
    let text = telemetry.encode();
    assert_eq!(
        sample(&text, "meathook_records_collected_total{pipeline=\"p\"}"),
        Some(5.0)
    );
    assert_eq!(
        sample(&text, "meathook_records_accepted_total{pipeline=\"p\"}"),
        Some(5.0)
    );
}

#[tokio::test(start_paused = true)]
async fn jitter_delays_each_poll_within_its_bound() {
    let t0 = Instant::now();
    let script = Script::new([]);
    let pipeline = Pipeline::new(
        Scripted {
            name: "p",
            script: script.clone(),
        },
        Gate::default(),
        Duration::from_secs(10),
    )
    .with_jitter(Duration::from_secs(4))
    .with_clock(clock());
    pipeline
        .run_until(
            tokio::time::sleep(Duration::from_secs(200)),
            &Telemetry::new(),
        )
        .await
        .unwrap();

    let polls = offsets(t0, &script.polls());
    assert_eq!(polls.len(), 20);
    let delays: Vec<f64> = polls
        .iter()
        .enumerate()
        .map(|(k, at)| at - 10.0 * k as f64)
        .collect();
    assert!(delays.iter().all(|d| (0.0..4.0).contains(d)), "{delays:?}");
    let distinct: std::collections::BTreeSet<u64> = delays.iter().map(|d| d.to_bits()).collect();
    assert!(distinct.len() > 10, "jitter does not vary: {delays:?}");
}

#[tokio::test(start_paused = true)]
async fn a_hanging_poll_times_out_and_the_schedule_holds() {
    let t0 = Instant::now();
    let script = Script::new([
        Step::Records(vec![1]),
        Step::Hang(Duration::from_secs(3600)),
        Step::Records(vec![3]),
    ]);
    let gate = Gate::default();
    let pipeline = Pipeline::new(
        Scripted {
            name: "p",
            script: script.clone(),
        },
        gate.clone(),
        Duration::from_secs(10),
    )
    .with_collect_timeout(Duration::from_secs(3))
    .with_clock(clock());
    let telemetry = Telemetry::new();
    pipeline
        .run_until(tokio::time::sleep(Duration::from_secs(35)), &telemetry)
        .await
        .unwrap();

    // The hang at 10 s is abandoned at 13 s; the 20 s tick is on time.
    assert_eq!(offsets(t0, &script.polls()), vec![0.0, 10.0, 20.0, 30.0]);
    assert_eq!(gate.records(), vec![1, 3, 1000]);
    let text = telemetry.encode();
    assert_eq!(
        sample(
            &text,
            "meathook_collect_errors_total{pipeline=\"p\",kind=\"timeout\"}"
        ),
        Some(1.0)
    );
}

#[tokio::test(start_paused = true)]
async fn collector_errors_are_counted_never_fatal_and_a_retry_hint_is_honoured() {
    let t0 = Instant::now();
    let script = Script::new([
        Step::Fail,
        Step::RateLimited(Duration::from_secs(25)),
        Step::Records(vec![7]),
    ]);
    let gate = Gate::default();
    let pipeline = Pipeline::new(
        Scripted {
            name: "p",
            script: script.clone(),
        },
        gate.clone(),
        Duration::from_secs(10),
    )
    .with_clock(clock());
    let telemetry = Telemetry::new();
    pipeline
        .run_until(tokio::time::sleep(Duration::from_secs(55)), &telemetry)
        .await
        .unwrap();

    // 0 s fails, 10 s is rate limited for 25 s: no poll at 20 or 30, the next
    // at the first tick after 35 s.
    assert_eq!(offsets(t0, &script.polls()), vec![0.0, 10.0, 40.0, 50.0]);
    assert_eq!(gate.records(), vec![7, 1000]);
    let text = telemetry.encode();
    assert_eq!(
        sample(
            &text,
            "meathook_collect_errors_total{pipeline=\"p\",kind=\"failed\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "meathook_collect_errors_total{pipeline=\"p\",kind=\"rate_limited\"}"
        ),
        Some(1.0)
    );
}

#[tokio::test(start_paused = true)]
async fn each_batch_is_stamped_with_its_collection_second() {
    let script = Script::new([Step::Records(vec![1]), Step::Records(vec![2])]);
    let gate = Gate::default();
    let pipeline = Pipeline::new(
        Scripted {
            name: "air",
            script,
        },
        gate.clone(),
        Duration::from_secs(90),
    )
    .with_clock(clock());
    pipeline
        .run_until(
            tokio::time::sleep(Duration::from_secs(100)),
            &Telemetry::new(),
        )
        .await
        .unwrap();

    let windows: Vec<_> = gate
        .batches()
        .into_iter()
        .map(|(w, _)| (w.start, w.end, w.pipeline.to_string()))
        .collect();
    assert_eq!(
        windows,
        vec![
            (
                datetime!(2026-11-23 10:00:00 UTC),
                datetime!(2026-11-23 10:00:01 UTC),
                "air".to_owned()
            ),
            (
                datetime!(2026-11-23 10:01:30 UTC),
                datetime!(2026-11-23 10:01:31 UTC),
                "air".to_owned()
            ),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn delivery_latency_is_the_age_of_the_oldest_record_delivered() {
    use meathook_core::{Buffered, FlushPolicy};
    let gate = Gate::default();
    // A one-minute memory tier: readings from 10:00:00 leave at 10:01:00.
    let stack = Buffered::new(
        gate.clone(),
        FlushPolicy::every(Duration::from_secs(60)).unwrap(),
    );
    let pipeline = Pipeline::new(
        Scripted {
            name: "p",
            script: Script::new([]),
        },
        stack,
        Duration::from_secs(10),
    )
    .with_clock(clock());
    let telemetry = Telemetry::new();
    pipeline
        .run_until(tokio::time::sleep(Duration::from_secs(65)), &telemetry)
        .await
        .unwrap();

    // Two deliveries: the 10:00 window at 10:01:00 (its oldest reading 60 s
    // old) and, at the stop's drain, the reading of 10:01:00 (5 s old).
    let text = telemetry.encode();
    assert_eq!(
        sample(
            &text,
            "meathook_delivery_latency_seconds_count{pipeline=\"p\"}"
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "meathook_delivery_latency_seconds_sum{pipeline=\"p\"}"
        ),
        Some(65.0),
        "{text}"
    );
    assert_eq!(
        gate.batches().len(),
        2,
        "the open window was drained at the stop"
    );
}
