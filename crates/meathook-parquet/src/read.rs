//! Reading a parquet file back into records: for checks, small tools and
//! tests. Not a query engine: the whole file is decoded into memory.

use std::path::{Path, PathBuf};

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

/// Reads every row of the parquet file at `path` as an `R`.
///
/// # Errors
///
/// [`ReadBackError`] naming the file.
pub fn read_parquet<R: DeserializeOwned>(path: &Path) -> Result<Vec<R>, ReadBackError> {
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
    let mut records = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| parquet(&e))?;
        let mut rows: Vec<R> =
            serde_arrow::from_record_batch(&batch).map_err(|e| ReadBackError::Decode {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        records.append(&mut rows);
    }
    Ok(records)
}
