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

/// Posts a super-squash of `rev` of `repo` with `body`, with `token` if
/// given: the status, the error code and the JSON answer (`null` if none).
async fn squash(
    hub: &FakeHub,
    repo: &str,
    rev: &str,
    body: &str,
    token: Option<&str>,
) -> (reqwest::StatusCode, Option<String>, Value) {
    let mut request = reqwest::Client::new()
        .post(format!(
            "{}/api/datasets/{repo}/super-squash/{rev}",
            hub.endpoint()
        ))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let r = request.send().await.unwrap();
    let status = r.status();
    let code = r
        .headers()
        .get("x-error-code")
        .map(|v| v.to_str().unwrap().to_owned());
    let answer = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or(Value::Null);
    (status, code, answer)
}

/// The ids the commits listing of `rev` gives, newest first.
async fn listed(hub: &FakeHub, repo: &str, rev: &str) -> Vec<String> {
    let (status, _, body) = get(&format!(
        "{}/api/datasets/{repo}/commits/{rev}",
        hub.endpoint()
    ))
    .await;
    assert_eq!(status, 200);
    let page: Vec<Value> = serde_json::from_slice(&body).unwrap();
    page.iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_super_squash_leaves_one_commit_holding_the_same_files() {
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    let first = commit(&hub, "o/r", "a.txt", "one\n").await;
    commit(&hub, "o/r", "b.txt", "two\n").await;
    commit(&hub, "o/r", "a.txt", "three\n").await;
    let before = listed(&hub, "o/r", "main").await;
    assert_eq!(before.len(), 4);
    let files = hub.files("o/r", "main");

    let (status, _, answer) = squash(
        &hub,
        "o/r",
        "main",
        r#"{"message":"fresh start\n\nall of it"}"#,
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let id = answer["commitId"].as_str().unwrap().to_owned();
    assert!(super::repo::is_commit_id(&id) && !before.contains(&id));
    assert_eq!(hub.resolve("o/r", "main").as_deref(), Some(id.as_str()));
    assert_eq!(hub.requests(super::HubRoute::SuperSquash), 1);

    // One commit, titled by the message's first line, the same files.
    let ep = hub.endpoint();
    let (_, _, body) = get(&format!("{ep}/api/datasets/o/r/commits/main")).await;
    let page: Vec<Value> = serde_json::from_slice(&body).unwrap();
    assert_eq!(page.len(), 1, "{page:?}");
    assert_eq!(page[0]["id"], id.as_str());
    assert_eq!(page[0]["title"], "fresh start");
    assert_eq!(page[0]["message"], "all of it");
    assert_eq!(hub.files("o/r", "main"), files);
    assert_eq!(hub.download("o/r", "main", "a.txt").unwrap(), b"three\n");
    let (status, headers, _) = get(&format!("{ep}/datasets/o/r/resolve/{id}/b.txt")).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-repo-commit"], id.as_str());
    // The old ids are gone, on every read route.
    for old in &before {
        assert!(hub.resolve("o/r", old).is_none(), "{old} still resolves");
    }
    let (status, headers, _) = get(&format!("{ep}/datasets/o/r/resolve/{first}/a.txt")).await;
    assert_eq!(status, 404);
    assert_eq!(headers["x-error-code"], "RevisionNotFound");
    let (status, _, _) = get(&format!("{ep}/api/datasets/o/r/commits/{first}")).await;
    assert_eq!(status, 404);

    // Logged like a commit, without paths; and commits go on from it.
    let log = hub.commits();
    let last = log.last().unwrap();
    assert!(last.squashed && last.paths.is_empty());
    assert_eq!(last.oid, id);
    assert_eq!(log.iter().filter(|c| c.squashed).count(), 1);
    let next = commit(&hub, "o/r", "c.txt", "four\n").await;
    assert_eq!(listed(&hub, "o/r", "main").await, [next, id]);
    assert_eq!(hub.files("o/r", "main").len(), files.len() + 1);
}

#[tokio::test]
async fn a_super_squash_needs_a_write_token_a_branch_and_a_json_body() {
    let config = FakeHubConfig {
        tokens: [
            (TOKEN.to_owned(), super::TokenRole::Write),
            ("hf_read".to_owned(), super::TokenRole::Read),
        ]
        .into(),
        ..FakeHubConfig::default()
    };
    let hub = FakeHub::start(config).await.unwrap();
    let id = commit(&hub, "o/r", "a.txt", "one\n").await;
    let body = r#"{"message":"s"}"#;
    let cases = [
        ("o/r", "main", body, None, 401, None),
        ("o/r", "main", body, Some("hf_wrong"), 401, None),
        ("o/r", "main", body, Some("hf_read"), 403, None),
        (
            "o/missing",
            "main",
            body,
            Some(TOKEN),
            404,
            Some("RepoNotFound"),
        ),
        (
            "o/r",
            "dev",
            body,
            Some(TOKEN),
            404,
            Some("RevisionNotFound"),
        ),
        ("o/r", &id, body, Some(TOKEN), 404, Some("RevisionNotFound")),
        ("o/r", "main", "[1]", Some(TOKEN), 400, None),
    ];
    for (repo, rev, body, token, status, code) in cases {
        let (got, got_code, answer) = squash(&hub, repo, rev, body, token).await;
        assert_eq!(
            got.as_u16(),
            status,
            "{repo} {rev} {body} {token:?}: {answer}"
        );
        assert_eq!(got_code.as_deref(), code, "{repo} {rev}");
    }
    // No squash happened, and no dataset was created on the way.
    assert!(hub.commits().iter().all(|c| !c.squashed));
    assert!(hub.resolve("o/missing", "main").is_none());
    assert_eq!(hub.resolve("o/r", "main").as_deref(), Some(id.as_str()));
    assert_eq!(hub.requests(super::HubRoute::SuperSquash), 7);

    // Without a message (or a body), the fake names the branch.
    let (status, _, answer) = squash(&hub, "o/r", "main", "", Some(TOKEN)).await;
    assert_eq!(status, 200, "{answer}");
    let (_, _, body) = get(&format!("{}/api/datasets/o/r/commits/main", hub.endpoint())).await;
    let page: Vec<Value> = serde_json::from_slice(&body).unwrap();
    assert_eq!(page[0]["title"], "Super-squash branch main");
}

#[tokio::test]
async fn super_squash_faults_are_served_and_a_504_may_follow_the_squash() {
    use super::{HubFault, HubRoute};
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    let old = commit(&hub, "o/r", "a.txt", "one\n").await;
    hub.inject(
        HubRoute::SuperSquash,
        [HubFault::Status(503), HubFault::ApplyThen504],
    );
    let (status, _, _) = squash(&hub, "o/r", "main", "{}", Some(TOKEN)).await;
    assert_eq!(status, 503);
    assert_eq!(hub.resolve("o/r", "main").as_deref(), Some(old.as_str()));
    let (status, _, _) = squash(&hub, "o/r", "main", "{}", Some(TOKEN)).await;
    assert_eq!(status, 504);
    assert!(hub.resolve("o/r", &old).is_none(), "applied before the 504");
    assert_eq!(listed(&hub, "o/r", "main").await.len(), 1);
    assert_eq!(hub.requests(HubRoute::SuperSquash), 2);
}

#[tokio::test]
async fn a_super_squash_outlives_the_server_with_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config = FakeHubConfig {
        data_dir: Some(dir.path().to_owned()),
        ..FakeHubConfig::default()
    };
    let hub = FakeHub::start(config.clone()).await.unwrap();
    let old = commit(&hub, "o/r", "a.txt", "one\n").await;
    commit(&hub, "o/r", "b.txt", "two\n").await;
    let (status, _, answer) = squash(&hub, "o/r", "main", r#"{"message":"s"}"#, Some(TOKEN)).await;
    assert_eq!(status, 200);
    let id = answer["commitId"].as_str().unwrap().to_owned();
    let after = commit(&hub, "o/r", "c.txt", "three\n").await;
    let files = hub.files("o/r", "main");
    drop(hub);

    let hub = FakeHub::start(config).await.unwrap();
    assert_eq!(listed(&hub, "o/r", "main").await, [after.clone(), id]);
    assert_eq!(hub.files("o/r", "main"), files);
    assert!(hub.resolve("o/r", &old).is_none());
    assert_eq!(hub.download("o/r", "main", "a.txt").unwrap(), b"one\n");
    let next = commit(&hub, "o/r", "d.txt", "four\n").await;
    assert_eq!(listed(&hub, "o/r", "main").await[..2], [next, after]);
}

/// The official client's `super_squash_history`, pointed at the fake: the
/// branch lists one commit afterwards, titled by the message given, and
/// every file still downloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_squashes_a_branch() {
    let Some(python) = crate::python::interpreter() else {
        return;
    };
    let hub = FakeHub::start(FakeHubConfig::default()).await.unwrap();
    for i in 0..5 {
        commit(&hub, "o/r", &format!("f{i}.txt"), &format!("{i}\n")).await;
    }
    let cache = tempfile::tempdir().unwrap();
    let script = r#"
import json, os, sys
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
from huggingface_hub import HfApi, hf_hub_download
endpoint, cache = sys.argv[1:3]
api = HfApi(endpoint=endpoint, token="hf_fake")
before = [c.commit_id for c in api.list_repo_commits("o/r", repo_type="dataset")]
api.super_squash_history("o/r", repo_type="dataset", commit_message="one commit")
after = api.list_repo_commits("o/r", repo_type="dataset")
files = sorted(api.list_repo_files("o/r", repo_type="dataset"))
f3 = open(hf_hub_download("o/r", "f3.txt", repo_type="dataset", cache_dir=cache, endpoint=endpoint, token="hf_fake")).read()
print(json.dumps({
    "before": before, "after": [c.commit_id for c in after],
    "title": after[0].title, "files": files, "f3": f3,
}))
"#;
    let mut cmd = std::process::Command::new(python);
    cmd.arg("-c")
        .arg(script)
        .arg(hub.endpoint())
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
    assert_eq!(got["before"].as_array().unwrap().len(), 6);
    let after = got["after"].as_array().unwrap();
    assert_eq!(after.len(), 1, "{got}");
    assert_eq!(
        Some(after[0].as_str().unwrap().to_owned()),
        hub.resolve("o/r", "main")
    );
    assert_eq!(got["title"], "one commit");
    assert_eq!(
        got["files"],
        json!([
            ".gitattributes",
            "f0.txt",
            "f1.txt",
            "f2.txt",
            "f3.txt",
            "f4.txt"
        ])
    );
    assert_eq!(got["f3"], "3\n");
    assert_eq!(hub.requests(super::HubRoute::SuperSquash), 1);
}
