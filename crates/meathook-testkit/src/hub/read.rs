//! The fake Hub's read routes: tree listing, paths-info, repository info,
//! the commits listing and `resolve` downloads (with the headers
//! `huggingface_hub` reads from a `HEAD`). Each takes a revision that is a
//! branch or a full commit id, and answers as of that commit.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::repo::{Commit, Entry, rfc3339_millis, sha256_hex};
use super::state::{Entered, Hub, enter, refuse};
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
    let commit = match hub.resolve(repo, rev) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{}/", dir.trim_end_matches('/'))
    };
    if !prefix.is_empty() && !commit.files.keys().any(|p| p.starts_with(&prefix)) {
        return refuse(
            StatusCode::NOT_FOUND,
            Some("EntryNotFound"),
            &format!("{dir} does not exist on {rev}"),
        );
    }
    let mut dirs = BTreeSet::new();
    let mut files = Vec::new();
    for (path, entry) in commit.files.range(prefix.clone()..) {
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
    let (created, commit) = match hub
        .repo(repo)
        .and_then(|r| Ok((r.created, hub.resolve(repo, rev)?)))
    {
        Ok(found) => found,
        Err(r) => return r,
    };
    let (author, _) = repo.split_once('/').unwrap_or((repo, ""));
    let siblings: Vec<Value> = commit
        .files
        .keys()
        .map(|p| json!({"rfilename": p}))
        .collect();
    Json(json!({
        "id": repo, "author": author, "sha": commit.id, "private": false,
        "gated": false, "disabled": false, "downloads": 0, "likes": 0, "tags": [],
        "createdAt": rfc3339_millis(created), "lastModified": commit.date_text(),
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
    if let Entered::Answer(r) = enter(&shared, HubRoute::Info).await {
        return r;
    }
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
    if let Entered::Answer(r) = enter(&shared, HubRoute::Info).await {
        return r;
    }
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
    let commit = match hub.resolve(&repo, &rev) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(entry) = commit.files.get(&path) else {
        return refuse(
            StatusCode::NOT_FOUND,
            Some("EntryNotFound"),
            &format!("{path} does not exist on {rev}"),
        );
    };
    let mut extra: BTreeMap<&'static str, String> = BTreeMap::new();
    extra.insert("x-repo-commit", commit.id.clone());
    extra.insert("etag", format!("\"{}\"", blob_id(&path, entry)));
    if let Entry::Lfs { oid, size } = entry {
        extra.insert("x-linked-etag", format!("\"{oid}\""));
        extra.insert("x-linked-size", size.to_string());
    }
    let Some(bytes) = hub.read(entry) else {
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

/// `POST /api/datasets/{ns}/{name}/paths-info/{rev}`, a form with
/// `paths` (repeated) and `expand`: the entries of the paths that exist,
/// files and folders, as the tree lists them; missing paths are left out.
pub(crate) async fn paths_info(
    State(shared): State<Shared>,
    Path((ns, name, rev)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Entered::Answer(r) = enter(&shared, HubRoute::PathsInfo).await {
        return r;
    }
    let repo = format!("{ns}/{name}");
    let hub = lock(&shared);
    if let Err(r) = read_auth(&hub, &headers) {
        return r;
    }
    let commit = match hub.resolve(&repo, &rev) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut out = Vec::new();
    for (key, path) in url::form_urlencoded::parse(&body) {
        if key != "paths" {
            continue;
        }
        let path = path.trim_matches('/');
        if let Some(entry) = commit.files.get(path) {
            out.push(file_json(path, entry));
        } else if commit
            .files
            .keys()
            .any(|p| p.starts_with(&format!("{path}/")))
        {
            out.push(dir_json(path));
        }
    }
    Json(out).into_response()
}

/// `time` as an HTTP date (`Sat, 05 Dec 2026 02:21:41 GMT`).
fn http_date(time: time::OffsetDateTime) -> String {
    let t = time.to_offset(time::UtcOffset::UTC);
    let day = &t.weekday().to_string()[..3];
    let month = &t.month().to_string()[..3];
    format!(
        "{day}, {:02} {month} {} {:02}:{:02}:{:02} GMT",
        t.day(),
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Commits per page of the commits listing.
pub(crate) const COMMITS_PER_PAGE: usize = 50;

fn commit_json(c: &Commit) -> Value {
    json!({
        "id": c.id,
        "title": c.title,
        "message": c.message,
        "authors": [{"user": c.author}],
        "date": c.date_text(),
    })
}

/// `GET /api/datasets/{ns}/{name}/commits/{rev}?p=N`: the commits
/// reachable from `rev`, newest first, [`COMMITS_PER_PAGE`] a page; a
/// page with more after it links the next in a `Link: <…?p=N+1>;
/// rel="next"` header, which `huggingface_hub` follows.
pub(crate) async fn commits(
    State(shared): State<Shared>,
    Path((ns, name, rev)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Entered::Answer(r) = enter(&shared, HubRoute::Commits).await {
        return r;
    }
    let repo = format!("{ns}/{name}");
    let mut hub = lock(&shared);
    if let Err(r) = read_auth(&hub, &headers) {
        return r;
    }
    // A sink reads the history before its first write: with
    // `auto_create`, that is the repository's first use.
    if hub.config.auto_create
        && headers.contains_key(header::AUTHORIZATION)
        && let Err(r) = hub.branch(&repo, "main")
    {
        return r;
    }
    let history = match hub.repo(&repo).map(|r| r.history(&rev)) {
        Ok(Some(h)) => h,
        Ok(None) => {
            return refuse(
                StatusCode::NOT_FOUND,
                Some("RevisionNotFound"),
                &format!("Invalid rev id: {rev}"),
            );
        }
        Err(r) => return r,
    };
    let Ok(page) = query.get("p").map_or(Ok(0), |p| p.parse::<usize>()) else {
        return refuse(StatusCode::BAD_REQUEST, None, "p must be a page number");
    };
    let items: Vec<Value> = history
        .iter()
        .skip(page.saturating_mul(COMMITS_PER_PAGE))
        .take(COMMITS_PER_PAGE)
        .map(|c| commit_json(c))
        .collect();
    let mut r = Json(items).into_response();
    if let Ok(v) = HeaderValue::from_str(&http_date(hub.now())) {
        r.headers_mut().insert(header::DATE, v);
    }
    if history.len() > (page + 1).saturating_mul(COMMITS_PER_PAGE) {
        let rev = url::form_urlencoded::byte_serialize(rev.as_bytes()).collect::<String>();
        let next = format!(
            "<{}/api/datasets/{repo}/commits/{rev}?p={}>; rel=\"next\"",
            hub.base,
            page + 1
        );
        if let Ok(v) = HeaderValue::from_str(&next) {
            r.headers_mut().insert(header::LINK, v);
        }
    }
    r
}
