//! Shared by the spool's black-box tests: a recording inner sink that can be
//! told to refuse, a record type, and the simulated filesystem.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different part
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

pub mod simfs;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use meathook_core::{
    Backoff, ErrorClass, FlushPolicy, IngestError, Receipt, Sink, SinkError, WindowMeta,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::macros::datetime;

/// A reading, as the benchmark uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub station_id: String,
    pub timestamp: String,
    pub value: f64,
    pub unit: String,
}

pub fn reading(i: u64) -> Reading {
    Reading {
        station_id: format!("S{:03}", 100 + i % 64),
        timestamp: format!("2026-11-23T10:{:02}:{:02}Z", (i / 60) % 60, i % 60),
        value: 20.0 + (i as f64) * 0.25,
        unit: "deg C".into(),
    }
}

pub const T0: OffsetDateTime = datetime!(2026-11-23 10:00 UTC);
pub const HOUR: Duration = Duration::from_secs(3600);

/// The one-second window a pipeline stamps at `T0 + secs`.
pub fn at(secs: i64) -> WindowMeta {
    WindowMeta::instant("air", T0 + time::Duration::seconds(secs))
}

pub fn hourly() -> FlushPolicy {
    FlushPolicy::hourly()
}

/// Fast retries for tests.
pub fn quick_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(5), Duration::from_millis(40)).with_seed(1)
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("destination refused ({})", if *permanent { "permanently" } else { "for now" })]
pub struct Refused {
    pub permanent: bool,
}

impl SinkError for Refused {
    fn class(&self) -> ErrorClass {
        if self.permanent {
            ErrorClass::Permanent
        } else {
            ErrorClass::Transient
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Accept,
    Transient,
    Permanent,
}

#[derive(Debug)]
struct State<R> {
    delivered: Vec<(WindowMeta, Vec<R>)>,
    mode: Mode,
    attempts: usize,
    flushes: usize,
}

/// Records every accepted batch; refuses while told to.
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
                mode: Mode::Accept,
                attempts: 0,
                flushes: 0,
            })),
        }
    }
}

impl<R: Clone> Recorder<R> {
    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    pub fn attempts(&self) -> usize {
        self.state.lock().unwrap().attempts
    }

    pub fn batches(&self) -> Vec<(WindowMeta, Vec<R>)> {
        self.state.lock().unwrap().delivered.clone()
    }

    pub fn records(&self) -> Vec<R> {
        self.batches().into_iter().flat_map(|(_, r)| r).collect()
    }

    /// Waits (polling, bounded) until `n` records have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<R> {
        for _ in 0..2000 {
            let got = self.records();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("only {} of {n} records arrived", self.records().len());
    }
}

impl<R: Send + Clone> Sink<R> for Recorder<R> {
    type Error = Refused;

    async fn ingest(
        &mut self,
        window: &WindowMeta,
        records: Vec<R>,
    ) -> Result<Receipt<Refused>, IngestError<R, Refused>> {
        let mut s = self.state.lock().unwrap();
        s.attempts += 1;
        match s.mode {
            Mode::Accept => {
                let n = records.len();
                s.delivered.push((window.clone(), records));
                Ok(Receipt::all(n))
            }
            Mode::Transient => Err(IngestError::new(records, Refused { permanent: false })),
            Mode::Permanent => Err(IngestError::new(records, Refused { permanent: true })),
        }
    }

    async fn flush(&mut self) -> Result<(), Refused> {
        let mut s = self.state.lock().unwrap();
        s.flushes += 1;
        match s.mode {
            Mode::Accept => Ok(()),
            m => Err(Refused {
                permanent: m == Mode::Permanent,
            }),
        }
    }
}
