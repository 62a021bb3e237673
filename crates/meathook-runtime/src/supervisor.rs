//! `Meathook`: runs pipelines, rebuilds the ones that fail, stops them
//! cleanly.
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

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use meathook_core::{Backoff, Collector, Drain, Sink};
use tokio::sync::watch;
use tokio::task::{Id, JoinSet};
use tokio::time::Instant;

use crate::budget::{Backpressure, MemoryBudget, Share};
use crate::error::{PipelineError, RuntimeError};
use crate::health::PipelineState;
use crate::metrics::Telemetry;
use crate::pipeline::{Ctx, Pipeline};

/// A pipeline built by a factory, ready to run.
trait Built: Send {
    fn name(&self) -> String;
    fn start(self: Box<Self>, ctx: Ctx, tasks: &mut JoinSet<Result<(), PipelineError>>) -> Id;
}

impl<C, S> Built for Pipeline<C, S>
where
    C: Collector,
    S: Sink<C::Record> + 'static,
{
    fn name(&self) -> String {
        Pipeline::name(self).to_owned()
    }

    fn start(self: Box<Self>, ctx: Ctx, tasks: &mut JoinSet<Result<(), PipelineError>>) -> Id {
        tasks.spawn((*self).run(ctx)).id()
    }
}

type Factory = Box<dyn FnMut() -> Box<dyn Built> + Send>;

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
    settings: Settings,
}

/// Everything but the factories: shared by reference while pipelines run,
/// so it holds nothing that is not `Sync`.
#[derive(Debug)]
pub(crate) struct Settings {
    drain: Drain,
    drain_deadline: Duration,
    restart_backoff: Backoff,
    give_up_after: u32,
    healthy_after: Duration,
    budget: Option<MemoryBudget>,
    backpressure: Backpressure,
    telemetry: Telemetry,
    #[cfg(feature = "metrics-http")]
    metrics_addr: Option<std::net::SocketAddr>,
    #[cfg(feature = "metrics-http")]
    metrics_limits: crate::export::http::Limits,
    textfile: Option<(std::path::PathBuf, Duration)>,
}

impl std::fmt::Debug for MeathookBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeathookBuilder")
            .field("pipelines", &self.factories.len())
            .field("settings", &self.settings)
            .finish()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            drain: Drain::Everything,
            drain_deadline: Duration::from_secs(30),
            restart_backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
            give_up_after: 5,
            healthy_after: Duration::from_secs(60),
            budget: None,
            backpressure: Backpressure::default(),
            telemetry: Telemetry::new(),
            #[cfg(feature = "metrics-http")]
            metrics_addr: None,
            #[cfg(feature = "metrics-http")]
            metrics_limits: crate::export::http::Limits::default(),
            textfile: None,
        }
    }
}

impl MeathookBuilder {
    /// Adds a pipeline. `factory` builds it, and builds it again after a
    /// panic or failure, with a fresh sink stack (re-running spool recovery).
    pub fn pipeline<F, C, S>(mut self, mut factory: F) -> Self
    where
        F: FnMut() -> Pipeline<C, S> + Send + 'static,
        C: Collector,
        S: Sink<C::Record> + 'static,
    {
        self.factories
            .push(Box::new(move || Box::new(factory()) as Box<dyn Built>));
        self
    }

    /// What the drain at shutdown does (default: deliver everything).
    pub fn drain(mut self, mode: Drain) -> Self {
        self.settings.drain = mode;
        self
    }

    /// How long the drain at shutdown may take (default 30 s).
    pub fn drain_deadline(mut self, deadline: Duration) -> Self {
        self.settings.drain_deadline = deadline;
        self
    }

    /// The wait before rebuilding a failed pipeline (default 1 s doubling to
    /// 60 s, jittered).
    pub fn restart_backoff(mut self, backoff: Backoff) -> Self {
        self.settings.restart_backoff = backoff;
        self
    }

    /// Gives up on a pipeline after this many failures in a row (default 5;
    /// at least 1). A run that lasted `healthy_after` (default 60 s) resets
    /// the count.
    pub fn give_up_after(mut self, failures: u32, healthy_after: Duration) -> Self {
        self.settings.give_up_after = failures.max(1);
        self.settings.healthy_after = healthy_after;
        self
    }

    /// A memory budget shared by all pipelines (default: none, each pipeline
    /// is bound by its own limit only).
    pub fn memory_budget(mut self, bytes: u64) -> Self {
        self.settings.budget = Some(MemoryBudget::new(bytes));
        self
    }

    /// How utilisation slows polling (default: from 0.8, pause at 1.0).
    pub fn backpressure(mut self, backpressure: Backpressure) -> Self {
        self.settings.backpressure = backpressure;
        self
    }

