//! meathook: durable data collection.
//!
//! Poll APIs on an interval, file the records into UTC time windows, hold
//! them in bounded tiers and ship them to long-term storage (a local
//! directory, object storage, a HuggingFace dataset) without losing a
//! reading. You wire it in code: a [`Collector`] per API, a stack of sink
//! layers, and a supervised runtime that runs many pipelines in one process.
//!
//! # Overview
//!
//! ```text
//! Collector ─► Pipeline ─► windows ─► memory tier ─► spool ─► terminal sink
//! ```
//!
//! - **Collector**: a [`Collector`] returns one batch of records per poll;
//!   [`SatayCollector`] adapts a satay-generated API client (feature
//!   `satay`).
//! - **Pipeline**: a [`Pipeline`] polls its collector on an interval (with
//!   jitter, a timeout and dedupe by key) and offers each batch to its sink
//!   stack; [`Meathook`] runs many pipelines, one task each, rebuilds a
//!   panicked one from its factory and drains every stack on SIGTERM.
//! - **Windows**: every batch is filed under a [`WindowMeta`], the UTC window
//!   of its collection time; each layer widens it to its own length
//!   ([`FlushPolicy`]), and no layer moves a record into another window.
//! - **Memory tier**: `.buffered(policy)` ([`SinkExt`]) holds records in a
//!   bounded buffer; at capacity it refuses, and the pipeline slows down
//!   (backpressure, never a drop).
//! - **Spool**: `.spooled(dir, policy)` puts a [`DiskSpool`] in front: a
//!   write-ahead log that fsyncs before `ingest` returns and delivers closed
//!   windows in the background, retrying with backoff.
//! - **Terminal sink**: [`FileSink`] writes one file per batch
//!   ([`ParquetEncoder`], [`JsonLinesEncoder`], [`CsvEncoder`]) to a local
//!   directory or object storage; [`HfSink`] commits it to a HuggingFace
//!   dataset. Any type implementing [`Sink`] can stand there instead, and
//!   [`BoxSink`] picks one at run time.
//! - **Compaction**: `parquet::Compactor` turns each finished day's files of
//!   a pipeline in a local dataset directory into one file, which readers
//!   see in place of its parts in one step; run it as a scheduled
//!   [`runtime::Task`] beside the pipelines, or by hand (`meathook compact
//!   DIR`).
//!
//! The top level holds what a program starts with. The rest is in modules,
//! one per crate: [`contracts`] (the traits and the IO-free layers: `Tee`,
//! `Buffered`, the delivery hook, the types a sink author implements
//! against), [`spool`], [`runtime`], [`catalog`] (the delivery catalog),
//! [`files`] (the arrow-free file layer), [`parquet`] and [`hf`].
//!
//! # Feature flags
//!
//! | feature | default | enables |
//! |---|---|---|
//! | `parquet` | yes | [`FileSink`], the encoders and destinations ([`parquet`]) |
//! | `s3`, `gcs`, `azure` | no | `s3://`, `gs://` and `az://` destinations for [`FileSink`] (each implies `parquet`) |
//! | `huggingface` | yes | [`HfSink`] ([`hf`]; implies `parquet`, `satay` and `metrics-http`) |
//! | `satay` | with `huggingface` | [`SatayCollector`] for satay-generated API clients |
//! | `metrics-http` | with `huggingface` | the runtime's `/metrics` and `/healthz` listener |
//! | `postgres` | no | `catalog::postgres`: the delivery catalog in PostgreSQL, back-filled from the manifest |
//! | `cli` | no | the `meathook` command (`meathook compact DIR`; implies `parquet`) |
//!
//! With `--no-default-features` you get the contracts, the layers, the spool,
//! the runtime, the catalog's manifest and the file layer, and no HTTP, arrow
//! or parquet crate: bring your own terminal sink.
//!
//! # Quick start
//!
//! Air temperatures from Singapore's NEA API, polled every minute, spooled
//! to disk, deduplicated by station and time, and committed hourly to a
//! HuggingFace dataset as parquet:
//!
//! ```no_run
//! # #[cfg(feature = "huggingface")]
//! # mod quick_start {
//! use std::time::Duration;
//!
//! use meathook::runtime::SataySender;
//! use meathook::{FlushPolicy, HfSink, Meathook, Pipeline, SatayCollector, SinkExt as _};
//!
//! /// A record: a plain serde struct is all the parquet encoder needs.
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Reading {
//!     station_id: String,
//!     #[serde(with = "meathook::parquet::timestamp")] // a UTC timestamp column
//!     timestamp: time::OffsetDateTime,
//!     value: f64,
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), meathook::RuntimeError> {
//!     let client = reqwest::Client::new();
//!     let token = std::env::var("HF_TOKEN").unwrap_or_default();
//!     Meathook::builder()
//!         .pipeline(move || {
//!             // The factory runs again after a panic: a fresh stack, and spool recovery.
//!             let api = nea_rs::Api::new();
//!             let collector = SatayCollector::new(
//!                 "air_temperature",
//!                 client.clone(),
//!                 move |sender: SataySender| {
//!                     let api = api.clone();
//!                     async move { sender.send(api.weather_readings().air_temperature()).await }
//!                 },
//!                 |answer| match answer {
//!                     nea_rs::AirTemperatureOperationResponse::Ok(ok) => ok
//!                         .data
//!                         .readings
//!                         .into_iter()
//!                         .flat_map(|snapshot| {
//!                             let at = snapshot.timestamp;
//!                             snapshot.data.into_iter().map(move |r| Reading {
//!                                 station_id: r.station_id.to_string(),
//!                                 timestamp: at,
//!                                 value: r.value,
//!                             })
//!                         })
//!                         .collect(),
//!                     _ => Vec::new(),
//!                 },
//!             );
//!             // Durable: every poll is fsynced before it counts; hourly windows go to the Hub.
//!             let sink = HfSink::new(client.clone(), "you/sg-weather", token.clone())
//!                 .spooled("/var/lib/meathook/spool/air_temperature", FlushPolicy::hourly());
//!             Pipeline::new(collector, sink, Duration::from_secs(60))
//!                 // "Latest reading" APIs repeat across polls: dedupe by key.
//!                 .with_key_fn(|r: &Reading| (r.station_id.clone(), r.timestamp))
//!         })
//!         .run() // until SIGTERM or ctrl-c, then every stack drains
//!         .await
//! }
//! # }
//! # fn main() {}
//! ```
//!
//! The README has a version that runs without an account (a counter into a
//! local parquet dataset); `examples/nea_weather.rs` is the full reference
//! consumer: three APIs, a TOML configuration, the metrics endpoint and the
//! delivery catalog.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Collecting and running.
#[doc(inline)]
pub use meathook_core::{Collector, FlushPolicy, PolicyError, WindowMeta};
#[doc(inline)]
pub use meathook_runtime::{Meathook, Pipeline, PipelineError, RuntimeError};
#[cfg(feature = "satay")]
#[cfg_attr(docsrs, doc(cfg(feature = "satay")))]
#[doc(inline)]
pub use meathook_runtime::{SatayCollector, SatayError};

// Sink stacks.
#[doc(inline)]
pub use meathook_core::{
    BoxSink, BoxSinkError, Drain, ErrorClass, IngestError, Receipt, Sink, SinkError, SinkFailure,
};
#[doc(inline)]
pub use meathook_spool::{DiskSpool, SinkExt, SpoolError};

// Terminal sinks.
#[cfg(feature = "huggingface")]
#[cfg_attr(docsrs, doc(cfg(feature = "huggingface")))]
#[doc(inline)]
pub use meathook_hf::{HfError, HfSink};
#[cfg(feature = "parquet")]
#[cfg_attr(docsrs, doc(cfg(feature = "parquet")))]
#[doc(inline)]
pub use meathook_parquet::{
    CsvEncoder, EncodeError, FileSink, FileSinkError, JsonLinesEncoder, ParquetEncoder,
};

/// The delivery catalog: the JSON-lines manifest every landed file is
/// recorded in, and PostgreSQL with the `postgres` feature.
pub use meathook_catalog as catalog;
/// The contracts and the IO-free layers (`meathook-core`): the traits, the
/// windows, `Buffered`, `Tee`, `BoxSink`, the encoder shape, the delivery
/// hook, and the plumbing a sink author implements against.
pub use meathook_core as contracts;
/// The arrow-free file layer (`meathook-files`): path layout, the atomic
/// local publish, the text encoders and the window-file pipeline every
/// file-producing sink shares.
pub use meathook_files as files;
/// The HuggingFace dataset sink (`meathook-hf`).
#[cfg(feature = "huggingface")]
#[cfg_attr(docsrs, doc(cfg(feature = "huggingface")))]
pub use meathook_hf as hf;
/// Parquet and the other file encoders, and file destinations: local
/// directories and object storage (`meathook-parquet`).
#[cfg(feature = "parquet")]
#[cfg_attr(docsrs, doc(cfg(feature = "parquet")))]
pub use meathook_parquet as parquet;
/// The supervised runtime (`meathook-runtime`): pipelines, the supervisor,
/// backpressure, signals and metrics.
pub use meathook_runtime as runtime;
/// The durable write-ahead spool (`meathook-spool`): its settings, figures
/// and recovery report.
pub use meathook_spool as spool;

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
