//! The fake Hub's read routes: tree listing, repository info and `resolve`
//! downloads (with the headers `huggingface_hub` reads from a `HEAD`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::state::{Entered, Entry, Hub, enter, refuse, sha256_hex};
use super::{HubRoute, Shared, lock};

/// A git-style id for a path's entry (the fake keeps no git objects).
fn blob_id(path: &str, entry: &Entry) -> String {
    let seed = match entry {
        Entry::Lfs { oid, .. } => format!("lfs {path} {oid}"),
        Entry::Regular { content } => format!("blob {path} {}", sha256_hex(content)),
    };
    sha256_hex(seed.as_bytes())[..40].to_owned()
}

fn file_json(path: &str, entry: &Entry) -> Value {
    match entry {
        Entry::Lfs { oid, size } => json!({
            "type": "file", "oid": blob_id(path, entry), "size": size, "path": path,
            "lfs": {"oid": oid, "size": size, "pointerSize": 134},
        }),
        Entry::Regular { content } => json!({
            "type": "file", "oid": blob_id(path, entry), "size": content.len(), "path": path,
        }),
    }
}

fn dir_json(path: &str) -> Value {
    json!({"type": "directory", "oid": sha256_hex(path.as_bytes())[..40], "size": 0, "path": path})
}

fn truthy(query: &HashMap<String, String>, key: &str) -> bool {
    query
        .get(key)
        .is_some_and(|v| matches!(v.as_str(), "true" | "True" | "1"))
}

/// Read routes accept any valid token (or none: the fake's datasets are
/// public), but a token that is sent must be valid.
fn read_auth(hub: &Hub, headers: &HeaderMap) -> Result<(), Response> {
    if headers.contains_key(header::AUTHORIZATION) {
        hub.auth(headers)?;
    }
    Ok(())
}

fn listing(hub: &Hub, repo: &str, rev: &str, dir: &str, recursive: bool) -> Response {
    let Some(branch) = hub.repos.get(repo).and_then(|r| r.get(rev)) else {
        return refuse(
            StatusCode::NOT_FOUND,
            Some("RevisionNotFound"),
            &format!("{repo}: no revision {rev}"),
        );
    };
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{}/", dir.trim_end_matches('/'))
    };
    if !prefix.is_empty() && !branch.files.keys().any(|p| p.starts_with(&prefix)) {
        return refuse(
            StatusCode::NOT_FOUND,
            Some("EntryNotFound"),
            &format!("{dir} does not exist on {rev}"),
        );
    }
    let mut dirs = BTreeSet::new();
    let mut files = Vec::new();
    for (path, entry) in branch.files.range(prefix.clone()..) {
        let Some(rest) = path.strip_prefix(&prefix) else {
            break;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        if recursive {
            for i in 1..parts.len() {
                dirs.insert(format!("{prefix}{}", parts[..i].join("/")));
            }
            files.push(file_json(path, entry));
        } else if parts.len() == 1 {
            files.push(file_json(path, entry));
        } else {
            dirs.insert(format!("{prefix}{}", parts[0]));
        }
    }
    let mut out: Vec<Value> = dirs.iter().map(|d| dir_json(d)).collect();
    out.extend(files);
    Json(out).into_response()
}

