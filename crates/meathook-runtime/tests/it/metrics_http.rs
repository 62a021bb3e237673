//! `/metrics` over a real listener on 127.0.0.1, in both formats: the
//! OpenMetrics text a client asking for `application/openmetrics-text`
//! gets parses with Prometheus' own OpenMetrics parser and the Python
//! `prometheus_client`'s, and the Prometheus text format everyone else
//! gets (and the textfile) passes `promtool check metrics`, with every
//! counter typed `counter`. `/healthz` turns 503, one line per failing
//! pipeline with the reason, when a pipeline is given up, its ticks run
//! late, a tick is stuck in its sink, or its delivery is stuck; and 200
//! again when it recovers.

#![cfg(feature = "metrics-http")]
#![allow(clippy::unwrap_used)] // test helpers: a failed set-up step fails the test

use crate::support;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use meathook_core::{Backoff, CatalogStats, ErrorChain, FlushPolicy};
use meathook_runtime::{Meathook, MeathookBuilder, Pipeline, RuntimeError};
use meathook_spool::SinkExt as _;
use support::promtool;
use support::{Gate, Script, Scripted, Step};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "meathook-metrics-{name}-{}-{}",
        std::process::id(),
        fastrand::u32(..)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// What one GET answered: status, content type, body.
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

async fn get(client: &reqwest::Client, url: &str, accept: Option<&str>) -> Option<Answer> {
    let mut request = client.get(url);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.ok()?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.text().await.ok()?;
    Some(Answer {
        status,
        content_type,
        body,
    })
}

/// Runs `runtime` while `probe` runs, then stops it; returns what the probe
/// returned and how `run_until` ended.
async fn while_running<T: Send + 'static>(
    runtime: MeathookBuilder,
    probe: impl Future<Output = T> + Send + 'static,
) -> (T, Result<(), RuntimeError>) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let run = tokio::spawn(runtime.run_until(async move {
        let _ = rx.await;
    }));
    let seen = probe.await;
    tx.send(()).unwrap();
    (seen, run.await.unwrap())
}

