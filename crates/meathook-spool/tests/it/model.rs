//! The model test: random sequences of ingest, advance, flush, restart,
//! crash (dropping unsynced bytes, or keeping a torn prefix of them), fsync,
//! rename, delete and disk-full faults, a lost `sequence` file (a fresh
//! spool) and inner-sink outages, run against the real spool on the
//! simulated filesystem. Segments are small, so appends seal them too. The
//! model is a list of acknowledged records; the destination behaves like a
//! terminal sink, which keeps one file per batch identity: a replay of the
//! same identity with the same records is a no-op, with other records a
//! conflict.
//!
//! Checked at the end, after faults clear and everything is delivered:
//! - under `EveryIngest`, every acknowledged record is delivered;
//! - nothing is delivered that was never acknowledged, and nothing twice
//!   (under two batch identities);
//! - no batch identity is delivered twice with different records;
//! - every record arrives in the window it was filed under;
//! - within a window, records arrive in the order they were acknowledged.
//!
//! The same properties hold for several spools on one filesystem sharing a
//! writer thread: their batches arrive together, so one filesystem sync
//! commits several of them, and a failed one fails each of them (each spool
//! abandons its segment); a crash takes every spool down at once.
//!
//! `MEATHOOK_MODEL_CASES` sets the number of cases (CI runs a few dozen;
//! `cargo xtask soak` runs thousands).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)] // tests; small fixed sizes

use crate::support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use meathook_core::{BatchId, Sink, WindowMeta};
use meathook_spool::{DiskSpool, Durability, WriterPool};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use support::simfs::SimFs;
use support::{Mode, Recorder, T0, hourly, quick_backoff};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct Rec {
    id: u64,
    hour: i64,
}

#[derive(Debug, Clone)]
enum Op {
    /// A batch of `n` records, `late` hours before the current one.
    Ingest {
        n: u8,
        late: u8,
    },
    /// Time moves on by this many minutes.
    Advance(u16),
    Flush,
    Restart,
    /// A crash; unsynced bytes kept: none, or this fraction (per 256).
    Crash(Option<u8>),
    FailSyncs(u8),
    FailWritesAfter(u16),
    /// The next renames fail (seals, abandons).
    FailRenames(u8),
    /// The next deletes fail: delivered segments stay, as after a kill
    /// between the upload and the delete.
    FailRemoves(u8),
    /// After `skip` directory syncs, the next `n` fail: renames and creates
    /// that a crash undoes.
    FailDirSyncs {
        skip: u8,
        n: u8,
    },
    /// The `sequence` file is lost: the next run starts numbering again
    /// above the segments it finds.
    LoseSequence,
    Heal,
    InnerDown,
    InnerUp,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1u8..6, prop_oneof![6 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)]).prop_map(|(n, late)| Op::Ingest { n, late }),
        3 => (1u16..150).prop_map(Op::Advance),
        1 => Just(Op::Flush),
        1 => Just(Op::Restart),
        2 => proptest::option::of(any::<u8>()).prop_map(Op::Crash),
        1 => (1u8..3).prop_map(Op::FailSyncs),
        1 => (0u16..400).prop_map(Op::FailWritesAfter),
        1 => (1u8..3).prop_map(Op::FailRenames),
        1 => (1u8..3).prop_map(Op::FailRemoves),
        1 => (0u8..4, 1u8..3).prop_map(|(skip, n)| Op::FailDirSyncs { skip, n }),
        1 => Just(Op::LoseSequence),
        1 => Just(Op::Heal),
        1 => Just(Op::InnerDown),
        1 => Just(Op::InnerUp),
    ]
}

type Spool = DiskSpool<Recorder<Rec>, Rec, SimFs>;

/// Spool `p` of several sharing `pool`, durable at every ingest.
fn shared_spool(fs: &SimFs, out: &Recorder<Rec>, pool: &WriterPool, p: u64) -> Spool {
    // Tens of spools deliver at once on one thread: a flush may wait for
    // the others' reads (these tests are about what is written, not when).
    new_spool_in(
        fs,
        out,
        Durability::EveryIngest,
        &format!("/spool/p{p}"),
        Some(pool),
    )
    .with_flush_deadline(Duration::from_secs(10))
}

