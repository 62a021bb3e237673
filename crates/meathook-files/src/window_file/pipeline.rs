//! `WindowFile`: one window, one file. Encode the records chunk by chunk
//! into a scratch file (reading the next chunk while this one is encoded),
//! leave out the records that cannot be encoded alone, seal and hash the
//! file, hand it to the sink's [`Publish`], report the delivery, and count.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use meathook_core::{
    Attempts, ChunkedError, ChunkedResult, Deliveries, Delivery, IngestError, Receipt,
    RecordChunks, RecordRejected, WindowMeta,
};

use super::encode::{self, Failure, Finished, Job, Records};
use super::error::WindowFileError;
use super::lenient::FileEncoder;
use super::publish::{Landed, Publish, SealedFile};
use crate::layout::{self, BatchName};
use crate::local;

/// What a window-file sink has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileCounts {
    /// Files this sink created.
    pub files_created: u64,
    /// Files a replay found already there.
    pub files_found: u64,
    /// Records in files created or found.
    pub records_delivered: u64,
    /// Records left out because they could not be encoded on their own.
    pub records_rejected: u64,
    /// Files that could not be published, or whose delivery could not be
    /// recorded.
    pub failures: u64,
}

/// The pipeline every file-producing terminal sink shares: a window's
/// records in, one published file (or nothing) out.
///
/// **Invariant:** memory is bounded by a chunk and the encoder's own
/// buffer, never by the window; encoding and file IO run on tokio's
/// blocking pool; on `Err` nothing was accepted, the scratch file is
/// removed and the records are handed back (or stay with the chunk
/// source); a delivery is reported before `Ok` is returned.
pub struct WindowFile<R, E> {
    encoder: Arc<E>,
    scratch: PathBuf,
    head: usize,
    layout: layout::Layout,
    deliveries: Option<Deliveries>,
    attempts: Attempts,
    counts: FileCounts,
    last: Option<Delivery>,
    _records: PhantomData<fn(R)>,
}

impl<R, E: std::fmt::Debug> std::fmt::Debug for WindowFile<R, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowFile")
            .field("encoder", &self.encoder)
            .field("scratch", &self.scratch)
            .field("counts", &self.counts)
            .field("deliveries", &self.deliveries)
            .finish_non_exhaustive()
    }
}

impl<R, E> WindowFile<R, E> {
    /// A pipeline encoding with `encoder` into scratch files in `scratch`.
    pub fn new(encoder: Arc<E>, scratch: impl Into<PathBuf>) -> Self {
        Self {
            encoder,
            scratch: scratch.into(),
            head: 0,
            layout: layout::Layout::default(),
            deliveries: None,
            attempts: Attempts::default(),
            counts: FileCounts::default(),
            last: None,
            _records: PhantomData,
        }
    }

    /// Reads the first `bytes` of each sealed file into
    /// [`SealedFile::head`] (default none).
    #[must_use]
    pub fn with_head_bytes(mut self, bytes: usize) -> Self {
        self.head = bytes;
        self
    }

    /// Names files by `layout` (default [`Layout::Folders`](layout::Layout::Folders)).
    #[must_use]
    pub fn with_layout(mut self, layout: layout::Layout) -> Self {
        self.layout = layout;
        self
    }

    /// The layout files are named by.
    pub fn layout(&self) -> layout::Layout {
        self.layout
    }

    /// Reports every file landed (or found on a replay) to `deliveries`
    /// before `ingest` returns `Ok`; a failed report fails the `ingest`.
    #[must_use]
    pub fn with_deliveries(mut self, deliveries: Deliveries) -> Self {
        self.deliveries = Some(deliveries);
        self
    }

    /// The encoder.
    pub fn encoder(&self) -> &Arc<E> {
        &self.encoder
    }

    /// Where files are encoded before they are published.
    pub fn scratch_dir(&self) -> &Path {
        &self.scratch
    }

    /// What this pipeline has done.
    pub fn counts(&self) -> FileCounts {
        self.counts
    }

    /// The last file published or found.
    pub fn last_delivery(&self) -> Option<&Delivery> {
        self.last.as_ref()
    }

