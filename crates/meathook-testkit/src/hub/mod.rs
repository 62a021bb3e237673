//! A fake HuggingFace Hub: the routes a dataset sink and the official
//! `huggingface_hub` client use, on 127.0.0.1.
//!
//! Routes: `whoami-v2`, `repos/create`, `repos/delete`, preupload, the LFS
//! batch API, presigned-style `PUT`s (whole objects and parts, refused if
//! they carry an `Authorization` header, as a presigned storage URL would),
//! multipart completion, verify, the NDJSON commit, super-squash, tree
//! listing, paths-info, repository info, the commits listing and `resolve`
//! downloads. Behaviours: `%2F` in revisions is decoded; the header line
//! must come first; a stale `parentCommit` gets 412; a dangling `lfsFile`,
//! an inline file of 10 MiB or more or with a NUL byte, and an empty commit
//! get 400; a `..` path gets 422; a missing repository 404 with
//! `X-Error-Code`; a bad token 401 with `X-Error-Message`.
//!
//! Every commit is kept with a snapshot of the files it leaves, under an id
//! derived from the repository, the parent, the author, the date and the
//! changes (sha256, cut to 40 hex digits), so two repositories never share
//! a commit id. The read routes (tree, paths-info, repository info,
//! commits, `resolve`) take a branch or a full commit id and answer as of
//! that commit, as the Hub does; the write routes take branches only. The
//! commits listing gives the history newest first, 50 a page, each with
//! `id`, `title`, `message`, `authors` and `date` (the UTC time of the
//! commit, RFC 3339 with milliseconds, as the Hub writes it); a page with
//! more after it carries `Link: <…?p=N>; rel="next"`. A super-squash
//! replaces a branch's history with one commit (no parent) holding the
//! files of its head, and forgets the commits no branch reaches any more:
//! their ids resolve nowhere afterwards, on any route (stored LFS objects
//! are kept). It is logged like a commit, with no paths. Every answer has a
//! `Date` header. The fake's clock is the wall clock at its start plus
//! tokio's clock since, so under a paused clock commit dates and the
//! listing's `Date` advance with simulated time.
//!
//! Faults queued per [`HubRoute`] replace its next responses one by one
//! ([`HubFault`]): a status, a 429 with `RateLimit`, a delay, a connection
//! cut mid-response, "apply the commit (or the squash), then answer 504",
//! a stale parent (another writer commits to the branch first), a path the
//! Hub refuses, hostile answers (a body that never ends, with or without a
//! 10 GB `Content-Length`; a byte every few seconds; no answer at all), a
//! `.gitignore` that excludes every path, and verify URLs on another host.
//! Presigned-style URLs carry a query that stands in for a signature
//! (`X-Amz-Signature=…`), which a client must never print. Every request
//! is counted per route, and every applied commit (and squash) is logged.
//!
//! Objects and repositories live in memory; with a data directory (the
//! standalone server's `--data`) they live on disk and a server started
//! again on it serves them as they were (see `journal`).
//!
//! # What each route was checked against
//!
//! "Client" is `huggingface_hub` 2.4.0 (with `datasets` 4.1.1 where
//! named), pointed at the fake by the tests named; the request is the one
//! that client sends, in the terms of the Hub protocol notes the fake
//! follows. A route the client was not run against follows those notes
//! only: trust it as far as they go.
//!
//! | route | request | checked against |
//! |---|---|---|
//! | `whoami-v2` | `GET /api/whoami-v2`, Bearer | client `whoami()` (this module's tests) |
//! | `repos/create` | `POST /api/repos/create` `{name, organization, type, private}`; 409 names the URL | client `create_repo(.., exist_ok=True)` twice (this module's tests) |
//! | `repos/delete` | `DELETE /api/repos/delete` `{name, organization, type}` | client `delete_repo` (this module's tests) |
//! | preupload | `POST /api/datasets/{repo}/preupload/{branch}` | client `upload_file` (meathook-hf interop) |
//! | LFS batch | `POST /datasets/{repo}.git/info/lfs/objects/batch`, `transfers: [basic, multipart]` | client `upload_file` of a 3 MiB blob in 1 MiB parts (interop) |
//! | part `PUT`s, completion | presigned-style URLs, no token | client multipart upload (interop) |
//! | verify | `POST` with Bearer `{oid, size}` | client upload (interop) |
//! | commit | `POST /api/datasets/{repo}/commit/{branch}`, NDJSON | client `upload_file`, regular and LFS (interop) |
//! | super-squash | `POST /api/datasets/{repo}/super-squash/{branch}` `{message}` (optional), Bearer; answers `{commitId}` (the Hub's API description; the client reads only the status) | client `super_squash_history`, then `list_repo_commits` and a download (this module's tests) |
//! | tree | `GET /api/datasets/{repo}/tree/{rev}[/{path}]?recursive=..&expand=false`, `rev` a branch or an id | client `list_repo_tree`, `list_repo_files`, `snapshot_download`, `datasets.load_dataset` (interop; this module's tests at an old id) |
//! | paths-info | `POST /api/datasets/{repo}/paths-info/{rev}`, form `paths`… `expand` | client `get_paths_info` at an old id (this module's tests) |
//! | repository info | `GET /api/datasets/{repo}/revision/{rev}` | client `dataset_info`, `snapshot_download`, `load_dataset` (interop; this module's tests at an old id) |
//! | commits | `GET /api/datasets/{repo}/commits/{rev}`, `Link` to the next page | client `list_repo_commits` across two pages (this module's tests) |
//! | `resolve` | `HEAD` then `GET /datasets/{repo}/resolve/{rev}/{path}`; `X-Repo-Commit`, `ETag`, `X-Linked-Etag`, `X-Linked-Size` | client `hf_hub_download`, `snapshot_download`, `load_dataset` (interop) |
//!
//! Not modelled: visibility (every dataset reads as public), Xet
//! transfers (clients are told to use plain LFS), pull
//! requests and `refs/convert/parquet`, tree pagination (the fake lists a
//! tree in one page; the Hub cuts pages at 1,000 entries), short commit
//! ids, and the Hub's real page size of the commits listing (not
//! documented; the fake uses 50).

