//! `ParquetEncoder`: records to parquet, streamed one row group at a time.
//!
//! **Architecture invariant:** memory is bounded by one row group, not by the
//! file. A session converts each slice of records it is given to arrow
//! arrays, keeps them until a row group is full, then hands exactly one
//! row-group-sized batch to the parquet writer, which encodes and writes it
//! out. Because row groups are cut by row count alone, the bytes depend only
//! on the records and the settings — not on how the records were sliced
//! into `write` calls — and nothing in the file depends on the clock: the
//! same records give the same bytes.

use std::io::Write;
use std::marker::PhantomData;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{FieldRef, Schema, SchemaRef};
use meathook_core::{EncodeSession, Encoder};
use parquet::arrow::ArrowWriter;
use parquet::basic::ZstdLevel;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::EncodeError;
use crate::schema;

/// Rows per row group unless configured: small enough for the dataset
/// viewer to page through a file, large enough to compress well.
pub const DEFAULT_ROW_GROUP_SIZE: usize = 100_000;

/// The zstd level unless configured (parquet-rs's own default).
pub const DEFAULT_ZSTD_LEVEL: i32 = 1;

/// How column pages are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// zstd at the given level (1–22; negative levels are faster still).
    Zstd(i32),
    /// Snappy: faster, larger files.
    Snappy,
    /// No compression.
    Uncompressed,
}

impl Default for Compression {
    fn default() -> Self {
        Self::Zstd(DEFAULT_ZSTD_LEVEL)
    }
}

/// Settings for a [`ParquetEncoder`]: `new`, `with_*`, then a fallible
/// [`build`](Self::build) that traces the record type.
pub struct ParquetEncoderBuilder<R> {
    compression: Compression,
    row_group_size: usize,
    _records: PhantomData<fn(&R)>,
}

impl<R> std::fmt::Debug for ParquetEncoderBuilder<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetEncoderBuilder")
            .field("compression", &self.compression)
            .field("row_group_size", &self.row_group_size)
            .finish()
    }
}

impl<R> Clone for ParquetEncoderBuilder<R> {
    fn clone(&self) -> Self {
        Self {
            compression: self.compression,
            row_group_size: self.row_group_size,
            _records: PhantomData,
        }
    }
}

impl<R> Default for ParquetEncoderBuilder<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R> ParquetEncoderBuilder<R> {
    /// zstd at level [`DEFAULT_ZSTD_LEVEL`], [`DEFAULT_ROW_GROUP_SIZE`] rows per
    /// row group.
    pub fn new() -> Self {
        Self {
            compression: Compression::default(),
            row_group_size: DEFAULT_ROW_GROUP_SIZE,
            _records: PhantomData,
        }
    }

    /// The page compression.
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Rows per row group (at least 1). Memory while encoding is about two
    /// row groups of arrow arrays.
    pub fn with_row_group_size(mut self, rows: usize) -> Self {
        self.row_group_size = rows;
        self
    }

    /// Traces the schema of `R` and checks the settings.
    ///
    /// # Errors
    ///
    /// [`EncodeError::Schema`] naming the field when `R` has a field that
    /// cannot be a column; [`EncodeError::Setting`] naming the parameter
    /// when a setting is out of range.
    pub fn build(self) -> Result<ParquetEncoder<R>, EncodeError>
    where
        R: Serialize + DeserializeOwned,
    {
        if self.row_group_size == 0 {
            return Err(EncodeError::Setting {
                parameter: "row_group_size",
                reason: "must be at least 1 row".into(),
            });
        }
        let compression = match self.compression {
            Compression::Zstd(level) => {
                parquet::basic::Compression::ZSTD(ZstdLevel::try_new(level).map_err(|e| {
                    EncodeError::Setting {
                        parameter: "compression",
                        reason: format!("zstd level {level}: {e}"),
                    }
                })?)
            }
            Compression::Snappy => parquet::basic::Compression::SNAPPY,
            Compression::Uncompressed => parquet::basic::Compression::UNCOMPRESSED,
        };
        let fields = schema::trace::<R>()?;
        let props = WriterProperties::builder()
            .set_compression(compression)
            .set_max_row_group_row_count(Some(self.row_group_size))
            // Page-level statistics write the column and offset indexes
            // (the page index) as well as chunk statistics.
            .set_statistics_enabled(EnabledStatistics::Page)
            .build();
        Ok(ParquetEncoder {
            schema: Arc::new(Schema::new(fields.clone())),
            fields: fields.into(),
            props,
            row_group_size: self.row_group_size,
            settings: self,
            _records: PhantomData,
        })
    }
}

