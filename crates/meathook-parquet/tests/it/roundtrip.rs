//! Parquet round trips with the parquet crate as the reader: every promised
//! type, bit-exact floats, deterministic bytes, schema evolution.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)] // tests: panics are failures; small fixed sizes

use crate::support;

use meathook_core::{EncodeSession, Encoder};
use meathook_parquet::{Compression, EncodeError, ParquetEncoder};
use parquet::basic::Compression as PqCompression;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use support::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn readings_round_trip_bit_exactly(records in proptest::collection::vec(reading(), 0..200)) {
        let encoder = ParquetEncoder::<Reading>::new().unwrap();
        let back: Vec<Reading> = read_records(encoder.encode(&records).unwrap());
        prop_assert_eq!(back.len(), records.len());
        for (a, b) in records.iter().zip(&back) {
            prop_assert!(a.same(b), "{:?} != {:?}", a, b);
        }
    }

    #[test]
    fn nested_records_round_trip_bit_exactly(
        records in proptest::collection::vec(station(), 0..60),
        row_group in 1usize..40,
    ) {
        let encoder = ParquetEncoder::<Station>::builder().with_row_group_size(row_group).build().unwrap();
        let back: Vec<Station> = read_records(encoder.encode(&records).unwrap());
        prop_assert_eq!(back.len(), records.len());
        for (a, b) in records.iter().zip(&back) {
            prop_assert!(a.same(b), "{:?} != {:?}", a, b);
        }
    }

    // Row groups are cut by row count alone, so how records are sliced into
    // `write` calls does not change a byte.
    #[test]
    fn bytes_do_not_depend_on_how_records_are_sliced(
        records in proptest::collection::vec(station(), 1..80),
        cuts in proptest::collection::vec(0usize..80, 0..6),
    ) {
        let encoder = ParquetEncoder::<Station>::builder().with_row_group_size(16).build().unwrap();
        let whole = encoder.encode(&records).unwrap();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % records.len()).collect();
        cuts.sort_unstable();
        let mut session = encoder.begin(Vec::new()).unwrap();
        let mut start = 0;
        for cut in cuts.into_iter().chain([records.len()]) {
            session.write(&records[start..cut.max(start)]).unwrap();
            start = cut.max(start);
        }
        prop_assert_eq!(session.finish().unwrap(), whole);
    }
}

#[test]
fn the_same_records_give_the_same_bytes() {
    let records: Vec<Station> = (0..5_000).map(station_at).collect();
    for compression in [
        Compression::Zstd(3),
        Compression::Snappy,
        Compression::Uncompressed,
    ] {
        let a = ParquetEncoder::<Station>::builder()
            .with_compression(compression)
            .build()
            .unwrap()
            .encode(&records)
            .unwrap();
        let b = ParquetEncoder::<Station>::builder()
            .with_compression(compression)
            .build()
            .unwrap()
            .encode(&records)
            .unwrap();
        assert_eq!(a, b, "{compression:?}");
    }
}

#[test]
fn settings_show_in_the_file_metadata() {
    let records: Vec<Station> = (0..1_000).map(station_at).collect();
    for (compression, expected) in [
        (Compression::Zstd(7), "ZSTD"),
        (Compression::Snappy, "SNAPPY"),
        (Compression::Uncompressed, "UNCOMPRESSED"),
    ] {
        let encoder = ParquetEncoder::<Station>::builder()
            .with_compression(compression)
            .with_row_group_size(300)
            .build()
            .unwrap();
        let (batches, meta) = read_parquet(encoder.encode(&records).unwrap());
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1_000);
        let sizes: Vec<i64> = meta.row_groups().iter().map(|rg| rg.num_rows()).collect();
        assert_eq!(sizes, [300, 300, 300, 100]);
        let column = meta.row_group(0).column(0);
        let codec = match column.compression() {
            PqCompression::ZSTD(_) => "ZSTD",
            PqCompression::SNAPPY => "SNAPPY",
            PqCompression::UNCOMPRESSED => "UNCOMPRESSED",
            other => panic!("unexpected codec {other:?}"),
        };
        assert_eq!(codec, expected);
        // Statistics and the page index (column and offset indexes).
        assert!(column.statistics().is_some(), "chunk statistics missing");
        assert!(
            column.column_index_offset().is_some(),
            "column index missing"
        );
        assert!(
            column.offset_index_offset().is_some(),
            "offset index missing"
        );
        let created_by = meta.file_metadata().created_by().unwrap_or("");
        assert!(created_by.starts_with("parquet-rs"), "{created_by}");
    }
}

