//! `FileSink`: the terminal sink that writes one file per batch to a local
//! directory or an object store — the window-file pipeline
//! ([`meathook_files::WindowFile`]) plus publishing to a [`Destination`].
//!
//! **Architecture invariant:** a batch becomes exactly one file at the path
//! [`layout`](crate::layout) gives it, or nothing. The file is encoded into
//! a scratch file chunk by chunk (memory is bounded by a chunk and a row
//! group, not by the window), fsynced, then published atomically: linked
//! into place locally, conditionally created remotely. A replay finds its
//! file already there and does nothing; locally, a replay whose day folder
//! was compacted since finds its batch in the folder's compaction record
//! (`meathook_files::coverage`) and does nothing either. Encoding and file IO run on tokio's
//! blocking pool, never on the executor's worker threads.
//!
//! Beside the files, the destination's dataset card (`README.md`) gets a
//! `configs:` entry for each pipeline, the card the HuggingFace sink
//! writes, so `datasets.load_dataset(dir, name=PIPELINE)` reads one
//! pipeline (see the `card` module for how concurrent writers keep each
//! other's entries). A card that cannot be updated fails the `ingest`
//! transiently after the file landed; the replay finds the file and tries
//! the card again. [`FileSinkBuilder::with_dataset_card`](crate::FileSinkBuilder::with_dataset_card)
//! turns it off.
//!
//! With [`with_deliveries`](FileSink::with_deliveries), every file landed,
//! and every file a replay finds already there, is reported as a
//! [`Delivery`](meathook_core::Delivery) before `ingest` returns `Ok`; a
//! failed report fails the `ingest` (transiently), so the batch stays with
//! the layer above and is delivered and reported again.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use meathook_core::{
    ChunkedResult, Deliveries, IngestError, Receipt, RecordChunks, Sink, StackStats, WindowMeta,
};
use meathook_files::window_file::{Landed, Publish, SealedFile, WindowFileError};
use meathook_files::{FileEncoder, WindowFile};
use object_store::path::Path as ObjectPath;

use crate::error::EncodeError;
use crate::local::{self, Published, Sealed};
use crate::remote::{self, DEFAULT_SINGLE_PUT_LIMIT, UploadError};
use crate::sink_error::FileSinkError;
use crate::store::{Destination, DestinationError};
use meathook_files::coverage::hex;

/// Writes each batch as one file at its layout path, atomically, or nothing;
/// a replay finds the file in place and does nothing.
pub struct FileSink<R, E> {
    files: WindowFile<R, E>,
    target: Target,
}

/// Where a [`FileSink`]'s sealed files go.
#[derive(Debug)]
struct Target {
    destination: Destination,
    single_put_limit: u64,
    /// Whether the dataset card is kept.
    dataset_card: bool,
    /// How folders are named, for the card's configs.
    layout: meathook_files::layout::Layout,
    /// Pipelines (and extensions) whose config the card is known to have.
    carded: HashSet<(Arc<str>, String)>,
}

impl<R, E: std::fmt::Debug> std::fmt::Debug for FileSink<R, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSink")
            .field("destination", &self.target.destination)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl<R, E> FileSink<R, E> {
    pub(crate) fn from_parts(
        destination: Destination,
        scratch: PathBuf,
        single_put_limit: u64,
        encoder: E,
    ) -> Self {
        Self {
            files: WindowFile::new(Arc::new(encoder), scratch),
            target: Target {
                destination,
                single_put_limit,
                dataset_card: true,
                layout: meathook_files::layout::Layout::default(),
                carded: HashSet::new(),
            },
        }
    }

    /// Reports every file landed (or found on a replay) to `deliveries`
    /// before `ingest` returns `Ok`.
    pub fn with_deliveries(mut self, deliveries: Deliveries) -> Self {
        self.files = self.files.with_deliveries(deliveries);
        self
    }

    /// Names files by `layout` (see [`FileSinkBuilder::with_layout`](crate::FileSinkBuilder::with_layout)).
    pub(crate) fn with_layout(mut self, layout: meathook_files::layout::Layout) -> Self {
        self.files = self.files.with_layout(layout);
        self.target.layout = layout;
        self
    }

    /// Keeps the destination's dataset card (default `true`).
    pub(crate) fn with_dataset_card(mut self, keep: bool) -> Self {
        self.target.dataset_card = keep;
        self
    }

    /// A sink writing to `url` with `encoder` and default settings (see
    /// [`FileSinkBuilder`](crate::FileSinkBuilder) for the others).
    ///
    /// # Errors
    ///
    /// [`DestinationError`] when the URL is refused.
    pub fn new(url: impl Into<String>, encoder: E) -> Result<Self, DestinationError> {
        let destination = Destination::parse(&url.into())?;
        let scratch = destination.scratch_dir(None);
        Ok(Self::from_parts(
            destination,
            scratch,
            DEFAULT_SINGLE_PUT_LIMIT,
            encoder,
        ))
    }

    /// The destination.
    pub fn destination(&self) -> &Destination {
        &self.target.destination
    }

    /// The last file written or found.
    pub fn last_delivery(&self) -> Option<&meathook_core::Delivery> {
        self.files.last_delivery()
    }

    /// Files this sink created, and files it found already there (replays).
    pub fn file_counts(&self) -> (u64, u64) {
        let counts = self.files.counts();
        (counts.files_created, counts.files_found)
    }
}

