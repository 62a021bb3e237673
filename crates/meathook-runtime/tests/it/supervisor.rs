//! The supervisor: a panicked pipeline is rebuilt from its factory; one that
//! keeps failing is given up on, and with none left `run` fails.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use meathook_core::{Backoff, TokioClock};
use meathook_runtime::{Meathook, Pipeline, PipelineState, RuntimeError, Task};
use support::{Gate, Script, Scripted, Step, sample};
use time::macros::datetime;

fn clock() -> TokioClock {
    TokioClock::starting_at(datetime!(2026-11-23 10:00 UTC))
}

fn quick_restarts() -> Backoff {
    Backoff::new(Duration::from_secs(1), Duration::from_secs(4)).with_seed(3)
}

#[tokio::test(start_paused = true)]
async fn a_panicked_pipeline_is_rebuilt_from_its_factory() {
    let builds = Arc::new(AtomicUsize::new(0));
    let gate = Gate::default();
    let runtime = {
        let (builds, gate) = (builds.clone(), gate.clone());
        Meathook::builder()
            .with_restart_backoff(quick_restarts())
            .pipeline(move || {
                // The first build panics on its second poll; rebuilds behave.
                let first = builds.fetch_add(1, Ordering::SeqCst) == 0;
                let steps = if first {
                    vec![Step::Records(vec![1]), Step::Panic]
                } else {
                    vec![Step::Records(vec![2])]
                };
                Pipeline::new(
                    Scripted {
                        name: "p",
                        script: Script::new(steps),
                    },
                    gate.clone(),
                    Duration::from_secs(10),
                )
                .with_clock(clock())
            })
    };
    let telemetry = runtime.telemetry();
    runtime
        .run_until(tokio::time::sleep(Duration::from_secs(60)))
        .await
        .unwrap();

    assert_eq!(builds.load(Ordering::SeqCst), 2);
    let records = gate.records();
    assert_eq!(&records[..2], &[1, 2], "{records:?}");
    let text = telemetry.encode();
    assert_eq!(
        sample(&text, "meathook_pipeline_restarts_total{pipeline=\"p\"}"),
        Some(1.0)
    );
    assert_eq!(telemetry.states().get("p"), Some(&PipelineState::Stopped));
}

#[tokio::test(start_paused = true)]
async fn a_pipeline_that_keeps_failing_is_given_up_and_run_fails() {
    let builds = Arc::new(AtomicUsize::new(0));
    let runtime = {
        let builds = builds.clone();
        Meathook::builder()
            .with_restart_backoff(quick_restarts())
            .with_give_up_after(3, Duration::from_secs(600))
            .pipeline(move || {
                builds.fetch_add(1, Ordering::SeqCst);
                Pipeline::new(
                    Scripted {
                        name: "doomed",
                        script: Script::new([Step::Panic]),
                    },
                    Gate::default(),
                    Duration::from_secs(10),
                )
            })
    };
    let telemetry = runtime.telemetry();
    let outcome = runtime.run_until(std::future::pending()).await;

    match outcome {
        Err(RuntimeError::AllPipelinesFailed { pipelines }) => {
            assert_eq!(pipelines, vec!["doomed".to_owned()])
        }
        other => panic!("expected AllPipelinesFailed, got {other:?}"),
    }
    assert_eq!(builds.load(Ordering::SeqCst), 3);
    assert_eq!(
        telemetry.states().get("doomed"),
        Some(&PipelineState::GivenUp)
    );
    assert!(telemetry.health().is_err());
    assert_eq!(
        sample(
            &telemetry.encode(),
            "meathook_pipeline_up{pipeline=\"doomed\"}"
        ),
        Some(0.0)
    );
}

