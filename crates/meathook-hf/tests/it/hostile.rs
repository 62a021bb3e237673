//! Hostile answers at every route the sink calls: a body that never ends
//! (under a 10 GB `Content-Length`, chunked, or as a 500's error page), a
//! body that drips one byte every 2 s, and no answer at all. Every call
//! must give up within its deadline (plus slack) with a transient error
//! that names the URL it called and never the URL's signature query or the
//! token, and the process's memory must stay bounded: less than 100 MiB
//! above what it held before, measured as the peak resident set
//! (`VmHWM`, reset first where the kernel allows it).
//!
//! One test in this file, so that nothing else runs in the process while
//! its memory is measured.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use crate::support;

use std::time::{Duration, Instant};

use meathook_core::{Backoff, BatchId, ErrorClass, Sink, SinkError, WindowMeta};
use meathook_testkit::hub::{FakeHub, FakeHubConfig, HubFault, HubRoute};
use support::{TOKEN, readings, window};

/// The sink's bound on every call in these tests.
const DEADLINE: Duration = Duration::from_secs(3);
/// Generous: start-up calls, encoding, a slow machine.
const SLACK: Duration = Duration::from_secs(7);
const TEN_GB: u64 = 10_000_000_000;

/// A route, the fake's configuration that makes the sink call it, and a
/// piece of the URL the sink calls there.
#[derive(Clone, Copy)]
struct Route {
    route: HubRoute,
    multipart: bool,
    url: &'static str,
}

fn routes() -> Vec<Route> {
    let r = |route, multipart, url| Route {
        route,
        multipart,
        url,
    };
    vec![
        r(HubRoute::WhoAmI, false, "/api/whoami-v2"),
        r(HubRoute::CreateRepo, false, "/api/repos/create"),
        r(HubRoute::Preupload, false, "/preupload/main"),
        r(HubRoute::Batch, false, "/info/lfs/objects/batch"),
        r(HubRoute::Put, false, "/lfs-upload/"),
        r(HubRoute::Put, true, "/part/1"),
        r(HubRoute::Complete, true, "/complete"),
        r(HubRoute::Verify, false, "/lfs-verify/"),
        r(HubRoute::Commit, false, "/commit/main"),
        r(HubRoute::Resolve, false, "/resolve/main/README.md"),
    ]
}

fn config(multipart: bool) -> FakeHubConfig {
    if multipart {
        FakeHubConfig {
            multipart_threshold: 1024,
            chunk_size: 1024,
            ..FakeHubConfig::default()
        }
    } else {
        FakeHubConfig::default()
    }
}

/// `VmRSS` or `VmHWM` of this process, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// What one ingest against a hostile route came to.
struct Outcome {
    route: HubRoute,
    fault: HubFault,
    elapsed: Duration,
    error: Option<(ErrorClass, String)>,
    endpoint: String,
    hub: FakeHub,
}

/// Ingests one window into a fresh fake whose `route` answers with
/// `fault`, with one attempt per round (so exactly one hostile call).
async fn against(route: &Route, fault: HubFault) -> Outcome {
    let hub = FakeHub::start(config(route.multipart)).await.unwrap();
    hub.inject(route.route, [fault.clone()]);
    let scratch = tempfile::tempdir().unwrap();
    let mut sink = support::sink(&hub, scratch.path())
        .with_timeouts(DEADLINE, DEADLINE)
        .with_retries(
            1,
            Backoff::new(Duration::from_millis(10), Duration::from_millis(10)),
        );
    if route.route == HubRoute::CreateRepo {
        sink = sink.with_create_if_missing(true);
    }
    // A window of today: a day not yet over has no compaction record to
    // read, so the one file read (`Resolve`) is the dataset card.
    let today = WindowMeta::containing(
        "air_temperature",
        time::OffsetDateTime::now_utc(),
        Duration::from_secs(3600),
    )
    .with_batch(BatchId::legacy(0, 2999));
    let started = Instant::now();
    let result = sink.ingest(&today, readings(0, 3000)).await;
    let elapsed = started.elapsed();
    let error = result
        .err()
        .map(|e| (e.error().class(), format!("{} {:?}", e.error(), e.error())));
    Outcome {
        route: route.route,
        fault,
        elapsed,
        error,
        endpoint: hub.endpoint(),
        hub,
    }
}

fn check(o: &Outcome, url: &str) {
    let what = format!("{:?} answering {:?}", o.route, o.fault);
    assert!(
        o.elapsed < DEADLINE + SLACK,
        "{what}: took {:?}, past the deadline {DEADLINE:?} and {SLACK:?} of slack",
        o.elapsed
    );
    assert!(
        o.hub.requests(o.route) >= 1,
        "{what}: the route was never called"
    );
    let card_route = o.route == HubRoute::Resolve;
    let Some((class, text)) = &o.error else {
        // A card too large to read is left alone: the window lands.
        assert!(
            card_route && matches!(o.fault, HubFault::Flood { status: 200, .. }),
            "{what}: the ingest succeeded"
        );
        assert_eq!(support::dataset(&o.hub, support::REPO).len(), 1, "{what}");
        return;
    };
    assert_eq!(*class, ErrorClass::Transient, "{what}: {text}");
    assert!(!text.contains(TOKEN), "{what}: the token leaked: {text}");
    assert!(
        !text.contains("X-Amz-Signature") && !text.contains("fakesig"),
        "{what}: a presigned URL's signature leaked: {text}"
    );
    if !matches!(o.fault, HubFault::Flood { status: 500, .. }) {
        // Too large or too late: the message says where and that the call
        // will be retried.
        assert!(
            text.contains(&o.endpoint) && text.contains(url),
            "{what}: the URL is not named: {text}"
        );
        assert!(text.contains("retried"), "{what}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_answers_at_every_route_are_bounded_in_time_and_memory() {
    // Warm up (allocator arenas, TLS, the encoder) with one clean delivery.
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    support::sink(&hub, scratch.path())
        .ingest(&window("air_temperature", 0), readings(0, 3000))
        .await
        .unwrap();
    drop(hub);

    // Reset the peak to the current resident set where the kernel allows
    // it; where not, the current resident set is still a fair baseline
    // (the peak can only overstate the growth).
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let baseline = status_kib("VmRSS");

    // Floods, one at a time: each reads at most its cap.
    let floods = [
        HubFault::Flood {
            status: 200,
            declared: Some(TEN_GB),
        },
        HubFault::Flood {
            status: 200,
            declared: None,
        },
        HubFault::Flood {
            status: 500,
            declared: Some(TEN_GB),
        },
    ];
    let mut cases = 0;
    for route in routes() {
        for fault in &floods {
            let o = against(&route, fault.clone()).await;
            check(&o, route.url);
            cases += 1;
        }
    }
    // Drips and silences, every route at once: each waits for its deadline.
    let slow = [
        HubFault::Drip {
            every: Duration::from_secs(2),
        },
        HubFault::Silent,
    ];
    let mut tasks = Vec::new();
    for route in routes() {
        for fault in &slow {
            let fault = fault.clone();
            let url = route.url;
            tasks.push(tokio::spawn(async move {
                let o = against(&route, fault).await;
                check(&o, url);
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
        cases += 1;
    }

    let peak = status_kib("VmHWM");
    let grown = peak.saturating_sub(baseline);
    eprintln!(
        "{cases} hostile cases: resident set {baseline} KiB before, peak {peak} KiB \
         (+{grown} KiB; peak reset: {reset})"
    );
    assert!(
        grown < 100 * 1024,
        "memory grew by {grown} KiB under hostile answers (baseline {baseline} KiB, peak {peak} KiB)"
    );
}
