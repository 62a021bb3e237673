//! `FileSink`: the terminal sink that writes one file per batch to a local
//! directory or an object store.
//!
//! **Architecture invariant:** a batch becomes exactly one file at the path
//! [`layout`](crate::layout) gives it, or nothing. The file is encoded into
//! a scratch file chunk by chunk (memory is bounded by a chunk and a row
//! group, not by the window), fsynced, then published atomically: linked
//! into place locally, conditionally created remotely. A replay finds its
//! file already there and does nothing. Encoding and file IO run on tokio's
//! blocking pool, never on the executor's worker threads.
//!
//! With [`with_deliveries`](FileSink::with_deliveries), every file landed,
//! and every file a replay finds already there, is reported as a
//! [`Delivery`](meathook_core::Delivery) before `ingest` returns `Ok`; a
//! failed report fails the `ingest` (transiently), so the batch stays with
//! the layer above and is delivered and reported again.

use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;

use meathook_core::{
    Attempts, ChunkedError, ChunkedResult, Deliveries, Delivery as DeliveryRecord, EncodeSession,
    Encoder, IngestError, Receipt, RecordChunks, RecordRejected, Sink, StackStats, WindowMeta,
};
use object_store::path::Path as ObjectPath;

use crate::error::EncodeError;
use crate::layout::{self, BatchName};
use crate::lenient::{Records, Rejected, write_lenient};
use crate::local::{self, Published, ScratchFile, Sealed};
use crate::remote::{self, UploadError};
use crate::sink_builder::{Delivery, FileSinkBuilder};
use crate::sink_error::{FileSinkError, hex};
use crate::store::{Destination, DestinationError};

/// Writes each batch as one file at its layout path, atomically, or nothing;
/// a replay finds the file in place and does nothing.
pub struct FileSink<R, E> {
    destination: Destination,
    scratch: PathBuf,
    single_put_limit: u64,
    encoder: Arc<E>,
    last: Option<Delivery>,
    files_created: u64,
    files_found: u64,
    records_delivered: u64,
    records_rejected: u64,
    deliveries: Option<Deliveries>,
    attempts: Attempts,
    _records: PhantomData<fn(R)>,
}

impl<R, E: std::fmt::Debug> std::fmt::Debug for FileSink<R, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSink")
            .field("destination", &self.destination)
            .field("encoder", &self.encoder)
            .field("files_created", &self.files_created)
            .field("files_found", &self.files_found)
            .field("deliveries", &self.deliveries)
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
            destination,
            scratch,
            single_put_limit,
            encoder: Arc::new(encoder),
            last: None,
            files_created: 0,
            files_found: 0,
            records_delivered: 0,
            records_rejected: 0,
            deliveries: None,
            attempts: Attempts::default(),
            _records: PhantomData,
        }
    }

    /// Reports every file landed (or found on a replay) to `deliveries`
    /// before `ingest` returns `Ok`.
    pub fn with_deliveries(mut self, deliveries: Deliveries) -> Self {
        self.deliveries = Some(deliveries);
        self
    }

    /// The destination as delivery records name it: the local root, or the
    /// store URL with its prefix.
    fn destination_label(&self) -> String {
        match &self.destination {
            Destination::Local { root } => root.display().to_string(),
            Destination::Remote { .. } => self
                .destination
                .describe("")
                .trim_end_matches('/')
                .to_owned(),
        }
    }

    /// A sink writing to `url` with `encoder` and default settings.
    ///
    /// # Errors
    ///
    /// [`DestinationError`] when the URL is refused.
    pub fn new(url: impl Into<String>, encoder: E) -> Result<Self, DestinationError> {
        FileSinkBuilder::new(url).build(encoder)
    }

    /// The destination.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// The last file written or found.
    pub fn last_delivery(&self) -> Option<&Delivery> {
        self.last.as_ref()
    }

    /// Files this sink created, and files it found already there (replays).
    pub fn file_counts(&self) -> (u64, u64) {
        (self.files_created, self.files_found)
    }
}

