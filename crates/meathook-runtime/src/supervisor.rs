//! The supervision loop: runs pipelines, rebuilds the ones that fail, stops
//! them cleanly.
//!
//! One tokio task per pipeline. A pipeline whose task panics or fails is
//! rebuilt from its factory — re-running the stack's `open`, and so spool
//! recovery — after a capped, jittered backoff. One that fails
//! `give_up_after` times in a row (a run that lasted `healthy_after` resets
//! the count) is given up on loudly: an error log, `pipeline_up 0`, and a
//! 503 from `/healthz`. When no pipeline is left, `run` returns
//! [`RuntimeError::AllPipelinesFailed`], so the process exits non-zero and an
//! orchestrator restarts it. On the first stop signal every pipeline stops
//! polling and drains within the deadline; a second signal stops at once.

use std::time::Duration;

use meathook_core::{Backoff, Drain, ErrorChain};
use tokio::sync::watch;
use tokio::task::{Id, JoinSet};
use tokio::time::Instant;

use crate::budget::Share;
use crate::built::{Built, Factory, build, panic_message};
use crate::error::{PipelineError, RuntimeError};
use crate::export;
use crate::health::PipelineState;
use crate::name::validate_name;
use crate::pipeline::Ctx;
use crate::settings::Settings;
use crate::signals::Signals;
use crate::task::{self, Task};

/// One pipeline as the supervisor tracks it.
struct Slot {
    name: String,
    factory: Factory,
    first: Option<Box<dyn Built>>,
    task: Option<Id>,
    started: Instant,
    failures: u32,
    backoff: Backoff,
    restart_at: Option<Instant>,
    state: PipelineState,
}

