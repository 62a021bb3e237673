//! `HfSink`: the terminal sink that commits each window as one parquet
//! file to a HuggingFace dataset.
//!
//! A window is encoded chunk by chunk into a scratch file (hashed as it is
//! written), handed to the repository's shared
//! [committer](crate::committer), and the call returns once the file is in
//! a commit on the branch — or already was. The path is a pure function of
//! the window and its `BatchId` ([`meathook_parquet::layout`]), so a replay
//! from the spool targets the same path, preupload reports the same
//! sha256, and nothing is committed twice.
//!
//! **Architecture invariant:** `ingest` returns `Ok` only after the Hub
//! confirmed the commit holding the file (or showed the file already
//! there); on `Err` nothing was accepted and the spool keeps the records.

use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use meathook_core::{
    Attempts, ChunkedError, ChunkedResult, Deliveries, Delivery, Encoder, IngestError, Receipt,
    RecordChunks, RecordRejected, Sink, StackStats, WindowMeta,
};
use meathook_parquet::local::ScratchFile;
use meathook_parquet::{EncodeError, layout};

use crate::committer::{CommitSettings, Committer, Delivered, ReadyFile};
use crate::encode::{self, Encoded, Job, Rejected};
use crate::error::HfError;
use crate::hub::HubClient;
use crate::repo::{DEFAULT_ENDPOINT, RepoId, Target};
use crate::token::HfToken;

/// The most of a Hub answer a sink reads by default: the Hub's JSON
/// answers (preupload, LFS batch, commit, whoami) are kilobytes; an LFS
/// batch answer for a full commit of multipart uploads stays well under
/// this.
pub const DEFAULT_ANSWER_LIMIT: usize = 8 << 20;

/// Commits each window as one parquet file to a HuggingFace dataset, and
/// returns `Ok` only once the Hub confirmed a commit holding it (or showed
/// it already there); see the [crate docs](crate) for the protocol and an
/// example.
pub struct HfSink<R, E = meathook_parquet::ParquetEncoder<R>> {
    pub(crate) client: reqwest::Client,
    pub(crate) repo: String,
    pub(crate) token: HfToken,
    pub(crate) token_var: String,
    pub(crate) endpoint: String,
    pub(crate) branch: String,
    pub(crate) encoder: Result<Arc<E>, String>,
    pub(crate) prefix: String,
    pub(crate) scratch: PathBuf,
    pub(crate) create: Option<bool>,
    pub(crate) check_token: bool,
    pub(crate) settings: CommitSettings,
    pub(crate) request_timeout: Duration,
    pub(crate) upload_timeout: Duration,
    pub(crate) answer_limit: usize,
    pub(crate) committer: Option<Arc<Committer>>,
    pub(crate) stats: Counts,
    pub(crate) deliveries: Option<Deliveries>,
    pub(crate) attempts: Attempts,
    pub(crate) _records: PhantomData<fn(R)>,
}

/// What a sink has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) files_committed: u64,
    pub(crate) files_found: u64,
    pub(crate) records_delivered: u64,
    pub(crate) records_rejected: u64,
    pub(crate) failures: u64,
}

impl<R, E: std::fmt::Debug> std::fmt::Debug for HfSink<R, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfSink")
            .field("repo", &self.repo)
            .field("endpoint", &self.endpoint)
            .field("branch", &self.branch)
            .field("token", &self.token)
            .field("encoder", &self.encoder)
            .field("settings", &self.settings)
            .field("stats", &self.stats)
            .field("deliveries", &self.deliveries)
            .finish_non_exhaustive()
    }
}