impl<R, E> FileSink<R, E>
where
    R: Send + Sync + 'static,
    E: Encoder<R, Error = EncodeError> + 'static,
    E::Session<ScratchFile>: 'static,
{
    async fn blocking<T: Send + 'static>(
        window: &WindowMeta,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, FileSinkError> {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| FileSinkError::Task {
                window: window.to_string(),
                reason: e.to_string(),
            })
    }

    /// Opens a scratch file and an encoding session over it; returns the
    /// scratch file's path too, to remove it if the batch fails.
    async fn begin(
        &self,
        window: &WindowMeta,
    ) -> Result<(E::Session<ScratchFile>, PathBuf), FileSinkError> {
        // A name no file can carry fails at once, permanently, before any
        // encoding: retrying it could never land.
        meathook_core::name::check_pipeline_name(&window.pipeline).map_err(|source| {
            FileSinkError::Name {
                window: window.to_string(),
                source,
            }
        })?;
        let encoder = Arc::clone(&self.encoder);
        let dir = self.scratch.clone();
        let w = window.to_string();
        Self::blocking(window, move || {
            let file = ScratchFile::create(&dir).map_err(|source| FileSinkError::Local {
                action: "creating scratch file in",
                path: dir.clone(),
                source,
            })?;
            let path = file.path().to_path_buf();
            match encoder.begin(file) {
                Ok(session) => Ok((session, path)),
                Err(source) => {
                    let _ = std::fs::remove_file(&path);
                    Err(FileSinkError::Encode { window: w, source })
                }
            }
        })
        .await?
    }

    /// Writes one chunk on the blocking pool; hands the session and the
    /// chunk back.
    async fn write_chunk<T>(
        &self,
        window: &WindowMeta,
        mut session: E::Session<ScratchFile>,
        chunk: T,
        offset: usize,
        mut rejected: Rejected,
    ) -> Result<(E::Session<ScratchFile>, T, Rejected), (FileSinkError, Option<T>)>
    where
        T: AsRef<[R]> + Send + 'static,
    {
        let encoder = Arc::clone(&self.encoder);
        let w = window.to_string();
        let (session, chunk, rejected, result) = Self::blocking(window, move || {
            let r = write_lenient(
                &*encoder,
                &mut session,
                chunk.as_ref(),
                offset,
                &mut rejected,
            );
            (session, chunk, rejected, r)
        })
        .await
        .map_err(|e| (e, None))?;
        match result {
            Ok(()) => Ok((session, chunk, rejected)),
            Err(source) => Err((FileSinkError::Encode { window: w, source }, Some(chunk))),
        }
    }

    /// Seals and publishes a fully written session; removes the scratch
    /// file on failure.
    async fn complete(
        &mut self,
        window: &WindowMeta,
        session: E::Session<ScratchFile>,
        scratch: PathBuf,
        total: usize,
        rejected: Rejected,
    ) -> Result<Receipt<FileSinkError>, FileSinkError> {
        let sealed = match self.seal(window, session).await {
            Ok(sealed) => sealed,
            Err(e) => {
                self.discard(window, scratch).await;
                return Err(e);
            }
        };
        let accepted = total - rejected.len();
        self.records_rejected += rejected.len() as u64;
        if accepted == 0 {
            self.discard(window, scratch).await;
            return Ok(Receipt::partial(0, Self::rejections(window, rejected)));
        }
        if let Err(e) = self.publish(window, sealed, accepted as u64).await {
            self.discard(window, scratch).await;
            return Err(e);
        }
        Ok(Receipt::partial(
            accepted,
            Self::rejections(window, rejected),
        ))
    }

    async fn seal(
        &self,
        window: &WindowMeta,
        session: E::Session<ScratchFile>,
    ) -> Result<Sealed, FileSinkError> {
        let w = window.to_string();
        Self::blocking(window, move || {
            let file = session
                .finish()
                .map_err(|source| FileSinkError::Encode { window: w, source })?;
            let path = file.path().to_path_buf();
            file.seal().map_err(|source| FileSinkError::Local {
                action: "fsyncing",
                path,
                source,
            })
        })
        .await?
    }

    /// Publishes a sealed file under the batch's path.
    async fn publish(
        &mut self,
        window: &WindowMeta,
        sealed: Sealed,
        rows: u64,
    ) -> Result<(), FileSinkError> {
        let name = match window.batch {
            Some(id) => BatchName::Sequence(id),
            None => BatchName::Content(&sealed.sha256),
        };
        let relative = layout::object_path(window, name, self.encoder.extension());
        let location = self.destination.describe(&relative);
        let outcome = match &self.destination {
            Destination::Local { root } => {
                let target = root.join(&relative);
                let scratch = sealed.path.clone();
                let (sealed_back, outcome) = Self::blocking(window, move || {
                    let outcome = local::publish(&sealed, &target);
                    (sealed, outcome)
                })
                .await?;
                let outcome = outcome.map_err(|source| FileSinkError::Local {
                    action: "publishing",
                    path: scratch,
                    source,
                });
                (sealed_back, outcome)
            }
            Destination::Remote { store, prefix, .. } => {
                let path = ObjectPath::from_iter(
                    prefix
                        .parts()
                        .chain(ObjectPath::from(relative.as_str()).parts()),
                );
                let outcome = remote::upload(store, &path, &sealed, self.single_put_limit)
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
                    });
                let scratch = sealed.path.clone();
                let _ = Self::blocking(window, move || std::fs::remove_file(scratch)).await;
                (sealed, outcome)
            }
        };
        let (sealed, outcome) = outcome;
        let created = match outcome? {
            Published::Created => true,
            Published::AlreadyThere => false,
            Published::Conflict { existing } => {
                return Err(FileSinkError::Conflict {
                    path: location,
                    existing: hex(&existing),
                    ours: hex(&sealed.sha256),
                });
            }
        };
        if created {
            self.files_created += 1;
        } else {
            self.files_found += 1;
        }
        if let Some(deliveries) = &self.deliveries {
            let record = DeliveryRecord::new(
                window,
                self.destination_label(),
                relative.clone(),
                rows,
                sealed.len,
                sealed.sha256,
            )
            .with_attempts(self.attempts.current(window));
            deliveries
                .report(record)
                .await
                .map_err(|source| FileSinkError::Catalog {
                    path: location.clone(),
                    source,
                })?;
        }
        self.records_delivered += rows;
        tracing::debug!(path = %location, rows, bytes = sealed.len, created, "file delivered");
        self.last = Some(Delivery {
            location,
            path: relative,
            rows,
            bytes: sealed.len,
            sha256: sealed.sha256,
            created,
        });
        Ok(())
    }

    /// Removes a scratch file after a failure (or after publishing, if it
    /// is still there), on the blocking pool.
    async fn discard(&self, window: &WindowMeta, path: PathBuf) {
        let _ = Self::blocking(window, move || match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .await;
    }

    fn rejections(window: &WindowMeta, rejected: Rejected) -> Vec<RecordRejected<FileSinkError>> {
        rejected
            .into_iter()
            .map(|(index, source)| RecordRejected {
                index,
                error: FileSinkError::Record {
                    window: window.to_string(),
                    index,
                    source,
                },
            })
            .collect()
    }
}

