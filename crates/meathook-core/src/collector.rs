//! The `Collector` contract: one API polled on a schedule.

use std::future::Future;

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
}
