//! The `Sink` contract: what a layer promises when it takes records.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use time::OffsetDateTime;

use crate::{StackStats, WindowMeta};

/// Whether retrying an operation that failed can succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Worth retrying: a timeout, a reset connection, a 5xx, a full disk.
    Transient,
    /// Retrying will fail the same way: bad credentials, a missing bucket,
    /// records the destination cannot represent. Layers that retry give up on
    /// such a batch after a bounded number of attempts and keep it aside.
    Permanent,
}

/// An error a [`Sink`] returns: a concrete error that says whether a retry
/// can help.
pub trait SinkError: std::error::Error + Send + Sync + 'static {
    /// Whether retrying can succeed.
    ///
    /// By default, this returns [`ErrorClass::Transient`].
    fn class(&self) -> ErrorClass {
        ErrorClass::Transient
    }

    /// How long the destination asked callers to wait before retrying (a
    /// `Retry-After` or rate-limit hint).
    ///
    /// By default, this returns `None`.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

impl SinkError for Infallible {}

/// A layer of a sink stack: takes batches of records filed under a window.
///
/// # Contract
///
/// - [`ingest`](Sink::ingest) returning `Ok` means the records were
///   **accepted by this layer** — durably, for a durable layer. It never means
///   "delivered downstream". The [`Receipt`] lists any record the layer
///   rejected on its own (one that cannot be serialised, say); every other
///   record of the batch was accepted.
/// - `Err` means **nothing was accepted**, and the [`IngestError`] hands every
///   record back to the caller, who still owns them.
/// - A failure of a layer further down is this layer's own business: it
///   keeps the records, retries, counts and reports the failure. It is never
///   returned from a later, unrelated `ingest`.
/// - A layer never moves a record into another window: it files a batch
///   under `window` or under [`window.widen(len)`](WindowMeta::widen) for its
///   own length `len`.
/// - Time advances through [`advance`](Sink::advance), which the pipeline
///   calls on every tick, records or not, so windows close on time.
pub trait Sink<R>: Send {
    /// Why this layer could not accept records or finish an operation.
    type Error: SinkError;

    /// Prepares the layer: recovery, locks, connections. The runtime calls it
    /// once, before the first `ingest`; layers call it on the layer below.
    ///
    /// By default, this does nothing.
    fn open(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async { Ok(()) }
    }

    /// Offers a batch of records collected in `window`.
    fn ingest(
        &mut self,
        window: &WindowMeta,
        records: Vec<R>,
    ) -> impl Future<Output = Result<Receipt<Self::Error>, IngestError<R, Self::Error>>> + Send;

    /// Tells the layer the time is `now` (UTC): windows that ended by then
    /// close, and retries that are due run. Called on every tick, so windows
    /// close even when no records arrive. An `Err` reports this layer's own
    /// failure, never a downstream one that the layer keeps retrying.
    ///
    /// By default, this does nothing.
    fn advance(
        &mut self,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = now;
        async { Ok(()) }
    }

    /// Offers one batch read chunk by chunk from a durable source (a spool
    /// segment), so that a window of millions of records is never in memory
    /// at once. The source keeps the records: on `Err` nothing was accepted,
    /// and the caller offers the same chunks again later. Rejected record
    /// indices in the [`Receipt`] count across all chunks.
    ///
    /// By default, this reads every chunk into one `Vec` and calls
    /// [`ingest`](Sink::ingest). Terminal sinks that encode files override it
    /// to encode chunk by chunk.
    fn ingest_chunks<C>(
        &mut self,
        window: &WindowMeta,
        mut chunks: C,
    ) -> impl Future<Output = ChunkedResult<Self::Error, C::Error>> + Send
    where
        C: RecordChunks<R>,
        R: Send,
    {
        async move {
            let mut all = Vec::new();
            while let Some(mut chunk) = chunks.next_chunk().await.map_err(ChunkedError::Source)? {
                all.append(&mut chunk);
            }
            self.ingest(window, all)
                .await
                .map_err(|e| ChunkedError::Sink(e.into_parts().1))
        }
    }

