//! HfSink against the fake Hub: a clean run, then one fault at a time at
//! each phase of a commit. After each, the dataset must hold every record
//! exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use crate::support;

use std::time::{Duration, Instant};

use meathook_core::{ErrorClass, Sink, SinkError};
use meathook_testkit::hub::{FakeHub, FakeHubConfig, HubFault, HubRoute};
use support::{REPO, Reading, assert_exactly, readings, sink, window};

/// Delivers three hourly windows of 200 readings; returns what was sent.
async fn deliver_three(hub: &FakeHub) -> Vec<Reading> {
    let scratch = tempfile::tempdir().unwrap();
    let mut sink = sink(hub, scratch.path());
    sink.open().await.unwrap();
    let mut sent = Vec::new();
    for i in 0..3 {
        let records = readings(i * 200, 200);
        sent.extend(records.clone());
        let receipt = sink
            .ingest(&window("air_temperature", i), records)
            .await
            .unwrap_or_else(|e| panic!("window {i} refused: {}", e.error()));
        assert_eq!(receipt.accepted(), 200);
    }
    sent
}

/// Objects above 1 KiB go up in 1 KiB parts, so every window is multipart.
fn multipart() -> FakeHubConfig {
    FakeHubConfig {
        multipart_threshold: 1024,
        chunk_size: 1024,
        ..FakeHubConfig::default()
    }
}

#[tokio::test]
async fn windows_become_lfs_files_with_a_dataset_card() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    let sent = deliver_three(&hub).await;
    assert_exactly(&hub, &sent);

    let files = hub.files(REPO, "main");
    let parquet: Vec<_> = files
        .iter()
        .filter(|f| f.path.ends_with(".parquet"))
        .collect();
    assert_eq!(parquet.len(), 3, "{files:?}");
    for f in &parquet {
        assert!(
            f.lfs_oid.is_some(),
            "{} was committed inline, not via LFS",
            f.path
        );
        assert!(f.path.starts_with("data/air_temperature/"), "{}", f.path);
    }
    let card = String::from_utf8(hub.download(REPO, "main", "README.md").unwrap()).unwrap();
    assert!(card.contains("config_name: air_temperature"), "{card}");
    assert!(card.contains("data/air_temperature/**/*.parquet"), "{card}");
    assert_eq!(
        hub.leaked_authorization(),
        0,
        "the token went to an upload URL"
    );
}

#[tokio::test]
async fn multipart_uploads_join_their_parts() {
    let hub = FakeHub::start(multipart()).await.unwrap();
    let sent = deliver_three(&hub).await;
    assert_exactly(&hub, &sent);
    assert!(hub.requests(HubRoute::Complete) >= 3);
    assert!(
        hub.requests(HubRoute::Put) > hub.requests(HubRoute::Complete),
        "each window should have gone up in several parts"
    );
    assert_eq!(hub.leaked_authorization(), 0);
}

#[tokio::test]
async fn two_server_errors_at_each_phase_lose_and_duplicate_nothing() {
    let phases = [
        (HubRoute::Preupload, false),
        (HubRoute::Batch, false),
        (HubRoute::Put, false),
        (HubRoute::Put, true),
        (HubRoute::Complete, true),
        (HubRoute::Verify, false),
        (HubRoute::Commit, false),
    ];
    for (route, parts) in phases {
        let config = if parts {
            multipart()
        } else {
            FakeHubConfig::default()
        };
        let hub = FakeHub::start(config).await.unwrap();
        hub.inject(route, [HubFault::Status(500), HubFault::Status(503)]);
        let sent = deliver_three(&hub).await;
        assert_exactly(&hub, &sent);
        assert!(
            hub.requests(route) >= 3,
            "{route:?}: the faults were never hit ({} requests)",
            hub.requests(route)
        );
    }
}

#[tokio::test]
async fn connection_resets_are_retried() {
    for route in [
        HubRoute::Preupload,
        HubRoute::Batch,
        HubRoute::Put,
        HubRoute::Commit,
    ] {
        let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
        hub.inject(route, [HubFault::Reset]);
        let sent = deliver_three(&hub).await;
        assert_exactly(&hub, &sent);
        assert!(
            hub.requests(route) >= 2,
            "{route:?}: the reset was never hit"
        );
    }
}

#[tokio::test]
async fn a_commit_applied_then_answered_504_is_not_committed_again() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    hub.inject(HubRoute::Commit, [HubFault::ApplyThen504]);
    let sent = deliver_three(&hub).await;
    assert_exactly(&hub, &sent);
    // The first window's commit was applied despite the 504; the retry's
    // preupload found the file and committed nothing. Then one commit for
    // each other window.
    let commits = hub.commits();
    assert_eq!(commits.len(), 3, "{commits:#?}");
    let first_window_commits = commits
        .iter()
        .filter(|c| c.paths.iter().any(|p| p.contains("/100000Z-")))
        .count();
    assert_eq!(first_window_commits, 1, "{commits:#?}");
}

#[tokio::test]
async fn a_429_waits_as_long_as_the_hub_says() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    hub.inject(
        HubRoute::Commit,
        [HubFault::RateLimited {
            remaining: 0,
            reset: 1,
            retry_after: None,
        }],
    );
    let started = Instant::now();
    let sent = deliver_three(&hub).await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retried before the RateLimit reset (t=1): {:?}",
        started.elapsed()
    );
    assert_exactly(&hub, &sent);
    assert_eq!(hub.requests(HubRoute::Commit), 4);
}