#[tokio::test(start_paused = true)]
async fn one_pipeline_given_up_leaves_the_others_running_and_health_failing() {
    let gate = Gate::default();
    let runtime = {
        let gate = gate.clone();
        Meathook::builder()
            .with_restart_backoff(quick_restarts())
            .with_give_up_after(2, Duration::from_secs(600))
            .pipeline(|| {
                Pipeline::new(
                    Scripted {
                        name: "doomed",
                        script: Script::new([Step::Panic]),
                    },
                    Gate::default(),
                    Duration::from_secs(10),
                )
            })
            .pipeline(move || {
                Pipeline::new(
                    Scripted {
                        name: "fine",
                        script: Script::new([]),
                    },
                    gate.clone(),
                    Duration::from_secs(10),
                )
                .with_clock(clock())
            })
    };
    let telemetry = runtime.telemetry();
    let seen = Arc::new(std::sync::Mutex::new(None));
    let stop = {
        let (telemetry, seen) = (telemetry.clone(), seen.clone());
        async move {
            tokio::time::sleep(Duration::from_secs(65)).await;
            *seen.lock().unwrap() = Some(telemetry.health());
        }
    };
    runtime.run_until(stop).await.unwrap();

    // Polls at 0, 10, …, 60 s.
    assert_eq!(
        gate.records().len(),
        7,
        "the healthy pipeline stopped polling"
    );
    let health = seen.lock().unwrap().take().unwrap();
    assert_eq!(health, Err(vec!["doomed: GivenUp".to_owned()]));
}

#[tokio::test]
async fn bad_pipeline_names_are_refused_before_anything_runs() {
    let too_long: &'static str = Box::leak("é".repeat(43).into_boxed_str());
    for (name, reason) in [
        ("a/b", "path separator"),
        ("..", "`..`"),
        ("", "empty"),
        (too_long, "too long to name files"),
    ] {
        let err = Meathook::builder()
            .pipeline(move || {
                Pipeline::new(
                    Scripted {
                        name,
                        script: Script::new([]),
                    },
                    Gate::default(),
                    Duration::from_secs(1),
                )
            })
            .run_until(std::future::pending())
            .await
            .unwrap_err();
        assert!(err.to_string().contains(reason), "{name:?}: {err}");
    }
    let err = Meathook::builder()
        .pipeline(|| {
            Pipeline::new(
                Scripted {
                    name: "twin",
                    script: Script::new([]),
                },
                Gate::default(),
                Duration::from_secs(1),
            )
        })
        .pipeline(|| {
            Pipeline::new(
                Scripted {
                    name: "twin",
                    script: Script::new([]),
                },
                Gate::default(),
                Duration::from_secs(1),
            )
        })
        .run_until(std::future::pending())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RuntimeError::DuplicatePipeline(ref n) if n == "twin"),
        "{err}"
    );
    assert!(matches!(
        Meathook::builder().run_until(std::future::pending()).await,
        Err(RuntimeError::NoPipelines)
    ));
}

#[test]
fn the_runtime_future_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let runtime = Meathook::builder().pipeline(|| {
        Pipeline::new(
            Scripted {
                name: "p",
                script: Script::new([]),
            },
            Gate::default(),
            Duration::from_secs(1),
        )
    });
    let future = runtime.run_until(std::future::pending());
    assert_send(&future);
}

/// A pipeline whose one poll never comes: the settings check runs first.
fn idle(interval: Duration) -> Pipeline<Scripted, Gate> {
    Pipeline::new(
        Scripted {
            name: "p",
            script: Script::new(Vec::new()),
        },
        Gate::default(),
        interval,
    )
}

