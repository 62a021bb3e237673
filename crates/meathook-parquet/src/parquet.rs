//! `ParquetEncoder`: records to parquet, streamed one row group at a time.
//!
//! **Architecture invariant:** memory is bounded by a few row groups, not by
//! the file. A session converts each slice of records it is given to arrow
//! arrays, keeps them until a row group is full, then hands exactly one
//! row-group-sized batch to a background thread that encodes and compresses
//! it while the next records are converted; encoded row groups are written
//! out in order. Because row groups are cut by row count alone and each is
//! encoded on its own, the bytes depend only on the records and the settings
//! — not on how the records were sliced into `write` calls, nor on thread
//! timing — and nothing in the file depends on the clock: the same records
//! give the same bytes.
//!
//! A `write` that fails on a record leaves the session as it was: row groups
//! it handed to the background are dropped when they come back, and nothing
//! reaches the output until the whole slice has been converted.
//!
//! Floating-point columns let the writer choose per column chunk: they start
//! dictionary-encoded, which wins on what sensors and APIs report (readings
//! rounded to a decimal or two repeat across stations and hours), and fall
//! back to `BYTE_STREAM_SPLIT` once the chunk's dictionary passes
//! [`FLOAT_DICTIONARY_LIMIT`] (1,024 distinct doubles): for values that are
//! nearly all distinct, splitting the bytes of each value into streams lets
//! zstd find the shared sign, exponent and leading mantissa bytes. Values
//! stay bit-exact (NaN payloads, ±Inf) either way.

use std::collections::VecDeque;
use std::io::Write;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};

use arrow_array::RecordBatch;
use arrow_schema::{FieldRef, Schema, SchemaRef};
use meathook_core::{EncodeSession, Encoder};
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves,
};
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Encoding, Type as PhysicalType, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::EncodeError;
use crate::schema;

/// Rows per row group unless configured: small enough for the dataset
/// viewer to page through a file, large enough to compress well.
pub const DEFAULT_ROW_GROUP_SIZE: usize = 100_000;

/// The zstd level unless configured (parquet-rs's own default).
pub const DEFAULT_ZSTD_LEVEL: i32 = 1;

/// The dictionary a float column chunk may grow to before its values are
/// written `BYTE_STREAM_SPLIT` instead (bytes: 1,024 distinct doubles, more
/// than a day of one-decimal readings spans; all-distinct values pay about
/// 5 % for the dictionary page before the fallback).
pub const FLOAT_DICTIONARY_LIMIT: usize = 8 << 10;

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

    /// Rows per row group (zero is refused by `build`). Memory while encoding is about three
    /// row groups of arrow arrays (one being converted, one queued, one being
    /// encoded) and the encoded row groups of the slice being written.
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
        let schema = Arc::new(Schema::new(fields.clone()));
        let props = writer_properties(&schema, compression, self.row_group_size)?;
        Ok(ParquetEncoder {
            schema,
            fields: fields.into(),
            props,
            row_group_size: self.row_group_size,
            settings: self,
            _records: PhantomData,
        })
    }
}

/// How every parquet file meathook writes is laid out: `compression`, row
/// groups of `row_group_size` rows, page statistics, and float columns
/// dictionary-encoded up to [`FLOAT_DICTIONARY_LIMIT`], then split into
/// byte streams (see the module docs). Compaction writes with these too.
pub(crate) fn writer_properties(
    schema: &Schema,
    compression: parquet::basic::Compression,
    row_group_size: usize,
) -> Result<WriterProperties, ParquetError> {
    let mut props = WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_row_count(Some(row_group_size))
        // Page-level statistics write the column and offset indexes
        // (the page index) as well as chunk statistics.
        .set_statistics_enabled(EnabledStatistics::Page);
    // Floats, at any depth.
    for column in ArrowSchemaConverter::new().convert(schema)?.columns() {
        if matches!(
            column.physical_type(),
            PhysicalType::FLOAT | PhysicalType::DOUBLE
        ) {
            props = props
                .set_column_dictionary_page_size_limit(
                    column.path().clone(),
                    FLOAT_DICTIONARY_LIMIT,
                )
                .set_column_encoding(column.path().clone(), Encoding::BYTE_STREAM_SPLIT);
        }
    }
    Ok(props.build())
}

/// Encodes records of type `R` into parquet, one row group at a time, so
/// that memory is bounded by a few row groups rather than the file; the
/// same records and settings always give the same bytes.
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
        // The arrow writer stores the arrow schema in the file's metadata;
        // its lower half writes row groups encoded elsewhere.
        let (writer, factory) =
            ArrowWriter::try_new(out, Arc::clone(&self.schema), Some(self.props.clone()))?
                .into_serialized_writer()?;
        Ok(ParquetSession {
            writer,
            factory: Arc::new(factory),
            fields: Arc::clone(&self.fields),
            schema: Arc::clone(&self.schema),
            row_group_size: self.row_group_size,
            pending: Vec::new(),
            pending_rows: 0,
            background: None,
            outstanding: VecDeque::new(),
            held: Vec::new(),
            queued: 0,
            broken: false,
            _records: PhantomData,
        })
    }
}

