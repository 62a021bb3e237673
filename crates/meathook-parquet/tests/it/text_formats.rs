//! JSON lines and CSV through this crate: the encoders live in
//! meathook-files (whose tests check their bytes); here they report this
//! crate's `EncodeError` and land through `FileSink` like parquet does.

#![allow(clippy::unwrap_used)] // tests: panics are failures

use crate::support;

use std::time::Duration;

use meathook_core::{BatchId, Encoder, Sink, WindowMeta};
use meathook_parquet::layout::{self, BatchName};
use meathook_parquet::{CsvEncoder, EncodeError, FileSink, JsonLinesEncoder};
use serde::{Deserialize, Serialize};
use support::*;
use time::macros::datetime;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Flat {
    station: String,
    #[serde(with = "meathook_parquet::timestamp")]
    at: time::OffsetDateTime,
}

fn flat(i: u8) -> Flat {
    Flat {
        station: format!("S,{i}"),
        at: datetime!(2026-11-23 10:00:00.25 UTC),
    }
}

fn window() -> WindowMeta {
    WindowMeta::containing(
        "air_temperature",
        datetime!(2026-11-23 10:56 UTC),
        Duration::from_secs(3600),
    )
    .with_batch(BatchId::legacy(0, 1))
}

#[test]
fn csv_errors_come_as_this_crates_encode_error() {
    let err = CsvEncoder::<Station>::new().unwrap_err();
    assert!(
        matches!(err, EncodeError::Nested { ref field, .. } if field == "location"),
        "{err}"
    );

    #[derive(Serialize, Deserialize)]
    struct WithJson {
        payload: serde_json::Value,
    }
    let err = CsvEncoder::<WithJson>::new().unwrap_err();
    assert!(
        matches!(
            err,
            EncodeError::Text(meathook_files::EncodeError::Schema { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("`payload`"), "{err}");

    // Only nanoseconds have a range narrower than `time`'s.
    #[derive(Debug, Serialize, Deserialize)]
    struct FlatNs {
        station: String,
        #[serde(with = "meathook_parquet::timestamp_ns")]
        at: time::OffsetDateTime,
    }
    let out_of_range = FlatNs {
        station: "S".into(),
        at: datetime!(2300-01-01 00:00 UTC),
    };
    let err = CsvEncoder::<FlatNs>::new()
        .unwrap()
        .encode(&[out_of_range])
        .unwrap_err();
    assert!(err.is_record() && !err.is_io(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sinks_take_the_text_encoders() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let records = vec![flat(0), flat(1)];

    let mut csv = FileSink::new(root, CsvEncoder::<Flat>::new().unwrap()).unwrap();
    csv.open().await.unwrap();
    assert_eq!(
        csv.ingest(&window(), records.clone())
            .await
            .unwrap()
            .accepted(),
        2
    );
    let path = layout::object_path(&window(), BatchName::Sequence(BatchId::legacy(0, 1)), "csv");
    assert_eq!(
        std::fs::read_to_string(dir.path().join(path)).unwrap(),
        "station,at\n\"S,0\",2026-11-23T10:00:00.250Z\n\"S,1\",2026-11-23T10:00:00.250Z\n"
    );

    let mut jsonl = FileSink::new(root, JsonLinesEncoder::<Flat>::new()).unwrap();
    jsonl.open().await.unwrap();
    jsonl.ingest(&window(), records).await.unwrap();
    let path = layout::object_path(
        &window(),
        BatchName::Sequence(BatchId::legacy(0, 1)),
        "jsonl",
    );
    let text = std::fs::read_to_string(dir.path().join(path)).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(text.starts_with("{\"station\":\"S,0\",\"at\":\"2026-11-23T10:00:00.25Z\"}\n"));
}
