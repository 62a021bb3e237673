//! 401, 403 and 404: permanent, said clearly (which repository, which
//! token variable, what to do), never spun on; the token never appears in
//! an error, a `Debug`, a log line or a file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use crate::support;

use std::collections::HashMap;
use std::time::Duration;

use meathook_core::{Backoff, ErrorClass, FlushPolicy, Sink, SinkError};
use meathook_hf::HfError;
use meathook_spool::DiskSpool;
use meathook_testkit::hub::{FakeHub, FakeHubConfig, HubRoute, TokenRole};
use support::{REPO, TOKEN, readings, sink, window};

fn hub_with(tokens: &[(&str, TokenRole)], auto_create: bool) -> FakeHubConfig {
    FakeHubConfig {
        tokens: tokens
            .iter()
            .map(|(t, r)| ((*t).to_owned(), *r))
            .collect::<HashMap<_, _>>(),
        auto_create,
        ..FakeHubConfig::default()
    }
}

/// One ingest against `config`; returns the error text and the requests
/// the fake received.
async fn refused(config: FakeHubConfig) -> (String, u64, FakeHub) {
    let hub = FakeHub::start(config).await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut sink = sink(&hub, scratch.path());
    let err = sink
        .ingest(&window("air_temperature", 0), readings(0, 50))
        .await
        .expect_err("the Hub refuses this sink");
    assert_eq!(
        err.error().class(),
        ErrorClass::Permanent,
        "{}",
        err.error()
    );
    assert_eq!(err.records().len(), 50, "the records come back");
    let text = format!("{} {:?}", err.error(), err.error());
    assert!(!text.contains(TOKEN), "the token leaked: {text}");
    assert!(!format!("{sink:?}").contains(TOKEN));
    (err.error().to_string(), hub.total_requests(), hub)
}

#[tokio::test]
async fn a_bad_token_is_refused_once_and_named() {
    let (message, requests, hub) = refused(hub_with(&[("hf_other", TokenRole::Write)], true)).await;
    assert!(message.contains("401"), "{message}");
    assert!(message.contains("HF_TOKEN"), "{message}");
    assert!(message.contains(REPO), "{message}");
    assert_eq!(requests, 1, "one whoami, no retries");
    assert_eq!(hub.requests(HubRoute::Commit), 0);
}

#[tokio::test]
async fn a_read_only_token_is_forbidden() {
    let (message, requests, _hub) = refused(hub_with(&[(TOKEN, TokenRole::Read)], true)).await;
    assert!(message.contains("403"), "{message}");
    assert!(message.contains("write access"), "{message}");
    assert!(message.contains("HF_TOKEN"), "{message}");
    assert_eq!(requests, 1, "one whoami, no retries");
}

#[tokio::test]
async fn a_missing_dataset_is_not_found() {
    let (message, requests, hub) = refused(hub_with(&[], false)).await;
    assert!(message.contains("404"), "{message}");
    assert!(message.contains(REPO), "{message}");
    assert!(message.contains("create"), "says what to do: {message}");
    assert_eq!(hub.requests(HubRoute::Preupload), 1, "no retries");
    assert_eq!(
        requests, 3,
        "whoami, the commits listing (nothing spent) and one preupload"
    );
}

#[tokio::test]
async fn a_missing_dataset_is_created_when_asked() {
    let hub = FakeHub::start(hub_with(&[], false)).await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut sink = sink(&hub, scratch.path()).with_create_if_missing(true);
    sink.open().await.unwrap();
    sink.ingest(&window("air_temperature", 0), readings(0, 50))
        .await
        .unwrap();
    support::assert_exactly(&hub, &readings(0, 50));
    assert_eq!(hub.requests(HubRoute::CreateRepo), 1);
}

