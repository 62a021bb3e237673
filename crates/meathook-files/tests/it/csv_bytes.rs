//! CSV bytes: what the encoder wrote when it went through arrow-csv
//! (captured from meathook-parquet's arrow-based `CsvEncoder` before it
//! moved here), cell for cell — every scalar type, quoting, floats,
//! timestamps at each precision — and which record types it refused.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)] // tests: panics are failures; values picked to fit

use meathook_core::Encoder;
use meathook_files::{CsvEncoder, EncodeError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::macros::datetime;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum Unit {
    A,
    #[serde(rename = "b-renamed")]
    B,
}

#[derive(Debug, Serialize, Deserialize)]
struct Meters(f64);

/// Bytes through `serialize_bytes` (what `serde_bytes` does).
#[derive(Debug)]
struct Bytes(Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Many {
    b: bool,
    i8_: i8,
    i16_: i16,
    i32_: i32,
    i64_: i64,
    u8_: u8,
    u16_: u16,
    u32_: u32,
    u64_: u64,
    f32_: f32,
    f64_: f64,
    c: char,
    s: String,
    os: Option<String>,
    unit: Unit,
    ounit: Option<Unit>,
    m: Meters,
    bytes: Bytes,
    #[serde(rename = "renamed col")]
    r: u8,
    // Nanoseconds: arrow-csv's bytes for every precision, 1677 to 2262.
    #[serde(with = "meathook_files::timestamp_ns")]
    at: OffsetDateTime,
}

fn many(f: f64, s: &str, at: OffsetDateTime) -> Many {
    Many {
        b: f > 0.0,
        i8_: -8,
        i16_: -16,
        i32_: i32::MIN,
        i64_: i64::MIN,
        u8_: 255,
        u16_: 65535,
        u32_: u32::MAX,
        u64_: u64::MAX,
        f32_: f as f32,
        f64_: f,
        c: 'é',
        s: s.to_owned(),
        os: None,
        unit: Unit::B,
        ounit: Some(Unit::A),
        m: Meters(f),
        bytes: Bytes(vec![0, 1, 0xab, 0xff]),
        r: 1,
        at,
    }
}

fn csv<R: Serialize + DeserializeOwned + Send + Sync>(records: &[R]) -> String {
    let encoder = CsvEncoder::<R>::new().unwrap();
    String::from_utf8(encoder.encode(records).unwrap()).unwrap()
}

fn refused<R: Serialize + DeserializeOwned + Send + Sync>() -> EncodeError {
    CsvEncoder::<R>::new().unwrap_err()
}

#[test]
fn every_scalar_type_is_written_as_arrow_csv_wrote_it() {
    let records = [
        many(0.5, "plain", datetime!(2026-11-23 10:00:00 UTC)),
        many(-0.0, "a,b", datetime!(2026-11-23 10:00:00.001 UTC)),
        many(
            f64::NAN,
            "q\"uote",
            datetime!(2026-11-23 10:00:00.000_001 UTC),
        ),
        many(
            f64::INFINITY,
            "new\nline",
            datetime!(2026-11-23 10:00:00.000_000_001 UTC),
        ),
        many(
            f64::NEG_INFINITY,
            " lead",
            datetime!(1969-12-31 23:59:59.5 UTC),
        ),
        many(1e20, "", datetime!(1677-09-22 00:00 UTC)),
        many(1e-7, "tab\there", datetime!(2262-04-11 00:00 UTC)),
        many(0.1, "uni ü ∞", datetime!(2000-01-01 00:00:00.120_000 UTC)),
        many(
            123456789.123,
            "cr\rx",
            datetime!(2000-01-01 00:00:00.123_400 UTC),
        ),
        many(1.0, "#hash", datetime!(2000-01-01 00:00:00.123_450_000 UTC)),
        many(f64::MAX, "'", datetime!(2000-01-01 00:00:00.000_100 +05:00)),
        many(f64::MIN_POSITIVE, "\"", datetime!(2000-01-01 00:00:00 UTC)),
        many(3.0e-320, "x\"", datetime!(2000-01-01 00:00:00 UTC)),
        many(1e15, "1e16", datetime!(2000-01-01 00:00:00 UTC)),
        many(1e16, "semi;", datetime!(2000-01-01 00:00:00 UTC)),
    ];
    let arrow_csv: &[&str] = &[
        "b,i8_,i16_,i32_,i64_,u8_,u16_,u32_,u64_,f32_,f64_,c,s,os,unit,ounit,m,bytes,renamed col,at\n",
        "true,-8,-16,-2147483648,-9223372036854775808,255,65535,4294967295,18446744073709551615,0.5,0.5,233,plain,,b-renamed,A,0.5,0001abff,1,2026-11-23T10:00:00Z\n",
        "false,-8,-16,-2147483648,-9223372036854775808,255,65535,4294967295,18446744073709551615,-0.0,-0.0,233,\"a,b\",,b-renamed,A,-0.0,0001abff,1,2026-11-23T10:00:00.001Z\n",
        "false,-8,-16,-2147483648,-9223372036854775808,255,65535,4294967295,18446744073709551615,NaN,NaN,233,\"q\"\"uote\",,b-renamed,A,NaN,0001abff,1,2026-11-23T10:00:00.000001Z\n",
        "true,-8,-16,-2147483648,-9223372036854775808,255,65535,4294967295,18446744073709551615,inf,inf,233,\"new\nline\",,b-renamed,A,inf,0001abff,1,2026-11-23T10:00:00.000000001Z\n",
        "false,-8,-16,-2147483648,-9223372036854775808,255,65535,4294967295,18446744073709551615,-inf,-inf,233, lead,,b-renamed,A,-inf,0001abff,1,1969-12-31T23:59:59.500Z\n",
        "true,-8,-16,-2147483648,-9223372036854775808,255,65535,4294967295,18446744073709551615,1e20,1e20,233,,,b-renamed,A,1e20,0001abff,1,1677-09-22T00:00:00Z\n",
        "true,-8,-16,-2147483648,-9223372036854775808,255,65535,4294967295,18446744073709551615,1e-7,1e-7,233,tab\there,,b-renamed,A,1e-7,0001abff,1,2262-04-11T00:00:00Z\n",
        "true,-8,-16,-2147483648,-9223372036854775808,255,65535,4294967295,18446744073709551615,0.1,0.1,233,uni ü ∞,,b-renamed,A,0.1,0001abff,1,2000-01-01T00:00:00.120Z\n",
        "true,-8,-16,-2147483648,-9223372036854775808,255,65535,4294967295,18446744073709551615,123456790.0,123456789.123,233,\"cr\rx\",,b-renamed,A,123456789.123,0001abff,1,2000-01-01T00:00:00.123400Z\n",
        "true,-8,-16,-2147483648,-9223372036854775808,255,65535,4294967295,18446744073709551615,1.0,1.0,233,#hash,,b-renamed,A,1.0,0001abff,1,2000-01-01T00:00:00.123450Z\n",
        "true,-8,-16,-2147483648,-9223372036854775808,255,65535,4294967295,18446744073709551615,inf,1.7976931348623157e308,233,',,b-renamed,A,1.7976931348623157e308,0001abff,1,1999-12-31T19:00:00.000100Z\n",
        "true,-8,-16,-2147483648,-9223372036854775808,255,65535,4294967295,18446744073709551615,0.0,2.2250738585072014e-308,233,\"\"\"\",,b-renamed,A,2.2250738585072014e-308,0001abff,1,2000-01-01T00:00:00Z\n",
        "true,-8,-16,-2147483648,-9223372036854775808,255,65535,4294967295,18446744073709551615,0.0,3e-320,233,\"x\"\"\",,b-renamed,A,3e-320,0001abff,1,2000-01-01T00:00:00Z\n",
        "true,-8,-16,-2147483648,-9223372036854775808,255,65535,4294967295,18446744073709551615,1e15,1000000000000000.0,233,1e16,,b-renamed,A,1000000000000000.0,0001abff,1,2000-01-01T00:00:00Z\n",
        "true,-8,-16,-2147483648,-9223372036854775808,255,65535,4294967295,18446744073709551615,1e16,1e16,233,semi;,,b-renamed,A,1e16,0001abff,1,2000-01-01T00:00:00Z\n",
    ];
    assert_eq!(csv(&records), arrow_csv.concat());
    assert_eq!(csv::<Many>(&[]), arrow_csv[0]);
}

#[derive(Debug, Serialize, Deserialize)]
struct One {
    s: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct WithSkip {
    a: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    b: Option<u8>,
    c: u8,
}

#[test]
fn a_lone_empty_cell_is_quoted_and_a_skipped_field_is_empty() {
    let one = [One { s: String::new() }, One { s: "x".into() }];
    assert_eq!(csv(&one), "s\n\"\"\nx\n");
    let skip = [
        WithSkip {
            a: 1,
            b: None,
            c: 3,
        },
        WithSkip {
            a: 1,
            b: Some(2),
            c: 3,
        },
    ];
    assert_eq!(csv(&skip), "a,b,c\n1,,3\n1,2,3\n");
}

#[derive(Debug, Serialize, Deserialize)]
struct Empty;

#[derive(Debug, Serialize, Deserialize)]
struct WithUnit {
    a: u8,
    u: (),
    e: Empty,
}

#[derive(Debug, Serialize, Deserialize)]
struct WithI128 {
    a: i128,
}

#[derive(Debug, Serialize, Deserialize)]
struct WithJson {
    a: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize)]
enum Data {
    A,
    B(u8),
}

#[derive(Debug, Serialize, Deserialize)]
struct WithData {
    a: u8,
    d: Data,
    l: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Inner {
    x: u8,
}

#[derive(Debug, Serialize, Deserialize)]
struct WithFlatten {
    a: u8,
    #[serde(flatten)]
    i: Inner,
}

#[derive(Debug, Serialize, Deserialize)]
struct WithTuple {
    a: (u8, u8),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t")]
enum Tagged {
    A { x: u8 },
}

#[derive(Debug, Serialize, Deserialize)]
struct WithTagged {
    t: Tagged,
}

fn schema(err: &EncodeError) -> Option<&str> {
    match err {
        EncodeError::Schema { field, .. } => Some(field),
        _ => None,
    }
}

fn nested(err: &EncodeError) -> Option<&str> {
    match err {
        EncodeError::Nested { field, .. } => Some(field),
        _ => None,
    }
}

#[test]
fn record_types_arrow_refused_are_refused_at_construction() {
    assert_eq!(schema(&refused::<WithUnit>()), Some("u"));
    assert_eq!(schema(&refused::<WithI128>()), Some("a"));
    assert_eq!(schema(&refused::<WithJson>()), Some("a"));
    assert_eq!(schema(&refused::<WithFlatten>()), Some("$"));
    assert_eq!(schema(&refused::<WithTagged>()), Some("t"));
    assert_eq!(nested(&refused::<WithTuple>()), Some("a"));
    // serde_arrow refused this one as a schema error ("null only field
    // A", the unit variant of a union); it is the enum with data that
    // CSV cannot hold, so it is named as nested now.
    assert_eq!(nested(&refused::<WithData>()), Some("d"));
}

#[derive(Debug, Serialize, Deserialize)]
struct Stamped {
    id: u8,
    // Nanoseconds, whose range ends in 2262: a record can fall outside it.
    #[serde(with = "meathook_files::timestamp_ns")]
    at: OffsetDateTime,
}

#[test]
fn a_record_that_cannot_be_written_fails_its_write_and_leaves_the_file_as_it_was() {
    use meathook_core::EncodeSession;
    let encoder = CsvEncoder::<Stamped>::new().unwrap();
    let mut session = encoder.begin(Vec::new()).unwrap();
    let ok = |id| Stamped {
        id,
        at: datetime!(2026-11-23 10:00 UTC),
    };
    session.write(&[ok(1)]).unwrap();
    let too_late = Stamped {
        id: 3,
        at: datetime!(2300-01-01 00:00 UTC),
    };
    let err = session.write(&[ok(2), too_late]).unwrap_err();
    assert!(err.is_record() && !err.is_io(), "{err}");
    assert!(
        matches!(&err, EncodeError::Record { field, .. } if field == "at"),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("cannot write record as csv: field `at` cannot be serialised: timestamp"),
        "{err}"
    );
    session.write(&[ok(4)]).unwrap();
    let text = String::from_utf8(session.finish().unwrap()).unwrap();
    assert_eq!(
        text,
        "id,at\n1,2026-11-23T10:00:00Z\n4,2026-11-23T10:00:00Z\n"
    );
}

#[derive(Debug, Serialize, Deserialize)]
struct Micros {
    #[serde(with = "meathook_files::timestamp")]
    at: OffsetDateTime,
}

#[test]
fn the_default_timestamp_column_holds_microseconds_with_the_rest_truncated() {
    let rows = [
        datetime!(2026-11-23 10:00:00.000_000_999 UTC),
        datetime!(2026-11-23 10:00:00.123_456_789 UTC),
        datetime!(2026-11-23 10:00:00.250 UTC),
        datetime!(1969-12-31 23:59:59.999_999_5 UTC),
        datetime!(2300-01-01 00:00 UTC),
    ]
    .map(|at| Micros { at });
    assert_eq!(
        csv(&rows),
        "at\n2026-11-23T10:00:00Z\n2026-11-23T10:00:00.123456Z\n2026-11-23T10:00:00.250Z\n1969-12-31T23:59:59.999999Z\n2300-01-01T00:00:00Z\n"
    );
}
