//! Compaction of a local dataset directory: a day's parts into one file,
//! rows in order and once; late replays recognised; parts that arrive
//! during a compaction kept; a process killed at every step.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // tests: panics are failures; the child reports on stdout

use crate::support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meathook_core::{
    BatchId, Deliveries, Delivery, DeliveryLog, DeliveryLogError, Sink, WindowMeta,
};
use meathook_parquet::compact::Step;
use meathook_parquet::layout::{self, BatchName};
use meathook_parquet::local::read_coverage;
use meathook_parquet::object_store::ObjectStoreExt as _;
use meathook_parquet::{
    CompactError, Compactor, Destination, FileSink, FileSinkBuilder, FileSinkError, ParquetEncoder,
    StoreCompactor,
};
use support::*;
use time::macros::{date, datetime};

const HOUR: Duration = Duration::from_secs(3600);
const PIPELINE: &str = "air_temperature";
const DAY: time::Date = date!(2026 - 11 - 23);
const ROWS: u64 = 5;

fn sink(dir: &Path) -> FileSink<Station, ParquetEncoder<Station>> {
    FileSink::new(dir.to_str().unwrap(), ParquetEncoder::new().unwrap()).unwrap()
}

/// The window of hour `hour` of the day, with batch `n`'s identity.
fn window(hour: i64, n: u64) -> WindowMeta {
    WindowMeta::containing(
        PIPELINE,
        datetime!(2026-11-23 00:30 UTC) + time::Duration::hours(hour),
        HOUR,
    )
    .with_batch(BatchId::legacy(n * ROWS, n * ROWS + ROWS - 1))
}

fn batch(n: u64) -> Vec<Station> {
    (n * ROWS..n * ROWS + ROWS).map(station_at).collect()
}

/// Delivers batch `n` in hour `n` (24 and on are the next day).
async fn deliver(dir: &Path, ns: impl IntoIterator<Item = u64>) {
    let mut sink = sink(dir);
    sink.open().await.unwrap();
    for n in ns {
        sink.ingest(&window(n as i64, n), batch(n)).await.unwrap();
    }
}

