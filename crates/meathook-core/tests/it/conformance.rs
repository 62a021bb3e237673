//! The `Sink` conformance suite against the memory tier, alone and behind a
//! `BoxSink`, and against the fan-out.

use meathook_core::{BoxSink, Buffered, Capacity, FlushPolicy, Tee};
use meathook_testkit::conformance::{self, Recorder, SinkHarness};

/// A record with something on the heap, so that a lost or doubled record
/// shows.
#[derive(Debug, Clone, PartialEq)]
struct Reading {
    station: String,
    value: u64,
}

fn reading(i: usize) -> Reading {
    Reading {
        station: format!("S{:03}", i % 64),
        value: i as u64,
    }
}

/// `Buffered` over a recorder, hourly; the refusing one holds at most five
/// records, so the suite's batches of ten are too large for it.
struct Tier;

impl SinkHarness<Reading> for Tier {
    type Sink = Buffered<Recorder<Reading>, Reading>;
    type Destination = Recorder<Reading>;

    async fn sink(&mut self) -> (Self::Sink, Recorder<Reading>) {
        let below = Recorder::new();
        (Buffered::new(below.clone(), FlushPolicy::hourly()), below)
    }

    async fn refusing_sink(&mut self) -> Option<(Self::Sink, Recorder<Reading>)> {
        let below = Recorder::new();
        let tier =
            Buffered::new(below.clone(), FlushPolicy::hourly()).with_capacity(capacity_of_five());
        Some((tier, below))
    }

    async fn delivered(&mut self, below: &Recorder<Reading>) -> Vec<Reading> {
        below.records()
    }

    fn record(&mut self, i: usize) -> Reading {
        reading(i)
    }
}

#[tokio::test]
async fn buffered_conforms() {
    let report = conformance::check(&mut Tier).await;
    // A memory tier rejects no record alone and is not terminal.
    assert_eq!(report.skipped(), ["replay"]);
}

/// The same tier, erased.
struct Boxed(Tier);

impl SinkHarness<Reading> for Boxed {
    type Sink = BoxSink<Reading>;
    type Destination = Recorder<Reading>;

    async fn sink(&mut self) -> (Self::Sink, Recorder<Reading>) {
        let (tier, below) = self.0.sink().await;
        (BoxSink::new(tier), below)
    }

    async fn refusing_sink(&mut self) -> Option<(Self::Sink, Recorder<Reading>)> {
        let (tier, below) = self.0.refusing_sink().await?;
        Some((BoxSink::new(tier), below))
    }

    async fn delivered(&mut self, below: &Recorder<Reading>) -> Vec<Reading> {
        below.records()
    }

    fn record(&mut self, i: usize) -> Reading {
        reading(i)
    }
}

#[tokio::test]
async fn a_boxed_buffered_conforms() {
    let report = conformance::check(&mut Boxed(Tier)).await;
    assert_eq!(report.skipped(), ["replay"]);
}

/// `Tee` over two recorders; what it delivers is what reached both. The
/// refusing one may hold five records per branch.
struct FanOut;

type Pair = (Recorder<Reading>, Recorder<Reading>);

fn capacity_of_five() -> Capacity {
    Capacity {
        records: 5,
        bytes: 1 << 20,
    }
}

impl SinkHarness<Reading> for FanOut {
    type Sink = Tee<Recorder<Reading>, Recorder<Reading>, Reading>;
    type Destination = Pair;

    async fn sink(&mut self) -> (Self::Sink, Pair) {
        let (left, right) = (Recorder::new(), Recorder::new());
        (Tee::new(left.clone(), right.clone()), (left, right))
    }

    async fn refusing_sink(&mut self) -> Option<(Self::Sink, Pair)> {
        let (left, right) = (Recorder::new(), Recorder::new());
        let tee = Tee::new(left.clone(), right.clone()).with_capacity(capacity_of_five());
        Some((tee, (left, right)))
    }

    async fn delivered(&mut self, (left, right): &Pair) -> Vec<Reading> {
        let records = left.records();
        assert_eq!(records, right.records(), "both branches get every batch");
        records
    }

    fn record(&mut self, i: usize) -> Reading {
        reading(i)
    }
}

#[tokio::test]
async fn tee_conforms() {
    let report = conformance::check(&mut FanOut).await;
    assert_eq!(report.skipped(), ["replay"]);
}
