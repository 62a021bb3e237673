//! The official `huggingface_hub` client against the fake Hub: it lists
//! and downloads what our sink committed (pyarrow reads every row back),
//! takes a `snapshot_download` of it and opens each pipeline's config with
//! `datasets.load_dataset` (every row compared again), reads the dataset
//! card's configs, and commits files of its own that we then see. If the official client cannot talk to the fake, the fake is
//! wrong; if it cannot read our files, the sink is.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use crate::support;

use std::collections::BTreeMap;

use meathook_core::Sink;
use meathook_testkit::hub::{FakeHub, FakeHubConfig};
use serde_json::{Value, json};
use support::{REPO, Reading, TOKEN, dataset, readings, sink, window};

fn row(r: &Reading) -> Value {
    json!({"station": r.station, "seq": r.seq, "value": {"f64": format!("{:016x}", r.value.to_bits())}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_reads_our_commits_and_we_read_its() {
    let Some(python) = meathook_testkit::python::interpreter() else {
        return;
    };
    // Objects above 1 MiB go up in 1 MiB parts, for the client's blob.
    let hub = FakeHub::start(FakeHubConfig {
        multipart_threshold: 1 << 20,
        chunk_size: 1 << 20,
        ..FakeHubConfig::default()
    })
    .await
    .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut sink = sink(&hub, scratch.path());
    sink.open().await.unwrap();
    let mut specials = readings(0, 6);
    for (r, v) in specials.iter_mut().zip([
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        0.1 + 0.2,
        f64::MIN_POSITIVE,
    ]) {
        r.value = v;
    }
    sink.ingest(&window("air_temperature", 0), specials)
        .await
        .unwrap();
    sink.ingest(&window("air_temperature", 1), readings(100, 300))
        .await
        .unwrap();
    sink.ingest(&window("rainfall", 0), readings(1000, 50))
        .await
        .unwrap();

    let committed = dataset(&hub, REPO);
    assert_eq!(committed.len(), 3);
    let files: BTreeMap<&String, Vec<Value>> = committed
        .iter()
        .map(|(path, rows)| (path, rows.iter().map(row).collect()))
        .collect();
    let work = tempfile::tempdir().unwrap();
    let expected = work.path().join("expected.json");
    std::fs::write(
        &expected,
        json!({"files": files, "pipelines": ["air_temperature", "rainfall"]}).to_string(),
    )
    .unwrap();

    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/hub_interop.py");
    let mut cmd = std::process::Command::new(&python);
    // `huggingface_hub` and `datasets` read these when imported; the
    // caches are this test's own.
    cmd.env("HF_ENDPOINT", hub.endpoint())
        .env("HF_HOME", work.path().join("hf-home"))
        .env("HF_DATASETS_CACHE", work.path().join("datasets-cache"))
        .env("HF_HUB_OFFLINE", "0")
        .env("HF_DATASETS_OFFLINE", "0")
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env_remove("HF_TOKEN");
    cmd.arg(script)
        .arg(hub.endpoint())
        .arg(REPO)
        .arg(TOKEN)
        .arg(&expected)
        .arg(work.path().join("cache"));
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the official client failed:\n{stderr}"
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();

    // What the client committed, as our side sees it.
    let theirs = hub.files(REPO, "main");
    let blob = theirs
        .iter()
        .find(|f| f.path == "extra/blob.bin")
        .expect("blob committed");
    assert_eq!(
        blob.lfs_oid.as_deref(),
        answer["uploaded"]["extra/blob.bin"].as_str(),
        "the blob is an LFS file with the client's sha256"
    );
    assert_eq!(blob.size, 3 * 1024 * 1024 + 17);
    let note = hub.download(REPO, "main", "notes/from-python.txt").unwrap();
    assert_eq!(note, b"written by the official client\n");

    // And our sink keeps committing after another writer moved the head.
    sink.ingest(&window("rainfall", 1), readings(2000, 10))
        .await
        .unwrap();
    assert_eq!(dataset(&hub, REPO).len(), 4);
    assert_eq!(hub.leaked_authorization(), 0);
}