impl<R, E> Sink<R> for FileSink<R, E>
where
    R: Send + Sync + 'static,
    E: Encoder<R, Error = EncodeError> + 'static,
    E::Session<ScratchFile>: 'static,
{
    type Error = FileSinkError;

    /// Removes scratch files left by a crashed process.
    async fn open(&mut self) -> Result<(), FileSinkError> {
        let dir = self.scratch.clone();
        let window = WindowMeta::instant("open", time::OffsetDateTime::UNIX_EPOCH);
        let removed = Self::blocking(&window, move || {
            local::remove_stale(&dir).map_err(|source| FileSinkError::Local {
                action: "cleaning scratch directory",
                path: dir,
                source,
            })
        })
        .await??;
        if removed > 0 {
            tracing::info!(removed, "removed scratch files left by an earlier process");
        }
        Ok(())
    }

    async fn ingest(
        &mut self,
        window: &WindowMeta,
        records: Vec<R>,
    ) -> Result<Receipt<FileSinkError>, IngestError<R, FileSinkError>> {
        let result = self.ingest_batch(window, records).await;
        self.attempts.note(window, result.is_ok());
        result
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
        let result = self.ingest_chunked(window, chunks).await;
        self.attempts.note(window, result.is_ok());
        result
    }

    /// Reports the records in files written or found (`delivered_records`)
    /// and the records rejected on their own.
    fn observe(&self, stats: &mut StackStats) {
        stats.delivered_records = self.records_delivered;
        stats.rejected_records += self.records_rejected;
    }

    /// Nothing is held: every `ingest` writes its file before returning.
    async fn flush(&mut self) -> Result<(), FileSinkError> {
        Ok(())
    }
}