/// Polls `/healthz` every 50 ms until `done` says the answers so far are
/// enough, or `within` passes; returns every answer (status, body).
async fn watch_health(
    port: u16,
    within: Duration,
    done: impl Fn(&[(u16, String)]) -> bool,
) -> Vec<(u16, String)> {
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/healthz");
    let deadline = tokio::time::Instant::now() + within;
    let mut seen = Vec::new();
    while tokio::time::Instant::now() < deadline && !done(&seen) {
        if let Some(a) = get(&client, &url, None).await {
            assert_eq!(a.content_type, "text/plain; charset=utf-8");
            seen.push((a.status, a.body));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen
}

/// Parses OpenMetrics `text` with Python's `prometheus_client` and returns
/// each family's type, or `None` when the venv is missing (outside `cargo
/// xtask ci`).
fn parse_with_python(text: &str) -> Option<BTreeMap<String, String>> {
    let python = meathook_testkit::python::interpreter()?;
    let script = "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as parse\nfor f in parse(sys.stdin.read()):\n    print(f.name, f.type)\n";
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the OpenMetrics parser rejected /metrics: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(name, kind)| (name.to_owned(), kind.to_owned()))
            .collect(),
    )
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The `Accept` header Prometheus 2.x scrapes with.
const PROMETHEUS_SCRAPE: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_come_in_both_formats_and_parse_with_prometheus_own_parsers() {
    let port = free_port();
    let dir = scratch("formats");
    // The textfile's directory does not exist yet: the exporter makes it.
    let textfile = dir.join("node-exporter").join("meathook.prom");
    let catalog = CatalogStats::default();
    catalog.database_configured();
    catalog.manifest_written();
    catalog.set_backlog(1);
    let runtime = {
        let spool = dir.join("spool");
        Meathook::builder()
            .with_metrics_addr(([127, 0, 0, 1], port).into())
            .with_metrics_textfile(&textfile, Duration::from_millis(200))
            .pipeline(move || {
                // A spool delivering one-second windows, and a failed poll,
                // so every per-pipeline family has samples.
                Pipeline::new(
                    Scripted {
                        name: "weather \"station\"",
                        script: Script::new([Step::Fail]),
                    },
                    Gate::default().spooled(
                        spool.clone(),
                        FlushPolicy::every(Duration::from_secs(1)).unwrap(),
                    ),
                    Duration::from_millis(100),
                )
            })
    };
    runtime.telemetry().watch_catalog(catalog);
    let probe = async move {
        // Past the first window's delivery.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/metrics");
        let mut answers = Vec::new();
        for accept in [
            Some("application/openmetrics-text; version=1.0.0"),
            Some(PROMETHEUS_SCRAPE),
            None,
            Some("text/plain; version=0.0.4"),
        ] {
            answers.push(get(&client, &url, accept).await.unwrap());
        }
        answers
    };
    let (answers, outcome) = while_running(runtime, probe).await;
    outcome.unwrap();
    let written = std::fs::read_to_string(&textfile).unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    let [openmetrics, scrape, plain, text] = &answers[..] else {
        unreachable!()
    };
    for (answer, content_type) in [
        (openmetrics, OPENMETRICS),
        (scrape, OPENMETRICS),
        (plain, PROMETHEUS_TEXT),
        (text, PROMETHEUS_TEXT),
    ] {
        assert_eq!(answer.status, 200);
        assert_eq!(answer.content_type, content_type);
    }
    let openmetrics = &openmetrics.body;
    let text = &plain.body;
    assert!(openmetrics.ends_with("# EOF\n"), "{openmetrics}");
    for prometheus_text in [text, &written] {
        assert!(!prometheus_text.contains("# EOF"), "{prometheus_text}");
        assert!(!prometheus_text.contains("# UNIT"), "{prometheus_text}");
    }

    // The Prometheus text format: what each family is, under its sample
    // name. Every family the OpenMetrics text has, with the same type, a
    // counter under its `_total` name.
    let om_types = promtool::types(openmetrics);
    let expected: BTreeMap<String, String> = om_types
        .iter()
        .map(|(name, kind)| match kind.as_str() {
            "counter" => (format!("{name}_total"), kind.clone()),
            _ => (name.clone(), kind.clone()),
        })
        .collect();
    for prometheus_text in [text, &written] {
        assert_eq!(promtool::types(prometheus_text), expected);
    }
    for (name, kind) in [
        ("meathook_records_collected_total", "counter"),
        ("meathook_records_delivered_total", "counter"),
        ("meathook_collect_errors_total", "counter"),
        ("meathook_catalog_manifest_writes_total", "counter"),
        ("meathook_pipeline_up", "gauge"),
        ("meathook_buffer_utilisation_ratio", "gauge"),
        ("meathook_poll_stretch_ratio", "gauge"),
        ("meathook_catalog_backfill_backlog_records", "gauge"),
        ("meathook_tick_lateness_seconds", "histogram"),
        ("meathook_delivery_latency_seconds", "histogram"),
    ] {
        assert_eq!(
            expected.get(name).map(String::as_str),
            Some(kind),
            "{name} in\n{text}"
        );
    }
    for old in [
        "meathook_buffer_utilisation",
        "meathook_poll_stretch",
        "meathook_catalog_backfill_backlog",
    ] {
        assert!(!expected.contains_key(old), "{old} is still exported");
    }
    // Both formats carry the same series.
    assert_eq!(promtool::series(text), promtool::series(openmetrics));
    assert!(
        text.contains("meathook_records_collected_total{pipeline=\"weather \\\"station\\\"\"} "),
        "{text}"
    );

    if let Some(promtool) = promtool::path() {
        for (what, prometheus_text) in [("/metrics", text), ("the textfile", &written)] {
            promtool::check_metrics(&promtool, prometheus_text)
                .unwrap_or_else(|e| panic!("{what}: {e}\n{prometheus_text}"));
        }
        promtool::check_openmetrics(&promtool, openmetrics)
            .unwrap_or_else(|e| panic!("{e}\n{openmetrics}"));
        // The check can fail: the OpenMetrics text is not the Prometheus
        // format (its counters arrive untyped, without help).
        assert!(
            promtool::check_metrics(&promtool, openmetrics).is_err(),
            "promtool accepted OpenMetrics text as the Prometheus format"
        );
    }
    if let Some(families) = parse_with_python(openmetrics) {
        assert_eq!(
            families, om_types,
            "as Python's OpenMetrics parser reads it"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_fails_when_a_pipeline_is_given_up() {
    let port = free_port();
    let gate = Gate::default();
    // "doomed" panics on its fourth poll, so /healthz is healthy at first.
    let runtime = {
        let gate = gate.clone();
        Meathook::builder()
            .with_metrics_addr(([127, 0, 0, 1], port).into())
            .with_restart_backoff(Backoff::new(
                Duration::from_millis(50),
                Duration::from_millis(100),
            ))
            .with_give_up_after(2, Duration::from_secs(600))
            .pipeline(move || {
                Pipeline::new(
                    Scripted {
                        name: "fine",
                        script: Script::new([]),
                    },
                    gate.clone(),
                    Duration::from_millis(100),
                )
            })
            .pipeline(|| {
                Pipeline::new(
                    Scripted {
                        name: "doomed",
                        script: Script::new([
                            Step::Records(vec![]),
                            Step::Records(vec![]),
                            Step::Records(vec![]),
                            Step::Panic,
                        ]),
                    },
                    Gate::default(),
                    Duration::from_millis(100),
                )
            })
    };
    let probe = watch_health(port, Duration::from_secs(5), |seen| {
        seen.last()
            .is_some_and(|(_, body)| body.contains("GivenUp"))
    });
    let (health, outcome) = while_running(runtime, probe).await;
    outcome.unwrap();
    assert_eq!(
        health.first().map(|h| h.0),
        Some(200),
        "healthy at first: {health:?}"
    );
    assert_eq!(health.first().map(|h| h.1.as_str()), Some("ok\n"));
    let (last_status, last_body) = health.last().unwrap();
    assert_eq!(*last_status, 503, "{health:?}");
    assert_eq!(last_body, "doomed: GivenUp\n");
    assert!(!gate.records().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_fails_while_ticks_run_late_and_recovers_when_they_are_on_time() {
    let port = free_port();
    // "late" blocks 900 ms in four polls in a row on a 100 ms interval, so
    // its ticks start about 800 ms late; then it polls quickly again.
    let late = Script::new(std::iter::repeat_n(Step::Records(vec![]), 10).chain(
        std::iter::repeat_n(Step::Hang(Duration::from_millis(900)), 4),
    ));
    let runtime = Meathook::builder()
        .with_metrics_addr(([127, 0, 0, 1], port).into())
        .with_health_tick_lateness(Duration::from_millis(400))
        .pipeline(move || {
            Pipeline::new(
                Scripted {
                    name: "late",
                    script: late.clone(),
                },
                Gate::default(),
                Duration::from_millis(100),
            )
            .with_collect_timeout(Duration::from_secs(5))
        })
        .pipeline(|| {
            Pipeline::new(
                Scripted {
                    name: "steady",
                    script: Script::new([]),
                },
                Gate::default(),
                Duration::from_millis(100),
            )
        });
    let probe = watch_health(port, Duration::from_secs(20), |seen| {
        let late_at = seen.iter().position(|(status, _)| *status == 503);
        late_at.is_some_and(|at| seen[at..].iter().any(|(status, _)| *status == 200))
    });
    let (health, outcome) = while_running(runtime, probe).await;
    outcome.unwrap();

    assert_eq!(health.first().map(|h| h.0), Some(200), "{health:?}");
    let failing: Vec<&str> = health
        .iter()
        .filter(|(status, _)| *status == 503)
        .map(|(_, body)| body.as_str())
        .collect();
    assert!(!failing.is_empty(), "never late: {health:?}");
    for body in &failing {
        // One line, for the late pipeline only, saying how late.
        assert_eq!(body.lines().count(), 1, "{body}");
        assert!(body.starts_with("late: ticks late: "), "{body}");
        assert!(body.contains(" (bound 0.40 s)"), "{body}");
    }
    assert!(
        failing
            .iter()
            .any(|b| b.contains("the last tick started") && b.contains("behind schedule")),
        "{failing:?}"
    );
    assert_eq!(
        health.last().map(|h| (h.0, h.1.as_str())),
        Some((200, "ok\n")),
        "back on schedule: {health:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_fails_while_a_tick_is_stuck_in_its_sink() {
    let port = free_port();
    // Two empty polls, then a record the sink holds for an hour: the third
    // tick never ends and starts no other.
    let runtime = Meathook::builder()
        .with_metrics_addr(([127, 0, 0, 1], port).into())
        .with_health_tick_lateness(Duration::from_millis(300))
        .with_drain_deadline(Duration::from_millis(200))
        .pipeline(|| {
            Pipeline::new(
                Scripted {
                    name: "stuck",
                    script: Script::new([Step::Records(vec![]), Step::Records(vec![])]),
                },
                Gate::slow(Duration::from_secs(3600)),
                Duration::from_millis(100),
            )
        });
    let probe = watch_health(port, Duration::from_secs(10), |seen| {
        seen.last().is_some_and(|(status, _)| *status == 503)
    });
    let (health, outcome) = while_running(runtime, probe).await;
    match outcome {
        Err(RuntimeError::DrainTimedOut { pipelines, .. }) => assert_eq!(pipelines, ["stuck"]),
        other => panic!("a stuck pipeline cannot drain: {other:?}"),
    }
    let (status, body) = health.last().unwrap();
    assert_eq!(*status, 503, "{health:?}");
    assert!(
        body.starts_with("stuck: ticks late: the next tick is ")
            && body.contains(" overdue (bound 0.30 s), the tick in progress has run for "),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_fails_while_delivery_is_stuck_and_recovers_once_it_delivers() {
    let port = free_port();
    let dir = scratch("stuck-delivery");
    let destination = Gate::default();
    destination.close();
    let runtime = {
        let (destination, dir) = (destination.clone(), dir.clone());
        Meathook::builder()
            .with_metrics_addr(([127, 0, 0, 1], port).into())
            .with_health_delivery_stall(Duration::from_secs(1))
            .with_health_undelivered_age(Duration::from_secs(3))
            .pipeline(move || {
                Pipeline::new(
                    Scripted {
                        name: "undelivered",
                        script: Script::new([]),
                    },
                    destination
                        .clone()
                        .spooled(
                            dir.clone(),
                            FlushPolicy::every(Duration::from_secs(1)).unwrap(),
                        )
                        .with_backoff(Backoff::new(
                            Duration::from_millis(50),
                            Duration::from_millis(200),
                        )),
                    Duration::from_millis(100),
                )
            })
    };
    let probe = {
        let destination = destination.clone();
        async move {
            let stuck = watch_health(port, Duration::from_secs(15), |seen| {
                seen.last().is_some_and(|(_, body)| {
                    body.contains("attempts have failed") && body.contains("undelivered record")
                })
            })
            .await;
            destination.open();
            let recovered = watch_health(port, Duration::from_secs(15), |seen| {
                seen.last().is_some_and(|(status, _)| *status == 200)
            })
            .await;
            (stuck, recovered)
        }
    };
    let ((stuck, recovered), outcome) = while_running(runtime, probe).await;
    outcome.unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    assert_eq!(stuck.first().map(|h| h.0), Some(200), "{stuck:?}");
    let (status, body) = stuck.last().unwrap();
    assert_eq!(*status, 503, "{stuck:?}");
    assert_eq!(body.lines().count(), 1, "{body}");
    assert!(
        body.starts_with("undelivered: delivery stuck: attempts have failed for "),
        "{body}"
    );
    assert!(body.contains(" with none delivered ("), "{body}");
    assert!(body.contains(" failed; bound 1.00 s)"), "{body}");
    assert!(
        body.contains("; delivery stuck: the oldest undelivered record is ")
            && body.contains(" old (bound 3.00 s)"),
        "{body}"
    );
    assert_eq!(
        recovered.last().map(|h| (h.0, h.1.as_str())),
        Some((200, "ok\n")),
        "{recovered:?}"
    );
    assert!(!destination.records().is_empty());
}

#[tokio::test]
async fn health_bounds_of_zero_are_refused_by_name() {
    let one = || {
        Pipeline::new(
            Scripted {
                name: "p",
                script: Script::new([]),
            },
            Gate::default(),
            Duration::from_secs(1),
        )
    };
    for (builder, name) in [
        (
            Meathook::builder().with_health_tick_lateness(Duration::ZERO),
            "health_tick_lateness",
        ),
        (
            Meathook::builder().with_health_delivery_stall(Duration::ZERO),
            "health_delivery_stall",
        ),
        (
            Meathook::builder().with_health_undelivered_age(Duration::ZERO),
            "health_undelivered_age",
        ),
    ] {
        match builder
            .pipeline(one)
            .run_until(std::future::pending())
            .await
        {
            Err(RuntimeError::InvalidSetting {
                pipeline: None,
                setting,
                ..
            }) => assert_eq!(setting, name),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_textfile_directory_that_cannot_be_made_stops_the_start_with_its_path_and_cause() {
    let dir = scratch("blocked");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("file"), b"").unwrap();
    let textfile = dir.join("file").join("metrics").join("meathook.prom");
    let outcome = Meathook::builder()
        .with_metrics_textfile(&textfile, Duration::from_secs(1))
        .pipeline(|| {
            Pipeline::new(
                Scripted {
                    name: "p",
                    script: Script::new([]),
                },
                Gate::default(),
                Duration::from_secs(1),
            )
        })
        .run_until(std::future::pending())
        .await;
    let _ = std::fs::remove_dir_all(&dir);
    let error = outcome.unwrap_err();
    assert_eq!(
        ErrorChain(&error).to_string(),
        format!(
            "cannot create the directory {} for the metrics textfile {}: {}",
            dir.join("file").join("metrics").display(),
            textfile.display(),
            std::io::Error::from_raw_os_error(20) // ENOTDIR
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_of_1000_pipelines_parse_in_both_formats() {
    const PIPELINES: usize = 1000;
    let port = free_port();
    let mut runtime = Meathook::builder().with_metrics_addr(([127, 0, 0, 1], port).into());
    for i in 0..PIPELINES {
        let name: &'static str = Box::leak(format!("pipeline-{i:04}").into_boxed_str());
        runtime = runtime.pipeline(move || {
            Pipeline::new(
                Scripted {
                    name,
                    script: Script::new([]),
                },
                Gate::default(),
                Duration::from_secs(1),
            )
        });
    }
    let probe = async move {
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/metrics");
        // Until every pipeline has ticked once.
        let mut text = String::new();
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Some(a) = get(&client, &url, None).await {
                text = a.body;
                let ticked = text
                    .lines()
                    .filter(|l| l.starts_with("meathook_tick_lateness_seconds_count{"))
                    .filter(|l| !l.ends_with(" 0"))
                    .count();
                if ticked == PIPELINES {
                    break;
                }
            }
        }
        let openmetrics = get(&client, &url, Some("application/openmetrics-text"))
            .await
            .unwrap()
            .body;
        (text, openmetrics)
    };
    let ((text, openmetrics), outcome) = while_running(runtime, probe).await;
    outcome.unwrap();
    for body in [&text, &openmetrics] {
        let up = body
            .lines()
            .filter(|l| l.starts_with("meathook_pipeline_up{"))
            .count();
        assert_eq!(up, PIPELINES);
    }
    // The figure for the record (`cargo xtask bench runtime` reports it
    // too); sizes, not timings, and not asserted.
    for (format, body) in [("openmetrics", &openmetrics), ("prometheus_text", &text)] {
        println!(
            "figure\tmetrics_bytes_{PIPELINES}_pipelines_{format}\t{}\tbytes\t",
            body.len()
        );
    }
    if let Some(promtool) = promtool::path() {
        promtool::check_metrics(&promtool, &text).unwrap();
        promtool::check_openmetrics(&promtool, &openmetrics).unwrap();
    }
}

/// The status page over the real listener: `/` and `/status` answer HTML
/// with each pipeline's last poll, its last error with the cause, its
/// records of the last hour, and the grid of delivered windows fed by the
/// catalog's hook, where an hour without a window shows as a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_polls_errors_and_delivered_windows() {
    let port = free_port();
    let runtime = Meathook::builder()
        .with_metrics_addr(([127, 0, 0, 1], port).into())
        .pipeline(|| {
            Pipeline::new(
                Scripted {
                    name: "rainfall",
                    script: Script::new([Step::Records(vec![1, 2, 3]), Step::Fail]),
                },
                Gate::default(),
                Duration::from_millis(100),
            )
        });
    // The terminal sinks' deliveries reach the page through the hook; one
    // window two hours ago and one now, none in between.
    let recorded = std::sync::Arc::new(std::sync::Mutex::new(0));
    let hook = runtime
        .telemetry()
        .deliveries(meathook_core::Deliveries::new(Count(
            std::sync::Arc::clone(&recorded),
        )));
    let now = time::OffsetDateTime::now_utc();
    let hour = |back: i64| {
        time::OffsetDateTime::from_unix_timestamp((now.unix_timestamp() / 3600 - back) * 3600)
            .unwrap()
    };
    for back in [2, 0] {
        let window = meathook_core::WindowMeta::containing(
            "rainfall",
            hour(back),
            Duration::from_secs(3600),
        );
        hook.record(&meathook_core::Delivery::new(
            &window, "d", "p", 3, 10, [0; 32],
        ))
        .unwrap();
    }
    assert_eq!(
        *recorded.lock().unwrap(),
        2,
        "the catalog still records each"
    );
    let probe = async move {
        let client = reqwest::Client::new();
        // Until the failed second poll shows.
        for _ in 0..100 {
            let page = get(&client, &format!("http://127.0.0.1:{port}/status"), None)
                .await
                .unwrap();
            if page.body.contains("scripted failure") {
                let root = get(&client, &format!("http://127.0.0.1:{port}/"), None)
                    .await
                    .unwrap();
                return (page, root);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the failed poll never showed");
    };
    let ((page, root), outcome) = while_running(runtime, probe).await;
    outcome.unwrap();
    assert_eq!(page.status, 200);
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    assert_eq!(root.status, 200);
    assert!(root.body.contains("rainfall"), "/ is the same page");
    let body = &page.body;
    assert!(body.contains("<td class=\"name\">rainfall</td>"), "{body}");
    assert!(
        body.contains("poll failed") || body.contains("scripted failure"),
        "{body}"
    );
    assert!(
        body.contains("<td class=\"n\">3</td>"),
        "three records collected: {body}"
    );
    let cell = |back: i64| {
        let at = body
            .find(&format!("data-hour=\"{}\"", hour(back).unix_timestamp()))
            .unwrap();
        body[body[..at].rfind("<rect").unwrap()..at].to_owned()
    };
    assert!(cell(2).contains("\"hit\"") && cell(0).contains("\"hit\""));
    assert!(cell(1).contains("\"gap\""), "{}", cell(1));
}

/// A catalog hook that counts what it records.
#[derive(Debug)]
struct Count(std::sync::Arc<std::sync::Mutex<u32>>);

impl meathook_core::DeliveryLog for Count {
    fn record(&self, _: &meathook_core::Delivery) -> Result<(), meathook_core::DeliveryLogError> {
        *self.0.lock().unwrap() += 1;
        Ok(())
    }
}
