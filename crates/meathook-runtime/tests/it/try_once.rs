//! `Pipeline::try_once`: one poll, its records and window, and nothing
//! written; and the log lines of a running pipeline: spans per pipeline and
//! tick, every cause of an error on one line, a summary when it stops.
#![allow(clippy::unwrap_used)] // tests

use crate::support;

use std::time::Duration;

use meathook_runtime::{Pipeline, Telemetry, TrialError};
use support::{Gate, Script, Scripted, Step};

fn pipeline(steps: Vec<Step>, gate: &Gate) -> Pipeline<Scripted, Gate> {
    let collector = Scripted {
        name: "air_temperature",
        script: Script::new(steps),
    };
    Pipeline::new(collector, gate.clone(), Duration::from_secs(60))
}

#[tokio::test]
async fn a_trial_returns_the_poll_and_its_window_and_touches_no_sink() {
    let gate = Gate::default();
    let mut p = pipeline(vec![Step::Records(vec![1, 2, 2, 3])], &gate).with_key_fn(|r| *r);
    let before = time::OffsetDateTime::now_utc();
    let trial = p.try_once().await.unwrap();
    assert_eq!(trial.records, [1, 2, 3]);
    assert_eq!(trial.deduped, 1, "the repeated key within the poll");
    assert_eq!(&*trial.window.pipeline, "air_temperature");
    assert!(trial.window.start <= time::OffsetDateTime::now_utc() && trial.window.end > before);
    // Again: the script is used up, so the collector makes a new record.
    assert_eq!(p.try_once().await.unwrap().records, [1000]);
    assert_eq!(gate.offers(), 0, "the sink stack was offered nothing");
    assert_eq!(gate.advances(), 0, "the sink stack's time was not advanced");
    assert!(!gate.drained());
}

#[tokio::test(start_paused = true)]
async fn a_trial_reports_failures_and_timeouts_without_retrying() {
    let gate = Gate::default();
    let mut p = pipeline(
        vec![
            Step::Fail,
            Step::RateLimited(Duration::from_secs(30)),
            Step::Hang(Duration::from_secs(600)),
        ],
        &gate,
    )
    .with_collect_timeout(Duration::from_secs(5));
    match p.try_once().await {
        Err(TrialError::Collect { retry_after, .. }) => assert_eq!(retry_after, None),
        other => panic!("{other:?}"),
    }
    match p.try_once().await {
        Err(TrialError::Collect { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(30)));
        }
        other => panic!("{other:?}"),
    }
    match p.try_once().await {
        Err(TrialError::TimedOut { timeout }) => assert_eq!(timeout, Duration::from_secs(5)),
        other => panic!("{other:?}"),
    }
    assert_eq!(gate.offers(), 0);
}

/// An error with a cause below it, as a transport error has.
#[derive(Debug, thiserror::Error)]
#[error("request to http://api.test/ failed")]
struct Outer(#[source] std::io::Error);

#[derive(Debug, Clone)]
struct Failing;

impl meathook_core::Collector for Failing {
    type Record = u64;
    type Error = Outer;

    fn name(&self) -> &str {
        "rainfall"
    }

    async fn collect(&mut self) -> Result<Vec<u64>, Outer> {
        Err(Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        )))
    }
}

#[tokio::test(flavor = "current_thread")]
async fn log_lines_nest_in_pipeline_and_tick_spans_and_carry_the_cause() {
    let (captured, _guard) = meathook_testkit::logs::LogCapture::start(tracing::Level::INFO);
    let pipeline = Pipeline::new(Failing, Gate::<u64>::default(), Duration::from_millis(50));
    let telemetry = Telemetry::new();
    pipeline
        .run_until(tokio::time::sleep(Duration::from_millis(120)), &telemetry)
        .await
        .unwrap();
    let text = captured.text();
    let failed: Vec<&str> = text.lines().filter(|l| l.contains("poll failed")).collect();
    assert!(failed.len() >= 2, "{text}");
    for line in &failed {
        assert!(line.contains("WARN"), "{line}");
        assert!(
            line.contains("pipeline{pipeline=rainfall}:tick{tick="),
            "the line is not in the pipeline's and the tick's spans: {line}"
        );
        assert!(
            line.contains("request to http://api.test/ failed: connection refused"),
            "the cause is missing: {line}"
        );
        assert_eq!(
            line.matches("rainfall").count(),
            1,
            "the name twice: {line}"
        );
        assert!(!line.contains("retry_after"), "noise: {line}");
    }
    let stopped = text
        .lines()
        .find(|l| l.contains("stopped"))
        .unwrap_or_else(|| panic!("no summary: {text}"));
    assert!(stopped.contains("INFO"), "{stopped}");
    assert!(
        stopped.contains(&format!("polls={}", failed.len()))
            && stopped.contains(&format!("failed_polls={}", failed.len()))
            && stopped.contains("collected=0")
            && stopped.contains("undrained=0"),
        "{stopped}"
    );
}
