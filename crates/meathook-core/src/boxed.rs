//! `BoxSink`: a sink stack whose type is chosen at run time.
//!
//! [`Sink`] uses `impl Future` in its methods and an associated error type,
//! so `dyn Sink<R>` does not exist. [`BoxSink`] erases a stack behind boxed
//! futures and one error type, [`BoxSinkError`], which keeps the original
//! error (its message, its source chain, a downcast back to its type) and its
//! [`ErrorClass`] and retry hint. A binary can then pick `FileSink` or
//! `HfSink` from its configuration and hand either to the same code.
//!
//! `ingest_chunks` stays streaming: the erased stack pulls chunks from the
//! caller's source one at a time, exactly as the concrete stack would.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use time::OffsetDateTime;

use crate::{
    ChunkedError, ChunkedResult, Drain, ErrorClass, IngestError, Receipt, RecordChunks, Sink,
    SinkError, StackStats, WindowMeta,
};

/// A future boxed for a type-erased sink.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The error of a [`BoxSink`]: the erased stack's own error, with its class
/// and retry hint.
///
/// `Display` and [`source`](Error::source) are those of the original error,
/// and [`downcast_ref`](Self::downcast_ref) gives it back by type.
pub struct BoxSinkError {
    class: ErrorClass,
    retry_after: Option<Duration>,
    error: Box<dyn Error + Send + Sync + 'static>,
}

impl BoxSinkError {
    /// Erases `error`, keeping its [`class`](SinkError::class) and
    /// [`retry_after`](SinkError::retry_after). A `BoxSinkError` is not
    /// boxed again.
    pub fn new<E: SinkError>(error: E) -> Self {
        let class = error.class();
        let retry_after = error.retry_after();
        let boxed: Box<dyn Error + Send + Sync> = Box::new(error);
        match boxed.downcast::<Self>() {
            Ok(already) => *already,
            Err(error) => Self {
                class,
                retry_after,
                error,
            },
        }
    }

    /// An error of class `class` from any error, for sinks whose failures do
    /// not implement [`SinkError`] themselves.
    pub fn with_class(error: impl Into<Box<dyn Error + Send + Sync>>, class: ErrorClass) -> Self {
        Self {
            class,
            retry_after: None,
            error: error.into(),
        }
    }

    /// The original error.
    pub fn get_ref(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.error
    }

    /// The original error, if it is an `E`.
    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        self.error.downcast_ref()
    }

    /// Takes the original error out.
    pub fn into_inner(self) -> Box<dyn Error + Send + Sync + 'static> {
        self.error
    }
}

impl fmt::Debug for BoxSinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxSinkError")
            .field("class", &self.class)
            .field("retry_after", &self.retry_after)
            .field("error", &self.error)
            .finish()
    }
}

impl fmt::Display for BoxSinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl Error for BoxSinkError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.error.source()
    }
}

impl SinkError for BoxSinkError {
    fn class(&self) -> ErrorClass {
        self.class
    }

    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

/// A [`Sink`] stack behind a box: any `S: Sink<R>`, with its futures boxed
/// and its errors erased to [`BoxSinkError`].
///
/// Every method forwards to the stack, `ingest_chunks` included: chunks are
/// pulled from the caller's source one at a time, never collected first.
/// Rejections in a [`Receipt`] and the records an [`IngestError`] hands back
/// are the stack's own.
///
/// Each call allocates one boxed future; a stack that is known at compile
/// time needs no `BoxSink`.
///
/// # Examples
///
/// A terminal sink chosen from configuration, with a memory tier in front:
///
/// ```
/// use std::convert::Infallible;
/// use meathook_core::{BoxSink, Buffered, FlushPolicy, IngestError, Receipt, Sink, WindowMeta};
///
/// /// Counts what reaches it.
/// struct Count(usize);
///
/// impl Sink<u32> for Count {
///     type Error = Infallible;
///     async fn ingest(&mut self, _: &WindowMeta, r: Vec<u32>) -> Result<Receipt<Infallible>, IngestError<u32, Infallible>> {
///         self.0 += r.len();
///         Ok(Receipt::all(r.len()))
///     }
///     async fn flush(&mut self) -> Result<(), Infallible> {
///         Ok(())
///     }
/// }
///
/// fn terminal(config: &str) -> Option<BoxSink<u32>> {
///     match config {
///         "count" => Some(BoxSink::new(Count(0))),
///         // Any other stack, of another type: here, a tier over a counter.
///         "buffered" => Some(BoxSink::new(Buffered::new(Count(0), FlushPolicy::hourly()))),
///         _ => None,
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let mut stack = Buffered::new(terminal("buffered").unwrap(), FlushPolicy::hourly());
/// let window = WindowMeta::instant("p", time::OffsetDateTime::UNIX_EPOCH);
/// assert_eq!(stack.ingest(&window, vec![1, 2, 3]).await.unwrap().accepted(), 3);
/// stack.flush().await.unwrap();
/// # });
/// ```
pub struct BoxSink<R> {
    inner: Box<dyn DynSink<R>>,
}

impl<R: Send + 'static> BoxSink<R> {
    /// Erases `sink`.
    pub fn new<S: Sink<R> + 'static>(sink: S) -> Self {
        Self {
            inner: Box::new(Erased(sink)),
        }
    }
}

