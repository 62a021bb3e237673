//! Real signals: the first SIGTERM starts the drain, a second one stops at
//! once. (Alone in its test binary: it signals its own process.)

mod support;

use std::time::{Duration, Instant};

use meathook_runtime::{Meathook, Pipeline, RuntimeError};
use support::{Gate, Script, Scripted};

#[allow(clippy::unwrap_used)] // a test helper: failing to signal fails the test
fn sigterm_self() {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_during_the_drain_stops_at_once() {
    // Every offer takes 20 s, so the drain after the first signal is slow.
    let slow = Gate::slow(Duration::from_secs(20));
    let runtime = Meathook::builder().pipeline(move || {
        Pipeline::new(
            Scripted {
                name: "p",
                script: Script::new([]),
            },
            slow.clone(),
            Duration::from_millis(100),
        )
    });
    let started = Instant::now();
    let run = tokio::spawn(runtime.run());
    tokio::time::sleep(Duration::from_millis(500)).await;
    sigterm_self();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!run.is_finished(), "the first signal did not start a drain");
    sigterm_self();
    let outcome = tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("the second signal did not stop the runtime")
        .unwrap();
    assert!(
        matches!(outcome, Err(RuntimeError::Interrupted)),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(6));
}
