//! File encoders and file destinations for meathook.
//!
//! # Overview
//!
//! - [`ParquetEncoder`]: the arrow schema is traced from the record type with
//!   `serde_arrow` (a plain `#[derive(Serialize, Deserialize)]` is all a
//!   record needs), pages are zstd-compressed by default, row groups stream
//!   out as they fill, statistics and the page index are written, and the
//!   same records give the same bytes.
//! - [`JsonLinesEncoder`] and [`CsvEncoder`] (flat records only).
//! - [`FileSink`], the terminal sink that writes one file per batch, at a
//!   deterministic path ([`layout`]), to a local directory (atomic writes)
//!   or to S3, GCS, Azure or memory through `object_store` ([`Destination`]),
//!   with the dataset card beside the files (one `configs:` entry per
//!   pipeline), so `datasets.load_dataset(dir, name=PIPELINE)` reads one
//!   pipeline.
//! - [`timestamp`]: `time::OffsetDateTime` fields as UTC timestamp columns,
//!   in microseconds ([`timestamp_ns`] for nanoseconds).
//!
//! # Examples
//!
//! ```
//! use meathook_core::{Encoder, WindowMeta};
//! use meathook_parquet::{FileSink, ParquetEncoder};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Reading {
//!     station_id: String,
//!     #[serde(with = "meathook_parquet::timestamp")]
//!     observed_at: time::OffsetDateTime,
//!     value: f64,
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let encoder = ParquetEncoder::<Reading>::new()?;
//! let bytes = encoder.encode(&[Reading {
//!     station_id: "S1".into(),
//!     observed_at: time::OffsetDateTime::UNIX_EPOCH,
//!     value: 21.5,
//! }])?;
//! assert_eq!(&bytes[..4], b"PAR1");
//!
//! let dir = std::env::temp_dir().join("meathook-doc-example");
//! let sink: FileSink<Reading, _> = FileSink::new(dir.to_string_lossy(), encoder)?;
//! # let _ = sink;
//! # Ok(())
//! # }
//! ```
//!
//! # Schema evolution
//!
//! A file's schema is the record type's schema when the file was written.
//! Adding a field of type `Option<_>` (with `#[serde(default)]`) in a new
//! release breaks nothing already written: old files keep their columns,
//! new files have one more. Readers see:
//!
//! - this crate's record type, read with `serde_arrow`: `None` for the new
//!   field in old files;
//! - pyarrow, DuckDB, Spark, polars reading several files with schema
//!   merging (`pyarrow.dataset` with a unified schema, `union_by_name`):
//!   null for the new column in old files;
//! - a reader that takes the first file's schema for all files: it may drop
//!   the new column or refuse the mix. The dataset viewer wants one schema
//!   per config: give the new shape its own pipeline name (and config) if
//!   that matters.
//!
//! Renaming, removing or retyping a field is not evolution: use a new
//! pipeline name, so the files of each shape stay in their own folder.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod card;
pub mod compact;
mod error;
mod file_sink;
mod parquet;
mod read;
mod remote;
mod schema;
mod sink_builder;
mod sink_error;
mod store;

pub use crate::compact::{CompactError, Compacted, CompactionReport, Compactor, StoreCompactor};
pub use crate::error::EncodeError;
pub use crate::file_sink::FileSink;
pub use crate::parquet::{
    Compression, DEFAULT_ROW_GROUP_SIZE, DEFAULT_ZSTD_LEVEL, FLOAT_DICTIONARY_LIMIT,
    ParquetEncoder, ParquetEncoderBuilder, ParquetSession,
};
pub use crate::read::{ReadBackError, read_parquet, read_parquet_json};
pub use crate::sink_builder::{DEFAULT_SINGLE_PUT_LIMIT, FileSinkBuilder};
pub use crate::sink_error::FileSinkError;
pub use crate::store::{Destination, DestinationError, ProbeError};
#[doc(inline)]
pub use meathook_files::{layout, local, timestamp, timestamp_ns};
/// [`meathook_files::JsonLinesEncoder`] reporting this crate's [`EncodeError`],
/// so [`FileSink`] takes it.
pub type JsonLinesEncoder<R> = meathook_files::JsonLinesEncoder<R, EncodeError>;
/// [`meathook_files::JsonLinesSession`] reporting this crate's [`EncodeError`].
pub type JsonLinesSession<R, W> = meathook_files::JsonLinesSession<R, W, EncodeError>;
/// [`meathook_files::CsvEncoder`] reporting this crate's [`EncodeError`], so
/// [`FileSink`] takes it.
pub type CsvEncoder<R> = meathook_files::CsvEncoder<R, EncodeError>;
/// [`meathook_files::CsvSession`] reporting this crate's [`EncodeError`].
pub type CsvSession<R, W> = meathook_files::CsvSession<R, W, EncodeError>;
/// The `object_store` crate this crate's [`Destination::store`] takes and
/// [`FileSinkError::Store`] carries, so callers need not match its version.
/// Its cloud backends (`object_store::aws`, `gcp`, `azure`) are here when the
/// `s3`, `gcs` or `azure` feature is on.
pub use object_store;

#[cfg(test)]
mod tests {
    use meathook_core::{BatchId, WindowMeta};
    use proptest::prelude::*;
    use time::macros::datetime;

    use crate::layout::{BatchName, object_path};

    proptest! {
        // The layout (meathook-files, which knows no object_store) never
        // makes a path with a segment object stores refuse.
        #[test]
        fn layout_paths_are_object_store_paths(
            name in prop_oneof![
                "[a-zA-Z0-9_./ +-]{0,24}",
                "(test|train|dev|eval|val|x|_|-|1|/){0,6}",
                any::<String>(),
            ],
            incarnation in any::<Option<u64>>(),
            first in any::<u64>(),
            last in any::<u64>(),
        ) {
            let window = WindowMeta::instant(name.as_str(), datetime!(2026-11-23 10:56:13 UTC));
            let path = object_path(&window, BatchName::Sequence(BatchId { incarnation, first, last }), "parquet");
            let parsed = object_store::path::Path::parse(&path);
            prop_assert!(parsed.is_ok(), "{} {:?}", path, parsed);
            let parsed = parsed.unwrap();
            prop_assert_eq!(parsed.as_ref(), path.as_str());
        }
    }
}