#[test]
fn column_types_are_what_readers_expect() {
    use arrow_schema::{DataType, TimeUnit};
    let encoder = ParquetEncoder::<Station>::new().unwrap();
    let (batches, _) = read_parquet(encoder.encode(&[station_at(1)]).unwrap());
    let schema = batches[0].schema();
    let ty = |n: &str| schema.field_with_name(n).unwrap().data_type().clone();
    assert_eq!(ty("id"), DataType::Utf8);
    assert_eq!(ty("seq"), DataType::UInt64);
    assert_eq!(ty("value"), DataType::Float64);
    assert_eq!(ty("ok"), DataType::Boolean);
    assert_eq!(
        ty("observed_at"),
        DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
    );
    assert_eq!(
        ty("received_at"),
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert!(matches!(ty("quality"), DataType::Dictionary(_, v) if *v == DataType::Utf8));
    assert!(matches!(ty("location"), DataType::Struct(_)));
    assert!(matches!(ty("history"), DataType::List(_)));
    assert!(schema.field_with_name("maybe").unwrap().is_nullable());
}

#[derive(Debug, Serialize, Deserialize)]
struct WithJson {
    id: u32,
    payload: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize)]
struct Flat {
    name: String,
    n: i64,
}

#[test]
fn unrepresentable_types_and_bad_settings_fail_at_construction() {
    let err = ParquetEncoder::<WithJson>::new().unwrap_err();
    assert!(matches!(err, EncodeError::Schema { .. }));
    assert!(err.to_string().contains("payload"), "{err}");

    let err = ParquetEncoder::<Flat>::builder()
        .with_row_group_size(0)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("row_group_size"), "{err}");
    let err = ParquetEncoder::<Flat>::builder()
        .with_compression(Compression::Zstd(99))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("compression"), "{err}");
}

#[test]
fn timestamps_outside_the_nanosecond_range_fail_the_write_not_the_session() {
    let encoder = ParquetEncoder::<Station>::new().unwrap();
    let mut bad = station_at(2);
    bad.observed_at = time::macros::datetime!(2300-01-01 0:00 UTC);
    let mut session = encoder.begin(Vec::new()).unwrap();
    session.write(&[station_at(1)]).unwrap();
    let err = session.write(&[station_at(3), bad]).unwrap_err();
    assert!(err.is_record(), "{err}");
    assert!(err.to_string().contains("2300"), "{err}");
    session.write(&[station_at(4)]).unwrap();
    let back: Vec<Station> = read_records(session.finish().unwrap());
    assert_eq!(back.iter().map(|s| s.small).collect::<Vec<_>>(), [1, 4]);
}

// Full row groups of a write are encoded in the background while the rest
// of the slice is converted; a record that fails late in the slice must
// still leave no row group of that write in the file.
#[test]
fn a_failed_write_leaves_none_of_its_row_groups() {
    let encoder = ParquetEncoder::<Station>::builder()
        .with_row_group_size(16)
        .build()
        .unwrap();
    let good: Vec<Station> = (0..100).map(station_at).collect();
    let mut failing: Vec<Station> = (100..180).map(station_at).collect();
    failing[70].observed_at = time::macros::datetime!(2300-01-01 0:00 UTC);
    let mut session = encoder.begin(Vec::new()).unwrap();
    session.write(&good[..40]).unwrap();
    let err = session.write(&failing).unwrap_err();
    assert!(err.is_record(), "{err}");
    session.write(&good[40..]).unwrap();
    assert_eq!(session.finish().unwrap(), encoder.encode(&good).unwrap());
}

