//! `Meathook::builder()`: the runtime's pipelines and settings, and `run`,
//! which hands them to the supervisor.

use std::time::Duration;

use meathook_core::{Backoff, Collector, Drain, Sink};

use crate::budget::{Backpressure, MemoryBudget};
use crate::built::{self, Factory};
use crate::error::RuntimeError;
use crate::metrics::Telemetry;
use crate::pipeline::Pipeline;
use crate::settings::Settings;
use crate::signals::Signals;
use crate::supervisor;
use crate::task::Task;

/// The supervised runtime; see [`Meathook::builder`].
#[derive(Debug)]
pub struct Meathook;

impl Meathook {
    /// Starts configuring a runtime.
    pub fn builder() -> MeathookBuilder {
        MeathookBuilder::default()
    }
}

/// Configures and runs a [`Meathook`] runtime.
#[derive(Default)]
pub struct MeathookBuilder {
    factories: Vec<Factory>,
    tasks: Vec<Task>,
    settings: Settings,
}

impl std::fmt::Debug for MeathookBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeathookBuilder")
            .field("pipelines", &self.factories.len())
            .field("tasks", &self.tasks)
            .field("settings", &self.settings)
            .finish()
    }
}

impl MeathookBuilder {
    /// Adds a pipeline. `factory` builds it, and builds it again after a
    /// panic or failure, with a fresh sink stack (re-running spool recovery).
    pub fn pipeline<F, C, S>(mut self, factory: F) -> Self
    where
        F: FnMut() -> Pipeline<C, S> + Send + 'static,
        C: Collector,
        S: Sink<C::Record> + 'static,
    {
        self.factories.push(built::boxed(factory));
        self
    }

    /// Adds a scheduled task, run beside the pipelines: at start, then on
    /// its interval (see [`Task`]). Compaction of a dataset is one:
    ///
    /// ```no_run
    /// # use meathook_runtime::{Meathook, Task};
    /// # use std::time::Duration;
    /// # let builder = Meathook::builder();
    /// let builder = builder.task(Task::every("compaction", Duration::from_secs(3600), || async {
    ///     // e.g. meathook_parquet::Compactor::local(dir).run(now) on a blocking thread
    ///     Ok::<(), std::io::Error>(())
    /// }));
    /// ```
    pub fn task(mut self, task: Task) -> Self {
        self.tasks.push(task);
        self
    }

    /// What the drain at shutdown does (default: deliver everything).
    pub fn with_drain(mut self, mode: Drain) -> Self {
        self.settings.drain = mode;
        self
    }

    /// How long the drain at shutdown may take (default 30 s).
    pub fn with_drain_deadline(mut self, deadline: Duration) -> Self {
        self.settings.drain_deadline = deadline;
        self
    }

    /// The wait before rebuilding a failed pipeline (default 1 s doubling to
    /// 60 s, jittered).
    pub fn with_restart_backoff(mut self, backoff: Backoff) -> Self {
        self.settings.restart_backoff = backoff;
        self
    }

    /// Gives up on a pipeline after this many failures in a row (default 5;
    /// zero is refused by `run`). A run that lasted `healthy_after`
    /// (default 60 s) resets the count.
    pub fn with_give_up_after(mut self, failures: u32, healthy_after: Duration) -> Self {
        self.settings.give_up_after = failures;
        self.settings.healthy_after = healthy_after;
        self
    }

    /// The most memory all pipelines together may hold, in bytes, before
    /// polling slows and pauses (default: no shared limit, each pipeline is
    /// bound by its own [`Pipeline::with_memory_limit`] only). Zero is
    /// refused by `run`.
    pub fn with_memory_limit(mut self, bytes: u64) -> Self {
        self.settings.budget = Some(MemoryBudget::new(bytes));
        self
    }

    /// How utilisation slows polling (default: from 0.8, pause at 1.0).
    pub fn with_backpressure(mut self, backpressure: Backpressure) -> Self {
        self.settings.backpressure = backpressure;
        self
    }

