//! Publishing a sealed window file to the Hub: the repository's shared
//! committer takes it into a commit, after the once-per-repository
//! start-up checks. This is all `HfSink` adds to the window-file pipeline.

use std::sync::Arc;

use meathook_core::WindowMeta;
use meathook_files::layout;
use meathook_files::window_file::{Landed, Publish, SealedFile, WindowFileError};
use meathook_parquet::EncodeError;

use crate::committer::{CommitSettings, Committer};
use crate::error::HfError;
use crate::hub::HubClient;
use crate::ready::{Delivered, ReadyFile};

/// A repository branch on the Hub, as a place window files land.
#[derive(Debug)]
pub(super) struct HubTarget {
    hub: HubClient,
    settings: CommitSettings,
    check_token: bool,
    create: Option<bool>,
    prefix: String,
    layout: layout::Layout,
    committer: Option<Arc<Committer>>,
}

impl HubTarget {
    pub(super) fn new(
        hub: HubClient,
        settings: CommitSettings,
        check_token: bool,
        create: Option<bool>,
        prefix: String,
        layout: layout::Layout,
    ) -> Self {
        Self {
            hub,
            settings,
            check_token,
            create,
            prefix,
            layout,
            committer: None,
        }
    }

    /// The token may write and the branch exists (or will be created);
    /// nothing is created or committed.
    pub(super) async fn probe(&self) -> Result<(), HfError> {
        crate::startup::probe(&self.hub, self.create.is_some()).await
    }

    /// Files of this repository waiting for a commit, across every sink
    /// sharing its committer.
    pub(super) fn queued_files(&self) -> usize {
        self.committer.as_ref().map_or(0, |c| c.pending())
    }

    /// Start-up checks, once per committer: the token's identity and role
    /// (`whoami-v2` is strictly rate limited, so once), then the repository
    /// is created if asked, then the branch's recent commits are counted
    /// against the commit budget.
    pub(super) async fn ensure_open(&mut self) -> Result<Arc<Committer>, HfError> {
        let committer = match &self.committer {
            Some(c) => Arc::clone(c),
            None => {
                let c = Committer::shared(&self.hub.target, self.settings.clone());
                self.committer = Some(Arc::clone(&c));
                c
            }
        };
        // One run of the checks per committer, however many sinks open at
        // once; a failed run leaves the next caller to try again.
        let (hub, check_token, create) = (&self.hub, self.check_token, self.create);
        committer
            .started
            .get_or_try_init(|| async {
                crate::startup::check(hub, check_token, create).await?;
                committer.seed_budget(hub).await
            })
            .await?;
        Ok(committer)
    }

    /// A compactor of this repository branch, sharing its committer.
    pub(super) async fn compactor(
        &mut self,
        scratch: std::path::PathBuf,
        deliveries: Option<meathook_core::Deliveries>,
    ) -> Result<crate::compact::HubCompactor, HfError> {
        let committer = self.ensure_open().await?;
        let destination = <Self as Publish<EncodeError>>::destination(self);
        Ok(crate::compact::HubCompactor::new(
            self.hub.clone(),
            committer,
            self.prefix.clone(),
            scratch,
            destination,
            deliveries,
        )
        .with_layout(self.layout))
    }

    fn prefixed(&self, path: &str) -> String {
        if self.prefix.is_empty() {
            path.to_owned()
        } else {
            format!("{}/{path}", self.prefix)
        }
    }
}

impl Publish<EncodeError> for HubTarget {
    type Error = HfError;

    /// `hf://datasets/{repo}`, with `@{branch}` for a branch other than
    /// `main` (the Hub's fsspec form).
    fn destination(&self) -> String {
        let (repo, branch) = (self.hub.repo(), &self.hub.target.branch);
        if branch == "main" {
            format!("hf://datasets/{repo}")
        } else {
            format!("hf://datasets/{repo}@{branch}")
        }
    }

    fn error(&self, error: WindowFileError<EncodeError>) -> HfError {
        HfError::File {
            repo: self.hub.repo(),
            source: Arc::new(error),
        }
    }

    async fn publish(&mut self, window: &WindowMeta, file: &SealedFile) -> Result<Landed, HfError> {
        let committer = self.ensure_open().await?;
        let ready = ReadyFile {
            path: self.prefixed(&file.path),
            local: file.scratch.clone(),
            oid: file.sha256_hex(),
            size: file.len,
            sample: file.head.clone(),
            pipeline: window.pipeline.to_string(),
            glob: self.prefixed(&self.layout.pipeline_glob(&window.pipeline, &file.extension)),
        };
        let path = ready.path.clone();
        let repo = self.hub.repo();
        let (created, commit) = match committer.submit(&self.hub, ready).await? {
            Delivered::Committed(commit) => {
                tracing::debug!(%repo, %path, %commit, rows = file.rows, "window committed");
                (true, Some(commit))
            }
            Delivered::AlreadyThere => {
                tracing::debug!(%repo, %path, "window already in the dataset");
                (false, None)
            }
        };
        Ok(Landed {
            location: path.clone(),
            path,
            created,
            commit,
        })
    }
}
