//! [`Trial`]: what one trial poll of a pipeline's collector returned, for
//! trying a collector out without running the pipeline
//! ([`Pipeline::try_once`](crate::Pipeline::try_once)).

use std::time::Duration;

use meathook_core::WindowMeta;

/// What one trial poll collected. Nothing was written: the sink stack was
/// not opened and the dedupe journal was neither read nor written.
#[derive(Debug, Clone)]
pub struct Trial<R> {
    /// The window the pipeline stamps the batch with (the second it was
    /// collected in); a spool files it into the window of its policy that
    /// contains `window.start`.
    pub window: WindowMeta,
    /// The records, in the collector's order, without those whose key (with
    /// [`Pipeline::with_key_fn`](crate::Pipeline::with_key_fn)) repeats an
    /// earlier record of the same trial.
    pub records: Vec<R>,
    /// Records dropped as repeats of a key within this trial.
    pub deduped: usize,
    /// How long the poll took.
    pub took: Duration,
}

/// Why a trial poll returned no records.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrialError<E: std::error::Error + 'static> {
    /// The collector failed.
    #[error("poll failed: {source}")]
    Collect {
        /// The collector's error.
        #[source]
        source: E,
        /// How long the source asked to be left alone, if it did.
        retry_after: Option<Duration>,
    },
    /// The collector did not answer within the pipeline's collect timeout.
    #[error("poll timed out after {timeout:?}")]
    TimedOut {
        /// The collect timeout.
        timeout: Duration,
    },
}
