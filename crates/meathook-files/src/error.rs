//! Why a JSON-lines or CSV file could not be encoded.
//!
//! The text encoders report this type by default. A crate that puts them
//! beside encoders of its own (meathook-parquet) names its own error type
//! as their `E` parameter instead; that type only has to convert from this
//! one, so one sink can take every encoder.

use crate::window_file::EncodeFailure;

/// A text encoder could not be built, or records could not be encoded.
///
/// Construction errors ([`Schema`](Self::Schema), [`Nested`](Self::Nested))
/// happen once, when a [`CsvEncoder`](crate::CsvEncoder) is built; the
/// others happen while a file is encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The record type has a field CSV cannot make a column of: one that
    /// takes any value (a `serde_json::Value`, an untagged or internally
    /// tagged enum), a 128-bit integer, or a record that is not a struct.
    /// What to do: give the field a concrete type, or serialise it as a
    /// string.
    #[error(
        "cannot derive csv columns for record type {record_type}: field `{field}` {reason}; \
         give the named field a concrete type (or store it as a JSON string)"
    )]
    Schema {
        /// The record type.
        record_type: &'static str,
        /// The field, or `$` for the record itself.
        field: String,
        /// What the field is.
        reason: String,
    },
    /// CSV was asked to hold a nested field (struct, list, map, tuple, enum
    /// with data). What to do: flatten the record type, or use parquet or
    /// JSON lines.
    #[error(
        "csv cannot hold nested field `{field}` ({data_type}) of record type {record_type}; \
         flatten the record or use the parquet or json-lines encoder"
    )]
    Nested {
        /// The record type.
        record_type: &'static str,
        /// The nested field.
        field: String,
        /// What it is (`struct Location`, `sequence`, …).
        data_type: String,
    },
    /// A record could not be written as a CSV row: its `Serialize` impl
    /// failed (a timestamp outside the nanosecond range) or gave a value
    /// its column cannot hold. The session is as it was before the `write`
    /// that failed; the record can be left out on its own.
    #[error("cannot write record as csv: field `{field}` {reason}")]
    Record {
        /// The field, or `$` for the record itself.
        field: String,
        /// What went wrong.
        reason: String,
    },
    /// A record could not be written as JSON.
    #[error("cannot write record as json: {0}")]
    Json(#[source] serde_json::Error),
    /// Writing the encoded bytes failed.
    #[error("writing encoded bytes failed: {0}")]
    Io(#[from] std::io::Error),
}

impl EncodeError {
    /// Whether this error comes from writing bytes out rather than from the
    /// records or the record type: an IO failure may be worth a retry, the
    /// others will fail the same way again.
    pub fn is_io(&self) -> bool {
        match self {
            Self::Io(_) => true,
            Self::Json(e) => e.is_io(),
            _ => false,
        }
    }

    /// Whether this error is about one or more records (rather than the
    /// record type or the output): the records can be tried one by one.
    pub fn is_record(&self) -> bool {
        matches!(self, Self::Record { .. }) || matches!(self, Self::Json(e) if !e.is_io())
    }
}

/// The window-file pipeline retries a failed `write` record by record when
/// the error is about records.
impl EncodeFailure for EncodeError {
    fn is_record(&self) -> bool {
        EncodeError::is_record(self)
    }

    fn is_io(&self) -> bool {
        EncodeError::is_io(self)
    }
}
