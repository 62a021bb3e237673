//! Compaction on the fake Hub: a day's parts into one file in one commit
//! that readers see whole, replays recognised afterwards, a late part
//! absorbed by the next compaction, a commit that went through but lost
//! its answer, and a day not yet over refused.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: panics are failures

use crate::support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use meathook_core::{Deliveries, Delivery, DeliveryLog, DeliveryLogError, Sink, SinkError};
use meathook_hf::HfError;
use meathook_testkit::hub::{FakeHub, FakeHubConfig, HubFault, HubRoute};
use support::{REPO, readings, window};
use time::macros::date;

const PIPELINE: &str = "air_temperature";
const DAY: time::Date = date!(2026 - 11 - 23);
const FOLDER: &str = "data/air_temperature/2026-11-23";

/// Every row a reader of `rev` sees, as the `seq` of each, sorted.
fn rows_at(hub: &FakeHub, rev: &str) -> Vec<u64> {
    let mut rows: Vec<u64> = hub
        .files(REPO, rev)
        .into_iter()
        .filter(|f| f.path.ends_with(".parquet"))
        .flat_map(|f| support::read_parquet(hub.download(REPO, rev, &f.path).unwrap()))
        .map(|r| r.seq)
        .collect();
    rows.sort_unstable();
    rows
}

fn seqs(windows: impl IntoIterator<Item = u64>) -> Vec<u64> {
    let mut rows: Vec<u64> = windows
        .into_iter()
        .flat_map(|i| readings(i * 1000, 5))
        .map(|r| r.seq)
        .collect();
    rows.sort_unstable();
    rows
}

fn folder_files(hub: &FakeHub) -> Vec<String> {
    hub.files(REPO, "main")
        .into_iter()
        .filter_map(|f| {
            f.path
                .strip_prefix(&format!("{FOLDER}/"))
                .map(str::to_owned)
        })
        .collect()
}

/// A catalog that keeps what it is told.
#[derive(Debug, Default, Clone)]
struct Kept(Arc<Mutex<Vec<Delivery>>>);

impl DeliveryLog for Kept {
    fn record(&self, delivery: &Delivery) -> Result<(), DeliveryLogError> {
        self.0.lock().unwrap().push(delivery.clone());
        Ok(())
    }
}

