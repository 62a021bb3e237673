//! The fake Hub's API routes: whoami, create, delete, preupload, commit
//! and super-squash.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::repo::{CommitInfo, Entry};
use super::state::{Entered, Hub, USER, base64_decode, enter, refuse};
use super::{HubRoute, Shared, TokenRole, lock};

const MAX_INLINE: usize = 10 * 1024 * 1024;
const LFS_SUFFIXES: &[&str] = &[".parquet", ".arrow", ".bin", ".gz", ".zip", ".zst", ".npy"];

pub(crate) async fn whoami(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if let Entered::Answer(r) = enter(&shared, HubRoute::WhoAmI).await {
        return r;
    }
    let hub = lock(&shared);
    match hub.auth(&headers) {
        Err(r) => r,
        Ok(role) => {
            let role = if role == TokenRole::Write {
                "write"
            } else {
                "read"
            };
            Json(json!({"type":"user","name":USER,"auth":{"accessToken":{"displayName":"test","role":role}}})).into_response()
        }
    }
}

pub(crate) async fn create(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Entered::Answer(r) = enter(&shared, HubRoute::CreateRepo).await {
        return r;
    }
    let mut hub = lock(&shared);
    let repo = match dataset_named(&hub, &headers, &body) {
        Ok(repo) => repo,
        Err(r) => return r,
    };
    let url = format!("{}/datasets/{repo}", hub.base);
    let created = match hub.create_repo(&repo) {
        Ok(created) => created,
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, None, &e.to_string()),
    };
    if created {
        Json(json!({"url": url, "name": repo})).into_response()
    } else {
        // The Hub names the existing repository in its 409, and clients
        // asked to tolerate an existing one read that URL.
        let mut r = refuse(
            StatusCode::CONFLICT,
            None,
            "You already created this dataset repo",
        );
        *r.body_mut() = axum::body::Body::from(
            json!({"error": "You already created this dataset repo", "url": url}).to_string(),
        );
        r
    }
}

