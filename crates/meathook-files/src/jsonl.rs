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
///
/// `E` is the error it reports: [`EncodeError`] unless a crate that has
/// encoders of its own names its error type, which must convert from
/// [`EncodeError`] (`meathook_parquet::JsonLinesEncoder<R>` is this type
/// with `meathook_parquet::EncodeError`).
pub struct JsonLinesEncoder<R, E = EncodeError> {
    _records: PhantomData<fn(&R) -> E>,
}

impl<R, E> std::fmt::Debug for JsonLinesEncoder<R, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesEncoder")
            .field("record_type", &std::any::type_name::<R>())
            .finish()
    }
}

impl<R, E> Default for JsonLinesEncoder<R, E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R, E> Clone for JsonLinesEncoder<R, E> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<R, E> JsonLinesEncoder<R, E> {
    /// A JSON-lines encoder.
    pub fn new() -> Self {
        Self {
            _records: PhantomData,
        }
    }
}

impl<R, E> Encoder<R> for JsonLinesEncoder<R, E>
where
    R: Serialize + Send + Sync,
    E: From<EncodeError> + std::error::Error + Send + Sync + 'static,
{
    type Error = E;
    type Session<W: Write + Send> = JsonLinesSession<R, W, E>;

    fn extension(&self) -> &str {
        "jsonl"
    }

    fn content_type(&self) -> &str {
        "application/jsonl"
    }

    fn begin<W: Write + Send>(&self, out: W) -> Result<JsonLinesSession<R, W, E>, E> {
        Ok(JsonLinesSession {
            out,
            line: Vec::new(),
            _records: PhantomData,
        })
    }
}

/// One JSON-lines file being written.
pub struct JsonLinesSession<R, W, E = EncodeError> {
    out: W,
    line: Vec<u8>,
    _records: PhantomData<fn(&R) -> E>,
}

impl<R, W, E> std::fmt::Debug for JsonLinesSession<R, W, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesSession").finish_non_exhaustive()
    }
}

impl<R, W, E> EncodeSession<R, W> for JsonLinesSession<R, W, E>
where
    R: Serialize,
    W: Write + Send,
    E: From<EncodeError> + std::error::Error + Send + Sync + 'static,
{
    type Error = E;

    /// Serialises all of `records` before writing any, so a record that
    /// cannot be serialised leaves the file as it was.
    fn write(&mut self, records: &[R]) -> Result<(), E> {
        self.line.clear();
        for record in records {
            serde_json::to_writer(&mut self.line, record).map_err(EncodeError::Json)?;
            self.line.push(b'\n');
        }
        self.out.write_all(&self.line).map_err(EncodeError::Io)?;
        Ok(())
    }

    fn finish(mut self) -> Result<W, E> {
        self.out.flush().map_err(EncodeError::Io)?;
        Ok(self.out)
    }
}