impl<R> HfSink<R> {
    /// A sink committing to the dataset `repo` (`namespace/name`) on
    /// `main` at `https://huggingface.co`, as parquet, with `token`.
    /// Infallible: a bad repository id, a missing token or a record type
    /// parquet cannot represent are reported by the first `open`/`ingest`,
    /// as permanent errors. The token is trimmed of surrounding whitespace
    /// (a token read from a file ends in a newline); one still not usable
    /// as a header value is refused by the first `open`/`ingest`, before
    /// any request.
    pub fn new(client: reqwest::Client, repo: impl Into<String>, token: impl Into<HfToken>) -> Self
    where
        R: serde::Serialize + serde::de::DeserializeOwned,
    {
        let encoder = meathook_parquet::ParquetEncoder::<R>::new()
            .map(Arc::new)
            .map_err(|e| e.to_string());
        Self {
            client,
            repo: repo.into(),
            token: token.into(),
            token_var: "HF_TOKEN".into(),
            endpoint: DEFAULT_ENDPOINT.into(),
            branch: "main".into(),
            encoder,
            prefix: String::new(),
            scratch: std::env::temp_dir().join("meathook-hf"),
            create: None,
            check_token: true,
            settings: CommitSettings::default(),
            request_timeout: Duration::from_secs(60),
            upload_timeout: Duration::from_secs(900),
            answer_limit: DEFAULT_ANSWER_LIMIT,
            committer: None,
            stats: Counts::default(),
            deliveries: None,
            attempts: Attempts::default(),
            _records: PhantomData,
        }
    }
}

impl<R, E> HfSink<R, E> {
    pub(crate) fn target(&self) -> Result<Target, HfError> {
        let repo = RepoId::parse(&self.repo).ok_or_else(|| HfError::InvalidRepo {
            repo: self.repo.clone(),
        })?;
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
        Ok(Target {
            endpoint: self.endpoint.trim_end_matches('/').to_owned(),
            repo,
            branch: self.branch.clone(),
        })
    }

    pub(crate) fn hub(&self) -> Result<HubClient, HfError> {
        Ok(HubClient {
            client: self.client.clone(),
            target: self.target()?,
            token: self.token.clone(),
            token_var: self.token_var.clone(),
            request_timeout: self.request_timeout,
            upload_timeout: self.upload_timeout,
            answer_limit: self.answer_limit,
        })
    }

    /// Files committed by this sink, and files found already there.
    pub fn file_counts(&self) -> (u64, u64) {
        (self.stats.files_committed, self.stats.files_found)
    }

    /// Files of this repository waiting for a commit, across every sink
    /// sharing its committer.
    pub fn queued_files(&self) -> usize {
        self.committer.as_ref().map_or(0, |c| c.pending())
    }
}

