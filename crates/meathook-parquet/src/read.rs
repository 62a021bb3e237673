//! Reading a parquet file back into records: for checks, small tools and
//! tests. Not a query engine: the whole file is decoded into memory.

use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::{DataType, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::de::DeserializeOwned;

/// Why a parquet file could not be read back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadBackError {
    /// The file could not be opened.
    #[error("cannot open {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid parquet.
    #[error("{path} is not a readable parquet file: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The reader's message.
        message: String,
    },
    /// The rows do not match the record type.
    #[error("rows of {path} do not decode as the record type: {message}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },
}

/// Reads every row of the parquet file at `path` as a JSON object, whatever
/// record type wrote it: the columns decide the fields. Top-level timestamp
/// columns become RFC 3339 strings in UTC (with the column's precision);
/// other columns read as their serde form. For tools that show a dataset
/// without knowing its record type.
///
/// # Errors
///
/// [`ReadBackError`] naming the file.
pub fn read_parquet_json(
    path: &Path,
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, ReadBackError> {
    let mut rows = Vec::new();
    read_batches(path, |batch| {
        let mut decoded: Vec<serde_json::Map<String, serde_json::Value>> =
            serde_arrow::from_record_batch(batch).map_err(|e| e.to_string())?;
        for field in batch.schema().fields() {
            let DataType::Timestamp(unit, _) = field.data_type() else {
                continue;
            };
            let per_unit: i128 = match unit {
                TimeUnit::Second => 1_000_000_000,
                TimeUnit::Millisecond => 1_000_000,
                TimeUnit::Microsecond => 1_000,
                TimeUnit::Nanosecond => 1,
            };
            for row in &mut decoded {
                if let Some(value) = row.get_mut(field.name())
                    && let Some(count) = value.as_i64()
                    && let Ok(at) = time::OffsetDateTime::from_unix_timestamp_nanos(
                        i128::from(count) * per_unit,
                    )
                    && let Ok(text) = at.format(&time::format_description::well_known::Rfc3339)
                {
                    *value = serde_json::Value::String(text);
                }
            }
        }
        rows.append(&mut decoded);
        Ok(())
    })?;
    Ok(rows)
}

/// Reads every row of the parquet file at `path` as an `R`.
///
/// # Errors
///
/// [`ReadBackError`] naming the file.
pub fn read_parquet<R: DeserializeOwned>(path: &Path) -> Result<Vec<R>, ReadBackError> {
    let mut records = Vec::new();
    read_batches(path, |batch| {
        let mut rows: Vec<R> = serde_arrow::from_record_batch(batch).map_err(|e| e.to_string())?;
        records.append(&mut rows);
        Ok(())
    })?;
    Ok(records)
}

/// Hands each record batch of the file at `path` to `each`, whose error is
/// a decoding message.
fn read_batches(
    path: &Path,
    mut each: impl FnMut(&RecordBatch) -> Result<(), String>,
) -> Result<(), ReadBackError> {
    let file = std::fs::File::open(path).map_err(|source| ReadBackError::Io {
        path: path.to_owned(),
        source,
    })?;
    let parquet = |e: &dyn std::fmt::Display| ReadBackError::Parquet {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| parquet(&e))?;
    for batch in reader {
        let batch = batch.map_err(|e| parquet(&e))?;
        each(&batch).map_err(|message| ReadBackError::Decode {
            path: path.to_owned(),
            message,
        })?;
    }
    Ok(())
}
