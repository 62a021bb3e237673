//! The spool's everyday behaviour: accept durably, deliver in the window
//! with a stable batch identity, reject bad records one by one, keep the
//! pipeline name in the file, refuse a second writer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)] // tests; small fixed sizes

use crate::support;

use std::time::Duration;

use meathook_core::{Drain, Sink};
use meathook_spool::{DiskSpool, SinkExt as _, SpoolError};
use serde::{Deserialize, Serialize, Serializer};
use support::{HOUR, Reading, Recorder, T0, at, hourly, quick_backoff, reading};

#[tokio::test]
async fn a_closed_window_is_delivered_in_order_with_its_batch_identity() {
    let dir = tempfile::tempdir().unwrap();
    let out = Recorder::<Reading>::default();
    let mut spool = out.clone().spooled(dir.path(), hourly());
    spool.open().await.unwrap();
    let mut expected = Vec::new();
    for b in 0..5u64 {
        let batch: Vec<Reading> = (b * 10..b * 10 + 10).map(reading).collect();
        expected.extend(batch.clone());
        let receipt = spool.ingest(&at(b as i64 * 60), batch).await.unwrap();
        assert_eq!(receipt.accepted(), 10);
    }
    // Nothing is delivered while the window is open.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(out.batches().is_empty());
    spool.advance(T0 + HOUR).await.unwrap();
    let got = out.wait_for(50).await;
    assert_eq!(got, expected);
    let (window, _) = &out.batches()[0];
    assert_eq!(&*window.pipeline, "air");
    assert_eq!((window.start, window.end), (T0, T0 + HOUR));
    let batch = window
        .batch
        .expect("a delivered segment carries its batch id");
    assert_eq!(batch.last - batch.first, 49);
    let stats = spool.stats().snapshot();
    assert_eq!(stats.records_appended, 50);
    assert_eq!(stats.delivered_records, 50);
    assert!(
        stats.fsyncs >= 5,
        "one fsync per ingest at least: {}",
        stats.fsyncs
    );
    // Delivered segments are deleted.
    for _ in 0..200 {
        if spool.stats().snapshot().segments_on_disk == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(spool.stats().snapshot().segments_on_disk, 0);
}

/// Serialises as a `Reading`, or fails when `fail` is set.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Touchy {
    value: f64,
    #[serde(default)]
    fail: bool,
}

impl Serialize for Touchy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.fail {
            return Err(serde::ser::Error::custom("this reading cannot be written"));
        }
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Touchy", 1)?;
        st.serialize_field("value", &self.value)?;
        st.end()
    }
}

#[tokio::test]
async fn a_record_that_fails_to_serialise_is_rejected_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = Recorder::<Touchy>::default();
    let mut spool = DiskSpool::new(out.clone(), dir.path(), hourly());
    let batch: Vec<Touchy> = (0..5)
        .map(|i| Touchy {
            value: f64::from(i),
            fail: i == 3,
        })
        .collect();
    let receipt = spool.ingest(&at(0), batch).await.unwrap();
    assert_eq!(receipt.accepted(), 4);
    assert_eq!(receipt.rejected().len(), 1);
    assert_eq!(receipt.rejected()[0].index, 3);
    let msg = receipt.rejected()[0].error.to_string();
    assert!(
        msg.contains("cannot be serialised") && msg.contains("this reading cannot be written"),
        "{msg}"
    );
    spool.flush().await.unwrap();
    let values: Vec<f64> = out.records().iter().map(|t| t.value).collect();
    assert_eq!(values, vec![0.0, 1.0, 2.0, 4.0]);
    assert_eq!(spool.stats().snapshot().rejected_records, 1);
}

