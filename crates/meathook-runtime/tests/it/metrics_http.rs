//! `/metrics` is valid OpenMetrics (checked by an independent parser, the
//! Python `prometheus_client`), `/healthz` turns 503 when a pipeline is
//! given up, and the textfile exporter writes the same text.

#![cfg(feature = "metrics-http")]
#![allow(clippy::unwrap_used)] // test helpers: a failed set-up step fails the test

use crate::support;

use std::time::Duration;

use meathook_core::Backoff;
use meathook_runtime::{Meathook, Pipeline};
use support::{Gate, Script, Scripted, Step};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Parses `text` with Python's OpenMetrics parser and returns the family
/// names, or `None` when the venv is missing (outside `cargo xtask ci`).
fn parse_with_python(text: &str) -> Option<Vec<String>> {
    let python = meathook_testkit::python::interpreter()?;
    let script = "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as parse\nfor f in parse(sys.stdin.read()):\n    print(f.name)\n";
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
            .map(str::to_owned)
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_openmetrics_and_health_fails_when_a_pipeline_is_given_up() {
    let port = free_port();
    let textfile = std::env::temp_dir().join(format!("meathook-metrics-{port}.prom"));
    let gate = Gate::default();
    // "doomed" panics on its fourth poll, so /healthz is healthy at first.
    let runtime = {
        let gate = gate.clone();
        Meathook::builder()
            .with_metrics_addr(([127, 0, 0, 1], port).into())
            .with_metrics_textfile(&textfile, Duration::from_millis(200))
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
    let probe = async move {
        let client = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let mut health = Vec::new();
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
                let status = r.status().as_u16();
                let body = r.text().await.unwrap_or_default();
                let given_up = body.contains("GivenUp");
                health.push((status, body));
                if given_up {
                    break;
                }
            }
        }
        let metrics = client.get(format!("{base}/metrics")).send().await.unwrap();
        let content_type = metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        (health, content_type, metrics.text().await.unwrap())
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let run = tokio::spawn(runtime.run_until(async move {
        let _ = rx.await;
    }));
    let (health, content_type, text) = probe.await;
    tx.send(()).unwrap();
    run.await.unwrap().unwrap();

    assert_eq!(
        health.first().map(|h| h.0),
        Some(200),
        "healthy at first: {health:?}"
    );
    let (last_status, last_body) = health.last().unwrap();
    assert_eq!(*last_status, 503, "{health:?}");
    assert!(last_body.contains("doomed: GivenUp"), "{last_body}");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(
        text.contains("meathook_pipeline_up{pipeline=\"doomed\"} 0"),
        "{text}"
    );
    if let Some(families) = parse_with_python(&text) {
        for family in [
            "meathook_records_collected",
            "meathook_pipeline_restarts",
            "meathook_tick_lateness_seconds",
            "meathook_buffer_utilisation",
        ] {
            assert!(
                families.iter().any(|f| f == family),
                "{family} missing from {families:?}"
            );
        }
    }
    let written = std::fs::read_to_string(&textfile).unwrap();
    assert!(
        written.contains("meathook_records_collected_total{pipeline=\"fine\"}"),
        "{written}"
    );
    assert!(written.ends_with("# EOF\n"));
    assert!(!gate.records().is_empty());
    let _ = std::fs::remove_file(textfile);
}
