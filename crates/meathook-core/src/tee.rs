//! `Tee`: one batch to two sink stacks, each exactly once.

use thiserror::Error;
use time::OffsetDateTime;

use crate::backlog::{Backlog, Batch, Delivery};
use crate::{
    Backoff, Capacity, Drain, ErrorClass, IngestError, LayerStats, Receipt, RecordRejected, Sink,
    SinkError, StackStats, Weigher, WindowMeta, inline_size,
};

/// Records a [`Tee`] can take: any `Clone` type, since each batch is copied
/// once, for the right branch.
///
/// It exists for its compile error: a stack with a `Tee` over records that
/// are not `Clone` fails with a message that says so, instead of one that
/// only says the stack is not a `Sink`.
///
/// ```compile_fail
/// use std::convert::Infallible;
/// use meathook_core::{IngestError, Receipt, Sink, Tee, WindowMeta};
///
/// struct Count;
///
/// impl<R: Send> Sink<R> for Count {
///     type Error = Infallible;
///     async fn ingest(&mut self, _: &WindowMeta, r: Vec<R>) -> Result<Receipt<Infallible>, IngestError<R, Infallible>> { Ok(Receipt::all(r.len())) }
///     async fn flush(&mut self) -> Result<(), Infallible> { Ok(()) }
/// }
///
/// /// Not `Clone`.
/// struct Reading;
///
/// // error[E0277]: `Reading` records cannot go through a `Tee`: they are not `Clone`
/// let _both: Tee<Count, Count, Reading> = Tee::new(Count, Count);
/// ```
///
/// With `#[derive(Clone)]` on `Reading`, the same code compiles. The
/// combinator `.tee(..)` (on `SinkExt`, in `meathook-spool`) has the same
/// bound and the same message.
#[diagnostic::on_unimplemented(
    message = "`{Self}` records cannot go through a `Tee`: they are not `Clone`",
    label = "not `Clone`",
    note = "a `Tee` copies every batch once, for its second branch: derive or implement `Clone` for `{Self}`"
)]
pub trait TeeRecord: Clone {}

impl<R: Clone> TeeRecord for R {}

/// Which side of a [`Tee`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Branch {
    /// The sink `tee` was called on.
    Left,
    /// The sink passed to `tee`.
    Right,
}

/// Why [`Tee`] refused records or failed an operation.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TeeError<A, B> {
    /// Both branches refused the batch; neither holds it.
    #[error("both branches refused the batch: left: {left}; right: {right}")]
    Both {
        /// The left branch's error.
        left: A,
        /// The right branch's error.
        right: B,
    },
    /// A branch's backlog is full: it has been refusing batches for a while.
    #[error(
        "{branch:?} branch of the tee for pipeline {pipeline} is {held_records} records behind (capacity {} records, \
         {} bytes): it is refusing batches, retry later",
        capacity.records, capacity.bytes
    )]
    Backlogged {
        /// The lagging branch.
        branch: Branch,
        /// The pipeline of the refused batch.
        pipeline: String,
        /// Records the branch's backlog holds.
        held_records: usize,
        /// The backlog capacity.
        capacity: Capacity,
    },
    /// The left branch failed `open`, `advance` or `flush`.
    #[error("left branch: {0}")]
    Left(A),
    /// The right branch failed `open`, `advance` or `flush`.
    #[error("right branch: {0}")]
    Right(B),
}

impl<A: SinkError, B: SinkError> SinkError for TeeError<A, B> {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Both { left, right } => {
                if left.class() == ErrorClass::Permanent && right.class() == ErrorClass::Permanent {
                    ErrorClass::Permanent
                } else {
                    ErrorClass::Transient
                }
            }
            Self::Backlogged { .. } => ErrorClass::Transient,
            Self::Left(e) => e.class(),
            Self::Right(e) => e.class(),
        }
    }
}

/// `Tee`: one batch to two sink stacks, each exactly once.
///
/// Each branch gets its own copy of every batch. A branch that refuses its
/// copy does not make the batch fail for the other: the refused copy waits in
/// that branch's own bounded backlog and is retried with backoff, while the
/// healthy branch, which already has the batch, is never offered it again.
/// Only when both branches refuse the same batch outright does `ingest`
/// fail, handing the records back. A branch whose backlog is full makes
/// `ingest` refuse before either branch is offered anything, so backpressure
/// never costs a duplicate.
#[derive(Debug)]
pub struct Tee<A, B, R> {
    left: A,
    right: B,
    left_backlog: Backlog<R>,
    right_backlog: Backlog<R>,
    capacity: Capacity,
    weigher: Weigher<R>,
    now: Option<OffsetDateTime>,
}