impl Publish<EncodeError> for Target {
    type Error = FileSinkError;

    fn destination(&self) -> String {
        self.destination.label()
    }

    fn error(&self, error: WindowFileError<EncodeError>) -> FileSinkError {
        FileSinkError::from(error)
    }

    /// A name no file can carry fails at once, permanently, before any
    /// encoding: retrying it could never land.
    fn admit(&self, window: &WindowMeta) -> Result<(), FileSinkError> {
        meathook_core::name::check_pipeline_name(&window.pipeline).map_err(|source| {
            FileSinkError::Name {
                window: window.to_string(),
                source,
            }
        })
    }

    async fn publish(
        &mut self,
        window: &WindowMeta,
        file: &SealedFile,
    ) -> Result<Landed, FileSinkError> {
        let relative = file.path.clone();
        let location = self.destination.describe(&relative);
        let sealed = Sealed {
            path: file.scratch.clone(),
            sha256: file.sha256,
            len: file.len,
        };
        let outcome = match &self.destination {
            Destination::Local { root } => {
                let target = root.join(&relative);
                let scratch = sealed.path.clone();
                meathook_core::blocking(move || local::publish(&sealed, &target))
                    .await
                    .map_err(|e| FileSinkError::Task {
                        window: window.to_string(),
                        reason: e.to_string(),
                    })?
                    .map_err(|source| FileSinkError::Local {
                        action: "publishing",
                        path: scratch,
                        source,
                    })?
            }
            Destination::Remote { store, prefix, .. } => {
                let path = ObjectPath::from_iter(
                    prefix
                        .parts()
                        .chain(ObjectPath::from(relative.as_str()).parts()),
                );
                remote::upload(store, &path, &sealed, self.single_put_limit)
                    .await
                    .map_err(|e| match e {
                        UploadError::Store(action, source) => FileSinkError::Store {
                            action,
                            path: location.clone(),
                            source,
                        },
                        UploadError::Local(action, path, source) => FileSinkError::Local {
                            action,
                            path,
                            source,
                        },
                        UploadError::Task(reason) => FileSinkError::Task {
                            window: window.to_string(),
                            reason,
                        },
                    })?
            }
        };
        let (created, location) = match outcome {
            Published::Created => (true, location),
            Published::AlreadyThere => (false, location),
            // Its rows are in the day's compacted file: name that.
            Published::Compacted { file } => {
                let folder = relative.rsplit_once('/').map_or("", |(folder, _)| folder);
                (
                    false,
                    self.destination.describe(&format!("{folder}/{file}")),
                )
            }
            Published::Conflict { existing } => {
                return Err(FileSinkError::Conflict {
                    path: location,
                    existing: hex(&existing),
                    ours: hex(&file.sha256),
                });
            }
        };
        let key = (window.pipeline.clone(), file.extension.clone());
        if self.dataset_card && !self.carded.contains(&key) {
            crate::card::ensure(
                &self.destination,
                &window.to_string(),
                &window.pipeline,
                &self.layout.pipeline_glob(&window.pipeline, &file.extension),
            )
            .await?;
            self.carded.insert(key);
        }
        Ok(Landed {
            path: relative,
            location,
            created,
            commit: None,
        })
    }
}

impl<R, E> Sink<R> for FileSink<R, E>
where
    R: Send + Sync + 'static,
    E: FileEncoder<R, Error = EncodeError>,
{
    type Error = FileSinkError;

    /// Removes scratch files left by a crashed process.
    async fn open(&mut self) -> Result<(), FileSinkError> {
        self.files
            .remove_stale()
            .await
            .map(drop)
            .map_err(FileSinkError::from)
    }

    async fn ingest(
        &mut self,
        window: &WindowMeta,
        records: Vec<R>,
    ) -> Result<Receipt<FileSinkError>, IngestError<R, FileSinkError>> {
        self.files.ingest(&mut self.target, window, records).await
    }

    async fn ingest_chunks<C>(
        &mut self,
        window: &WindowMeta,
        chunks: C,
    ) -> ChunkedResult<FileSinkError, C::Error>
    where
        C: RecordChunks<R>,
        R: Send,
    {
        self.files
            .ingest_chunks(&mut self.target, window, chunks)
            .await
    }

    /// Reports the records in files written or found (`delivered_records`)
    /// and the records rejected on their own.
    fn observe(&self, stats: &mut StackStats) {
        let counts = self.files.counts();
        stats.delivered_records = counts.records_delivered;
        stats.rejected_records += counts.records_rejected;
    }

    /// Nothing is held: every `ingest` writes its file before returning.
    async fn flush(&mut self) -> Result<(), FileSinkError> {
        Ok(())
    }
}
