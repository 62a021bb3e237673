//! A real commit to a scratch dataset on the Hub, run by hand:
//!
//! ```text
//! HF_TOKEN=hf_... MEATHOOK_TEST_REPO=you/meathook-test \
//!     cargo test --test hf_integration -- --ignored
//! ```
//!
//! It creates the dataset if it is missing (private), commits three
//! windows of two pipelines through `HfSink` behind a `DiskSpool`, reads
//! every file back through the Hub's `resolve` URLs (sha256 against the
//! tree's LFS id, every row against what was sent), checks the dataset
//! card's `configs:`, replays a window through a fresh sink (no second
//! commit), and then removes what it made: the dataset if it created it,
//! else its files in one commit that also puts the card back as it was.
//! `MEATHOOK_TEST_ENDPOINT` points it at another Hub, such as the
//! `fake-hub` binary. CI compiles it and skips it: it needs the network.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test

use std::collections::BTreeMap;
use std::time::Duration;

use meathook_core::{BatchId, FlushPolicy, Sink, WindowMeta};
use meathook_hf::HfSink;
use meathook_spool::SinkExt as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::datetime;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reading {
    station: String,
    seq: u64,
    value: f64,
}

fn readings(from: u64, n: u64) -> Vec<Reading> {
    (from..from + n)
        .map(|seq| Reading {
            station: format!("S{:02}", seq % 5),
            seq,
            value: seq as f64 * 0.5 - 7.25,
        })
        .collect()
}

const HOUR: Duration = Duration::from_secs(3600);
const T0: OffsetDateTime = datetime!(2026-11-23 10:00 UTC);

/// What the run needs from the environment.
struct Target {
    endpoint: String,
    repo: String,
    token: String,
}

fn target() -> Target {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let (Some(token), Some(repo)) = (var("HF_TOKEN"), var("MEATHOOK_TEST_REPO")) else {
        panic!(
            "set HF_TOKEN (a write token) and MEATHOOK_TEST_REPO (a scratch dataset, \
             `you/meathook-test`; created private if missing) to run this test; \
             MEATHOOK_TEST_ENDPOINT points it at another Hub (default https://huggingface.co)"
        );
    };
    Target {
        endpoint: var("MEATHOOK_TEST_ENDPOINT")
            .unwrap_or_else(|| "https://huggingface.co".into())
            .trim_end_matches('/')
            .to_owned(),
        repo,
        token,
    }
}

/// A check that returns the failure instead of panicking, so the clean-up
/// still runs.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

struct Hub {
    http: reqwest::Client,
    t: Target,
}

impl Hub {
    async fn get(&self, url: &str) -> Result<(reqwest::StatusCode, Vec<u8>), String> {
        let r = self
            .http
            .get(url)
            .bearer_auth(&self.t.token)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = r.status();
        let body = r.bytes().await.map_err(|e| format!("GET {url}: {e}"))?;
        Ok((status, body.to_vec()))
    }

    async fn json(&self, url: &str) -> Result<Value, String> {
        let (status, body) = self.get(url).await?;
        ensure!(status.is_success(), "GET {url}: {status}");
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: {e}"))
    }

    fn api(&self, rest: &str) -> String {
        format!("{}/api/datasets/{}/{rest}", self.t.endpoint, self.t.repo)
    }

    fn resolve(&self, path: &str) -> String {
        format!(
            "{}/datasets/{}/resolve/main/{path}",
            self.t.endpoint, self.t.repo
        )
    }

    async fn exists(&self) -> Result<bool, String> {
        let url = format!("{}/api/datasets/{}", self.t.endpoint, self.t.repo);
        let (status, _) = self.get(&url).await?;
        ensure!(status.is_success() || status == 404, "GET {url}: {status}");
        Ok(status.is_success())
    }

    /// The head of `main` and how many commits lead to it (first page).
    async fn head(&self) -> Result<(String, usize), String> {
        let commits = self.json(&self.api("commits/main")).await?;
        let list = commits.as_array().ok_or("the commits listing is no list")?;
        let id = list
            .first()
            .and_then(|c| c["id"].as_str())
            .ok_or("no commit")?;
        Ok((id.to_owned(), list.len()))
    }