/// The outcome of offering one branch its copy.
enum Offer<R, E> {
    Accepted(Receipt<E>),
    Queued,
    Refused(Vec<R>, E),
}

impl<A, B, R> Tee<A, B, R> {
    /// Sends every batch to both `left` and `right`, with backlogs of the
    /// default [`Capacity`] per branch. The records must be `Clone`: each
    /// batch is copied once, for the right branch.
    pub fn new(left: A, right: B) -> Self
    where
        R: TeeRecord,
    {
        Self {
            left,
            right,
            left_backlog: Backlog::new(Backoff::default()),
            right_backlog: Backlog::new(Backoff::default()),
            capacity: Capacity::default(),
            weigher: inline_size::<R>,
            now: None,
        }
    }

    /// Sets how much each branch's backlog may hold.
    pub fn with_capacity(mut self, capacity: Capacity) -> Self {
        self.capacity = capacity;
        self
    }

    /// Sets how record sizes are estimated for the capacity.
    pub fn with_weigher(mut self, weigher: Weigher<R>) -> Self {
        self.weigher = weigher;
        self
    }

    /// Sets the retry schedule of both backlogs.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.left_backlog.set_backoff(backoff.clone());
        self.right_backlog.set_backoff(backoff);
        self
    }

    /// The two branches.
    pub fn get_ref(&self) -> (&A, &B) {
        (&self.left, &self.right)
    }

    /// The two branches, mutably.
    pub fn get_mut(&mut self) -> (&mut A, &mut B) {
        (&mut self.left, &mut self.right)
    }

    /// The two branches; copies still waiting in a backlog are dropped with
    /// `self`, so flush first.
    pub fn into_inner(self) -> (A, B) {
        (self.left, self.right)
    }

    /// Counters of each branch's backlog.
    pub fn stats(&self) -> (LayerStats, LayerStats) {
        (self.left_backlog.stats(), self.right_backlog.stats())
    }
}

/// Offers `records` to `sink`, or queues them behind older copies so the
/// branch sees batches in order.
async fn offer<S: Sink<R>, R>(
    sink: &mut S,
    backlog: &mut Backlog<R>,
    window: &WindowMeta,
    records: Vec<R>,
    bytes: usize,
) -> Offer<R, S::Error> {
    if !backlog.is_empty() {
        backlog.push(window.clone(), records, bytes);
        backlog.seal_all();
        return Offer::Queued;
    }
    match sink.ingest(window, records).await {
        Ok(receipt) => Offer::Accepted(receipt),
        Err(refused) => {
            let (records, error) = refused.into_parts();
            Offer::Refused(records, error)
        }
    }
}

/// Holds a copy its branch refused while the other branch took the batch.
fn hold<R, E: SinkError>(
    backlog: &mut Backlog<R>,
    window: &WindowMeta,
    records: Vec<R>,
    bytes: usize,
    error: &E,
    now: Option<OffsetDateTime>,
) {
    let batch = Batch {
        window: window.clone(),
        records,
        bytes,
    };
    backlog.retry_later(batch, error, now);
}

/// The rejections of one branch's receipt, tagged with the branch.
fn rejections<E, T>(offer: Offer<impl Sized, E>, tag: impl Fn(E) -> T) -> Vec<RecordRejected<T>> {
    match offer {
        Offer::Accepted(receipt) => receipt
            .into_rejected()
            .into_iter()
            .map(|r| RecordRejected {
                index: r.index,
                error: tag(r.error),
            })
            .collect(),
        Offer::Queued | Offer::Refused(..) => Vec::new(),
    }
}

