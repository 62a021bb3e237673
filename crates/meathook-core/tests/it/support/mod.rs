//! A downstream that records what reaches it and refuses on demand.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different part
#![allow(clippy::unwrap_used)] // a poisoned lock means a test already failed

use std::sync::{Arc, Mutex};
use std::time::Duration;

use meathook_core::{Clock, IngestError, Receipt, Sink, SinkError, TokioClock, WindowMeta};
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("downstream refused (attempt {0})")]
pub struct Refused(pub usize);

impl SinkError for Refused {}

#[derive(Debug)]
struct State<R> {
    delivered: Vec<(WindowMeta, Vec<R>)>,
    refuse_next: usize,
    attempts: usize,
    flushes: usize,
}

/// Records every accepted batch; refuses the next `n` offers when told to.
#[derive(Debug)]
pub struct Recorder<R> {
    state: Arc<Mutex<State<R>>>,
}

impl<R> Clone for Recorder<R> {
    fn clone(&self) -> Self {
        Self {
            state: Arc::clone(&self.state),
        }
    }
}

impl<R> Default for Recorder<R> {
    fn default() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                delivered: Vec::new(),
                refuse_next: 0,
                attempts: 0,
                flushes: 0,
            })),
        }
    }
}

impl<R> Recorder<R> {
    pub fn refuse_next(&self, n: usize) {
        self.state.lock().unwrap().refuse_next = n;
    }

    pub fn attempts(&self) -> usize {
        self.state.lock().unwrap().attempts
    }

    pub fn flushes(&self) -> usize {
        self.state.lock().unwrap().flushes
    }
}

impl<R: Clone> Recorder<R> {
    pub fn delivered(&self) -> Vec<(WindowMeta, Vec<R>)> {
        self.state.lock().unwrap().delivered.clone()
    }

    /// Every accepted record, in arrival order, with the start of its window.
    pub fn records(&self) -> Vec<(OffsetDateTime, R)> {
        let state = self.state.lock().unwrap();
        state
            .delivered
            .iter()
            .flat_map(|(w, rs)| rs.iter().map(|r| (w.start, r.clone())))
            .collect()
    }
}

impl<R: Send> Sink<R> for Recorder<R> {
    type Error = Refused;

    async fn ingest(
        &mut self,
        window: &WindowMeta,
        records: Vec<R>,
    ) -> Result<Receipt<Refused>, IngestError<R, Refused>> {
        let mut state = self.state.lock().unwrap();
        state.attempts += 1;
        if state.refuse_next > 0 {
            state.refuse_next -= 1;
            let attempt = state.attempts;
            return Err(IngestError::new(records, Refused(attempt)));
        }
        let count = records.len();
        state.delivered.push((window.clone(), records));
        Ok(Receipt::all(count))
    }

    async fn flush(&mut self) -> Result<(), Refused> {
        self.state.lock().unwrap().flushes += 1;
        Ok(())
    }
}

/// A record that cannot be cloned: layers must move records, never copy them.
#[derive(Debug, PartialEq, Eq)]
pub struct Reading {
    pub seq: u64,
}

/// Ticks `sink` once per `step` of paused tokio time until `clock` reads
/// `until`, as a pipeline does.
pub async fn tick_until<R, S: Sink<R>>(
    sink: &mut S,
    clock: &TokioClock,
    until: OffsetDateTime,
    step: Duration,
) {
    while clock.now() < until {
        tokio::time::sleep(step).await;
        sink.advance(clock.now()).await.unwrap();
    }
}

/// The one-second window of `at`, as the pipeline stamps batches.
pub fn stamp(at: OffsetDateTime) -> WindowMeta {
    WindowMeta::instant("air_temperature", at)
}

impl Recorder<Reading> {
    /// Sequence numbers of every accepted reading, in arrival order.
    pub fn seqs(&self) -> Vec<u64> {
        let state = self.state.lock().unwrap();
        state
            .delivered
            .iter()
            .flat_map(|(_, rs)| rs.iter().map(|r| r.seq))
            .collect()
    }
}
