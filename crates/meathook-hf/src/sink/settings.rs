//! `HfSink` as configured: the type, its settings and the setters that
//! fill them. Each setter returns the sink with one setting changed. Nothing is checked here; the
//! settings are validated once, when the sink is opened or first given a
//! window ([`Settings::open`]), and the error names the bad one. Settings
//! of the shared committer (files per commit, budget, coalescing, retries)
//! are taken from the first sink of a repository branch to open.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use meathook_core::{Backoff, Deliveries, Encoder};
use meathook_files::WindowFile;
use meathook_files::layout::Layout;
use meathook_parquet::EncodeError;

use super::publish::HubTarget;
use crate::committer::CommitSettings;
use crate::error::HfError;
use crate::hub::HubClient;
use crate::repo::{DEFAULT_ENDPOINT, RepoId, Target};
use crate::token::HfToken;

/// Commits each window as one parquet file to a HuggingFace dataset, and
/// returns `Ok` only once the Hub confirmed a commit holding it (or showed
/// it already there); see the [crate docs](crate) for the protocol and an
/// example.
pub struct HfSink<R, E = meathook_parquet::ParquetEncoder<R>> {
    pub(super) settings: Settings<E>,
    /// Built from the settings when the sink is opened or first given a
    /// window.
    pub(super) open: Option<Open<R, E>>,
}

/// A sink whose settings were checked: the pipeline and where it lands.
pub(super) struct Open<R, E> {
    pub(super) files: WindowFile<R, E>,
    pub(super) hub: HubTarget,
}

/// The most of a Hub answer a sink reads by default: the Hub's JSON
/// answers (preupload, LFS batch, commit, whoami) are kilobytes; an LFS
/// batch answer for a full commit of multipart uploads stays well under
/// this.
pub const DEFAULT_ANSWER_LIMIT: usize = 8 << 20;

/// The bytes of a file preupload needs to see (the Hub sniffs its type).
const SAMPLE: usize = 512;

/// Everything the setters fill, as given.
#[derive(Debug)]
pub(super) struct Settings<E> {
    client: reqwest::Client,
    repo: String,
    token: HfToken,
    token_var: String,
    endpoint: String,
    branch: String,
    encoder: Result<Arc<E>, Arc<EncodeError>>,
    prefix: String,
    layout: Layout,
    scratch: PathBuf,
    create: Option<bool>,
    check_token: bool,
    commit: CommitSettings,
    request_timeout: Duration,
    upload_timeout: Duration,
    answer_limit: usize,
    deliveries: Option<Deliveries>,
}

impl<E> Settings<E> {
    /// The defaults, with what [`HfSink::new`] was given.
    pub(super) fn new(
        client: reqwest::Client,
        repo: String,
        token: HfToken,
        encoder: Result<E, EncodeError>,
    ) -> Self {
        Self {
            client,
            repo,
            token,
            token_var: "HF_TOKEN".into(),
            endpoint: DEFAULT_ENDPOINT.into(),
            branch: "main".into(),
            encoder: encoder.map(Arc::new).map_err(Arc::new),
            prefix: String::new(),
            layout: Layout::default(),
            scratch: std::env::temp_dir().join("meathook-hf"),
            create: None,
            check_token: true,
            commit: CommitSettings::default(),
            request_timeout: Duration::from_secs(60),
            upload_timeout: Duration::from_secs(900),
            answer_limit: DEFAULT_ANSWER_LIMIT,
            deliveries: None,
        }
    }

