//! `nea_weather --once` as a real process against the fake NEA API: it
//! prints what each collector returned, with the window and the path each
//! batch would land at, and writes nothing. And the example's `--help` and
//! `--version`.
#![cfg(all(feature = "parquet", feature = "satay", feature = "metrics-http"))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::collections::BTreeSet;
use std::process::{Command, Output};

use crate::nea_example::{config, example, fake_nea, scratch, served};

fn run(args: &[&str]) -> Output {
    let out = Command::new(example()).args(args).output().unwrap();
    assert!(
        out.stderr.is_empty() || !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_prints_every_served_reading_with_its_window_and_path_and_writes_nothing() {
    let fake = fake_nea().await;
    let dir = scratch("once");
    let path = config(&dir, &fake.base_url());
    let path = path.to_str().unwrap().to_owned();
    let out = tokio::task::spawn_blocking(move || run(&["--once", "--format", "jsonl", &path]))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Every reading the fake served, once each, and nothing else.
    let printed: BTreeSet<(String, String, String)> = lines
        .iter()
        .map(|l| {
            (
                l["pipeline"].as_str().unwrap().to_owned(),
                l["record"]["station_id"].as_str().unwrap().to_owned(),
                l["record"]["timestamp"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String, String)> = served(&fake)
        .into_iter()
        .map(|(p, s, t)| {
            let t = t
                .to_offset(time::UtcOffset::UTC)
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap();
            (p, s, t)
        })
        .collect();
    assert!(!want.is_empty(), "the fake served nothing");
    assert_eq!(printed, want);
    assert_eq!(lines.len(), want.len(), "a reading printed twice");
    for l in &lines {
        let pipeline = l["pipeline"].as_str().unwrap();
        let start = l["window_start"].as_str().unwrap();
        // Hourly windows (the test config's flush), named by their start.
        assert!(start.ends_with(":00:00Z"), "{l}");
        let hhmmss = &start[11..19].replace(':', "");
        let day = &start[..10];
        let want_path = format!(
            "{}/data/{pipeline}/{day}/{hhmmss}Z-b<spool>-<first>-<last>.parquet",
            dir.join("dataset").display()
        );
        assert_eq!(l["path"].as_str().unwrap(), want_path);
    }
    assert!(!dir.join("spool").exists(), "--once made a spool");
    assert!(!dir.join("dataset").exists(), "--once wrote the dataset");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_as_a_table_names_each_batch_and_a_failed_poll_exits_1() {
    let fake = fake_nea().await;
    let dir = scratch("once-table");
    let path = config(&dir, &fake.base_url());
    let p = path.to_str().unwrap().to_owned();
    let out = tokio::task::spawn_blocking(move || run(&["--once", &p]))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for pipeline in ["air_temperature", "rainfall"] {
        assert!(text.contains(&format!("{pipeline}, poll 1: ")), "{text}");
    }
    assert!(
        text.contains("station_id") && text.contains("lands at "),
        "{text}"
    );

    // An API that does not answer: the poll fails, the cause is printed,
    // and the exit status says so.
    let dead = config(&dir, "http://127.0.0.1:9");
    let p = dead.to_str().unwrap().to_owned();
    let out = tokio::task::spawn_blocking(move || run(&["--once", &p]))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("air_temperature: poll 1: poll failed: request to")
            && err.contains("Connection refused"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn help_and_version_say_what_the_example_is() {
    let help = run(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(
        text.contains("--once") && text.contains("--check") && text.contains("Exit codes"),
        "{text}"
    );
    let version = run(&["--version"]);
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8(version.stdout).unwrap().trim(),
        format!("nea_weather {}", env!("CARGO_PKG_VERSION"))
    );
    let bad = run(&["--once=0"]);
    assert_eq!(bad.status.code(), Some(2), "zero polls is a usage error");
}

/// `--check --probe` reaches the spool directory and the destination (a
/// local one, then a HuggingFace dataset on the fake Hub) and creates
/// nothing; a token the Hub refuses makes it fail with the Hub's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_probe_reaches_where_the_job_writes_and_changes_nothing() {
    use meathook_testkit::hub::{FakeHub, FakeHubConfig, HubRoute, TokenRole};

    let dir = scratch("probe");
    let path = config(&dir, "http://127.0.0.1:9");
    let probe = |path: std::path::PathBuf, token: Option<&'static str>| {
        tokio::task::spawn_blocking(move || {
            let mut cmd = Command::new(example());
            cmd.args(["--check", "--probe"]).arg(&path);
            match token {
                Some(t) => cmd.env("HF_TOKEN", t),
                None => cmd.env_remove("HF_TOKEN"),
            };
            cmd.output().unwrap()
        })
    };
    let out = probe(path.clone(), None).await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("probe: spool directory") && err.contains("probe: destination"),
        "{err}"
    );
    assert_eq!(err.matches(": ok").count(), 2, "{err}");
    assert!(!dir.join("spool").exists() && !dir.join("dataset").exists());

    let token = "hf_probe_token_51ad";
    let hub = FakeHub::start(FakeHubConfig {
        tokens: [(token.to_owned(), TokenRole::Write)].into(),
        auto_create: false,
        ..FakeHubConfig::default()
    })
    .await
    .unwrap();
    hub.create_repo("org/sg-weather");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "[sink.huggingface]\nrepo = \"org/sg-weather\"\nendpoint = \"{}\"\n",
        hub.endpoint()
    ));
    std::fs::write(&path, text).unwrap();
    let out = probe(path.clone(), Some(token)).await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("huggingface dataset org/sg-weather (branch main): ok"),
        "{err}"
    );
    let out = probe(path.clone(), Some("hf_not_a_known_token"))
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("huggingface dataset org/sg-weather (branch main): FAILED"),
        "{err}"
    );
    assert!(err.contains("401"), "{err}");
    assert!(
        !err.contains("hf_not_a_known_token"),
        "the token leaked: {err}"
    );
    assert!(hub.commits().is_empty(), "the probe committed");
    assert_eq!(hub.requests(HubRoute::Preupload), 0);
    let _ = std::fs::remove_dir_all(dir);
}
