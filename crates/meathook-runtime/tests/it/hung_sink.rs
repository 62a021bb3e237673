//! A sink stack that never answers cannot hang the drain: `run_until`
//! returns an error within the drain deadline, counting the batch the stack
//! was holding as not drained.

#![allow(clippy::unwrap_used)] // test set-up: a failed step fails the test

use crate::support;

use std::time::Duration;

use meathook_runtime::{Pipeline, PipelineError, Telemetry};
use support::{Gate, Script, Scripted, Step};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_that_never_answers_cannot_hang_the_drain() {
    // Every ingest takes an hour: the first batch is in its hands for ever.
    let hung: Gate<u64> = Gate::slow(Duration::from_secs(3600));
    let deadline = Duration::from_secs(1);
    let pipeline = Pipeline::new(
        Scripted {
            name: "hung",
            script: Script::new([Step::Records(vec![1, 2, 3])]),
        },
        hung.clone(),
        Duration::from_millis(100),
    )
    .with_drain_deadline(deadline);
    let started = tokio::time::Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        pipeline.run_until(
            tokio::time::sleep(Duration::from_millis(500)),
            &Telemetry::new(),
        ),
    )
    .await
    .expect("the drain hung on a stack that never answers");
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(500) + deadline + Duration::from_secs(3),
        "the drain took {elapsed:?} with a deadline of {deadline:?}"
    );
    assert!(hung.offers() >= 1, "the stack was never offered a batch");
    match outcome {
        Err(PipelineError::Drain { message, .. }) => {
            assert!(message.contains("drain deadline"), "{message}");
        }
        other => panic!("expected a drain error, got {other:?}"),
    }
}