/// The encodings of the float columns of `records`, and whether each has
/// a dictionary page, by column path.
fn float_encodings(records: &[Station]) -> Vec<(String, Vec<parquet::basic::Encoding>, bool)> {
    let encoder = ParquetEncoder::<Station>::new().unwrap();
    let (_, meta) = read_parquet(encoder.encode(records).unwrap());
    meta.row_group(0)
        .columns()
        .iter()
        .filter(|c| {
            matches!(
                c.column_type(),
                parquet::basic::Type::FLOAT | parquet::basic::Type::DOUBLE
            )
        })
        .map(|c| {
            (
                c.column_path().string(),
                c.encodings().collect(),
                c.dictionary_page_offset().is_some(),
            )
        })
        .collect()
}

/// Floats start with a dictionary and fall back to byte streams split once
/// it grows past its limit: readings that repeat (sensor values rounded to
/// a decimal) stay dictionary-encoded; all-distinct values end up split.
#[test]
fn float_columns_keep_a_dictionary_for_repeating_values_and_split_distinct_ones() {
    use parquet::basic::Encoding;
    // 20,000 records: `value` is i / 10, all distinct past the limit.
    let distinct: Vec<Station> = (0..20_000).map(station_at).collect();
    let value = |encodings: &[(String, Vec<Encoding>, bool)]| {
        encodings
            .iter()
            .find(|(path, _, _)| path == "value")
            .cloned()
            .unwrap()
    };
    let (_, encodings, _) = value(&float_encodings(&distinct));
    assert!(
        encodings.contains(&Encoding::BYTE_STREAM_SPLIT),
        "all-distinct values fall back to BYTE_STREAM_SPLIT: {encodings:?}"
    );
    // The same count of records with 50 values between them.
    let repeating: Vec<Station> = (0..20_000)
        .map(|i| {
            let mut s = station_at(i);
            s.value = (i % 50) as f64 / 10.0;
            s
        })
        .collect();
    let (_, encodings, dictionary) = value(&float_encodings(&repeating));
    assert!(dictionary, "repeating values keep their dictionary");
    assert!(
        !encodings.contains(&Encoding::BYTE_STREAM_SPLIT),
        "repeating values never fall back: {encodings:?}"
    );
}

mod evolution {
    use super::*;

    /// Release 1 of a record type.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub(crate) struct V1 {
        pub station: String,
        pub value: f64,
    }

    /// Release 2 adds an optional field.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub(crate) struct V2 {
        pub station: String,
        pub value: f64,
        #[serde(default)]
        pub humidity: Option<f64>,
    }

    // Files written before the field existed stay readable: the new type
    // reads them with `None`, the old type reads new files (ignoring the
    // extra column), and each file carries its own schema.
    #[test]
    fn adding_an_optional_field_breaks_nothing_written() {
        let old = ParquetEncoder::<V1>::new()
            .unwrap()
            .encode(&[V1 {
                station: "S1".into(),
                value: 1.5,
            }])
            .unwrap();
        let new = ParquetEncoder::<V2>::new()
            .unwrap()
            .encode(&[V2 {
                station: "S2".into(),
                value: 2.5,
                humidity: Some(80.0),
            }])
            .unwrap();

        let old_as_v2: Vec<V2> = read_records(old.clone());
        assert_eq!(old_as_v2[0].station, "S1");
        assert_eq!(old_as_v2[0].humidity, None);
        let new_as_v2: Vec<V2> = read_records(new.clone());
        assert_eq!(new_as_v2[0].humidity, Some(80.0));
        let new_as_v1: Vec<V1> = read_records(new.clone());
        assert_eq!(new_as_v1[0].station, "S2");

        let (old_batches, _) = read_parquet(old);
        let (new_batches, _) = read_parquet(new);
        assert_eq!(old_batches[0].num_columns(), 2);
        assert_eq!(new_batches[0].num_columns(), 3);
    }
}
