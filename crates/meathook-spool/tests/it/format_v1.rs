//! Spool directories written by segment format version 1 (before segments
//! carried the spool's incarnation) are still delivered, record for record,
//! under the batch names they always had. The files in `tests/fixtures/v1/`
//! were written by the last release that wrote version 1; see its README.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: panics are failures

use std::path::{Path, PathBuf};

use meathook_core::{BatchId, Sink};
use meathook_spool::DiskSpool;
use time::macros::datetime;

use crate::support::{Reading, Recorder, at, hourly, reading};

/// The fixture directory, copied to a fresh directory the test may change.
fn copy_fixture() -> tempfile::TempDir {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1");
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        if name != "README.md" {
            std::fs::copy(&path, dir.path().join(name)).unwrap();
        }
    }
    dir
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .is_some_and(|n| n != "sequence" && n != "LOCK")
        })
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_spool_directory_is_delivered_under_its_old_batch_names() {
    let dir = copy_fixture();
    let names: Vec<_> = segments(dir.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["00000000000000000000.seg", "00000000000000000001.open"],
        "the fixture holds one sealed and one open version-1 segment"
    );

    let out = Recorder::<Reading>::default();
    let mut spool = DiskSpool::new(out.clone(), dir.path(), hourly());
    spool.open().await.unwrap();
    let report = spool.recovery_report().unwrap().clone();
    assert_eq!(
        (
            report.segments,
            report.records,
            report.lost_records,
            report.truncated_bytes
        ),
        (2, 8, 0, 0),
        "{report:?}"
    );
    assert!(
        report.quarantined.is_empty() && report.skipped.is_empty(),
        "{report:?}"
    );
    spool.flush().await.unwrap();
    spool.close().await;

    let batches = out.batches();
    let seen: Vec<_> = batches
        .iter()
        .map(|(w, records)| {
            (
                w.pipeline.to_string(),
                w.start,
                w.end,
                w.batch,
                w.batch.map(|b| b.to_string()),
                records.clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "air".to_owned(),
                datetime!(2026-11-23 10:00 UTC),
                datetime!(2026-11-23 11:00 UTC),
                Some(BatchId::legacy(0, 4)),
                Some("00000000000000000000-00000000000000000004".to_owned()),
                (0..5).map(reading).collect::<Vec<_>>(),
            ),
            (
                "air".to_owned(),
                datetime!(2026-11-23 11:00 UTC),
                datetime!(2026-11-23 12:00 UTC),
                Some(BatchId::legacy(5, 7)),
                Some("00000000000000000005-00000000000000000007".to_owned()),
                (5..8).map(reading).collect::<Vec<_>>(),
            ),
        ]
    );
    assert!(
        segments(dir.path()).is_empty(),
        "delivered segments are deleted: {:?}",
        segments(dir.path())
    );
}

/// Records ingested into the window of an older release's open segment go
/// to a new segment in today's payload encoding, never after the old
/// segment's frames (which name their own encoding in the header).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_for_an_older_open_segments_window_go_to_a_new_segment() {
    let dir = copy_fixture();
    let out = Recorder::<Reading>::default();
    let mut spool = DiskSpool::new(out.clone(), dir.path(), hourly());
    spool.open().await.unwrap();
    // 11:30, the window of the fixture's open segment.
    spool
        .ingest(&at(5400), (8..10).map(reading).collect())
        .await
        .unwrap();
    spool.flush().await.unwrap();
    spool.close().await;

    let mut delivered = out.records();
    delivered.sort_by(|a, b| a.value.total_cmp(&b.value));
    assert_eq!(delivered, (0..10).map(reading).collect::<Vec<_>>());
    let batches = out.batches();
    assert!(
        batches
            .iter()
            .any(|(w, records)| w.batch == Some(BatchId::legacy(5, 7))
                && *records == (5..8).map(reading).collect::<Vec<_>>()),
        "the old open segment is delivered as it was: {batches:?}"
    );
}