fn new_spool_in(
    fs: &SimFs,
    out: &Recorder<Rec>,
    durability: Durability,
    dir: &str,
    pool: Option<&WriterPool>,
) -> Spool {
    let spool = DiskSpool::new(out.clone(), dir, hourly());
    let spool = match pool {
        Some(pool) => spool.with_writer_pool(pool.clone()),
        None => spool,
    };
    spool
        .with_fs(fs.clone())
        .with_durability(durability)
        .with_backoff(quick_backoff())
        .with_flush_deadline(Duration::from_millis(40))
        .with_min_free_bytes(0)
        .with_max_segment_bytes(SEGMENT_BYTES)
}

/// Small enough that a few batches fill a segment, so that appends seal.
const SEGMENT_BYTES: u64 = 360;

async fn run(ops: Vec<Op>, strict: bool) -> Result<(), TestCaseError> {
    let durability = if strict {
        Durability::EveryIngest
    } else {
        Durability::Os
    };
    run_with(ops, durability).await
}

/// Under `EveryIngest` every acknowledged record must arrive; under the
/// weaker modes only that nothing arrives twice or unacknowledged.
async fn run_with(ops: Vec<Op>, durability: Durability) -> Result<(), TestCaseError> {
    run_shared(ops, durability, 1).await
}

/// [`run_with`] for `pipelines` spools on one filesystem, sharing one
/// writer thread; every op applies to all of them, ingests concurrently.
async fn run_shared(
    ops: Vec<Op>,
    durability: Durability,
    pipelines: usize,
) -> Result<(), TestCaseError> {
    let strict = durability == Durability::EveryIngest;
    let fs = SimFs::default();
    let pool = (pipelines > 1).then(|| WriterPool::new(1).unwrap());
    let outs: Vec<Recorder<Rec>> = (0..pipelines).map(|_| Recorder::default()).collect();
    let dirs: Vec<String> = (0..pipelines)
        .map(|p| {
            if pipelines == 1 {
                "/spool".to_owned()
            } else {
                format!("/spool/p{p}")
            }
        })
        .collect();
    let open = |p: usize| new_spool_in(&fs, &outs[p], durability, &dirs[p], pool.as_ref());
    let mut spools: Vec<Spool> = (0..pipelines).map(open).collect();
    let mut acked: Vec<Vec<Rec>> = vec![Vec::new(); pipelines];
    let mut next_id = 0u64;
    let mut minutes: i64 = 0;
    for op in ops {
        match op {
            Op::Ingest { n, late } => {
                let hour = (minutes / 60 - i64::from(late)).max(0);
                let window = WindowMeta::instant(
                    "model",
                    T0 + time::Duration::hours(hour) + time::Duration::seconds(i64::from(n)),
                );
                let mut tasks = Vec::new();
                for mut spool in spools.drain(..) {
                    let batch: Vec<Rec> = (0..u64::from(n))
                        .map(|i| Rec {
                            id: next_id + i,
                            hour,
                        })
                        .collect();
                    next_id += u64::from(n);
                    let window = window.clone();
                    tasks.push(tokio::spawn(async move {
                        let receipt = spool.ingest(&window, batch.clone()).await;
                        let acked = receipt.ok().map(|r| (r.accepted(), batch));
                        (spool, acked)
                    }));
                }
                for (p, task) in tasks.into_iter().enumerate() {
                    let (spool, outcome) = task.await.unwrap();
                    spools.push(spool);
                    if let Some((accepted, batch)) = outcome {
                        prop_assert_eq!(accepted, batch.len());
                        acked[p].extend(batch);
                    }
                }
            }
            Op::Advance(m) => {
                minutes += i64::from(m);
                for spool in &mut spools {
                    let _ = spool.advance(T0 + time::Duration::minutes(minutes)).await;
                }
            }
            Op::Flush => {
                for spool in &mut spools {
                    let _ = spool.flush().await;
                }
            }
            Op::Restart | Op::Crash(_) | Op::LoseSequence => {
                for spool in spools.drain(..) {
                    spool.close().await;
                }
                match op {
                    Op::Crash(torn) => {
                        fs.crash(|extra| torn.map_or(0, |t| extra * usize::from(t) / 256));
                    }
                    Op::LoseSequence => {
                        for dir in &dirs {
                            fs.delete(&std::path::Path::new(dir).join("sequence"));
                        }
                    }
                    _ => {}
                }
                spools = (0..pipelines).map(open).collect();
            }
            Op::FailSyncs(n) => fs.fail_next_syncs(u32::from(n)),
            Op::FailWritesAfter(b) => fs.fail_writes_after(usize::from(b)),
            Op::FailRenames(n) => fs.fail_next_renames(u32::from(n)),
            Op::FailRemoves(n) => fs.fail_next_removes(u32::from(n)),
            Op::FailDirSyncs { skip, n } => fs.fail_dir_syncs(u32::from(skip), u32::from(n)),
            Op::Heal => heal(&fs),
            Op::InnerDown => outs.iter().for_each(|o| o.set_mode(Mode::Transient)),
            Op::InnerUp => outs.iter().for_each(|o| o.set_mode(Mode::Accept)),
        }
    }
    // Faults clear, the destination comes back, one more start delivers all.
    heal(&fs);
    for spool in spools.drain(..) {
        spool.close().await;
    }
    for (p, out) in outs.iter().enumerate() {
        out.set_mode(Mode::Accept);
        let mut spool = open(p).with_flush_deadline(Duration::from_secs(20));
        spool
            .flush()
            .await
            .map_err(|e| TestCaseError::fail(format!("final flush of {}: {e}", dirs[p])))?;
        spool.close().await;
        check(out, &acked[p], strict)?;
    }
    Ok(())
}

