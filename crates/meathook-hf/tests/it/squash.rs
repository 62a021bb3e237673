//! The history squash on the fake Hub (`HubCompactor::squash_history`):
//! the branch lists one commit afterwards and holds every file and row it
//! held; the squash is paced and counted against the commit budget like a
//! commit; refusals and failures are classified like every call's; sinks
//! go on committing on top of it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: panics are failures

use crate::support;

use std::time::Duration;

use meathook_core::{ErrorClass, Sink, SinkError};
use meathook_hf::HfError;
use meathook_testkit::hub::{FakeHub, FakeHubConfig, HubFault, HubRoute};
use serde_json::Value;
use support::{REPO, dataset, readings, window};

const PIPELINE: &str = "air_temperature";

/// The commits the Hub lists for `main`, newest first: (id, title).
async fn listed(hub: &FakeHub) -> Vec<(String, String)> {
    let url = format!("{}/api/datasets/{REPO}/commits/main", hub.endpoint());
    let body = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    let page: Vec<Value> = serde_json::from_slice(&body).unwrap();
    page.iter()
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap().to_owned();
            (text("id"), text("title"))
        })
        .collect()
}

/// Windows `0..n` of the pipeline, five readings each, through `sink`.
async fn deliver(sink: &mut meathook_hf::HfSink<support::Reading>, windows: std::ops::Range<u64>) {
    for i in windows {
        sink.ingest(&window(PIPELINE, i), readings(i * 1000, 5))
            .await
            .unwrap_or_else(|e| panic!("window {i} refused: {}", e.error()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_squash_leaves_one_commit_with_every_file_and_row_and_sinks_go_on() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut sink = support::sink(&hub, scratch.path());
    deliver(&mut sink, 0..3).await;
    let before = listed(&hub).await;
    assert!(before.len() >= 4, "{before:?}");
    let files = hub.files(REPO, "main");
    let rows = dataset(&hub, REPO);
    assert_eq!(rows.len(), 3);

    let mut compactor = sink.compactor().await.unwrap();
    let id = compactor.squash_history("a fresh start").await.unwrap();

    assert_eq!(hub.resolve(REPO, "main").as_deref(), Some(id.as_str()));
    assert_eq!(
        listed(&hub).await,
        [(id.clone(), "a fresh start".to_owned())]
    );
    assert_eq!(hub.files(REPO, "main"), files, "the files are kept");
    assert_eq!(dataset(&hub, REPO), rows, "every row is kept");
    for (old, _) in &before {
        assert!(hub.resolve(REPO, old).is_none(), "{old} still resolves");
    }
    assert_eq!(hub.requests(HubRoute::SuperSquash), 1);
    let log = hub.commits();
    let last = log.last().unwrap();
    assert!(last.squashed && last.oid == id, "{last:?}");

    // The sink commits on top of it, and the card still lists the pipeline.
    deliver(&mut sink, 3..4).await;
    let after = listed(&hub).await;
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(after[1].0, id);
    assert_eq!(dataset(&hub, REPO).len(), 4);
    let mut seqs: Vec<u64> = dataset(&hub, REPO)
        .into_values()
        .flatten()
        .map(|r| r.seq)
        .collect();
    seqs.sort_unstable();
    let want: Vec<u64> = (0..4).flat_map(|i| i * 1000..i * 1000 + 5).collect();
    assert_eq!(seqs, want);
    let card = hub.download(REPO, "main", "README.md").unwrap();
    assert!(String::from_utf8(card).unwrap().contains(PIPELINE));

    // Without a message, the commit says what it was.
    compactor.squash_history(" ").await.unwrap();
    let titles: Vec<String> = listed(&hub).await.into_iter().map(|(_, t)| t).collect();
    assert_eq!(titles, ["meathook: squash the history of main"]);
}

/// With two commits an hour (one slot = 30 minutes), the squash waits one
/// slot after the sink's commit, and the sink's next commit waits one slot
/// after the squash: it was counted as a commit request. No hour holds
/// more than two of the three.
#[tokio::test(start_paused = true)]
async fn a_squash_is_paced_and_counted_against_the_commit_budget() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let slot = Duration::from_secs(1800);
    let mut sink = support::sink(&hub, scratch.path())
        .with_coalesce(Duration::ZERO)
        .with_commit_budget(2, Duration::from_secs(3600));
    sink.open().await.unwrap();
    deliver(&mut sink, 0..1).await;
    let mut compactor = sink.compactor().await.unwrap();
    compactor.squash_history("squash").await.unwrap();
    deliver(&mut sink, 1..2).await;

    let log = hub.commits();
    assert_eq!(log.len(), 3, "{log:#?}");
    assert!(log[1].squashed);
    let (first, squash, next) = (log[0].at, log[1].at, log[2].at);
    assert!(
        squash - first >= slot,
        "the squash went out {:?} after the last commit, inside its slot",
        squash - first
    );
    assert!(
        next - squash >= slot,
        "the next commit went out {:?} after the squash: the squash was not counted",
        next - squash
    );
    assert!(
        next - first >= Duration::from_secs(3600),
        "three in one hour"
    );
    assert_eq!(listed(&hub).await.len(), 2);
}

/// A 429 on the squash is a transient error, and its pause holds the
/// sinks' next round back as a commit's would.
#[tokio::test(start_paused = true)]
async fn a_rate_limited_squash_pauses_the_sinks_rounds() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut sink = support::sink(&hub, scratch.path()).with_coalesce(Duration::ZERO);
    sink.open().await.unwrap();
    deliver(&mut sink, 0..1).await;
    let mut compactor = sink.compactor().await.unwrap();
    hub.inject(
        HubRoute::SuperSquash,
        [HubFault::RateLimited {
            remaining: 0,
            reset: 600,
            retry_after: None,
        }],
    );
    let refused = tokio::time::Instant::now();
    let err = compactor.squash_history("squash").await.unwrap_err();
    assert!(
        matches!(err, HfError::RateLimited { wait, .. } if wait == Duration::from_secs(600)),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Transient);
    deliver(&mut sink, 1..2).await;
    let next = hub.commits().last().unwrap().at;
    assert!(
        next - refused >= Duration::from_secs(600),
        "the sink committed {:?} after the 429, inside its pause",
        next - refused
    );
    assert!(hub.commits().iter().all(|c| !c.squashed));
}

/// A 5xx is transient and a refused token permanent, each naming the
/// call; neither squashed anything. A squash the Hub applied but answered
/// 504 is a transient error, and squashing again changes no file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_failures_are_classified_and_change_nothing() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut sink = support::sink(&hub, scratch.path());
    deliver(&mut sink, 0..2).await;
    let before = listed(&hub).await;
    let files = hub.files(REPO, "main");
    let mut compactor = sink.compactor().await.unwrap();
    hub.inject(
        HubRoute::SuperSquash,
        [HubFault::Status(500), HubFault::Status(401)],
    );

    let err = compactor.squash_history("squash").await.unwrap_err();
    assert!(
        matches!(
            err,
            HfError::Server {
                status: 500,
                call: "super-squash",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Transient);
    let err = compactor.squash_history("squash").await.unwrap_err();
    assert!(
        matches!(
            err,
            HfError::Unauthorized {
                call: "super-squash",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(err.to_string().contains("HF_TOKEN"), "{err}");
    assert_eq!(listed(&hub).await, before, "nothing was squashed");

    hub.inject(HubRoute::SuperSquash, [HubFault::ApplyThen504]);
    let err = compactor.squash_history("squash").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Transient, "{err}");
    assert_eq!(listed(&hub).await.len(), 1, "applied before the 504");
    let id = compactor.squash_history("squash").await.unwrap();
    assert_eq!(listed(&hub).await, [(id, "squash".to_owned())]);
    assert_eq!(hub.files(REPO, "main"), files);
    assert_eq!(hub.requests(HubRoute::SuperSquash), 4);
}

/// A squash of a branch the repository does not have is a permanent
/// `NotFound` naming the branch, and creates nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_branch_is_a_permanent_not_found() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    hub.create_repo(REPO);
    let scratch = tempfile::tempdir().unwrap();
    let mut sink = support::sink(&hub, scratch.path()).with_branch("dev");
    let mut compactor = sink.compactor().await.unwrap();
    let err = compactor.squash_history("squash").await.unwrap_err();
    assert!(
        matches!(&err, HfError::NotFound { branch, code, .. } if branch == "dev" && code == "RevisionNotFound"),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(hub.resolve(REPO, "dev").is_none());
}
