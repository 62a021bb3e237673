//! The supervised runtime of meathook.
//!
//! # Overview
//!
//! - [`Pipeline`]: one [`Collector`](meathook_core::Collector) polled on an
//!   interval (with jitter and a collect timeout) into one sink stack, with
//!   dedupe by key and backpressure.
//! - [`Meathook`]: runs many pipelines, one tokio task each; rebuilds a
//!   failed one from its factory with backoff; gives up loudly on one that
//!   keeps failing; drains every stack on SIGTERM / ctrl-c.
//! - [`Telemetry`]: metrics in OpenMetrics or Prometheus text and pipeline
//!   health, served on `/metrics` (the format the client's `Accept` asks
//!   for) and `/healthz` (feature `metrics-http`: a listener that holds a
//!   capped number of connections and closes slow or idle ones) or written
//!   to a textfile in the Prometheus text format.
//! - `SatayCollector` (feature `satay`): satay-generated clients such as
//!   nea-rs as collectors, reading each answer within a body limit and a
//!   deadline.
//!
//! # Feature flags
//!
//! | feature | enables |
//! |---|---|
//! | `satay` | `SatayCollector` (satay-runtime, http, reqwest) |
//! | `metrics-http` | the `/metrics` and `/healthz` listener (hyper) |
//!
//! Without them this crate pulls in no HTTP crate.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod budget;
mod builder;
mod built;
mod catalog_metrics;
mod dedupe;
mod error;
mod export;
mod exposition;
mod health;
mod journal;
#[cfg(feature = "metrics-http")]
mod listener;
mod metric_families;
mod metrics;
mod name;
mod pipeline;
mod pipeline_metrics;
#[cfg(feature = "satay")]
mod satay;
mod settings;
mod signals;
mod status;
mod supervisor;
mod task;
mod textfile;
mod trial;

pub use budget::{Backpressure, MemoryBudget};
pub use builder::{Meathook, MeathookBuilder};
pub use error::{PipelineError, RuntimeError};
pub use exposition::MetricsFormat;
pub use health::PipelineState;
pub use metrics::Telemetry;
pub use pipeline::Pipeline;
#[cfg(feature = "satay")]
#[cfg_attr(docsrs, doc(cfg(feature = "satay")))]
pub use satay::{DEFAULT_BODY_LIMIT, DEFAULT_TIMEOUT, SatayCollector, SatayError, SataySender};
pub use task::{Task, TaskError};
pub use trial::{Trial, TrialError};
