//! The fake Hub's revisions, commit ids, commits listing and data
//! directory, over HTTP; and the official client reading them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use serde_json::{Value, json};

use super::{FakeHub, FakeHubConfig};

const TOKEN: &str = "hf_fake";

/// Commits `path` = `text` to `main` of `repo` as an inline file.
async fn commit(hub: &FakeHub, repo: &str, path: &str, text: &str) -> String {
    let content = base64(text.as_bytes());
    let body = format!(
        "{}\n{}\n",
        json!({"key": "header", "value": {"summary": format!("write {path}"), "description": ""}}),
        json!({"key": "file", "value": {"path": path, "content": content, "encoding": "base64"}}),
    );
    let r = reqwest::Client::new()
        .post(format!(
            "{}/api/datasets/{repo}/commit/main",
            hub.endpoint()
        ))
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    answer["commitOid"].as_str().unwrap().to_owned()
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
            if i <= chunk.len() {
                out.push(char::from(ABC[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

async fn get(url: &str) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let r = reqwest::get(url).await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    (status, headers, r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn a_commit_id_reads_the_tree_as_it_was_on_every_read_route() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    let first = commit(&hub, "o/r", "a.txt", "one\n").await;
    let second = commit(&hub, "o/r", "a.txt", "two\n").await;
    assert_ne!(first, second);
    let ep = hub.endpoint();

    let (status, headers, body) = get(&format!("{ep}/datasets/o/r/resolve/{first}/a.txt")).await;
    assert_eq!(status, 200);
    assert_eq!(body, b"one\n");
    assert_eq!(headers["x-repo-commit"], first.as_str());
    let (_, _, body) = get(&format!("{ep}/datasets/o/r/resolve/main/a.txt")).await;
    assert_eq!(body, b"two\n");

    let (status, _, body) = get(&format!("{ep}/api/datasets/o/r/revision/{first}")).await;
    assert_eq!(status, 200);
    let info: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(info["sha"], first.as_str());

    let (_, _, body) = get(&format!(
        "{ep}/api/datasets/o/r/tree/{first}?recursive=true"
    ))
    .await;
    let tree: Value = serde_json::from_slice(&body).unwrap();
    let sizes: Vec<(&str, u64)> = tree
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].as_str().unwrap(), e["size"].as_u64().unwrap()))
        .collect();
    assert_eq!(sizes, [(".gitattributes", 46), ("a.txt", 4)]);

    let r = reqwest::Client::new()
        .post(format!("{ep}/api/datasets/o/r/paths-info/{first}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("paths=a.txt&paths=missing&expand=False")
        .send()
        .await
        .unwrap();
    let info: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(info.as_array().unwrap().len(), 1, "{info}");
    assert_eq!(info[0]["path"], "a.txt");

    // An unknown id is a missing revision, not a branch.
    let unknown = "0123456789abcdef0123456789abcdef01234567";
    let (status, headers, _) = get(&format!("{ep}/datasets/o/r/resolve/{unknown}/a.txt")).await;
    assert_eq!(status, 404);
    assert_eq!(headers["x-error-code"], "RevisionNotFound");
    // Writes take branches only.
    let r = reqwest::Client::new()
        .post(format!("{ep}/api/datasets/o/r/preupload/{first}"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(r#"{"files":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn two_repositories_get_different_first_commits() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    hub.create_repo("o/a");
    hub.create_repo("o/b");
    let (a, b) = (hub.resolve("o/a", "main"), hub.resolve("o/b", "main"));
    assert!(a.is_some() && b.is_some());
    assert_ne!(a, b);
}

#[tokio::test]
async fn commits_are_listed_newest_first_a_page_at_a_time_with_their_dates() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    let before = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let mut ids = Vec::new();
    for i in 0..super::read::COMMITS_PER_PAGE + 5 {
        ids.push(commit(&hub, "o/r", &format!("f{i}.txt"), "x").await);
    }
    let after = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
    let ep = hub.endpoint();
    let (status, headers, body) = get(&format!("{ep}/api/datasets/o/r/commits/main")).await;
    assert_eq!(status, 200);
    assert!(headers.contains_key("date"), "{headers:?}");
    let page: Vec<Value> = serde_json::from_slice(&body).unwrap();
    assert_eq!(page.len(), super::read::COMMITS_PER_PAGE);
    assert_eq!(page[0]["id"], ids.last().unwrap().as_str());
    assert_eq!(page[0]["title"], format!("write f{}.txt", ids.len() - 1));
    assert_eq!(page[0]["authors"][0]["user"], super::state::USER);
    let date = time::OffsetDateTime::parse(
        page[0]["date"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        before < date && date < after,
        "{date} is not the time of the commit"
    );
    let link = headers["link"].to_str().unwrap();
    assert_eq!(
        link,
        format!("<{ep}/api/datasets/o/r/commits/main?p=1>; rel=\"next\"")
    );
    let (_, headers, body) = get(&format!("{ep}/api/datasets/o/r/commits/main?p=1")).await;
    let rest: Vec<Value> = serde_json::from_slice(&body).unwrap();
    // The five left and the repository's initial commit.
    assert_eq!(rest.len(), 6);
    assert_eq!(rest[5]["title"], "initial commit");
    assert!(!headers.contains_key("link"));
    // From an older commit, only its history.
    let (_, _, body) = get(&format!("{ep}/api/datasets/o/r/commits/{}", ids[1])).await;
    let old: Vec<Value> = serde_json::from_slice(&body).unwrap();
    let old: Vec<&str> = old.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(old[..2], [ids[1].as_str(), ids[0].as_str()]);
    assert_eq!(old.len(), 3);
}

#[tokio::test]
async fn repositories_outlive_the_server_with_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config = FakeHubConfig {
        data_dir: Some(dir.path().to_owned()),
        ..FakeHubConfig::default()
    };
    let hub = FakeHub::start(config.clone()).await.unwrap();
    let first = commit(&hub, "o/r", "a.txt", "one\n").await;
    let second = commit(&hub, "o/r", "a.txt", "two\n").await;
    let listed = get(&format!("{}/api/datasets/o/r/commits/main", hub.endpoint()))
        .await
        .2;
    drop(hub);

    let hub = FakeHub::start(config).await.unwrap();
    assert_eq!(hub.resolve("o/r", "main").as_deref(), Some(second.as_str()));
    assert_eq!(hub.download("o/r", &first, "a.txt").unwrap(), b"one\n");
    assert_eq!(hub.download("o/r", "main", "a.txt").unwrap(), b"two\n");
    let again = get(&format!("{}/api/datasets/o/r/commits/main", hub.endpoint()))
        .await
        .2;
    assert_eq!(
        serde_json::from_slice::<Value>(&again).unwrap(),
        serde_json::from_slice::<Value>(&listed).unwrap()
    );
    // And it goes on from there.
    let third = commit(&hub, "o/r", "b.txt", "three\n").await;
    assert_ne!(third, second);
    assert_eq!(hub.files("o/r", "main").len(), 3);
}

#[tokio::test]
async fn a_torn_last_line_is_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let config = FakeHubConfig {
        data_dir: Some(dir.path().to_owned()),
        ..FakeHubConfig::default()
    };
    let hub = FakeHub::start(config.clone()).await.unwrap();
    let id = commit(&hub, "o/r", "a.txt", "one\n").await;
    drop(hub);
    let log = dir.path().join("repos.jsonl");
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str("{\"event\":\"commit\",\"re");
    std::fs::write(&log, text).unwrap();
    let hub = FakeHub::start(config).await.unwrap();
    assert_eq!(hub.resolve("o/r", "main").as_deref(), Some(id.as_str()));
}

/// The official client, pointed at the fake: the commits listing across
/// pages; a snapshot, a tree, paths-info and repo info at an older
/// commit; whoami, create (and create again, tolerated) and delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_lists_commits_and_reads_an_old_commit() {
    let Some(python) = crate::python::interpreter() else {
        return;
    };
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    let old = commit(&hub, "o/r", "a.txt", "one\n").await;
    for i in 0..super::read::COMMITS_PER_PAGE + 1 {
        commit(&hub, "o/r", &format!("more/f{i}.txt"), "x").await;
    }
    let cache = tempfile::tempdir().unwrap();
    let script = r#"
import json, os, sys
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
from huggingface_hub import HfApi, snapshot_download
endpoint, old, cache = sys.argv[1:4]
api = HfApi(endpoint=endpoint, token="hf_fake")
commits = api.list_repo_commits("o/r", repo_type="dataset")
info = api.dataset_info("o/r", revision=old)
tree = sorted(f.path for f in api.list_repo_tree("o/r", repo_type="dataset", revision=old, recursive=True))
paths = [p.path for p in api.get_paths_info("o/r", ["a.txt", "more"], repo_type="dataset", revision=old)]
snap = snapshot_download("o/r", repo_type="dataset", revision=old, cache_dir=cache, endpoint=endpoint, token="hf_fake")
files = sorted(os.path.relpath(os.path.join(d, f), snap) for d, _, fs in os.walk(snap) for f in fs)
who = api.whoami()["name"]
made = api.create_repo("o/made", repo_type="dataset", private=True)
again = api.create_repo("o/made", repo_type="dataset", private=True, exist_ok=True)
api.delete_repo("o/made", repo_type="dataset")
gone = not api.repo_exists("o/made", repo_type="dataset")
print(json.dumps({
    "who": who, "made": str(made), "again": str(again), "gone": gone,
    "ids": [c.commit_id for c in commits],
    "dates": [c.created_at.isoformat() for c in commits],
    "sha": info.sha, "tree": tree, "paths": paths, "files": files,
    "a": open(os.path.join(snap, "a.txt")).read(),
}))
"#;
    let mut cmd = std::process::Command::new(python);
    cmd.arg("-c")
        .arg(script)
        .arg(hub.endpoint())
        .arg(&old)
        .arg(cache.path());
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = got["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    // Every commit, across two pages: the initial one, ours, 51 more.
    assert_eq!(ids.len(), super::read::COMMITS_PER_PAGE + 3);
    assert_eq!(ids[ids.len() - 2], old);
    assert_eq!(Some(ids[0].to_owned()), hub.resolve("o/r", "main"));
    assert!(got["dates"][0].as_str().unwrap().ends_with("+00:00"));
    assert_eq!(got["sha"], old.as_str());
    assert_eq!(got["tree"], json!([".gitattributes", "a.txt"]));
    assert_eq!(got["paths"], json!(["a.txt"]));
    assert_eq!(got["files"], json!([".gitattributes", "a.txt"]));
    assert_eq!(got["a"], "one\n");
    assert_eq!(got["who"], super::state::USER);
    let made = format!("{}/datasets/o/made", hub.endpoint());
    assert_eq!(got["made"], made.as_str());
    assert_eq!(got["again"], made.as_str());
    assert_eq!(got["gone"], true);
    assert!(hub.resolve("o/made", "main").is_none());
}
