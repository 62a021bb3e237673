//! `CsvEncoder`: flat records as CSV with a header row.
//!
//! The columns are traced from the record type when the encoder is built
//! ([`columns`]), and a cell is written the way arrow-csv wrote it when this
//! encoder went through arrow ([`cells`]): timestamps as RFC 3339 in UTC
//! (`2026-11-23T10:00:00.250Z`), enums as their variant name, `None` as an
//! empty cell, floats in their shortest round-trip form. A record type with
//! a nested field (struct, list, map, enum with data) is refused when the
//! encoder is built, naming the field.
//!
//! Quoting and line ends are the `csv` crate's writer with arrow-csv's
//! settings (quote only where needed, `""` inside quotes, `\n`). The header
//! is written when the session begins, so an empty file still has one. A
//! `write` turns all of its records into rows before any reaches the output,
//! so a record that cannot be written leaves the file as it was.

mod cells;
mod columns;

use std::io::Write;
use std::marker::PhantomData;
use std::sync::Arc;

use meathook_core::{EncodeSession, Encoder};
use serde::Serialize;
use serde::de::DeserializeOwned;

use self::cells::Row;
use self::columns::Column;
use crate::error::EncodeError;

/// Encodes flat records as CSV.
///
/// `E` is the error it reports: [`EncodeError`] unless a crate that has
/// encoders of its own names its error type, which must convert from
/// [`EncodeError`] (`meathook_parquet::CsvEncoder<R>` is this type with
/// `meathook_parquet::EncodeError`).
pub struct CsvEncoder<R, E = EncodeError> {
    columns: Arc<[Column]>,
    _records: PhantomData<fn(&R) -> E>,
}

impl<R, E> std::fmt::Debug for CsvEncoder<R, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvEncoder")
            .field("record_type", &std::any::type_name::<R>())
            .field("columns", &self.columns.len())
            .finish()
    }
}

impl<R, E> Clone for CsvEncoder<R, E> {
    fn clone(&self) -> Self {
        Self {
            columns: Arc::clone(&self.columns),
            _records: PhantomData,
        }
    }
}

impl<R: Serialize + DeserializeOwned, E: From<EncodeError>> CsvEncoder<R, E> {
    /// Traces the columns of `R`.
    ///
    /// # Errors
    ///
    /// [`EncodeError::Nested`] naming the first nested field;
    /// [`EncodeError::Schema`] when a field cannot be a column at all.
    pub fn new() -> Result<Self, E> {
        Ok(Self {
            columns: columns::trace::<R>()?.into(),
            _records: PhantomData,
        })
    }
}

impl<R, E> Encoder<R> for CsvEncoder<R, E>
where
    R: Serialize + Send + Sync,
    E: From<EncodeError> + std::error::Error + Send + Sync + 'static,
{
    type Error = E;
    type Session<W: Write + Send> = CsvSession<R, W, E>;

    fn extension(&self) -> &str {
        "csv"
    }

    fn content_type(&self) -> &str {
        "text/csv"
    }

    fn begin<W: Write + Send>(&self, mut out: W) -> Result<CsvSession<R, W, E>, E> {
        let mut header = writer(Vec::new());
        header
            .write_record(self.columns.iter().map(|c| c.name))
            .map_err(io_error)?;
        let mut buf = into_bytes(header)?;
        out.write_all(&buf).map_err(EncodeError::Io)?;
        buf.clear();
        Ok(CsvSession {
            out,
            buf,
            row: Row::default(),
            columns: Arc::clone(&self.columns),
            _records: PhantomData,
        })
    }
}

/// The writer arrow-csv built (its `WriterBuilder` defaults), over a buffer
/// that holds the rows of one `write` until all of them are made.
fn writer(buf: Vec<u8>) -> ::csv::Writer<Vec<u8>> {
    ::csv::WriterBuilder::new()
        .delimiter(b',')
        .quote(b'"')
        .quote_style(::csv::QuoteStyle::Necessary)
        .double_quote(true)
        .terminator(::csv::Terminator::Any(b'\n'))
        .from_writer(buf)
}

fn io_error(e: ::csv::Error) -> EncodeError {
    EncodeError::Io(e.into())
}

/// The buffer, with everything the writer holds flushed into it.
fn into_bytes(rows: ::csv::Writer<Vec<u8>>) -> Result<Vec<u8>, EncodeError> {
    rows.into_inner()
        .map_err(|e| EncodeError::Io(e.into_error()))
}

/// One CSV file being written.
pub struct CsvSession<R, W, E = EncodeError> {
    out: W,
    /// The rows of the `write` in progress.
    buf: Vec<u8>,
    row: Row,
    columns: Arc<[Column]>,
    _records: PhantomData<fn(&R) -> E>,
}

impl<R, W, E> std::fmt::Debug for CsvSession<R, W, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvSession").finish_non_exhaustive()
    }
}

impl<R: Serialize, W: Write + Send, E> CsvSession<R, W, E> {
    /// Makes the rows of `records` in `rows`.
    fn stage(
        &mut self,
        rows: &mut ::csv::Writer<Vec<u8>>,
        records: &[R],
    ) -> Result<(), EncodeError> {
        for record in records {
            self.row
                .fill(record, &self.columns)
                .map_err(|(field, reason)| EncodeError::Record { field, reason })?;
            rows.write_record(self.row.cells()).map_err(io_error)?;
        }
        Ok(())
    }
}

impl<R, W, E> EncodeSession<R, W> for CsvSession<R, W, E>
where
    R: Serialize,
    W: Write + Send,
    E: From<EncodeError> + std::error::Error + Send + Sync + 'static,
{
    type Error = E;

    fn write(&mut self, records: &[R]) -> Result<(), E> {
        let mut rows = writer(std::mem::take(&mut self.buf));
        let staged = self.stage(&mut rows, records);
        let mut buf = into_bytes(rows)?;
        // Only when every row was made does any reach the output: a failed
        // write leaves the file as it was.
        let written = staged.and_then(|()| self.out.write_all(&buf).map_err(EncodeError::Io));
        buf.clear();
        self.buf = buf;
        Ok(written?)
    }

    fn finish(mut self) -> Result<W, E> {
        self.out.flush().map_err(EncodeError::Io)?;
        Ok(self.out)
    }
}
