//! `time::OffsetDateTime` fields as UTC timestamp columns in microseconds,
//! the unit Spark, BigQuery, DuckDB and most engines read natively.
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
//! In parquet the field becomes a `Timestamp(Microsecond, "UTC")` column:
//! readers see an instant, not a string. CSV writes that column as arrow
//! does, RFC 3339 in UTC with 0, 3 or 6 fractional digits
//! (`2026-11-23T10:00:00.500Z`). JSON lines (and every other human-readable
//! format) get an RFC 3339 string in UTC, such as `2026-11-23T10:00:00.5Z`.
//!
//! **Sub-microsecond digits are dropped** in every format: an instant is
//! truncated towards the past to its microsecond (`10:00:00.000_000_999`
//! is written as `10:00:00`, and `1969-12-31T23:59:59.999_999_5` as
//! `…59.999_999`). Fields that need nanoseconds use
//! [`timestamp_ns`](crate::timestamp_ns), a `Timestamp(Nanosecond, "UTC")`
//! column whose range is 1677-09-21 to 2262-04-11 (some engines refuse or
//! cast it: Spark 3 by default, DuckDB reads it as `TIMESTAMPTZ_NS`).
//!
//! How: schema tracing (meathook-parquet's arrow schema, the CSV encoder's
//! columns) reads the type's `Deserialize` impl, which, while the encoder
//! traces (inside [`tracing()`]), asks for a one-field struct whose field is
//! named [`MARKER`] (or [`timestamp_ns::MARKER`](crate::timestamp_ns::MARKER));
//! the encoder replaces every such struct with a timestamp column of the
//! marker's [`Unit`]. Binary formats serialise the instant as an integer
//! count of the unit since the Unix epoch.
//!
//! Reading back: the binary form of this module is microseconds. A value
//! that is no instant as microseconds (it would lie after the year 9999)
//! is read as nanoseconds, the unit this module wrote before microseconds
//! were the default, so records spooled or written by that version read
//! back as the same instant (any instant after 1978; earlier ones are
//! indistinguishable and read as microseconds). Reading such a field back
//! from JSON with `serde_json` needs `time::serde::rfc3339` on a mirror
//! type: this module reads the binary form only.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{Error as _, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The field name that marks a traced struct as a microsecond timestamp
/// column.
pub const MARKER: &str = "__meathook_utc_timestamp_us";

/// The marker of [`timestamp_ns`](crate::timestamp_ns) fields, published
/// there as [`timestamp_ns::MARKER`](crate::timestamp_ns::MARKER).
pub(crate) const NS_MARKER: &str = "__meathook_utc_timestamp_ns";

/// The unit of a timestamp column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unit {
    /// Microseconds since the epoch: this module, the default.
    Microsecond,
    /// Nanoseconds since the epoch: [`timestamp_ns`](crate::timestamp_ns).
    Nanosecond,
}

impl Unit {
    /// The unit a traced marker struct stands for, from its one field name
    /// ([`MARKER`] or [`timestamp_ns::MARKER`](crate::timestamp_ns::MARKER)).
    pub fn of_marker(field: &str) -> Option<Self> {
        match field {
            MARKER => Some(Self::Microsecond),
            NS_MARKER => Some(Self::Nanosecond),
            _ => None,
        }
    }

    fn marker(self) -> &'static str {
        match self {
            Self::Microsecond => MARKER,
            Self::Nanosecond => NS_MARKER,
        }
    }

    fn nanos_per_unit(self) -> u32 {
        match self {
            Self::Microsecond => 1_000,
            Self::Nanosecond => 1,
        }
    }

    /// `at` in UTC, truncated towards the past to a whole unit.
    pub fn truncate(self, at: OffsetDateTime) -> OffsetDateTime {
        let utc = at.to_offset(time::UtcOffset::UTC);
        let nanos = utc.nanosecond();
        // Below a second, so always a valid nanosecond.
        utc.replace_nanosecond(nanos - nanos % self.nanos_per_unit())
            .unwrap_or(utc)
    }

    /// The instant `count` units after the epoch.
    ///
    /// # Errors
    ///
    /// When it is outside the range of `OffsetDateTime`.
    pub fn instant(self, count: i64) -> Result<OffsetDateTime, time::error::ComponentRange> {
        OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(count) * i128::from(self.nanos_per_unit()),
        )
    }
}

/// Serialises `at`, truncated to its microsecond, as microseconds since
/// the epoch (binary formats) or an RFC 3339 string in UTC (human-readable
/// formats).
///
/// # Errors
///
/// When `at` cannot be formatted.
pub fn serialize<S: Serializer>(at: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    serialize_as(Unit::Microsecond, at, serializer)
}

/// Deserialises a timestamp column (microseconds since the epoch; see the
/// module docs for values written in nanoseconds).
///
/// # Errors
///
/// When the value is not an integer in range.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<OffsetDateTime, D::Error> {
    deserialize_as(Unit::Microsecond, deserializer)
}

pub(crate) fn serialize_as<S: Serializer>(
    unit: Unit,
    at: &OffsetDateTime,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let at = unit.truncate(*at);
    if serializer.is_human_readable() {
        let text = at.format(&Rfc3339).map_err(S::Error::custom)?;
        return serializer.serialize_str(&text);
    }
    let count = i64::try_from(at.unix_timestamp_nanos() / i128::from(unit.nanos_per_unit())).map_err(|_| {
        S::Error::custom(format!(
            "timestamp {at} is outside the range of a nanosecond timestamp (1677-09-21 to 2262-04-11)"
        ))
    })?;
    serializer.serialize_i64(count)
}