// Route helpers return an axum `Response` as their error, by value, as the
// handlers do: a test server, where the size of an error is no concern.
#![allow(clippy::result_large_err)]

mod api;
mod journal;
mod lfs;
mod read;
mod repo;
mod state;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};

use state::Hub;
pub use state::{CommitLog, HubFile};

/// A route of the fake, for fault injection and counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HubRoute {
    /// `GET /api/whoami-v2`.
    WhoAmI,
    /// `POST /api/repos/create`.
    CreateRepo,
    /// `DELETE /api/repos/delete`.
    DeleteRepo,
    /// `POST /api/datasets/{ns}/{name}/preupload/{rev}`.
    Preupload,
    /// `POST /datasets/{ns}/{name}.git/info/lfs/objects/batch`.
    Batch,
    /// `PUT` of a whole object or one part.
    Put,
    /// `POST` of a multipart completion.
    Complete,
    /// `POST` of a verify call.
    Verify,
    /// `POST /api/datasets/{ns}/{name}/commit/{rev}`.
    Commit,
    /// `POST /api/datasets/{ns}/{name}/super-squash/{rev}`.
    SuperSquash,
    /// `GET /api/datasets/{ns}/{name}/tree/{rev}`.
    Tree,
    /// `POST /api/datasets/{ns}/{name}/paths-info/{rev}`.
    PathsInfo,
    /// `GET /api/datasets/{ns}/{name}` and `…/revision/{rev}`.
    Info,
    /// `GET /api/datasets/{ns}/{name}/commits/{rev}`.
    Commits,
    /// `GET /datasets/{ns}/{name}/resolve/{rev}/{path}`.
    Resolve,
}

