//! `SinkExt`: builds sink stacks by chaining layers.

use std::path::PathBuf;

use meathook_core::{Buffered, FlushPolicy, Sink, Tee, TeeRecord};

use crate::DiskSpool;

/// Combinators that wrap a sink in another layer.
///
/// ```
/// # use std::convert::Infallible;
/// # use meathook_core::{IngestError, Receipt, Sink, WindowMeta};
/// use std::time::Duration;
/// use meathook_core::{Buffered, FlushPolicy, Tee};
/// use meathook_spool::SinkExt as _;
/// # #[derive(Clone)] struct Count;
/// # impl<R: Send> Sink<R> for Count {
/// #     type Error = Infallible;
/// #     async fn ingest(&mut self, _: &WindowMeta, r: Vec<R>) -> Result<Receipt<Infallible>, IngestError<R, Infallible>> { Ok(Receipt::all(r.len())) }
/// #     async fn flush(&mut self) -> Result<(), Infallible> { Ok(()) }
/// # }
/// # fn main() -> Result<(), meathook_core::PolicyError> {
/// // Five minutes in memory, then one copy to each destination.
/// let every_5m = FlushPolicy::new(Duration::from_secs(300), 10_000)?;
/// let _stack: Buffered<Tee<Count, Count, u64>, u64> = Count.tee(Count).buffered(every_5m);
/// # Ok(()) }
/// ```
pub trait SinkExt<R>: Sink<R> + Sized {
    /// Holds records in memory in front of `self` until `policy` fires; see
    /// [`Buffered`].
    fn buffered(self, policy: FlushPolicy) -> Buffered<Self, R> {
        Buffered::new(self, policy)
    }

    /// Sends every batch to both `self` and `other`, each exactly once; see
    /// [`Tee`]. The records must be `Clone` ([`TeeRecord`]): each batch is
    /// copied once, for `other`.
    fn tee<B: Sink<R>>(self, other: B) -> Tee<Self, B, R>
    where
        R: TeeRecord,
    {
        Tee::new(self, other)
    }

    /// Spools records durably in `dir` in front of `self`, in windows of
    /// `policy`'s length, and delivers sealed windows in the background; see
    /// [`DiskSpool`]. Infallible: the directory is locked and recovered when
    /// the stack is opened.
    fn spooled(self, dir: impl Into<PathBuf>, policy: FlushPolicy) -> DiskSpool<Self, R> {
        DiskSpool::new(self, dir, policy)
    }
}

impl<R, S: Sink<R>> SinkExt<R> for S {}