#[tokio::test]
async fn a_record_over_the_maximum_is_rejected_and_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = Recorder::<String>::default();
    let mut spool = DiskSpool::new(out.clone(), dir.path(), hourly()).with_max_record_bytes(100);
    let batch = vec!["small".to_owned(), "x".repeat(500), "also small".to_owned()];
    let receipt = spool.ingest(&at(0), batch).await.unwrap();
    assert_eq!(receipt.accepted(), 2);
    assert!(
        matches!(receipt.rejected()[0].error, SpoolError::RecordTooLarge { size, max: 100, .. } if size > 500)
    );
    spool.flush().await.unwrap();
    assert_eq!(
        out.records(),
        vec!["small".to_owned(), "also small".to_owned()]
    );
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct V1 {
    station: String,
    value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct V2 {
    station: String,
    value: f64,
    quality: Option<u8>,
    nested: Option<Vec<(String, Option<i64>)>>,
}

#[tokio::test]
async fn old_segments_replay_after_an_optional_field_is_added_and_the_directory_moves() {
    let root = tempfile::tempdir().unwrap();
    let first = root.path().join("spool-a");
    {
        let mut old = DiskSpool::new(Recorder::<V1>::default(), &first, hourly())
            .with_keep_active_window(true);
        let values = [
            f64::NAN,
            f64::from_bits(0x7FF4_0000_0000_0001),
            f64::NEG_INFINITY,
            0.1 + 0.2,
            -0.0,
        ];
        let batch: Vec<V1> = values
            .iter()
            .map(|v| V1 {
                station: "Ünïcödé ☂ 雨".into(),
                value: *v,
            })
            .collect();
        old.ingest(&at(0), batch).await.unwrap();
        old.drain(Drain::KeepActiveWindow).await.unwrap();
        old.close().await;
    }
    // A moved directory: the pipeline name comes from the segment header.
    let second = root.path().join("renamed");
    std::fs::rename(&first, &second).unwrap();
    let out = Recorder::<V2>::default();
    let mut new = DiskSpool::new(out.clone(), &second, hourly());
    new.open().await.unwrap();
    assert_eq!(new.recovery_report().unwrap().records, 5);
    new.flush().await.unwrap();
    let got = out.batches();
    assert_eq!(&*got[0].0.pipeline, "air");
    let bits: Vec<u64> = got[0].1.iter().map(|r| r.value.to_bits()).collect();
    assert_eq!(
        bits,
        vec![
            f64::NAN.to_bits(),
            0x7FF4_0000_0000_0001,
            f64::NEG_INFINITY.to_bits(),
            (0.1f64 + 0.2).to_bits(),
            (-0.0f64).to_bits()
        ]
    );
    assert!(
        got[0]
            .1
            .iter()
            .all(|r| r.station == "Ünïcödé ☂ 雨" && r.quality.is_none() && r.nested.is_none())
    );
}

#[tokio::test]
async fn the_same_segment_replayed_gets_the_same_batch_id() {
    let dir = tempfile::tempdir().unwrap();
    let first = Recorder::<Reading>::default();
    {
        let mut spool =
            DiskSpool::new(first.clone(), dir.path(), hourly()).with_backoff(quick_backoff());
        spool
            .ingest(&at(0), (0..20).map(reading).collect())
            .await
            .unwrap();
        spool
            .ingest(&at(5), (20..30).map(reading).collect())
            .await
            .unwrap();
        // Sealed but the inner sink is down: the segment stays on disk.
        first.set_mode(support::Mode::Transient);
        spool.advance(T0 + HOUR).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        spool.close().await;
    }
    let second = Recorder::<Reading>::default();
    let mut spool = DiskSpool::new(second.clone(), dir.path(), hourly());
    spool.flush().await.unwrap();
    let batch = second.batches()[0].0.batch.unwrap();
    assert_eq!(batch.last - batch.first, 29);
    // Delivered again (the first inner sink never accepted): identical id.
    first.set_mode(support::Mode::Accept);
    assert!(first.batches().is_empty());
    assert_eq!(second.records(), (0..30).map(reading).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_second_spool_on_the_same_directory_is_refused_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let mut one = DiskSpool::new(Recorder::<Reading>::default(), dir.path(), hourly());
    one.open().await.unwrap();
    let mut two = DiskSpool::new(Recorder::<Reading>::default(), dir.path(), hourly());
    let err = two.open().await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SpoolError::Locked { .. }), "{msg}");
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    assert!(
        msg.contains(&format!("process {}", std::process::id())),
        "{msg}"
    );
    // Ingest on the refused spool hands the records back.
    let refused = two.ingest(&at(0), vec![reading(1)]).await.unwrap_err();
    assert_eq!(refused.records().len(), 1);
}

/// A child process started by another thread holds a copy of the lock
/// file's descriptor, and so the lock, until it runs its program: a spool
/// reopened meanwhile waits for that moment to pass instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_for_a_moment_after_close_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let mut one = DiskSpool::new(Recorder::<Reading>::default(), dir.path(), hourly());
    one.open().await.unwrap();
    one.close().await;
    // Another open file description of the lock file, as the child's copy.
    let copy = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("LOCK"))
        .unwrap();
    copy.try_lock().unwrap();
    let released = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        drop(copy);
    });
    let mut two = DiskSpool::new(Recorder::<Reading>::default(), dir.path(), hourly());
    two.open().await.unwrap();
    released.join().unwrap();
    two.close().await;
}