    /// Hands everything this layer holds to the layer below, whatever its
    /// policy says, then flushes that layer. `Ok` means everything held was
    /// accepted below; on `Err` the layer still holds what was not.
    fn flush(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Prepares the stack for the process to stop: with
    /// [`Drain::Everything`], as [`flush`](Sink::flush); with
    /// [`Drain::KeepActiveWindow`], memory tiers hand everything to the layer
    /// below and a durable layer keeps its open window on disk for the next
    /// start instead of delivering it now.
    ///
    /// By default, this calls [`flush`](Sink::flush) whatever the mode: a
    /// layer that holds nothing of its own has nothing to keep.
    fn drain(&mut self, mode: Drain) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = mode;
        self.flush()
    }

    /// Adds this layer's figures to `stats`, then asks the layer below to add
    /// its own; the runtime calls it after every tick for metrics and
    /// backpressure. See [`StackStats`] for how each figure combines.
    ///
    /// By default, this adds nothing: a layer that holds nothing and retries
    /// nothing has nothing to report.
    fn observe(&self, stats: &mut StackStats) {
        let _ = stats;
    }
}

/// How a stack is drained when the process stops; see [`Sink::drain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Drain {
    /// Deliver everything, including windows that have not closed yet.
    #[default]
    Everything,
    /// Make everything durable; leave the open window on disk for the next
    /// start, so it is delivered whole, once, when it closes.
    KeepActiveWindow,
}

/// A batch offered in chunks by a durable source; see
/// [`Sink::ingest_chunks`].
pub trait RecordChunks<R>: Send {
    /// Why the source could not produce the next chunk (a read or decode
    /// failure).
    type Error: std::error::Error + Send + Sync + 'static;

    /// The next chunk, or `None` after the last one.
    fn next_chunk(&mut self) -> impl Future<Output = Result<Option<Vec<R>>, Self::Error>> + Send;
}

/// What [`Sink::ingest_chunks`] returns.
pub type ChunkedResult<E, S> = Result<Receipt<E>, ChunkedError<E, S>>;

/// Why [`Sink::ingest_chunks`] did not accept a batch.
#[derive(Debug, thiserror::Error)]
pub enum ChunkedError<E, S> {
    /// The sink refused the batch.
    #[error(transparent)]
    Sink(E),
    /// The source failed to produce a chunk; the sink accepted nothing.
    #[error("reading the batch failed: {0}")]
    Source(S),
}

/// What a layer accepted of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt<E> {
    accepted: usize,
    rejected: Vec<RecordRejected<E>>,
}

/// One record of a batch that a layer rejected on its own, while the rest of
/// the batch was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRejected<E> {
    /// The record's index in the batch passed to `ingest`.
    pub index: usize,
    /// Why the layer could not take it.
    pub error: E,
}

impl<E> Receipt<E> {
    /// Every one of `count` records accepted.
    pub fn all(count: usize) -> Self {
        Self {
            accepted: count,
            rejected: Vec::new(),
        }
    }

    /// `accepted` records accepted and the `rejected` ones refused.
    pub fn partial(accepted: usize, rejected: Vec<RecordRejected<E>>) -> Self {
        Self { accepted, rejected }
    }

    /// How many records were accepted.
    pub fn accepted(&self) -> usize {
        self.accepted
    }

    /// The records rejected on their own, by index.
    pub fn rejected(&self) -> &[RecordRejected<E>] {
        &self.rejected
    }

    /// Takes the rejected records out of the receipt.
    pub fn into_rejected(self) -> Vec<RecordRejected<E>> {
        self.rejected
    }

    /// Whether the record at `index` was accepted.
    pub fn is_accepted(&self, index: usize) -> bool {
        !self.rejected.iter().any(|r| r.index == index)
    }