    /// Removes scratch files left by processes that no longer run, on the
    /// blocking pool; returns how many.
    ///
    /// # Errors
    ///
    /// [`WindowFileError::Local`] when the directory cannot be read or a
    /// file removed.
    pub async fn remove_stale<X>(&self) -> Result<usize, WindowFileError<X>> {
        let dir = self.scratch.clone();
        let removed = encode::blocking("the scratch directory", move || local::remove_stale(&dir))
            .await?
            .map_err(|source| WindowFileError::Local {
                action: "cleaning scratch directory",
                path: self.scratch.clone(),
                source,
            })?;
        if removed > 0 {
            tracing::info!(removed, "removed scratch files left by an earlier process");
        }
        Ok(removed)
    }
}

impl<R, E> WindowFile<R, E>
where
    R: Send + Sync + 'static,
    E: FileEncoder<R>,
{
    /// Encodes `records` as one file and publishes it; the attempt is
    /// counted for the delivery record.
    ///
    /// # Errors
    ///
    /// The publisher's error, with every record handed back.
    pub async fn ingest<P>(
        &mut self,
        publisher: &mut P,
        window: &WindowMeta,
        records: Vec<R>,
    ) -> Result<Receipt<P::Error>, IngestError<R, P::Error>>
    where
        P: Publish<E::Error>,
    {
        let result = self.ingest_batch(publisher, window, records).await;
        self.noted(window, result)
    }

    /// Encodes the chunks of `chunks` as one file, reading the next chunk
    /// while the current one is encoded, and publishes it; the attempt is
    /// counted for the delivery record.
    ///
    /// # Errors
    ///
    /// The publisher's error, or the source's when it failed to read a
    /// chunk; nothing was accepted either way.
    pub async fn ingest_chunks<P, C>(
        &mut self,
        publisher: &mut P,
        window: &WindowMeta,
        chunks: C,
    ) -> ChunkedResult<P::Error, C::Error>
    where
        P: Publish<E::Error>,
        C: RecordChunks<R>,
    {
        let result = self.ingest_chunked(publisher, window, chunks).await;
        self.noted(window, result)
    }

    /// Counts how the attempt at `window` ended, for the next delivery
    /// record's attempt number.
    fn noted<T, X>(&mut self, window: &WindowMeta, result: Result<T, X>) -> Result<T, X> {
        self.attempts.note(window, result.is_ok());
        result
    }

    async fn ingest_batch<P>(
        &mut self,
        publisher: &mut P,
        window: &WindowMeta,
        records: Vec<R>,
    ) -> Result<Receipt<P::Error>, IngestError<R, P::Error>>
    where
        P: Publish<E::Error>,
    {
        if records.is_empty() {
            return Ok(Receipt::all(0));
        }
        if let Err(e) = publisher.admit(window) {
            return Err(IngestError::new(records, e));
        }
        let w = window.to_string();
        let job = match encode::begin(&self.encoder, &self.scratch, &w).await {
            Ok(job) => job,
            Err(e) => return Err(IngestError::new(records, publisher.error(e))),
        };
        let scratch = job.path.clone();
        // The records travel to the blocking pool and back, so that a
        // refusal can hand them back.
        let (job, Records(records)) =
            match encode::write(&self.encoder, job, Records(records), &w).await {
                Ok(written) => written,
                Err((e, records)) => {
                    encode::discard(scratch).await;
                    // A blocking task that stopped (a panic) cannot hand its
                    // records back; every other failure does.
                    let records = records.map(|Records(r)| r).unwrap_or_default();
                    return Err(IngestError::new(records, publisher.error(e)));
                }
            };
        match self.complete(publisher, window, job).await {
            Ok(receipt) => Ok(receipt),
            Err(e) => Err(IngestError::new(records, e)),
        }
    }

    async fn ingest_chunked<P, C>(
        &mut self,
        publisher: &mut P,
        window: &WindowMeta,
        mut chunks: C,
    ) -> ChunkedResult<P::Error, C::Error>
    where
        P: Publish<E::Error>,
        C: RecordChunks<R>,
    {
        publisher.admit(window).map_err(ChunkedError::Sink)?;
        let w = window.to_string();
        let mut job = encode::begin(&self.encoder, &self.scratch, &w)
            .await
            .map_err(|e| ChunkedError::Sink(publisher.error(e)))?;
        let scratch = job.path.clone();
        let mut next = chunks.next_chunk().await;
        loop {
            let chunk = match next {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    drop(job);
                    encode::discard(scratch).await;
                    return Err(ChunkedError::Source(e));
                }
            };
            // The source reads the next chunk while this one is encoded.
            let (written, read) = tokio::join!(
                encode::write(&self.encoder, job, Records(chunk), &w),
                chunks.next_chunk(),
            );
            next = read;
            job = match written {
                Ok((job, _)) => job,
                Err((e, _)) => {
                    encode::discard(scratch).await;
                    return Err(ChunkedError::Sink(publisher.error(e)));
                }
            };
        }
        self.complete(publisher, window, job)
            .await
            .map_err(ChunkedError::Sink)
    }

    /// Seals a fully written file and publishes it; removes the scratch
    /// file whatever happens.
    async fn complete<P>(
        &mut self,
        publisher: &mut P,
        window: &WindowMeta,
        job: Job<R, E>,
    ) -> Result<Receipt<P::Error>, P::Error>
    where
        P: Publish<E::Error>,
    {
        let scratch = job.path.clone();
        if job.total == 0 {
            drop(job);
            encode::discard(scratch).await;
            return Ok(Receipt::all(0));
        }
        let w = window.to_string();
        let finished: Result<Finished<R, E>, Failure<R, E>> =
            encode::finish(job, self.head, &w).await;
        let finished = match finished {
            Ok(finished) => finished,
            Err(e) => {
                encode::discard(scratch).await;
                return Err(publisher.error(e));
            }
        };
        let accepted = finished.total - finished.rejected.len();
        let rejected: Vec<RecordRejected<P::Error>> = finished
            .rejected
            .into_iter()
            .map(|(index, source)| RecordRejected {
                index,
                error: publisher.error(WindowFileError::Record {
                    window: w.clone(),
                    index,
                    source,
                }),
            })
            .collect();
        if accepted == 0 {
            encode::discard(scratch).await;
            self.counts.records_rejected += rejected.len() as u64;
            return Ok(Receipt::partial(0, rejected));
        }
        let extension = self.encoder.extension().to_owned();
        let name = match window.batch {
            Some(id) => BatchName::Sequence(id),
            None => BatchName::Content(&finished.sealed.sha256),
        };
        let file = SealedFile {
            path: self.layout.object_path(window, name, &extension),
            extension,
            scratch: finished.sealed.path.clone(),
            sha256: finished.sealed.sha256,
            len: finished.sealed.len,
            rows: accepted as u64,
            head: finished.head,
        };
        let delivered = self.deliver(publisher, window, &file).await;
        encode::discard(scratch).await;
        if let Err(e) = delivered {
            self.counts.failures += 1;
            return Err(e);
        }
        self.counts.records_delivered += file.rows;
        self.counts.records_rejected += rejected.len() as u64;
        Ok(Receipt::partial(accepted, rejected))
    }

    /// Publishes `file` and reports its delivery.
    async fn deliver<P>(
        &mut self,
        publisher: &mut P,
        window: &WindowMeta,
        file: &SealedFile,
    ) -> Result<(), P::Error>
    where
        P: Publish<E::Error>,
    {
        let Landed {
            path,
            location,
            created,
            commit,
        } = publisher.publish(window, file).await?;
        if created {
            self.counts.files_created += 1;
        } else {
            self.counts.files_found += 1;
        }
        let mut delivery = Delivery::new(
            window,
            publisher.destination(),
            path,
            file.rows,
            file.len,
            file.sha256,
        )
        .with_attempts(self.attempts.current(window))
        .with_created(created);
        if let Some(commit) = commit {
            delivery = delivery.with_commit(commit);
        }
        if let Some(deliveries) = &self.deliveries {
            deliveries
                .report(delivery.clone())
                .await
                .map_err(|source| {
                    publisher.error(WindowFileError::Catalog {
                        path: location.clone(),
                        source,
                    })
                })?;
        }
        // Once per window file: the line an operator reads to see data land.
        let latency = time::OffsetDateTime::now_utc() - window.end;
        if created {
            tracing::info!(
                path = %location,
                rows = file.rows,
                bytes = file.len,
                latency_s = latency.as_seconds_f64().max(0.0).round(),
                "window delivered"
            );
        } else {
            tracing::info!(path = %location, rows = file.rows, "window already delivered; nothing written");
        }
        self.last = Some(delivery);
        Ok(())
    }
}
