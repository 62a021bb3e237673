//! The fake Hub's state: repositories (see `repo`), LFS objects, queued
//! faults, request counters and the commit log (commits and
//! super-squashes); and the shapes of its error answers.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::journal::Journal;
use super::repo::{At, Change, Commit, CommitInfo, Entry, GITATTRIBUTES, Repo};
use super::{FakeHubConfig, HubFault, HubRoute, TokenRole};

/// A file at a branch's head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubFile {
    /// Its path.
    pub path: String,
    /// Its size.
    pub size: u64,
    /// Its sha256 for LFS files; `None` for regular files.
    pub lfs_oid: Option<String>,
}

/// One applied commit.
#[derive(Debug, Clone)]
pub struct CommitLog {
    /// `ns/name`.
    pub repo: String,
    /// The branch.
    pub branch: String,
    /// The new head.
    pub oid: String,
    /// When it was applied (tokio's clock, so paused-clock tests can
    /// check budgets).
    pub at: tokio::time::Instant,
    /// When it was applied, by the wall clock: the `date` the commits
    /// listing shows.
    pub date: time::OffsetDateTime,
    /// The paths it added or replaced (none for a super-squash).
    pub paths: Vec<String>,
    /// Whether it was a super-squash: the branch's history replaced by
    /// this one commit, holding the files the branch held.
    pub squashed: bool,
}

#[derive(Debug)]
pub(crate) struct Hub {
    pub(crate) config: FakeHubConfig,
    pub(crate) base: String,
    pub(crate) repos: HashMap<String, Repo>,
    /// Where repositories and objects persist, with a data directory.
    journal: Option<Journal>,
    objects: HashMap<String, Vec<u8>>,
    pub(crate) stored: HashMap<String, u64>,
    /// Objects a batch answer asked for, with their sizes.
    pub(crate) expected: HashMap<String, u64>,
    pub(crate) parts: HashMap<(String, u32), Vec<u8>>,
    faults: HashMap<HubRoute, VecDeque<HubFault>>,
    counts: HashMap<HubRoute, u64>,
    pub(crate) commits: Vec<CommitLog>,
    pub(crate) leaked_auth: u64,
    /// The wall clock and tokio's clock when the hub started: its dates
    /// follow tokio's clock, so under a paused clock they advance with it.
    clock: (time::OffsetDateTime, tokio::time::Instant),
}

/// The user every accepted token belongs to.
pub(crate) const USER: &str = "meathook-tester";

/// An error answer in the Hub's shape.
pub(crate) fn refuse(status: StatusCode, code: Option<&str>, message: &str) -> Response {
    let mut r = (status, axum::Json(json!({ "error": message }))).into_response();
    if let Ok(v) = HeaderValue::from_str(message) {
        r.headers_mut().insert("x-error-message", v);
    }
    if let Some(code) = code.and_then(|c| HeaderValue::from_str(c).ok()) {
        r.headers_mut().insert("x-error-code", code);
    }
    r
}

/// The 404 of a revision that names no branch (or commit) of a repository.
fn no_revision(rev: &str) -> Response {
    refuse(
        StatusCode::NOT_FOUND,
        Some("RevisionNotFound"),
        &format!("Invalid rev id: {rev}"),
    )
}

/// A body that fails after the headers went out: the client sees the
/// connection cut mid-response.
struct Cut;

impl http_body::Body for Cut {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, std::io::Error>>> {
        std::task::Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "fake hub: injected reset",
        ))))
    }
}

/// A body that never ends: the same 64 KiB, as fast as the client reads.
struct Endless(bytes::Bytes);

impl http_body::Body for Endless {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, std::io::Error>>> {
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(self.0.clone()))))
    }
}

fn flood(status: u16, declared: Option<u64>) -> Response {
    let mut r = Response::new(Body::new(Endless(bytes::Bytes::from(vec![b' '; 64 << 10]))));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(n) = declared {
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    r
}

/// A body that sends one byte every `every`.
struct Drip {
    every: std::time::Duration,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for Drip {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, std::io::Error>>> {
        if self.sleep.as_mut().poll(cx).is_pending() {
            return std::task::Poll::Pending;
        }
        let next = tokio::time::Instant::now() + self.every;
        self.sleep.as_mut().reset(next);
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(bytes::Bytes::from_static(
            b" ",
        )))))
    }
}

