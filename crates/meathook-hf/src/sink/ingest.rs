//! What `HfSink` does with windows: the window-file pipeline
//! ([`meathook_files::WindowFile`]) plus publishing to the Hub
//! (the `HubTarget` of `publish`), built from the settings when the sink is opened or
//! first given a window.
//!
//! A window is encoded chunk by chunk into a scratch file (hashed as it is
//! written, the next chunk read while this one is encoded), handed to the
//! repository's shared [committer](crate::committer), and the call returns
//! once the file is in a commit on the branch — or already was. The path
//! is a pure function of the window and its `BatchId`
//! ([`meathook_files::layout`]), so a replay from the spool targets the
//! same path, preupload reports the same sha256, and nothing is committed
//! twice.
//!
//! **Architecture invariant:** `ingest` returns `Ok` only after the Hub
//! confirmed the commit holding the file (or showed the file already
//! there); on `Err` nothing was accepted and the spool keeps the records.

use meathook_core::{
    ChunkedError, ChunkedResult, Encoder, IngestError, Receipt, RecordChunks, Sink, StackStats,
    WindowMeta,
};
use meathook_files::FileEncoder;
use meathook_parquet::EncodeError;

use super::settings::{HfSink, Open};
use crate::error::HfError;

impl<R, E: std::fmt::Debug> std::fmt::Debug for HfSink<R, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("HfSink");
        d.field("settings", &self.settings);
        if let Some(open) = &self.open {
            d.field("files", &open.files);
        }
        d.finish_non_exhaustive()
    }
}

impl<R, E> HfSink<R, E> {
    /// Files committed by this sink, and files found already there.
    pub fn file_counts(&self) -> (u64, u64) {
        self.open.as_ref().map_or((0, 0), |open| {
            let counts = open.files.counts();
            (counts.files_created, counts.files_found)
        })
    }

    /// Files of this repository waiting for a commit, across every sink
    /// sharing its committer.
    pub fn queued_files(&self) -> usize {
        self.open.as_ref().map_or(0, |open| open.hub.queued_files())
    }

    /// Checks, without changing anything on the Hub, that this sink could
    /// start: its settings, that the token is valid and may write
    /// (`whoami-v2`, whatever [`with_token_check`](Self::with_token_check)
    /// says), and that the branch exists — or, for a missing dataset, that
    /// [`with_create_if_missing`](Self::with_create_if_missing) will make
    /// it. For a `--check` before a deployment; `whoami-v2` is strictly rate
    /// limited, so not for every start.
    ///
    /// # Errors
    ///
    /// The [`HfError`] a start would meet: `InvalidSetting`, `NoToken`,
    /// `Unauthorized`, `Forbidden` (a read-only token), `NotFound` (no such
    /// dataset or branch), or a transport error.
    pub async fn probe(&mut self) -> Result<(), HfError>
    where
        E: Encoder<R>,
    {
        self.opened()?.hub.probe().await
    }

    /// A compactor of this sink's repository branch (its token, path
    /// prefix, catalog hook and shared committer, so compaction commits
    /// count against the same budget): see [`crate::compact`]. Runs the
    /// start-up checks like [`open`](Sink::open).
    ///
    /// # Errors
    ///
    /// The [`HfError`] of the settings or of the start-up checks.
    pub async fn compactor(&mut self) -> Result<crate::compact::HubCompactor, HfError>
    where
        E: Encoder<R>,
    {
        let scratch = self.settings.scratch().join("compaction");
        let deliveries = self.settings.deliveries().cloned();
        self.opened()?.hub.compactor(scratch, deliveries).await
    }

    /// The checked settings, checking them the first time.
    fn opened(&mut self) -> Result<&mut Open<R, E>, HfError>
    where
        E: Encoder<R>,
    {
        let open = match self.open.take() {
            Some(open) => open,
            None => {
                let (files, hub) = self.settings.open()?;
                Open { files, hub }
            }
        };
        Ok(self.open.insert(open))
    }
}

impl<R: Send + Sync + 'static, E: FileEncoder<R, Error = EncodeError>> Sink<R> for HfSink<R, E> {
    type Error = HfError;

    /// Checks the settings, the token and creates the repository if asked
    /// (once per repository and process), and removes scratch files left
    /// by a crashed process.
    async fn open(&mut self) -> Result<(), HfError> {
        let open = self.opened()?;
        // A scratch directory that cannot be cleaned is no reason not to
        // start: the next window's scratch file says what is wrong.
        let _ = open.files.remove_stale::<EncodeError>().await;
        open.hub.ensure_open().await.map(drop)
    }

    async fn ingest(
        &mut self,
        window: &WindowMeta,
        records: Vec<R>,
    ) -> Result<Receipt<HfError>, IngestError<R, HfError>> {
        match self.opened() {
            Ok(open) => open.files.ingest(&mut open.hub, window, records).await,
            Err(e) => Err(IngestError::new(records, e)),
        }
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
        let open = self.opened().map_err(ChunkedError::Sink)?;
        open.files
            .ingest_chunks(&mut open.hub, window, chunks)
            .await
    }

    /// Holds nothing: every `ingest` commits before it returns.
    async fn flush(&mut self) -> Result<(), HfError> {
        Ok(())
    }

    fn observe(&self, stats: &mut StackStats) {
        let counts = self
            .open
            .as_ref()
            .map(|open| open.files.counts())
            .unwrap_or_default();
        stats.delivered_records = counts.records_delivered;
        stats.failed_attempts = counts.failures;
        stats.rejected_records += counts.records_rejected;
    }
}
