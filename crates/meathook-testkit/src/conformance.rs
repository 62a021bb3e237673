//! A conformance suite for [`Sink`] implementations, ours and users'.
//!
//! Implement [`SinkHarness`] for a sink — how to make a fresh one, how to read
//! back what it delivered, which records it takes and which it rejects on its
//! own — and call [`check`] from a test. It panics, naming the broken rule,
//! when the sink breaks one of these rules of the `Sink` contract:
//!
//! - **`Err` hands every record back**: a refused batch comes back whole in
//!   the [`IngestError`], and nothing of it is delivered; a batch source that
//!   fails half-way delivers nothing either.
//! - **`Receipt` indices hold across chunks**: a record rejected in the
//!   second chunk of [`Sink::ingest_chunks`] is reported at its index in the
//!   whole batch, as [`Sink::ingest`] would report it.
//! - **`ingest_chunks` ≡ `ingest`**: the same batch, offered whole or in
//!   chunks, delivers the same records with the same receipt.
//! - **A replay is a no-op at a terminal sink**: a batch offered again with
//!   the same identity ([`WindowMeta::with_batch`]) is delivered once.
//! - **`observe` adds**: figures that add up across layers are added to what
//!   `stats` already holds, `utilisation` only rises and
//!   `oldest_undelivered` only falls; nothing a layer above put there is
//!   overwritten.
//!
//! [`Recorder`] is an inner sink for layers (a tier, a spool) that keeps
//! what reaches it.
//!
//! # Examples
//!
//! ```
//! use std::convert::Infallible;
//! use meathook_core::{FlushPolicy, Buffered};
//! use meathook_testkit::conformance::{self, Recorder, SinkHarness};
//!
//! struct Tier;
//!
//! impl SinkHarness<u64> for Tier {
//!     type Sink = Buffered<Recorder<u64>, u64>;
//!     type Destination = Recorder<u64>;
//!
//!     async fn sink(&mut self) -> (Self::Sink, Recorder<u64>) {
//!         let below = Recorder::new();
//!         (Buffered::new(below.clone(), FlushPolicy::hourly()), below)
//!     }
//!
//!     async fn delivered(&mut self, below: &Recorder<u64>) -> Vec<u64> {
//!         below.records()
//!     }
//!
//!     fn record(&mut self, i: usize) -> u64 {
//!         i as u64
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let report = conformance::check(&mut Tier).await;
//! assert!(report.skipped().contains(&"replay"), "{report:?}");
//! # });
//! ```

use std::convert::Infallible;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meathook_core::{
    BatchId, ChunkedError, IngestError, Receipt, RecordChunks, Sink, StackStats, WindowMeta,
};
use time::OffsetDateTime;
use time::macros::datetime;

/// What the suite needs to know of a sink.
///
/// The suite awaits these futures in place, on the test's own runtime, so
/// they need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait SinkHarness<R> {
    /// The sink under test.
    type Sink: Sink<R>;
    /// What [`delivered`](Self::delivered) reads from: a directory, a
    /// recording inner sink, a fake server's log.
    type Destination;

    /// A fresh sink over a fresh, empty destination. The suite opens it.
    async fn sink(&mut self) -> (Self::Sink, Self::Destination);

    /// A fresh sink whose every `ingest` is refused with `Err` (an unwritable
    /// destination, a full disk, a capacity below the suite's batches of
    /// ten), or `None` if there is no way to make one: the check that `Err`
    /// hands the records back is then skipped.
    ///
    /// By default, this returns `None`.
    async fn refusing_sink(&mut self) -> Option<(Self::Sink, Self::Destination)> {
        None
    }

    /// Every record delivered to `destination` so far, in any order. The
    /// suite calls it after a successful `flush`.
    async fn delivered(&mut self, destination: &Self::Destination) -> Vec<R>;

    /// The `i`-th record of the suite's batches: distinct `i`, distinct
    /// records, all of which the sink accepts.
    fn record(&mut self, i: usize) -> R;

    /// A record, distinct for each `i`, that the sink rejects on its own
    /// (listed in the [`Receipt`]) while it accepts the rest of the batch,
    /// or `None` if it rejects no record alone.
    ///
    /// By default, this returns `None`.
    fn rejected_record(&mut self, i: usize) -> Option<R> {
        let _ = i;
        None
    }

    /// Whether the sink delivers to the destination itself (a file sink, a
    /// dataset sink), so that a replayed batch must be a no-op. Layers that
    /// hold records for a layer below (a tier, a spool) are not terminal.
    ///
    /// By default, this returns `false`.
    fn is_terminal(&self) -> bool {
        false
    }
}

