//! A destination that takes 30 s per call does not move the schedule: the
//! spool accepts each batch durably and delivers in the background.

use crate::support;

use std::time::Duration;

use meathook_core::FlushPolicy;
use meathook_runtime::{Pipeline, Telemetry};
use meathook_spool::SinkExt as _;
use support::{Gate, Script, Scripted, sample};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_stay_on_schedule_while_the_destination_takes_30_s_per_call() {
    let dir = std::env::temp_dir().join(format!("meathook-slow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let slow = Gate::slow(Duration::from_secs(30));
    // One-second windows: a sealed window goes to the slow destination every
    // second, so the destination is busy for the whole run.
    let stack = slow
        .clone()
        .spooled(&dir, FlushPolicy::every(Duration::from_secs(1)).unwrap());
    let script = Script::new([]);
    let interval = Duration::from_millis(100);
    let pipeline = Pipeline::new(
        Scripted {
            name: "p",
            script: script.clone(),
        },
        stack,
        interval,
    )
    .with_collect_timeout(Duration::from_secs(1));
    let telemetry = Telemetry::new();
    let started = tokio::time::Instant::now();
    // Cut off after 5 s, as a kill would: a drain could not finish at 30 s per
    // call, and what was accepted is in the spool either way.
    let cut = tokio::time::timeout(
        Duration::from_secs(5),
        pipeline.run_until(std::future::pending(), &telemetry),
    )
    .await;
    assert!(cut.is_err(), "the pipeline stopped on its own: {cut:?}");

    let polls = script.polls();
    let mut lateness: Vec<f64> = polls
        .iter()
        .enumerate()
        .map(|(k, at)| ((*at - started).as_secs_f64() - k as f64 * interval.as_secs_f64()).max(0.0))
        .collect();
    lateness.sort_by(f64::total_cmp);
    // Not a speed check (`cargo xtask bench runtime` measures lateness): a
    // schedule that waited on the 30 s destination would have polled a few
    // times at most, each poll seconds late.
    let worst = lateness.last().copied().unwrap_or(0.0);
    assert!(polls.len() >= 25, "{} polls in 5 s at 100 ms", polls.len());
    assert!(
        worst < 2.0,
        "a tick was {worst:.3} s late: polling waited on delivery; all: {lateness:?}"
    );
    assert!(slow.offers() >= 1, "the destination was never called");
    // Ingest never waited on the destination.
    let text = telemetry.encode();
    let slowest_bucket_empty = sample(
        &text,
        "meathook_ingest_duration_seconds_bucket{le=\"1.024\",pipeline=\"p\"}",
    ) == sample(
        &text,
        "meathook_ingest_duration_seconds_count{pipeline=\"p\"}",
    );
    assert!(
        slowest_bucket_empty,
        "an ingest took over a second:\n{text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