    /// Serves `/metrics` (OpenMetrics) and `/healthz` on `addr`.
    ///
    /// They show pipeline names, states and counters to whoever can reach
    /// `addr`: bind a loopback or pod-internal address unless that is meant.
    /// The listener holds at most 64 connections at once (see
    /// [`metrics_max_connections`](Self::metrics_max_connections)), so a
    /// flood of connections cannot take the descriptors the spools need.
    #[cfg(feature = "metrics-http")]
    pub fn metrics_addr(mut self, addr: std::net::SocketAddr) -> Self {
        self.settings.metrics_addr = Some(addr);
        self
    }

    /// The most connections the metrics listener holds at once (default
    /// 64, at least 1). Further connections wait in the kernel's accept
    /// backlog until a slot frees, holding no descriptor of this process.
    #[cfg(feature = "metrics-http")]
    pub fn metrics_max_connections(mut self, connections: usize) -> Self {
        self.settings.metrics_limits.max_connections = connections.max(1);
        self
    }

    /// How long the metrics listener waits for a complete request head,
    /// after connecting or after its last answer (default 10 s), and how old
    /// a connection may grow before it is asked to close (default 60 s).
    /// Slow or idle connections are closed, so they give their slot back.
    #[cfg(feature = "metrics-http")]
    pub fn metrics_timeouts(mut self, header: Duration, connection: Duration) -> Self {
        self.settings.metrics_limits.header_timeout = header.max(Duration::from_millis(1));
        self.settings.metrics_limits.connection_timeout = connection;
        self
    }

    /// Writes the metrics to `path` every `every`, atomically (for
    /// node_exporter's textfile collector).
    pub fn metrics_textfile(
        mut self,
        path: impl Into<std::path::PathBuf>,
        every: Duration,
    ) -> Self {
        self.settings.textfile = Some((path.into(), every));
        self
    }

    /// The runtime's metrics and health, to read or serve elsewhere.
    pub fn telemetry(&self) -> Telemetry {
        self.settings.telemetry.clone()
    }

    /// Runs until SIGTERM or ctrl-c, then drains. A second signal stops at
    /// once.
    pub async fn run(self) -> Result<(), RuntimeError> {
        let signals = crate::signals::Signals::install().map_err(RuntimeError::Signals)?;
        self.supervise(signals).await
    }

    /// Runs until `stop` completes, then drains; for embedding and tests.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), RuntimeError> {
        self.supervise(crate::signals::Signals::from_future(stop))
            .await
    }

    async fn supervise(self, signals: crate::signals::Signals) -> Result<(), RuntimeError> {
        let Self {
            factories,
            settings,
        } = self;
        settings.supervise(factories, signals).await
    }
}

impl Settings {
    pub(crate) fn textfile_config(&self) -> Option<(&std::path::Path, Duration)> {
        self.textfile.as_ref().map(|(p, d)| (p.as_path(), *d))
    }

    #[cfg(feature = "metrics-http")]
    pub(crate) fn metrics_addr_config(&self) -> Option<std::net::SocketAddr> {
        self.metrics_addr
    }

    #[cfg(feature = "metrics-http")]
    pub(crate) fn metrics_limits_config(&self) -> crate::export::http::Limits {
        self.metrics_limits
    }