/// The checks the suite ran and the ones it skipped, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    ran: Vec<&'static str>,
    skipped: Vec<&'static str>,
}

impl Report {
    /// The checks that ran (and passed: a failure panics).
    pub fn ran(&self) -> &[&'static str] {
        &self.ran
    }

    /// The checks the harness gave no means to run: `refusal` without a
    /// refusing sink, `replay` for a sink that is not terminal.
    pub fn skipped(&self) -> &[&'static str] {
        &self.skipped
    }
}

/// Runs every check against sinks from `harness`; panics naming the first
/// rule broken.
pub async fn check<R, H>(harness: &mut H) -> Report
where
    R: Clone + PartialEq + Debug + Send + 'static,
    H: SinkHarness<R>,
{
    let mut report = Report::default();
    if refusal_hands_every_record_back(harness).await {
        report.ran.push("refusal");
    } else {
        report.skipped.push("refusal");
    }
    failed_source_delivers_nothing(harness).await;
    report.ran.push("failed source");
    receipt_indices_hold_across_chunks(harness).await;
    report.ran.push("receipt indices");
    chunks_deliver_what_ingest_delivers(harness).await;
    report.ran.push("chunks as ingest");
    if replay_is_a_no_op(harness).await {
        report.ran.push("replay");
    } else {
        report.skipped.push("replay");
    }
    observe_adds(harness).await;
    report.ran.push("observe adds");
    report
}

/// The window the suite's batches are collected in, as a pipeline stamps it.
pub fn window() -> WindowMeta {
    WindowMeta::instant("conformance", datetime!(2026-11-23 10:56:07 UTC))
}

/// The suite's batch: `len` records, with rejected records at `bad` (when
/// the harness has them). Returns the batch and the records a sink keeps.
fn batch<R, H>(
    harness: &mut H,
    first: usize,
    len: usize,
    bad: &[usize],
) -> (Vec<R>, Vec<R>, Vec<usize>)
where
    H: SinkHarness<R>,
    R: Clone,
{
    let mut records = Vec::with_capacity(len);
    let mut kept = Vec::new();
    let mut rejected = Vec::new();
    for i in 0..len {
        let bad_one = if bad.contains(&i) {
            harness.rejected_record(first + i)
        } else {
            None
        };
        match bad_one {
            Some(r) => {
                rejected.push(i);
                records.push(r);
            }
            None => {
                let r = harness.record(first + i);
                kept.push(r.clone());
                records.push(r);
            }
        }
    }
    (records, kept, rejected)
}

async fn fresh<R, H: SinkHarness<R>>(harness: &mut H) -> (H::Sink, H::Destination) {
    let (mut sink, destination) = harness.sink().await;
    if let Err(e) = sink.open().await {
        panic!("open failed on a fresh sink: {e}");
    }
    (sink, destination)
}

async fn flushed<R, H: SinkHarness<R>>(
    harness: &mut H,
    sink: &mut H::Sink,
    destination: &H::Destination,
) -> Vec<R> {
    if let Err(e) = sink.flush().await {
        panic!("flush failed: {e}");
    }
    harness.delivered(destination).await
}

/// Whether `a` and `b` hold the same records, in any order.
fn same_records<R: PartialEq>(a: &[R], b: &[R]) -> bool {
    let mut left: Vec<&R> = b.iter().collect();
    a.len() == b.len()
        && a.iter().all(|r| match left.iter().position(|l| *l == r) {
            Some(i) => {
                left.swap_remove(i);
                true
            }
            None => false,
        })
}

fn indices<E>(receipt: &Receipt<E>) -> Vec<usize> {
    let mut i: Vec<usize> = receipt.rejected().iter().map(|r| r.index).collect();
    i.sort_unstable();
    i
}

/// Chunks of a batch, offered one at a time; fails instead of yielding the
/// chunk at `fail_at`.
#[derive(Debug)]
pub struct Chunks<R> {
    chunks: Vec<Vec<R>>,
    fail_at: Option<usize>,
    next: usize,
}