    /// The parquet files under `data/{pipeline}/`: path → LFS sha256.
    async fn files(&self, pipeline: &str) -> Result<BTreeMap<String, String>, String> {
        let tree = self
            .json(&self.api(&format!("tree/main/data/{pipeline}?recursive=true")))
            .await?;
        Ok(tree
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["type"] == "file")
            .filter_map(|e| {
                Some((
                    e["path"].as_str()?.to_owned(),
                    e["lfs"]["oid"].as_str()?.to_owned(),
                ))
            })
            .collect())
    }

    async fn download(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        let (status, body) = self.get(&self.resolve(path)).await?;
        if status == 404 {
            return Ok(None);
        }
        ensure!(status.is_success(), "GET {}: {status}", self.resolve(path));
        Ok(Some(body))
    }

    async fn commit(&self, summary: &str, ops: Vec<Value>) -> Result<(), String> {
        let mut body =
            json!({"key": "header", "value": {"summary": summary, "description": ""}}).to_string();
        body.push('\n');
        for op in ops {
            body.push_str(&op.to_string());
            body.push('\n');
        }
        let url = self.api("commit/main");
        let r = self
            .http
            .post(&url)
            .bearer_auth(&self.t.token)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        ensure!(r.status().is_success(), "POST {url}: {}", r.status());
        Ok(())
    }

    async fn delete_repo(&self) -> Result<(), String> {
        let (org, name) = self.t.repo.split_once('/').unwrap_or(("", &self.t.repo));
        let url = format!("{}/api/repos/delete", self.t.endpoint);
        let r = self
            .http
            .delete(&url)
            .bearer_auth(&self.t.token)
            .json_body(&json!({"name": name, "organization": org, "type": "dataset"}))
            .send()
            .await
            .map_err(|e| format!("DELETE {url}: {e}"))?;
        ensure!(r.status().is_success(), "DELETE {url}: {}", r.status());
        Ok(())
    }
}

