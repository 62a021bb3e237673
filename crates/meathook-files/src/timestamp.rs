//! `time::OffsetDateTime` fields as UTC timestamp columns.
//!
//! Use it with `#[serde(with = "meathook_files::timestamp")]` (or
//! `meathook_parquet::timestamp`, the same module):
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use time::OffsetDateTime;
//!
//! #[derive(Serialize, Deserialize)]
//! struct Reading {
//!     station_id: String,
//!     #[serde(with = "meathook_files::timestamp")]
//!     observed_at: OffsetDateTime,
//!     value: f64,
//! }
//! ```
//!
//! In parquet the field becomes a `Timestamp(Nanosecond, "UTC")` column:
//! readers see an instant, not a string. CSV writes that column as arrow
//! does, RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits
//! (`2026-11-23T10:00:00.500Z`). JSON lines (and every other human-readable
//! format) get an RFC 3339 string in UTC, such as `2026-11-23T10:00:00.5Z`.
//!
//! How: schema tracing (meathook-parquet's arrow schema, the CSV encoder's
//! columns) reads the type's `Deserialize` impl, which, while the encoder
//! traces (inside [`tracing()`]), asks for a one-field struct whose field is
//! named [`MARKER`]; the encoder replaces every such struct with a
//! timestamp column. Binary formats serialise the instant as
//! nanoseconds since the Unix epoch, so the supported range is that of a
//! nanosecond timestamp: 1677-09-21 to 2262-04-11. A record outside it is
//! rejected on its own when encoded.
//!
//! Reading such a field back from JSON with `serde_json` needs
//! `time::serde::rfc3339` on a mirror type: this module reads the binary form
//! only.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{Error as _, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The field name that marks a traced struct as a timestamp column.
pub const MARKER: &str = "__meathook_utc_timestamp_ns";
const FIELDS: &[&str] = &[MARKER];

/// Serialises `at` as nanoseconds since the epoch (binary formats) or an RFC
/// 3339 string in UTC (human-readable formats).
///
/// # Errors
///
/// When `at` is outside the range of a nanosecond timestamp (binary formats)
/// or cannot be formatted.
pub fn serialize<S: Serializer>(at: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    let utc = at.to_offset(time::UtcOffset::UTC);
    if serializer.is_human_readable() {
        let text = utc.format(&Rfc3339).map_err(S::Error::custom)?;
        serializer.serialize_str(&text)
    } else {
        let nanos = i64::try_from(utc.unix_timestamp_nanos()).map_err(|_| {
            S::Error::custom(format!(
                "timestamp {utc} is outside the range of a nanosecond timestamp (1677-09-21 to 2262-04-11)"
            ))
        })?;
        serializer.serialize_i64(nanos)
    }
}

/// Deserialises a timestamp column (nanoseconds since the epoch).
///
/// # Errors
///
/// When the value is not an integer in range.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<OffsetDateTime, D::Error> {
    if TRACING.with(Cell::get) {
        // What schema tracing sees: a marker struct, turned into a timestamp
        // column by the encoder.
        deserializer.deserialize_struct("UtcTimestamp", FIELDS, NanosVisitor)
    } else {
        deserializer.deserialize_i64(NanosVisitor)
    }
}

thread_local! {
    /// Set while this thread traces a schema; see [`tracing`].
    static TRACING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (a schema trace) with timestamp fields showing as marker
/// structs: one-field structs named `UtcTimestamp` whose field is
/// [`MARKER`]. For schema tracers (meathook-parquet's arrow schema, the CSV
/// encoder's columns); reading data needs nothing of it.
///
/// Tracing calls `Deserialize` impls synchronously on this thread, so a
/// thread-local flag tells the trace apart from reading data — which
/// `is_human_readable` cannot: serde_arrow answers it differently at
/// different depths.
pub fn tracing<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            TRACING.with(|t| t.set(self.0));
        }
    }
    let _reset = Reset(TRACING.with(|t| t.replace(true)));
    f()
}

struct NanosVisitor;

impl NanosVisitor {
    fn from_nanos<E: de::Error>(nanos: i128) -> Result<OffsetDateTime, E> {
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .map_err(|e| E::custom(format!("timestamp {nanos} ns is out of range: {e}")))
    }
}

impl<'de> Visitor<'de> for NanosVisitor {
    type Value = OffsetDateTime;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("nanoseconds since the Unix epoch")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<OffsetDateTime, E> {
        Self::from_nanos(i128::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<OffsetDateTime, E> {
        Self::from_nanos(i128::from(v))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OffsetDateTime, A::Error> {
        let mut nanos = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == MARKER {
                nanos = Some(map.next_value::<i64>()?);
            } else {
                map.next_value::<de::IgnoredAny>()?;
            }
        }
        let nanos = nanos.ok_or_else(|| de::Error::missing_field(MARKER))?;
        Self::from_nanos(i128::from(nanos))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<OffsetDateTime, A::Error> {
        let nanos: i64 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        Self::from_nanos(i128::from(nanos))
    }
}
