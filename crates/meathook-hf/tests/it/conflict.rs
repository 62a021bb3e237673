//! "Same path, different bytes" is a permanent conflict, never a replace:
//! the file already in the dataset is kept byte for byte, the window that
//! collides is refused as permanent (so a spool keeps it aside in its
//! dead-letter directory), and the other windows of the same commit round
//! still land.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use crate::support;

use std::time::Duration;

use meathook_core::{ErrorClass, Sink, SinkError};
use meathook_hf::HfError;
use meathook_testkit::hub::{FakeHub, FakeHubConfig};
use support::{REPO, Reading, dataset, readings, sink, window};

/// The parquet file whose path holds `hour`: its path and bytes.
fn file_of(hub: &FakeHub, hour: &str) -> (String, Vec<u8>) {
    let path = hub
        .files(REPO, "main")
        .into_iter()
        .map(|f| f.path)
        .find(|p| p.ends_with(".parquet") && p.contains(hour))
        .unwrap_or_else(|| panic!("no file for {hour}"));
    let bytes = hub.download(REPO, "main", &path).unwrap();
    (path, bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_holding_other_bytes_is_refused_for_good_and_the_round_still_lands() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    // An earlier spool delivered window 0 under this batch id.
    let earlier = readings(0, 50);
    sink(&hub, scratch.path())
        .ingest(&window("air_temperature", 0), earlier.clone())
        .await
        .unwrap();
    let (path, original) = file_of(&hub, "/100000Z-");
    let commits_before = hub.commits().len();

    // A fresh spool hands over the same window and batch id with other
    // records, together with two new windows.
    let batches: Vec<(u64, Vec<Reading>)> = vec![
        (0, readings(1000, 50)),
        (1, readings(2000, 50)),
        (2, readings(3000, 50)),
    ];
    let tasks: Vec<_> = batches
        .into_iter()
        .map(|(i, records)| {
            let mut sink = sink(&hub, scratch.path()).with_coalesce(Duration::from_secs(1));
            tokio::spawn(async move {
                sink.ingest(&window("air_temperature", i), records)
                    .await
                    .map(|r| r.accepted())
                    .map_err(|e| (e.error().clone(), e.records().len()))
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }

    let (error, returned) = results[0]
        .clone()
        .expect_err("the colliding window is refused");
    assert_eq!(error.class(), ErrorClass::Permanent, "{error}");
    assert!(matches!(error, HfError::Conflict { .. }), "{error:?}");
    assert_eq!(returned, 50, "the records come back, for the dead-letter");
    let text = error.to_string();
    assert!(
        text.contains(&path) && text.contains(REPO) && text.contains("branch main"),
        "{text}"
    );
    assert!(text.contains("never replaced"), "{text}");
    for (i, r) in results.iter().enumerate().skip(1) {
        assert!(
            matches!(r, Ok(50)),
            "window {i} did not land beside the conflict: {r:?}"
        );
    }

    // The earlier file is untouched, and nothing else was lost or doubled.
    assert_eq!(
        hub.download(REPO, "main", &path).unwrap(),
        original,
        "the file was replaced"
    );
    let rows: Vec<Reading> = dataset(&hub, REPO).into_values().flatten().collect();
    let mut want = earlier;
    want.extend(readings(2000, 50));
    want.extend(readings(3000, 50));
    support::assert_exactly(&hub, &want);
    assert_eq!(rows.len(), 150);
    // The two new windows shared one commit, which did not touch the path.
    let commits = hub.commits();
    assert_eq!(commits.len(), commits_before + 1, "{commits:#?}");
    let last = commits.last().unwrap();
    assert!(!last.paths.contains(&path), "{last:?}");
    assert_eq!(
        last.paths
            .iter()
            .filter(|p| p.ends_with(".parquet"))
            .count(),
        2,
        "{last:?}"
    );
}

/// Two sinks hand over the same window and batch id at once: with the same
/// bytes the file is committed once and both are told it landed; with other
/// bytes the first keeps the path and the second is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_round_never_commits_one_path_twice() {
    for same in [true, false] {
        let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let records = [readings(0, 40), readings(if same { 0 } else { 500 }, 40)];
        let tasks: Vec<_> = records
            .into_iter()
            .map(|records| {
                let mut sink = sink(&hub, scratch.path()).with_coalesce(Duration::from_secs(1));
                tokio::spawn(async move {
                    sink.ingest(&window("air_temperature", 0), records)
                        .await
                        .map(|r| r.accepted())
                        .map_err(|e| e.error().clone())
                })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        let parquet: Vec<_> = hub
            .files(REPO, "main")
            .into_iter()
            .filter(|f| f.path.ends_with(".parquet"))
            .collect();
        assert_eq!(parquet.len(), 1, "{parquet:?}");
        let commits = hub.commits();
        assert_eq!(commits.len(), 1, "one round, one commit: {commits:#?}");
        let ok = results.iter().filter(|r| r.is_ok()).count();
        if same {
            assert_eq!(ok, 2, "{results:?}");
        } else {
            assert_eq!(ok, 1, "{results:?}");
            let refused = results.iter().find_map(|r| r.clone().err()).unwrap();
            assert!(matches!(refused, HfError::Conflict { .. }), "{refused:?}");
            assert_eq!(refused.class(), ErrorClass::Permanent);
        }
    }
}