impl<R, E> HfSink<R, E>
where
    R: Send + Sync + 'static,
    E: Encoder<R, Error = EncodeError> + 'static,
    E::Session<ScratchFile>: 'static,
{
    fn the_encoder(&self) -> Result<Arc<E>, HfError> {
        self.encoder.clone().map_err(|reason| HfError::Encode {
            repo: self.repo.clone(),
            window: "every window".into(),
            reason,
        })
    }

    /// Start-up checks, once per committer: the token's identity and role
    /// (`whoami-v2` is strictly rate limited, so once), then the repository
    /// is created if asked.
    async fn ensure_open(&mut self) -> Result<(HubClient, Arc<Committer>), HfError> {
        let hub = self.hub()?;
        let committer = match &self.committer {
            Some(c) => Arc::clone(c),
            None => {
                let c = Committer::shared(&hub.target, self.settings.clone());
                self.committer = Some(Arc::clone(&c));
                c
            }
        };
        // One run of the checks per committer, however many sinks open at
        // once; a failed run leaves the next caller to try again.
        let (check_token, create) = (self.check_token, self.create);
        committer
            .started
            .get_or_try_init(|| crate::startup::check(&hub, check_token, create))
            .await?;
        Ok((hub, committer))
    }

    /// Commits an encoded window; removes the scratch file either way.
    async fn commit(
        &mut self,
        window: &WindowMeta,
        encoded: Encoded,
        total: usize,
    ) -> Result<Receipt<HfError>, HfError> {
        let path = encoded.sealed.path.clone();
        let result = self.commit_inner(window, encoded, total).await;
        encode::discard(path).await;
        if result.is_err() {
            self.stats.failures += 1;
        }
        result
    }

    async fn commit_inner(
        &mut self,
        window: &WindowMeta,
        encoded: Encoded,
        total: usize,
    ) -> Result<Receipt<HfError>, HfError> {
        let accepted = total - encoded.rejected.len();
        let rejected = rejections(window, encoded.rejected);
        if accepted == 0 {
            self.stats.records_rejected += rejected.len() as u64;
            return Ok(Receipt::partial(0, rejected));
        }
        let (hub, committer) = self.ensure_open().await?;
        let ext = self.the_encoder()?.extension().to_owned();
        let name = match window.batch {
            Some(id) => layout::BatchName::Sequence(id),
            None => layout::BatchName::Content(&encoded.sealed.sha256),
        };
        let file = ReadyFile {
            path: self.prefixed(&layout::object_path(window, name, &ext)),
            local: encoded.sealed.path.clone(),
            oid: encode::hex(&encoded.sealed.sha256),
            size: encoded.sealed.len,
            sample: encoded.sample,
            pipeline: window.pipeline.to_string(),
            glob: self.prefixed(&layout::pipeline_glob(&window.pipeline, &ext)),
        };
        let path = file.path.clone();
        let size = file.size;
        let commit = match committer.submit(&hub, file).await? {
            Delivered::Committed(commit) => {
                self.stats.files_committed += 1;
                tracing::debug!(repo = %self.repo, %path, %commit, rows = accepted, "window committed");
                Some(commit)
            }
            Delivered::AlreadyThere => {
                self.stats.files_found += 1;
                tracing::debug!(repo = %self.repo, %path, "window already in the dataset");
                None
            }
        };
        if let Some(deliveries) = &self.deliveries {
            let mut record = Delivery::new(
                window,
                self.destination_label(),
                path.clone(),
                accepted as u64,
                size,
                encoded.sealed.sha256,
            )
            .with_attempts(self.attempts.current(window));
            if let Some(commit) = commit {
                record = record.with_commit(commit);
            }
            deliveries
                .report(record)
                .await
                .map_err(|e| HfError::Catalog {
                    repo: self.repo.clone(),
                    path,
                    reason: e.to_string(),
                })?;
        }
        self.stats.records_delivered += accepted as u64;
        self.stats.records_rejected += rejected.len() as u64;
        Ok(Receipt::partial(accepted, rejected))
    }

    /// How the catalog names this dataset: `hf://datasets/{repo}`, with
    /// `@{branch}` for a branch other than `main` (the Hub's fsspec form).
    fn destination_label(&self) -> String {
        if self.branch == "main" {
            format!("hf://datasets/{}", self.repo)
        } else {
            format!("hf://datasets/{}@{}", self.repo, self.branch)
        }
    }

    fn prefixed(&self, path: &str) -> String {
        if self.prefix.is_empty() {
            path.to_owned()
        } else {
            format!("{}/{path}", self.prefix)
        }
    }

    async fn begin(&self, window: &WindowMeta) -> Result<(Arc<E>, Job<R, E>), HfError> {
        let encoder = self.the_encoder()?;
        let job = encode::begin(&encoder, &self.scratch, &self.repo, &window.to_string()).await?;
        Ok((encoder, job))
    }
}

fn rejections(window: &WindowMeta, rejected: Rejected) -> Vec<RecordRejected<HfError>> {
    rejected
        .into_iter()
        .map(|(index, reason)| RecordRejected {
            index,
            error: HfError::Record {
                window: window.to_string(),
                index,
                reason,
            },
        })
        .collect()
}

/// A chunk on its way to the blocking pool and back.
struct Records<R>(Vec<R>);

impl<R> AsRef<[R]> for Records<R> {
    fn as_ref(&self) -> &[R] {
        &self.0
    }
}

