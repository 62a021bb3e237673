//! The model test: random sequences of ingest, advance, flush, restart,
//! crash (dropping unsynced bytes, or keeping a torn prefix of them), fsync
//! and disk-full faults and inner-sink outages, run against the real spool on
//! the simulated filesystem. The model is a list of acknowledged records.
//!
//! Checked at the end, after faults clear and everything is delivered:
//! - under `EveryIngest`, every acknowledged record is delivered;
//! - nothing is delivered that was never acknowledged, and nothing twice;
//! - every record arrives in the window it was filed under;
//! - within a window, records arrive in the order they were acknowledged.
//!
//! `MEATHOOK_MODEL_CASES` sets the number of cases (CI runs a few dozen;
//! `cargo xtask soak` runs thousands).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)] // tests; small fixed sizes

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use meathook_core::{Sink, WindowMeta};
use meathook_spool::{DiskSpool, Durability};
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
        1 => Just(Op::Heal),
        1 => Just(Op::InnerDown),
        1 => Just(Op::InnerUp),
    ]
}

type Spool = DiskSpool<Recorder<Rec>, Rec, SimFs>;

fn new_spool(fs: &SimFs, out: &Recorder<Rec>, durability: Durability) -> Spool {
    DiskSpool::new(out.clone(), "/spool", hourly())
        .with_fs(fs.clone())
        .with_durability(durability)
        .with_backoff(quick_backoff())
        .with_flush_deadline(Duration::from_millis(40))
        .with_min_free_bytes(0)
}

async fn run(ops: Vec<Op>, strict: bool) -> Result<(), TestCaseError> {
    let durability = if strict {
        Durability::EveryIngest
    } else {
        Durability::Os
    };
    let fs = SimFs::default();
    let out = Recorder::<Rec>::default();
    let mut spool = new_spool(&fs, &out, durability);
    let mut acked: Vec<Rec> = Vec::new();
    let mut next_id = 0u64;
    let mut minutes: i64 = 0;
    for op in ops {
        match op {
            Op::Ingest { n, late } => {
                let hour = (minutes / 60 - i64::from(late)).max(0);
                let batch: Vec<Rec> = (0..u64::from(n))
                    .map(|i| Rec {
                        id: next_id + i,
                        hour,
                    })
                    .collect();
                next_id += u64::from(n);
                let window = WindowMeta::instant(
                    "model",
                    T0 + time::Duration::hours(hour) + time::Duration::seconds(i64::from(n)),
                );
                if let Ok(receipt) = spool.ingest(&window, batch.clone()).await {
                    prop_assert_eq!(receipt.accepted(), batch.len());
                    acked.extend(batch);
                }
            }
            Op::Advance(m) => {
                minutes += i64::from(m);
                let _ = spool.advance(T0 + time::Duration::minutes(minutes)).await;
            }
            Op::Flush => {
                let _ = spool.flush().await;
            }
            Op::Restart => {
                spool.close().await;
                spool = new_spool(&fs, &out, durability);
            }
            Op::Crash(torn) => {
                spool.close().await;
                fs.crash(|extra| torn.map_or(0, |t| extra * usize::from(t) / 256));
                spool = new_spool(&fs, &out, durability);
            }
            Op::FailSyncs(n) => fs.fail_next_syncs(u32::from(n)),
            Op::FailWritesAfter(b) => fs.fail_writes_after(usize::from(b)),
            Op::Heal => {
                fs.fail_next_syncs(0);
                fs.heal_writes();
            }
            Op::InnerDown => out.set_mode(Mode::Transient),
            Op::InnerUp => out.set_mode(Mode::Accept),
        }
    }
    // Faults clear, the destination comes back, one more start delivers all.
    fs.fail_next_syncs(0);
    fs.heal_writes();
    out.set_mode(Mode::Accept);
    spool.close().await;
    let mut spool = new_spool(&fs, &out, durability).with_flush_deadline(Duration::from_secs(20));
    spool
        .flush()
        .await
        .map_err(|e| TestCaseError::fail(format!("final flush: {e}")))?;
    spool.close().await;

    let acked_ids: HashSet<u64> = acked.iter().map(|r| r.id).collect();
    let mut seen = HashSet::new();
    let mut per_window: HashMap<i64, Vec<u64>> = HashMap::new();
    for (window, records) in out.batches() {
        let batch = window.batch.expect("delivered with a batch id");
        prop_assert_eq!(batch.last - batch.first + 1 >= records.len() as u64, true);
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
}

// Sequences the model once found failing, kept as fixed cases.

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