pub(crate) fn deserialize_as<'de, D: Deserializer<'de>>(
    unit: Unit,
    deserializer: D,
) -> Result<OffsetDateTime, D::Error> {
    let visitor = CountVisitor(unit);
    if TRACING.with(Cell::get) {
        // What schema tracing sees: a marker struct, turned into a timestamp
        // column by the encoder.
        let fields: &'static [&'static str] = match unit {
            Unit::Microsecond => &[MARKER],
            Unit::Nanosecond => &[NS_MARKER],
        };
        deserializer.deserialize_struct("UtcTimestamp", fields, visitor)
    } else {
        deserializer.deserialize_i64(visitor)
    }
}

thread_local! {
    /// Set while this thread traces a schema; see [`tracing`].
    static TRACING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (a schema trace) with timestamp fields showing as marker
/// structs: one-field structs named `UtcTimestamp` whose field is a marker
/// ([`Unit::of_marker`]). For schema tracers (meathook-parquet's arrow
/// schema, the CSV encoder's columns); reading data needs nothing of it.
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

struct CountVisitor(Unit);

impl CountVisitor {
    fn instant_of<E: de::Error>(&self, count: i64) -> Result<OffsetDateTime, E> {
        let read = self.0.instant(count).or_else(|e| match self.0 {
            // Written in nanoseconds, before microseconds were the default.
            Unit::Microsecond => Unit::Nanosecond.instant(count).map_err(|_| e),
            Unit::Nanosecond => Err(e),
        });
        read.map_err(|e| {
            E::custom(format!(
                "timestamp {count} ({:?}s) is out of range: {e}",
                self.0
            ))
        })
    }
}

impl<'de> Visitor<'de> for CountVisitor {
    type Value = OffsetDateTime;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Unit::Microsecond => f.write_str("microseconds since the Unix epoch"),
            Unit::Nanosecond => f.write_str("nanoseconds since the Unix epoch"),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<OffsetDateTime, E> {
        self.instant_of(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<OffsetDateTime, E> {
        let v =
            i64::try_from(v).map_err(|_| E::custom(format!("timestamp {v} is out of range")))?;
        self.instant_of(v)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OffsetDateTime, A::Error> {
        let mut count = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == self.0.marker() {
                count = Some(map.next_value::<i64>()?);
            } else {
                map.next_value::<de::IgnoredAny>()?;
            }
        }
        let count = count.ok_or_else(|| de::Error::missing_field(self.0.marker()))?;
        self.instant_of(count)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<OffsetDateTime, A::Error> {
        let count: i64 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        self.instant_of(count)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::macros::datetime;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Micros(#[serde(with = "crate::timestamp")] OffsetDateTime);

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Nanos(#[serde(with = "crate::timestamp_ns")] OffsetDateTime);

    fn binary<T: serde::Serialize>(v: &T) -> Vec<u8> {
        rmp_serde::to_vec(v).unwrap()
    }

    #[test]
    fn sub_microsecond_digits_are_truncated_towards_the_past() {
        let at = datetime!(2026-11-23 10:00:00.123_456_999 UTC);
        let back: Micros = rmp_serde::from_slice(&binary(&Micros(at))).unwrap();
        assert_eq!(back.0, datetime!(2026-11-23 10:00:00.123_456 UTC));
        let before_epoch = datetime!(1969-12-31 23:59:59.999_999_500 UTC);
        let back: Micros = rmp_serde::from_slice(&binary(&Micros(before_epoch))).unwrap();
        assert_eq!(back.0, datetime!(1969-12-31 23:59:59.999_999 UTC));
        // Human-readable formats carry the same truncated instant.
        assert_eq!(
            serde_json::to_string(&Micros(at)).unwrap(),
            "\"2026-11-23T10:00:00.123456Z\""
        );
        // An offset is normalised to UTC.
        let local = datetime!(2026-11-23 18:00:00.5 +08:00);
        assert_eq!(
            serde_json::to_string(&Micros(local)).unwrap(),
            "\"2026-11-23T10:00:00.5Z\""
        );
    }

    #[test]
    fn the_binary_form_counts_microseconds_or_nanoseconds() {
        let at = datetime!(2026-11-23 10:00:00.123_456_789 UTC);
        let micros = at.unix_timestamp_nanos() / 1_000;
        assert_eq!(binary(&Micros(at)), binary(&i64::try_from(micros).unwrap()));
        let nanos = at.unix_timestamp_nanos();
        assert_eq!(binary(&Nanos(at)), binary(&i64::try_from(nanos).unwrap()));
        let back: Nanos = rmp_serde::from_slice(&binary(&Nanos(at))).unwrap();
        assert_eq!(back.0, at);
        assert_eq!(
            serde_json::to_string(&Nanos(at)).unwrap(),
            "\"2026-11-23T10:00:00.123456789Z\""
        );
    }

    #[test]
    fn nanoseconds_written_before_the_default_changed_read_back_as_the_same_instant() {
        let at = datetime!(2026-11-23 10:00:00.123_456_789 UTC);
        let old = binary(&Nanos(at));
        let back: Micros = rmp_serde::from_slice(&old).unwrap();
        assert_eq!(back.0, at);
    }

    #[test]
    fn nanoseconds_refuse_instants_outside_their_range() {
        let err = rmp_serde::to_vec(&Nanos(datetime!(2300-01-01 00:00 UTC))).unwrap_err();
        assert!(err.to_string().contains("outside the range"), "{err}");
        // Microseconds hold every instant `time` can.
        let far = datetime!(9999-12-31 23:59:59.999_999 UTC);
        let back: Micros = rmp_serde::from_slice(&binary(&Micros(far))).unwrap();
        assert_eq!(back.0, far);
    }
}