impl<R> Chunks<R> {
    /// `records` cut into chunks of the given sizes (the last chunk takes
    /// what is left).
    pub fn new(mut records: Vec<R>, sizes: &[usize]) -> Self {
        let mut chunks = Vec::new();
        for &size in sizes {
            let rest = records.split_off(size.min(records.len()));
            chunks.push(std::mem::replace(&mut records, rest));
        }
        if !records.is_empty() {
            chunks.push(records);
        }
        Self {
            chunks,
            fail_at: None,
            next: 0,
        }
    }

    /// The same chunks, with a read failure in place of chunk `index`.
    pub fn with_failure_at(mut self, index: usize) -> Self {
        self.fail_at = Some(index);
        self
    }
}

/// A read failure of [`Chunks`].
#[derive(Debug, PartialEq, Eq)]
pub struct Unreadable(pub usize);

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "chunk {} could not be read", self.0)
    }
}

impl std::error::Error for Unreadable {}

impl<R: Send> RecordChunks<R> for Chunks<R> {
    type Error = Unreadable;

    async fn next_chunk(&mut self) -> Result<Option<Vec<R>>, Unreadable> {
        if self.fail_at == Some(self.next) {
            return Err(Unreadable(self.next));
        }
        if self.next >= self.chunks.len() {
            return Ok(None);
        }
        self.next += 1;
        Ok(Some(std::mem::take(&mut self.chunks[self.next - 1])))
    }
}

/// `Err` from `ingest` hands every record back, and nothing of the batch is
/// delivered. Returns `false` if the harness has no refusing sink.
pub async fn refusal_hands_every_record_back<R, H>(harness: &mut H) -> bool
where
    R: Clone + PartialEq + Debug + Send + 'static,
    H: SinkHarness<R>,
{
    let Some((mut sink, destination)) = harness.refusing_sink().await else {
        return false;
    };
    // A refusing sink may refuse to open too; the batch is refused either way.
    let _ = sink.open().await;
    let (records, _, _) = batch(harness, 0, 10, &[3]);
    let back = match sink.ingest(&window(), records.clone()).await {
        Ok(receipt) => panic!(
            "the refusing sink accepted the batch ({} records): make refusing_sink refuse",
            receipt.accepted()
        ),
        Err(e) => e.into_records(),
    };
    assert!(
        same_records(&back, &records),
        "Err must hand every record back: offered {records:?}, handed back {back:?}"
    );
    let chunked = sink
        .ingest_chunks(&window(), Chunks::new(records.clone(), &[4, 4]))
        .await;
    assert!(
        matches!(chunked, Err(ChunkedError::Sink(_))),
        "the refusing sink accepted the batch in chunks: {chunked:?}"
    );
    // Whatever the flush says, nothing of a refused batch may arrive.
    let _ = sink.flush().await;
    let delivered = harness.delivered(&destination).await;
    assert!(
        delivered.is_empty(),
        "a refused batch must deliver nothing, but {delivered:?} arrived"
    );
    true
}

/// A batch whose source fails half-way is refused with the source's error
/// and delivers nothing.
pub async fn failed_source_delivers_nothing<R, H>(harness: &mut H)
where
    R: Clone + PartialEq + Debug + Send + 'static,
    H: SinkHarness<R>,
{
    let (mut sink, destination) = fresh(harness).await;
    let (records, _, _) = batch(harness, 100, 9, &[]);
    let result = sink
        .ingest_chunks(&window(), Chunks::new(records, &[3, 3]).with_failure_at(2))
        .await;
    match result {
        Err(ChunkedError::Source(Unreadable(2))) => {}
        other => {
            panic!("a failed read of chunk 2 must come back as the source's error, got {other:?}")
        }
    }
    let delivered = flushed(harness, &mut sink, &destination).await;
    assert!(
        delivered.is_empty(),
        "a batch whose source failed must deliver nothing, but {delivered:?} arrived"
    );
}

/// Rejected records are reported at their index in the whole batch, whole
/// or in chunks, and everything else is delivered.
pub async fn receipt_indices_hold_across_chunks<R, H>(harness: &mut H)
where
    R: Clone + PartialEq + Debug + Send + 'static,
    H: SinkHarness<R>,
{
    // Rejected records in the first, second and last chunk, and at a chunk's
    // first place.
    let (records, kept, bad) = batch(harness, 200, 10, &[1, 4, 5, 9]);
    let (mut sink, destination) = fresh(harness).await;
    let receipt = match sink
        .ingest_chunks(&window(), Chunks::new(records, &[3, 2, 0, 3]))
        .await
    {
        Ok(receipt) => receipt,
        Err(e) => panic!("ingest_chunks failed: {e}"),
    };
    assert_eq!(
        indices(&receipt),
        bad,
        "rejected records must be reported at their index in the whole batch"
    );
    assert_eq!(
        receipt.accepted(),
        kept.len(),
        "every record not rejected is accepted"
    );
    let delivered = flushed(harness, &mut sink, &destination).await;
    assert!(
        same_records(&delivered, &kept),
        "the accepted records must be delivered: expected {kept:?}, got {delivered:?}"
    );
}