/// Windows 0..4 of the day (hours 10 to 13), five readings each, and one
/// window of the next day (14 hours on).
async fn deliver(hub: &FakeHub, scratch: &std::path::Path, windows: &[u64]) {
    let mut sink = support::sink(hub, scratch);
    for &i in windows {
        sink.ingest(&window(PIPELINE, i), readings(i * 1000, 5))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_is_compacted_in_one_commit_that_every_reader_sees_whole() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    hub.create_repo(REPO);
    let scratch = tempfile::tempdir().unwrap();
    deliver(&hub, scratch.path(), &[0, 1, 2, 3, 14]).await;
    assert_eq!(folder_files(&hub).len(), 4);
    let before = hub.commits().len();

    let kept = Kept::default();
    let mut sink =
        support::sink(&hub, scratch.path()).with_deliveries(Deliveries::new(kept.clone()));
    let mut compactor = sink.compactor().await.unwrap();
    let done = compactor.compact_day(PIPELINE, DAY).await.unwrap().unwrap();
    assert_eq!((done.replaced, done.parts, done.rows), (4, 4, 20));

    // One commit: it added the compacted file and its record and deleted
    // the four parts.
    let commits = hub.commits();
    assert_eq!(commits.len(), before + 1);
    let files = folder_files(&hub);
    assert_eq!(files, [done.file.clone(), "_compacted.json".to_owned()]);
    // Every reader, at every commit of the branch, sees each row once.
    for commit in &commits {
        let rows = rows_at(&hub, &commit.oid);
        let unique: BTreeSet<u64> = rows.iter().copied().collect();
        assert_eq!(rows.len(), unique.len(), "a row twice at {}", commit.oid);
    }
    assert_eq!(rows_at(&hub, "main"), seqs([0, 1, 2, 3, 14]));
    // The next day is untouched; the catalog has the compacted file.
    assert_eq!(
        hub.files(REPO, "main")
            .iter()
            .filter(|f| f.path.starts_with("data/air_temperature/2026-11-24/"))
            .count(),
        1
    );
    let recorded = kept.0.lock().unwrap().clone();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].path, format!("{FOLDER}/{}", done.file));
    assert_eq!(recorded[0].replaces.len(), 4);
    assert_eq!(
        recorded[0].commit.as_deref(),
        Some(commits.last().unwrap().oid.as_str())
    );

    // Run again: nothing to do, no commit.
    assert_eq!(compactor.compact_day(PIPELINE, DAY).await.unwrap(), None);
    assert_eq!(hub.commits().len(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_after_compaction_are_recognised_and_a_late_part_is_absorbed_next_time() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    hub.create_repo(REPO);
    let scratch = tempfile::tempdir().unwrap();
    deliver(&hub, scratch.path(), &[0, 1, 2]).await;
    let mut sink = support::sink(&hub, scratch.path());
    let first = sink
        .compactor()
        .await
        .unwrap()
        .compact_day(PIPELINE, DAY)
        .await
        .unwrap()
        .unwrap();
    let commits = hub.commits().len();

    // The spool replays windows 0 and 2: nothing committed, nothing twice.
    for i in [0, 2] {
        sink.ingest(&window(PIPELINE, i), readings(i * 1000, 5))
            .await
            .unwrap();
    }
    assert_eq!(hub.commits().len(), commits);
    assert_eq!(rows_at(&hub, "main"), seqs([0, 1, 2]));
    assert_eq!(sink.file_counts().1, 2, "both found already there");

    // Other records under a compacted batch's identity: a conflict.
    let err = sink
        .ingest(&window(PIPELINE, 1), readings(77_000, 5))
        .await
        .unwrap_err();
    assert!(
        matches!(err.error(), HfError::Conflict { .. }),
        "{}",
        err.error()
    );
    assert_eq!(err.error().class(), meathook_core::ErrorClass::Permanent);

    // A genuinely new window of the day lands as a part; the next
    // compaction replaces the compacted file and that part.
    sink.ingest(&window(PIPELINE, 5), readings(5000, 5))
        .await
        .unwrap();
    assert_eq!(folder_files(&hub).len(), 3);
    assert_eq!(rows_at(&hub, "main"), seqs([0, 1, 2, 5]));
    let second = sink
        .compactor()
        .await
        .unwrap()
        .compact_day(PIPELINE, DAY)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(second.file, first.file);
    assert_eq!((second.replaced, second.parts), (2, 4));
    assert_eq!(
        folder_files(&hub),
        [second.file, "_compacted.json".to_owned()]
    );
    assert_eq!(rows_at(&hub, "main"), seqs([0, 1, 2, 5]));
}

/// The Hub applies the compaction's commit and answers 504: the retry
/// finds the folder compacted and changes nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_commit_applied_but_unanswered_is_not_made_twice() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    hub.create_repo(REPO);
    let scratch = tempfile::tempdir().unwrap();
    deliver(&hub, scratch.path(), &[0, 1, 2]).await;
    let before = hub.commits().len();
    let mut sink = support::sink(&hub, scratch.path());
    let mut compactor = sink.compactor().await.unwrap();
    hub.inject(HubRoute::Commit, [HubFault::ApplyThen504]);
    let outcome = compactor.compact_day(PIPELINE, DAY).await.unwrap();
    // The retry saw nothing left to do.
    assert_eq!(outcome, None);
    assert_eq!(hub.commits().len(), before + 1);
    assert_eq!(folder_files(&hub).len(), 2);
    assert_eq!(rows_at(&hub, "main"), seqs([0, 1, 2]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_not_over_is_refused_and_a_run_waits_out_the_horizon() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    hub.create_repo(REPO);
    let scratch = tempfile::tempdir().unwrap();
    deliver(&hub, scratch.path(), &[0, 1]).await;
    let mut sink = support::sink(&hub, scratch.path());
    let mut compactor = sink
        .compactor()
        .await
        .unwrap()
        .with_horizon(time::Duration::hours(2));
    let today = time::OffsetDateTime::now_utc().date();
    let err = compactor.compact_day(PIPELINE, today).await.unwrap_err();
    assert!(
        matches!(
            err,
            HfError::InvalidSetting {
                parameter: "date",
                ..
            }
        ),
        "{err}"
    );

    let early = compactor
        .run(time::macros::datetime!(2026-11-24 01:59 UTC))
        .await
        .unwrap();
    assert!(early.compacted.is_empty() && early.failed.is_empty());
    assert_eq!(early.unchanged, 1);
    let report = compactor
        .run(time::macros::datetime!(2026-11-24 02:00 UTC))
        .await
        .unwrap();
    assert_eq!(report.compacted.len(), 1, "{report:?}");
    assert_eq!(report.compacted[0].folder, FOLDER);
    assert_eq!(rows_at(&hub, "main"), seqs([0, 1]));
}