impl<A, B, R> Sink<R> for Tee<A, B, R>
where
    A: Sink<R>,
    B: Sink<R>,
    R: TeeRecord + Send + Sync,
{
    type Error = TeeError<A::Error, B::Error>;

    async fn open(&mut self) -> Result<(), Self::Error> {
        self.left.open().await.map_err(TeeError::Left)?;
        self.right.open().await.map_err(TeeError::Right)
    }

    async fn ingest(
        &mut self,
        window: &WindowMeta,
        records: Vec<R>,
    ) -> Result<Receipt<Self::Error>, IngestError<R, Self::Error>> {
        let count = records.len();
        // Older copies go first, so each branch sees batches in order.
        let _ = self
            .left_backlog
            .deliver(&mut self.left, self.now, false)
            .await;
        let _ = self
            .right_backlog
            .deliver(&mut self.right, self.now, false)
            .await;

        let bytes = records.iter().map(self.weigher).sum::<usize>();
        for (branch, backlog) in [
            (Branch::Left, &self.left_backlog),
            (Branch::Right, &self.right_backlog),
        ] {
            let fits = self.capacity.records >= backlog.records() + count
                && self.capacity.bytes >= backlog.bytes() + bytes;
            if !fits {
                let error = TeeError::Backlogged {
                    branch,
                    pipeline: window.pipeline.to_string(),
                    held_records: backlog.records(),
                    capacity: self.capacity,
                };
                return Err(IngestError::new(records, error));
            }
        }

        let left = offer(
            &mut self.left,
            &mut self.left_backlog,
            window,
            records.clone(),
            bytes,
        )
        .await;
        let right = offer(
            &mut self.right,
            &mut self.right_backlog,
            window,
            records,
            bytes,
        )
        .await;
        let (left, right) = match (left, right) {
            (Offer::Refused(_, left), Offer::Refused(records, right)) => {
                // Neither branch has the batch: the caller keeps it.
                return Err(IngestError::new(records, TeeError::Both { left, right }));
            }
            (Offer::Refused(records, error), right) => {
                hold(
                    &mut self.left_backlog,
                    window,
                    records,
                    bytes,
                    &error,
                    self.now,
                );
                (Offer::Queued, right)
            }
            (left, Offer::Refused(records, error)) => {
                hold(
                    &mut self.right_backlog,
                    window,
                    records,
                    bytes,
                    &error,
                    self.now,
                );
                (left, Offer::Queued)
            }
            both => both,
        };
        let mut rejected = rejections(left, TeeError::Left);
        for r in rejections(right, TeeError::Right) {
            if !rejected.iter().any(|seen| seen.index == r.index) {
                rejected.push(r);
            }
        }
        Ok(Receipt::partial(count - rejected.len(), rejected))
    }

    async fn advance(&mut self, now: OffsetDateTime) -> Result<(), Self::Error> {
        self.now = Some(now);
        let _ = self
            .left_backlog
            .deliver(&mut self.left, self.now, false)
            .await;
        let _ = self
            .right_backlog
            .deliver(&mut self.right, self.now, false)
            .await;
        let left = self.left.advance(now).await.map_err(TeeError::Left);
        let right = self.right.advance(now).await.map_err(TeeError::Right);
        left.and(right)
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.drain(Drain::Everything).await
    }

    async fn drain(&mut self, mode: Drain) -> Result<(), Self::Error> {
        let left = match self
            .left_backlog
            .deliver(&mut self.left, self.now, true)
            .await
        {
            Delivery::Failed(e) => Err(TeeError::Left(e)),
            Delivery::Done | Delivery::Waiting => {
                self.left.drain(mode).await.map_err(TeeError::Left)
            }
        };
        let right = match self
            .right_backlog
            .deliver(&mut self.right, self.now, true)
            .await
        {
            Delivery::Failed(e) => Err(TeeError::Right(e)),
            Delivery::Done | Delivery::Waiting => {
                self.right.drain(mode).await.map_err(TeeError::Right)
            }
        };
        left.and(right)
    }

    /// Held figures add up over both branches; delivery figures are those of
    /// the branch that has delivered fewer records, the one a user waits on.
    fn observe(&self, stats: &mut StackStats) {
        let branch = |backlog: &Backlog<R>, sink: &dyn Fn(&mut StackStats)| {
            let mut s = StackStats::default();
            backlog.observe(
                &mut s,
                self.capacity
                    .utilisation(backlog.records(), backlog.bytes()),
            );
            sink(&mut s);
            s
        };
        let left = branch(&self.left_backlog, &|s| self.left.observe(s));
        let right = branch(&self.right_backlog, &|s| self.right.observe(s));
        stats.merge_branches(&left, &right);
    }
}
