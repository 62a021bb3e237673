//! `time::OffsetDateTime` fields as UTC timestamp columns in nanoseconds:
//! the opt-in sibling of [`timestamp`](crate::timestamp), for fields whose
//! sub-microsecond digits matter.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use time::OffsetDateTime;
//!
//! #[derive(Serialize, Deserialize)]
//! struct Tick {
//!     #[serde(with = "meathook_files::timestamp_ns")]
//!     at: OffsetDateTime,
//! }
//! ```
//!
//! In parquet the field becomes a `Timestamp(Nanosecond, "UTC")` column,
//! which not every engine reads as it is (Spark 3 refuses it by default,
//! DuckDB reads it as `TIMESTAMPTZ_NS`). CSV writes it with 0, 3, 6 or 9
//! fractional digits; JSON lines as RFC 3339 in UTC. The range is that of a
//! nanosecond timestamp, 1677-09-21 to 2262-04-11: a record outside it is
//! rejected on its own when encoded.

use serde::{Deserializer, Serializer};
use time::OffsetDateTime;

use crate::timestamp::Unit;

/// The field name that marks a traced struct as a nanosecond timestamp
/// column.
pub const MARKER: &str = crate::timestamp::NS_MARKER;

/// Serialises `at` as nanoseconds since the epoch (binary formats) or an
/// RFC 3339 string in UTC (human-readable formats).
///
/// # Errors
///
/// When `at` is outside the range of a nanosecond timestamp (binary formats)
/// or cannot be formatted.
pub fn serialize<S: Serializer>(at: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    crate::timestamp::serialize_as(Unit::Nanosecond, at, serializer)
}

/// Deserialises a timestamp column (nanoseconds since the epoch).
///
/// # Errors
///
/// When the value is not an integer in range.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<OffsetDateTime, D::Error> {
    crate::timestamp::deserialize_as(Unit::Nanosecond, deserializer)
}