fn drip(every: std::time::Duration) -> Response {
    let body = Drip {
        every,
        sleep: Box::pin(tokio::time::sleep(every)),
    };
    let mut r = Response::new(Body::new(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(1_000_000u64));
    r
}

fn cut() -> Response {
    let mut r = Response::new(Body::new(Cut));
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("64"));
    r
}

/// A failure to record state in the data directory, as a 500.
fn unrecorded(e: &std::io::Error) -> Response {
    refuse(
        StatusCode::INTERNAL_SERVER_ERROR,
        None,
        &format!("fake hub: cannot record the change: {e}"),
    )
}

impl Hub {
    /// A hub with the repositories and objects of `config.data_dir`, if given.
    pub(crate) fn new(config: FakeHubConfig, base: String) -> std::io::Result<Self> {
        let (journal, loaded) = match &config.data_dir {
            Some(dir) => {
                let (journal, loaded) = Journal::open(dir)?;
                (Some(journal), loaded)
            }
            None => (None, super::journal::Loaded::default()),
        };
        Ok(Self {
            config,
            base,
            repos: loaded.repos,
            journal,
            objects: HashMap::new(),
            stored: loaded.stored,
            expected: HashMap::new(),
            parts: HashMap::new(),
            faults: HashMap::new(),
            counts: HashMap::new(),
            commits: Vec::new(),
            leaked_auth: 0,
            clock: (time::OffsetDateTime::now_utc(), tokio::time::Instant::now()),
        })
    }

    /// The hub's time: the wall clock at start plus tokio's clock since.
    pub(crate) fn now(&self) -> time::OffsetDateTime {
        let (wall, at) = self.clock;
        wall + (tokio::time::Instant::now() - at)
    }

    pub(crate) fn inject(&mut self, route: HubRoute, faults: impl IntoIterator<Item = HubFault>) {
        self.faults.entry(route).or_default().extend(faults);
    }

    pub(crate) fn count(&self, route: HubRoute) -> u64 {
        self.counts.get(&route).copied().unwrap_or(0)
    }

    pub(crate) fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Counts a request and takes its next fault.
    pub(crate) fn enter(&mut self, route: HubRoute) -> Option<HubFault> {
        *self.counts.entry(route).or_default() += 1;
        self.faults.get_mut(&route).and_then(VecDeque::pop_front)
    }

    /// Creates a dataset whose `main` holds the Hub's initial commit (by
    /// `system`, `.gitattributes` only); `false` if it exists.
    pub(crate) fn create_repo(&mut self, repo: &str) -> std::io::Result<bool> {
        if self.repos.contains_key(repo) {
            return Ok(false);
        }
        let now = self.now();
        if let Some(j) = &mut self.journal {
            j.created(repo, now)?;
        }
        self.repos.insert(repo.to_owned(), Repo::empty(now));
        let info = CommitInfo {
            title: "initial commit".into(),
            message: String::new(),
            author: "system".into(),
            date: now,
        };
        let change = Entry::Regular {
            content: Arc::from(GITATTRIBUTES),
        };
        self.apply(
            repo,
            "main",
            info,
            vec![(".gitattributes".into(), Some(change))],
        )?;
        Ok(true)
    }

    /// Deletes a dataset; `false` if there was none.
    pub(crate) fn delete_repo(&mut self, repo: &str) -> std::io::Result<bool> {
        if !self.repos.contains_key(repo) {
            return Ok(false);
        }
        if let Some(j) = &mut self.journal {
            j.deleted(repo)?;
        }
        self.repos.remove(repo);
        Ok(true)
    }