/// Behind a spool, a permanent refusal is dead-lettered after the spool's
/// attempts, and then the fake hears nothing more.
#[tokio::test]
async fn behind_a_spool_a_permanent_refusal_is_dead_lettered_not_spun_on() {
    let hub = FakeHub::start(hub_with(&[], false)).await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inner = sink(&hub, scratch.path()).with_token_check(false);
    let mut spool = DiskSpool::new(inner, dir.path(), FlushPolicy::hourly())
        .with_dead_letter_after(3)
        .with_backoff(Backoff::new(
            Duration::from_millis(10),
            Duration::from_millis(20),
        ));
    spool.open().await.unwrap();
    spool
        .ingest(&window("air_temperature", 0), readings(0, 50))
        .await
        .unwrap();
    let _ = spool.flush().await;
    let dead = dir.path().join("dead-letter");
    let mut waited = Duration::ZERO;
    while !std::fs::read_dir(&dead).is_ok_and(|d| d.count() > 0) {
        assert!(waited < Duration::from_secs(20), "nothing dead-lettered");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    let after = hub.requests(HubRoute::Preupload);
    assert_eq!(
        after, 3,
        "one preupload per spool attempt, no retries inside"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hub.requests(HubRoute::Preupload), after, "still retrying");
    let reason: String = std::fs::read_dir(&dead)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "reason"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(reason.contains("404") && reason.contains(REPO), "{reason}");
    spool.close().await;
}

/// Every log line at every level, through refusals, retries and a
/// success, and every file the sink and the spool wrote.
#[tokio::test]
async fn the_token_appears_in_no_log_line_and_no_file() {
    let (logs, _guard) = meathook_testkit::logs::LogCapture::start(tracing::Level::TRACE);

    for config in [
        hub_with(&[("hf_other", TokenRole::Write)], true),
        hub_with(&[(TOKEN, TokenRole::Read)], true),
        hub_with(&[], false),
    ] {
        let _ = refused(config).await;
    }
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    hub.inject(
        HubRoute::Commit,
        [meathook_testkit::hub::HubFault::Status(500)],
    );
    let scratch = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A repository of this test's own: every sink of one repository in the
    // process shares one committer, and the other tests' fakes come and go
    // on the same loopback ports.
    hub.create_repo(OWN_REPO);
    let own = support::sink_for(&hub.endpoint(), OWN_REPO, TOKEN, scratch.path());
    let mut spool = DiskSpool::new(own, dir.path(), FlushPolicy::hourly());
    spool.open().await.unwrap();
    spool
        .ingest(&window("air_temperature", 0), readings(0, 50))
        .await
        .unwrap();
    spool.flush().await.unwrap();
    spool.close().await;
    let mut rows: Vec<u64> = hub
        .files(OWN_REPO, "main")
        .into_iter()
        .filter(|f| f.path.ends_with(".parquet"))
        .flat_map(|f| support::read_parquet(hub.download(OWN_REPO, "main", &f.path).unwrap()))
        .map(|r| r.seq)
        .collect();
    rows.sort_unstable();
    assert_eq!(rows, (0..50).collect::<Vec<u64>>());

    // The capture saw the sink's logs through the refusal, the retry and
    // the success.
    let text = logs.text();
    for line in ["retrying the commit round", "committed"] {
        assert!(text.contains(line), "the capture missed {line:?}: {text}");
    }
    assert!(!text.contains(TOKEN), "the token is in the logs");
    for root in [scratch.path(), dir.path()] {
        for file in walk(root) {
            let bytes = std::fs::read(&file).unwrap();
            let needle = TOKEN.as_bytes();
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "the token is in {}",
                file.display()
            );
        }
    }
}

/// The repository of `the_token_appears_in_no_log_line_and_no_file`.
const OWN_REPO: &str = "org/token-check";

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Pipelines of one process open their sinks at once: the token is checked
/// and the dataset created once, not once per sink (`whoami-v2` is strictly
/// rate limited).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sinks_opening_together_check_and_create_once() {
    let hub = FakeHub::start(hub_with(&[], false)).await.unwrap();
    // Slow answers, so that the opens overlap.
    let slow = meathook_testkit::hub::HubFault::Delay(Duration::from_millis(200));
    hub.inject(HubRoute::WhoAmI, vec![slow.clone(); 6]);
    hub.inject(HubRoute::CreateRepo, vec![slow; 6]);
    let scratch = tempfile::tempdir().unwrap();
    let opening: Vec<_> = (0..6)
        .map(|_| {
            let mut sink = sink(&hub, scratch.path()).with_create_if_missing(true);
            // Each task keeps its sink, as a pipeline does.
            tokio::spawn(async move { sink.open().await.map(|()| sink) })
        })
        .collect();
    let mut open = Vec::new();
    for task in opening {
        open.push(task.await.unwrap().unwrap());
    }
    assert_eq!(hub.requests(HubRoute::WhoAmI), 1);
    assert_eq!(hub.requests(HubRoute::CreateRepo), 1);
}