impl<R> fmt::Debug for BoxSink<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxSink")
            .field("sink", &self.inner.type_name())
            .finish()
    }
}

/// A `RecordChunks` source the erased stack reads through. Only this module
/// builds one, so a [`SourceFailed`] always comes from the caller's source.
trait DynChunks<R>: Send {
    fn next_chunk(&mut self) -> BoxFuture<'_, Result<Option<Vec<R>>, SourceFailed>>;
}

/// The caller's source failed; its error waits in the [`TypedChunks`] slot.
#[derive(Debug)]
struct SourceFailed;

impl fmt::Display for SourceFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the batch source failed")
    }
}

impl Error for SourceFailed {}

/// The caller's source, keeping its error with its type.
struct TypedChunks<C: RecordChunks<R>, R> {
    chunks: C,
    failed: Option<C::Error>,
    _records: std::marker::PhantomData<fn() -> R>,
}

impl<C: RecordChunks<R>, R: Send> DynChunks<R> for TypedChunks<C, R> {
    fn next_chunk(&mut self) -> BoxFuture<'_, Result<Option<Vec<R>>, SourceFailed>> {
        Box::pin(async move {
            match self.chunks.next_chunk().await {
                Ok(chunk) => Ok(chunk),
                Err(e) => {
                    self.failed = Some(e);
                    Err(SourceFailed)
                }
            }
        })
    }
}

/// The erased source as the stack sees it.
struct ErasedChunks<'a, R>(&'a mut (dyn DynChunks<R> + 'a));

impl<R> RecordChunks<R> for ErasedChunks<'_, R> {
    type Error = SourceFailed;

    fn next_chunk(&mut self) -> impl Future<Output = Result<Option<Vec<R>>, SourceFailed>> + Send {
        self.0.next_chunk()
    }
}

/// `Sink` with boxed futures and erased errors.
trait DynSink<R>: Send {
    fn type_name(&self) -> &'static str;
    fn open(&mut self) -> BoxFuture<'_, Result<(), BoxSinkError>>;
    fn ingest<'a>(
        &'a mut self,
        window: &'a WindowMeta,
        records: Vec<R>,
    ) -> BoxFuture<'a, Result<Receipt<BoxSinkError>, IngestError<R, BoxSinkError>>>;
    fn advance(&mut self, now: OffsetDateTime) -> BoxFuture<'_, Result<(), BoxSinkError>>;
    fn ingest_chunks<'a>(
        &'a mut self,
        window: &'a WindowMeta,
        chunks: &'a mut (dyn DynChunks<R> + 'a),
    ) -> BoxFuture<'a, ChunkedResult<BoxSinkError, SourceFailed>>;
    fn flush(&mut self) -> BoxFuture<'_, Result<(), BoxSinkError>>;
    fn drain(&mut self, mode: Drain) -> BoxFuture<'_, Result<(), BoxSinkError>>;
    fn observe(&self, stats: &mut StackStats);
}

/// A stack as a [`DynSink`].
struct Erased<S>(S);

