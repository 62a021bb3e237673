//! A scripted collector and a gated sink for runtime tests.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different part
#![allow(clippy::unwrap_used)] // a poisoned lock means a test already failed

pub mod promtool;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meathook_core::{Collector, IngestError, Receipt, Sink, SinkError, StackStats, WindowMeta};
use tokio::time::Instant;

/// What one poll does.
#[derive(Debug, Clone)]
pub enum Step {
    Records(Vec<u64>),
    Fail,
    RateLimited(Duration),
    Hang(Duration),
    Panic,
}

#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("scripted failure")]
    Failed,
    #[error("rate limited")]
    RateLimited(Duration),
}

/// Shared by a collector and the test: the steps to play and the poll times.
#[derive(Debug, Default)]
pub struct Script {
    steps: Mutex<VecDeque<Step>>,
    polls: Mutex<Vec<Instant>>,
    next: AtomicUsize,
}

impl Script {
    pub fn new(steps: impl IntoIterator<Item = Step>) -> Arc<Self> {
        Arc::new(Self {
            steps: Mutex::new(steps.into_iter().collect()),
            ..Self::default()
        })
    }

    pub fn polls(&self) -> Vec<Instant> {
        self.polls.lock().unwrap().clone()
    }
}

/// Plays its script; once the script is used up, each poll returns one new
/// record numbered from 1000.
#[derive(Debug, Clone)]
pub struct Scripted {
    pub name: &'static str,
    pub script: Arc<Script>,
}

impl Collector for Scripted {
    type Record = u64;
    type Error = ScriptError;

    fn name(&self) -> &str {
        self.name
    }

    async fn collect(&mut self) -> Result<Vec<u64>, ScriptError> {
        self.script.polls.lock().unwrap().push(Instant::now());
        let step = self.script.steps.lock().unwrap().pop_front();
        match step {
            Some(Step::Records(records)) => Ok(records),
            Some(Step::Fail) => Err(ScriptError::Failed),
            Some(Step::RateLimited(wait)) => Err(ScriptError::RateLimited(wait)),
            Some(Step::Hang(how_long)) => {
                tokio::time::sleep(how_long).await;
                Ok(Vec::new())
            }
            Some(Step::Panic) => panic!("scripted panic in {}", self.name),
            None => Ok(vec![
                1000 + self.script.next.fetch_add(1, Ordering::Relaxed) as u64,
            ]),
        }
    }

    fn error_kind(error: &ScriptError) -> &'static str {
        match error {
            ScriptError::Failed => "failed",
            ScriptError::RateLimited(_) => "rate_limited",
        }
    }

    fn retry_after(error: &ScriptError) -> Option<Duration> {
        match error {
            ScriptError::RateLimited(wait) => Some(*wait),
            ScriptError::Failed => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("gate closed")]
pub struct Closed;

impl SinkError for Closed {}

#[derive(Debug)]
struct GateState<R> {
    batches: Mutex<Vec<(WindowMeta, Vec<R>)>>,
    closed: AtomicBool,
    offers: AtomicUsize,
    advances: AtomicUsize,
    drained: AtomicBool,
}

/// A terminal sink that records batches, refuses while closed, and can be
/// slow.
#[derive(Debug)]
pub struct Gate<R = u64> {
    state: Arc<GateState<R>>,
    pub delay: Duration,
}

impl<R> Default for Gate<R> {
    fn default() -> Self {
        Self {
            state: Arc::new(GateState {
                batches: Mutex::new(Vec::new()),
                closed: AtomicBool::new(false),
                offers: AtomicUsize::new(0),
                advances: AtomicUsize::new(0),
                drained: AtomicBool::new(false),
            }),
            delay: Duration::ZERO,
        }
    }
}

impl<R> Clone for Gate<R> {
    fn clone(&self) -> Self {
        Self {
            state: Arc::clone(&self.state),
            delay: self.delay,
        }
    }
}

impl<R> Gate<R> {
    /// A gate that takes `delay` for every offer.
    pub fn slow(delay: Duration) -> Self {
        Self {
            delay,
            ..Self::default()
        }
    }
}

impl<R: Clone> Gate<R> {
    pub fn close(&self) {
        self.state.closed.store(true, Ordering::SeqCst);
    }

    pub fn open(&self) {
        self.state.closed.store(false, Ordering::SeqCst);
    }

    pub fn records(&self) -> Vec<R> {
        self.state
            .batches
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, r)| r.clone())
            .collect()
    }

    pub fn batches(&self) -> Vec<(WindowMeta, Vec<R>)> {
        self.state.batches.lock().unwrap().clone()
    }

    pub fn offers(&self) -> usize {
        self.state.offers.load(Ordering::SeqCst)
    }

    pub fn advances(&self) -> usize {
        self.state.advances.load(Ordering::SeqCst)
    }

    pub fn drained(&self) -> bool {
        self.state.drained.load(Ordering::SeqCst)
    }
}

impl<R: Send + Sync> Sink<R> for Gate<R> {
    type Error = Closed;

    async fn ingest(
        &mut self,
        window: &WindowMeta,
        records: Vec<R>,
    ) -> Result<Receipt<Closed>, IngestError<R, Closed>> {
        self.state.offers.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if self.state.closed.load(Ordering::SeqCst) {
            return Err(IngestError::new(records, Closed));
        }
        let n = records.len();
        self.state
            .batches
            .lock()
            .unwrap()
            .push((window.clone(), records));
        Ok(Receipt::all(n))
    }

    async fn advance(&mut self, _now: time::OffsetDateTime) -> Result<(), Closed> {
        self.state.advances.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Closed> {
        self.state.drained.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn observe(&self, _stats: &mut StackStats) {}
}

/// Seconds since `t0` of each instant.
pub fn offsets(t0: Instant, polls: &[Instant]) -> Vec<f64> {
    polls.iter().map(|p| (*p - t0).as_secs_f64()).collect()
}

/// The value of a metric sample line `name{labels} value` in OpenMetrics text.
pub fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

pub type NoError = Infallible;