    /// Checks every setting and builds what the sink runs on: the window
    /// file pipeline and the Hub target it publishes to.
    ///
    /// # Errors
    ///
    /// A permanent [`HfError`] naming the setting: the repository id, the
    /// endpoint, the branch, the token (missing, or not usable as a
    /// header), the encoder.
    pub(super) fn open<R>(&self) -> Result<(WindowFile<R, E>, HubTarget), HfError>
    where
        E: Encoder<R>,
    {
        let repo = RepoId::parse(&self.repo).ok_or_else(|| HfError::InvalidRepo {
            repo: self.repo.clone(),
        })?;
        self.check_endpoint()?;
        if self.branch.trim().is_empty() {
            return Err(self.invalid("branch", "it is empty".into()));
        }
        self.check_limits()?;
        if self.token.is_empty() {
            return Err(HfError::NoToken {
                repo: self.repo.clone(),
                token_var: self.token_var.clone(),
            });
        }
        self.token
            .check()
            .map_err(|problem| HfError::InvalidToken {
                repo: self.repo.clone(),
                token_var: self.token_var.clone(),
                problem,
            })?;
        let encoder = self.encoder.clone().map_err(|source| HfError::Encode {
            repo: self.repo.clone(),
            window: "any window (the encoder setting)".into(),
            source,
        })?;
        let hub = HubClient {
            client: self.client.clone(),
            target: Target {
                endpoint: self.endpoint.trim_end_matches('/').to_owned(),
                repo,
                branch: self.branch.clone(),
            },
            token: self.token.clone(),
            token_var: self.token_var.clone(),
            request_timeout: self.request_timeout,
            upload_timeout: self.upload_timeout,
            answer_limit: self.answer_limit,
        };
        let mut files = WindowFile::new(encoder, self.scratch.clone())
            .with_head_bytes(SAMPLE)
            .with_layout(self.layout);
        if let Some(deliveries) = &self.deliveries {
            files = files.with_deliveries(deliveries.clone());
        }
        let target = HubTarget::new(
            hub,
            self.commit.clone(),
            self.check_token,
            self.create,
            self.prefix.clone(),
            self.layout,
        );
        Ok((files, target))
    }
}

impl<E> Settings<E> {
    /// Where scratch files go.
    pub(super) fn scratch(&self) -> &std::path::Path {
        &self.scratch
    }

    /// The catalog hook, if one is set.
    pub(super) fn deliveries(&self) -> Option<&Deliveries> {
        self.deliveries.as_ref()
    }

    fn invalid(&self, parameter: &'static str, reason: String) -> HfError {
        HfError::InvalidSetting {
            repo: self.repo.clone(),
            parameter,
            reason,
        }
    }

    /// Every count and bound must leave the sink able to commit.
    fn check_limits(&self) -> Result<(), HfError> {
        let c = &self.commit;
        let zero = [
            ("commit_budget", c.budget == 0, "it allows no commit"),
            (
                "commit_budget",
                c.budget_window.is_zero(),
                "its window is zero",
            ),
            (
                "max_files_per_commit",
                c.max_files == 0,
                "it allows no file",
            ),
            ("retries", c.attempts == 0, "it allows no attempt"),
            (
                "timeouts",
                self.request_timeout.is_zero(),
                "the request bound is zero",
            ),
            (
                "timeouts",
                self.upload_timeout.is_zero(),
                "the upload bound is zero",
            ),
            ("max_answer_bytes", self.answer_limit == 0, "no answer fits"),
        ];
        match zero.into_iter().find(|(_, bad, _)| *bad) {
            Some((parameter, _, reason)) => Err(self.invalid(parameter, reason.into())),
            None => Ok(()),
        }
    }