/// The same batch, whole through `ingest` or in chunks through
/// `ingest_chunks`, gives the same receipt and delivers the same records.
pub async fn chunks_deliver_what_ingest_delivers<R, H>(harness: &mut H)
where
    R: Clone + PartialEq + Debug + Send + 'static,
    H: SinkHarness<R>,
{
    let (records, kept, bad) = batch(harness, 300, 12, &[0, 7]);
    let (mut whole, whole_at) = fresh(harness).await;
    let receipt = match whole.ingest(&window(), records.clone()).await {
        Ok(receipt) => receipt,
        Err(e) => panic!("ingest failed: {e}"),
    };
    let (mut chunked, chunked_at) = fresh(harness).await;
    let chunked_receipt = match chunked
        .ingest_chunks(&window(), Chunks::new(records, &[5, 1, 5]))
        .await
    {
        Ok(receipt) => receipt,
        Err(e) => panic!("ingest_chunks failed: {e}"),
    };
    assert_eq!(indices(&receipt), bad, "ingest's rejected indices");
    assert_eq!(
        indices(&chunked_receipt),
        indices(&receipt),
        "ingest_chunks must reject what ingest rejects"
    );
    assert_eq!(chunked_receipt.accepted(), receipt.accepted());
    let by_ingest = flushed(harness, &mut whole, &whole_at).await;
    let by_chunks = flushed(harness, &mut chunked, &chunked_at).await;
    assert!(
        same_records(&by_ingest, &kept),
        "ingest must deliver the accepted records: expected {kept:?}, got {by_ingest:?}"
    );
    assert!(
        same_records(&by_chunks, &by_ingest),
        "ingest_chunks must deliver what ingest delivers: {by_chunks:?} against {by_ingest:?}"
    );
}

/// At a terminal sink, a batch offered again with the same identity, whole
/// or in chunks, is delivered once. Returns `false` for a sink that is not
/// terminal.
pub async fn replay_is_a_no_op<R, H>(harness: &mut H) -> bool
where
    R: Clone + PartialEq + Debug + Send + 'static,
    H: SinkHarness<R>,
{
    if !harness.is_terminal() {
        return false;
    }
    let window = WindowMeta::containing(
        "conformance",
        datetime!(2026-11-23 10:56:07 UTC),
        Duration::from_secs(3600),
    )
    .with_batch(BatchId::new(0x5eed, 400, 409));
    let (records, kept, _) = batch(harness, 400, 10, &[]);
    let (mut sink, destination) = fresh(harness).await;
    for attempt in 0..3 {
        let result = if attempt == 2 {
            sink.ingest_chunks(&window, Chunks::new(records.clone(), &[4]))
                .await
                .map(|r| r.accepted())
                .map_err(|e| e.to_string())
        } else {
            sink.ingest(&window, records.clone())
                .await
                .map(|r| r.accepted())
                .map_err(|e| e.to_string())
        };
        match result {
            Ok(accepted) => assert_eq!(accepted, records.len(), "attempt {attempt}"),
            Err(e) => panic!("offering batch {window:?} again (attempt {attempt}) failed: {e}"),
        }
    }
    let delivered = flushed(harness, &mut sink, &destination).await;
    assert!(
        same_records(&delivered, &kept),
        "a batch offered three times with one identity must be delivered once: expected \
         {kept:?}, got {delivered:?}"
    );
    true
}

