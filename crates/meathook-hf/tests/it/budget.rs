//! The commit budget under a paused clock: ten pipelines with 5-minute
//! windows for three simulated hours into one repository. Every file must
//! arrive, and no sliding hour may hold more commits than the budget.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)] // tests; small fixed sizes

use crate::support;

use std::time::Duration;

use meathook_core::{BatchId, Sink, WindowMeta};
use meathook_testkit::hub::{FakeHub, FakeHubConfig};
use support::{REPO, dataset, readings, sink};

const PIPELINES: u64 = 10;
const WINDOW: Duration = Duration::from_secs(300);
const WINDOWS: u64 = 36; // three hours
const PER_WINDOW: u64 = 5;

/// Runs the simulation with `budget` commits per hour and no coalescing
/// delay: unthrottled, that is 120 commits an hour, so the budget, not
/// coalescing, is what holds commits back.
async fn simulate(budget: usize) -> (FakeHub, Vec<tokio::time::Instant>) {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for p in 0..PIPELINES {
        let mut sink = sink(&hub, scratch.path())
            .with_coalesce(Duration::ZERO)
            .with_commit_budget(budget, Duration::from_secs(3600));
        tasks.push(tokio::spawn(async move {
            sink.open().await.unwrap();
            for w in 0..WINDOWS {
                // The window closes at the end of its five minutes; each
                // pipeline's spool hands it over 20 s after the previous
                // pipeline's, so no two files are ready together.
                let ready = started + WINDOW * (w as u32 + 1) + Duration::from_secs(20 * p);
                tokio::time::sleep_until(ready).await;
                let at = support::T0 + WINDOW * (w as u32);
                let window = WindowMeta::containing(format!("p{p:02}"), at, WINDOW)
                    .with_batch(BatchId::legacy(w * 10, w * 10 + 9));
                let first = (p * WINDOWS + w) * PER_WINDOW;
                sink.ingest(&window, readings(first, PER_WINDOW))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let times = hub.commits().iter().map(|c| c.at).collect();
    (hub, times)
}

fn max_in_any_hour(times: &[tokio::time::Instant]) -> usize {
    times
        .iter()
        .map(|start| {
            times
                .iter()
                .filter(|t| **t >= *start && **t < *start + Duration::from_secs(3600))
                .count()
        })
        .max()
        .unwrap_or(0)
}

fn assert_every_file(hub: &FakeHub) {
    let data = dataset(hub, REPO);
    assert_eq!(data.len() as u64, PIPELINES * WINDOWS, "files missing");
    let mut seqs: Vec<u64> = data.values().flatten().map(|r| r.seq).collect();
    seqs.sort_unstable();
    let want: Vec<u64> = (0..PIPELINES * WINDOWS * PER_WINDOW).collect();
    assert_eq!(seqs, want, "rows lost or duplicated");
}

#[tokio::test(start_paused = true)]
async fn the_default_budget_holds_360_windows_to_100_commits_an_hour() {
    let (hub, times) = simulate(100).await;
    assert_every_file(&hub);
    let most = max_in_any_hour(&times);
    assert!(most <= 100, "{most} commits in one hour");
    // Without a budget ten pipelines would commit 120 times an hour.
    assert!(
        most >= 90,
        "the budget was not what limited commits: {most}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_tight_budget_queues_files_into_fewer_larger_commits() {
    let (hub, times) = simulate(6).await;
    assert_every_file(&hub);
    let most = max_in_any_hour(&times);
    assert!(most <= 6, "{most} commits in one hour");
    let files: usize = hub.commits().iter().map(|c| c.paths.len()).sum();
    assert!(
        files >= 360,
        "{files} paths in {} commits",
        hub.commits().len()
    );
}

/// A 429 on a commit is one pause, for as long as the Hub asked, and one
/// request of the budget: with two commits an hour, the refused request
/// and its retry fill the hour, so the retry goes out after the pause
/// (not an hour later, as it would if the refused request counted twice)
/// and the next window's commit waits until the refused request has left
/// the hour.
#[tokio::test(start_paused = true)]
async fn a_429_is_one_pause_and_one_request_of_the_budget() {
    use meathook_testkit::hub::{HubFault, HubRoute};

    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    hub.inject(
        HubRoute::Commit,
        [HubFault::RateLimited {
            remaining: 0,
            reset: 30,
            retry_after: None,
        }],
    );
    let scratch = tempfile::tempdir().unwrap();
    let hour = Duration::from_secs(3600);
    let mut sink = sink(&hub, scratch.path())
        .with_coalesce(Duration::ZERO)
        .with_commit_budget(2, hour);
    sink.open().await.unwrap();
    let started = tokio::time::Instant::now();
    for w in 0..2u64 {
        let window = WindowMeta::containing("p", support::T0 + WINDOW * (w as u32), WINDOW)
            .with_batch(BatchId::legacy(w * 10, w * 10 + 9));
        sink.ingest(&window, readings(w * PER_WINDOW, PER_WINDOW))
            .await
            .unwrap();
    }
    let commits = hub.commits();
    assert_eq!(commits.len(), 2, "{commits:#?}");
    assert_eq!(
        hub.requests(HubRoute::Commit),
        3,
        "one refused, two applied"
    );
    let retried = commits[0].at - started;
    assert!(
        retried >= Duration::from_secs(30) && retried < Duration::from_secs(600),
        "the refused commit was retried after {retried:?}, not after the 30 s the Hub asked for"
    );
    let next = commits[1].at - started;
    assert!(
        next >= hour,
        "the second window was committed after {next:?}, inside the hour of two requests"
    );
    let data = dataset(&hub, REPO);
    let mut seqs: Vec<u64> = data.values().flatten().map(|r| r.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..2 * PER_WINDOW).collect::<Vec<_>>());
}
