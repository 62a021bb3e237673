//! meathook: durable data collection.
//!
//! Poll APIs on an interval, file the records into UTC time windows, hold
//! them in bounded tiers and ship them to long-term storage without losing a
//! reading. See the README for the picture and ARCHITECTURE.md for the crate
//! map.
//!
//! # Feature flags
//!
//! | feature | default | enables |
//! |---|---|---|
//! | `parquet` | yes | `meathook::parquet`: file encoders and destinations |
//! | `huggingface` | yes | `meathook::hf`: the HuggingFace dataset sink (implies `parquet`, `satay`, `metrics-http`) |
//! | `satay` | with `huggingface` | `runtime::SatayCollector` for satay-generated API clients |
//! | `metrics-http` | with `huggingface` | the runtime's `/metrics` and `/healthz` listener |
//! | `postgres` | no | `catalog::postgres`: the delivery catalog in PostgreSQL, back-filled from the manifest |
//!
//! With `--no-default-features` you get the core contracts, the layers, the
//! spool and the runtime, and no HTTP, arrow or parquet crate.
#![forbid(unsafe_code)]

#[doc(inline)]
pub use meathook_core::{
    Backoff, BatchId, BoxSink, BoxSinkError, Branch, Buffered, BufferedError, Capacity,
    CatalogSnapshot, CatalogStats, ChunkedError, ChunkedResult, Clock, Collector, Deliveries,
    Delivery, DeliveryLog, DeliveryLogError, Drain, EncodeSession, Encoder, ErrorClass,
    FlushPolicy, IngestError, LayerStats, PolicyError, Receipt, RecordChunks, RecordRejected, Sink,
    SinkError, StackStats, SystemClock, Tee, TeeError, TokioClock, Weigher, WindowMeta,
};
#[doc(inline)]
pub use meathook_spool::{
    Credits, DiskSpool, Durability, FullPolicy, Limits, RecoveryReport, SinkExt, SpoolError,
    SpoolStats, StatsSnapshot,
};

/// The delivery catalog: the JSON-lines manifest, and PostgreSQL with the
/// `postgres` feature.
pub use meathook_catalog as catalog;
/// The core contracts crate, for items not re-exported at the top level.
pub use meathook_core as core;
#[cfg(feature = "huggingface")]
/// The HuggingFace dataset sink.
pub use meathook_hf as hf;
#[cfg(feature = "parquet")]
/// File encoders and destinations.
pub use meathook_parquet as parquet;
/// The supervised runtime.
pub use meathook_runtime as runtime;
/// The durable spool.
pub use meathook_spool as spool;

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
