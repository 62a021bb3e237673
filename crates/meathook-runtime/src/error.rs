//! Errors of the runtime.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

/// Why [`Meathook::run`](crate::Meathook) stopped with a failure.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// A setting cannot work (a count or bound of zero, a ratio out of
    /// range); found when `run` starts, before anything runs. What to do:
    /// fix the named setting.
    #[error("{}the {setting} setting cannot be used: {reason}", pipeline.as_ref().map(|p| format!("pipeline {p}: ")).unwrap_or_default())]
    InvalidSetting {
        /// The pipeline whose setting it is; `None` for the runtime's own.
        pipeline: Option<String>,
        /// The setting (its setter is `with_` and this name).
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `run` was called with no pipeline.
    #[error("no pipeline to run: add one with Meathook::builder().pipeline(..)")]
    NoPipelines,
    /// A pipeline name cannot be used in paths and metrics.
    #[error("pipeline name {name:?} is invalid: {reason}")]
    BadPipelineName {
        /// The rejected name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two pipelines share a name (they would share spool paths and metrics).
    #[error("two pipelines are named {0:?}: pipeline names must be unique")]
    DuplicatePipeline(String),
    /// A pipeline's factory panicked before its first start.
    #[error("the factory of pipeline #{index} panicked before the pipeline could start: {message}")]
    FactoryPanicked {
        /// Position of the pipeline in the builder.
        index: usize,
        /// The panic message.
        message: String,
    },
    /// Every pipeline failed repeatedly and was given up on.
    #[error(
        "every pipeline was given up on after repeated failures ({}): see the error log for each failure",
        pipelines.join(", ")
    )]
    AllPipelinesFailed {
        /// The pipelines given up on.
        pipelines: Vec<String>,
    },
    /// A second stop signal arrived during the drain: the runtime stopped at
    /// once. Acknowledged records are safe in durable layers.
    #[error(
        "stopped at once by a second signal during the drain; spooled records are kept for the next start"
    )]
    Interrupted,
    /// The drain did not finish within the deadline.
    #[error(
        "draining pipelines {} did not finish within {deadline:?}; spooled records are kept for the next start",
        pipelines.join(", ")
    )]
    DrainTimedOut {
        /// Pipelines still draining at the deadline.
        pipelines: Vec<String>,
        /// The configured deadline.
        deadline: Duration,
    },
    /// Some pipelines failed to drain; what they did not deliver stays in
    /// their durable layers.
    #[error("draining pipelines {} failed; see the error log, spooled records are kept for the next start", pipelines.join(", "))]
    DrainFailed {
        /// The pipelines whose drain failed.
        pipelines: Vec<String>,
    },
    /// Signal handlers could not be installed.
    #[error("cannot listen for SIGTERM / ctrl-c: {0}")]
    Signals(#[source] io::Error),
    /// The metrics listener could not bind its address.
    #[error("cannot serve metrics on {addr}: {source}")]
    MetricsListen {
        /// The configured address.
        addr: std::net::SocketAddr,
        /// The bind error.
        #[source]
        source: io::Error,
    },
    /// The directory of the metrics textfile could not be created.
    #[error("cannot create the directory {dir} for the metrics textfile {path}: {source}")]
    MetricsTextfileDir {
        /// The directory.
        dir: PathBuf,
        /// The configured path.
        path: PathBuf,
        /// The error creating it (or a parent).
        #[source]
        source: io::Error,
    },
    /// The metrics textfile could not be written.
    #[error("cannot write the metrics textfile {path}: {source}")]
    MetricsTextfile {
        /// The configured path.
        path: PathBuf,
        /// The write error.
        #[source]
        source: io::Error,
    },
}

/// Why one run of a pipeline ended with a failure (the supervisor restarts
/// it).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// A setting of the pipeline cannot work (a zero interval, timeout or
    /// memory limit); found before the sink stack is opened.
    #[error("pipeline {pipeline}: the {setting} setting cannot be used: {reason}")]
    InvalidSetting {
        /// The pipeline.
        pipeline: String,
        /// The setting (its setter is `with_` and this name).
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The sink stack could not be opened (recovery, lock, connection).
    #[error("pipeline {pipeline}: opening the sink stack failed: {message}")]
    Open {
        /// The pipeline.
        pipeline: String,
        /// The sink's error.
        message: String,
    },
    /// The sink stack failed to advance time.
    #[error("pipeline {pipeline}: the sink stack failed: {message}")]
    Sink {
        /// The pipeline.
        pipeline: String,
        /// The sink's error.
        message: String,
    },
    /// The drain at shutdown failed; what was not delivered stays in the
    /// durable layers.
    #[error("pipeline {pipeline}: draining at shutdown failed: {message}")]
    Drain {
        /// The pipeline.
        pipeline: String,
        /// The sink's error.
        message: String,
    },
    /// The drain at shutdown could not offer every collected record to the
    /// stack before the deadline.
    #[error(
        "pipeline {pipeline}: {records} collected records were still refused by the sink stack at shutdown"
    )]
    Undrained {
        /// The pipeline.
        pipeline: String,
        /// Records the stack never accepted.
        records: usize,
    },
}
