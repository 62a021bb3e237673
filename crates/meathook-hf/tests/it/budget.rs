//! The commit budget under a paused clock: pipelines with 5-minute windows
//! for three simulated hours into one repository. Every file must arrive,
//! no sliding hour may hold more commits than the budget, and paced commits
//! keep every window's wait near one slot. The budget is the repository's:
//! commits made before a rebuild of the sinks (or by another writer) count.
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

const WINDOW: Duration = Duration::from_secs(300);
const PER_WINDOW: u64 = 5;

/// What a simulation left: the hub, the time of every commit it applied,
/// and how long each window waited from hand-over to committed.
struct Run {
    hub: FakeHub,
    commits: Vec<tokio::time::Instant>,
    waits: Vec<Duration>,
}

/// `pipelines` pipelines with 5-minute windows for `windows` windows
/// each, `budget` commits per hour and no coalescing delay, so that the
/// budget and its pacing, not coalescing, decide when commits go out.
/// Each pipeline's spool hands a window over `stagger` after the previous
/// pipeline's, so files arrive spread over the window as polls of
/// different intervals make them.
async fn simulate(pipelines: u64, windows: u64, budget: usize, stagger: Duration) -> Run {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for p in 0..pipelines {
        let mut sink = sink(&hub, scratch.path())
            .with_coalesce(Duration::ZERO)
            .with_commit_budget(budget, Duration::from_secs(3600));
        tasks.push(tokio::spawn(async move {
            sink.open().await.unwrap();
            let mut waits = Vec::new();
            for w in 0..windows {
                let ready = started + WINDOW * (w as u32 + 1) + stagger * p as u32;
                tokio::time::sleep_until(ready).await;
                let at = support::T0 + WINDOW * (w as u32);
                let window = WindowMeta::containing(format!("p{p:02}"), at, WINDOW)
                    .with_batch(BatchId::legacy(w * 10, w * 10 + 9));
                let first = (p * windows + w) * PER_WINDOW;
                sink.ingest(&window, readings(first, PER_WINDOW))
                    .await
                    .unwrap();
                waits.push(ready.elapsed());
            }
            waits
        }));
    }
    let mut waits = Vec::new();
    for t in tasks {
        waits.extend(t.await.unwrap());
    }
    waits.sort_unstable();
    let commits = hub.commits().iter().map(|c| c.at).collect();
    Run {
        hub,
        commits,
        waits,
    }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
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

fn assert_every_file(hub: &FakeHub, pipelines: u64, windows: u64) {
    let data = dataset(hub, REPO);
    assert_eq!(data.len() as u64, pipelines * windows, "files missing");
    let mut seqs: Vec<u64> = data.values().flatten().map(|r| r.seq).collect();
    seqs.sort_unstable();
    let want: Vec<u64> = (0..pipelines * windows * PER_WINDOW).collect();
    assert_eq!(seqs, want, "rows lost or duplicated");
}

/// Twenty pipelines with 5-minute windows make 240 files an hour against
/// the default 100 commits: paced one slot (36 s) apart, each commit takes
/// what has queued, so no window waits much more than a slot. Spent
/// greedily, the budget would be gone 40 minutes into the hour and windows
/// would wait for it to roll over (up to 25 minutes).
#[tokio::test(start_paused = true)]
async fn the_default_budget_paces_240_files_an_hour_with_every_wait_under_two_slots() {
    let (pipelines, windows) = (20, 36); // three hours
    let run = simulate(pipelines, windows, 100, Duration::from_secs(15)).await;
    assert_every_file(&run.hub, pipelines, windows);
    let most = max_in_any_hour(&run.commits);
    assert!(most <= 100, "{most} commits in one hour");
    let slot = Duration::from_secs(36);
    let (p99, max) = (percentile(&run.waits, 99), run.waits[run.waits.len() - 1]);
    assert!(
        p99 <= 2 * slot,
        "p99 wait {p99:?} (max {max:?}) is over two slots"
    );
    let gaps = run.commits.windows(2).map(|w| w[1] - w[0]);
    assert!(
        gaps.clone().all(|g| g >= slot),
        "commits closer than one slot: {:?}",
        gaps.min()
    );
}

#[tokio::test(start_paused = true)]
async fn a_tight_budget_queues_files_into_fewer_larger_commits() {
    let (pipelines, windows) = (10, 36);
    let run = simulate(pipelines, windows, 6, Duration::from_secs(20)).await;
    assert_every_file(&run.hub, pipelines, windows);
    let most = max_in_any_hour(&run.commits);
    assert!(most <= 6, "{most} commits in one hour");
    let files: usize = run.hub.commits().iter().map(|c| c.paths.len()).sum();
    assert!(
        files >= 360,
        "{files} paths in {} commits",
        run.hub.commits().len()
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

/// Ingests window `w` of pipeline `p` through a sink built for it alone,
/// as a process that starts, delivers one window and dies would.
async fn one_window_by_a_new_sink(hub: &FakeHub, scratch: &std::path::Path, budget: usize, w: u64) {
    let mut sink = sink(hub, scratch)
        .with_coalesce(Duration::ZERO)
        .with_commit_budget(budget, Duration::from_secs(3600));
    sink.open().await.unwrap();
    let window = WindowMeta::containing("p", support::T0 + WINDOW * (w as u32), WINDOW)
        .with_batch(BatchId::legacy(w * 10, w * 10 + 9));
    sink.ingest(&window, readings(w * PER_WINDOW, PER_WINDOW))
        .await
        .unwrap();
    drop(sink);
}

/// A crash loop, or a supervisor rebuilding its sinks: every sink is
/// dropped after one window and a new one built at once, so every commit
/// is a new committer's first. With four commits an hour, eight windows
/// still take two hours, because each new committer counts the branch's
/// commits of the last hour before it sends its own.
#[tokio::test(start_paused = true)]
async fn a_crash_loop_of_rebuilt_sinks_stays_within_the_budget() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let started = tokio::time::Instant::now();
    for w in 0..8 {
        one_window_by_a_new_sink(&hub, scratch.path(), 4, w).await;
    }
    let times: Vec<_> = hub.commits().iter().map(|c| c.at).collect();
    assert_eq!(times.len(), 8);
    let most = max_in_any_hour(&times);
    assert!(most <= 4, "{most} commits in one hour across rebuilds");
    assert!(
        times[4] - started >= Duration::from_secs(3600),
        "the fifth commit went out after {:?}",
        times[4] - started
    );
    assert_every_file(&hub, 1, 8);
}

/// Another writer's commits to the branch count against the budget too:
/// after three of its commits, a sink with a budget of four commits once
/// and then waits for the other writer's first commit to leave the hour.
#[tokio::test(start_paused = true)]
async fn another_writers_commits_count_against_the_budget() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    let http = reqwest::Client::new();
    for i in 0..3 {
        let body = format!(
            "{}\n{}\n",
            serde_json::json!({"key": "header", "value": {"summary": format!("other {i}")}}),
            serde_json::json!({"key": "file", "value": {
                "path": format!("notes/{i}.txt"), "content": "b3RoZXI=", "encoding": "base64"}})
        );
        let answer = http
            .post(format!(
                "{}/api/datasets/{REPO}/commit/main",
                hub.endpoint()
            ))
            .bearer_auth(support::TOKEN)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{}", answer.status());
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    let scratch = tempfile::tempdir().unwrap();
    for w in 0..2 {
        one_window_by_a_new_sink(&hub, scratch.path(), 4, w).await;
    }
    let times: Vec<_> = hub.commits().iter().map(|c| c.at).collect();
    assert_eq!(times.len(), 5);
    let most = max_in_any_hour(&times);
    assert!(most <= 4, "{most} commits in one hour with another writer");
    assert!(
        times[4] - times[0] >= Duration::from_secs(3600),
        "the sink's second commit did not wait for the other writer's first to leave the hour"
    );
    assert_every_file(&hub, 1, 2);
}

/// Real processes, restarted at once after a SIGKILL: each builds a sink
/// with three commits per 12 s (one slot every 4 s) and delivers windows
/// until it is killed 5 s after it started. Three such lives make 15 s in
/// which a budget kept in memory would allow five commits; counted from
/// the branch's history, any 12 s hold at most three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_processes_stay_within_the_budget() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    for life in 0..3u64 {
        let mut child = meathook_testkit::test_in_child!("restart_child");
        child
            .env(
                "MEATHOOK_HF_BUDGET_CHILD",
                scratch.path().join(life.to_string()),
            )
            .env("MEATHOOK_HF_ENDPOINT", hub.endpoint())
            .env("MEATHOOK_HF_LIFE", life.to_string())
            .stdout(std::process::Stdio::null());
        let mut child = child.spawn().unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let times: Vec<_> = hub.commits().iter().map(|c| c.at).collect();
    assert!(
        times.len() >= 3,
        "only {} commits in three lives",
        times.len()
    );
    let window = Duration::from_secs(12);
    let most = times
        .iter()
        .map(|start| {
            times
                .iter()
                .filter(|t| **t >= *start && **t < *start + window)
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(
        most <= 3,
        "{most} commits in 12 s across restarts: {times:?}"
    );
    // What was committed is whole: every committed file holds its window.
    for rows in dataset(&hub, REPO).values() {
        assert_eq!(rows.len() as u64, PER_WINDOW);
    }
}

/// One life of the restart test (runs only when the parent asks).
#[test]
fn restart_child() {
    let (Ok(scratch), Ok(endpoint), Ok(life)) = (
        std::env::var("MEATHOOK_HF_BUDGET_CHILD"),
        std::env::var("MEATHOOK_HF_ENDPOINT"),
        std::env::var("MEATHOOK_HF_LIFE"),
    ) else {
        return;
    };
    let life: u64 = life.parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut sink = meathook_hf::HfSink::<support::Reading>::new(
            reqwest::Client::new(),
            REPO,
            support::TOKEN,
        )
        .with_endpoint(endpoint)
        .with_scratch_dir(scratch)
        .with_coalesce(Duration::ZERO)
        .with_commit_budget(3, Duration::from_secs(12));
        sink.open().await.unwrap();
        for w in life * 100.. {
            let window = WindowMeta::containing("p", support::T0 + WINDOW * (w as u32), WINDOW)
                .with_batch(BatchId::legacy(w * 10, w * 10 + 9));
            sink.ingest(&window, readings(w * PER_WINDOW, PER_WINDOW))
                .await
                .unwrap();
        }
    });
}
