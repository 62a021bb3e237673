//! One record as the cells of a CSV row, each formatted the way arrow-csv
//! formatted its column when CSV went through arrow, so files keep their
//! bytes:
//!
//! | value | cell |
//! |---|---|
//! | `None` | empty |
//! | bool | `true`, `false` |
//! | integer | decimal |
//! | float | shortest round-trip form (`ryu`): `0.5`, `1e20`, `NaN`, `inf`, `-inf` |
//! | char | its code point, as a number (serde_arrow's `UInt32` column) |
//! | string, unit variant | as is |
//! | bytes | lowercase hex |
//! | [`timestamp`](crate::timestamp) | RFC 3339 in UTC, `Z`, 0, 3 or 6 fractional digits |
//! | [`timestamp_ns`](crate::timestamp_ns) | RFC 3339 in UTC, `Z`, 0, 3, 6 or 9 fractional digits |
//!
//! Values are asked for in their binary form (`is_human_readable` is
//! false, as it was for serde_arrow), so a timestamp arrives as a count
//! of its unit. Quoting is the `csv` writer's, not ours.

use std::fmt::{self, Write as _};

use serde::ser::{self, Impossible, Serialize, SerializeStruct};

use super::columns::Column;
use crate::timestamp::Unit;

/// The cells of one row, reused from record to record.
#[derive(Debug, Default)]
pub(super) struct Row {
    cells: Vec<String>,
}

impl Row {
    /// Fills the row from `record`, a cell per column, in column order;
    /// a column the record did not serialise (skipped) is empty.
    ///
    /// # Errors
    ///
    /// Naming the field (`$` for the record itself), when the record is not
    /// a struct, has a field that is not a column, a nested value, or its
    /// `Serialize` impl fails.
    pub(super) fn fill<R: Serialize + ?Sized>(
        &mut self,
        record: &R,
        columns: &[Column],
    ) -> Result<(), (String, String)> {
        self.cells.resize_with(columns.len(), String::new);
        for cell in &mut self.cells {
            cell.clear();
        }
        record
            .serialize(Record {
                cells: &mut self.cells,
                columns,
                next: 0,
            })
            .map_err(|e| (e.field.unwrap_or("$").to_owned(), e.reason))
    }

    /// The cells, in column order.
    pub(super) fn cells(&self) -> &[String] {
        &self.cells
    }
}

/// Why a value could not be a cell.
#[derive(Debug)]
struct CellError {
    field: Option<&'static str>,
    reason: String,
}

impl CellError {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            field: None,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for CellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for CellError {}

impl ser::Error for CellError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::new(format!("cannot be serialised: {msg}"))
    }
}

fn not_flat<T>(what: &str) -> Result<T, CellError> {
    Err(CellError::new(format!(
        "is {what}, and a csv cell holds one flat value"
    )))
}

/// The record: a struct whose fields are the columns.
struct Record<'a> {
    cells: &'a mut [String],
    columns: &'a [Column],
    /// Where the next field is expected.
    next: usize,
}

macro_rules! not_a_struct {
    ($($method:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $method(self $(, _: $arg)*) -> Result<(), CellError> {
            Err(CellError::new("is not a struct: a csv row needs named fields"))
        })*
    };
}