impl<R, E> Sink<R> for HfSink<R, E>
where
    R: Send + Sync + 'static,
    E: Encoder<R, Error = EncodeError> + 'static,
    E::Session<ScratchFile>: 'static,
{
    type Error = HfError;

    /// Checks the token and creates the repository if asked (once per
    /// repository and process), and removes scratch files left by a
    /// crashed process.
    async fn open(&mut self) -> Result<(), HfError> {
        let dir = self.scratch.clone();
        let removed =
            tokio::task::spawn_blocking(move || meathook_parquet::local::remove_stale(&dir))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or(0);
        if removed > 0 {
            tracing::info!(removed, "removed scratch files left by an earlier process");
        }
        self.the_encoder()?;
        self.ensure_open().await.map(|_| ())
    }

    async fn ingest(
        &mut self,
        window: &WindowMeta,
        records: Vec<R>,
    ) -> Result<Receipt<HfError>, IngestError<R, HfError>> {
        let result = self.ingest_batch(window, records).await;
        self.attempts.note(window, result.is_ok());
        result
    }

    async fn ingest_chunks<C>(
        &mut self,
        window: &WindowMeta,
        chunks: C,
    ) -> ChunkedResult<HfError, C::Error>
    where
        C: RecordChunks<R>,
        R: Send,
    {
        let result = self.ingest_chunked(window, chunks).await;
        self.attempts.note(window, result.is_ok());
        result
    }

    /// Holds nothing: every `ingest` commits before it returns.
    async fn flush(&mut self) -> Result<(), HfError> {
        Ok(())
    }

    fn observe(&self, stats: &mut StackStats) {
        stats.delivered_records = self.stats.records_delivered;
        stats.failed_attempts = self.stats.failures;
        stats.rejected_records += self.stats.records_rejected;
    }
}

impl<R, E> HfSink<R, E>
where
    R: Send + Sync + 'static,
    E: Encoder<R, Error = EncodeError> + 'static,
    E::Session<ScratchFile>: 'static,
{
    async fn ingest_batch(
        &mut self,
        window: &WindowMeta,
        records: Vec<R>,
    ) -> Result<Receipt<HfError>, IngestError<R, HfError>> {
        if records.is_empty() {
            return Ok(Receipt::all(0));
        }
        let (encoder, job) = match self.begin(window).await {
            Ok(begun) => begun,
            Err(e) => return Err(IngestError::new(records, e)),
        };
        let total = records.len();
        let w = window.to_string();
        let (job, Records(records)) =
            match encode::write(&encoder, job, Records(records), 0, &self.repo, &w).await {
                Ok(done) => done,
                Err((e, records)) => {
                    let records = records.map(|Records(r)| r).unwrap_or_default();
                    return Err(IngestError::new(records, e));
                }
            };
        let encoded = match encode::finish(job, &self.repo, &w).await {
            Ok(encoded) => encoded,
            Err(e) => return Err(IngestError::new(records, e)),
        };
        self.commit(window, encoded, total)
            .await
            .map_err(|e| IngestError::new(records, e))
    }

    async fn ingest_chunked<C>(
        &mut self,
        window: &WindowMeta,
        mut chunks: C,
    ) -> ChunkedResult<HfError, C::Error>
    where
        C: RecordChunks<R>,
    {
        let (encoder, mut job) = self.begin(window).await.map_err(ChunkedError::Sink)?;
        let w = window.to_string();
        let mut total = 0;
        loop {
            let chunk = match chunks.next_chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    encode::discard(job.path.clone()).await;
                    return Err(ChunkedError::Source(e));
                }
            };
            let n = chunk.len();
            job = match encode::write(&encoder, job, Records(chunk), total, &self.repo, &w).await {
                Ok((job, _)) => job,
                Err((e, _)) => return Err(ChunkedError::Sink(e)),
            };
            total += n;
        }
        if total == 0 {
            encode::discard(job.path.clone()).await;
            return Ok(Receipt::all(0));
        }
        let encoded = encode::finish(job, &self.repo, &w)
            .await
            .map_err(ChunkedError::Sink)?;
        self.commit(window, encoded, total)
            .await
            .map_err(ChunkedError::Sink)
    }
}