#[tokio::test]
async fn keep_active_window_leaves_the_open_window_for_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = Recorder::<Reading>::default();
    {
        let mut spool = DiskSpool::new(out.clone(), dir.path(), hourly());
        spool
            .ingest(&at(0), (0..3).map(reading).collect())
            .await
            .unwrap();
        spool
            .advance(T0 + time::Duration::minutes(30))
            .await
            .unwrap();
        spool.drain(Drain::KeepActiveWindow).await.unwrap();
        assert!(out.batches().is_empty(), "the open window was delivered");
        spool.close().await;
    }
    let mut spool = DiskSpool::new(out.clone(), dir.path(), hourly());
    spool
        .ingest(&at(60), (3..6).map(reading).collect())
        .await
        .unwrap();
    spool.advance(T0 + HOUR).await.unwrap();
    let got = out.wait_for(6).await;
    assert_eq!(got, (0..6).map(reading).collect::<Vec<_>>());
    assert_eq!(
        out.batches().len(),
        1,
        "the window is delivered whole, once"
    );
}

#[tokio::test]
async fn a_late_batch_for_a_sealed_window_gets_its_own_segment() {
    let dir = tempfile::tempdir().unwrap();
    let out = Recorder::<Reading>::default();
    let mut spool = DiskSpool::new(out.clone(), dir.path(), hourly());
    spool.ingest(&at(0), vec![reading(0)]).await.unwrap();
    spool.advance(T0 + HOUR).await.unwrap();
    out.wait_for(1).await;
    spool.ingest(&at(10), vec![reading(1)]).await.unwrap();
    spool.flush().await.unwrap();
    let batches = out.batches();
    assert_eq!(batches.len(), 2);
    assert_eq!(
        batches[0].0.start, batches[1].0.start,
        "the late batch keeps its window"
    );
    assert_ne!(batches[0].0.batch, batches[1].0.batch);
}

#[tokio::test]
async fn a_setting_that_cannot_work_is_refused_on_open_by_name_before_the_directory_is_made() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("spool");
    let spool = || DiskSpool::new(Recorder::<Reading>::default(), &dir, hourly());
    for (mut bad, name) in [
        (spool().with_max_bytes(0), "max_bytes"),
        (spool().with_max_record_bytes(0), "max_record_bytes"),
        (spool().with_max_segment_bytes(0), "max_segment_bytes"),
        (spool().with_dead_letter_after(0), "dead_letter_after"),
        (spool().with_chunk_records(0), "chunk_records"),
    ] {
        match bad.open().await {
            Err(SpoolError::InvalidSetting { setting, .. }) => assert_eq!(setting, name),
            other => panic!("{name}: {other:?}"),
        }
        assert!(!dir.exists(), "{name}: the directory was created");
    }
}

/// Spools under a root share its one lock: they hold no `LOCK` of their
/// own, and a spool opened on its own in the root's directory is refused
/// while the root is held, then opens once it is released.
#[tokio::test]
async fn spools_under_a_root_share_its_lock() {
    let base = tempfile::tempdir().unwrap();
    let root = meathook_spool::SpoolRoot::open(base.path().join("spools")).unwrap();
    let out = Recorder::<Reading>::default();
    let mut spools = Vec::new();
    for name in ["a", "b", "c"] {
        let mut spool = DiskSpool::new(out.clone(), root.join(name), hourly()).with_root(&root);
        spool.ingest(&at(0), vec![reading(1)]).await.unwrap();
        assert!(!root.join(name).join("LOCK").exists(), "{name} has a LOCK");
        spools.push(spool);
    }
    // A second root on the same directory, and a spool on its own there,
    // are refused while the first is held.
    assert!(matches!(
        meathook_spool::SpoolRoot::open(root.dir()),
        Err(SpoolError::Locked { .. })
    ));
    let mut alone = out.clone().spooled(root.join("a"), hourly());
    assert!(matches!(alone.open().await, Err(SpoolError::Locked { .. })));
    // Not a subdirectory of the root: refused by name.
    let mut astray =
        DiskSpool::new(out.clone(), base.path().join("elsewhere"), hourly()).with_root(&root);
    assert!(matches!(
        astray.open().await,
        Err(SpoolError::InvalidSetting {
            setting: "root",
            ..
        })
    ));
    for spool in spools {
        spool.close().await;
    }
    drop((root, astray));
    let mut alone = out
        .clone()
        .spooled(base.path().join("spools").join("a"), hourly());
    alone.flush().await.unwrap();
    assert_eq!(out.records(), vec![reading(1)]);
    alone.close().await;
}