pub(crate) async fn preupload(
    State(shared): State<Shared>,
    Path((ns, name, rev)): Path<(String, String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let ignore = match enter(&shared, HubRoute::Preupload).await {
        Entered::Answer(r) => return r,
        Entered::Special(f) => f == super::HubFault::Ignore,
        Entered::Go => false,
    };
    let repo = format!("{ns}/{name}");
    let mut hub = lock(&shared);
    if let Err(r) = hub.auth_write(&headers, &repo) {
        return r;
    }
    let head = match hub.branch(&repo, &rev) {
        Ok(head) => head,
        Err(r) => return r,
    };
    let Some(files) = body["files"].as_array() else {
        return refuse(StatusCode::BAD_REQUEST, None, "files must be a list");
    };
    if files.len() > 256 {
        return refuse(StatusCode::BAD_REQUEST, None, "at most 256 files per call");
    }
    let mut out = Vec::new();
    for f in files {
        let path = f["path"].as_str().unwrap_or_default();
        let size = f["size"].as_u64().unwrap_or(0);
        let sample = base64_decode(f["sample"].as_str().unwrap_or_default()).unwrap_or_default();
        let lfs = LFS_SUFFIXES.iter().any(|s| path.ends_with(s))
            || size >= MAX_INLINE as u64
            || sample.contains(&0);
        let mut entry = json!({
            "path": path,
            "uploadMode": if lfs { "lfs" } else { "regular" },
            "shouldIgnore": ignore,
        });
        if let Some(Entry::Lfs { oid, .. }) = head.files.get(path) {
            entry["oid"] = Value::from(oid.as_str());
        }
        out.push(entry);
    }
    Json(json!({"commitOid": head.id, "files": out})).into_response()
}

fn bad_path(path: &str) -> bool {
    path.is_empty()
        || path.starts_with('/')
        || path
            .split('/')
            .any(|s| s == ".." || s == "." || s.is_empty())
}

pub(crate) async fn commit(
    State(shared): State<Shared>,
    Path((ns, name, rev)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let special = match enter(&shared, HubRoute::Commit).await {
        Entered::Answer(r) => return r,
        Entered::Special(f) => Some(f),
        Entered::Go => None,
    };
    let repo = format!("{ns}/{name}");
    let mut hub = lock(&shared);
    if let Err(r) = hub.auth_write(&headers, &repo) {
        return r;
    }
    if let Err(r) = hub.branch(&repo, &rev) {
        return r;
    }
    if special == Some(super::HubFault::StaleParent) {
        // Another writer's commit: in the history, not in the commit log
        // of requests this fake applied.
        let info = CommitInfo {
            title: "another writer".into(),
            message: String::new(),
            author: "another-writer".into(),
            date: hub.now(),
        };
        if let Err(e) = hub.apply(&repo, &rev, info, Vec::new()) {
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, None, &e.to_string());
        }
    }
    let lines: Result<Vec<Value>, _> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(serde_json::from_slice::<Value>)
        .collect();
    let Ok(lines) = lines else {
        return refuse(StatusCode::BAD_REQUEST, None, "every line must be JSON");
    };
    if !body.ends_with(b"\n") || lines.first().map(|l| &l["key"]) != Some(&json!("header")) {
        return refuse(
            StatusCode::BAD_REQUEST,
            None,
            "the header line must come first",
        );
    }
    let header = &lines[0]["value"];
    let mut changes: Vec<(String, Option<Entry>)> = Vec::new();
    for line in &lines[1..] {
        let v = &line["value"];
        let path = v["path"].as_str().unwrap_or_default().to_owned();
        if bad_path(&path) {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                &format!("invalid path {path:?}"),
            );
        }
        match line["key"].as_str() {
            Some("lfsFile") => {
                let oid = v["oid"].as_str().unwrap_or_default().to_owned();
                let size = v["size"].as_u64().unwrap_or(u64::MAX);
                if hub.stored.get(&oid) != Some(&size) {
                    return refuse(
                        StatusCode::BAD_REQUEST,
                        None,
                        &format!("lfsFile {path} references object {oid} which was never uploaded"),
                    );
                }
                changes.push((path, Some(Entry::Lfs { oid, size })));
            }
            Some("file") => {
                let Some(content) = base64_decode(v["content"].as_str().unwrap_or_default()) else {
                    return refuse(StatusCode::BAD_REQUEST, None, "content is not base64");
                };
                if content.len() >= MAX_INLINE || content.contains(&0) {
                    return refuse(
                        StatusCode::BAD_REQUEST,
                        None,
                        &format!("{path}: binary or ≥ 10 MiB files must be uploaded with LFS"),
                    );
                }
                changes.push((
                    path,
                    Some(Entry::Regular {
                        content: content.into(),
                    }),
                ));
            }
            Some("deletedFile") => changes.push((path, None)),
            other => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    None,
                    &format!("unknown operation {other:?}"),
                );
            }
        }
    }
    if changes.is_empty() {
        return refuse(StatusCode::BAD_REQUEST, None, "no operations in the commit");
    }
    if let Some(super::HubFault::RefusePaths(text)) = &special
        && let Some((path, _)) = changes.iter().find(|(p, _)| p.contains(text.as_str()))
    {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            &format!("{path}: this path is refused"),
        );
    }
    let base = hub.base.clone();
    let head = match hub.branch(&repo, &rev) {
        Ok(head) => head.id.clone(),
        Err(r) => return r,
    };
    if let Some(parent) = header["parentCommit"].as_str()
        && parent != head
    {
        return refuse(
            StatusCode::PRECONDITION_FAILED,
            None,
            "A commit has happened since. Please refresh and try again.",
        );
    }
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let info = CommitInfo {
        title: text(&header["summary"]),
        message: text(&header["description"]),
        author: USER.to_owned(),
        date: hub.now(),
    };
    let oid = match hub.commit(&repo, &rev, info, changes) {
        Ok(commit) => commit.id,
        Err(r) => return r,
    };
    if special == Some(super::HubFault::ApplyThen504) {
        return (
            StatusCode::GATEWAY_TIMEOUT,
            "<html>504 Gateway Time-out</html>",
        )
            .into_response();
    }
    Json(json!({
        "success": true,
        "commitOid": oid,
        "commitUrl": format!("{base}/datasets/{repo}/commit/{oid}"),
        "commitMessage": header["summary"],
    }))
    .into_response()
}