/// What `out` received against what was acknowledged; see the module docs.
fn check(out: &Recorder<Rec>, acked: &[Rec], strict: bool) -> Result<(), TestCaseError> {
    let acked_ids: HashSet<u64> = acked.iter().map(|r| r.id).collect();
    let mut seen = HashSet::new();
    let mut per_window: HashMap<i64, Vec<u64>> = HashMap::new();
    let mut files: HashMap<(WindowMeta, BatchId), Vec<u64>> = HashMap::new();
    for (window, records) in out.batches() {
        let batch = window.batch.expect("delivered with a batch id");
        prop_assert_eq!(batch.last - batch.first + 1 >= records.len() as u64, true);
        prop_assert!(batch.incarnation.is_some(), "{} has no incarnation", window);
        let ids: Vec<u64> = records.iter().map(|r| r.id).collect();
        let mut path = window.clone();
        path.batch = None;
        if let Some(earlier) = files.get(&(path.clone(), batch)) {
            // A replay lands on the file it made before: a no-op if the
            // records are the same, a conflict (a lost file) if not.
            prop_assert_eq!(
                earlier,
                &ids,
                "batch {} of {} delivered again with other records",
                batch,
                window
            );
            continue;
        }
        files.insert((path, batch), ids);
        for r in records {
            prop_assert!(
                acked_ids.contains(&r.id),
                "record {} delivered but never acknowledged",
                r.id
            );
            prop_assert!(seen.insert(r.id), "record {} delivered twice", r.id);
            prop_assert_eq!(
                window.start,
                T0 + time::Duration::hours(r.hour),
                "record {} in another window",
                r.id
            );
            per_window.entry(r.hour).or_default().push(r.id);
        }
    }
    if strict {
        let missing: Vec<u64> = acked
            .iter()
            .map(|r| r.id)
            .filter(|id| !seen.contains(id))
            .collect();
        prop_assert!(
            missing.is_empty(),
            "acknowledged but never delivered: {:?}",
            missing
        );
    }
    // Ids are acknowledged in increasing order, so within a window they
    // must arrive increasing.
    for (hour, ids) in per_window {
        prop_assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "window {} out of order: {:?}",
            hour,
            ids
        );
    }
    Ok(())
}

