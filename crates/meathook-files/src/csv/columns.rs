//! The columns of a flat record type, traced once, when a `CsvEncoder` is
//! built.
//!
//! **Invariant:** a record type CSV cannot hold fails here, at
//! construction, naming the field — never on every window at run time.
//! Tracing reads the type's `Deserialize` impl, so it needs no sample
//! records; it makes the choices serde_arrow's `from_type` made when CSV
//! went through arrow, so a record type has the columns it had then:
//!
//! | the field asks for | column |
//! |---|---|
//! | bool, integers up to 64 bits, floats, char, string, bytes | one cell |
//! | `Option<T>`, a newtype struct | as `T` |
//! | an enum whose variants carry no data | the variant name |
//! | the [`timestamp`](crate::timestamp) marker struct | a UTC timestamp |
//! | a struct, sequence, tuple, map, an enum with data | refused: [`EncodeError::Nested`] |
//! | any value (`serde_json::Value`, untagged enums), `i128`, `u128`, `()` | refused: [`EncodeError::Schema`] |
//!
//! Only one variant of an enum can be shown per trace, so the record type
//! is traced once per variant of its longest enum (pass `n` shows variant
//! `n` of every enum, or its last): an enum with data in any variant is
//! found. Of several refused fields, the first in declaration order is
//! named.

use std::fmt;

use serde::de::value::StrDeserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess,
    VariantAccess, Visitor,
};

use crate::error::EncodeError;
use crate::timestamp::{self, Unit};

/// One CSV column: a field of the record type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Column {
    /// The field's serde name: the header cell.
    pub(super) name: &'static str,
    /// The unit of a [`timestamp`](crate::timestamp) field, whose count is
    /// written as RFC 3339.
    pub(super) timestamp: Option<Unit>,
}