/// A token read from a file (a Kubernetes secret made with `--from-file`)
/// ends in a newline: it is trimmed, sent, and accepted.
#[tokio::test]
async fn a_token_with_a_trailing_newline_is_trimmed_and_accepted() {
    let hub = FakeHub::start(hub_with(&[(TOKEN, TokenRole::Write)], true))
        .await
        .unwrap();
    for raw in [
        format!("{TOKEN}\n"),
        format!("{TOKEN}\r\n"),
        format!(" {TOKEN}\t\n"),
    ] {
        let scratch = tempfile::tempdir().unwrap();
        let mut sink = support::sink_as::<support::Reading>(&hub.endpoint(), &raw, scratch.path());
        sink.open().await.unwrap_or_else(|e| panic!("{raw:?}: {e}"));
        sink.ingest(&window("air_temperature", 0), readings(0, 20))
            .await
            .unwrap_or_else(|e| panic!("{raw:?}: {}", e.error()));
    }
    support::assert_exactly(&hub, &readings(0, 20));
}

/// A token that is still no valid header value once trimmed is refused
/// before any request, with a message that says what is wrong with it and
/// never shows it.
#[tokio::test]
async fn a_token_that_cannot_be_a_header_is_refused_before_any_request() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    let cases = [
        (format!("{TOKEN} {TOKEN}"), "space"),
        (format!("{TOKEN}\n{TOKEN}"), "control character (U+000A)"),
        (format!("{TOKEN}\u{7}"), "control character (U+0007)"),
        (format!("\u{201c}{TOKEN}\u{201d}"), "non-ASCII"),
    ];
    for (raw, problem) in cases {
        let scratch = tempfile::tempdir().unwrap();
        let mut sink = support::sink_as::<support::Reading>(&hub.endpoint(), &raw, scratch.path());
        let err = sink.open().await.expect_err(problem);
        assert_eq!(err.class(), ErrorClass::Permanent, "{err}");
        let text = format!("{err} {err:?}");
        assert!(
            text.contains(problem) && text.contains("HF_TOKEN"),
            "{text}"
        );
        assert!(!text.contains(TOKEN), "the token leaked: {text}");
        let err = sink
            .ingest(&window("air_temperature", 0), readings(0, 5))
            .await
            .expect_err(problem);
        assert_eq!(err.error().class(), ErrorClass::Permanent);
        assert_eq!(err.records().len(), 5);
    }
    assert!(matches!(
        meathook_hf::HfToken::parse(format!("{TOKEN} x")),
        Err(meathook_hf::InvalidToken::Space { .. })
    ));
    assert_eq!(
        hub.total_requests(),
        0,
        "a request went out with a bad token"
    );
}

/// A `.gitignore` that excludes a window's path: the Hub would drop the
/// file from the commit, so the window is refused for good, not reported
/// as delivered.
#[tokio::test]
async fn a_path_the_repository_ignores_is_refused_not_reported_delivered() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    hub.inject(
        HubRoute::Preupload,
        [meathook_testkit::hub::HubFault::Ignore],
    );
    let scratch = tempfile::tempdir().unwrap();
    let mut sink = sink(&hub, scratch.path());
    let err = sink
        .ingest(&window("air_temperature", 0), readings(0, 30))
        .await
        .expect_err("an ignored path cannot land");
    assert_eq!(
        err.error().class(),
        ErrorClass::Permanent,
        "{}",
        err.error()
    );
    assert!(
        err.error().to_string().contains(".gitignore"),
        "{}",
        err.error()
    );
    assert_eq!(err.records().len(), 30);
    assert_eq!(hub.commits().len(), 0, "{:#?}", hub.commits());
}

