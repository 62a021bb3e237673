//! Record types and readers shared by the black-box tests.
#![allow(dead_code, unused_imports, unreachable_pub)] // each test file uses a part
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)] // test fixtures: panics are failures; small fixed sizes

use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::ParquetMetaData;
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The reading record of the benchmarks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reading {
    pub station_id: String,
    pub timestamp: String,
    pub value: f64,
    pub unit: String,
}

impl Reading {
    pub fn same(&self, other: &Self) -> bool {
        self.station_id == other.station_id
            && self.timestamp == other.timestamp
            && self.value.to_bits() == other.value.to_bits()
            && self.unit == other.unit
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Quality {
    Good,
    Suspect,
    Missing,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Location {
    pub lat: f64,
    pub lon: f64,
    pub name: Option<String>,
}

/// Every type the encoder promises to carry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Station {
    pub id: String,
    pub seq: u64,
    pub delta: i64,
    pub small: i32,
    pub byte: u8,
    pub ok: bool,
    pub value: f64,
    pub maybe: Option<f64>,
    pub note: Option<String>,
    pub quality: Quality,
    pub location: Location,
    pub history: Vec<f64>,
    pub tags: Vec<String>,
    /// Nanoseconds (opt-in): every digit kept, 1677 to 2262.
    #[serde(with = "meathook_parquet::timestamp_ns")]
    pub observed_at: OffsetDateTime,
    /// Microseconds (the default): sub-microsecond digits are dropped, so
    /// equality compares it at microsecond precision.
    #[serde(with = "meathook_parquet::timestamp")]
    pub received_at: OffsetDateTime,
}

/// `at` as the default timestamp column keeps it: microseconds since the
/// epoch, truncated towards the past.
pub fn micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000)).unwrap()
}

fn same_f64(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits()
}

impl Station {
    pub fn same(&self, o: &Self) -> bool {
        self.id == o.id
            && self.seq == o.seq
            && self.delta == o.delta
            && self.small == o.small
            && self.byte == o.byte
            && self.ok == o.ok
            && same_f64(self.value, o.value)
            && match (self.maybe, o.maybe) {
                (Some(a), Some(b)) => same_f64(a, b),
                (None, None) => true,
                _ => false,
            }
            && self.note == o.note
            && self.quality == o.quality
            && same_f64(self.location.lat, o.location.lat)
            && same_f64(self.location.lon, o.location.lon)
            && self.location.name == o.location.name
            && self.history.len() == o.history.len()
            && self
                .history
                .iter()
                .zip(&o.history)
                .all(|(a, b)| same_f64(*a, *b))
            && self.tags == o.tags
            && self.observed_at == o.observed_at
            && micros(self.received_at) == micros(o.received_at)
    }
}

/// Any f64, with NaN payloads, ±Inf, ±0 and subnormals well represented.
pub fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>().prop_map(f64::from_bits),
        Just(f64::NAN),
        Just(-f64::NAN),
        Just(f64::from_bits(0x7ff0_0000_0000_0001)),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
        Just(-0.0),
        any::<f64>(),
    ]
}

pub fn reading() -> impl Strategy<Value = Reading> {
    (
        "[A-Z][0-9]{1,3}",
        (0i64..4_000_000_000).prop_map(|s| {
            OffsetDateTime::from_unix_timestamp(s)
                .unwrap()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        }),
        any_f64(),
        prop_oneof![Just("deg C".to_owned()), Just("%".to_owned()), ".{0,8}"],
    )
        .prop_map(|(station_id, timestamp, value, unit)| Reading {
            station_id,
            timestamp,
            value,
            unit,
        })
}

