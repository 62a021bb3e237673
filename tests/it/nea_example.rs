//! The NEA example as a user runs it: a real process against the fake NEA
//! API on 127.0.0.1, stopped by SIGTERM (drains, exits 0, every collected
//! reading lands once) or by SIGKILL (restart loses and duplicates nothing
//! that was acknowledged), and refused bad configurations.
#![cfg(all(feature = "parquet", feature = "satay", feature = "metrics-http"))]
#![allow(clippy::unwrap_used)] // test helpers: a failed set-up step fails the test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use meathook_testkit::hub::{FakeHub, FakeHubConfig, HubRoute, TokenRole};
use meathook_testkit::{FakeNea, FakeNeaConfig};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Serialize, Deserialize)]
struct Reading {
    station_id: String,
    #[serde(with = "meathook::parquet::timestamp")]
    timestamp: OffsetDateTime,
    value: f64,
    unit: String,
}

pub(crate) fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("examples").join("nea_weather");
    assert!(
        path.is_file(),
        "{} is missing: build it with `cargo build --example nea_weather`",
        path.display()
    );
    path
}

pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meathook-nea-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub(crate) fn config(dir: &Path, base_url: &str) -> PathBuf {
    let path = dir.join("meathook.toml");
    let text = format!(
        "spool_dir = \"{spool}\"\n[flush]\nevery = \"1h\"\n[sink.files]\ndestination = \"{data}\"\n[api]\nbase_url = \"{base_url}\"\n\
         [shutdown]\ndeadline = \"20s\"\n[collectors.air_temperature]\ninterval = \"1s\"\n[collectors.rainfall]\ninterval = \"1s\"\n",
        spool = dir.join("spool").display(),
        data = dir.join("dataset").display(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn start(config: &Path, log: &Path) -> Child {
    start_with(config, log, None)
}

pub(crate) fn start_with(config: &Path, log: &Path, hf_token: Option<&str>) -> Child {
    let mut cmd = Command::new(example());
    cmd.env_remove("HF_TOKEN");
    if let Some(token) = hf_token {
        cmd.env("HF_TOKEN", token);
    }
    cmd.arg(config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

pub(crate) fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} failed");
}

pub(crate) fn wait(child: &mut Child, limit: Duration, log: &Path) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "the example did not exit within {limit:?}:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every parquet file under the dataset directory, relative to it.
fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let root = dir.join("dataset");
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                out.push(path.strip_prefix(&root).unwrap().to_path_buf());
            }
        }
    }
    out
}

/// Every reading in the dataset, keyed by (pipeline, station, timestamp),
/// with how often each key occurs.
fn dataset(dir: &Path) -> BTreeMap<(String, String, OffsetDateTime), usize> {
    let mut seen = BTreeMap::new();
    for relative in parquet_files(dir) {
        // data/{pipeline}/{date}/{file}
        let pipeline = relative
            .components()
            .nth(1)
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .into_owned();
        let path = dir.join("dataset").join(&relative);
        for r in meathook::parquet::read_parquet::<Reading>(&path).unwrap() {
            assert!(r.value.is_finite() && !r.unit.is_empty(), "{r:?}");
            *seen
                .entry((pipeline.clone(), r.station_id, r.timestamp))
                .or_insert(0) += 1;
        }
    }
    seen
}

/// Every parquet file in the dataset, relative to it, with its rows and
/// bytes.
fn files(dir: &Path) -> BTreeMap<String, (u64, u64)> {
    parquet_files(dir)
        .into_iter()
        .map(|relative| {
            let path = dir.join("dataset").join(&relative);
            let rows = meathook::parquet::read_parquet::<Reading>(&path)
                .unwrap()
                .len();
            let bytes = std::fs::metadata(&path).unwrap().len();
            (
                relative.to_string_lossy().into_owned(),
                (rows as u64, bytes),
            )
        })
        .collect()
}