    /// Serves `/metrics` and `/healthz` on `addr`: the metrics in
    /// OpenMetrics text to a client whose `Accept` asks for
    /// `application/openmetrics-text` (as Prometheus does), otherwise in the
    /// Prometheus text format 0.0.4; health as 200 `ok`, or 503 with one
    /// line per failing pipeline (see the `with_health_*` bounds).
    ///
    /// They show pipeline names, states and counters to whoever can reach
    /// `addr`: bind a loopback or pod-internal address unless that is meant.
    /// The listener holds at most 64 connections at once (see
    /// [`with_metrics_max_connections`](Self::with_metrics_max_connections)), so a
    /// flood of connections cannot take the descriptors the spools need.
    #[cfg(feature = "metrics-http")]
    pub fn with_metrics_addr(mut self, addr: std::net::SocketAddr) -> Self {
        self.settings.exports.listen = Some(addr);
        self
    }

    /// The most connections the metrics listener holds at once (default
    /// 64; zero is refused by `run`). Further connections wait in the kernel's accept
    /// backlog until a slot frees, holding no descriptor of this process.
    #[cfg(feature = "metrics-http")]
    pub fn with_metrics_max_connections(mut self, connections: usize) -> Self {
        self.settings.exports.limits.max_connections = connections;
        self
    }

    /// How long the metrics listener waits for a complete request head,
    /// after connecting or after its last answer (default 10 s), and how old
    /// a connection may grow before it is asked to close (default 60 s).
    /// Slow or idle connections are closed, so they give their slot back.
    /// A zero bound is refused by `run`.
    #[cfg(feature = "metrics-http")]
    pub fn with_metrics_timeouts(mut self, header: Duration, connection: Duration) -> Self {
        let limits = &mut self.settings.exports.limits;
        limits.header_timeout = header;
        limits.connection_timeout = connection;
        self
    }

    /// Writes the metrics to `path` every `every`, atomically, in the
    /// Prometheus text format 0.0.4 that node_exporter's textfile collector
    /// reads; `path`'s directory is created if it is missing. An interval
    /// under 100 ms is refused by `run`.
    pub fn with_metrics_textfile(
        mut self,
        path: impl Into<std::path::PathBuf>,
        every: Duration,
    ) -> Self {
        self.settings.exports.textfile = Some((path.into(), every));
        self
    }

    /// How late a pipeline's ticks may run before `/healthz` reports it
    /// (default 60 s): a tick that started more than `bound` behind its
    /// schedule, or a tick in progress that has run so long that the next
    /// one is overdue by more than `bound` (as when it is stuck in a call
    /// to its sink stack), fails the pipeline until a tick starts on time
    /// again. Zero is refused by `run`; `Duration::MAX` turns the check
    /// off.
    pub fn with_health_tick_lateness(mut self, bound: Duration) -> Self {
        self.settings.exports.health.tick_lateness = bound;
        self
    }

    /// How long a pipeline's deliveries may fail, with none succeeding,
    /// before `/healthz` reports it (default 30 min: an outage the spool
    /// rides out in a few retries stays healthy, a destination that refuses
    /// for half an hour does not). Zero is refused by `run`;
    /// `Duration::MAX` turns the check off.
    pub fn with_health_delivery_stall(mut self, bound: Duration) -> Self {
        self.settings.exports.health.delivery_stall = bound;
        self
    }

    /// How old the oldest record a pipeline's stack has not delivered may
    /// grow before `/healthz` reports it (default 25 h). A record waits for
    /// its window to close, so the bound must exceed the longest window
    /// plus its delivery: the default lets daily windows through. A little
    /// over the window (2 h for hourly windows) also catches a destination
    /// that hangs without failing. Zero is refused by `run`;
    /// `Duration::MAX` turns the check off.
    pub fn with_health_undelivered_age(mut self, bound: Duration) -> Self {
        self.settings.exports.health.undelivered_age = bound;
        self
    }

    /// The runtime's metrics and health, to read or serve elsewhere.
    pub fn telemetry(&self) -> Telemetry {
        self.settings.telemetry.clone()
    }

    /// Runs until SIGTERM or ctrl-c, then drains. A second signal stops at
    /// once.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::InvalidSetting`] naming a setting that cannot work,
    /// before anything starts; the other [`RuntimeError`]s as they say.
    pub async fn run(self) -> Result<(), RuntimeError> {
        let signals = Signals::install().map_err(RuntimeError::Signals)?;
        supervisor::supervise(self.settings, self.factories, self.tasks, signals).await
    }

    /// Runs until `stop` completes, then drains; for embedding and tests.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), RuntimeError> {
        supervisor::supervise(
            self.settings,
            self.factories,
            self.tasks,
            Signals::from_future(stop),
        )
        .await
    }
}