/// One parquet file being written; see [`ParquetEncoder`].
pub struct ParquetSession<R, W: Write + Send> {
    writer: SerializedFileWriter<W>,
    factory: Arc<ArrowRowGroupWriterFactory>,
    fields: Arc<[FieldRef]>,
    schema: SchemaRef,
    row_group_size: usize,
    /// Converted records of the next row group: fewer than a row group.
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    /// Started when the first row group is full.
    background: Option<Background>,
    /// What to do with each row group the background has not returned yet,
    /// oldest first (it returns them in order).
    outstanding: VecDeque<Fate>,
    /// Encoded row groups of the `write` in progress, oldest first; they
    /// are written out when it succeeds.
    held: Vec<Vec<ArrowColumnChunk>>,
    /// Row groups written, held or outstanding to be kept: the index of the
    /// next one.
    queued: usize,
    /// A row group could not be encoded or written: the file is incomplete.
    broken: bool,
    _records: PhantomData<fn(&R)>,
}

/// The fate of a row group handed to the background encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Its `write` succeeded: write it out when it comes back.
    Keep,
    /// Its `write` is still converting records: hold it when it comes back.
    Hold,
    /// Its `write` failed: drop it when it comes back.
    Drop,
}

type Encoded = Result<Vec<ArrowColumnChunk>, ParquetError>;

/// A thread that encodes row groups, one at a time, in the order given.
struct Background {
    /// Holds one row group waiting while another is encoded; `None` once
    /// the session is finishing.
    jobs: Option<SyncSender<(usize, RecordBatch)>>,
    results: Receiver<Encoded>,
}

impl Background {
    fn spawn(factory: Arc<ArrowRowGroupWriterFactory>, schema: SchemaRef) -> Option<Self> {
        let (jobs, inbox) = mpsc::sync_channel::<(usize, RecordBatch)>(1);
        let (outbox, results) = mpsc::channel();
        std::thread::Builder::new()
            .name("meathook-parquet".into())
            .spawn(move || {
                // Ends when the session drops its sender, or itself.
                for (index, batch) in inbox {
                    if outbox
                        .send(encode_row_group(&factory, &schema, &batch, index))
                        .is_err()
                    {
                        break;
                    }
                }
            })
            .ok()?;
        Some(Self {
            jobs: Some(jobs),
            results,
        })
    }
}

/// Encodes one row group into column chunks held in memory, exactly as the
/// arrow writer would.
fn encode_row_group(
    factory: &ArrowRowGroupWriterFactory,
    schema: &Schema,
    batch: &RecordBatch,
    index: usize,
) -> Encoded {
    let mut writers = factory.create_column_writers(index)?;
    let mut next = writers.iter_mut();
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        for leaf in compute_leaves(field, column)? {
            next.next()
                .ok_or_else(|| ParquetError::General("more leaves than column writers".into()))?
                .write(&leaf)?;
        }
    }
    writers.into_iter().map(ArrowColumnWriter::close).collect()
}

fn stopped() -> EncodeError {
    EncodeError::Parquet(ParquetError::General(
        "the row-group encoding thread stopped".into(),
    ))
}

impl<R, W: Write + Send> std::fmt::Debug for ParquetSession<R, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetSession")
            .field("pending_rows", &self.pending_rows)
            .field("row_groups", &self.writer.flushed_row_groups().len())
            .field("encoding", &self.outstanding.len())
            .finish_non_exhaustive()
    }
}

impl<R: Serialize, W: Write + Send> ParquetSession<R, W> {
    /// Converts `records` and hands each full row group to the background;
    /// on a failure, the caller rolls back.
    fn convert(&mut self, records: &[R]) -> Result<(), EncodeError> {
        // Converted in this call and not yet in a full row group.
        let mut fresh = Vec::new();
        let mut fresh_rows = 0;
        // Whether a row group was cut in this call (it took `pending`).
        let mut cut = false;
        let mut room = self.row_group_size - self.pending_rows;
        let mut rest = records;
        while !rest.is_empty() {
            let (now, later) = rest.split_at(room.min(rest.len()));
            rest = later;
            let batch =
                serde_arrow::to_record_batch(&self.fields, &now).map_err(EncodeError::Record)?;
            fresh.push(batch);
            fresh_rows += now.len();
            if now.len() < room {
                room -= now.len();
                continue;
            }
            let parts: Vec<RecordBatch> = if cut {
                std::mem::take(&mut fresh)
            } else {
                self.pending
                    .iter()
                    .cloned()
                    .chain(fresh.drain(..))
                    .collect()
            };
            cut = true;
            fresh_rows = 0;
            room = self.row_group_size;
            let group = match parts.as_slice() {
                [one] => one.clone(),
                many => arrow_select::concat::concat_batches(&self.schema, many)?,
            };
            self.submit(group)?;
        }
        if cut {
            self.pending.clear();
            self.pending_rows = 0;
        }
        self.pending.extend(fresh);
        self.pending_rows += fresh_rows;
        Ok(())
    }
}