/// A response to serve instead of the normal one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubFault {
    /// This status, with `{"error":…}` and `X-Error-Message`.
    Status(u16),
    /// 429 with `RateLimit: "api";r={remaining};t={reset}` and, if given,
    /// `Retry-After`.
    RateLimited {
        /// `r`.
        remaining: u64,
        /// `t`, seconds.
        reset: u64,
        /// `Retry-After`, seconds.
        retry_after: Option<u64>,
    },
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// Answer 200 and cut the connection before the body is complete.
    Reset,
    /// Commit and super-squash only: apply the commit (or the squash),
    /// then answer 504.
    ApplyThen504,
    /// Commit only: another writer commits to the branch first, so the
    /// request's `parentCommit` is stale.
    StaleParent,
    /// Answer `status` with a body that never ends, as fast as the client
    /// reads it: with `Content-Length: {declared}` if given (say 10 GB),
    /// chunked otherwise. A proxy or captive portal gone wrong.
    Flood {
        /// The status.
        status: u16,
        /// The `Content-Length` to declare.
        declared: Option<u64>,
    },
    /// Answer 200 with `Content-Length: 1000000`, then send one byte every
    /// `every`.
    Drip {
        /// The wait before each byte.
        every: Duration,
    },
    /// Read the request and never answer (the connection stays open until
    /// the client gives up).
    Silent,
    /// Preupload only: answer normally, with `shouldIgnore: true` for every
    /// path (the repository's `.gitignore` excludes them).
    Ignore,
    /// LFS batch only: answer normally, with verify URLs under this base
    /// URL instead of the fake's own.
    VerifyAt(String),
    /// Commit only: refuse the commit with 422 if any of its paths contains
    /// this text (a path the Hub will never take); commit normally
    /// otherwise.
    RefusePaths(String),
}

/// Who a token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRole {
    /// May read and write.
    Write,
    /// May only read.
    Read,
}

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeHubConfig {
    /// Accepted tokens; empty accepts any non-empty token as a write token.
    pub tokens: HashMap<String, TokenRole>,
    /// Create a dataset on first use (a write, or a commits listing with
    /// a token, which a sink reads before its first write) instead of
    /// answering 404.
    pub auto_create: bool,
    /// Objects at least this large are uploaded in parts.
    pub multipart_threshold: u64,
    /// The part size of multipart uploads.
    pub chunk_size: u64,
    /// Whether batch answers ask for a verify call.
    pub verify: bool,
    /// Where repositories and objects persist (across a restart of the
    /// server on the same directory); `None` keeps them in memory.
    pub data_dir: Option<PathBuf>,
}

impl Default for FakeHubConfig {
    /// Any token, datasets created on first use, parts of 8 MiB above
    /// 16 MiB, verify asked for, objects in memory.
    fn default() -> Self {
        Self {
            tokens: HashMap::new(),
            auto_create: true,
            multipart_threshold: 16 << 20,
            chunk_size: 8 << 20,
            verify: true,
            data_dir: None,
        }
    }
}

pub(crate) type Shared = Arc<Mutex<Hub>>;