/// `GET /api/datasets/{ns}/{name}/tree/{rev}`.
pub(crate) async fn tree_root(
    State(shared): State<Shared>,
    Path((ns, name, rev)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    tree_of(&shared, &format!("{ns}/{name}"), &rev, "", &query, &headers).await
}

/// `GET /api/datasets/{ns}/{name}/tree/{rev}/{path}`.
pub(crate) async fn tree(
    State(shared): State<Shared>,
    Path((ns, name, rev, path)): Path<(String, String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    tree_of(
        &shared,
        &format!("{ns}/{name}"),
        &rev,
        &path,
        &query,
        &headers,
    )
    .await
}

async fn tree_of(
    shared: &Shared,
    repo: &str,
    rev: &str,
    dir: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    if let Entered::Answer(r) = enter(shared, HubRoute::Tree).await {
        return r;
    }
    let hub = lock(shared);
    if let Err(r) = read_auth(&hub, headers) {
        return r;
    }
    listing(&hub, repo, rev, dir, truthy(query, "recursive"))
}

fn info_of(hub: &Hub, repo: &str, rev: &str) -> Response {
    let Some(branches) = hub.repos.get(repo) else {
        return refuse(
            StatusCode::NOT_FOUND,
            Some("RepoNotFound"),
            &format!("Repository not found: {repo}"),
        );
    };
    let Some(branch) = branches.get(rev) else {
        return refuse(
            StatusCode::NOT_FOUND,
            Some("RevisionNotFound"),
            &format!("Invalid rev id: {rev}"),
        );
    };
    let (author, _) = repo.split_once('/').unwrap_or((repo, ""));
    let siblings: Vec<Value> = branch
        .files
        .keys()
        .map(|p| json!({"rfilename": p}))
        .collect();
    Json(json!({
        "id": repo, "author": author, "sha": branch.head, "private": false,
        "gated": false, "disabled": false, "downloads": 0, "likes": 0, "tags": [],
        "siblings": siblings,
    }))
    .into_response()
}

/// `GET /api/datasets/{ns}/{name}`.
pub(crate) async fn info(
    State(shared): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let hub = lock(&shared);
    if let Err(r) = read_auth(&hub, &headers) {
        return r;
    }
    info_of(&hub, &format!("{ns}/{name}"), "main")
}

/// `GET /api/datasets/{ns}/{name}/revision/{rev}`.
pub(crate) async fn info_at(
    State(shared): State<Shared>,
    Path((ns, name, rev)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let hub = lock(&shared);
    if let Err(r) = read_auth(&hub, &headers) {
        return r;
    }
    info_of(&hub, &format!("{ns}/{name}"), &rev)
}

/// `GET` (and `HEAD`) `/datasets/{ns}/{name}/resolve/{rev}/{path}`: the
/// bytes, with `X-Repo-Commit`, `ETag` and, for LFS files,
/// `X-Linked-Etag` and `X-Linked-Size`.
pub(crate) async fn resolve(
    State(shared): State<Shared>,
    Path((ns, name, rev, path)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Entered::Answer(r) = enter(&shared, HubRoute::Resolve).await {
        return r;
    }
    let repo = format!("{ns}/{name}");
    let hub = lock(&shared);
    if let Err(r) = read_auth(&hub, &headers) {
        return r;
    }
    let Some(branch) = hub.repos.get(&repo).and_then(|r| r.get(&rev)) else {
        return refuse(
            StatusCode::NOT_FOUND,
            Some("RevisionNotFound"),
            &format!("{repo}: no revision {rev}"),
        );
    };
    let Some(entry) = branch.files.get(&path) else {
        return refuse(
            StatusCode::NOT_FOUND,
            Some("EntryNotFound"),
            &format!("{path} does not exist on {rev}"),
        );
    };
    let mut extra: BTreeMap<&'static str, String> = BTreeMap::new();
    extra.insert("x-repo-commit", branch.head.clone());
    extra.insert("etag", format!("\"{}\"", blob_id(&path, entry)));
    if let Entry::Lfs { oid, size } = entry {
        extra.insert("x-linked-etag", format!("\"{oid}\""));
        extra.insert("x-linked-size", size.to_string());
    }
    let Some(bytes) = hub.read_file(&repo, &rev, &path) else {
        return refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            &format!("object of {path} is missing from the store"),
        );
    };
    let mut r = bytes.into_response();
    for (name, value) in extra {
        if let Ok(v) = HeaderValue::from_str(&value) {
            r.headers_mut().insert(name, v);
        }
    }
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    r
}