impl<R, W: Write + Send> ParquetSession<R, W> {
    /// Hands a full row group to the background (started on first use; if
    /// it cannot be started, the row group is encoded here).
    fn submit(&mut self, group: RecordBatch) -> Result<(), EncodeError> {
        let index = self.queued;
        self.queued += 1;
        if self.background.is_none() {
            self.background =
                Background::spawn(Arc::clone(&self.factory), Arc::clone(&self.schema));
        }
        match &self.background {
            Some(background) => {
                self.outstanding.push_back(Fate::Hold);
                let jobs = background.jobs.as_ref().ok_or_else(stopped)?;
                jobs.send((index, group)).map_err(|_| stopped())?;
            }
            None => {
                let encoded = encode_row_group(&self.factory, &self.schema, &group, index)?;
                self.held.push(encoded);
            }
        }
        self.collect(false)
    }

    /// Takes the row groups the background has returned; with `all`, waits
    /// for every outstanding one.
    fn collect(&mut self, all: bool) -> Result<(), EncodeError> {
        while let Some(&fate) = self.outstanding.front() {
            let Some(background) = &self.background else {
                return Err(stopped());
            };
            let encoded = if all {
                background.results.recv().map_err(|_| stopped())?
            } else {
                match background.results.try_recv() {
                    Ok(encoded) => encoded,
                    Err(TryRecvError::Empty) => return Ok(()),
                    Err(TryRecvError::Disconnected) => return Err(stopped()),
                }
            };
            self.outstanding.pop_front();
            match fate {
                Fate::Drop => {}
                Fate::Hold => self.held.push(encoded?),
                Fate::Keep => self.append(encoded?)?,
            }
        }
        Ok(())
    }

    /// The `write` in progress succeeded: its row groups are written out.
    fn commit(&mut self) -> Result<(), EncodeError> {
        for fate in &mut self.outstanding {
            if *fate == Fate::Hold {
                *fate = Fate::Keep;
            }
        }
        for encoded in std::mem::take(&mut self.held) {
            self.append(encoded)?;
        }
        self.collect(false)
    }

    /// The `write` in progress failed: its row groups are forgotten.
    fn roll_back(&mut self) {
        for fate in &mut self.outstanding {
            if *fate == Fate::Hold {
                *fate = Fate::Drop;
                self.queued -= 1;
            }
        }
        self.queued -= self.held.len();
        self.held.clear();
    }

    fn append(&mut self, encoded: Vec<ArrowColumnChunk>) -> Result<(), EncodeError> {
        let mut row_group = self.writer.next_row_group()?;
        for chunk in encoded {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        Ok(())
    }

    fn check(&self) -> Result<(), EncodeError> {
        if self.broken {
            return Err(EncodeError::Parquet(ParquetError::General(
                "an earlier row group of this file failed to encode or write".into(),
            )));
        }
        Ok(())
    }
}

impl<R: Serialize, W: Write + Send> EncodeSession<R, W> for ParquetSession<R, W> {
    type Error = EncodeError;

    /// Converts all of `records` before keeping any, so a record that cannot
    /// be converted leaves the session as it was.
    fn write(&mut self, records: &[R]) -> Result<(), EncodeError> {
        self.check()?;
        let converted = self.convert(records);
        let result = match converted {
            Ok(()) => self.commit(),
            Err(e) => {
                self.roll_back();
                Err(e)
            }
        };
        if let Err(e) = &result
            && !e.is_record()
        {
            self.broken = true;
        }
        result
    }

    fn finish(mut self) -> Result<W, EncodeError> {
        self.check()?;
        // Close the background's queue, then take every row group it has.
        if let Some(background) = &mut self.background {
            background.jobs = None;
        }
        self.collect(true)?;
        if self.pending_rows > 0 {
            let group = match self.pending.as_slice() {
                [one] => one.clone(),
                many => arrow_select::concat::concat_batches(&self.schema, many)?,
            };
            let encoded = encode_row_group(&self.factory, &self.schema, &group, self.queued)?;
            self.append(encoded)?;
        }
        Ok(self.writer.into_inner()?)
    }
}