#[tokio::test(start_paused = true)]
async fn a_setting_that_cannot_work_stops_run_naming_it() {
    let refused = |builder: meathook_runtime::MeathookBuilder| async move {
        match builder
            .run_until(tokio::time::sleep(Duration::from_secs(1)))
            .await
        {
            Err(RuntimeError::InvalidSetting {
                pipeline, setting, ..
            }) => (pipeline, setting),
            other => panic!("expected InvalidSetting, got {other:?}"),
        }
    };
    let one = || Meathook::builder().pipeline(|| idle(Duration::from_secs(1)));
    assert_eq!(
        refused(one().with_give_up_after(0, Duration::from_secs(60))).await,
        (None, "give_up_after")
    );
    assert_eq!(
        refused(one().with_memory_limit(0)).await,
        (None, "memory_limit")
    );
    assert_eq!(
        refused(one().with_backpressure(meathook_runtime::Backpressure::new(1.5, 4.0))).await,
        (None, "backpressure")
    );
    assert_eq!(
        refused(one().with_metrics_textfile("/nonexistent/m.prom", Duration::ZERO)).await,
        (None, "metrics_textfile")
    );
    assert_eq!(
        refused(Meathook::builder().pipeline(|| idle(Duration::ZERO))).await,
        (Some("p".to_owned()), "interval")
    );
    assert_eq!(
        refused(Meathook::builder().pipeline(|| idle(Duration::from_secs(1)).with_memory_limit(0)))
            .await,
        (Some("p".to_owned()), "memory_limit")
    );
    // The message names the setting and the pipeline.
    let message = Meathook::builder()
        .pipeline(|| idle(Duration::ZERO))
        .run_until(std::future::ready(()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("pipeline p") && message.contains("interval"),
        "{message}"
    );
}

fn idle_pipeline(gate: &Gate) -> Pipeline<Scripted, Gate> {
    Pipeline::new(
        Scripted {
            name: "p",
            script: Script::new([Step::Records(vec![1])]),
        },
        gate.clone(),
        Duration::from_secs(10),
    )
    .with_clock(clock())
}

/// A scheduled task runs at start and then on its interval, a failed run
/// is counted and the next runs as scheduled, and none starts after the
/// stop signal.
#[tokio::test(start_paused = true)]
async fn a_task_runs_at_start_and_on_its_interval_and_failures_are_counted() {
    let runs = Arc::new(AtomicUsize::new(0));
    let gate = Gate::default();
    let runtime = {
        let (runs, gate) = (runs.clone(), gate.clone());
        Meathook::builder()
            .pipeline(move || idle_pipeline(&gate))
            .task(Task::every("tidy", Duration::from_secs(60), move || {
                let run = runs.fetch_add(1, Ordering::SeqCst);
                async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if run == 1 {
                        return Err(std::io::Error::other("the second run fails"));
                    }
                    Ok(())
                }
            }))
    };
    let telemetry = runtime.telemetry();
    // Runs at 0, 61, 122 and 183 s; the stop comes at 200 s.
    runtime
        .run_until(tokio::time::sleep(Duration::from_secs(200)))
        .await
        .unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    let text = telemetry.encode();
    assert_eq!(
        sample(&text, "meathook_task_runs_total{task=\"tidy\"}"),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "meathook_task_failures_total{task=\"tidy\"}"),
        Some(1.0)
    );
    assert!(
        sample(
            &text,
            "meathook_task_last_success_timestamp_seconds{task=\"tidy\"}"
        )
        .unwrap()
            > 0.0
    );
}

#[tokio::test(start_paused = true)]
async fn tasks_without_an_interval_or_with_one_name_are_refused() {
    for tasks in [
        vec![Task::every("zero", Duration::ZERO, || async {
            Ok::<(), std::io::Error>(())
        })],
        vec![
            Task::every("twice", Duration::from_secs(1), || async {
                Ok::<(), std::io::Error>(())
            }),
            Task::every("twice", Duration::from_secs(2), || async {
                Ok::<(), std::io::Error>(())
            }),
        ],
    ] {
        let gate = Gate::default();
        let mut builder = Meathook::builder().pipeline(move || idle_pipeline(&gate));
        for task in tasks {
            builder = builder.task(task);
        }
        let err = builder
            .run_until(tokio::time::sleep(Duration::from_secs(1)))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                RuntimeError::InvalidSetting {
                    setting: "task",
                    ..
                }
            ),
            "{err}"
        );
    }
}