    /// The endpoint must be an `http` or `https` URL with a host.
    fn check_endpoint(&self) -> Result<(), HfError> {
        let url = reqwest::Url::parse(&self.endpoint).map_err(|e| {
            self.invalid(
                "endpoint",
                format!("{:?} is not a URL ({e})", self.endpoint),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(self.invalid(
                "endpoint",
                format!("{:?} is not an http(s) URL with a host", self.endpoint),
            ));
        }
        Ok(())
    }
}

impl<R> HfSink<R> {
    /// A sink committing to the dataset `repo` (`namespace/name`) on
    /// `main` at `https://huggingface.co`, as parquet, with `token`.
    /// Infallible: the settings are checked when the sink is opened (or
    /// first given a window), and a bad repository id, a missing token or
    /// a record type parquet cannot represent is reported then, as a
    /// permanent error naming it. The token is trimmed of surrounding
    /// whitespace (a token read from a file ends in a newline); one still
    /// not usable as a header value is refused then too, before any
    /// request.
    pub fn new(client: reqwest::Client, repo: impl Into<String>, token: impl Into<HfToken>) -> Self
    where
        R: serde::Serialize + serde::de::DeserializeOwned,
    {
        let encoder = meathook_parquet::ParquetEncoder::<R>::new();
        Self::from_settings(Settings::new(client, repo.into(), token.into(), encoder))
    }
}

impl<R, E> HfSink<R, E> {
    fn from_settings(settings: Settings<E>) -> Self {
        Self {
            settings,
            open: None,
        }
    }

    fn set(mut self, change: impl FnOnce(&mut Settings<E>)) -> Self {
        change(&mut self.settings);
        // Whatever was opened from the old settings is built again.
        self.open = None;
        self
    }

    /// The branch to commit to (default `main`).
    pub fn with_branch(self, branch: impl Into<String>) -> Self {
        self.set(|s| s.branch = branch.into())
    }

    /// The Hub's endpoint (default `https://huggingface.co`).
    pub fn with_endpoint(self, endpoint: impl Into<String>) -> Self {
        self.set(|s| s.endpoint = endpoint.into())
    }

    /// The encoder (default parquet with its default settings).
    pub fn with_encoder<E2>(self, encoder: E2) -> HfSink<R, E2> {
        let s = self.settings;
        HfSink::from_settings(Settings {
            client: s.client,
            repo: s.repo,
            token: s.token,
            token_var: s.token_var,
            endpoint: s.endpoint,
            branch: s.branch,
            encoder: Ok(Arc::new(encoder)),
            prefix: s.prefix,
            layout: s.layout,
            scratch: s.scratch,
            create: s.create,
            check_token: s.check_token,
            commit: s.commit,
            request_timeout: s.request_timeout,
            upload_timeout: s.upload_timeout,
            answer_limit: s.answer_limit,
            deliveries: s.deliveries,
        })
    }

    /// Creates the dataset at start-up if it does not exist, private or
    /// public (default: never create; a missing dataset is a permanent
    /// error).
    pub fn with_create_if_missing(self, private: bool) -> Self {
        self.set(|s| s.create = Some(private))
    }

    /// A folder inside the repository holding the layout's `data/` tree
    /// (default none: `data/{pipeline}/…` at the root).
    pub fn with_path_prefix(self, prefix: impl Into<String>) -> Self {
        self.set(|s| s.prefix = prefix.into().trim_matches('/').to_owned())
    }

    /// How folders are named (default [`Layout::Folders`],
    /// `data/{pipeline}/{date}/`, what the dataset viewer reads best;
    /// [`Layout::Hive`] writes `data/pipeline={pipeline}/date={date}/` for
    /// engines that prune partitions, which the viewer shows as folders
    /// only). The dataset card's configs follow it; keep one layout per
    /// repository.
    pub fn with_layout(self, layout: Layout) -> Self {
        self.set(|s| s.layout = layout)
    }

    /// Where windows are encoded before upload (default
    /// `{temp dir}/meathook-hf`). Put it on a disk with room for the
    /// largest window.
    pub fn with_scratch_dir(self, dir: impl Into<PathBuf>) -> Self {
        self.set(|s| s.scratch = dir.into())
    }

    /// The environment variable the token came from, named in error
    /// messages (default `HF_TOKEN`).
    pub fn with_token_var(self, name: impl Into<String>) -> Self {
        self.set(|s| s.token_var = name.into())
    }

    /// Whether to check the token with `whoami-v2` at start-up (default
    /// yes).
    pub fn with_token_check(self, check: bool) -> Self {
        self.set(|s| s.check_token = check)
    }

    /// At most `commits` commits per `window` to this repository branch
    /// (default 100 per hour, below the Hub's ~128): over budget, files
    /// queue. The budget is the repository's: the branch's commits of the
    /// last `window` (before a restart, or by another writer) are read from
    /// the Hub and count. Commits go out at most one every
    /// `window / commits`, each taking every file queued.
    pub fn with_commit_budget(self, commits: usize, window: Duration) -> Self {
        self.set(|s| {
            s.commit.budget = commits;
            s.commit.budget_window = window;
        })
    }

    /// At most `files` files per commit (default 100).
    pub fn with_max_files_per_commit(self, files: usize) -> Self {
        self.set(|s| s.commit.max_files = files)
    }

    /// How long a ready file waits for others to share its commit (default
    /// 2 s).
    pub fn with_coalesce(self, delay: Duration) -> Self {
        self.set(|s| s.commit.coalesce = delay)
    }

    /// Attempts per commit round and the wait between them (default 5,
    /// 1 s doubling to 8 s); after them the spool keeps the window and
    /// retries on its own schedule.
    pub fn with_retries(self, attempts: u32, backoff: Backoff) -> Self {
        self.set(|s| {
            s.commit.attempts = attempts;
            s.commit.backoff = backoff;
        })
    }

    /// Reports every window committed (or found already committed, on a
    /// replay) to `deliveries` (a catalog) before `ingest` returns `Ok`,
    /// with the commit id when this sink made the commit. A failed report
    /// is a transient [`HfError::File`](crate::HfError::File) holding the
    /// catalog's error: the window stays spooled and is reported again.
    pub fn with_deliveries(self, deliveries: Deliveries) -> Self {
        self.set(|s| s.deliveries = Some(deliveries))
    }

    /// Bounds on one API call and one upload (default 60 s and 15 min),
    /// each covering the request, its body and the reading of the answer.
    /// A call past its bound is a transient
    /// [`HfError::Timeout`](crate::HfError::Timeout).
    pub fn with_timeouts(self, request: Duration, upload: Duration) -> Self {
        self.set(|s| {
            s.request_timeout = request;
            s.upload_timeout = upload;
        })
    }

    /// The most of one Hub answer the sink reads, in bytes (default
    /// [`DEFAULT_ANSWER_LIMIT`](crate::DEFAULT_ANSWER_LIMIT), 8 MiB). A
    /// larger answer is dropped unread: a transient
    /// [`HfError::TooLarge`](crate::HfError::TooLarge). The dataset card
    /// is read up to 10 MiB whatever this says (the most the Hub takes
    /// inline); refusals are read only up to their first 64 KiB.
    pub fn with_max_answer_bytes(self, bytes: usize) -> Self {
        self.set(|s| s.answer_limit = bytes)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests

    use meathook_core::{ErrorClass, SinkError};

    use super::*;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Reading {
        value: f64,
    }

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Untyped {
        value: serde_json::Value,
    }

    fn sink<R>() -> HfSink<R>
    where
        R: serde::Serialize + serde::de::DeserializeOwned,
    {
        HfSink::new(reqwest::Client::new(), "ns/ds", "hf_token")
    }

    fn refused<R, E: Encoder<R>>(sink: &HfSink<R, E>) -> HfError {
        sink.settings.open::<R>().err().unwrap()
    }

    #[test]
    fn every_bad_setting_is_refused_by_name() {
        assert!(sink::<Reading>().settings.open::<Reading>().is_ok());
        for (sink, parameter) in [
            (
                sink::<Reading>().with_endpoint("huggingface.co"),
                "endpoint",
            ),
            (
                sink::<Reading>().with_endpoint("ftp://huggingface.co"),
                "endpoint",
            ),
            (sink::<Reading>().with_branch(" "), "branch"),
            (
                sink::<Reading>().with_commit_budget(0, Duration::from_secs(3600)),
                "commit_budget",
            ),
            (
                sink::<Reading>().with_commit_budget(10, Duration::ZERO),
                "commit_budget",
            ),
            (
                sink::<Reading>().with_max_files_per_commit(0),
                "max_files_per_commit",
            ),
            (
                sink::<Reading>().with_retries(0, Backoff::default()),
                "retries",
            ),
            (
                sink::<Reading>().with_timeouts(Duration::ZERO, Duration::from_secs(1)),
                "timeouts",
            ),
            (
                sink::<Reading>().with_timeouts(Duration::from_secs(1), Duration::ZERO),
                "timeouts",
            ),
            (
                sink::<Reading>().with_max_answer_bytes(0),
                "max_answer_bytes",
            ),
        ] {
            match refused(&sink) {
                HfError::InvalidSetting { parameter: p, .. } => assert_eq!(p, parameter),
                other => panic!("{parameter}: {other:?}"),
            }
            assert_eq!(refused(&sink).class(), ErrorClass::Permanent);
        }
        let bad_repo = HfSink::<Reading>::new(reqwest::Client::new(), "no-slash", "hf_token");
        assert!(matches!(refused(&bad_repo), HfError::InvalidRepo { .. }));
        let no_token = HfSink::<Reading>::new(reqwest::Client::new(), "ns/ds", " ");
        assert!(matches!(refused(&no_token), HfError::NoToken { .. }));
        let error = refused(&sink::<Untyped>());
        assert!(matches!(error, HfError::Encode { .. }), "{error:?}");
        assert!(error.to_string().contains("encoder setting"), "{error}");
        assert!(
            std::error::Error::source(&error).is_some(),
            "the encoder's error is kept"
        );
    }
}
