//! The `Collector` contract: one API polled on a schedule.

use std::future::Future;
use std::time::Duration;

/// Produces a batch of row-shaped records each time it is polled.
///
/// The runtime calls [`collect`](Collector::collect) on every tick, stamps the
/// batch with its collection time and hands it to the pipeline's sink stack.
/// An `Err` is counted and logged; the next tick polls again.
pub trait Collector: Send + 'static {
    /// One reading, as stored: a plain `Serialize + Deserialize` struct.
    type Record: Send + 'static;
    /// Why a poll failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The pipeline name: used in windows, spool segments, paths and metrics.
    fn name(&self) -> &str;

    /// Polls the source once.
    fn collect(&mut self) -> impl Future<Output = Result<Vec<Self::Record>, Self::Error>> + Send;

    /// A short, stable label for the kind of `error`, used as a metric label
    /// (`"transport"`, `"status_429"`, `"decode"`, …).
    ///
    /// By default, this returns `"error"`.
    fn error_kind(error: &Self::Error) -> &'static str {
        let _ = error;
        "error"
    }

    /// How long the source asked to be left alone after `error` (a 429's
    /// `Retry-After`): the pipeline does not poll this collector again before
    /// then.
    ///
    /// By default, this returns `None`.
    fn retry_after(error: &Self::Error) -> Option<Duration> {
        let _ = error;
        None
    }
}