    /// Commits `changes` to `branch` of `repo` (which must exist) and
    /// records it in the data directory, if any.
    pub(crate) fn apply(
        &mut self,
        repo: &str,
        branch: &str,
        info: CommitInfo,
        changes: Vec<Change>,
    ) -> std::io::Result<Commit> {
        let Some(r) = self.repos.get_mut(repo) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no repository {repo}"),
            ));
        };
        // The journal comes first: a commit the disk does not hold is not
        // made (the branch would move back on restart).
        let commit = r.prepare(repo, branch, info, &changes);
        if let Some(j) = &mut self.journal {
            j.committed(repo, branch, &commit)?;
        }
        r.insert(branch, commit.clone());
        Ok(commit)
    }

    /// Commits on behalf of `author` and logs the commit; a failure to
    /// record it is a 500.
    pub(crate) fn commit(
        &mut self,
        repo: &str,
        branch: &str,
        info: CommitInfo,
        changes: Vec<Change>,
    ) -> Result<Commit, Response> {
        let paths = changes.iter().map(|(p, _)| p.clone()).collect();
        let commit = self
            .apply(repo, branch, info, changes)
            .map_err(|e| unrecorded(&e))?;
        self.commits.push(CommitLog {
            repo: repo.to_owned(),
            branch: branch.to_owned(),
            oid: commit.id.clone(),
            at: tokio::time::Instant::now(),
            date: commit.date,
            paths,
            squashed: false,
        });
        Ok(commit)
    }

    /// Replaces the history of `branch` of `repo` by one commit holding
    /// the files of its head (see [`Repo::prepare_squash`]), records it in
    /// the data directory first, if any, and logs it. A missing repository
    /// or branch is a 404 (a squash never creates a dataset); a failure to
    /// record it, a 500.
    pub(crate) fn squash(
        &mut self,
        repo: &str,
        branch: &str,
        info: CommitInfo,
    ) -> Result<Commit, Response> {
        self.head(repo, branch)?;
        let commit = self
            .repos
            .get(repo)
            .and_then(|r| r.prepare_squash(repo, branch, info))
            .ok_or_else(|| no_revision(branch))?;
        // The journal comes first, as for a commit.
        if let Some(j) = &mut self.journal {
            j.squashed(repo, branch, &commit)
                .map_err(|e| unrecorded(&e))?;
        }
        if let Some(r) = self.repos.get_mut(repo) {
            r.replace_history(branch, commit.clone());
        }
        self.commits.push(CommitLog {
            repo: repo.to_owned(),
            branch: branch.to_owned(),
            oid: commit.id.clone(),
            at: tokio::time::Instant::now(),
            date: commit.date,
            paths: Vec::new(),
            squashed: true,
        });
        Ok(commit)
    }

    /// Checks the Bearer token.
    pub(crate) fn auth(&self, headers: &HeaderMap) -> Result<TokenRole, Response> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .filter(|t| !t.is_empty());
        let role = match token {
            None => None,
            Some(_) if self.config.tokens.is_empty() => Some(TokenRole::Write),
            Some(t) => self.config.tokens.get(t).copied(),
        };
        role.ok_or_else(|| {
            refuse(
                StatusCode::UNAUTHORIZED,
                None,
                "Invalid credentials in Authorization header",
            )
        })
    }

    /// Checks a write token.
    pub(crate) fn auth_write(&self, headers: &HeaderMap, repo: &str) -> Result<(), Response> {
        match self.auth(headers)? {
            TokenRole::Write => Ok(()),
            TokenRole::Read => Err(refuse(
                StatusCode::FORBIDDEN,
                None,
                &format!("You don't have the rights to write to {repo}: the token is read-only"),
            )),
        }
    }

    /// The repository, or its 404.
    pub(crate) fn repo(&self, repo: &str) -> Result<&Repo, Response> {
        self.repos.get(repo).ok_or_else(|| {
            refuse(
                StatusCode::NOT_FOUND,
                Some("RepoNotFound"),
                &format!("Repository not found: {repo}"),
            )
        })
    }

    /// The head of branch `rev` of `repo`, creating the dataset if
    /// configured: what the write routes accept (a branch, never a commit id).
    pub(crate) fn branch(&mut self, repo: &str, rev: &str) -> Result<At<'_>, Response> {
        if !self.repos.contains_key(repo) && self.config.auto_create {
            self.create_repo(repo).map_err(|e| unrecorded(&e))?;
        }
        self.head(repo, rev)
    }

    /// The head of branch `rev` of an existing `repo`, or the 404 that
    /// names what is missing.
    pub(crate) fn head(&self, repo: &str, rev: &str) -> Result<At<'_>, Response> {
        self.repo(repo)?.head(rev).ok_or_else(|| no_revision(rev))
    }

    /// The commit `rev` (a branch or a commit id) names in `repo`: what
    /// the read routes accept.
    pub(crate) fn resolve(&self, repo: &str, rev: &str) -> Result<At<'_>, Response> {
        self.repo(repo)?
            .resolve(rev)
            .ok_or_else(|| no_revision(rev))
    }

    pub(crate) fn files(&self, repo: &str, rev: &str) -> Vec<HubFile> {
        let Ok(commit) = self.resolve(repo, rev) else {
            return Vec::new();
        };
        commit
            .files
            .iter()
            .map(|(path, e)| match e {
                Entry::Lfs { oid, size } => HubFile {
                    path: path.clone(),
                    size: *size,
                    lfs_oid: Some(oid.clone()),
                },
                Entry::Regular { content } => HubFile {
                    path: path.clone(),
                    size: content.len() as u64,
                    lfs_oid: None,
                },
            })
            .collect()
    }

    pub(crate) fn object(&self, oid: &str) -> Option<Vec<u8>> {
        match &self.journal {
            None => self.objects.get(oid).cloned(),
            Some(j) => j.object(oid),
        }
    }

    pub(crate) fn store_object(&mut self, oid: &str, bytes: Vec<u8>) -> std::io::Result<()> {
        match &self.journal {
            None => {
                self.objects.insert(oid.to_owned(), bytes.clone());
            }
            Some(j) => j.store_object(oid, &bytes)?,
        }
        self.stored.insert(oid.to_owned(), bytes.len() as u64);
        Ok(())
    }

    /// The bytes of `path` at `rev`.
    pub(crate) fn read_file(&self, repo: &str, rev: &str, path: &str) -> Option<Vec<u8>> {
        self.read(self.resolve(repo, rev).ok()?.files.get(path)?)
    }

    /// The bytes of a file.
    pub(crate) fn read(&self, entry: &Entry) -> Option<Vec<u8>> {
        match entry {
            Entry::Regular { content } => Some(content.to_vec()),
            Entry::Lfs { oid, .. } => self.object(oid),
        }
    }
}