/// Encodes records of type `R` into parquet; see the [module docs](self).
pub struct ParquetEncoder<R> {
    fields: Arc<[FieldRef]>,
    schema: SchemaRef,
    props: WriterProperties,
    row_group_size: usize,
    settings: ParquetEncoderBuilder<R>,
    _records: PhantomData<fn(&R)>,
}

impl<R> std::fmt::Debug for ParquetEncoder<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetEncoder")
            .field("record_type", &std::any::type_name::<R>())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<R: Serialize + DeserializeOwned> ParquetEncoder<R> {
    /// An encoder with the default settings.
    ///
    /// # Errors
    ///
    /// See [`ParquetEncoderBuilder::build`].
    pub fn new() -> Result<Self, EncodeError> {
        ParquetEncoderBuilder::new().build()
    }

    /// The builder, to change the defaults.
    pub fn builder() -> ParquetEncoderBuilder<R> {
        ParquetEncoderBuilder::new()
    }
}

impl<R> ParquetEncoder<R> {
    /// The arrow schema files are written with.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Rows per row group.
    pub fn row_group_size(&self) -> usize {
        self.row_group_size
    }
}

impl<R: Serialize + Send + Sync> Encoder<R> for ParquetEncoder<R> {
    type Error = EncodeError;
    type Session<W: Write + Send> = ParquetSession<R, W>;

    fn extension(&self) -> &str {
        "parquet"
    }

    fn content_type(&self) -> &str {
        "application/vnd.apache.parquet"
    }

    fn begin<W: Write + Send>(&self, out: W) -> Result<ParquetSession<R, W>, EncodeError> {
        let writer = ArrowWriter::try_new(out, Arc::clone(&self.schema), Some(self.props.clone()))?;
        Ok(ParquetSession {
            writer,
            fields: Arc::clone(&self.fields),
            schema: Arc::clone(&self.schema),
            row_group_size: self.row_group_size,
            pending: Vec::new(),
            pending_rows: 0,
            _records: PhantomData,
        })
    }
}

/// One parquet file being written; see [`ParquetEncoder`].
pub struct ParquetSession<R, W: Write + Send> {
    writer: ArrowWriter<W>,
    fields: Arc<[FieldRef]>,
    schema: SchemaRef,
    row_group_size: usize,
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    _records: PhantomData<fn(&R)>,
}

impl<R, W: Write + Send> std::fmt::Debug for ParquetSession<R, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetSession")
            .field("pending_rows", &self.pending_rows)
            .field("row_groups", &self.writer.flushed_row_groups().len())
            .finish_non_exhaustive()
    }
}

impl<R, W: Write + Send> ParquetSession<R, W> {
    fn write_row_group(&mut self) -> Result<(), EncodeError> {
        if self.pending_rows == 0 {
            return Ok(());
        }
        let batch = match self.pending.as_slice() {
            [one] => one.clone(),
            many => arrow_select::concat::concat_batches(&self.schema, many)?,
        };
        self.pending.clear();
        self.pending_rows = 0;
        self.writer.write(&batch)?;
        self.writer.flush()?;
        Ok(())
    }
}

impl<R: Serialize, W: Write + Send> EncodeSession<R, W> for ParquetSession<R, W> {
    type Error = EncodeError;

    /// Converts all of `records` before keeping any, so a record that cannot
    /// be converted leaves the session as it was.
    fn write(&mut self, records: &[R]) -> Result<(), EncodeError> {
        let mut batches = Vec::new();
        let mut room = self.row_group_size - self.pending_rows;
        let mut rest = records;
        while !rest.is_empty() {
            let (now, later) = rest.split_at(room.min(rest.len()));
            let batch =
                serde_arrow::to_record_batch(&self.fields, &now).map_err(EncodeError::Record)?;
            batches.push(batch);
            room = if now.len() == room {
                self.row_group_size
            } else {
                room - now.len()
            };
            rest = later;
        }
        for batch in batches {
            self.pending_rows += batch.num_rows();
            self.pending.push(batch);
            if self.pending_rows == self.row_group_size {
                self.write_row_group()?;
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<W, EncodeError> {
        self.write_row_group()?;
        Ok(self.writer.into_inner()?)
    }
}
