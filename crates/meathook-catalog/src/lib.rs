//! The delivery catalog of meathook: a record of every file delivered.
//!
//! # Overview
//!
//! Terminal sinks (`FileSink`, `HfSink`) report each file they land as a
//! [`Delivery`](meathook_core::Delivery) through a
//! [`Deliveries`](meathook_core::Deliveries) handle, before their `ingest`
//! returns. This crate provides:
//!
//! - [`Manifest`], the default catalog: one JSON line per delivery in
//!   `deliveries.jsonl` next to the spools, appended and fsynced before the
//!   sink lets its batch go;
//! - `postgres` (feature `postgres`): the catalog in PostgreSQL, with a
//!   versioned schema created on first use and an idempotent upsert keyed
//!   on (destination, path), and `Backfill`, the task that copies the
//!   manifest into it from a durable cursor and waits out outages with
//!   backoff, so a database that is down never blocks or loses a delivery;
//! - [`query`]: list, gaps and totals per day, over the manifest (the
//!   PostgreSQL catalog answers the same in SQL), as the `meathook-catalog`
//!   command prints them, and the pipelines a manifest records (where the
//!   command finds its default pipeline and window length). The command
//!   needs the `cli` feature (on by default); the library alone does not
//!   depend on `clap`.
//!
//! Figures (manifest writes and failures, database writes and failures,
//! back-fill backlog) are counted in a
//! [`CatalogStats`](meathook_core::CatalogStats) that the runtime exports.
//!
//! # Examples
//!
//! ```
//! use meathook_catalog::{Manifest, MANIFEST_FILE, query};
//! use meathook_core::{Delivery, DeliveryLog as _, WindowMeta};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let manifest = Manifest::open(dir.path().join(MANIFEST_FILE))?;
//! let window = WindowMeta::containing(
//!     "air_temperature",
//!     time::macros::datetime!(2026-12-01 10:20 UTC),
//!     std::time::Duration::from_secs(3600),
//! );
//! // What a terminal sink does after landing a file:
//! manifest.record(&Delivery::new(&window, "/data", "data/air_temperature/x.parquet", 60, 4096, [0; 32]))?;
//!
//! let day = time::macros::datetime!(2026-12-01 00:00 UTC);
//! let listed = query::list(manifest.path(), "air_temperature", day, day + time::Duration::DAY)?;
//! assert_eq!(listed[0].rows, 60);
//! let gaps = query::gaps(manifest.path(), "air_temperature", day, day + time::Duration::DAY, window.len())?;
//! assert_eq!(gaps.len(), 23, "one hour delivered, 23 missing");
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "postgres")]
mod backfill;
mod manifest;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
pub mod query;
mod record;

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use backfill::{
    Backfill, BackfillError, BackfillHandle, DEFAULT_BATCH, DEFAULT_POLL, cursor_path,
    rejected_path,
};
pub use manifest::{
    Chunk, MANIFEST_FILE, Manifest, ManifestError, count_lines, for_each_record, read_chunk,
};
pub use record::{DeliveryRecord, RECORD_VERSION};