impl<'a> ser::Serializer for Record<'a> {
    type Ok = ();
    type Error = CellError;
    type SerializeSeq = Impossible<(), CellError>;
    type SerializeTuple = Impossible<(), CellError>;
    type SerializeTupleStruct = Impossible<(), CellError>;
    type SerializeTupleVariant = Impossible<(), CellError>;
    type SerializeMap = Impossible<(), CellError>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), CellError>;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self, CellError> {
        Ok(self)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), CellError> {
        value.serialize(self)
    }

    not_a_struct! {
        serialize_bool(bool), serialize_i8(i8), serialize_i16(i16), serialize_i32(i32),
        serialize_i64(i64), serialize_u8(u8), serialize_u16(u16), serialize_u32(u32),
        serialize_u64(u64), serialize_f32(f32), serialize_f64(f64), serialize_char(char),
        serialize_str(&str), serialize_bytes(&[u8]), serialize_none(), serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), CellError> {
        Err(CellError::new(
            "is not a struct: a csv row needs named fields",
        ))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), CellError> {
        Err(CellError::new(
            "is not a struct: a csv row needs named fields",
        ))
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, CellError> {
        not_flat("a sequence")
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, CellError> {
        not_flat("a tuple")
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, CellError> {
        not_flat("a tuple struct")
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, CellError> {
        not_flat("an enum variant with data")
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, CellError> {
        not_flat("a map")
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, CellError> {
        not_flat("an enum variant with data")
    }
}

impl Record<'_> {
    fn column(&self, key: &'static str) -> Option<usize> {
        if self.columns.get(self.next).is_some_and(|c| c.name == key) {
            return Some(self.next);
        }
        self.columns.iter().position(|c| c.name == key)
    }
}

impl SerializeStruct for Record<'_> {
    type Ok = ();
    type Error = CellError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), CellError> {
        let with_field = |mut e: CellError| {
            e.field = Some(key);
            e
        };
        let index = self.column(key).ok_or_else(|| {
            with_field(CellError::new(
                "is serialised but not deserialised, so it is not a column",
            ))
        })?;
        let cell = Cell {
            out: &mut self.cells[index],
            timestamp: self.columns[index].timestamp,
        };
        value.serialize(cell).map_err(with_field)?;
        self.next = index + 1;
        Ok(())
    }

    fn skip_field(&mut self, _key: &'static str) -> Result<(), CellError> {
        Ok(())
    }

    fn end(self) -> Result<(), CellError> {
        Ok(())
    }
}

/// One cell.
struct Cell<'a> {
    out: &'a mut String,
    timestamp: Option<Unit>,
}

impl Cell<'_> {
    fn display(self, value: impl fmt::Display) -> Result<(), CellError> {
        write!(self.out, "{value}").map_err(|e| CellError::new(e.to_string()))
    }
}

impl<'a> ser::Serializer for Cell<'a> {
    type Ok = ();
    type Error = CellError;
    type SerializeSeq = Impossible<(), CellError>;
    type SerializeTuple = Impossible<(), CellError>;
    type SerializeTupleStruct = Impossible<(), CellError>;
    type SerializeTupleVariant = Impossible<(), CellError>;
    type SerializeMap = Impossible<(), CellError>;
    type SerializeStruct = Impossible<(), CellError>;
    type SerializeStructVariant = Impossible<(), CellError>;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn serialize_bool(self, v: bool) -> Result<(), CellError> {
        self.out.push_str(if v { "true" } else { "false" });
        Ok(())
    }

    fn serialize_i8(self, v: i8) -> Result<(), CellError> {
        self.display(v)
    }

    fn serialize_i16(self, v: i16) -> Result<(), CellError> {
        self.display(v)
    }

    fn serialize_i32(self, v: i32) -> Result<(), CellError> {
        self.display(v)
    }

    fn serialize_i64(self, v: i64) -> Result<(), CellError> {
        if let Some(unit) = self.timestamp {
            return write_timestamp(self.out, unit, v);
        }
        self.display(v)
    }

    fn serialize_i128(self, v: i128) -> Result<(), CellError> {
        self.display(v)
    }

    fn serialize_u8(self, v: u8) -> Result<(), CellError> {
        self.display(v)
    }

    fn serialize_u16(self, v: u16) -> Result<(), CellError> {
        self.display(v)
    }

    fn serialize_u32(self, v: u32) -> Result<(), CellError> {
        self.display(v)
    }

    fn serialize_u64(self, v: u64) -> Result<(), CellError> {
        self.display(v)
    }

    fn serialize_u128(self, v: u128) -> Result<(), CellError> {
        self.display(v)
    }

    fn serialize_f32(self, v: f32) -> Result<(), CellError> {
        self.out.push_str(ryu::Buffer::new().format(v));
        Ok(())
    }

    fn serialize_f64(self, v: f64) -> Result<(), CellError> {
        self.out.push_str(ryu::Buffer::new().format(v));
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), CellError> {
        self.display(u32::from(v))
    }