/// The delivery manifest beside the spools, each file once, with its rows
/// and bytes; every record names the dataset as its destination.
fn catalogued(dir: &Path) -> BTreeMap<String, (u64, u64)> {
    let manifest = dir.join("spool").join(meathook::catalog::MANIFEST_FILE);
    let destination = dir.join("dataset").display().to_string();
    let mut out = BTreeMap::new();
    meathook::catalog::for_each_record(&manifest, |r| {
        assert_eq!(r.destination, destination, "{r:?}");
        out.insert(r.path, (r.rows, r.bytes));
    })
    .unwrap();
    out
}

/// Every reading the fake served, keyed like [`dataset`].
pub(crate) fn served(fake: &FakeNea) -> Vec<(String, String, OffsetDateTime)> {
    fake.served()
        .into_iter()
        .map(|r| {
            let pipeline = match r.route.path() {
                "air-temperature" => "air_temperature",
                "rainfall" => "rainfall",
                other => panic!("unexpected route {other}"),
            };
            (
                pipeline.to_owned(),
                r.station,
                OffsetDateTime::parse(&r.timestamp, &Rfc3339).unwrap(),
            )
        })
        .collect()
}

/// Every reading the fake served is in `landed` exactly once, and nothing
/// else is (two pipelines of four stations, polled for a few seconds).
fn assert_every_served_reading_landed_once(
    landed: &BTreeMap<(String, String, OffsetDateTime), usize>,
    served: &[(String, String, OffsetDateTime)],
) {
    assert!(
        served.len() >= 2 * 4 * 3,
        "only {} readings served",
        served.len()
    );
    let duplicates: Vec<_> = landed.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicates.is_empty(), "duplicated: {duplicates:?}");
    for key in served {
        assert!(
            landed.contains_key(key),
            "collected but not in the dataset: {key:?}"
        );
    }
    assert_eq!(
        landed.len(),
        served.len(),
        "the dataset holds readings the API never served"
    );
}