/// A JSON body without reqwest's `json` feature.
trait JsonBody {
    fn json_body(self, v: &Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, v: &Value) -> Self {
        self.header("content-type", "application/json")
            .body(v.to_string())
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(ABC[(n >> (18 - 6 * i) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}

fn read_parquet(bytes: &[u8]) -> Result<Vec<Reading>, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("window.parquet");
    std::fs::write(&path, bytes).map_err(|e| e.to_string())?;
    meathook_parquet::read_parquet(&path).map_err(|e| e.to_string())
}

fn sink(hub: &Hub, scratch: &std::path::Path) -> HfSink<Reading> {
    HfSink::new(hub.http.clone(), hub.t.repo.clone(), hub.t.token.clone())
        .with_endpoint(hub.t.endpoint.clone())
        .with_create_if_missing(true)
        .with_scratch_dir(scratch)
        // A few commits: a slot of 3.6 s keeps the run short, and the
        // commits of earlier runs in the last hour still count.
        .with_commit_budget(1000, std::time::Duration::from_secs(3600))
}

/// Everything but the clean-up; `written` collects the paths committed.
async fn run(hub: &Hub, written: &mut Vec<String>) -> Result<(), String> {
    // Pipeline names of this run only, so earlier runs' files never count.
    let run = OffsetDateTime::now_utc().unix_timestamp();
    let pipelines = [format!("it{run}_air"), format!("it{run}_rain")];
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;

    // Three windows through a spool, delivered once they close.
    let mut spool = sink(hub, &dir.path().join("scratch"))
        .spooled(dir.path().join("spool"), FlushPolicy::every(HOUR).unwrap());
    spool.open().await.map_err(|e| format!("open: {e}"))?;
    let sent: [(&str, i64, Vec<Reading>); 3] = [
        (&pipelines[0], 0, readings(0, 40)),
        (&pipelines[0], 1, readings(100, 25)),
        (&pipelines[1], 0, readings(1000, 10)),
    ];
    for (pipeline, hour, rows) in &sent {
        let at = T0 + time::Duration::hours(*hour) + time::Duration::minutes(5);
        spool
            .ingest(&WindowMeta::instant(*pipeline, at), rows.clone())
            .await
            .map_err(|e| format!("ingest: {e}"))?;
    }
    spool
        .advance(OffsetDateTime::now_utc())
        .await
        .map_err(|e| format!("advance: {e}"))?;
    let total: u64 = sent.iter().map(|(_, _, r)| r.len() as u64).sum();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    while spool.stats().snapshot().delivered_records < total {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the spool delivered {} of {total} records in 10 minutes",
            spool.stats().snapshot().delivered_records
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    spool.close().await;

    // Every file back through resolve: its sha256 and its rows.
    for pipeline in &pipelines {
        let files = hub.files(pipeline).await?;
        written.extend(files.keys().cloned());
        let mut got = Vec::new();
        for (path, oid) in &files {
            let bytes = hub.download(path).await?.ok_or(format!("{path}: 404"))?;
            ensure!(
                sha256_hex(&bytes) == *oid,
                "{path}: the download's sha256 is not the tree's LFS id {oid}"
            );
            got.extend(read_parquet(&bytes).map_err(|e| format!("{path}: {e}"))?);
        }
        let mut want: Vec<Reading> = sent
            .iter()
            .filter(|(p, _, _)| p == pipeline)
            .flat_map(|(_, _, r)| r.clone())
            .collect();
        got.sort_by_key(|r| r.seq);
        want.sort_by_key(|r| r.seq);
        ensure!(
            got == want,
            "{pipeline}: {} rows read, {} sent",
            got.len(),
            want.len()
        );
    }
    ensure!(written.len() == 3, "3 files expected, found {written:?}");

    // The dataset card names one config per pipeline.
    let card = hub.download("README.md").await?.ok_or("no README.md")?;
    let card = String::from_utf8_lossy(&card);
    for pipeline in &pipelines {
        ensure!(
            card.contains(&format!("config_name: {pipeline}"))
                && card.contains(&format!("data/{pipeline}/")),
            "the card has no config for {pipeline}:\n{card}"
        );
    }

    // A replay: a window committed once, then offered again by a fresh
    // sink (a restart before the spool heard back) commits nothing.
    let window = WindowMeta::containing(pipelines[1].as_str(), T0 + time::Duration::hours(2), HOUR)
        .with_batch(BatchId::new(1, 5000, 5009));
    let rows = readings(5000, 10);
    let mut first = sink(hub, &dir.path().join("scratch"));
    first.open().await.map_err(|e| format!("open: {e}"))?;
    first
        .ingest(&window, rows.clone())
        .await
        .map_err(|e| format!("ingest: {e}"))?;
    let before = hub.head().await?;
    written.extend(hub.files(&pipelines[1]).await?.into_keys());
    let mut again = sink(hub, &dir.path().join("scratch"));
    again.open().await.map_err(|e| format!("open: {e}"))?;
    again
        .ingest(&window, rows)
        .await
        .map_err(|e| format!("replay: {e}"))?;
    let after = hub.head().await?;
    ensure!(
        before == after,
        "the replay committed again: head {before:?} became {after:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "commits to a real Hub dataset: set HF_TOKEN and MEATHOOK_TEST_REPO, run with --ignored"]
async fn windows_reach_a_real_dataset_and_read_back_row_for_row() {
    let hub = Hub {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap(),
        t: target(),
    };
    let existed = hub.exists().await.unwrap();
    let card_before = if existed {
        hub.download("README.md").await.unwrap()
    } else {
        None
    };
    let mut written = Vec::new();
    let outcome = run(&hub, &mut written).await;

    // Clean up whatever happened above.
    let cleaned = if !existed && hub.exists().await.unwrap_or(false) {
        hub.delete_repo().await
    } else if written.is_empty() {
        Ok(())
    } else {
        written.sort();
        written.dedup();
        let mut ops: Vec<Value> = written
            .iter()
            .map(|p| json!({"key": "deletedFile", "value": {"path": p}}))
            .collect();
        ops.push(match &card_before {
            Some(card) => json!({"key": "file", "value": {
                "path": "README.md", "content": base64(card), "encoding": "base64"}}),
            None => json!({"key": "deletedFile", "value": {"path": "README.md"}}),
        });
        hub.commit("meathook integration test: clean up", ops).await
    };
    if let Err(e) = outcome {
        panic!("{e} (clean-up: {cleaned:?})");
    }
    cleaned.unwrap();
}