impl<S: Sink<R>, R: Send + 'static> DynSink<R> for Erased<S> {
    fn type_name(&self) -> &'static str {
        std::any::type_name::<S>()
    }

    fn open(&mut self) -> BoxFuture<'_, Result<(), BoxSinkError>> {
        Box::pin(async move { Sink::open(&mut self.0).await.map_err(BoxSinkError::new) })
    }

    fn ingest<'a>(
        &'a mut self,
        window: &'a WindowMeta,
        records: Vec<R>,
    ) -> BoxFuture<'a, Result<Receipt<BoxSinkError>, IngestError<R, BoxSinkError>>> {
        Box::pin(async move {
            match Sink::ingest(&mut self.0, window, records).await {
                Ok(receipt) => Ok(receipt.map_err(BoxSinkError::new)),
                Err(e) => Err(e.map_err(BoxSinkError::new)),
            }
        })
    }

    fn advance(&mut self, now: OffsetDateTime) -> BoxFuture<'_, Result<(), BoxSinkError>> {
        Box::pin(async move {
            Sink::advance(&mut self.0, now)
                .await
                .map_err(BoxSinkError::new)
        })
    }

    fn ingest_chunks<'a>(
        &'a mut self,
        window: &'a WindowMeta,
        chunks: &'a mut (dyn DynChunks<R> + 'a),
    ) -> BoxFuture<'a, ChunkedResult<BoxSinkError, SourceFailed>> {
        Box::pin(async move {
            match Sink::ingest_chunks(&mut self.0, window, ErasedChunks(chunks)).await {
                Ok(receipt) => Ok(receipt.map_err(BoxSinkError::new)),
                Err(ChunkedError::Sink(e)) => Err(ChunkedError::Sink(BoxSinkError::new(e))),
                Err(ChunkedError::Source(e)) => Err(ChunkedError::Source(e)),
            }
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), BoxSinkError>> {
        Box::pin(async move { Sink::flush(&mut self.0).await.map_err(BoxSinkError::new) })
    }

    fn drain(&mut self, mode: Drain) -> BoxFuture<'_, Result<(), BoxSinkError>> {
        Box::pin(async move {
            Sink::drain(&mut self.0, mode)
                .await
                .map_err(BoxSinkError::new)
        })
    }

    fn observe(&self, stats: &mut StackStats) {
        Sink::observe(&self.0, stats);
    }
}

