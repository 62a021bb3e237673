//! The arrow schema of a record type, traced once, when an encoder is built.
//!
//! **Architecture invariant:** a type that cannot be represented fails here,
//! at construction, with an error naming the field — never on every window at
//! run time. Tracing reads the type's `Deserialize` impl (serde_arrow's
//! `from_type`), so it needs no sample records.
//!
//! Choices, all in favour of what readers outside Rust expect: strings are
//! `Utf8` and lists `List` (not the `Large` variants), unit-only enums are
//! dictionary-encoded strings holding the variant name, and fields marked
//! with [`timestamp`](crate::timestamp) become `Timestamp(Microsecond, "UTC")`
//! (with `timestamp_ns`, `Timestamp(Nanosecond, "UTC")`).

use std::sync::Arc;

use arrow_schema::{DataType, Field, FieldRef, Fields, TimeUnit};
use serde::de::DeserializeOwned;
use serde_arrow::schema::{SchemaLike, TracingOptions};

use crate::error::EncodeError;
use crate::timestamp::Unit;

/// Traces the arrow fields of `R`.
pub(crate) fn trace<R: DeserializeOwned>() -> Result<Vec<FieldRef>, EncodeError> {
    let options = TracingOptions::default()
        .enums_without_data_as_strings(true)
        .strings_as_large_utf8(false)
        .sequence_as_large_list(false)
        .bytes_as_large_binary(false);
    let fields = crate::timestamp::tracing(|| Vec::<FieldRef>::from_type::<R>(options)).map_err(
        |source| EncodeError::Schema {
            record_type: std::any::type_name::<R>(),
            source,
        },
    )?;
    Ok(fields.iter().map(rewrite).collect())
}

/// Replaces timestamp marker structs, at any depth.
fn rewrite(field: &FieldRef) -> FieldRef {
    let data_type = match field.data_type() {
        DataType::Struct(children) => match marker(children) {
            Some(unit) => DataType::Timestamp(unit, Some("UTC".into())),
            None => DataType::Struct(children.iter().map(rewrite).collect::<Fields>()),
        },
        DataType::List(item) => DataType::List(rewrite(item)),
        DataType::LargeList(item) => DataType::LargeList(rewrite(item)),
        DataType::Map(entries, sorted) => DataType::Map(rewrite(entries), *sorted),
        _ => return Arc::clone(field),
    };
    Arc::new(
        Field::new(field.name(), data_type, field.is_nullable())
            .with_metadata(field.metadata().clone()),
    )
}

/// The unit of a timestamp marker struct.
fn marker(children: &Fields) -> Option<TimeUnit> {
    match &children[..] {
        [only] => match Unit::of_marker(only.name())? {
            Unit::Microsecond => Some(TimeUnit::Microsecond),
            // `Unit` is non-exhaustive; nanoseconds are the finest it has.
            _ => Some(TimeUnit::Nanosecond),
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    enum Kind {
        Rain,
        Sun,
    }

    #[derive(Serialize, Deserialize)]
    struct Inner {
        #[serde(with = "crate::timestamp")]
        at: time::OffsetDateTime,
    }

    #[derive(Serialize, Deserialize)]
    struct Outer {
        name: String,
        big: u64,
        kind: Kind,
        inner: Inner,
        list: Vec<Inner>,
        #[serde(with = "crate::timestamp")]
        at: time::OffsetDateTime,
        #[serde(with = "meathook_files::timestamp_ns")]
        at_ns: time::OffsetDateTime,
    }

    #[derive(Serialize, Deserialize)]
    struct WithJson {
        id: u32,
        payload: serde_json::Value,
    }

    #[test]
    fn timestamps_are_found_at_any_depth() {
        let fields = trace::<Outer>().unwrap();
        let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let by_name = |n: &str| fields.iter().find(|f| f.name() == n).unwrap().clone();
        assert_eq!(by_name("at").data_type(), &ts);
        assert_eq!(
            by_name("at_ns").data_type(),
            &DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
        );
        assert_eq!(by_name("name").data_type(), &DataType::Utf8);
        assert_eq!(by_name("big").data_type(), &DataType::UInt64);
        assert!(matches!(
            by_name("kind").data_type(),
            DataType::Dictionary(_, v) if **v == DataType::Utf8
        ));
        let DataType::Struct(inner) = by_name("inner").data_type().clone() else {
            panic!("inner is a struct")
        };
        assert_eq!(inner[0].data_type(), &ts);
        let DataType::List(item) = by_name("list").data_type().clone() else {
            panic!("list is a list")
        };
        let DataType::Struct(inner) = item.data_type().clone() else {
            panic!("list of structs")
        };
        assert_eq!(inner[0].data_type(), &ts);
    }

    #[test]
    fn unrepresentable_fields_fail_at_construction_naming_the_field() {
        let err = trace::<WithJson>().unwrap_err().to_string();
        assert!(err.contains("payload"), "{err}");
        assert!(err.contains("WithJson"), "{err}");
    }
}