fn folder(dir: &Path, day: time::Date) -> PathBuf {
    dir.join(layout::day_folder(PIPELINE, day))
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Every row a reader of the folder sees, as the `seq` of each, file by
/// file in name order.
fn rows_in(folder: &Path) -> Vec<u64> {
    let mut rows = Vec::new();
    for name in names(folder) {
        if name.ends_with(".parquet") {
            let back: Vec<Station> = read_records(std::fs::read(folder.join(name)).unwrap());
            rows.extend(back.iter().map(|s| s.seq));
        }
    }
    rows
}

fn seqs(ns: impl IntoIterator<Item = u64>) -> Vec<u64> {
    ns.into_iter()
        .flat_map(|n| batch(n).into_iter().map(|s| s.seq))
        .collect()
}

fn sorted(mut rows: Vec<u64>) -> Vec<u64> {
    rows.sort_unstable();
    rows
}

/// Every row of `expected` in `rows` exactly once, whatever the order; the
/// failure counts what is missing and what is doubled.
fn assert_once(rows: Vec<u64>, expected: Vec<u64>) {
    let (rows, expected) = (sorted(rows), sorted(expected));
    if rows != expected {
        let missing = expected.iter().filter(|r| !rows.contains(r)).count();
        let doubled = rows.len() + missing - expected.len();
        panic!("{missing} rows missing, {doubled} doubled");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_days_parts_become_one_file_with_every_row_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    // Hours 0..23 of the day, and hour 0 of the next (batch 24).
    deliver(dir.path(), 0..25).await;
    let day = folder(dir.path(), DAY);
    assert_eq!(names(&day).len(), 24);
    let before: u64 = names(&day)
        .iter()
        .map(|n| std::fs::metadata(day.join(n)).unwrap().len())
        .sum();

    let done = Compactor::local(dir.path())
        .compact_day(PIPELINE, DAY)
        .unwrap()
        .expect("24 parts to compact");
    assert_eq!((done.replaced, done.parts, done.rows), (24, 24, 24 * ROWS));
    assert_eq!(done.bytes_before, before);
    assert_eq!(names(&day), [done.file.clone(), "_compacted.json".into()]);
    assert!(layout::is_compacted_name(&done.file), "{}", done.file);
    assert_eq!(rows_in(&day), seqs(0..24), "every row once, in order");
    let coverage = read_coverage(&day).unwrap().unwrap();
    assert_eq!(coverage.file, done.file);
    assert_eq!(coverage.rows, 24 * ROWS);
    assert_eq!(coverage.parts.len(), 24);
    // The next day is not touched, and nothing is left in the scratch folder.
    assert_eq!(
        rows_in(&folder(dir.path(), DAY.next_day().unwrap())),
        seqs([24])
    );
    assert!(files_under(&dir.path().join(".meathook-tmp")).is_empty());

    // Run again: nothing to do.
    let again = Compactor::local(dir.path())
        .compact_day(PIPELINE, DAY)
        .unwrap();
    assert_eq!(again, None);
    assert_eq!(names(&day), [done.file, "_compacted.json".into()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_replay_of_a_compacted_batch_is_not_written_again() {
    let dir = tempfile::tempdir().unwrap();
    deliver(dir.path(), 0..24).await;
    let day = folder(dir.path(), DAY);
    let first = Compactor::local(dir.path())
        .compact_day(PIPELINE, DAY)
        .unwrap()
        .unwrap();

    // A spool replays batches 3 and 17 after its folder was compacted.
    let mut sink = sink(dir.path());
    sink.open().await.unwrap();
    for n in [3, 17] {
        sink.ingest(&window(n as i64, n), batch(n)).await.unwrap();
        assert!(!sink.last_delivery().unwrap().created);
    }
    assert_eq!(names(&day), [first.file.clone(), "_compacted.json".into()]);
    assert_eq!(rows_in(&day), seqs(0..24));

    // Other records under a compacted batch's identity: a conflict.
    let mut other = batch(5);
    other[0].seq = 7;
    let err = sink.ingest(&window(5, 5), other).await.unwrap_err();
    assert!(
        matches!(err.error(), FileSinkError::Conflict { .. }),
        "{}",
        err.error()
    );

    // A batch that is genuinely new lands as a part beside the compacted
    // file, and the next compaction absorbs it.
    sink.ingest(&window(9, 40), batch(40)).await.unwrap();
    assert!(sink.last_delivery().unwrap().created);
    assert_eq!(names(&day).len(), 3);
    assert_once(rows_in(&day), seqs((0..24).chain([40])));
    let second = Compactor::local(dir.path())
        .compact_day(PIPELINE, DAY)
        .unwrap()
        .unwrap();
    assert_ne!(second.file, first.file);
    assert_eq!((second.replaced, second.parts), (2, 25));
    assert_eq!(names(&day), [second.file.clone(), "_compacted.json".into()]);
    assert_eq!(rows_in(&day), seqs((0..24).chain([40])));
    // Replays of batches from both compactions are still recognised.
    for n in [0, 40] {
        sink.ingest(&window(if n == 40 { 9 } else { 0 }, n), batch(n))
            .await
            .unwrap();
        assert!(!sink.last_delivery().unwrap().created);
    }
    assert_eq!(names(&day).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_compacts_only_days_that_ended_a_horizon_ago() {
    let dir = tempfile::tempdir().unwrap();
    deliver(dir.path(), 0..26).await; // 24 parts on the day, 2 on the next
    let next = DAY.next_day().unwrap();
    let mut compactor = Compactor::local(dir.path()).with_horizon(time::Duration::hours(2));
    let early = compactor.run(datetime!(2026-11-24 01:59 UTC)).unwrap();
    assert!(early.compacted.is_empty() && early.failed.is_empty());
    assert_eq!(early.unchanged, 2);
    assert_eq!(names(&folder(dir.path(), DAY)).len(), 24);

    let report = compactor.run(datetime!(2026-11-24 02:00 UTC)).unwrap();
    assert_eq!(report.compacted.len(), 1, "{report:?}");
    assert_eq!(
        report.compacted[0].folder,
        layout::day_folder(PIPELINE, DAY)
    );
    assert_eq!(names(&folder(dir.path(), DAY)).len(), 2);
    assert_eq!(names(&folder(dir.path(), next)).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_whose_parts_differ_in_schema_is_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    deliver(dir.path(), 0..3).await;
    // A part of another record type in the same folder.
    let mut readings: FileSink<Reading, _> =
        FileSink::new(dir.path().to_str().unwrap(), ParquetEncoder::new().unwrap()).unwrap();
    readings
        .ingest(&window(5, 99), (0..3).map(reading_at).collect())
        .await
        .unwrap();
    let day = folder(dir.path(), DAY);
    let before = names(&day);
    let err = Compactor::local(dir.path())
        .compact_day(PIPELINE, DAY)
        .unwrap_err();
    assert!(matches!(err, CompactError::Schema { .. }), "{err}");
    assert!(err.to_string().contains("different schemas"), "{err}");
    assert_eq!(names(&day), before);
    assert!(files_under(&dir.path().join(".meathook-tmp")).is_empty());
}

/// A part published while the compacted file is being written is neither
/// lost nor covered: it stays beside the compacted file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_that_arrives_during_a_compaction_is_kept_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    deliver(dir.path(), 0..6).await;
    // A part made elsewhere, copied in at the moment the compacted file is
    // staged (what a sink's publish does at that moment).
    let spare = tempfile::tempdir().unwrap();
    deliver(spare.path(), [7]).await;
    let spare_part = layout::object_path(
        &window(7, 7),
        BatchName::Sequence(window(7, 7).batch.unwrap()),
        "parquet",
    );
    let (from, to) = (spare.path().join(&spare_part), dir.path().join(&spare_part));
    let root = dir.path().to_path_buf();
    let steps = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&steps);
    let done = Compactor::local(&root)
        .observe(move |_, step| {
            if step == Step::Staged {
                std::fs::copy(&from, &to).unwrap();
            }
            seen.lock().unwrap().push(step);
        })
        .compact_day(PIPELINE, DAY)
        .unwrap()
        .unwrap();
    assert_eq!(
        *steps.lock().unwrap(),
        [
            Step::Staged,
            Step::Linked,
            Step::Swapped,
            Step::Synced,
            Step::Removed
        ]
    );
    assert_eq!(done.parts, 6);
    let day = folder(dir.path(), DAY);
    assert_eq!(names(&day).len(), 3);
    assert_once(rows_in(&day), seqs((0..6).chain([7])));
    let coverage = read_coverage(&day).unwrap().unwrap();
    let late = Path::new(&spare_part)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    assert!(coverage.part(late).is_none());
}

/// A sink publishing parts into a folder while compactions swap it again
/// and again: every row ends up in the folder exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_published_while_compactions_run_are_never_lost_or_doubled() {
    let dir = tempfile::tempdir().unwrap();
    deliver(dir.path(), 0..2).await;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let root = dir.path().to_path_buf();
    let stop = Arc::clone(&done);
    let compactions = tokio::task::spawn_blocking(move || {
        let mut compactor = Compactor::local(&root);
        let mut swaps = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if compactor.compact_day(PIPELINE, DAY).unwrap().is_some() {
                swaps += 1;
            }
        }
        swaps
    });
    let mut sink = sink(dir.path());
    sink.open().await.unwrap();
    for n in 2..60 {
        sink.ingest(&window((n % 24) as i64, n), batch(n))
            .await
            .unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = compactions.await.unwrap();
    assert!(
        swaps > 1,
        "the compactions never overlapped the sink ({swaps})"
    );
    let day = folder(dir.path(), DAY);
    assert_once(rows_in(&day), seqs(0..60));
    Compactor::local(dir.path())
        .compact_day(PIPELINE, DAY)
        .unwrap();
    assert_once(rows_in(&day), seqs(0..60));
    assert_eq!(read_coverage(&day).unwrap().unwrap().parts.len(), 60);
}

/// A catalog that keeps what it is told, and refuses while `refuse` is set.
#[derive(Debug, Default, Clone)]
struct Catalog {
    kept: Arc<Mutex<Vec<Delivery>>>,
    refuse: Arc<std::sync::atomic::AtomicBool>,
}

impl DeliveryLog for Catalog {
    fn record(&self, delivery: &Delivery) -> Result<(), DeliveryLogError> {
        if self.refuse.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(DeliveryLogError::Stopped {
                path: delivery.path.clone(),
                reason: "refused by the test".into(),
            });
        }
        self.kept.lock().unwrap().push(delivery.clone());
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_is_reported_to_the_catalog_and_reported_again_after_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    deliver(dir.path(), 0..4).await;
    let catalog = Catalog::default();
    catalog
        .refuse
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let mut compactor =
        Compactor::local(dir.path()).with_deliveries(Deliveries::new(catalog.clone()));
    // The catalog is down: the folder is compacted all the same, and the
    // error says the record is owed.
    let err = compactor.compact_day(PIPELINE, DAY).unwrap_err();
    assert!(matches!(err, CompactError::Report { .. }), "{err}");
    let day = folder(dir.path(), DAY);
    assert_eq!(names(&day).len(), 2);
    assert!(catalog.kept.lock().unwrap().is_empty());

    // The next run reports it; the one after has nothing to report.
    catalog
        .refuse
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let now = datetime!(2026-11-26 00:00 UTC);
    let report = compactor.run(now).unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    compactor.run(now).unwrap();
    let kept = catalog.kept.lock().unwrap().clone();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let record = &kept[0];
    let folder_path = layout::day_folder(PIPELINE, DAY);
    let coverage = read_coverage(&day).unwrap().unwrap();
    assert_eq!(record.path, format!("{folder_path}/{}", coverage.file));
    assert_eq!(record.pipeline, PIPELINE);
    assert_eq!(record.destination, dir.path().display().to_string());
    assert_eq!((record.rows, record.bytes), (coverage.rows, coverage.bytes));
    assert_eq!(record.window_start, datetime!(2026-11-23 00:00 UTC));
    assert_eq!(record.window_end, datetime!(2026-11-24 00:00 UTC));
    let parts: Vec<String> = (0..4)
        .map(|n| {
            let w = window(n as i64, n);
            layout::object_path(&w, BatchName::Sequence(w.batch.unwrap()), "parquet")
        })
        .collect();
    assert_eq!(record.replaces, parts);

    // A late part absorbed later: the new file replaces the old one and
    // the part, not the parts the old one already held.
    let mut sink = sink(dir.path());
    sink.ingest(&window(6, 31), batch(31)).await.unwrap();
    compactor.compact_day(PIPELINE, DAY).unwrap().unwrap();
    let kept = catalog.kept.lock().unwrap().clone();
    assert_eq!(kept.len(), 2);
    let second = &kept[1];
    let old = format!("{folder_path}/{}", coverage.file);
    let part = {
        let w = window(6, 31);
        layout::object_path(&w, BatchName::Sequence(w.batch.unwrap()), "parquet")
    };
    assert_eq!(second.replaces, [old, part]);
}

/// A catalog in a file: the path of each file recorded, a line each,
/// synced.
#[derive(Debug)]
struct FileLog(PathBuf);

impl DeliveryLog for FileLog {
    fn record(&self, delivery: &Delivery) -> Result<(), DeliveryLogError> {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.0)
            .unwrap();
        writeln!(file, "{}", delivery.path).unwrap();
        file.sync_all().unwrap();
        Ok(())
    }
}

const KILL_DIR: &str = "MEATHOOK_TEST_COMPACT_DIR";
const KILL_STEP: &str = "MEATHOOK_TEST_COMPACT_STEP";

/// Run by `a_compaction_killed_at_any_step_loses_and_doubles_nothing` in a
/// child process: compacts, and waits at one step to be killed.
#[test]
#[ignore = "run in a child process by a_compaction_killed_at_any_step_loses_and_doubles_nothing"]
fn compact_child() {
    let dir = std::env::var(KILL_DIR).expect("only run as the compaction test's child");
    let at: usize = std::env::var(KILL_STEP).unwrap().parse().unwrap();
    let mut seen = 0;
    let log = FileLog(Path::new(&dir).join("catalog.txt"));
    let _ = Compactor::local(dir)
        .with_deliveries(Deliveries::new(log))
        .observe(move |_, _| {
            if seen == at {
                println!("AT-STEP {at}");
                std::thread::sleep(Duration::from_secs(600));
            }
            seen += 1;
        })
        .compact_day(PIPELINE, DAY);
    unreachable!("the parent kills this process");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_killed_at_any_step_loses_and_doubles_nothing() {
    for at in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        deliver(dir.path(), 0..8).await;
        let day = folder(dir.path(), DAY);
        let mut child = meathook_testkit::test_in_child!("compact_child")
            .arg("--ignored")
            .env(KILL_DIR, dir.path())
            .env(KILL_STEP, at.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert!(
            lines.any(|l| l.unwrap().contains("AT-STEP")),
            "the child ended before step {at}"
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        // A reader sees the parts or the compacted file: every row once.
        let listed = names(&day);
        assert_eq!(rows_in(&day), seqs(0..8), "killed at step {at}: {listed:?}");
        let compacted = listed.iter().any(|n| layout::is_compacted_name(n));
        assert_eq!(compacted, at >= 2, "killed at step {at}: {listed:?}");
        assert_eq!(listed.len(), if compacted { 2 } else { 8 });
        // A replay now is recognised either way.
        let mut sink = sink(dir.path());
        sink.open().await.unwrap();
        sink.ingest(&window(3, 3), batch(3)).await.unwrap();
        assert!(!sink.last_delivery().unwrap().created);

        // The next run removes what the killed one left, finishes, and
        // the catalog learns of the compacted file.
        let log = FileLog(dir.path().join("catalog.txt"));
        let report = Compactor::local(dir.path())
            .with_deliveries(Deliveries::new(log))
            .with_horizon(time::Duration::ZERO)
            .run(datetime!(2026-11-25 00:00 UTC))
            .unwrap();
        assert!(report.failed.is_empty(), "{report:?}");
        assert_eq!(report.compacted.len(), usize::from(!compacted));
        assert_eq!(names(&day).len(), 2);
        assert_eq!(rows_in(&day), seqs(0..8), "after the killed step {at}");
        assert!(
            files_under(&dir.path().join(".meathook-tmp")).is_empty(),
            "killed at step {at}: the staging directory or a report is left"
        );
        let coverage = read_coverage(&day).unwrap().unwrap();
        let recorded = std::fs::read_to_string(dir.path().join("catalog.txt")).unwrap();
        let compacted = format!("{}/{}", layout::day_folder(PIPELINE, DAY), coverage.file);
        assert!(
            recorded.lines().any(|l| l == compacted),
            "killed at step {at}: the catalog never learnt of {compacted}: {recorded}"
        );
    }
}

// ---- object stores ----

/// A day of parts in a `memory://` store, written by a `FileSink` that
/// shares the store with the compactor.
async fn store_day(
    windows: impl IntoIterator<Item = u64>,
) -> (Destination, FileSink<Station, ParquetEncoder<Station>>) {
    let destination = Destination::parse("memory://bucket/prefix").unwrap();
    let mut sink = FileSinkBuilder::new("memory://")
        .with_destination(destination.clone())
        .build(ParquetEncoder::new().unwrap())
        .unwrap();
    for n in windows {
        sink.ingest(&window(n as i64, n), batch(n)).await.unwrap();
    }
    (destination, sink)
}

/// The names in the store's day folder.
async fn store_names(destination: &Destination) -> Vec<String> {
    let Destination::Remote { store, prefix, .. } = destination else {
        panic!("a store")
    };
    let folder =
        object_store::path::Path::from_iter(prefix.parts().chain(
            object_store::path::Path::from(layout::day_folder(PIPELINE, DAY).as_str()).parts(),
        ));
    let listed = store.list_with_delimiter(Some(&folder)).await.unwrap();
    let mut names: Vec<String> = listed
        .objects
        .iter()
        .map(|o| o.location.filename().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// Every row of the store's day folder: read naively (every parquet file)
/// and by its record (`readable_files`).
async fn store_rows(destination: &Destination) -> (Vec<u64>, Vec<u64>) {
    let Destination::Remote { store, prefix, .. } = destination else {
        panic!("a store")
    };
    let names = store_names(destination).await;
    let object = |name: &str| {
        object_store::path::Path::from_iter(
            prefix.parts().chain(
                object_store::path::Path::from(
                    format!("{}/{name}", layout::day_folder(PIPELINE, DAY)).as_str(),
                )
                .parts(),
            ),
        )
    };
    let record = match names.iter().any(|n| n == "_compacted.json") {
        true => {
            let bytes = store
                .get(&object("_compacted.json"))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            Some(meathook_files::coverage::Coverage::from_json(&bytes).unwrap())
        }
        false => None,
    };
    let mut naive = Vec::new();
    let mut safe = Vec::new();
    let readable = meathook_parquet::compact::readable_files(&names, record.as_ref());
    for name in names.iter().filter(|n| n.ends_with(".parquet")) {
        let bytes = store
            .get(&object(name))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec();
        let rows: Vec<u64> = read_records::<Station>(bytes)
            .iter()
            .map(|s| s.seq)
            .collect();
        if readable.contains(name) {
            safe.extend(rows.iter().copied());
        }
        naive.extend(rows);
    }
    (sorted(naive), sorted(safe))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stores_day_is_compacted_and_replays_are_recognised() {
    let (destination, mut sink) = store_day(0..6).await;
    assert_eq!(store_names(&destination).await.len(), 6);
    let mut compactor = StoreCompactor::new(&destination).unwrap();
    let done = compactor.compact_day(PIPELINE, DAY).await.unwrap().unwrap();
    assert_eq!((done.replaced, done.parts, done.rows), (6, 6, 6 * ROWS));
    assert_eq!(
        store_names(&destination).await,
        [done.file.clone(), "_compacted.json".into()]
    );
    let (naive, safe) = store_rows(&destination).await;
    assert_eq!(naive, sorted(seqs(0..6)));
    assert_eq!(safe, naive);

    // Replays of compacted batches are not written again; other bytes
    // under a compacted identity are a conflict; a new batch is a part.
    sink.ingest(&window(2, 2), batch(2)).await.unwrap();
    assert!(!sink.last_delivery().unwrap().created);
    let mut other = batch(3);
    other[0].seq = 7;
    let err = sink.ingest(&window(3, 3), other).await.unwrap_err();
    assert!(
        matches!(err.error(), FileSinkError::Conflict { .. }),
        "{}",
        err.error()
    );
    sink.ingest(&window(9, 40), batch(40)).await.unwrap();
    assert_eq!(store_names(&destination).await.len(), 3);
    let second = compactor.compact_day(PIPELINE, DAY).await.unwrap().unwrap();
    assert_eq!((second.replaced, second.parts), (2, 7));
    assert_eq!(store_names(&destination).await.len(), 2);
    assert_eq!(
        store_rows(&destination).await.0,
        sorted(seqs((0..6).chain([40])))
    );

    // A scheduled run passes a settled folder (its record and compacted
    // file, nothing else) by on the strength of one listing: a record
    // that no longer parses goes unread. A folder with anything more is
    // read, record first.
    let Destination::Remote { store, prefix, .. } = &destination else {
        panic!("a store")
    };
    let object = |name: &str| {
        let relative = format!("{}/{name}", layout::day_folder(PIPELINE, DAY));
        object_store::path::Path::from_iter(
            prefix
                .parts()
                .chain(object_store::path::Path::from(relative.as_str()).parts()),
        )
    };
    store
        .put(&object("_compacted.json"), b"not a record".to_vec().into())
        .await
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    let report = compactor.run(now).await.unwrap();
    assert!(
        report.failed.is_empty() && report.compacted.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.unchanged, 1);
    store
        .put(&object("235900Z-extra.parquet"), b"x".to_vec().into())
        .await
        .unwrap();
    let report = compactor.run(now).await.unwrap();
    assert_eq!(report.failed.len(), 1, "{report:?}");
}

/// A compaction stopped after each of its steps (a panic where a process
/// would be killed): a reader by the record sees every row once at that
/// moment, and the next run finishes the folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_compaction_stopped_at_any_step_is_read_safely_and_finished_next_time() {
    for at in [Step::Staged, Step::Swapped, Step::Removed] {
        let (destination, _sink) = store_day(0..5).await;
        let stopped = {
            let destination = destination.clone();
            tokio::spawn(async move {
                StoreCompactor::new(&destination)
                    .unwrap()
                    .observe(move |_, step| assert_ne!(step, at, "stopped at {step:?}"))
                    .compact_day(PIPELINE, DAY)
                    .await
            })
            .await
        };
        assert!(
            stopped.is_err_and(|e| e.is_panic()),
            "{at:?}: the compaction was not stopped"
        );
        let (naive, safe) = store_rows(&destination).await;
        assert_eq!(safe, sorted(seqs(0..5)), "{at:?}: a reader by the record");
        if at != Step::Removed {
            assert_eq!(
                naive.len(),
                2 * safe.len(),
                "{at:?}: both are there for a naive reader"
            );
        }
        let report = StoreCompactor::new(&destination)
            .unwrap()
            .with_horizon(time::Duration::ZERO)
            .run(datetime!(2026-11-25 00:00 UTC))
            .await
            .unwrap();
        assert!(report.failed.is_empty(), "{at:?}: {report:?}");
        assert_eq!(store_names(&destination).await.len(), 2, "{at:?}");
        let (naive, safe) = store_rows(&destination).await;
        assert_eq!(naive, sorted(seqs(0..5)), "{at:?}: finished");
        assert_eq!(safe, naive);
    }
}

// ---- the Hive layout ----

/// A sink in the Hive layout writes `pipeline=…/date=…` folders, the card
/// lists them, compaction takes them, and DuckDB reads `pipeline` and
/// `date` as columns before and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hive_layout_is_written_compacted_and_read_as_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSinkBuilder::new(dir.path().to_str().unwrap())
        .with_layout(layout::Layout::Hive)
        .build(ParquetEncoder::<Station>::new().unwrap())
        .unwrap();
    for n in 0..4 {
        sink.ingest(&window(n as i64, n), batch(n)).await.unwrap();
    }
    let day = dir
        .path()
        .join("data/pipeline=air_temperature/date=2026-11-23");
    assert_eq!(names(&day).len(), 4);
    let card = std::fs::read_to_string(dir.path().join("README.md")).unwrap();
    assert!(
        card.contains("data/pipeline=air_temperature/**/*.parquet"),
        "{card}"
    );

    let duckdb = |label: &str| -> Option<String> {
        let python = meathook_testkit::python::interpreter()?;
        let script = format!(
            "import duckdb\nprint(duckdb.sql(\"SELECT pipeline, CAST(date AS VARCHAR), count(*) FROM read_parquet('{}/data/*/*/*.parquet', hive_partitioning = true) GROUP BY ALL\").fetchall())",
            dir.path().display()
        );
        let out = std::process::Command::new(python)
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{label}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let expected = format!("[('air_temperature', '2026-11-23', {})]", 4 * ROWS);
    if let Some(before) = duckdb("before") {
        assert_eq!(before, expected);
    }

    let done = Compactor::local(dir.path())
        .with_layout(layout::Layout::Hive)
        .compact_day(PIPELINE, DAY)
        .unwrap()
        .unwrap();
    assert_eq!(done.folder, "data/pipeline=air_temperature/date=2026-11-23");
    assert_eq!(names(&day), [done.file.clone(), "_compacted.json".into()]);
    assert_eq!(rows_in(&day), seqs(0..4));
    if let Some(after) = duckdb("after") {
        assert_eq!(after, expected);
    }

    // A replay is recognised in the Hive layout too, and a run finds the
    // folder compacted.
    sink.ingest(&window(1, 1), batch(1)).await.unwrap();
    assert!(!sink.last_delivery().unwrap().created);
    let report = Compactor::local(dir.path())
        .with_horizon(time::Duration::ZERO)
        .run(datetime!(2026-11-25 00:00 UTC))
        .unwrap();
    assert!(
        report.compacted.is_empty() && report.failed.is_empty(),
        "{report:?}"
    );
}