impl<R: Send + 'static> Sink<R> for BoxSink<R> {
    type Error = BoxSinkError;

    fn open(&mut self) -> impl Future<Output = Result<(), BoxSinkError>> + Send {
        self.inner.open()
    }

    fn ingest(
        &mut self,
        window: &WindowMeta,
        records: Vec<R>,
    ) -> impl Future<Output = Result<Receipt<BoxSinkError>, IngestError<R, BoxSinkError>>> + Send
    {
        async move { self.inner.ingest(window, records).await }
    }

    fn advance(
        &mut self,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), BoxSinkError>> + Send {
        self.inner.advance(now)
    }

    fn ingest_chunks<C>(
        &mut self,
        window: &WindowMeta,
        chunks: C,
    ) -> impl Future<Output = ChunkedResult<BoxSinkError, C::Error>> + Send
    where
        C: RecordChunks<R>,
        R: Send,
    {
        async move {
            let mut typed = TypedChunks {
                chunks,
                failed: None,
                _records: std::marker::PhantomData,
            };
            let result = self.inner.ingest_chunks(window, &mut typed).await;
            match result {
                Ok(receipt) => Ok(receipt),
                Err(ChunkedError::Sink(e)) => Err(ChunkedError::Sink(e)),
                Err(ChunkedError::Source(SourceFailed)) => match typed.failed.take() {
                    Some(e) => Err(ChunkedError::Source(e)),
                    // Only `TypedChunks` makes a `SourceFailed`, and it keeps
                    // the error first: the stack reported a source failure
                    // the source never had.
                    None => Err(ChunkedError::Sink(BoxSinkError::with_class(
                        "the sink reported a failure of a batch source that did not fail",
                        ErrorClass::Transient,
                    ))),
                },
            }
        }
    }

    fn flush(&mut self) -> impl Future<Output = Result<(), BoxSinkError>> + Send {
        self.inner.flush()
    }

    fn drain(&mut self, mode: Drain) -> impl Future<Output = Result<(), BoxSinkError>> + Send {
        self.inner.drain(mode)
    }

    fn observe(&self, stats: &mut StackStats) {
        self.inner.observe(stats);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::RecordRejected;

    /// Refuses with a class and a retry hint, with an io error as its source.
    #[derive(Debug, thiserror::Error)]
    #[error("refused: {what}")]
    struct Refused {
        what: &'static str,
        permanent: bool,
        #[source]
        source: std::io::Error,
    }

    impl SinkError for Refused {
        fn class(&self) -> ErrorClass {
            if self.permanent {
                ErrorClass::Permanent
            } else {
                ErrorClass::Transient
            }
        }

        fn retry_after(&self) -> Option<Duration> {
            Some(Duration::from_secs(7))
        }
    }

    fn refused(permanent: bool) -> Refused {
        Refused {
            what: "bucket",
            permanent,
            source: std::io::Error::other("no such bucket"),
        }
    }

    #[derive(Default)]
    struct Calls {
        log: Vec<String>,
        /// For each chunk `ingest_chunks` received: its records and how many
        /// chunks the source had produced by then.
        chunks: Vec<(Vec<u32>, usize)>,
    }

    /// Rejects odd records, refuses every batch while `refuse` is set, and
    /// logs what it is asked to do.
    struct Probe {
        calls: Arc<Mutex<Calls>>,
        refuse: Option<bool>,
        pulled: Arc<AtomicUsize>,
    }

    impl Probe {
        fn log(&self, what: impl Into<String>) {
            self.calls.lock().unwrap().log.push(what.into());
        }
    }

    fn odd_rejected(records: &[u32], offset: usize) -> Vec<RecordRejected<Refused>> {
        records
            .iter()
            .enumerate()
            .filter(|(_, r)| *r % 2 == 1)
            .map(|(i, _)| RecordRejected {
                index: offset + i,
                error: refused(true),
            })
            .collect()
    }

    impl Sink<u32> for Probe {
        type Error = Refused;

        async fn open(&mut self) -> Result<(), Refused> {
            self.log("open");
            Ok(())
        }

        async fn ingest(
            &mut self,
            _window: &WindowMeta,
            records: Vec<u32>,
        ) -> Result<Receipt<Refused>, IngestError<u32, Refused>> {
            if let Some(permanent) = self.refuse {
                return Err(IngestError::new(records, refused(permanent)));
            }
            let rejected = odd_rejected(&records, 0);
            Ok(Receipt::partial(records.len() - rejected.len(), rejected))
        }

        async fn ingest_chunks<C>(
            &mut self,
            _window: &WindowMeta,
            mut chunks: C,
        ) -> ChunkedResult<Refused, C::Error>
        where
            C: RecordChunks<u32>,
        {
            let (mut seen, mut rejected) = (0, Vec::new());
            while let Some(chunk) = chunks.next_chunk().await.map_err(ChunkedError::Source)? {
                rejected.extend(odd_rejected(&chunk, seen));
                seen += chunk.len();
                let pulled = self.pulled.load(Ordering::SeqCst);
                self.calls.lock().unwrap().chunks.push((chunk, pulled));
            }
            if let Some(permanent) = self.refuse {
                return Err(ChunkedError::Sink(refused(permanent)));
            }
            Ok(Receipt::partial(seen - rejected.len(), rejected))
        }

        async fn advance(&mut self, now: OffsetDateTime) -> Result<(), Refused> {
            self.log(format!("advance {}", now.unix_timestamp()));
            Ok(())
        }

        async fn flush(&mut self) -> Result<(), Refused> {
            self.log("flush");
            Err(refused(false))
        }

        async fn drain(&mut self, mode: Drain) -> Result<(), Refused> {
            self.log(format!("drain {mode:?}"));
            Ok(())
        }

        fn observe(&self, stats: &mut StackStats) {
            stats.held_records += 3;
            stats.delivered_records = 5;
        }
    }

    fn probe(refuse: Option<bool>) -> (BoxSink<u32>, Arc<Mutex<Calls>>, Arc<AtomicUsize>) {
        let calls = Arc::new(Mutex::new(Calls::default()));
        let pulled = Arc::new(AtomicUsize::new(0));
        let sink = BoxSink::new(Probe {
            calls: Arc::clone(&calls),
            refuse,
            pulled: Arc::clone(&pulled),
        });
        (sink, calls, pulled)
    }

    fn window() -> WindowMeta {
        WindowMeta::instant("p", OffsetDateTime::UNIX_EPOCH)
    }

    /// Yields `chunks`, counting each one it produces; fails after them if
    /// `fail` is set.
    struct Counted {
        chunks: Vec<Vec<u32>>,
        pulled: Arc<AtomicUsize>,
        fail: bool,
    }

    #[derive(Debug, thiserror::Error, PartialEq)]
    #[error("segment {0} unreadable")]
    struct Unreadable(u32);

    impl RecordChunks<u32> for Counted {
        type Error = Unreadable;

        async fn next_chunk(&mut self) -> Result<Option<Vec<u32>>, Unreadable> {
            if self.chunks.is_empty() {
                return if self.fail {
                    Err(Unreadable(9))
                } else {
                    Ok(None)
                };
            }
            self.pulled.fetch_add(1, Ordering::SeqCst);
            Ok(Some(self.chunks.remove(0)))
        }
    }

    #[tokio::test]
    async fn a_refusal_hands_every_record_back_and_keeps_class_hint_and_source() {
        for permanent in [false, true] {
            let (mut sink, _, _) = probe(Some(permanent));
            let err = sink.ingest(&window(), vec![1, 2, 3]).await.unwrap_err();
            let class = if permanent {
                ErrorClass::Permanent
            } else {
                ErrorClass::Transient
            };
            assert_eq!(err.error().class(), class);
            assert_eq!(err.error().retry_after(), Some(Duration::from_secs(7)));
            assert_eq!(err.error().to_string(), "refused: bucket");
            let source = err.error().source().expect("the io error is the source");
            assert_eq!(source.to_string(), "no such bucket");
            let original = err.error().downcast_ref::<Refused>().unwrap();
            assert_eq!(original.permanent, permanent);
            assert_eq!(err.into_records(), vec![1, 2, 3]);
        }
    }

    #[tokio::test]
    async fn rejections_keep_their_indices_and_errors() {
        let (mut sink, _, _) = probe(None);
        let receipt = sink.ingest(&window(), vec![2, 3, 4, 5]).await.unwrap();
        assert_eq!(receipt.accepted(), 2);
        let rejected: Vec<_> = receipt.rejected().iter().map(|r| r.index).collect();
        assert_eq!(rejected, [1, 3]);
        assert_eq!(receipt.rejected()[0].error.class(), ErrorClass::Permanent);
    }

    #[tokio::test]
    async fn chunks_reach_the_stack_one_at_a_time() {
        let (mut sink, calls, pulled) = probe(None);
        let source = Counted {
            chunks: vec![vec![2, 3], vec![4], vec![6, 7, 8]],
            pulled,
            fail: false,
        };
        let receipt = sink.ingest_chunks(&window(), source).await.unwrap();
        // Each chunk reached the stack before the next one was read.
        assert_eq!(
            calls.lock().unwrap().chunks,
            [(vec![2, 3], 1), (vec![4], 2), (vec![6, 7, 8], 3)]
        );
        assert_eq!(receipt.accepted(), 4);
        let rejected: Vec<_> = receipt.rejected().iter().map(|r| r.index).collect();
        assert_eq!(rejected, [1, 4], "indices count across chunks");
    }

    #[tokio::test]
    async fn a_failing_source_comes_back_with_its_own_error() {
        let (mut sink, _, pulled) = probe(None);
        let source = Counted {
            chunks: vec![vec![2]],
            pulled,
            fail: true,
        };
        match sink.ingest_chunks(&window(), source).await {
            Err(ChunkedError::Source(e)) => assert_eq!(e, Unreadable(9)),
            other => panic!("expected the source's error, got {other:?}"),
        }
        let (mut sink, _, pulled) = probe(Some(true));
        let source = Counted {
            chunks: vec![vec![2]],
            pulled,
            fail: false,
        };
        match sink.ingest_chunks(&window(), source).await {
            Err(ChunkedError::Sink(e)) => assert_eq!(e.class(), ErrorClass::Permanent),
            other => panic!("expected the sink's error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn every_other_method_is_forwarded() {
        let (mut sink, calls, _) = probe(None);
        sink.open().await.unwrap();
        sink.advance(OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(60))
            .await
            .unwrap();
        let err = sink.flush().await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Transient);
        sink.drain(Drain::KeepActiveWindow).await.unwrap();
        assert_eq!(
            calls.lock().unwrap().log,
            ["open", "advance 60", "flush", "drain KeepActiveWindow"]
        );
        let mut stats = StackStats {
            held_records: 1,
            ..StackStats::default()
        };
        sink.observe(&mut stats);
        assert_eq!((stats.held_records, stats.delivered_records), (4, 5));
        assert!(format!("{sink:?}").contains("Probe"), "{sink:?}");
    }

    #[test]
    fn a_box_sink_error_is_not_boxed_twice() {
        let once = BoxSinkError::new(refused(true));
        let twice = BoxSinkError::new(once);
        assert!(twice.downcast_ref::<Refused>().is_some());
        assert_eq!(twice.class(), ErrorClass::Permanent);
        let plain = BoxSinkError::with_class("gone", ErrorClass::Permanent);
        assert_eq!(
            (plain.to_string(), plain.class()),
            ("gone".to_owned(), ErrorClass::Permanent)
        );
    }
}
