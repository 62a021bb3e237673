//! `CsvEncoder`: flat records as CSV with a header row.
//!
//! Columns follow the same traced schema as parquet, so a field is written
//! the way arrow formats its column: timestamps as RFC 3339 in UTC
//! (`2026-11-23T10:00:00.250Z`), enums as their
//! variant name, `None` as an empty cell. A record type with a nested field
//! (struct, list, map) is refused when the encoder is built, naming the
//! field.

use std::io::Write;
use std::marker::PhantomData;
use std::sync::Arc;

use arrow_schema::{DataType, FieldRef};
use meathook_core::{EncodeSession, Encoder};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::EncodeError;
use crate::schema;

/// Encodes flat records as CSV.
pub struct CsvEncoder<R> {
    fields: Arc<[FieldRef]>,
    _records: PhantomData<fn(&R)>,
}

impl<R> std::fmt::Debug for CsvEncoder<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvEncoder")
            .field("record_type", &std::any::type_name::<R>())
            .finish_non_exhaustive()
    }
}

impl<R: Serialize + DeserializeOwned> CsvEncoder<R> {
    /// Traces the columns of `R`.
    ///
    /// # Errors
    ///
    /// [`EncodeError::Nested`] naming the first nested field;
    /// [`EncodeError::Schema`] when a field cannot be a column at all.
    pub fn new() -> Result<Self, EncodeError> {
        let fields = schema::trace::<R>()?;
        if let Some((field, data_type)) = schema::first_nested(&fields) {
            return Err(EncodeError::Nested {
                record_type: std::any::type_name::<R>(),
                field,
                data_type: data_type.to_string(),
            });
        }
        // arrow-csv formats offsets, not zone names (it is built without a
        // time zone database): the same instant, spelled `+00:00`.
        let fields: Vec<FieldRef> = fields
            .iter()
            .map(|f| match f.data_type() {
                DataType::Timestamp(unit, Some(_)) => Arc::new(
                    f.as_ref()
                        .clone()
                        .with_data_type(DataType::Timestamp(*unit, Some("+00:00".into()))),
                ),
                _ => Arc::clone(f),
            })
            .collect();
        Ok(Self {
            fields: fields.into(),
            _records: PhantomData,
        })
    }
}

impl<R: Serialize + Send + Sync> Encoder<R> for CsvEncoder<R> {
    type Error = EncodeError;
    type Session<W: Write + Send> = CsvSession<R, W>;

    fn extension(&self) -> &str {
        "csv"
    }

    fn content_type(&self) -> &str {
        "text/csv"
    }

    fn begin<W: Write + Send>(&self, out: W) -> Result<CsvSession<R, W>, EncodeError> {
        Ok(CsvSession {
            writer: arrow_csv::Writer::new(out),
            fields: Arc::clone(&self.fields),
            wrote_any: false,
            _records: PhantomData,
        })
    }
}

/// One CSV file being written.
pub struct CsvSession<R, W: Write> {
    writer: arrow_csv::Writer<W>,
    fields: Arc<[FieldRef]>,
    wrote_any: bool,
    _records: PhantomData<fn(&R)>,
}

impl<R, W: Write> std::fmt::Debug for CsvSession<R, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvSession").finish_non_exhaustive()
    }
}

impl<R: Serialize, W: Write + Send> EncodeSession<R, W> for CsvSession<R, W> {
    type Error = EncodeError;

    fn write(&mut self, records: &[R]) -> Result<(), EncodeError> {
        let batch =
            serde_arrow::to_record_batch(&self.fields, &records).map_err(EncodeError::Record)?;
        self.writer.write(&batch)?;
        self.wrote_any = true;
        Ok(())
    }

    fn finish(mut self) -> Result<W, EncodeError> {
        if !self.wrote_any {
            // The header is written with the first batch: an empty file
            // still gets one.
            let schema = arrow_schema::Schema::new(self.fields.to_vec());
            let batch = arrow_array::RecordBatch::new_empty(Arc::new(schema));
            self.writer.write(&batch)?;
        }
        let mut out = self.writer.into_inner();
        out.flush()?;
        Ok(out)
    }
}