pub(crate) fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Hub> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running fake Hub; stops when dropped.
#[derive(Debug)]
pub struct FakeHub {
    addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeHub {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start(config: FakeHubConfig) -> std::io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Starts on `addr`.
    pub async fn start_on(addr: SocketAddr, config: FakeHubConfig) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let hub = Hub::new(config, format!("http://{addr}"))?;
        let shared: Shared = Arc::new(Mutex::new(hub));
        let app = router(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    /// The address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the endpoint to configure.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues faults for the next requests to `route`.
    pub fn inject(&self, route: HubRoute, faults: impl IntoIterator<Item = HubFault>) {
        lock(&self.shared).inject(route, faults);
    }

    /// Requests received on `route` so far.
    pub fn requests(&self, route: HubRoute) -> u64 {
        lock(&self.shared).count(route)
    }

    /// Requests received on every route.
    pub fn total_requests(&self) -> u64 {
        lock(&self.shared).total()
    }

    /// Creates a dataset (with a `main` branch holding `.gitattributes`).
    ///
    /// # Panics
    ///
    /// If the data directory cannot record it.
    pub fn create_repo(&self, repo: &str) {
        if let Err(e) = lock(&self.shared).create_repo(repo) {
            panic!("fake hub: cannot record {repo}: {e}");
        }
    }

    /// The commit `rev` (a branch or a commit id) of `repo` names.
    pub fn resolve(&self, repo: &str, rev: &str) -> Option<String> {
        let hub = lock(&self.shared);
        Some(hub.repos.get(repo)?.commit(rev)?.id.clone())
    }

    /// Every commit applied, in order.
    pub fn commits(&self) -> Vec<CommitLog> {
        lock(&self.shared).commits.clone()
    }

    /// How many commits were applied (`commits().len()`, without the copy).
    pub fn commit_count(&self) -> usize {
        lock(&self.shared).commits.len()
    }

    /// The files of `repo` at `rev` (the head of a branch, or a commit id).
    pub fn files(&self, repo: &str, rev: &str) -> Vec<HubFile> {
        lock(&self.shared).files(repo, rev)
    }

    /// The bytes of a file of `repo` at `rev` (a branch or a commit id).
    pub fn download(&self, repo: &str, rev: &str, path: &str) -> Option<Vec<u8>> {
        lock(&self.shared).read_file(repo, rev, path)
    }

    /// The stored LFS object `oid` (a sha256, as [`HubFile::lfs_oid`]
    /// names it): reading a file by its oid skips finding the commit's
    /// tree, which for an old commit of a long history is rebuilt.
    pub fn lfs_object(&self, oid: &str) -> Option<Vec<u8>> {
        lock(&self.shared).object(oid)
    }

    /// Requests to presigned URLs that carried an `Authorization` header
    /// (refused; a sink must never send one).
    pub fn leaked_authorization(&self) -> u64 {
        lock(&self.shared).leaked_auth
    }
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/api/whoami-v2", get(api::whoami))
        .route("/api/repos/create", post(api::create))
        .route("/api/repos/delete", delete(api::delete))
        .route(
            "/api/datasets/{ns}/{name}/preupload/{rev}",
            post(api::preupload),
        )
        .route("/api/datasets/{ns}/{name}/commit/{rev}", post(api::commit))
        .route(
            "/api/datasets/{ns}/{name}/super-squash/{rev}",
            post(api::super_squash),
        )
        .route("/api/datasets/{ns}/{name}/tree/{rev}", get(read::tree_root))
        .route(
            "/api/datasets/{ns}/{name}/paths-info/{rev}",
            post(read::paths_info),
        )
        .route(
            "/api/datasets/{ns}/{name}/commits/{rev}",
            get(read::commits),
        )
        .route(
            "/api/datasets/{ns}/{name}/tree/{rev}/{*path}",
            get(read::tree),
        )
        .route(
            "/api/datasets/{ns}/{name}/revision/{rev}",
            get(read::info_at),
        )
        .route("/api/datasets/{ns}/{name}", get(read::info))
        .route(
            "/datasets/{ns}/{name}/resolve/{rev}/{*path}",
            get(read::resolve),
        )
        .route(
            "/datasets/{ns}/{name}/info/lfs/objects/batch",
            post(lfs::batch),
        )
        .route("/lfs-upload/{oid}", put(lfs::put_object))
        .route("/lfs-upload/{oid}/part/{n}", put(lfs::put_part))
        .route("/lfs-upload/{oid}/complete", post(lfs::complete))
        .route("/lfs-verify/{oid}", post(lfs::verify))
        // Uploads are as large as the objects and parts the fake asks for.
        .layer(DefaultBodyLimit::disable())
        .with_state(shared)
}
