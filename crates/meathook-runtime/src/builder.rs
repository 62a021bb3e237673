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

impl std::fmt::Debug for MeathookBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeathookBuilder")
            .field("pipelines", &self.factories.len())
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

    /// Serves `/metrics` (OpenMetrics) and `/healthz` on `addr`.
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

    /// Writes the metrics to `path` every `every`, atomically (for
    /// node_exporter's textfile collector). An interval under 100 ms is
    /// refused by `run`.
    pub fn with_metrics_textfile(
        mut self,
        path: impl Into<std::path::PathBuf>,
        every: Duration,
    ) -> Self {
        self.settings.exports.textfile = Some((path.into(), every));
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
        supervisor::supervise(self.settings, self.factories, signals).await
    }

    /// Runs until `stop` completes, then drains; for embedding and tests.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), RuntimeError> {
        supervisor::supervise(self.settings, self.factories, Signals::from_future(stop)).await
    }
}
