//! Records as their field values, with the field names once per frame.
//!
//! A record whose type serializes as a struct (what `#[derive(Serialize)]`
//! gives a struct with named fields) is written as a MessagePack array of
//! its field values; the frame names the fields once, in order. Values
//! nested inside are written as in the self-describing encoding (structs as
//! maps). Reading gives the type the fields by name, as a map, so a field
//! added, removed or moved reads as it would from a self-describing record;
//! where the frame's names are exactly the type's own fields, in its order,
//! the values go straight to the type's positional decoding, with no names
//! to match.
//!
//! A record that is not a struct at the top (a number, a map, an enum, a
//! struct with a flattened field), or whose fields differ from the frame's
//! (`skip_serializing_if` left one out), is written self-describing.

use std::fmt;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, Visitor};
use serde::ser::{self, Impossible, Serialize};

/// Why a record was not written positionally.
#[derive(Debug)]
pub(crate) enum NotPositional {
    /// Not a struct, or its fields are not the frame's: write it
    /// self-describing instead.
    Shape,
    /// The record's own `Serialize` failed.
    Failed(String),
}

impl fmt::Display for NotPositional {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Shape => f.write_str("not a struct with the frame's fields"),
            Self::Failed(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for NotPositional {}

impl ser::Error for NotPositional {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::Failed(msg.to_string())
    }
}

/// Writes one record's field values as an array, checking (or, for the
/// first record of a frame, learning) the field names.
pub(crate) struct Writer<'a> {
    pub(crate) out: &'a mut Vec<u8>,
    pub(crate) fields: &'a mut Vec<&'static str>,
}

/// The fields of a struct being written.
pub(crate) struct Fields<'a> {
    out: &'a mut Vec<u8>,
    fields: &'a mut Vec<&'static str>,
    learning: bool,
    /// Fields the struct said it has (the array's length).
    len: usize,
    next: usize,
}

macro_rules! not_a_struct {
    ($($method:ident($($arg:ty),*);)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<(), NotPositional> {
            Err(NotPositional::Shape)
        })*
    };
}

impl<'a> ser::Serializer for Writer<'a> {
    type Ok = ();
    type Error = NotPositional;
    type SerializeSeq = Impossible<(), NotPositional>;
    type SerializeTuple = Impossible<(), NotPositional>;
    type SerializeTupleStruct = Impossible<(), NotPositional>;
    type SerializeTupleVariant = Impossible<(), NotPositional>;
    type SerializeMap = Impossible<(), NotPositional>;
    type SerializeStruct = Fields<'a>;
    type SerializeStructVariant = Impossible<(), NotPositional>;

    not_a_struct! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_i128(i128);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_u128(u128);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_str(&str);
        serialize_bytes(&[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), NotPositional> {
        Err(NotPositional::Shape)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), NotPositional> {
        Err(NotPositional::Shape)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), NotPositional> {
        Err(NotPositional::Shape)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotPositional> {
        Err(NotPositional::Shape)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotPositional> {
        Err(NotPositional::Shape)
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotPositional> {
        Err(NotPositional::Shape)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotPositional> {
        Err(NotPositional::Shape)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotPositional> {
        Err(NotPositional::Shape)
    }

    fn serialize_struct(
        self,
        _: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, NotPositional> {
        let learning = self.fields.is_empty();
        if (!learning && len != self.fields.len()) || len == 0 {
            return Err(NotPositional::Shape);
        }
        let len16 = u16::try_from(len).map_err(|_| NotPositional::Shape)?;
        rmp::encode::write_array_len(self.out, u32::from(len16))
            .map_err(|e| NotPositional::Failed(e.to_string()))?;
        Ok(Fields {
            out: self.out,
            fields: self.fields,
            learning,
            len,
            next: 0,
        })
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotPositional> {
        Err(NotPositional::Shape)
    }
}

impl ser::SerializeStruct for Fields<'_> {
    type Ok = ();
    type Error = NotPositional;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), NotPositional> {
        if self.next == self.len {
            return Err(NotPositional::Shape);
        }
        if self.learning {
            self.fields.push(key);
        } else if self.fields.get(self.next) != Some(&key) {
            return Err(NotPositional::Shape);
        }
        self.next += 1;
        let mut values = rmp_serde::Serializer::new(&mut *self.out).with_struct_map();
        value
            .serialize(&mut values)
            .map_err(|e| NotPositional::Failed(e.to_string()))
    }

    fn end(self) -> Result<(), NotPositional> {
        // A hand-written `Serialize` may write fewer fields than it said.
        if self.next == self.len {
            Ok(())
        } else {
            Err(NotPositional::Shape)
        }
    }
}

/// The field names a type decodes as a struct, in order; `None` if it does
/// not decode as a struct with named fields.
pub(crate) fn fields_of<R: DeserializeOwned>() -> Option<&'static [&'static str]> {
    let mut fields = None;
    let _ = R::deserialize(Probe(&mut fields));
    fields
}

/// A deserializer that only notes the fields a struct asks for.
struct Probe<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("fields noted"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// The field names of a frame, and whether they are exactly the fields the
/// record type decodes, in order.
#[derive(Debug, Default)]
pub(crate) struct FrameFields {
    pub(crate) names: Vec<String>,
    /// The values can go straight to the type's positional decoding.
    pub(crate) in_type_order: bool,
}

impl FrameFields {
    pub(crate) fn new<R: DeserializeOwned>(names: Vec<String>) -> Self {
        let in_type_order = fields_of::<R>().is_some_and(|fields| {
            fields.len() == names.len() && fields.iter().zip(&names).all(|(a, b)| a == b)
        });
        Self {
            names,
            in_type_order,
        }
    }

    /// Decodes one positional record.
    pub(crate) fn decode<R: DeserializeOwned>(&self, bytes: &[u8]) -> Result<R, String> {
        if self.in_type_order {
            // A hand-written `Deserialize` may name its fields but take
            // only maps: then the values go by name below.
            if let Ok(record) = rmp_serde::from_slice(bytes) {
                return Ok(record);
            }
        }
        let mut rest = bytes;
        let len = rmp::decode::read_array_len(&mut rest)
            .map_err(|e| format!("a positional record is not an array: {e}"))?;
        let len = len as usize;
        if len > self.names.len() {
            return Err(format!(
                "a record of {len} values in a frame that names {} fields",
                self.names.len()
            ));
        }
        R::deserialize(ByName {
            names: &self.names[..len],
            values: rest,
        })
        .map_err(|e| e.to_string())
    }
}

/// A positional record seen as a map from the frame's field names to its
/// values.
struct ByName<'a> {
    names: &'a [String],
    values: &'a [u8],
}

impl<'de> de::Deserializer<'de> for ByName<'de> {
    type Error = rmp_serde::decode::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_map(Entries {
            names: self.names.iter(),
            values: rmp_serde::Deserializer::from_read_ref(self.values),
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct Entries<'de> {
    names: std::slice::Iter<'de, String>,
    values: rmp_serde::Deserializer<rmp_serde::decode::ReadRefReader<'de, [u8]>>,
}

impl<'de> MapAccess<'de> for Entries<'de> {
    type Error = rmp_serde::decode::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        self.names
            .next()
            .map(|name| seed.deserialize(BorrowedStrDeserializer::new(name.as_str())))
            .transpose()
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        seed.deserialize(&mut self.values)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.names.len())
    }
}
