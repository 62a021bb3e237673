//! A manifest written in record format version 1, the oldest the catalog
//! reads, is read back entry for entry: the fixture in
//! `tests/fixtures/v1/` was written by the first release of the manifest;
//! see its README.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: panics are failures

use std::path::{Path, PathBuf};

use meathook_catalog::{
    DeliveryRecord, MANIFEST_FILE, Manifest, count_lines, for_each_record, query, read_chunk,
};
use meathook_core::{Delivery, DeliveryLog as _, WindowMeta};
use time::macros::datetime;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1/deliveries.jsonl")
}

/// The fields of a record, in a form a test can compare whole.
#[allow(clippy::type_complexity)] // one tuple per record keeps the table readable
fn fields(
    r: &DeliveryRecord,
) -> (
    u32,
    &str,
    time::OffsetDateTime,
    time::OffsetDateTime,
    &str,
    &str,
    u64,
    u64,
    &str,
    Option<&str>,
    time::OffsetDateTime,
    u32,
) {
    (
        r.v,
        &r.pipeline,
        r.window_start,
        r.window_end,
        &r.destination,
        &r.path,
        r.rows,
        r.bytes,
        &r.sha256,
        r.commit.as_deref(),
        r.delivered_at,
        r.attempts,
    )
}

#[test]
fn a_version_1_manifest_is_read_entry_for_entry() {
    let chunk = read_chunk(&fixture(), 0, 100).unwrap();
    assert_eq!(chunk.skipped, 0, "every line is a delivery record");
    assert!(chunk.at_end);
    assert_eq!(chunk.next, std::fs::metadata(fixture()).unwrap().len());
    let got: Vec<_> = chunk.records.iter().map(fields).collect();
    let ab = "ab".repeat(32);
    let one = "01".repeat(32);
    let five_c = "5c".repeat(32);
    assert_eq!(
        got,
        [
            (
                1,
                "air_temperature",
                datetime!(2026-12-01 10:00 UTC),
                datetime!(2026-12-01 11:00 UTC),
                "/data",
                "data/air_temperature/2026-12-01/100000Z-0-1.parquet",
                60,
                4096,
                ab.as_str(),
                None,
                datetime!(2026-12-01 11:00:03 UTC),
                1,
            ),
            (
                1,
                "air_temperature",
                datetime!(2026-12-01 11:00 UTC),
                datetime!(2026-12-01 12:00 UTC),
                "/data",
                "data/air_temperature/2026-12-01/110000Z-2-2.parquet",
                59,
                4011,
                one.as_str(),
                None,
                datetime!(2026-12-01 12:00:02 UTC),
                3,
            ),
            (
                1,
                "rainfall",
                datetime!(2026-12-01 10:00 UTC),
                datetime!(2026-12-01 11:00 UTC),
                "hf://datasets/acme/nea",
                "data/rainfall/2026-12-01/100000Z-3-3.parquet",
                12,
                2300,
                five_c.as_str(),
                Some("9f2c1e0d4b"),
                datetime!(2026-12-01 11:00:09 UTC),
                1,
            ),
        ]
    );
    let mut seen = 0;
    assert_eq!(for_each_record(&fixture(), |_| seen += 1).unwrap(), 0);
    assert_eq!(seen, 3);
    assert_eq!(count_lines(&fixture(), 0).unwrap(), 3);
}

#[test]
fn a_version_1_manifest_answers_queries_and_takes_new_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(MANIFEST_FILE);
    std::fs::copy(fixture(), &path).unwrap();
    let day = datetime!(2026-12-01 00:00 UTC);
    let hour = std::time::Duration::from_secs(3600);

    let listed = query::list(&path, "air_temperature", day, day + time::Duration::DAY).unwrap();
    let paths: Vec<_> = listed.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "data/air_temperature/2026-12-01/100000Z-0-1.parquet",
            "data/air_temperature/2026-12-01/110000Z-2-2.parquet",
        ]
    );
    let gaps = query::gaps(&path, "rainfall", day, day + time::Duration::DAY, hour).unwrap();
    assert_eq!(gaps.len(), 23, "one hour of rainfall delivered");

    // Opening it keeps every line; a new record goes after them.
    let manifest = Manifest::open(&path).unwrap();
    let window = WindowMeta::containing("rainfall", datetime!(2026-12-01 11:30 UTC), hour);
    manifest
        .record(&Delivery::new(
            &window,
            "/data",
            "data/rainfall/x.parquet",
            1,
            10,
            [0; 32],
        ))
        .unwrap();
    let records = read_chunk(&path, 0, 100).unwrap().records;
    assert_eq!(records.len(), 4);
    assert_eq!(
        read_chunk(&fixture(), 0, 100).unwrap().records[..],
        records[..3]
    );
    assert_eq!(records[3].path, "data/rainfall/x.parquet");
}
