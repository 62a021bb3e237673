//! JSON lines and CSV: what the files hold, and what CSV refuses.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)] // tests: panics are failures; small fixed sizes

use crate::support;

use meathook_core::{EncodeSession, Encoder};
use meathook_files::{CsvEncoder, EncodeError, JsonLinesEncoder};
use serde::{Deserialize, Serialize};
use support::*;

#[derive(Debug, Serialize, Deserialize)]
struct Flat {
    station: String,
    n: u64,
    value: Option<f64>,
    quality: Quality,
    #[serde(with = "meathook_files::timestamp")]
    at: time::OffsetDateTime,
}

fn flat(i: u64) -> Flat {
    Flat {
        station: format!("S,{i}"),
        n: u64::MAX - i,
        value: i.is_multiple_of(2).then_some(i as f64 + 0.5),
        quality: if i.is_multiple_of(2) {
            Quality::Good
        } else {
            Quality::Missing
        },
        at: time::macros::datetime!(2026-11-23 10:00:00.25 UTC) + time::Duration::seconds(i as i64),
    }
}

#[test]
fn json_lines_hold_one_record_per_line() {
    let encoder = JsonLinesEncoder::<Flat>::new();
    let mut session = encoder.begin(Vec::new()).unwrap();
    session.write(&[flat(0)]).unwrap();
    session.write(&[flat(1)]).unwrap();
    let text = String::from_utf8(session.finish().unwrap()).unwrap();
    assert_eq!(
        text,
        "{\"station\":\"S,0\",\"n\":18446744073709551615,\"value\":0.5,\"quality\":\"Good\",\"at\":\"2026-11-23T10:00:00.25Z\"}\n\
         {\"station\":\"S,1\",\"n\":18446744073709551614,\"value\":null,\"quality\":\"Missing\",\"at\":\"2026-11-23T10:00:01.25Z\"}\n"
    );
    assert_eq!(encoder.extension(), "jsonl");
}

#[test]
fn csv_has_a_header_and_arrow_formatted_cells() {
    let encoder = CsvEncoder::<Flat>::new().unwrap();
    let text = String::from_utf8(encoder.encode(&[flat(0), flat(1)]).unwrap()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "station,n,value,quality,at");
    assert_eq!(
        lines[1],
        "\"S,0\",18446744073709551615,0.5,Good,2026-11-23T10:00:00.250Z"
    );
    assert_eq!(
        lines[2],
        "\"S,1\",18446744073709551614,,Missing,2026-11-23T10:00:01.250Z"
    );
    assert_eq!(lines.len(), 3);
    let empty = String::from_utf8(encoder.encode(&[]).unwrap()).unwrap();
    assert_eq!(empty, "station,n,value,quality,at\n");
}

#[test]
fn csv_refuses_nested_types_at_construction_naming_the_field() {
    let err = CsvEncoder::<Station>::new().unwrap_err();
    assert!(
        matches!(err, EncodeError::Nested { ref field, .. } if field == "location"),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("`location`") && text.contains("flatten"),
        "{text}"
    );
}