impl<R, E> FileSink<R, E>
where
    R: Send + Sync + 'static,
    E: Encoder<R, Error = EncodeError> + 'static,
    E::Session<ScratchFile>: 'static,
{
    async fn ingest_batch(
        &mut self,
        window: &WindowMeta,
        records: Vec<R>,
    ) -> Result<Receipt<FileSinkError>, IngestError<R, FileSinkError>> {
        if records.is_empty() {
            return Ok(Receipt::all(0));
        }
        // The records travel to the blocking pool and back, so that a
        // refusal can hand them back.
        let (session, scratch) = match self.begin(window).await {
            Ok(begun) => begun,
            Err(e) => return Err(IngestError::new(records, e)),
        };
        let total = records.len();
        let written = self
            .write_chunk(window, session, Records(records), 0, Rejected::new())
            .await;
        let (session, Records(records), rejected) = match written {
            Ok(written) => written,
            Err((e, records)) => {
                self.discard(window, scratch).await;
                // A blocking task that stopped (a panic) cannot hand its
                // records back; every other failure does.
                let records = records.map(|Records(r)| r).unwrap_or_default();
                return Err(IngestError::new(records, e));
            }
        };
        match self
            .complete(window, session, scratch, total, rejected)
            .await
        {
            Ok(receipt) => Ok(receipt),
            Err(e) => Err(IngestError::new(records, e)),
        }
    }

    async fn ingest_chunked<C>(
        &mut self,
        window: &WindowMeta,
        mut chunks: C,
    ) -> ChunkedResult<FileSinkError, C::Error>
    where
        C: RecordChunks<R>,
        R: Send,
    {
        let (mut session, scratch) = self.begin(window).await.map_err(ChunkedError::Sink)?;
        let mut rejected = Rejected::new();
        let mut total = 0;
        let mut next = chunks.next_chunk().await;
        loop {
            let chunk = match next {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    drop(session);
                    self.discard(window, scratch).await;
                    return Err(ChunkedError::Source(e));
                }
            };
            let len = chunk.len();
            // The source reads the next chunk while this one is encoded.
            let (written, read) = tokio::join!(
                self.write_chunk(window, session, Records(chunk), total, rejected),
                chunks.next_chunk(),
            );
            next = read;
            match written {
                Ok((s, _, r)) => {
                    session = s;
                    rejected = r;
                }
                Err((e, _)) => {
                    self.discard(window, scratch).await;
                    return Err(ChunkedError::Sink(e));
                }
            }
            total += len;
        }
        self.complete(window, session, scratch, total, rejected)
            .await
            .map_err(ChunkedError::Sink)
    }
}
