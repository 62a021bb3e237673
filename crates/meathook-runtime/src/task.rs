//! Scheduled tasks: jobs the runtime runs beside the pipelines, on an
//! interval — the compaction of a dataset, a clean-up.
//!
//! A task runs once when the runtime starts, then every interval after the
//! end of its last run (runs never overlap). A run that fails is logged
//! with its causes and counted (`meathook_task_failures_total`); the next
//! runs as scheduled. On the stop signal a task starts no new run; one in
//! progress may finish within the drain deadline, after which it is
//! dropped at its next await point — so a task must leave nothing a crash
//! would not leave (compaction is built that way: see
//! `meathook_parquet::compact`).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use meathook_core::{Drain, ErrorChain};
use tokio::sync::watch;

use crate::metrics::Telemetry;

/// The error of one run of a task.
pub type TaskError = Box<dyn std::error::Error + Send + Sync>;

type Run = Pin<Box<dyn Future<Output = Result<(), TaskError>> + Send>>;
type Job = Box<dyn FnMut() -> Run + Send>;

/// A job the runtime runs on an interval beside the pipelines; see
/// [`MeathookBuilder::task`](crate::MeathookBuilder::task).
pub struct Task {
    pub(crate) name: String,
    pub(crate) every: Duration,
    job: Job,
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.name)
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl Task {
    /// A task called `name` (its label in metrics and logs) that runs
    /// `job` at start and then `every` after each run ends. Blocking work
    /// belongs on a blocking thread (`tokio::task::spawn_blocking`).
    pub fn every<F, Fut, E>(name: impl Into<String>, every: Duration, mut job: F) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<TaskError>,
    {
        Self {
            name: name.into(),
            every,
            job: Box::new(move || {
                let run = job();
                Box::pin(async move { run.await.map_err(Into::into) })
            }),
        }
    }

    /// What is wrong with the task's settings, if anything.
    pub(crate) fn problem(&self) -> Option<String> {
        if self.name.is_empty() {
            return Some("a task needs a name".into());
        }
        if self.every.is_zero() {
            return Some(format!(
                "task {}: the interval must be more than zero",
                self.name
            ));
        }
        None
    }
}

/// Runs `task` until `stop` says to stop.
pub(crate) async fn run(
    mut task: Task,
    telemetry: Telemetry,
    mut stop: watch::Receiver<Option<Drain>>,
) {
    let metrics = telemetry.task(&task.name);
    loop {
        if stop.borrow().is_some() {
            return;
        }
        let started = tokio::time::Instant::now();
        match (task.job)().await {
            Ok(()) => {
                metrics.succeeded();
                tracing::info!(task = %task.name, took = ?started.elapsed(), "task ran");
            }
            Err(error) => {
                metrics.failed();
                tracing::error!(task = %task.name, error = %ErrorChain(&*error), "task failed; it runs again at its next time");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(task.every) => {}
            _ = stop.changed() => return,
        }
    }
}