/// A batch answer whose verify URL is on another host: the token is not
/// sent there, and the refusal is permanent and says why.
#[tokio::test]
async fn a_verify_url_off_the_endpoint_never_gets_the_token() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    let elsewhere = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    hub.inject(
        HubRoute::Batch,
        [meathook_testkit::hub::HubFault::VerifyAt(
            elsewhere.endpoint(),
        )],
    );
    let scratch = tempfile::tempdir().unwrap();
    let mut sink = sink(&hub, scratch.path());
    let err = sink
        .ingest(&window("air_temperature", 0), readings(0, 30))
        .await
        .expect_err("the verify URL is refused");
    assert_eq!(elsewhere.total_requests(), 0, "the token went elsewhere");
    assert_eq!(
        err.error().class(),
        ErrorClass::Permanent,
        "{}",
        err.error()
    );
    let text = err.error().to_string();
    assert!(
        text.contains(&elsewhere.endpoint()) && text.contains("outside the endpoint"),
        "{text}"
    );
    assert_eq!(hub.commits().len(), 0);
}

/// The Hub refuses one file of a round for good (422): the round is split
/// until that file is alone, so it is the only one refused, permanently,
/// and its neighbours land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_the_hub_refuses_does_not_take_its_round_down() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    hub.inject(
        HubRoute::Commit,
        vec![meathook_testkit::hub::HubFault::RefusePaths("data/poison/".into()); 20],
    );
    let scratch = tempfile::tempdir().unwrap();
    let pipelines = ["p0", "p1", "poison", "p3", "p4"];
    let tasks: Vec<_> = pipelines
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut sink = sink(&hub, scratch.path()).with_coalesce(Duration::from_secs(1));
            let window = window(p, 0);
            let records = readings(i as u64 * 100, 100);
            tokio::spawn(async move {
                sink.ingest(&window, records)
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
    for (p, r) in pipelines.iter().zip(&results) {
        if *p == "poison" {
            let e = r.as_ref().expect_err("the refused file");
            assert_eq!(e.class(), ErrorClass::Permanent, "{e}");
            assert!(e.to_string().contains("422"), "{e}");
        } else {
            assert!(matches!(r, Ok(100)), "{p}: {r:?}");
        }
    }
    let sent: Vec<_> = [0, 1, 3, 4]
        .into_iter()
        .flat_map(|i| readings(i * 100, 100))
        .collect();
    support::assert_exactly(&hub, &sent);
}

/// `probe` checks what a start needs and changes nothing: a writable token
/// and an existing dataset pass; a read-only or unknown token, or a missing
/// dataset without create-if-missing, fail as a start would; with
/// create-if-missing a missing dataset passes and is not created.
#[tokio::test]
async fn a_probe_checks_token_and_dataset_and_changes_nothing() {
    let hub = FakeHub::start(hub_with(
        &[
            (TOKEN, TokenRole::Write),
            ("hf_reader_0b1c", TokenRole::Read),
        ],
        false,
    ))
    .await
    .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let endpoint = hub.endpoint();
    let probe = |token: &str, create: bool| {
        let mut sink = support::sink_as::<support::Reading>(&endpoint, token, scratch.path());
        if create {
            sink = sink.with_create_if_missing(true);
        }
        async move { sink.probe().await }
    };
    let missing = probe(TOKEN, false).await.unwrap_err();
    assert!(matches!(missing, HfError::NotFound { .. }), "{missing}");
    assert!(missing.to_string().contains("create"), "{missing}");
    probe(TOKEN, true)
        .await
        .expect("a missing dataset that will be created passes");
    assert_eq!(
        hub.requests(HubRoute::CreateRepo),
        0,
        "the probe created it"
    );
    hub.create_repo(REPO);
    probe(TOKEN, false)
        .await
        .expect("a writable token and a dataset");
    let read_only = probe("hf_reader_0b1c", false).await.unwrap_err();
    assert!(
        matches!(read_only, HfError::Forbidden { .. }),
        "{read_only}"
    );
    let unknown = probe("hf_unknown_77aa", false).await.unwrap_err();
    assert!(matches!(unknown, HfError::Unauthorized { .. }), "{unknown}");
    assert!(
        !unknown.to_string().contains("hf_unknown_77aa"),
        "the token leaked"
    );
    assert!(hub.commits().is_empty(), "the probe committed");
    assert_eq!(hub.requests(HubRoute::Preupload), 0);
}