pub(crate) async fn fake_nea() -> FakeNea {
    FakeNea::start(FakeNeaConfig {
        stations: 4,
        ..FakeNeaConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_every_collected_reading_lands_once() {
    let fake = fake_nea().await;
    let dir = scratch("term");
    let log = dir.join("run.log");
    let mut child = start(&config(&dir, &fake.base_url()), &log);
    tokio::time::sleep(Duration::from_secs(5)).await;
    signal(&child, "TERM");
    let code = tokio::task::block_in_place(|| wait(&mut child, Duration::from_secs(40), &log));
    assert_eq!(code, 0, "{}", std::fs::read_to_string(&log).unwrap());

    assert_every_served_reading_landed_once(&dataset(&dir), &served(&fake));
    let on_disk = files(&dir);
    assert!(!on_disk.is_empty());
    assert_eq!(
        catalogued(&dir),
        on_disk,
        "the catalog lists exactly the files delivered"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_then_restart_loses_and_duplicates_nothing_acknowledged() {
    let fake = fake_nea().await;
    let dir = scratch("kill");
    let config = config(&dir, &fake.base_url());
    let log = dir.join("run1.log");
    let mut child = start(&config, &log);
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let killed_at = OffsetDateTime::now_utc();
    signal(&child, "KILL");
    tokio::task::block_in_place(|| wait(&mut child, Duration::from_secs(10), &log));

    let log = dir.join("run2.log");
    let mut child = start(&config, &log);
    tokio::time::sleep(Duration::from_secs(4)).await;
    signal(&child, "TERM");
    let code = tokio::task::block_in_place(|| wait(&mut child, Duration::from_secs(40), &log));
    assert_eq!(code, 0, "{}", std::fs::read_to_string(&log).unwrap());

    let landed = dataset(&dir);
    let duplicates: Vec<_> = landed.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicates.is_empty(),
        "duplicated after the restart: {duplicates:?}"
    );
    // A poll in flight when the process died was never acknowledged: its
    // readings (served within the last two seconds) may be missing. Nothing
    // older may be.
    let window = time::Duration::seconds(2);
    let missing: Vec<_> = served(&fake)
        .into_iter()
        .filter(|k| !landed.contains_key(k))
        .collect();
    for key in &missing {
        assert!(
            (key.2 - killed_at).abs() <= window,
            "acknowledged long before the kill, yet lost: {key:?} (killed at {killed_at})"
        );
    }
    assert!(
        missing.len() <= 2 * 4 * 2,
        "{} readings missing: {missing:?}",
        missing.len()
    );
    assert!(
        landed.len() > 2 * 4 * 6,
        "only {} readings landed",
        landed.len()
    );
    assert_eq!(
        catalogued(&dir),
        files(&dir),
        "after the restart too, the catalog lists exactly the files delivered"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// With `[sink.huggingface]` and `HF_TOKEN`, the example creates the
/// dataset, commits every collected reading once, and writes a dataset
/// card with one config per pipeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_sink_huggingface_every_reading_is_committed_once() {
    let fake = fake_nea().await;
    let token = "hf_example_token_93e1";
    let hub = FakeHub::start(FakeHubConfig {
        tokens: [(token.to_owned(), TokenRole::Write)].into(),
        auto_create: false,
        ..FakeHubConfig::default()
    })
    .await
    .unwrap();
    let dir = scratch("hub");
    let path = config(&dir, &fake.base_url());
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "[sink.huggingface]\nrepo = \"org/sg-weather\"\nendpoint = \"{}\"\ncreate = true\n\
         commits_per_hour = 36000\n",
        hub.endpoint()
    ));
    std::fs::write(&path, text).unwrap();
    let log = dir.join("run.log");
    let mut child = start_with(&path, &log, Some(token));
    tokio::time::sleep(Duration::from_secs(5)).await;
    signal(&child, "TERM");
    let code = tokio::task::block_in_place(|| wait(&mut child, Duration::from_secs(40), &log));
    let output = std::fs::read_to_string(&log).unwrap();
    assert_eq!(code, 0, "{output}");
    assert!(!output.contains(token), "the token is in the log");
    assert!(
        !dir.join("dataset").exists(),
        "[sink.huggingface] replaces [sink.files]"
    );

    // Download what the Hub holds into the layout `dataset` reads.
    let repo = "org/sg-weather";
    for f in hub.files(repo, "main") {
        if f.path.ends_with(".parquet") {
            let local = dir.join("dataset").join(&f.path);
            std::fs::create_dir_all(local.parent().unwrap()).unwrap();
            std::fs::write(&local, hub.download(repo, "main", &f.path).unwrap()).unwrap();
        }
    }
    assert_every_served_reading_landed_once(&dataset(&dir), &served(&fake));
    assert_eq!(hub.requests(HubRoute::CreateRepo), 1);
    assert_eq!(
        hub.requests(HubRoute::WhoAmI),
        1,
        "whoami once per repository"
    );
    let card = String::from_utf8(hub.download(repo, "main", "README.md").unwrap()).unwrap();
    for pipeline in ["air_temperature", "rainfall"] {
        assert!(card.contains(&format!("config_name: {pipeline}")), "{card}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn refused(name: &str, text: &str) -> String {
    let dir = scratch(name);
    let path = dir.join("bad.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(example())
        .arg(&path)
        .env_remove("HF_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
    assert!(!dir.join("spool").exists(), "{name}: something started");
    let _ = std::fs::remove_dir_all(dir);
    stderr
}

#[test]
fn bad_configurations_exit_2_naming_the_key_and_line() {
    let base = "spool_dir = \"spool\"\n[flush]\nevery = \"1h\"\n";
    let unknown = refused(
        "unknown",
        &format!("{base}flsuh = 3\n[collectors.rainfall]\ninterval = \"1m\"\n"),
    );
    assert!(
        unknown.contains("flsuh") && unknown.contains("line 4"),
        "{unknown}"
    );

    let duration = refused(
        "duration",
        &format!("{base}[collectors.rainfall]\ninterval = \"5 parsecs\"\n"),
    );
    assert!(
        duration.contains("interval")
            && duration.contains("5 parsecs")
            && duration.contains("line 5"),
        "{duration}"
    );

    let token = refused(
        "token",
        &format!(
            "{base}[sink.huggingface]\nrepo = \"you/weather\"\n[collectors.rainfall]\ninterval = \"1m\"\n"
        ),
    );
    assert!(
        token.contains("HF_TOKEN") && token.contains("you/weather") && token.contains("line 4"),
        "{token}"
    );

    let repo = refused(
        "repo",
        &format!(
            "{base}[sink.huggingface]\nrepo = \"weather\"\n[collectors.rainfall]\ninterval = \"1m\"\n"
        ),
    );
    assert!(
        repo.contains("sink.huggingface.repo")
            && repo.contains("namespace/name")
            && repo.contains("line 5"),
        "{repo}"
    );

    let name = refused(
        "name",
        &format!("{base}[collectors.rainfall]\ninterval = \"1m\"\nname = \"../rain\"\n"),
    );
    assert!(
        name.contains("collectors.rainfall.name") && name.contains("line 6"),
        "{name}"
    );

    let api = refused(
        "api",
        &format!("{base}[collectors.wind]\ninterval = \"1m\"\n"),
    );
    assert!(
        api.contains("collectors.wind") && api.contains("air_temperature"),
        "{api}"
    );

    let compaction = refused(
        "compaction",
        &format!("{base}[compaction]\nevery = \"0s\"\n[collectors.rainfall]\ninterval = \"1m\"\n"),
    );
    assert!(
        compaction.contains("every")
            && compaction.contains("line 5")
            && compaction.contains("more than zero"),
        "{compaction}"
    );

    let squash = refused(
        "squash",
        &format!(
            "{base}[compaction]\nsquash_history = \"7d\"\n[collectors.rainfall]\ninterval = \"1m\"\n"
        ),
    );
    assert!(
        squash.contains("compaction.squash_history")
            && squash.contains("line 5")
            && squash.contains("[sink.huggingface]"),
        "{squash}"
    );
}

/// A finished day already in the dataset (three hourly files of a
/// pipeline) is compacted into one file by the example's scheduled task,
/// and the compaction is recorded in the catalog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_day_in_the_dataset_is_compacted_and_catalogued() {
    use meathook::contracts::{BatchId, Sink as _, WindowMeta};
    let fake = fake_nea().await;
    let dir = scratch("compact");
    let mut seeded = meathook::parquet::FileSink::new(
        dir.join("dataset").to_str().unwrap(),
        meathook::ParquetEncoder::<Reading>::new().unwrap(),
    )
    .unwrap();
    let day = time::macros::datetime!(2026-01-01 00:00 UTC);
    for hour in 0..3u64 {
        let start = day + time::Duration::hours(hour as i64);
        let window = WindowMeta::containing("air_temperature", start, Duration::from_secs(3600))
            .with_batch(BatchId::legacy(hour * 10, hour * 10 + 1));
        let readings = (0..2)
            .map(|i| Reading {
                station_id: format!("S{i}"),
                timestamp: start,
                value: 20.0 + hour as f64,
                unit: "deg C".into(),
            })
            .collect();
        seeded.ingest(&window, readings).await.unwrap();
    }
    let folder = dir.join("dataset/data/air_temperature/2026-01-01");
    assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 3);

    let log = dir.join("run.log");
    let mut child = start(&config(&dir, &fake.base_url()), &log);
    tokio::time::sleep(Duration::from_secs(4)).await;
    signal(&child, "TERM");
    let code = tokio::task::block_in_place(|| wait(&mut child, Duration::from_secs(40), &log));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(code, 0, "{text}");

    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}\n{text}");
    assert_eq!(names[1], "_compacted.json");
    let rows = meathook::parquet::read_parquet::<Reading>(&folder.join(&names[0])).unwrap();
    assert_eq!(rows.len(), 6);
    let manifest = dir.join("spool").join(meathook::catalog::MANIFEST_FILE);
    let mut compactions = Vec::new();
    meathook::catalog::for_each_record(&manifest, |r| {
        if !r.replaces.is_empty() {
            compactions.push(r);
        }
    })
    .unwrap();
    assert_eq!(compactions.len(), 1, "{compactions:?}");
    assert_eq!(
        compactions[0].path,
        format!("data/air_temperature/2026-01-01/{}", names[0])
    );
    assert_eq!((compactions[0].rows, compactions[0].replaces.len()), (6, 3));
    let _ = std::fs::remove_dir_all(dir);
}