    async fn supervise(
        self,
        factories: Vec<Factory>,
        mut signals: crate::signals::Signals,
    ) -> Result<(), RuntimeError> {
        if factories.is_empty() {
            return Err(RuntimeError::NoPipelines);
        }
        let mut slots = Vec::with_capacity(factories.len());
        let mut names = std::collections::HashSet::new();
        for (index, mut factory) in factories.into_iter().enumerate() {
            let built = build(&mut factory)
                .map_err(|message| RuntimeError::FactoryPanicked { index, message })?;
            let name = built.name();
            validate_name(&name)?;
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
                backoff: self.restart_backoff.clone(),
                restart_at: None,
                state: PipelineState::Restarting,
            });
        }
        let _exporters = crate::export::start(&self.telemetry, &self)?;
        let (stop_tx, stop_rx) = watch::channel(None);
        let mut tasks = JoinSet::new();
        for slot in &mut slots {
            if let Some(built) = slot.first.take() {
                self.start(slot, built, &stop_rx, &mut tasks);
            }
        }
        loop {
            let next_restart = slots.iter().filter_map(|s| s.restart_at).min();
            tokio::select! {
                () = signals.next() => break,
                Some(joined) = tasks.join_next_with_id() => {
                    let (id, outcome) = match joined {
                        Ok((id, result)) => (id, result.map_err(|e| e.to_string())),
                        Err(e) => (e.id(), Err(panic_message(e))),
                    };
                    if let Some(slot) = slots.iter_mut().find(|s| s.task == Some(id)) {
                        self.failed(slot, outcome);
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
                            Ok(built) => self.start(slot, built, &stop_rx, &mut tasks),
                            Err(message) => self.failed(slot, Err(format!("factory panicked: {message}"))),
                        }
                    }
                    if slots.iter().all(|s| s.state == PipelineState::GivenUp) {
                        return Err(RuntimeError::AllPipelinesFailed { pipelines: slots.into_iter().map(|s| s.name).collect() });
                    }
                }
            }
        }
        tracing::info!(mode = ?self.drain, deadline = ?self.drain_deadline, "stopping: draining every pipeline");
        let _ = stop_tx.send(Some(self.drain));
        let outcome = self
            .wait_for_drain(&mut slots, &mut tasks, &mut signals)
            .await;
        for slot in &slots {
            if slot.state != PipelineState::GivenUp {
                self.telemetry.set_state(&slot.name, PipelineState::Stopped);
            }
        }
        crate::export::final_write(
            &self.telemetry,
            self.textfile.as_ref().map(|(p, _)| p.as_path()),
        )?;
        outcome
    }

    fn start(
        &self,
        slot: &mut Slot,
        built: Box<dyn Built>,
        stop: &watch::Receiver<Option<Drain>>,
        tasks: &mut JoinSet<Result<(), PipelineError>>,
    ) {
        let ctx = Ctx {
            stop: stop.clone(),
            metrics: self.telemetry.pipeline(&slot.name),
            share: self.budget.clone().map(Share::new),
            backpressure: self.backpressure,
            drain_deadline: self.drain_deadline,
        };
        slot.task = Some(built.start(ctx, tasks));
        slot.started = Instant::now();
        slot.state = PipelineState::Up;
        self.telemetry.set_state(&slot.name, PipelineState::Up);
    }

    /// A pipeline's task ended while the runtime was running: restart it
    /// after a backoff, or give up on it.
    fn failed(&self, slot: &mut Slot, outcome: Result<(), String>) {
        slot.task = None;
        let reason = match outcome {
            Ok(()) => "stopped on its own".to_owned(),
            Err(reason) => reason,
        };
        if slot.started.elapsed() >= self.healthy_after {
            slot.failures = 0;
            slot.backoff.reset();
        }
        slot.failures += 1;
        if slot.failures >= self.give_up_after {
            slot.state = PipelineState::GivenUp;
            self.telemetry.set_state(&slot.name, PipelineState::GivenUp);
            tracing::error!(pipeline = %slot.name, failures = slot.failures, %reason, "pipeline failed too often; giving up on it");
            return;
        }
        let wait = slot.backoff.fail();
        slot.restart_at = Some(Instant::now() + wait);
        slot.state = PipelineState::Restarting;
        self.telemetry
            .set_state(&slot.name, PipelineState::Restarting);
        tracing::error!(pipeline = %slot.name, failures = slot.failures, %reason, restart_in = ?wait, "pipeline failed; rebuilding it from its factory");
    }

    async fn wait_for_drain(
        &self,
        slots: &mut [Slot],
        tasks: &mut JoinSet<Result<(), PipelineError>>,
        signals: &mut crate::signals::Signals,
    ) -> Result<(), RuntimeError> {
        let deadline = Instant::now() + self.drain_deadline + Duration::from_secs(1);
        let mut failed = Vec::new();
        let mut finished = std::collections::HashSet::new();
        loop {
            tokio::select! {
                joined = tasks.join_next_with_id() => match joined {
                    None => break,
                    Some(Ok((id, Ok(())))) => { finished.insert(id); }
                    Some(Ok((id, Err(error)))) => {
                        finished.insert(id);
                        tracing::error!(%error, "drain failed");
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
                    return Err(RuntimeError::DrainTimedOut { pipelines: pending, deadline: self.drain_deadline });
                }
            }
        }
        if failed.is_empty() {
            tracing::info!("every pipeline drained");
            Ok(())
        } else {
            Err(RuntimeError::DrainFailed { pipelines: failed })
        }
    }
}

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

/// Calls a factory, turning a panic into its message.
fn build(factory: &mut Factory) -> Result<Box<dyn Built>, String> {
    std::panic::catch_unwind(AssertUnwindSafe(factory))
        .map_err(|payload| payload_message(payload.as_ref()))
}

fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".to_owned())
}

fn panic_message(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(payload) => format!("panicked: {}", payload_message(payload.as_ref())),
        Err(error) => error.to_string(),
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A pipeline name names directories, paths and metric labels.
pub(crate) fn validate_name(name: &str) -> Result<(), RuntimeError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.contains('/') || name.contains('\\') {
        Some("it contains a path separator")
    } else if name.contains("..") {
        Some("it contains `..`")
    } else if name.chars().any(char::is_control) {
        Some("it contains a control character")
    } else if meathook_core::name::check_pipeline_name(name).is_err() {
        Some(
            "it is too long to name files: at most 240 bytes once escaped for paths, where each byte other than ASCII letters, digits, `-` and `_` counts three",
        )
    } else {
        None
    };
    match reason {
        Some(reason) => Err(RuntimeError::BadPipelineName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}
