//! The worker's state and its loop: open the inner sink, take the oldest
//! due segment, deliver it, and on failure wait out the backoff (or move a
//! segment refused too often to `dead-letter/`); answer flushes once
//! nothing is due; keep the inner sink's figures where `observe` reads them.
//!
//! The worker listens on the spool's command channel and on the queue's
//! wake-up, sleeps until the next retry, answers each flush on its oneshot,
//! and copies the inner sink's figures into the shared slot after every
//! turn.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meathook_core::{Backoff, Drain, ErrorChain, ErrorClass, Sink, SinkError, StackStats};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::Instrument as _;

use super::Command;
use super::files::{dead_letter, remove_delivered, retire_abandoned};
use super::offer::{Outcome, offer};
use crate::fs::Fs;
use crate::limits::Config;
use crate::queue::{Due, Shared};

/// A flush waiting for its answer: the drain mode and where to answer.
type Waiter<E> = (Drain, oneshot::Sender<Result<(), E>>);

/// What the loop does after a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// A segment left the queue: look for the next one at once.
    Again,
    /// Wait for a command, a new segment or the retry time.
    Wait,
}

/// The delivery worker: the inner sink and everything the loop keeps
/// between turns.
pub(super) struct Worker<S: Sink<R>, R, F> {
    inner: S,
    shared: Arc<Shared>,
    fs: F,
    cfg: Config,
    /// Where `observe` on the spool reads the inner sink's figures.
    inner_stats: Arc<Mutex<StackStats>>,
    backoff: Backoff,
    /// No delivery (or open) before this; `None`: now.
    retry_at: Option<Instant>,
    /// Flushes to answer once nothing is due.
    waiters: Vec<Waiter<S::Error>>,
    /// The segment refused permanently last, and how many times in a row.
    permanent: Option<(u64, u32)>,
    /// Whether the inner sink has opened.
    opened: bool,
    records: PhantomData<fn() -> R>,
}