    /// Converts the rejection errors.
    pub fn map_err<F>(self, mut f: impl FnMut(E) -> F) -> Receipt<F> {
        Receipt {
            accepted: self.accepted,
            rejected: self
                .rejected
                .into_iter()
                .map(|r| RecordRejected {
                    index: r.index,
                    error: f(r.error),
                })
                .collect(),
        }
    }
}

/// A batch that a layer did not accept, handed back with the reason.
///
/// `Debug` and `Display` show the count of records, not their contents.
#[must_use]
pub struct IngestError<R, E> {
    records: Vec<R>,
    error: E,
}

impl<R, E> IngestError<R, E> {
    /// A refusal of `records` because of `error`.
    pub fn new(records: Vec<R>, error: E) -> Self {
        Self { records, error }
    }

    /// Why the batch was refused.
    pub fn error(&self) -> &E {
        &self.error
    }

    /// The records that were not accepted.
    pub fn records(&self) -> &[R] {
        &self.records
    }

    /// Takes back the records that were not accepted.
    pub fn into_records(self) -> Vec<R> {
        self.records
    }

    /// Splits into the records and the error.
    pub fn into_parts(self) -> (Vec<R>, E) {
        (self.records, self.error)
    }

    /// Converts the error, keeping the records.
    pub fn map_err<F>(self, f: impl FnOnce(E) -> F) -> IngestError<R, F> {
        IngestError {
            records: self.records,
            error: f(self.error),
        }
    }
}

impl<R, E: fmt::Debug> fmt::Debug for IngestError<R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IngestError")
            .field("records", &self.records.len())
            .field("error", &self.error)
            .finish()
    }
}

impl<R, E: fmt::Display> fmt::Display for IngestError<R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} records not accepted: {}",
            self.records.len(),
            self.error
        )
    }
}

impl<R, E: std::error::Error + 'static> std::error::Error for IngestError<R, E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("disk full")]
    struct DiskFull;

    #[test]
    fn ingest_error_hands_records_back_and_hides_them_in_debug() {
        let err = IngestError::new(vec!["secret-ish", "b"], DiskFull);
        assert_eq!(err.to_string(), "2 records not accepted: disk full");
        let dbg = format!("{err:?}");
        assert!(!dbg.contains("secret-ish"), "{dbg}");
        assert!(std::error::Error::source(&err).is_some());
        assert_eq!(err.into_records(), vec!["secret-ish", "b"]);
    }

    struct Chunks(Vec<Vec<u8>>);

    impl RecordChunks<u8> for Chunks {
        type Error = Infallible;

        async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, Infallible> {
            Ok((!self.0.is_empty()).then(|| self.0.remove(0)))
        }
    }

    struct Keep(Vec<(WindowMeta, Vec<u8>)>);

    impl Sink<u8> for Keep {
        type Error = Infallible;

        async fn ingest(
            &mut self,
            window: &WindowMeta,
            records: Vec<u8>,
        ) -> Result<Receipt<Infallible>, IngestError<u8, Infallible>> {
            let n = records.len();
            self.0.push((window.clone(), records));
            Ok(Receipt::all(n))
        }

        async fn flush(&mut self) -> Result<(), Infallible> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn chunks_are_joined_into_one_ingest_by_default() {
        let window = WindowMeta::instant("p", OffsetDateTime::UNIX_EPOCH);
        let mut sink = Keep(Vec::new());
        let receipt = sink
            .ingest_chunks(&window, Chunks(vec![vec![1, 2], vec![], vec![3]]))
            .await
            .unwrap();
        assert_eq!(receipt.accepted(), 3);
        assert_eq!(sink.0, vec![(window, vec![1, 2, 3])]);
    }

    #[test]
    fn receipt_reports_rejected_indices() {
        let r = Receipt::partial(
            2,
            vec![RecordRejected {
                index: 1,
                error: "not serialisable",
            }],
        );
        assert!(r.is_accepted(0));
        assert!(!r.is_accepted(1));
        assert_eq!(r.accepted(), 2);
        let mapped = r.map_err(str::len);
        assert_eq!(mapped.rejected()[0].error, 16);
    }
}