/// Traces the columns of `R`.
pub(super) fn trace<R: DeserializeOwned>() -> Result<Vec<Column>, EncodeError> {
    let record_type = std::any::type_name::<R>();
    let mut columns = None;
    // The earliest refusal: (index of the field, field, why).
    let mut refused: Option<(usize, &'static str, Refusal)> = None;
    let mut passes = 1;
    let mut pass = 0;
    while pass < passes {
        let mut state = State {
            pass,
            variants: 1,
            columns: Vec::new(),
            field: None,
        };
        let result = timestamp::tracing(|| R::deserialize(Root(&mut state)));
        passes = passes.max(state.variants);
        match result {
            Ok(_) if pass == 0 => columns = Some(state.columns),
            Ok(_) => {}
            Err(Refusal(why)) => {
                let at = state.columns.len();
                if refused.as_ref().is_none_or(|(first, ..)| at < *first) {
                    refused = Some((at, state.field.unwrap_or("$"), Refusal(why)));
                }
            }
        }
        pass += 1;
    }
    match (refused, columns) {
        (None, Some(columns)) => Ok(columns),
        (Some((_, field, Refusal(why))), _) => Err(why.into_error(record_type, field)),
        (None, None) => Err(Why::Custom("cannot be traced".into()).into_error(record_type, "$")),
    }
}

/// Where a trace is.
struct State {
    /// Which variant every enum shows on this pass.
    pass: usize,
    /// The most variants an enum had, so far.
    variants: usize,
    /// The columns traced so far.
    columns: Vec<Column>,
    /// The field being traced.
    field: Option<&'static str>,
}

/// Why a field cannot be a column: the tracer's error, which the record
/// type's `Deserialize` impl passes through.
#[derive(Debug)]
struct Refusal(Why);

#[derive(Debug)]
enum Why {
    /// A nested value, described.
    Nested(String),
    /// A value with no column type.
    Unsupported(&'static str),
    /// What the record type's own `Deserialize` impl said.
    Custom(String),
}

impl Why {
    fn into_error(self, record_type: &'static str, field: &str) -> EncodeError {
        let field = field.to_owned();
        match self {
            Self::Nested(data_type) => EncodeError::Nested {
                record_type,
                field,
                data_type,
            },
            Self::Unsupported(reason) => EncodeError::Schema {
                record_type,
                field,
                reason: reason.to_owned(),
            },
            Self::Custom(message) => EncodeError::Schema {
                record_type,
                field,
                reason: format!("cannot be traced: {message}"),
            },
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Why::Nested(what) => write!(f, "is nested ({what})"),
            Why::Unsupported(why) => f.write_str(why),
            Why::Custom(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Refusal {}

impl de::Error for Refusal {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(Why::Custom(msg.to_string()))
    }
}

fn nested<T>(what: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(Why::Nested(what.into())))
}

fn unsupported<T>(why: &'static str) -> Result<T, Refusal> {
    Err(Refusal(Why::Unsupported(why)))
}

fn name(name: &'static str) -> StrDeserializer<'static, Refusal> {
    name.into_deserializer()
}

/// The record itself: a struct (or a newtype around one).
struct Root<'a>(&'a mut State);

impl<'de> de::Deserializer<'de> for Root<'_> {
    type Error = Refusal;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Refusal> {
        unsupported("is not a struct: a csv row needs named fields")
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Refusal> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Refusal> {
        let value = visitor.visit_map(Fields {
            state: &mut *self.0,
            names: fields,
            pos: 0,
        })?;
        self.0.field = None;
        Ok(value)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

/// The record's fields, in declaration order, each traced into a column.
struct Fields<'a> {
    state: &'a mut State,
    names: &'static [&'static str],
    pos: usize,
}

impl<'de> MapAccess<'de> for Fields<'_> {
    type Error = Refusal;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Refusal> {
        let Some(&field) = self.names.get(self.pos) else {
            return Ok(None);
        };
        self.state.field = Some(field);
        seed.deserialize(name(field)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Refusal> {
        let mut column = Column {
            name: self.names[self.pos],
            timestamp: None,
        };
        let value = seed.deserialize(Cell {
            state: &mut *self.state,
            column: &mut column,
        })?;
        self.state.columns.push(column);
        self.pos += 1;
        Ok(value)
    }
}

/// One field's value: what a cell can hold, or a refusal.
struct Cell<'a> {
    state: &'a mut State,
    column: &'a mut Column,
}

impl<'de> de::Deserializer<'de> for Cell<'_> {
    type Error = Refusal;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Refusal> {
        unsupported(
            "takes any value (a serde_json::Value, an untagged or internally tagged enum), \
             so it has no column type",
        )
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        visitor.visit_bool(false)
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        visitor.visit_i8(0)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        visitor.visit_i16(0)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        visitor.visit_i32(0)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        visitor.visit_i64(0)
    }

    fn deserialize_i128<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Refusal> {
        unsupported("is a 128-bit integer, which has no column type")
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        visitor.visit_u8(0)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        visitor.visit_u16(0)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        visitor.visit_u32(0)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        visitor.visit_u64(0)
    }

    fn deserialize_u128<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Refusal> {
        unsupported("is a 128-bit integer, which has no column type")
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        visitor.visit_f32(0.0)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        visitor.visit_f64(0.0)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        visitor.visit_char('\0')
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        visitor.visit_borrowed_str("")
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        visitor.visit_string(String::new())
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        visitor.visit_borrowed_bytes(&[])
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        visitor.visit_byte_buf(Vec::new())
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Refusal> {
        unsupported("holds no value (`()` or a unit struct), so it has no column type")
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _visitor: V,
    ) -> Result<V::Value, Refusal> {
        unsupported("holds no value (`()` or a unit struct), so it has no column type")
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Refusal> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Refusal> {
        nested("sequence")
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        _visitor: V,
    ) -> Result<V::Value, Refusal> {
        nested(format!("tuple of {len}"))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, Refusal> {
        nested(format!("tuple struct {name}"))
    }

    fn deserialize_map<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Refusal> {
        nested("map")
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Refusal> {
        let unit = match fields {
            [field] => Unit::of_marker(field),
            _ => None,
        };
        let Some(unit) = unit else {
            return nested(format!("struct {name}"));
        };
        self.column.timestamp = Some(unit);
        visitor.visit_map(Marker {
            field: fields[0],
            done: false,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Refusal> {
        self.state.variants = self.state.variants.max(variants.len());
        let Some(&variant) = variants.get(self.state.pass).or_else(|| variants.last()) else {
            return unsupported("is an enum without variants");
        };
        visitor.visit_enum(Variant { name, variant })
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        visitor.visit_borrowed_str("")
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refusal> {
        visitor.visit_unit()
    }
}

/// The timestamp marker struct: its one field, at the epoch.
struct Marker {
    field: &'static str,
    done: bool,
}

impl<'de> MapAccess<'de> for Marker {
    type Error = Refusal;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Refusal> {
        if self.done {
            return Ok(None);
        }
        self.done = true;
        seed.deserialize(name(self.field)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Refusal> {
        seed.deserialize(0_i64.into_deserializer())
    }
}

/// The variant of an enum this pass shows.
struct Variant {
    name: &'static str,
    variant: &'static str,
}

impl Variant {
    fn with_data<T>(&self) -> Result<T, Refusal> {
        nested(format!(
            "enum {} whose variant `{}` carries data",
            self.name, self.variant
        ))
    }
}

impl<'de> EnumAccess<'de> for Variant {
    type Error = Refusal;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Refusal> {
        let value = seed.deserialize(name(self.variant))?;
        Ok((value, self))
    }
}

impl<'de> VariantAccess<'de> for Variant {
    type Error = Refusal;

    fn unit_variant(self) -> Result<(), Refusal> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value, Refusal> {
        self.with_data()
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, Refusal> {
        self.with_data()
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Refusal> {
        self.with_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    enum Kind {
        Rain,
        #[serde(rename = "sunny")]
        Sun,
    }

    #[derive(Serialize, Deserialize)]
    enum LateData {
        Plain,
        Other,
        Carries(u8),
    }

    #[derive(Serialize, Deserialize)]
    struct Meters(f64);

    #[derive(Serialize, Deserialize)]
    struct Flat {
        name: String,
        #[serde(rename = "big number")]
        big: u64,
        kind: Option<Kind>,
        height: Meters,
        #[serde(with = "crate::timestamp")]
        at: time::OffsetDateTime,
        #[serde(with = "crate::timestamp_ns")]
        at_ns: time::OffsetDateTime,
    }

    #[derive(Serialize, Deserialize)]
    struct Late {
        id: u32,
        late: LateData,
        list: Vec<u8>,
    }

    #[derive(Serialize, Deserialize)]
    struct WithJson {
        id: u32,
        payload: serde_json::Value,
    }

    #[test]
    fn flat_records_trace_to_named_columns_with_timestamps_marked() {
        let columns = trace::<Flat>().unwrap();
        let column = |name, timestamp| Column { name, timestamp };
        assert_eq!(
            columns,
            [
                column("name", None),
                column("big number", None),
                column("kind", None),
                column("height", None),
                column("at", Some(Unit::Microsecond)),
                column("at_ns", Some(Unit::Nanosecond)),
            ]
        );
    }

    #[test]
    fn an_enum_with_data_in_a_later_variant_is_named_before_a_later_nested_field() {
        let err = trace::<Late>().unwrap_err();
        assert!(
            matches!(&err, EncodeError::Nested { field, data_type, .. }
                if field == "late" && data_type.contains("`Carries`")),
            "{err}"
        );
    }

    #[test]
    fn fields_of_any_type_are_refused_naming_the_field() {
        let err = trace::<WithJson>().unwrap_err();
        assert!(
            matches!(&err, EncodeError::Schema { field, .. } if field == "payload"),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("WithJson") && text.contains("`payload`"),
            "{text}"
        );
    }

    #[test]
    fn a_record_that_is_not_a_struct_is_refused() {
        let err = trace::<(u8, u8)>().unwrap_err();
        assert!(
            matches!(&err, EncodeError::Schema { field, .. } if field == "$"),
            "{err}"
        );
    }
}