#[tokio::test]
async fn a_stale_parent_reruns_preupload_and_commits_once() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    hub.inject(HubRoute::Commit, [HubFault::StaleParent]);
    let sent = deliver_three(&hub).await;
    assert_exactly(&hub, &sent);
    assert_eq!(hub.commits().len(), 3);
    assert_eq!(
        hub.requests(HubRoute::Preupload),
        4,
        "the 412 should have sent the round back to preupload once"
    );
}

#[tokio::test]
async fn a_replayed_window_is_found_not_uploaded_again() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    let sent = deliver_three(&hub).await;
    let puts = hub.requests(HubRoute::Put);
    let commits = hub.commits().len();
    // The spool replays the same batch after a crash: same window, same
    // batch id, same records.
    let again = deliver_three(&hub).await;
    assert_eq!(sent, again);
    assert_exactly(&hub, &sent);
    assert_eq!(hub.requests(HubRoute::Put), puts, "uploaded again");
    assert_eq!(hub.commits().len(), commits, "committed again");
}

#[tokio::test]
async fn hub_server_errors_are_transient_and_name_the_repository() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    hub.inject(HubRoute::Preupload, (0..5).map(|_| HubFault::Status(502)));
    let scratch = tempfile::tempdir().unwrap();
    let mut sink = sink(&hub, scratch.path());
    let err = sink
        .ingest(&window("air_temperature", 0), readings(0, 10))
        .await
        .expect_err("five 502s exhaust the round's attempts");
    assert_eq!(err.error().class(), ErrorClass::Transient);
    assert!(err.error().to_string().contains(REPO), "{}", err.error());
    assert_eq!(err.records().len(), 10, "the records come back");
    // The next attempt (the spool's) succeeds.
    sink.ingest(&window("air_temperature", 0), readings(0, 10))
        .await
        .unwrap();
    assert_exactly(&hub, &readings(0, 10));
}

/// With a catalog, every committed window is recorded with its commit id
/// before `ingest` returns; a replay that finds the file records it again
/// (the catalog keys on destination and path) without a commit id.
#[tokio::test]
async fn committed_windows_are_recorded_in_the_catalog_manifest() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let manifest = meathook_catalog::Manifest::open_async(work.path().join("deliveries.jsonl"))
        .await
        .unwrap();
    let mut sink = sink(&hub, work.path()).with_deliveries(manifest.deliveries());
    sink.ingest(&window("air_temperature", 0), readings(0, 40))
        .await
        .unwrap();
    sink.ingest(&window("air_temperature", 0), readings(0, 40))
        .await
        .unwrap();

    let mut records = Vec::new();
    meathook_catalog::for_each_record(manifest.path(), |r| records.push(r)).unwrap();
    assert_eq!(records.len(), 2, "{records:#?}");
    let files = hub.files(REPO, "main");
    let file = files.iter().find(|f| f.path.ends_with(".parquet")).unwrap();
    let commit = hub.commits()[0].oid.clone();
    for r in &records {
        assert_eq!(r.destination, format!("hf://datasets/{REPO}"));
        assert_eq!(r.path, file.path);
        assert_eq!(r.rows, 40);
        assert_eq!(r.bytes, file.size);
        assert_eq!(Some(r.sha256.as_str()), file.lfs_oid.as_deref());
        assert_eq!(r.pipeline, "air_temperature");
    }
    assert_eq!(records[0].commit.as_deref(), Some(commit.as_str()));
    assert_eq!(records[1].commit, None, "the replay made no commit");
}

/// Windows of seven pipelines ready at once share commits, never more
/// than `max_files_per_commit` files each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_ready_together_share_commits_of_at_most_max_files() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let tasks: Vec<_> = (0..7u64)
        .map(|p| {
            let mut sink = sink(&hub, scratch.path())
                .with_coalesce(Duration::from_secs(1))
                .with_max_files_per_commit(3);
            tokio::spawn(async move {
                sink.ingest(&window(&format!("p{p}"), 0), readings(p * 100, 100))
                    .await
                    .map(|_| sink)
            })
        })
        .collect();
    let mut sinks = Vec::new();
    for t in tasks {
        sinks.push(t.await.unwrap().unwrap());
    }
    let sent: Vec<Reading> = (0..7).flat_map(|p| readings(p * 100, 100)).collect();
    assert_exactly(&hub, &sent);
    let commits = hub.commits();
    let sizes: Vec<usize> = commits
        .iter()
        .map(|c| c.paths.iter().filter(|p| p.ends_with(".parquet")).count())
        .collect();
    assert!(sizes.iter().all(|n| *n <= 3), "{sizes:?}");
    assert_eq!(
        commits.len(),
        3,
        "7 files in commits of 3, 3 and 1: {sizes:?}"
    );
}

/// The upload host refusing a presigned URL (403: it expired while a large
/// file went up; 400: S3's `RequestTimeout`) speaks for that URL, not for
/// the token: the round retries with new URLs and every window lands.
#[tokio::test]
async fn an_upload_host_refusal_is_retried_with_new_urls() {
    for (route, status, parts) in [
        (HubRoute::Put, 403, false),
        (HubRoute::Put, 400, false),
        (HubRoute::Put, 403, true),
        (HubRoute::Complete, 403, true),
        (HubRoute::Complete, 404, true),
    ] {
        let config = if parts {
            multipart()
        } else {
            FakeHubConfig::default()
        };
        let hub = FakeHub::start(config).await.unwrap();
        hub.inject(route, [HubFault::Status(status)]);
        let sent = deliver_three(&hub).await;
        assert_exactly(&hub, &sent);
        assert!(
            hub.requests(route) >= 2,
            "{route:?} {status}: the refusal was never hit"
        );
    }
}
