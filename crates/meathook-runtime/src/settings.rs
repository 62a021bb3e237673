//! `Settings`: everything the builder configures but the pipelines'
//! factories, with its defaults. Shared by reference while pipelines run,
//! so it holds nothing that is not `Sync`.

use std::time::Duration;

use meathook_core::{Backoff, Drain};

use crate::budget::{Backpressure, MemoryBudget};
use crate::error::RuntimeError;
use crate::export::ExportSettings;
use crate::metrics::Telemetry;

/// The runtime's settings; see the setters of
/// [`MeathookBuilder`](crate::MeathookBuilder) for what each one means.
#[derive(Debug)]
pub(crate) struct Settings {
    /// What the drain at shutdown does.
    pub(crate) drain: Drain,
    /// How long the drain at shutdown may take.
    pub(crate) drain_deadline: Duration,
    /// The wait before rebuilding a failed pipeline.
    pub(crate) restart_backoff: Backoff,
    /// Failures in a row after which a pipeline is given up.
    pub(crate) give_up_after: u32,
    /// A run this long resets a pipeline's failure count.
    pub(crate) healthy_after: Duration,
    /// The memory budget all pipelines share, if any.
    pub(crate) budget: Option<MemoryBudget>,
    /// How utilisation slows polling.
    pub(crate) backpressure: Backpressure,
    /// The runtime's metrics and health.
    pub(crate) telemetry: Telemetry,
    /// Where the metrics go.
    pub(crate) exports: ExportSettings,
}

impl Settings {
    /// The first setting that cannot work, by its name (its setter is
    /// `with_` and the name).
    pub(crate) fn check(&self) -> Result<(), RuntimeError> {
        let invalid = |setting: &'static str, reason: String| {
            Err(RuntimeError::InvalidSetting {
                pipeline: None,
                setting,
                reason,
            })
        };
        if self.give_up_after == 0 {
            return invalid(
                "give_up_after",
                "zero failures would give up before a start".into(),
            );
        }
        if self.budget.as_ref().is_some_and(|b| b.limit() == 0) {
            return invalid("memory_limit", "a limit of zero bytes holds nothing".into());
        }
        if let Some(problem) = self.backpressure.problem() {
            return invalid("backpressure", problem);
        }
        if let Some((setting, problem)) = self.exports.health.problem() {
            return invalid(setting, problem);
        }
        if let Some((_, every)) = &self.exports.textfile
            && *every < MIN_TEXTFILE_EVERY
        {
            return invalid(
                "metrics_textfile",
                format!("every {every:?} is under {MIN_TEXTFILE_EVERY:?}"),
            );
        }
        #[cfg(feature = "metrics-http")]
        {
            let limits = &self.exports.limits;
            if limits.max_connections == 0 {
                return invalid(
                    "metrics_max_connections",
                    "zero connections serve nobody".into(),
                );
            }
            if limits.header_timeout.is_zero() || limits.connection_timeout.is_zero() {
                return invalid(
                    "metrics_timeouts",
                    "a zero bound closes every connection".into(),
                );
            }
        }
        Ok(())
    }
}

/// The shortest interval between two writes of the metrics textfile.
const MIN_TEXTFILE_EVERY: Duration = Duration::from_millis(100);

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
            exports: ExportSettings::default(),
        }
    }
}
