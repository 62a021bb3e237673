//! The file layer of meathook, without arrow, parquet, reqwest or
//! object_store: what every sink that writes window files needs, so a
//! custom file sink can be built on `meathook-core`, `meathook-spool` and
//! this crate alone.
//!
//! # Overview
//!
//! - [`layout`]: where a window's file goes. A path is a pure function of
//!   the pipeline, the window's start and the batch's identity, so a replay
//!   lands on the same path and two batches never share one.
//! - [`local`]: how a file appears under its final name — encoded into a
//!   scratch file that hashes what goes through it, fsynced, hard-linked
//!   into place (never over another file) and the directory fsynced.
//! - [`JsonLinesEncoder`] (any `Serialize` record) and [`CsvEncoder`] (flat
//!   records; a nested field is refused when the encoder is built, naming
//!   it), both [`meathook_core::Encoder`]s, reporting [`EncodeError`]. Their
//!   second type parameter lets a crate with encoders of its own have them
//!   report its error type instead (meathook-parquet does).
//! - [`timestamp`]: `#[serde(with = "meathook_files::timestamp")]` for
//!   `time::OffsetDateTime` fields, a timestamp column in every format, in
//!   microseconds UTC (sub-microsecond digits truncated);
//!   [`timestamp_ns`] for nanoseconds.
//! - [`card`]: the dataset card (`README.md`, one `configs:` entry per
//!   pipeline, the user's text kept); [`card::local`] keeps a local
//!   directory's card for any number of writers at once.
//!
//! meathook-parquet builds on this crate and re-exports all of it under its
//! old paths (`meathook_parquet::layout`, `meathook_parquet::CsvEncoder`, …);
//! `cargo xtask ci features` checks that `meathook-core`, `meathook-spool`
//! and this crate together compile no arrow, parquet, HTTP or object_store
//! crate.
//!
//! # Examples
//!
//! The core of a custom file sink: encode a window's batch into a scratch
//! file, seal it, and publish it at its layout path. (Everything here
//! blocks: an async sink runs it on the blocking pool.)
//!
//! ```
//! use std::path::Path;
//!
//! use meathook_core::{BatchId, EncodeSession, Encoder, WindowMeta};
//! use meathook_files::layout::{self, BatchName};
//! use meathook_files::local::{self, Published, ScratchFile};
//! use meathook_files::CsvEncoder;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Reading {
//!     station_id: String,
//!     #[serde(with = "meathook_files::timestamp")]
//!     observed_at: time::OffsetDateTime,
//!     value: f64,
//! }
//!
//! fn land(
//!     root: &Path,
//!     encoder: &CsvEncoder<Reading>,
//!     window: &WindowMeta,
//!     records: &[Reading],
//! ) -> Result<Published, Box<dyn std::error::Error>> {
//!     let scratch = ScratchFile::create(&root.join(local::SCRATCH_DIR))?;
//!     let mut session = encoder.begin(scratch)?;
//!     session.write(records)?;
//!     let sealed = session.finish()?.seal()?;
//!     // A batch from a spool is named by its sequence range; one without
//!     // by its content.
//!     let name = match window.batch {
//!         Some(id) => BatchName::Sequence(id),
//!         None => BatchName::Content(&sealed.sha256),
//!     };
//!     let target = root.join(layout::object_path(window, name, encoder.extension()));
//!     Ok(local::publish(&sealed, &target)?)
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let root = tempfile::tempdir()?;
//! let at = time::macros::datetime!(2026-11-23 10:56 UTC);
//! let window = WindowMeta::containing("air_temperature", at, std::time::Duration::from_secs(3600))
//!     .with_batch(BatchId::new(0x00c0_ffee, 7, 8));
//! let encoder = CsvEncoder::<Reading>::new()?;
//! let records = [
//!     Reading { station_id: "S1".into(), observed_at: at, value: 21.5 },
//!     Reading { station_id: "S2".into(), observed_at: at, value: 19.0 },
//! ];
//!
//! assert_eq!(land(root.path(), &encoder, &window, &records)?, Published::Created);
//! // A replay finds the same bytes at the same path, and changes nothing.
//! assert_eq!(land(root.path(), &encoder, &window, &records)?, Published::AlreadyThere);
//!
//! let path = root.path().join(
//!     "data/air_temperature/2026-11-23/100000Z-b0000000000c0ffee-00000000000000000007-00000000000000000008.csv",
//! );
//! assert_eq!(
//!     std::fs::read_to_string(path)?,
//!     "station_id,observed_at,value\n\
//!      S1,2026-11-23T10:56:00Z,21.5\n\
//!      S2,2026-11-23T10:56:00Z,19.0\n"
//! );
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod card;
pub mod coverage;
mod csv;
mod error;
pub mod fs;
mod jsonl;
pub mod layout;
pub mod local;
pub mod timestamp;
pub mod timestamp_ns;
pub mod window_file;

pub use crate::window_file::{
    EncodeFailure, FileCounts, FileEncoder, Landed, Publish, SealedFile, WindowFile,
    WindowFileError,
};

pub use crate::csv::{CsvEncoder, CsvSession};
pub use crate::error::EncodeError;
pub use crate::jsonl::{JsonLinesEncoder, JsonLinesSession};