impl<S, R, F> Worker<S, R, F>
where
    S: Sink<R>,
    R: DeserializeOwned + Send + 'static,
    F: Fs,
{
    pub(super) fn new(
        inner: S,
        shared: Arc<Shared>,
        fs: F,
        cfg: Config,
        inner_stats: Arc<Mutex<StackStats>>,
    ) -> Self {
        Self {
            inner,
            shared,
            fs,
            backoff: cfg.backoff.clone(),
            cfg,
            inner_stats,
            retry_at: None,
            waiters: Vec::new(),
            permanent: None,
            opened: false,
            records: PhantomData,
        }
    }

    /// Runs until the command sender closes.
    pub(super) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command<S::Error>>) {
        loop {
            while let Ok(cmd) = rx.try_recv() {
                self.handle(cmd).await;
            }
            self.report();
            if !self.opened && self.is_time() {
                self.open().await;
            }
            if self.opened && self.is_time() && self.turn().await == Next::Again {
                continue;
            }
            if !self.wait(&mut rx).await {
                break;
            }
        }
        self.shared.queue().in_flight = None;
    }

    /// Whether the backoff has run out (or there is none).
    fn is_time(&self) -> bool {
        self.retry_at.is_none_or(|at| Instant::now() >= at)
    }

    /// Waits for a command, a new segment or the retry time; `false` once
    /// the spool has dropped its sender.
    async fn wait(&mut self, rx: &mut mpsc::UnboundedReceiver<Command<S::Error>>) -> bool {
        let sleep_until = self.retry_at;
        let cmd = tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(cmd) => Some(cmd),
                None => return false,
            },
            () = self.shared.wake.notified() => None,
            () = async {
                match sleep_until {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => None,
        };
        if let Some(cmd) = cmd {
            self.handle(cmd).await;
        }
        true
    }

    async fn handle(&mut self, cmd: Command<S::Error>) {
        match cmd {
            Command::Advance(now) => {
                if let Err(error) = self.inner.advance(now).await {
                    tracing::warn!(error = %ErrorChain(&error), "the spool's inner sink failed to advance");
                }
            }
            Command::Flush(mode, reply) => {
                self.waiters.push((mode, reply));
                self.retry_at = None;
            }
        }
    }

    /// Opens the inner sink. It may be down when the spool opens; the spool
    /// accepts records anyway and opens the inner sink here, retrying.
    async fn open(&mut self) {
        match self.inner.open().await {
            Ok(()) => self.opened = true,
            Err(error) => {
                let wait = self.wait_after(&error);
                tracing::warn!(error = %ErrorChain(&error), retry_in = ?wait, "the spool's inner sink failed to open");
                self.retry_at = Some(Instant::now() + wait);
            }
        }
    }

    /// Delivers the oldest due segment, or answers the flushes waiting if
    /// none is due.
    async fn turn(&mut self) -> Next {
        self.retry_at = None;
        match self.next_segment() {
            Some(due) => {
                let span = tracing::info_span!(
                    "delivery",
                    segment = due.segment.id,
                    window = %due.segment.window
                );
                self.attempt(due).instrument(span).await
            }
            None => {
                self.answer_flushes().await;
                Next::Wait
            }
        }
    }

    /// The oldest due segment, marked in flight (so `DropOldest` leaves it).
    fn next_segment(&self) -> Option<Due> {
        let mut q = self.shared.queue();
        let next = q.due.front().cloned();
        q.in_flight = next.as_ref().map(|d| d.segment.id);
        next
    }

    /// One delivery attempt of `due`, and what follows from its outcome.
    async fn attempt(&mut self, mut due: Due) -> Next {
        if self.backoff.failures() > 0 {
            self.shared.stats.add(|c| &c.deliveries_retried, 1);
        }
        let outcome = match retire_abandoned(&self.shared, &self.fs, &mut due).await {
            Ok(()) => self.deliver(&due).await,
            Err(why) => Outcome::ReadFailed(why),
        };
        match outcome {
            Outcome::Delivered => {
                self.delivered(&due).await;
                Next::Again
            }
            Outcome::Failed(error) => self.refused(&due, &error).await,
            Outcome::ReadFailed(why) => {
                self.unreadable(&due, &why);
                Next::Wait
            }
        }
    }

    /// Offers the records of `due` to the inner sink.
    async fn deliver(&mut self, due: &Due) -> Outcome<S::Error> {
        offer(
            &mut self.inner,
            &self.shared,
            &self.fs,
            self.cfg.chunk_records,
            due,
        )
        .await
    }

    /// The inner sink took `due`: forget the failures, delete the file.
    async fn delivered(&mut self, due: &Due) {
        self.shared.note_attempt(None);
        self.backoff.reset();
        self.permanent = None;
        remove_delivered(&self.shared, &self.fs, due).await;
    }

    /// The inner sink refused `due`: retry after the backoff, or move it to
    /// `dead-letter/` once it has been refused permanently often enough.
    async fn refused(&mut self, due: &Due, error: &S::Error) -> Next {
        let why = ErrorChain(error).to_string();
        self.shared.note_attempt(Some(why.clone()));
        self.shared.stats.add(|c| &c.deliveries_failed, 1);
        let class = error.class();
        let wait = self.wait_after(error);
        tracing::warn!(error = %why, permanent = class == ErrorClass::Permanent, retry_in = ?wait, "the inner sink refused a spool segment");
        if class == ErrorClass::Permanent {
            let count = self.count_refusal(due);
            if count >= self.cfg.dead_letter_after.max(1)
                && dead_letter(&self.shared, &self.fs, due, &why, count).await
            {
                self.permanent = None;
                self.backoff.reset();
                return Next::Again;
            }
        }
        self.retry_later(wait);
        Next::Wait
    }

    /// Counts a permanent refusal of `due`; returns how many in a row.
    fn count_refusal(&mut self, due: &Due) -> u32 {
        let count = match self.permanent {
            Some((id, n)) if id == due.segment.id => n + 1,
            _ => 1,
        };
        self.permanent = Some((due.segment.id, count));
        count
    }

    /// `due` could not be read (or retired): retry after the backoff.
    fn unreadable(&mut self, due: &Due, why: &str) {
        self.shared
            .note_attempt(Some(format!("reading {}: {why}", due.path.display())));
        self.shared.stats.add(|c| &c.deliveries_failed, 1);
        let wait = self.backoff.fail();
        tracing::error!(segment = %due.path.display(), error = %why, retry_in = ?wait, "cannot read a spool segment for delivery");
        self.retry_later(wait);
    }

    /// The next wait after the inner sink failed with `error`: the backoff,
    /// or the sink's own hint if longer.
    fn wait_after(&mut self, error: &S::Error) -> Duration {
        error
            .retry_after()
            .unwrap_or_default()
            .max(self.backoff.fail())
    }

    /// Puts the segment in flight back and sleeps `wait` before the next try.
    fn retry_later(&mut self, wait: Duration) {
        self.shared.queue().in_flight = None;
        self.retry_at = Some(Instant::now() + wait);
    }

    /// Nothing is due: drains the inner sink for the flushes waiting.
    async fn answer_flushes(&mut self) {
        let Some(mode) = self.waiters.first().map(|w| w.0) else {
            return;
        };
        let mut result = Some(self.inner.drain(mode).await);
        for (i, (_, w)) in self.waiters.drain(..).enumerate() {
            // Errors are not `Clone`: the first waiter gets the error, the
            // rest only learn that the flush ended (a second flush at once
            // is rare).
            let r = if i == 0 {
                result.take().unwrap_or(Ok(()))
            } else {
                Ok(())
            };
            let _ = w.send(r);
        }
        self.report();
    }

    /// Lets `observe` on the spool see the inner sink's figures.
    fn report(&self) {
        let mut below = StackStats::default();
        self.inner.observe(&mut below);
        if let Ok(mut slot) = self.inner_stats.lock() {
            *slot = below;
        }
    }
}