/// The dataset a create or delete body names, if the token may write to
/// it; the fake hosts nothing else.
fn dataset_named(hub: &Hub, headers: &HeaderMap, body: &Value) -> Result<String, Response> {
    let repo = repo_named(body);
    hub.auth_write(headers, &repo)?;
    if body["type"].as_str() != Some("dataset") {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            None,
            "this fake only hosts datasets",
        ));
    }
    Ok(repo)
}

/// `ns/name` from a create or delete body (`name` may hold both).
fn repo_named(body: &Value) -> String {
    let name = body["name"].as_str().unwrap_or_default();
    let org = body["organization"].as_str().unwrap_or(USER);
    if name.contains('/') {
        name.to_owned()
    } else {
        format!("{org}/{name}")
    }
}

/// `DELETE /api/repos/delete` `{"name","organization","type"}`.
pub(crate) async fn delete(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Entered::Answer(r) = enter(&shared, HubRoute::DeleteRepo).await {
        return r;
    }
    let mut hub = lock(&shared);
    let repo = match dataset_named(&hub, &headers, &body) {
        Ok(repo) => repo,
        Err(r) => return r,
    };
    match hub.delete_repo(&repo) {
        Ok(true) => StatusCode::OK.into_response(),
        Ok(false) => refuse(
            StatusCode::NOT_FOUND,
            Some("RepoNotFound"),
            &format!("Repository not found: {repo}"),
        ),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, None, &e.to_string()),
    }
}

/// `POST /api/datasets/{ns}/{name}/super-squash/{branch}`, a JSON body
/// `{"message": …}` (optional, as in the Hub's API description; the fake
/// writes `Super-squash branch {branch}` without one): the branch's
/// history replaced by one commit holding the files of its head, answered
/// `{"commitId": …}`. The message's first line is the commit's title, the
/// rest its message. A write token is required; a missing repository or
/// branch is a 404 with `X-Error-Code` (a squash never creates a dataset).
pub(crate) async fn super_squash(
    State(shared): State<Shared>,
    Path((ns, name, rev)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let special = match enter(&shared, HubRoute::SuperSquash).await {
        Entered::Answer(r) => return r,
        Entered::Special(f) => Some(f),
        Entered::Go => None,
    };
    let repo = format!("{ns}/{name}");
    let mut hub = lock(&shared);
    if let Err(r) = hub.auth_write(&headers, &repo) {
        return r;
    }
    let asked = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) if v.is_object() => v["message"].clone(),
            _ => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    None,
                    "the body must be a JSON object",
                );
            }
        }
    };
    let text = match &asked {
        Value::Null => "",
        Value::String(text) => text.trim(),
        _ => return refuse(StatusCode::BAD_REQUEST, None, "message must be a string"),
    };
    let (title, message) = match text.split_once('\n') {
        _ if text.is_empty() => (format!("Super-squash branch {rev}"), String::new()),
        Some((title, rest)) => (title.trim().to_owned(), rest.trim().to_owned()),
        None => (text.to_owned(), String::new()),
    };
    let info = CommitInfo {
        title,
        message,
        author: USER.to_owned(),
        date: hub.now(),
    };
    let id = match hub.squash(&repo, &rev, info) {
        Ok(commit) => commit.id,
        Err(r) => return r,
    };
    if special == Some(super::HubFault::ApplyThen504) {
        return (
            StatusCode::GATEWAY_TIMEOUT,
            "<html>504 Gateway Time-out</html>",
        )
            .into_response();
    }
    Json(json!({ "commitId": id })).into_response()
}
