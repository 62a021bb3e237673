//! `Buffered`: the bounded in-memory tier.

use std::time::Duration;

use thiserror::Error;
use time::OffsetDateTime;

use crate::backlog::{Backlog, Delivery};
use crate::{
    Backoff, Drain, ErrorClass, FlushPolicy, IngestError, LayerStats, Receipt, Sink, SinkError,
    StackStats, WindowMeta,
};

/// How much an in-memory layer may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Most records held.
    pub records: usize,
    /// Most bytes held, as measured by the layer's [`Weigher`].
    pub bytes: usize,
}

impl Default for Capacity {
    /// 100,000 records or 64 MiB.
    fn default() -> Self {
        Self {
            records: 100_000,
            bytes: 64 << 20,
        }
    }
}

impl Capacity {
    fn fits(&self, records: usize, bytes: usize) -> bool {
        records <= self.records && bytes <= self.bytes
    }

    /// The larger of the record and byte fill ratios, from 0.0 to 1.0.
    pub fn utilisation(&self, records: usize, bytes: usize) -> f64 {
        #[allow(clippy::cast_precision_loss)] // a ratio; precision past 2^52 records is moot
        let ratio = |held: usize, max: usize| {
            if max == 0 {
                1.0
            } else {
                held as f64 / max as f64
            }
        };
        ratio(records, self.records)
            .max(ratio(bytes, self.bytes))
            .min(1.0)
    }
}

/// Estimates the memory a record holds, for byte caps.
pub type Weigher<R> = fn(&R) -> usize;

/// The default [`Weigher`]: the record's inline size, `size_of::<R>()`. It
/// does not see heap data such as string contents; give a weigher that adds
/// them when records carry large strings or vectors.
pub fn inline_size<R>(_: &R) -> usize {
    std::mem::size_of::<R>()
}

/// `Buffered`: the bounded in-memory tier.
///
/// Holds records, filed under windows of its policy's length, until the
/// policy fires — the window closed, or a record or byte cap was reached —
/// then hands each window's batch to the layer below, oldest first. If the
/// layer below refuses, the batch stays here (moved back, not copied) and is
/// retried after a capped, jittered backoff; the failure is counted and
/// logged, never returned from `ingest`. Memory is bounded by a [`Capacity`]:
/// when full, `ingest` refuses and hands the records back, which is how
/// backpressure reaches the pipeline. Nothing is ever dropped here.
///
/// Delivery happens inside `ingest` and `advance` calls. Put a durable
/// `DiskSpool` below this tier when the layer below it may be slow: the spool
/// accepts quickly and delivers in the background.
#[derive(Debug)]
pub struct Buffered<S, R> {
    inner: S,
    policy: FlushPolicy,
    capacity: Capacity,
    weigher: Weigher<R>,
    backlog: Backlog<R>,
    now: Option<OffsetDateTime>,
}

/// Why [`Buffered`] refused records.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BufferedError<E> {
    /// The tier is at its capacity and the layer below is not taking batches:
    /// slow down and offer the records again later.
    #[error(
        "memory tier of pipeline {pipeline} is full ({held_records} records, {held_bytes} bytes held; \
         capacity {} records, {} bytes): the layer below is not accepting, retry later",
        capacity.records, capacity.bytes
    )]
    Full {
        /// The pipeline of the refused batch.
        pipeline: String,
        /// Records held.
        held_records: usize,
        /// Bytes held.
        held_bytes: usize,
        /// The configured capacity.
        capacity: Capacity,
    },
    /// One batch alone is larger than the whole capacity.
    #[error(
        "batch of {records} records ({bytes} bytes) for {window} exceeds the memory tier's capacity \
         ({} records, {} bytes): raise the capacity or collect smaller batches",
        capacity.records, capacity.bytes
    )]
    TooLarge {
        /// The window of the refused batch.
        window: WindowMeta,
        /// Records in the batch.
        records: usize,
        /// Bytes in the batch.
        bytes: usize,
        /// The configured capacity.
        capacity: Capacity,
    },
    /// The layer below failed an operation this layer passed on to it
    /// (`open`, `advance`, or the delivery `flush` forces).
    #[error(transparent)]
    Inner(E),
}

impl<E: SinkError> SinkError for BufferedError<E> {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Full { .. } => ErrorClass::Transient,
            Self::TooLarge { .. } => ErrorClass::Permanent,
            Self::Inner(e) => e.class(),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Inner(e) => e.retry_after(),
            Self::Full { .. } | Self::TooLarge { .. } => None,
        }
    }
}

impl<S, R> Buffered<S, R> {
    /// Buffers in front of `inner` with `policy`, the default [`Capacity`],
    /// the [`inline_size`] weigher and the default [`Backoff`].
    pub fn new(inner: S, policy: FlushPolicy) -> Self {
        Self {
            inner,
            policy,
            capacity: Capacity::default(),
            weigher: inline_size::<R>,
            backlog: Backlog::new(Backoff::default()),
            now: None,
        }
    }

