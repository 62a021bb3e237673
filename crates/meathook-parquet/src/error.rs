//! Why a file could not be encoded.
//!
//! One type for every encoder this crate offers, so [`FileSink`](crate::FileSink)
//! takes them all: the parquet encoder's own failures, and those of the
//! JSON-lines and CSV encoders of meathook-files, converted with `From`
//! (IO, JSON and nested-field errors into the variants of the same name,
//! the rest kept whole in [`Text`](EncodeError::Text)).

/// An encoder could not be built, or records could not be encoded.
///
/// Construction errors ([`Schema`](Self::Schema),
/// [`Nested`](Self::Nested), [`Setting`](Self::Setting)) happen once, when
/// the encoder is built; the others happen while a file is encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The record type has a field that cannot be traced into a column (a
    /// `serde_json::Value`, an untagged enum, a `()` field, …). The message
    /// names the field's path (`$.field`). What to do: give the field a
    /// concrete type, or serialise it as a string.
    #[error(
        "cannot derive a column schema for record type {record_type}: {source}; \
         give the named field a concrete type (or store it as a JSON string)"
    )]
    Schema {
        /// The record type.
        record_type: &'static str,
        /// What serde_arrow reported, with the field path.
        source: serde_arrow::Error,
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
        /// Its column type.
        data_type: String,
    },
    /// A builder parameter is out of range. What to do: fix the named
    /// parameter.
    #[error("invalid encoder setting `{parameter}`: {reason}")]
    Setting {
        /// The builder parameter.
        parameter: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A record could not be converted to columns (say a timestamp outside
    /// the nanosecond range). The file being written is incomplete; the
    /// session's earlier records are kept.
    #[error("cannot convert records to columns: {0}")]
    Record(#[source] serde_arrow::Error),
    /// A record could not be written as JSON.
    #[error("cannot write record as json: {0}")]
    Json(#[source] serde_json::Error),
    /// The parquet writer failed (including writes to the underlying file).
    #[error("parquet writer failed: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Arrow batch assembly failed.
    #[error("arrow writer failed: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// The CSV encoder could not make columns of the record type
    /// ([`meathook_files::EncodeError::Schema`], at construction) or could
    /// not write a record ([`meathook_files::EncodeError::Record`], that
    /// record alone). What to do: see the inner error.
    #[error(transparent)]
    Text(meathook_files::EncodeError),
    /// Writing the encoded bytes failed.
    #[error("writing encoded bytes failed: {0}")]
    Io(#[from] std::io::Error),
}

impl EncodeError {
    /// Whether this error comes from writing bytes out rather than from the
    /// records or the settings: an IO failure may be worth a retry, the
    /// others will fail the same way again.
    pub fn is_io(&self) -> bool {
        match self {
            Self::Io(_) => true,
            Self::Parquet(parquet::errors::ParquetError::External(_)) => true,
            Self::Json(e) => e.is_io(),
            Self::Text(e) => e.is_io(),
            _ => false,
        }
    }

    /// Whether this error is about one or more records (rather than the
    /// settings or the output): the records can be tried one by one.
    pub fn is_record(&self) -> bool {
        match self {
            Self::Record(_) => true,
            Self::Json(e) => !e.is_io(),
            Self::Text(e) => e.is_record(),
            _ => false,
        }
    }
}

/// The JSON-lines and CSV encoders' errors, in the variants callers of
/// this crate already match (`Io`, `Json`, `Nested`) where there is one.
impl From<meathook_files::EncodeError> for EncodeError {
    fn from(e: meathook_files::EncodeError) -> Self {
        use meathook_files::EncodeError as Files;
        match e {
            Files::Io(e) => Self::Io(e),
            Files::Json(e) => Self::Json(e),
            Files::Nested {
                record_type,
                field,
                data_type,
            } => Self::Nested {
                record_type,
                field,
                data_type,
            },
            other => Self::Text(other),
        }
    }
}
