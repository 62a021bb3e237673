//! `HfSink`'s builder methods: each returns the sink with one setting
//! changed. Settings of the shared committer (files per commit, budget,
//! coalescing, retries) are taken from the first sink of a repository
//! branch to open.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use meathook_core::Backoff;

use crate::sink::HfSink;

impl<R, E> HfSink<R, E> {
    /// The branch to commit to (default `main`).
    pub fn branch(mut self, branch: impl Into<String>) -> Self {
        self.branch = branch.into();
        self
    }

    /// The Hub's endpoint (default `https://huggingface.co`).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }

    /// The encoder (default parquet with its default settings).
    pub fn encoder<E2>(self, encoder: E2) -> HfSink<R, E2> {
        HfSink {
            client: self.client,
            repo: self.repo,
            token: self.token,
            token_var: self.token_var,
            endpoint: self.endpoint,
            branch: self.branch,
            encoder: Ok(Arc::new(encoder)),
            prefix: self.prefix,
            scratch: self.scratch,
            create: self.create,
            check_token: self.check_token,
            settings: self.settings,
            request_timeout: self.request_timeout,
            upload_timeout: self.upload_timeout,
            answer_limit: self.answer_limit,
            committer: None,
            stats: self.stats,
            deliveries: self.deliveries,
            attempts: self.attempts,
            _records: self._records,
        }
    }

    /// Creates the dataset at start-up if it does not exist, private or
    /// public (default: never create; a missing dataset is a permanent
    /// error).
    pub fn create_if_missing(mut self, private: bool) -> Self {
        self.create = Some(private);
        self
    }

    /// A folder inside the repository holding the layout's `data/` tree
    /// (default none: `data/{pipeline}/…` at the root).
    pub fn path_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().trim_matches('/').to_owned();
        self
    }

    /// Where windows are encoded before upload (default
    /// `{temp dir}/meathook-hf`). Put it on a disk with room for the
    /// largest window.
    pub fn scratch_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.scratch = dir.into();
        self
    }

    /// The environment variable the token came from, named in error
    /// messages (default `HF_TOKEN`).
    pub fn token_var(mut self, name: impl Into<String>) -> Self {
        self.token_var = name.into();
        self
    }

    /// Whether to check the token with `whoami-v2` at start-up (default
    /// yes).
    pub fn check_token(mut self, check: bool) -> Self {
        self.check_token = check;
        self
    }

    /// At most `commits` commits per `window` to this repository (default
    /// 100 per hour): over budget, files queue.
    pub fn commit_budget(mut self, commits: usize, window: Duration) -> Self {
        self.settings.budget = commits.max(1);
        self.settings.budget_window = window;
        self
    }

    /// At most `files` files per commit (default 100).
    pub fn max_files_per_commit(mut self, files: usize) -> Self {
        self.settings.max_files = files.max(1);
        self
    }

    /// How long a ready file waits for others to share its commit (default
    /// 2 s).
    pub fn coalesce(mut self, delay: Duration) -> Self {
        self.settings.coalesce = delay;
        self
    }

    /// Attempts per commit round and the wait between them (default 5,
    /// 1 s doubling to 8 s); after them the spool keeps the window and
    /// retries on its own schedule.
    pub fn retries(mut self, attempts: u32, backoff: Backoff) -> Self {
        self.settings.attempts = attempts.max(1);
        self.settings.backoff = backoff;
        self
    }

    /// Reports every window committed (or found already committed, on a
    /// replay) to `deliveries` (a catalog) before `ingest` returns `Ok`,
    /// with the commit id when this sink made the commit. A failed report
    /// is a transient [`HfError::Catalog`](crate::HfError::Catalog): the
    /// window stays spooled and is reported again.
    pub fn with_deliveries(mut self, deliveries: meathook_core::Deliveries) -> Self {
        self.deliveries = Some(deliveries);
        self
    }

    /// Bounds on one API call and one upload (default 60 s and 15 min),
    /// each covering the request, its body and the reading of the answer.
    /// A call past its bound is a transient
    /// [`HfError::Timeout`](crate::HfError::Timeout).
    pub fn timeouts(mut self, request: Duration, upload: Duration) -> Self {
        self.request_timeout = request;
        self.upload_timeout = upload;
        self
    }

    /// The most of one Hub answer the sink reads, in bytes (default
    /// [`DEFAULT_ANSWER_LIMIT`](crate::DEFAULT_ANSWER_LIMIT), 8 MiB). A
    /// larger answer is dropped unread: a transient
    /// [`HfError::TooLarge`](crate::HfError::TooLarge). The dataset card
    /// is read up to 10 MiB whatever this says (the most the Hub takes
    /// inline); refusals are read only up to their first 64 KiB.
    pub fn max_answer_bytes(mut self, bytes: usize) -> Self {
        self.answer_limit = bytes.max(1);
        self
    }
}
