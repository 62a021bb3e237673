//! `JsonLinesEncoder`: one JSON object per line, in the record's own serde
//! form.
//!
//! Every line ends in `\n`, including the last; records are written as they
//! arrive, so memory is bounded by the writer's buffer. `serde_json` writes
//! NaN and ±Inf as `null`: use parquet when floats must round-trip
//! bit-exactly. Fields marked with [`timestamp`](crate::timestamp) are RFC
//! 3339 strings in UTC.

use std::io::Write;
use std::marker::PhantomData;

use meathook_core::{EncodeSession, Encoder};
use serde::Serialize;

use crate::error::EncodeError;

/// Encodes records as JSON lines. Any `Serialize` type works, including
/// `serde_json::Value` fields.
pub struct JsonLinesEncoder<R> {
    _records: PhantomData<fn(&R)>,
}

impl<R> std::fmt::Debug for JsonLinesEncoder<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesEncoder")
            .field("record_type", &std::any::type_name::<R>())
            .finish()
    }
}

impl<R> Default for JsonLinesEncoder<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R> Clone for JsonLinesEncoder<R> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<R> JsonLinesEncoder<R> {
    /// A JSON-lines encoder.
    pub fn new() -> Self {
        Self {
            _records: PhantomData,
        }
    }
}

impl<R: Serialize + Send + Sync> Encoder<R> for JsonLinesEncoder<R> {
    type Error = EncodeError;
    type Session<W: Write + Send> = JsonLinesSession<R, W>;

    fn extension(&self) -> &str {
        "jsonl"
    }

    fn content_type(&self) -> &str {
        "application/jsonl"
    }

    fn begin<W: Write + Send>(&self, out: W) -> Result<JsonLinesSession<R, W>, EncodeError> {
        Ok(JsonLinesSession {
            out,
            line: Vec::new(),
            _records: PhantomData,
        })
    }
}

/// One JSON-lines file being written.
pub struct JsonLinesSession<R, W> {
    out: W,
    line: Vec<u8>,
    _records: PhantomData<fn(&R)>,
}

impl<R, W> std::fmt::Debug for JsonLinesSession<R, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesSession").finish_non_exhaustive()
    }
}

impl<R: Serialize, W: Write + Send> EncodeSession<R, W> for JsonLinesSession<R, W> {
    type Error = EncodeError;

    /// Serialises all of `records` before writing any, so a record that
    /// cannot be serialised leaves the file as it was.
    fn write(&mut self, records: &[R]) -> Result<(), EncodeError> {
        self.line.clear();
        for record in records {
            serde_json::to_writer(&mut self.line, record).map_err(EncodeError::Json)?;
            self.line.push(b'\n');
        }
        self.out.write_all(&self.line)?;
        Ok(())
    }

    fn finish(mut self) -> Result<W, EncodeError> {
        self.out.flush()?;
        Ok(self.out)
    }
}