    fn serialize_str(self, v: &str) -> Result<(), CellError> {
        self.out.push_str(v);
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), CellError> {
        for byte in v {
            write!(self.out, "{byte:02x}").map_err(|e| CellError::new(e.to_string()))?;
        }
        Ok(())
    }

    fn serialize_none(self) -> Result<(), CellError> {
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), CellError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), CellError> {
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), CellError> {
        Ok(())
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), CellError> {
        self.out.push_str(variant);
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), CellError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), CellError> {
        not_flat("an enum variant with data")
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, CellError> {
        not_flat("a sequence")
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, CellError> {
        not_flat("a tuple")
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, CellError> {
        not_flat("a tuple struct")
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, CellError> {
        not_flat("an enum variant with data")
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, CellError> {
        not_flat("a map")
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, CellError> {
        not_flat("a struct")
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, CellError> {
        not_flat("an enum variant with data")
    }
}

/// A count of `unit` since the epoch as arrow-csv wrote a UTC timestamp
/// (chrono's `to_rfc3339_opts(SecondsFormat::AutoSi, true)`): the fraction
/// has 0, 3, 6 or 9 digits, the fewest that hold it exactly (so never 9
/// for microseconds).
fn write_timestamp(out: &mut String, unit: Unit, count: i64) -> Result<(), CellError> {
    let at = unit.instant(count).map_err(|e| {
        CellError::new(format!(
            "timestamp {count} ({unit:?}s) is out of range: {e}"
        ))
    })?;
    let year = at.year();
    let (month, day) = (u8::from(at.month()), at.day());
    let (hour, minute, second) = (at.hour(), at.minute(), at.second());
    let nano = at.nanosecond();
    let written = if (0..=9999).contains(&year) {
        write!(out, "{year:04}")
    } else {
        write!(out, "{year:+05}")
    }
    .and_then(|()| {
        write!(
            out,
            "-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}"
        )
    })
    .and_then(|()| {
        if nano == 0 {
            Ok(())
        } else if nano % 1_000_000 == 0 {
            write!(out, ".{:03}", nano / 1_000_000)
        } else if nano % 1_000 == 0 {
            write!(out, ".{:06}", nano / 1_000)
        } else {
            write!(out, ".{nano:09}")
        }
    });
    written.map_err(|e| CellError::new(e.to_string()))?;
    out.push('Z');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timestamp(nanos: i64) -> String {
        let mut out = String::new();
        write_timestamp(&mut out, Unit::Nanosecond, nanos).unwrap();
        out
    }

    fn timestamp_us(micros: i64) -> String {
        let mut out = String::new();
        write_timestamp(&mut out, Unit::Microsecond, micros).unwrap();
        out
    }

    #[test]
    fn timestamps_have_the_fewest_of_0_3_6_or_9_fraction_digits() {
        let second = 1_795_428_000 * 1_000_000_000;
        assert_eq!(timestamp(second), "2026-11-23T10:00:00Z");
        assert_eq!(timestamp(second + 250_000_000), "2026-11-23T10:00:00.250Z");
        assert_eq!(timestamp(second + 1_000), "2026-11-23T10:00:00.000001Z");
        assert_eq!(timestamp(second + 1), "2026-11-23T10:00:00.000000001Z");
        assert_eq!(timestamp(-500_000_000), "1969-12-31T23:59:59.500Z");
        assert_eq!(timestamp(i64::MIN), "1677-09-21T00:12:43.145224192Z");
        assert_eq!(timestamp(i64::MAX), "2262-04-11T23:47:16.854775807Z");
    }

    #[test]
    fn microsecond_timestamps_have_the_fewest_of_0_3_or_6_fraction_digits() {
        let second = 1_795_428_000 * 1_000_000;
        assert_eq!(timestamp_us(second), "2026-11-23T10:00:00Z");
        assert_eq!(timestamp_us(second + 250_000), "2026-11-23T10:00:00.250Z");
        assert_eq!(timestamp_us(second + 1), "2026-11-23T10:00:00.000001Z");
        assert_eq!(timestamp_us(-500_000), "1969-12-31T23:59:59.500Z");
        assert_eq!(
            timestamp_us(253_402_300_799_999_999),
            "9999-12-31T23:59:59.999999Z"
        );
    }
}
