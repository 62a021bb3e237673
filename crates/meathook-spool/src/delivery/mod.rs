//! The delivery worker: a task that owns the inner sink and hands it sealed
//! segments, oldest first, never inline in `ingest`.
//!
//! For each due segment it offers the records chunk by chunk
//! ([`Sink::ingest_chunks`]) under the segment's window and `BatchId`. On
//! `Ok` the file is deleted and the directory fsynced. On a transient error
//! it waits a capped, jittered [`Backoff`](meathook_core::Backoff) (or the
//! sink's `retry_after`, if longer) and tries the same segment again, for as
//! long as it takes. A segment refused permanently `dead_letter_after` times
//! is moved to `dead-letter/` with a `.reason` file. Deliveries are
//! at-least-once: a crash after the sink accepted and before the delete
//! replays the segment with the same `BatchId`, which terminal sinks treat
//! as already written.
//!
//! `worker.rs` is the loop and its state (open, next segment, retry and
//! backoff, flushes, figures); `offer.rs` offers one segment to the inner
//! sink; `files.rs` is what happens to a segment's file around that
//! (retiring an abandoned one, deleting a delivered one, dead-lettering).

mod files;
mod offer;
pub use offer::MAX_CONCURRENT_DELIVERIES;
mod worker;

use std::sync::{Arc, Mutex};

use meathook_core::{Drain, Sink, StackStats};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::fs::Fs;
use crate::limits::Config;
use crate::queue::Shared;
use worker::Worker;

/// Messages from the spool to its worker.
#[derive(Debug)]
pub(crate) enum Command<E> {
    /// Pass the time on to the inner sink.
    Advance(OffsetDateTime),
    /// Deliver everything due now (ignoring the backoff), then drain the
    /// inner sink in this mode and answer.
    Flush(Drain, oneshot::Sender<Result<(), E>>),
}

/// Runs until the spool is dropped (its command sender closes).
pub(crate) async fn run<S, R, F, L>(
    inner: S,
    shared: Arc<Shared>,
    fs: F,
    cfg: Config,
    rx: mpsc::UnboundedReceiver<Command<S::Error>>,
    lock: L,
    inner_stats: Arc<Mutex<StackStats>>,
) where
    S: Sink<R>,
    R: DeserializeOwned + Send + 'static,
    F: Fs,
    L: Send + 'static,
{
    let _lock = lock; // released when the worker ends, after its last delete
    Worker::new(inner, shared, fs, cfg, inner_stats)
        .run(rx)
        .await;
}