    /// Sets how much the tier may hold.
    pub fn with_capacity(mut self, capacity: Capacity) -> Self {
        self.capacity = capacity;
        self
    }

    /// Sets how record sizes are estimated for the byte cap and capacity.
    pub fn with_weigher(mut self, weigher: Weigher<R>) -> Self {
        self.weigher = weigher;
        self
    }

    /// Sets the retry schedule after the layer below refuses a batch.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backlog.set_backoff(backoff);
        self
    }

    /// The layer below.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The layer below, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The layer below; records still held here are dropped with `self`, so
    /// flush first.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The policy.
    pub fn policy(&self) -> &FlushPolicy {
        &self.policy
    }

    /// Counters and current fill.
    pub fn stats(&self) -> LayerStats {
        self.backlog.stats()
    }

    /// How full the tier is, from 0.0 to 1.0.
    pub fn utilisation(&self) -> f64 {
        self.capacity
            .utilisation(self.backlog.records(), self.backlog.bytes())
    }
}

impl<S, R> Buffered<S, R>
where
    S: Sink<R>,
    R: Send,
{
    /// Delivers due batches unless a backoff is running; failures are held
    /// and counted by the backlog, which is all a background round needs.
    async fn deliver_due(&mut self) {
        let _ = self.backlog.deliver(&mut self.inner, self.now, false).await;
    }

    /// Delivers everything held now, backoff or not.
    async fn deliver_all(&mut self) -> Result<(), BufferedError<S::Error>> {
        self.backlog.seal_all();
        match self.backlog.deliver(&mut self.inner, self.now, true).await {
            Delivery::Failed(e) => Err(BufferedError::Inner(e)),
            Delivery::Done | Delivery::Waiting => Ok(()),
        }
    }
}

impl<S, R> Sink<R> for Buffered<S, R>
where
    S: Sink<R>,
    R: Send,
{
    type Error = BufferedError<S::Error>;

    async fn open(&mut self) -> Result<(), Self::Error> {
        self.inner.open().await.map_err(BufferedError::Inner)
    }

    async fn ingest(
        &mut self,
        window: &WindowMeta,
        records: Vec<R>,
    ) -> Result<Receipt<Self::Error>, IngestError<R, Self::Error>> {
        let count = records.len();
        if count == 0 {
            return Ok(Receipt::all(0));
        }
        let bytes = records.iter().map(self.weigher).sum::<usize>();
        if !self.capacity.fits(count, bytes) {
            let error = BufferedError::TooLarge {
                window: window.clone(),
                records: count,
                bytes,
                capacity: self.capacity,
            };
            return Err(IngestError::new(records, error));
        }
        if !self
            .capacity
            .fits(self.backlog.records() + count, self.backlog.bytes() + bytes)
        {
            // Full: everything held goes below now if the layer below takes it.
            self.backlog.seal_all();
            self.deliver_due().await;
            if !self
                .capacity
                .fits(self.backlog.records() + count, self.backlog.bytes() + bytes)
            {
                let error = BufferedError::Full {
                    pipeline: window.pipeline.to_string(),
                    held_records: self.backlog.records(),
                    held_bytes: self.backlog.bytes(),
                    capacity: self.capacity,
                };
                return Err(IngestError::new(records, error));
            }
        }
        self.backlog
            .push(window.widen(self.policy.window()), records, bytes);
        if self
            .policy
            .is_full(self.backlog.records(), self.backlog.bytes())
        {
            self.backlog.seal_all();
            self.deliver_due().await;
        }
        Ok(Receipt::all(count))
    }

    async fn advance(&mut self, now: OffsetDateTime) -> Result<(), Self::Error> {
        self.now = Some(now);
        self.backlog.seal_closed(now);
        self.deliver_due().await;
        self.inner.advance(now).await.map_err(BufferedError::Inner)
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.deliver_all().await?;
        self.inner.flush().await.map_err(BufferedError::Inner)
    }

    async fn drain(&mut self, mode: Drain) -> Result<(), Self::Error> {
        // Memory is not durable: whatever the mode, everything goes below.
        self.deliver_all().await?;
        self.inner.drain(mode).await.map_err(BufferedError::Inner)
    }

    fn observe(&self, stats: &mut StackStats) {
        self.backlog.observe(stats, self.utilisation());
        self.inner.observe(stats);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utilisation_is_the_fuller_dimension() {
        let cap = Capacity {
            records: 100,
            bytes: 1000,
        };
        assert!((cap.utilisation(10, 900) - 0.9).abs() < 1e-9);
        assert!((cap.utilisation(50, 0) - 0.5).abs() < 1e-9);
        assert!((cap.utilisation(500, 0) - 1.0).abs() < 1e-9);
    }
}