fn heal(fs: &SimFs) {
    fs.fail_next_syncs(0);
    fs.heal_writes();
    fs.fail_next_renames(0);
    fs.fail_next_removes(0);
    fs.fail_dir_syncs(0, 0);
}

fn cases() -> u32 {
    std::env::var("MEATHOOK_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Two workers: the spools' tasks, their delivery workers and the writer
/// threads all run at once, as under the runtime.
fn multi_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn every_acknowledged_record_is_delivered_once_in_order_in_its_window(ops in prop::collection::vec(op(), 1..40)) {
        rt().block_on(run(ops, true))?;
    }

    #[test]
    fn without_fsync_nothing_unacknowledged_or_duplicated_is_delivered(ops in prop::collection::vec(op(), 1..30)) {
        rt().block_on(run(ops, false))?;
    }

    // Group commit: several open windows synced together, where a failed
    // sync abandons another window's segment in the middle of an append.
    #[test]
    fn with_group_commit_nothing_unacknowledged_or_duplicated_is_delivered(ops in prop::collection::vec(op(), 1..30)) {
        rt().block_on(run_with(ops, Durability::Interval(Duration::from_millis(1))))?;
    }

    // Four spools on one filesystem and one writer thread: their appends
    // are committed together by filesystem syncs.
    #[test]
    fn spools_sharing_a_writer_deliver_every_acknowledged_record_once(ops in prop::collection::vec(op(), 1..40)) {
        rt().block_on(run_shared(ops, Durability::EveryIngest, 4))?;
    }

    // The same two on a multi-threaded runtime, where ingests, deliveries
    // and rounds interleave in every order.
    #[test]
    fn on_a_multi_threaded_runtime_every_acknowledged_record_is_delivered_once(ops in prop::collection::vec(op(), 1..40)) {
        multi_rt().block_on(run(ops, true))?;
    }

    #[test]
    fn on_a_multi_threaded_runtime_spools_sharing_a_writer_deliver_every_acknowledged_record_once(ops in prop::collection::vec(op(), 1..40)) {
        multi_rt().block_on(run_shared(ops, Durability::EveryIngest, 4))?;
    }
}

/// Opens spools `0..spools` again, which recovers them, and delivers
/// what each holds.
async fn reopen_and_flush(open: impl Fn(u64) -> Spool, spools: u64) {
    for p in 0..spools {
        let mut spool = open(p);
        spool.flush().await.unwrap();
        spool.close().await;
    }
}

/// Every spool's records `p * 1000 + i`, `i < appends`, arrived once.
fn assert_each_once(out: &Recorder<Rec>, spools: u64, appends: u64) {
    let mut ids: Vec<u64> = out.records().into_iter().map(|r| r.id).collect();
    ids.sort_unstable();
    let expected: Vec<u64> = (0..spools)
        .flat_map(|p| (0..appends).map(move |i| p * 1000 + i))
        .collect();
    assert_eq!(ids, expected);
}

/// The shared path is really taken: concurrent appends of several spools
/// are committed by filesystem syncs, fewer than the appends, and a crash
/// right after keeps every acknowledged record of every spool.
#[test]
fn concurrent_appends_of_spools_sharing_a_writer_share_filesystem_syncs() {
    rt().block_on(async {
        let fs = SimFs::default();
        let pool = WriterPool::new(1).unwrap();
        let out = Recorder::<Rec>::default();
        let open = |p: u64| shared_spool(&fs, &out, &pool, p);
        let mut tasks = Vec::new();
        for p in 0..8 {
            let mut spool = open(p);
            tasks.push(tokio::spawn(async move {
                for i in 0..50 {
                    let window = WindowMeta::instant("model", T0);
                    let rec = Rec {
                        id: p * 1000 + i,
                        hour: 0,
                    };
                    spool.ingest(&window, vec![rec]).await.unwrap();
                }
                spool.close().await;
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let stats = pool.stats();
        assert_eq!(stats.commits, 400);
        assert!(stats.filesystem_syncs > 0, "{stats:?}");
        assert_eq!(fs.filesystem_syncs(), stats.filesystem_syncs);
        assert!(stats.syncs() < 400, "one sync per append: {stats:?}");
        fs.crash(|_| 0);
        reopen_and_flush(open, 8).await;
        assert_each_once(&out, 8, 50);
    });
}

/// Spools that commit at moments apart, as pipelines polling on a timer
/// do: with a commit interval, the thread syncs at most once an interval
/// however many spools commit (without one it would sync each append
/// alone), and a crash right after keeps every acknowledged record.
#[test]
fn a_commit_interval_bounds_the_syncs_of_spools_committing_apart() {
    const SPOOLS: u64 = 20;
    const APPENDS: u64 = 5;
    const INTERVAL: Duration = Duration::from_millis(50);
    rt().block_on(async {
        let fs = SimFs::default();
        let pool = WriterPool::new(1).unwrap().with_commit_interval(INTERVAL);
        let out = Recorder::<Rec>::default();
        let open = |p: u64| shared_spool(&fs, &out, &pool, p);
        let started = std::time::Instant::now();
        let mut tasks = Vec::new();
        for p in 0..SPOOLS {
            let mut spool = open(p);
            tasks.push(tokio::spawn(async move {
                // Each spool commits every 200 ms, 10 ms after the one before.
                tokio::time::sleep(Duration::from_millis(10 * p)).await;
                for i in 0..APPENDS {
                    let window = WindowMeta::instant("model", T0);
                    let rec = Rec {
                        id: p * 1000 + i,
                        hour: 0,
                    };
                    spool.ingest(&window, vec![rec]).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                spool.close().await;
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let elapsed = started.elapsed();
        let stats = pool.stats();
        assert_eq!(stats.commits, SPOOLS * APPENDS);
        // The first sync, then at most one an interval.
        let most = 1 + (elapsed.as_millis() / INTERVAL.as_millis()) as u64;
        assert!(
            stats.syncs() <= most,
            "{} syncs in {elapsed:?} with an interval of {INTERVAL:?}: {stats:?}",
            stats.syncs()
        );
        fs.crash(|_| 0);
        reopen_and_flush(open, SPOOLS).await;
        assert_each_once(&out, SPOOLS, APPENDS);
    });
}

/// Forty spools appending at once through a pool of two threads with a
/// budget of four open segment files: the segment files open at once stay
/// within twice the budget (settled files within the budget, plus each
/// thread's share of it in appends waiting for their commit), and every
/// record still arrives once.
#[test]
fn spools_sharing_a_writer_keep_within_the_open_file_budget() {
    const SPOOLS: u64 = 40;
    const APPENDS: u64 = 20;
    rt().block_on(async {
        let fs = SimFs::default();
        let pool = WriterPool::new(2).unwrap().with_max_open_files(4);
        let out = Recorder::<Rec>::default();
        let open = |p: u64| shared_spool(&fs, &out, &pool, p);
        let mut tasks = Vec::new();
        for p in 0..SPOOLS {
            let mut spool = open(p);
            tasks.push(tokio::spawn(async move {
                for i in 0..APPENDS {
                    let rec = Rec {
                        id: p * 1000 + i,
                        hour: 0,
                    };
                    let window = WindowMeta::instant("model", T0);
                    spool.ingest(&window, vec![rec]).await.unwrap();
                }
                spool
            }));
        }
        let mut spools = Vec::new();
        for task in tasks {
            spools.push(task.await.unwrap());
        }
        let most = fs.most_open_files();
        assert!(
            (1..=2 * 4).contains(&most),
            "{most} segment files open at once with a budget of 4"
        );
        for mut spool in spools {
            spool.flush().await.unwrap();
            spool.close().await;
        }
        assert_each_once(&out, SPOOLS, APPENDS);
    });
}

#[test]
fn regression_a_segment_abandoned_after_a_failed_fsync_is_delivered_before_the_next_one() {
    let ops = vec![
        Op::InnerDown,
        Op::Ingest { n: 1, late: 0 },
        Op::FailSyncs(1),
        Op::Ingest { n: 1, late: 0 },
        Op::Ingest { n: 1, late: 0 },
        Op::Advance(62),
        Op::Crash(None),
    ];
    rt().block_on(run(ops, true)).unwrap();
}

#[test]
fn regression_a_torn_tail_that_cannot_be_cut_keeps_its_place_in_line() {
    let ops = vec![
        Op::Ingest { n: 1, late: 0 },
        Op::FailSyncs(1),
        Op::Ingest { n: 1, late: 0 },
        Op::Ingest { n: 1, late: 0 },
        Op::Crash(Some(128)),
        Op::Ingest { n: 1, late: 0 },
        Op::Advance(60),
    ];
    rt().block_on(run(ops, false)).unwrap();
}

#[test]
fn regression_a_lock_taken_by_a_failed_open_is_released() {
    let ops = vec![Op::FailWritesAfter(0), Op::Ingest { n: 1, late: 0 }];
    rt().block_on(run(ops, true)).unwrap();
}

#[test]
fn regression_a_failed_seal_after_a_durable_append_acknowledges_the_batch() {
    // The append fills the segment; the seal's rename fails. The batch is
    // durable and will be delivered, so it must be acknowledged.
    let ops = vec![
        Op::Ingest { n: 3, late: 0 },
        Op::Ingest { n: 2, late: 0 },
        Op::Ingest { n: 3, late: 0 },
        Op::FailRenames(1),
        Op::Ingest { n: 5, late: 0 },
    ];
    rt().block_on(run(ops.clone(), true)).unwrap();
    rt().block_on(run(ops, false)).unwrap();
}

#[test]
fn regression_an_abandoned_segment_delivered_before_a_crash_is_not_continued() {
    // A failed fsync abandons the open segment; it is delivered while its
    // window is open; the delete fails (as if killed); after the restart the
    // next batch of the window must not be appended to it.
    let ops = vec![
        Op::Ingest { n: 1, late: 0 },
        Op::FailSyncs(1),
        Op::Ingest { n: 1, late: 0 },
        Op::FailRemoves(1),
        Op::Flush,
        Op::Crash(None),
        Op::Ingest { n: 1, late: 0 },
    ];
    rt().block_on(run(ops, true)).unwrap();
}

#[test]
fn regression_a_fresh_sequence_never_reuses_a_delivered_identity() {
    // A window of the previous hour is sealed and delivered under the
    // sequence range 0-0; the sequence file is lost; the next late record
    // for that window starts again at 0.
    let ops = vec![
        Op::Ingest { n: 1, late: 1 },
        Op::Advance(60),
        Op::Ingest { n: 4, late: 0 },
        Op::Ingest { n: 2, late: 0 },
        Op::Ingest { n: 2, late: 0 },
        Op::Ingest { n: 5, late: 0 },
        Op::LoseSequence,
        Op::Ingest { n: 1, late: 1 },
        Op::Ingest { n: 1, late: 0 },
    ];
    rt().block_on(run(ops, true)).unwrap();
}

#[test]
fn regression_a_seal_whose_rename_was_not_synced_is_never_continued() {
    // The seal's rename is not synced; after a crash the segment is `.open`
    // again with its seal frame inside, and must not be appended to.
    let ops = vec![
        Op::Ingest { n: 1, late: 0 },
        Op::FailDirSyncs { skip: 0, n: 1 },
        Op::Flush,
        Op::FailRemoves(1),
        Op::Crash(Some(0)),
        Op::Ingest { n: 1, late: 0 },
        Op::Ingest { n: 1, late: 0 },
    ];
    rt().block_on(run(ops.clone(), false)).unwrap();
    rt().block_on(run(ops, true)).unwrap();
}
