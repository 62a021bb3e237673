//! Real signals: the first SIGTERM starts the drain, a second one stops at
//! once. The test signals its own process, so it runs in a child of the test
//! binary: the other tests' runtimes in this binary must not see the signals.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: panics are failures

use crate::support;

use std::time::{Duration, Instant};

use meathook_runtime::{Meathook, Pipeline, RuntimeError};
use support::{Gate, Script, Scripted};

fn sigterm_self() {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Set in the child process that takes the signals.
const CHILD: &str = "MEATHOOK_SIGNALS_CHILD";

#[test]
fn a_second_sigterm_during_the_drain_stops_at_once() {
    if std::env::var_os(CHILD).is_none() {
        let status =
            meathook_testkit::test_in_child!("a_second_sigterm_during_the_drain_stops_at_once")
                .env(CHILD, "1")
                .status()
                .unwrap();
        assert!(
            status.success(),
            "the child that took the signals failed: {status}"
        );
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(second_sigterm_stops_the_drain());
}

async fn second_sigterm_stops_the_drain() {
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