pub fn station() -> impl Strategy<Value = Station> {
    (
        (
            ".{0,12}",
            any::<u64>(),
            any::<i64>(),
            any::<i32>(),
            any::<u8>(),
            any::<bool>(),
        ),
        (
            any_f64(),
            proptest::option::of(any_f64()),
            proptest::option::of(".{0,6}"),
        ),
        prop_oneof![
            Just(Quality::Good),
            Just(Quality::Suspect),
            Just(Quality::Missing)
        ],
        (any_f64(), any_f64(), proptest::option::of("[a-z ]{0,8}")),
        (
            proptest::collection::vec(any_f64(), 0..4),
            proptest::collection::vec(".{0,4}", 0..3),
        ),
        // The nanosecond timestamp range, at nanosecond precision.
        (-9_223_372_036i64..9_223_372_036, 0u32..1_000_000_000),
    )
        .prop_map(
            |(
                (id, seq, delta, small, byte, ok),
                (value, maybe, note),
                quality,
                (lat, lon, name),
                (history, tags),
                (secs, nanos),
            )| Station {
                id,
                seq,
                delta,
                small,
                byte,
                ok,
                value,
                maybe,
                note,
                quality,
                location: Location { lat, lon, name },
                history,
                tags,
                observed_at: OffsetDateTime::from_unix_timestamp(secs).unwrap()
                    + time::Duration::nanoseconds(i64::from(nanos)),
                received_at: OffsetDateTime::from_unix_timestamp(-secs).unwrap()
                    + time::Duration::nanoseconds(i64::from(nanos)),
            },
        )
}

pub fn station_at(i: u64) -> Station {
    Station {
        id: format!("S{}", i % 64),
        seq: u64::MAX - i,
        delta: -(i as i64),
        small: i as i32,
        byte: (i % 256) as u8,
        ok: i.is_multiple_of(2),
        value: i as f64 / 10.0,
        maybe: i.is_multiple_of(3).then_some(i as f64),
        note: i.is_multiple_of(5).then(|| format!("note {i}")),
        quality: [Quality::Good, Quality::Suspect, Quality::Missing][(i % 3) as usize],
        location: Location {
            lat: 1.3 + i as f64 * 1e-6,
            lon: 103.8,
            name: Some(format!("site {}", i % 7)),
        },
        history: (0..i % 4).map(|k| k as f64 * 0.5).collect(),
        tags: (0..i % 3).map(|k| format!("t{k}")).collect(),
        observed_at: time::macros::datetime!(2026-11-23 10:00 UTC)
            + time::Duration::milliseconds(i as i64 * 250),
        received_at: time::macros::datetime!(2026-11-23 10:00:01 UTC)
            + time::Duration::nanoseconds(i as i64 * 1_001),
    }
}

pub fn reading_at(i: u64) -> Reading {
    Reading {
        station_id: format!("S{:02}", i % 64),
        timestamp: format!("2026-11-23T10:{:02}:{:02}Z", (i / 60) % 60, i % 60),
        value: (i % 1000) as f64 * 0.1 - 20.0,
        unit: "deg C".to_owned(),
    }
}

/// Reads a parquet file's batches and metadata with the parquet crate.
pub fn read_parquet(bytes: Vec<u8>) -> (Vec<RecordBatch>, ParquetMetaData) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap();
    let metadata = builder.metadata().as_ref().clone();
    let batches = builder
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (batches, metadata)
}

/// Reads a parquet file back into records.
pub fn read_records<R: DeserializeOwned>(bytes: Vec<u8>) -> Vec<R> {
    let (batches, _) = read_parquet(bytes);
    batches
        .iter()
        .flat_map(|b| serde_arrow::from_record_batch::<Vec<R>>(b).unwrap())
        .collect()
}

/// Every file under `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The venv's interpreter (pyarrow, moto), or `None` outside CI.
pub use meathook_testkit::python::interpreter as python;

/// The bits of a float as the Python checker expects them.
pub fn f64_json(x: f64) -> serde_json::Value {
    serde_json::json!({ "f64": format!("{:016x}", x.to_bits()) })
}

/// A station as the Python checker expects to read it.
pub fn station_json(s: &Station) -> serde_json::Value {
    serde_json::json!({
        "id": s.id,
        "seq": s.seq,
        "delta": s.delta,
        "small": s.small,
        "byte": s.byte,
        "ok": s.ok,
        "value": f64_json(s.value),
        "maybe": s.maybe.map(f64_json),
        "note": s.note,
        "quality": format!("{:?}", s.quality),
        "location": {
            "lat": f64_json(s.location.lat),
            "lon": f64_json(s.location.lon),
            "name": s.location.name,
        },
        "history": s.history.iter().map(|x| f64_json(*x)).collect::<Vec<_>>(),
        "tags": s.tags,
        "observed_at": i64::try_from(s.observed_at.unix_timestamp_nanos()).unwrap(),
        "received_at": micros(s.received_at),
    })
}
