//! `Backlog`: batches waiting for the layer below, delivered oldest first.
//!
//! The one retry mechanism of the in-memory layers ([`Buffered`](crate::Buffered)
//! and each branch of [`Tee`](crate::Tee)). A batch is moved into the layer
//! below and, if refused, taken back from the [`IngestError`](crate::IngestError): the records
//! are never cloned per attempt and never duplicated. After a failure the
//! next attempt waits a capped, jittered backoff (or the layer's own
//! `retry_after` hint, whichever is longer).

use std::collections::VecDeque;

use time::OffsetDateTime;

use crate::{Backoff, ErrorClass, Sink, SinkError, StackStats, WindowMeta};

/// Records filed under one window, in arrival order.
#[derive(Debug)]
pub(crate) struct Batch<R> {
    pub(crate) window: WindowMeta,
    pub(crate) records: Vec<R>,
    pub(crate) bytes: usize,
}

/// Batches held for delivery; `batches[..due]` may be delivered now, the rest
/// are still open (their window has not closed and no cap fired).
#[derive(Debug)]
pub(crate) struct Backlog<R> {
    batches: VecDeque<Batch<R>>,
    due: usize,
    records: usize,
    bytes: usize,
    backoff: Backoff,
    retry_at: Option<OffsetDateTime>,
    stats: LayerStats,
}

/// How a delivery round ended.
#[derive(Debug)]
pub(crate) enum Delivery<E> {
    /// Every due batch was accepted below.
    Done,
    /// A previous failure's backoff has not expired; nothing was tried.
    Waiting,
    /// The layer below refused a batch; it is held again, at the front.
    Failed(E),
}

impl<R> Backlog<R> {
    pub(crate) fn new(backoff: Backoff) -> Self {
        Self {
            batches: VecDeque::new(),
            due: 0,
            records: 0,
            bytes: 0,
            backoff,
            retry_at: None,
            stats: LayerStats::default(),
        }
    }

    pub(crate) fn records(&self) -> usize {
        self.records
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    pub(crate) fn stats(&self) -> LayerStats {
        LayerStats {
            held_records: self.records,
            held_bytes: self.bytes,
            ..self.stats
        }
    }

    /// Adds what this backlog holds and has delivered to `stats`.
    ///
    /// A memory layer delivers, so its delivery figures replace those of
    /// the layers above; the layer below replaces them in turn if it
    /// delivers too.
    pub(crate) fn observe(&self, stats: &mut StackStats, utilisation: f64) {
        let own = StackStats {
            held_records: self.records as u64,
            held_bytes: self.bytes as u64,
            utilisation,
            oldest_undelivered: self.batches.front().map(|oldest| oldest.window.start),
            delivered_records: self.stats.delivered_records,
            failed_attempts: self.stats.failed_attempts,
            retries: self.stats.retries,
            rejected_records: self.stats.rejected_records,
            ..StackStats::default()
        };
        stats.add_held(&own);
        stats.set_delivery(&own);
    }

    pub(crate) fn set_backoff(&mut self, backoff: Backoff) {
        self.backoff = backoff;
    }

    /// Appends a batch. It joins the last batch when that one is still open
    /// and filed under the same window, so a window leaves as one batch.
    pub(crate) fn push(&mut self, window: WindowMeta, mut records: Vec<R>, bytes: usize) {
        self.records += records.len();
        self.bytes += bytes;
        let open = self.batches.len() > self.due;
        if let Some(last) = self
            .batches
            .back_mut()
            .filter(|last| open && last.window == window)
        {
            last.records.append(&mut records);
            last.bytes += bytes;
            return;
        }
        self.batches.push_back(Batch {
            window,
            records,
            bytes,
        });
    }

    /// Makes every held batch due.
    pub(crate) fn seal_all(&mut self) {
        self.due = self.batches.len();
    }

    /// Makes due every batch up to the last one whose window closed by `now`
    /// (earlier batches go first, whatever their window, to keep order).
    pub(crate) fn seal_closed(&mut self, now: OffsetDateTime) {
        if let Some(last_closed) = self
            .batches
            .iter()
            .rposition(|b| b.window.is_closed_at(now))
        {
            self.due = self.due.max(last_closed + 1);
        }
    }

    /// Hands due batches to `sink`, oldest first, until all are accepted or
    /// one is refused. Unless `force`, does nothing while a backoff runs.
    pub(crate) async fn deliver<S: Sink<R>>(
        &mut self,
        sink: &mut S,
        now: Option<OffsetDateTime>,
        force: bool,
    ) -> Delivery<S::Error> {
        if !force && self.retry_at.zip(now).is_some_and(|(at, now)| now < at) {
            return Delivery::Waiting;
        }
        while self.due > 0 {
            let Some(Batch {
                window,
                records,
                bytes,
            }) = self.batches.pop_front()
            else {
                break;
            };
            self.due -= 1;
            self.records -= records.len();
            self.bytes -= bytes;
            if self.backoff.failures() > 0 {
                self.stats.retries += 1;
            }
            match sink.ingest(&window, records).await {
                Ok(receipt) => {
                    self.backoff.reset();
                    self.retry_at = None;
                    self.stats.delivered_batches += 1;
                    self.stats.delivered_records += receipt.accepted() as u64;
                    for rejected in receipt.rejected() {
                        self.stats.rejected_records += 1;
                        tracing::warn!(
                            %window,
                            index = rejected.index,
                            error = %rejected.error,
                            "record rejected by the layer below; it cannot be retried"
                        );
                    }
                }
                Err(refused) => {
                    let (records, error) = refused.into_parts();
                    self.retry_later(
                        Batch {
                            window,
                            records,
                            bytes,
                        },
                        &error,
                        now,
                    );
                    return Delivery::Failed(error);
                }
            }
        }
        Delivery::Done
    }

    /// Holds a batch the layer below refused, at the front (it is the oldest),
    /// and schedules the next attempt after the backoff or the layer's own
    /// `retry_after` hint, whichever is longer.
    pub(crate) fn retry_later<E: SinkError>(
        &mut self,
        batch: Batch<R>,
        error: &E,
        now: Option<OffsetDateTime>,
    ) {
        self.stats.failed_attempts += 1;
        self.records += batch.records.len();
        self.bytes += batch.bytes;
        self.batches.push_front(batch);
        self.due += 1;
        let wait = error
            .retry_after()
            .unwrap_or_default()
            .max(self.backoff.fail());
        let wait_t = time::Duration::try_from(wait).unwrap_or(time::Duration::MAX);
        self.retry_at = now.map(|now| now.saturating_add(wait_t));
        tracing::warn!(
            %error,
            permanent = error.class() == ErrorClass::Permanent,
            retry_in = ?wait,
            held_records = self.records,
            "layer below refused a batch; holding it for retry"
        );
    }
}

/// Counters of an in-memory layer ([`Buffered`](crate::Buffered), or one
/// branch of a [`Tee`](crate::Tee)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LayerStats {
    /// Records held now.
    pub held_records: usize,
    /// Bytes held now, as weighed.
    pub held_bytes: usize,
    /// Records the layer below accepted.
    pub delivered_records: u64,
    /// Batches the layer below accepted.
    pub delivered_batches: u64,
    /// Attempts the layer below refused.
    pub failed_attempts: u64,
    /// Attempts made after a refusal.
    pub retries: u64,
    /// Records the layer below rejected on their own (unrecoverable).
    pub rejected_records: u64,
}