/// The figures that add up across layers, by name.
fn additive(stats: &StackStats) -> [(&'static str, u64); 7] {
    [
        ("held_records", stats.held_records),
        ("held_bytes", stats.held_bytes),
        ("spooled_bytes", stats.spooled_bytes),
        ("rejected_records", stats.rejected_records),
        ("dropped_records", stats.dropped_records),
        ("quarantined_records", stats.quarantined_records),
        ("dead_lettered_records", stats.dead_lettered_records),
    ]
}

/// What a layer above has already put in `stats`.
fn from_above(oldest: OffsetDateTime, utilisation: f64) -> StackStats {
    let mut stats = StackStats::default();
    stats.held_records = 1000;
    stats.held_bytes = 1001;
    stats.spooled_bytes = 1002;
    stats.rejected_records = 1003;
    stats.dropped_records = 1004;
    stats.quarantined_records = 1005;
    stats.dead_lettered_records = 1006;
    stats.utilisation = utilisation;
    stats.oldest_undelivered = Some(oldest);
    stats
}

/// `observe` adds to what `stats` holds: additive figures grow by the
/// layer's own, `utilisation` only rises, `oldest_undelivered` only falls.
pub async fn observe_adds<R, H>(harness: &mut H)
where
    R: Clone + PartialEq + Debug + Send + 'static,
    H: SinkHarness<R>,
{
    let (mut sink, _destination) = fresh(harness).await;
    // Something held (for a layer that holds) and something rejected.
    let (records, _, _) = batch(harness, 500, 10, &[2]);
    if let Err(e) = sink.ingest(&window(), records).await {
        panic!("ingest failed: {e}");
    }
    // A layer with a worker may change its figures between two calls: compare
    // calls that saw the same figures.
    let early = datetime!(1971-01-01 0:00 UTC);
    let late = datetime!(9000-01-01 0:00 UTC);
    for attempt in 0.. {
        let mut own = StackStats::default();
        sink.observe(&mut own);
        let mut low = from_above(early, 0.0);
        sink.observe(&mut low);
        let mut high = from_above(late, 1.0);
        sink.observe(&mut high);
        let mut again = StackStats::default();
        sink.observe(&mut again);
        if own != again {
            assert!(attempt < 100, "the sink's figures never settled");
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let above = from_above(early, 0.0);
        for (((name, mine), (_, was)), (_, now)) in additive(&own)
            .into_iter()
            .zip(additive(&above))
            .zip(additive(&low))
        {
            assert_eq!(
                now,
                was + mine,
                "observe must add its {name} ({mine}) to the {was} already there, not overwrite it"
            );
        }
        assert!(
            (low.utilisation - own.utilisation.max(0.0)).abs() < 1e-9,
            "utilisation must be the fullest layer's: {} over 0.0 gave {}",
            own.utilisation,
            low.utilisation
        );
        assert!(
            (high.utilisation - 1.0).abs() < 1e-9,
            "utilisation must not fall: 1.0 became {}",
            high.utilisation
        );
        assert_eq!(
            low.oldest_undelivered,
            Some(early),
            "oldest_undelivered must not rise above what is there"
        );
        let expected = own.oldest_undelivered.map_or(late, |o| o.min(late));
        assert_eq!(
            high.oldest_undelivered,
            Some(expected),
            "oldest_undelivered must be the oldest of any layer"
        );
        break;
    }
}

/// An inner sink that keeps every record that reaches it, for testing layers
/// that deliver to a layer below. Clones share what was kept.
#[derive(Debug)]
pub struct Recorder<R> {
    kept: Arc<Mutex<Vec<Batch<R>>>>,
}

/// A batch a [`Recorder`] kept, with its window.
type Batch<R> = (WindowMeta, Vec<R>);

impl<R> Clone for Recorder<R> {
    fn clone(&self) -> Self {
        Self {
            kept: Arc::clone(&self.kept),
        }
    }
}

impl<R> Default for Recorder<R> {
    fn default() -> Self {
        Self {
            kept: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

impl<R: Clone> Recorder<R> {
    /// A recorder that has kept nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every record kept, in arrival order.
    pub fn records(&self) -> Vec<R> {
        self.batches().into_iter().flat_map(|(_, r)| r).collect()
    }

    /// Every batch kept, with its window, in arrival order.
    pub fn batches(&self) -> Vec<Batch<R>> {
        match self.kept.lock() {
            Ok(kept) => kept.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl<R: Send> Sink<R> for Recorder<R> {
    type Error = Infallible;

    async fn ingest(
        &mut self,
        window: &WindowMeta,
        records: Vec<R>,
    ) -> Result<Receipt<Infallible>, IngestError<R, Infallible>> {
        let count = records.len();
        if count > 0 {
            let mut kept = match self.kept.lock() {
                Ok(kept) => kept,
                Err(poisoned) => poisoned.into_inner(),
            };
            kept.push((window.clone(), records));
        }
        Ok(Receipt::all(count))
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}