/// What a route does with its next fault, before its own work.
pub(crate) enum Entered {
    /// Serve normally.
    Go,
    /// Serve normally, with a commit-only fault to act on.
    Special(HubFault),
    /// Answer this instead.
    Answer(Response),
}

/// Counts the request, applies a queued fault.
pub(crate) async fn enter(shared: &super::Shared, route: HubRoute) -> Entered {
    let fault = super::lock(shared).enter(route);
    match fault {
        None => Entered::Go,
        Some(HubFault::Status(s)) => {
            let status = StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if status.is_server_error() {
                let mut r = (status, "<html><body>Internal Error - We're working hard to fix this as soon as possible!</body></html>").into_response();
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
                Entered::Answer(r)
            } else {
                Entered::Answer(refuse(status, None, &format!("injected {s}")))
            }
        }
        Some(HubFault::RateLimited {
            remaining,
            reset,
            retry_after,
        }) => {
            let mut r = refuse(
                StatusCode::TOO_MANY_REQUESTS,
                None,
                "You have exceeded the rate limit for repository commits (128 per hour)",
            );
            if let Ok(v) = HeaderValue::from_str(&format!("\"api\";r={remaining};t={reset}")) {
                r.headers_mut().insert("ratelimit", v);
            }
            r.headers_mut().insert(
                "ratelimit-policy",
                HeaderValue::from_static("\"fixed window\";\"api\";q=1000;w=300"),
            );
            if let Some(ra) = retry_after {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(ra));
            }
            Entered::Answer(r)
        }
        Some(HubFault::Delay(d)) => {
            tokio::time::sleep(d).await;
            Entered::Go
        }
        Some(HubFault::Reset) => Entered::Answer(cut()),
        Some(HubFault::Flood { status, declared }) => Entered::Answer(flood(status, declared)),
        Some(HubFault::Drip { every }) => Entered::Answer(drip(every)),
        Some(HubFault::Silent) => std::future::pending().await,
        Some(f) => Entered::Special(f),
    }
}

/// Decodes standard base64 (padding optional).
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}
