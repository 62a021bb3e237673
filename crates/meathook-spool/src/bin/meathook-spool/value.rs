//! A record of unknown type, decoded into JSON.
//!
//! Records are stored as MessagePack with field names, which says what each
//! value is, so any record decodes without its Rust type: structs and maps
//! become objects, sequences and tuples arrays, enums what serde made of
//! them (a unit variant its name, others `{"Variant": ...}`). Where JSON has
//! no form for a value it is spelled out: a non-finite float as the string
//! `"NaN"`, `"inf"` or `"-inf"`; bytes as an array of numbers; a map key
//! that is not a string as its JSON text (`1`, `true`, `[1,2]`). Object
//! keys come out in sorted order, not in the order of the record's fields.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// One record, decoded into a JSON value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Json(pub(crate) Value);

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor).map(Json)
    }
}

struct JsonVisitor;

fn float(v: f64) -> Value {
    match Number::from_f64(v) {
        Some(n) => Value::Number(n),
        None if v.is_nan() => Value::String("NaN".into()),
        None if v > 0.0 => Value::String("inf".into()),
        None => Value::String("-inf".into()),
    }
}

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any MessagePack value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f32<E>(self, v: f32) -> Result<Value, E> {
        // Through its shortest decimal form, so 0.1f32 prints as 0.1 and
        // not as the f64 nearest to it (0.10000000149011612).
        Ok(float(v.to_string().parse().unwrap_or(f64::from(v))))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Array(
            v.iter().map(|b| Value::Number((*b).into())).collect(),
        ))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // The length hint comes from the file: not trusted for a capacity.
        let mut out = Vec::new();
        while let Some(Json(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(Json(key)) = map.next_key()? {
            let key = match key {
                Value::String(s) => s,
                other => other.to_string(),
            };
            let Json(value) = map.next_value()?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Value {
        rmp_serde::from_slice::<Json>(bytes).unwrap().0
    }

    #[test]
    fn what_json_cannot_hold_is_spelled_out() {
        let nan = rmp_serde::to_vec(&f64::NAN).unwrap();
        assert_eq!(decode(&nan), Value::String("NaN".into()));
        let inf = rmp_serde::to_vec(&f64::NEG_INFINITY).unwrap();
        assert_eq!(decode(&inf), Value::String("-inf".into()));
        let short = rmp_serde::to_vec(&0.1f32).unwrap();
        assert_eq!(decode(&short).to_string(), "0.1");
        let bytes = rmp_serde::to_vec(&serde_bytes_like(&[1, 2])).unwrap();
        assert_eq!(decode(&bytes).to_string(), "[1,2]");
        let mut keyed = std::collections::BTreeMap::new();
        keyed.insert(7u32, "seven");
        let keyed = rmp_serde::to_vec(&keyed).unwrap();
        assert_eq!(decode(&keyed).to_string(), r#"{"7":"seven"}"#);
    }

    /// A byte string as MessagePack `bin`.
    fn serde_bytes_like(b: &[u8]) -> impl serde::Serialize + '_ {
        struct Bytes<'a>(&'a [u8]);
        impl serde::Serialize for Bytes<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        Bytes(b)
    }
}