/// Builds every pipeline, starts the exporters, runs the pipelines until
/// the first stop signal (restarting or giving up on failed ones), then
/// drains them.
pub(crate) async fn supervise(
    settings: Settings,
    factories: Vec<Factory>,
    scheduled: Vec<Task>,
    mut signals: Signals,
) -> Result<(), RuntimeError> {
    if factories.is_empty() {
        return Err(RuntimeError::NoPipelines);
    }
    settings.check()?;
    let mut task_names = std::collections::HashSet::new();
    for task in &scheduled {
        let reason = task.problem().or_else(|| {
            (!task_names.insert(task.name.clone()))
                .then(|| format!("two tasks are called {}", task.name))
        });
        if let Some(reason) = reason {
            return Err(RuntimeError::InvalidSetting {
                pipeline: None,
                setting: "task",
                reason,
            });
        }
    }
    let mut slots = Vec::with_capacity(factories.len());
    let mut names = std::collections::HashSet::new();
    for (index, mut factory) in factories.into_iter().enumerate() {
        let built = build(&mut factory)
            .map_err(|message| RuntimeError::FactoryPanicked { index, message })?;
        let name = built.name();
        validate_name(&name)?;
        if let Err(PipelineError::InvalidSetting {
            pipeline,
            setting,
            reason,
        }) = built.check()
        {
            return Err(RuntimeError::InvalidSetting {
                pipeline: Some(pipeline),
                setting,
                reason,
            });
        }
        if !names.insert(name.clone()) {
            return Err(RuntimeError::DuplicatePipeline(name));
        }
        slots.push(Slot {
            name,
            factory,
            first: Some(built),
            task: None,
            started: Instant::now(),
            failures: 0,
            backoff: settings.restart_backoff.clone(),
            restart_at: None,
            state: PipelineState::Restarting,
        });
    }
    let _exporters = export::start(&settings.telemetry, &settings.exports)?;
    let (stop_tx, stop_rx) = watch::channel(None);
    let mut tasks = JoinSet::new();
    let mut background = JoinSet::new();
    for task in scheduled {
        background.spawn(task::run(task, settings.telemetry.clone(), stop_rx.clone()));
    }
    for slot in &mut slots {
        if let Some(built) = slot.first.take() {
            start(&settings, slot, built, &stop_rx, &mut tasks);
        }
    }
    loop {
        let next_restart = slots.iter().filter_map(|s| s.restart_at).min();
        tokio::select! {
            () = signals.next() => break,
            Some(joined) = tasks.join_next_with_id() => {
                let (id, outcome) = match joined {
                    Ok((id, result)) => (id, result.map_err(|e| ErrorChain(&e).to_string())),
                    Err(e) => (e.id(), Err(panic_message(e))),
                };
                if let Some(slot) = slots.iter_mut().find(|s| s.task == Some(id)) {
                    failed(&settings, slot, outcome);
                }
                if slots.iter().all(|s| s.state == PipelineState::GivenUp) {
                    return Err(RuntimeError::AllPipelinesFailed { pipelines: slots.into_iter().map(|s| s.name).collect() });
                }
            }
            () = sleep_until(next_restart) => {
                let now = Instant::now();
                for slot in slots.iter_mut().filter(|s| s.restart_at.is_some_and(|at| at <= now)) {
                    slot.restart_at = None;
                    match build(&mut slot.factory) {
                        Ok(built) => start(&settings, slot, built, &stop_rx, &mut tasks),
                        Err(message) => failed(&settings, slot, Err(format!("factory panicked: {message}"))),
                    }
                }
                if slots.iter().all(|s| s.state == PipelineState::GivenUp) {
                    return Err(RuntimeError::AllPipelinesFailed { pipelines: slots.into_iter().map(|s| s.name).collect() });
                }
            }
        }
    }
    tracing::info!(mode = ?settings.drain, deadline = ?settings.drain_deadline, "stopping: draining every pipeline");
    let _ = stop_tx.send(Some(settings.drain));
    let drain_started = Instant::now();
    let outcome = wait_for_drain(&settings, &mut slots, &mut tasks, &mut signals).await;
    // A scheduled task's run in progress may finish within the deadline.
    let left = (drain_started + settings.drain_deadline).saturating_duration_since(Instant::now());
    if tokio::time::timeout(left, async {
        while background.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!("a scheduled task was still running at the drain deadline; it was stopped");
        background.abort_all();
    }
    for slot in &slots {
        if slot.state != PipelineState::GivenUp {
            settings
                .telemetry
                .set_state(&slot.name, PipelineState::Stopped);
        }
    }
    export::final_write(&settings.telemetry, &settings.exports)?;
    outcome
}

/// Starts a built pipeline's task in `slot`.
fn start(
    settings: &Settings,
    slot: &mut Slot,
    built: Box<dyn Built>,
    stop: &watch::Receiver<Option<Drain>>,
    tasks: &mut JoinSet<Result<(), PipelineError>>,
) {
    let ctx = Ctx {
        stop: stop.clone(),
        metrics: settings.telemetry.pipeline(&slot.name),
        share: settings.budget.clone().map(Share::new),
        backpressure: settings.backpressure,
        drain_deadline: settings.drain_deadline,
    };
    slot.task = Some(built.start(ctx, tasks));
    slot.started = Instant::now();
    slot.state = PipelineState::Up;
    settings.telemetry.set_state(&slot.name, PipelineState::Up);
}

/// A pipeline's task ended while the runtime was running: restart it
/// after a backoff, or give up on it.
fn failed(settings: &Settings, slot: &mut Slot, outcome: Result<(), String>) {
    slot.task = None;
    let reason = match outcome {
        Ok(()) => "stopped on its own".to_owned(),
        Err(reason) => reason,
    };
    if slot.started.elapsed() >= settings.healthy_after {
        slot.failures = 0;
        slot.backoff.reset();
    }
    slot.failures += 1;
    if slot.failures >= settings.give_up_after {
        slot.state = PipelineState::GivenUp;
        settings
            .telemetry
            .set_state(&slot.name, PipelineState::GivenUp);
        tracing::error!(pipeline = %slot.name, failures = slot.failures, %reason, "pipeline failed too often; giving up on it");
        return;
    }
    let wait = slot.backoff.fail();
    slot.restart_at = Some(Instant::now() + wait);
    slot.state = PipelineState::Restarting;
    settings
        .telemetry
        .set_state(&slot.name, PipelineState::Restarting);
    tracing::error!(pipeline = %slot.name, failures = slot.failures, %reason, restart_in = ?wait, "pipeline failed; rebuilding it from its factory");
}

/// Waits for every pipeline to finish its drain, until the drain deadline
/// (plus a second of slack) or a second stop signal.
///
/// `slots` is borrowed mutably although only read: a `Slot` is `Send` but
/// not `Sync`, and the runtime's future must stay `Send`.
async fn wait_for_drain(
    settings: &Settings,
    slots: &mut [Slot],
    tasks: &mut JoinSet<Result<(), PipelineError>>,
    signals: &mut Signals,
) -> Result<(), RuntimeError> {
    let started = Instant::now();
    let deadline = started + settings.drain_deadline + Duration::from_secs(1);
    let mut failed = Vec::new();
    let mut finished = std::collections::HashSet::new();
    loop {
        tokio::select! {
            joined = tasks.join_next_with_id() => match joined {
                None => break,
                Some(Ok((id, Ok(())))) => { finished.insert(id); }
                Some(Ok((id, Err(error)))) => {
                    finished.insert(id);
                    tracing::error!(error = %ErrorChain(&error), "drain failed");
                    failed.extend(slots.iter().filter(|s| s.task == Some(id)).map(|s| s.name.clone()));
                }
                Some(Err(e)) => {
                    let id = e.id();
                    finished.insert(id);
                    tracing::error!(error = %panic_message(e), "pipeline panicked while draining");
                    failed.extend(slots.iter().filter(|s| s.task == Some(id)).map(|s| s.name.clone()));
                }
            },
            () = signals.next() => {
                tracing::warn!("second stop signal: stopping at once; spooled records stay for the next start");
                tasks.abort_all();
                return Err(RuntimeError::Interrupted);
            }
            () = tokio::time::sleep_until(deadline) => {
                tasks.abort_all();
                let pending = slots.iter().filter(|s| s.task.is_some_and(|id| !finished.contains(&id))).map(|s| s.name.clone()).collect();
                return Err(RuntimeError::DrainTimedOut { pipelines: pending, deadline: settings.drain_deadline });
            }
        }
    }
    if failed.is_empty() {
        tracing::info!(
            pipelines = slots.len(),
            took = ?started.elapsed(),
            "every pipeline drained"
        );
        Ok(())
    } else {
        Err(RuntimeError::DrainFailed { pipelines: failed })
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
