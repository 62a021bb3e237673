//! Hostile spool directories: whatever a previous run, an operator or an
//! attacker with write access to the volume left there, recovery and the
//! `meathook-spool inspect|verify` command never follow a symlink, never
//! open anything but a regular file, never copy without bound, never hang
//! and never panic. Real files on a real filesystem.
//!
//! Each test is guarded by a generous timeout that only catches a hang; no
//! test times a speed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)] // tests

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use meathook_core::{Drain, ErrorClass, Sink, SinkError};
use meathook_spool::{DiskSpool, QUARANTINE_DIR, SpoolError};
use support::{Mode, Reading, Recorder, T0, at, hourly, quick_backoff, reading};

/// Long enough for any healthy run on a loaded machine; a hang is forever.
const HANG: Duration = Duration::from_secs(120);

type Spool = DiskSpool<Recorder<Reading>, Reading>;

fn spool(dir: &Path, out: &Recorder<Reading>) -> Spool {
    DiskSpool::new(out.clone(), dir, hourly())
        .with_backoff(quick_backoff())
        .with_flush_deadline(Duration::from_secs(20))
}

async fn guarded<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(HANG, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} hung for {HANG:?}"))
}

fn mkfifo(path: &Path) {
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
}

/// Runs `meathook-spool verify DIR` with a hang guard; returns its exit
/// code and output.
fn verify(dir: &Path) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_meathook-spool"))
        .arg("verify")
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > HANG {
            let _ = child.kill();
            panic!("verify hung on {}", dir.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// A spool that has written one open segment of `n` readings, left on disk
/// as a crash would leave it. Returns its path.
async fn leave_open_segment(dir: &Path, n: u64) -> PathBuf {
    let out = Recorder::<Reading>::default();
    out.set_mode(Mode::Transient);
    let mut s = spool(dir, &out);
    s.ingest(&at(1), (0..n).map(reading).collect())
        .await
        .unwrap();
    s.close().await;
    let mut open: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "open"))
        .collect();
    assert_eq!(open.len(), 1, "{open:?}");
    open.remove(0)
}

fn quarantine_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join(QUARANTINE_DIR))
        .map(|entries| entries.map(|e| e.unwrap().metadata().unwrap().len()).sum())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_named_like_segments_are_never_followed_or_copied() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("spool");
    std::fs::create_dir_all(&dir).unwrap();
    // A 50 GB sparse file elsewhere, and /dev/zero, behind segment names.
    let big = tmp.path().join("big");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(50 << 30)
        .unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join("00000000000000000001.seg")).unwrap();
    std::os::unix::fs::symlink(&big, dir.join("00000000000000000002.open")).unwrap();

    let out = Recorder::<Reading>::default();
    let mut s = spool(&dir, &out);
    guarded("open", s.open()).await.unwrap();
    let report = s.recovery_report().unwrap().clone();
    assert_eq!(report.segments, 0, "{report:?}");
    assert_eq!(report.skipped.len(), 2, "{report:?}");
    assert!(
        report
            .skipped
            .iter()
            .all(|(_, why)| why.contains("symlink")),
        "{report:?}"
    );
    assert!(report.quarantined.is_empty(), "{report:?}");
    assert_eq!(quarantine_bytes(&dir), 0);
    assert_eq!(std::fs::metadata(&big).unwrap().len(), 50 << 30);

    // The spool works beside them, and a flush says they are still there.
    s.ingest(&at(5), (0..3).map(reading).collect())
        .await
        .unwrap();
    let err = guarded("flush", s.flush()).await.unwrap_err();
    assert!(matches!(err, SpoolError::Unread { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("00000000000000000001.seg"), "{message}");
    assert_eq!(out.records().len(), 3, "everything readable is delivered");
    s.close().await;

    let (code, text) = verify(&dir);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("symlink"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifos_named_like_segments_or_sequence_never_block() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    mkfifo(&dir.join("00000000000000000004.seg"));
    mkfifo(&dir.join("00000000000000000005.open"));
    mkfifo(&dir.join("sequence"));

    let out = Recorder::<Reading>::default();
    let mut s = spool(&dir, &out);
    guarded("open", s.open()).await.unwrap();
    let report = s.recovery_report().unwrap().clone();
    assert_eq!(report.skipped.len(), 3, "{report:?}");
    assert!(
        report
            .skipped
            .iter()
            .all(|(_, why)| why.contains("FIFO, socket or device")),
        "{report:?}"
    );
    // Sequence numbers continue, and ingest works: the FIFO `sequence` is
    // not written through either (the lease goes through a temporary file
    // renamed over it).
    s.ingest(&at(5), (0..3).map(reading).collect())
        .await
        .unwrap();
    s.advance(T0 + support::HOUR).await.unwrap();
    let err = guarded("drain", s.drain(Drain::Everything))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SpoolError::Unread { ref files, .. } if files.len() == 2),
        "{err}"
    );
    assert_eq!(out.records().len(), 3);
    s.close().await;

    let (code, text) = verify(&dir);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("FIFO"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_file_that_is_a_symlink_is_refused_and_its_target_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("spool");
    std::fs::create_dir_all(&dir).unwrap();
    let victim = tmp.path().join("victim.conf");
    std::fs::write(&victim, b"precious contents\n").unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("LOCK")).unwrap();

    let out = Recorder::<Reading>::default();
    let mut s = spool(&dir, &out);
    let err = guarded("open", s.open()).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, SpoolError::Start { .. }), "{message}");
    assert!(message.contains("symlink"), "{message}");
    assert!(message.contains("cannot start"), "{message}");
    assert!(!message.contains("no batch was acknowledged"), "{message}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious contents\n");

    let (code, text) = verify(&dir);
    assert_eq!(code, 1, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quarantine_or_dead_letter_that_is_not_a_directory_stops_the_start_clearly() {
    for (name, symlink) in [("quarantine", false), ("dead-letter", true)] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("spool");
        std::fs::create_dir_all(&dir).unwrap();
        if symlink {
            let elsewhere = tmp.path().join("elsewhere");
            std::fs::create_dir_all(&elsewhere).unwrap();
            std::os::unix::fs::symlink(&elsewhere, dir.join(name)).unwrap();
        } else {
            std::fs::write(dir.join(name), b"not a directory").unwrap();
        }
        let out = Recorder::<Reading>::default();
        let mut s = spool(&dir, &out);
        let err = guarded("open", s.open()).await.unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, SpoolError::Start { .. }), "{message}");
        assert!(message.contains(name), "{message}");
        assert!(message.contains("cannot start"), "{message}");
        assert!(!message.contains("no batch was acknowledged"), "{message}");
        // An ingest refused for it hands the records back and says why.
        let refused = s
            .ingest(&at(1), (0..2).map(reading).collect())
            .await
            .unwrap_err();
        assert_eq!(refused.records().len(), 2);
        assert_eq!(refused.error().class(), ErrorClass::Transient);

        let (code, text) = verify(&dir);
        assert_eq!(code, 1, "{name}: {text}");
        assert!(text.contains("cannot start"), "{name}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_parse_but_lie_are_skipped_without_overflow() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    // A real segment, copied under the largest id there is.
    let seg = leave_open_segment(&dir, 4).await;
    let max = dir.join(format!("{}.seg", u64::MAX));
    std::fs::copy(&seg, &max).unwrap();
    // A directory named like a segment, and a sequence file that is a
    // directory; a sequence file claiming numbers at the end of u64.
    std::fs::create_dir(dir.join("00000000000000000099.seg")).unwrap();

    let out = Recorder::<Reading>::default();
    let mut s = spool(&dir, &out);
    guarded("open", s.open()).await.unwrap();
    let report = s.recovery_report().unwrap().clone();
    assert!(
        report
            .skipped
            .iter()
            .any(|(p, why)| p == &max && why.contains("too large")),
        "{report:?}"
    );
    assert!(
        report
            .skipped
            .iter()
            .any(|(_, why)| why.contains("a directory")),
        "{report:?}"
    );
    // New segments get ordinary ids: ingest, seal and deliver work.
    s.ingest(&at(2), (10..12).map(reading).collect())
        .await
        .unwrap();
    s.advance(T0 + support::HOUR).await.unwrap();
    let _ = guarded("flush", s.flush()).await;
    assert_eq!(out.records().len(), 6, "the real segment and the new batch");
    s.close().await;

    // A sequence file that claims the end of the number space.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    std::fs::write(
        dir.join("sequence"),
        format!("{} {}\n", u64::MAX - 1, u64::MAX),
    )
    .unwrap();
    let out = Recorder::<Reading>::default();
    let mut s = spool(&dir, &out);
    guarded("open", s.open()).await.unwrap();
    s.ingest(&at(2), (0..2).map(reading).collect())
        .await
        .unwrap();
    s.advance(T0 + support::HOUR).await.unwrap();
    guarded("flush", s.flush()).await.unwrap();
    assert_eq!(out.records().len(), 2);
    s.close().await;
}

/// A valid segment followed by `extra` bytes of zeros (a sparse file, so
/// the test costs no disk), as `.open` or renamed `.seg`.
async fn segment_with_zeros(dir: &Path, extra: u64, sealed: bool) -> PathBuf {
    let seg = leave_open_segment(dir, 5).await;
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len + extra).unwrap();
    drop(f);
    if sealed {
        let to = seg.with_extension("seg");
        std::fs::rename(&seg, &to).unwrap();
        to
    } else {
        seg
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gigabytes_of_zeros_after_a_valid_header_are_read_once_and_copied_boundedly() {
    // 512 MiB by default (more than the quarantine copy's bound);
    // `MEATHOOK_HOSTILE_ZEROS_MIB` sets another size for a longer run.
    let zeros: u64 = std::env::var("MEATHOOK_HOSTILE_ZEROS_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512u64)
        << 20;
    for sealed in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let seg = segment_with_zeros(&dir, zeros, sealed).await;
        let out = Recorder::<Reading>::default();
        let mut s = spool(&dir, &out);
        let started = Instant::now();
        guarded("open", s.open()).await.unwrap();
        let opened = started.elapsed();
        let report = s.recovery_report().unwrap().clone();
        s.advance(T0 + support::HOUR).await.unwrap();
        guarded("flush", s.flush()).await.unwrap();
        eprintln!(
            "{} with {zeros} bytes of zeros: opened in {opened:?}, delivered in {:?}",
            if sealed { "sealed" } else { "open" },
            started.elapsed()
        );
        // The five readings before the zeros are delivered.
        assert_eq!(out.records().len(), 5, "{report:?}");
        if sealed {
            // Damage in a sealed segment: a copy is kept, but a bounded one.
            assert_eq!(report.quarantined.len(), 1, "{report:?}");
            let copied = quarantine_bytes(&dir);
            assert!(copied <= (256 << 20) + 4096, "copied {copied} bytes");
            let reason = std::fs::read_to_string(dir.join(QUARANTINE_DIR).join(format!(
                "{}.reason",
                seg.file_name().unwrap().to_string_lossy()
            )))
            .unwrap();
            assert!(reason.contains("only its first"), "{reason}");
        } else {
            // In an open segment, more zeros than a spool writes ahead are a
            // torn tail: cut, with the few the spool wrote ahead before them.
            assert!(
                (zeros..=zeros + (1 << 20)).contains(&report.truncated_bytes),
                "{report:?}"
            );
            assert!(report.quarantined.is_empty(), "{report:?}");
        }
        s.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_header_is_moved_aside_by_rename_not_copied() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    // A large file with a segment's name and no segment header.
    let fake = dir.join("00000000000000000007.seg");
    std::fs::File::create(&fake)
        .unwrap()
        .set_len(20 << 30)
        .unwrap();
    let out = Recorder::<Reading>::default();
    let mut s = spool(&dir, &out);
    guarded("open", s.open()).await.unwrap();
    let report = s.recovery_report().unwrap().clone();
    assert_eq!(report.quarantined.len(), 1, "{report:?}");
    let moved = &report.quarantined[0];
    assert_eq!(std::fs::metadata(moved).unwrap().len(), 20 << 30);
    assert!(!fake.exists());
    // The quarantine holds the same inode, renamed: no data was copied.
    let blocks = std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(moved).unwrap());
    assert!(blocks < 64, "{blocks} blocks allocated");
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_segment_left_on_disk_fails_the_flush() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    std::fs::create_dir(dir.join("00000000000000000003.open")).unwrap();
    let out = Recorder::<Reading>::default();
    let mut s = spool(&dir, &out);
    s.ingest(&at(1), (0..2).map(reading).collect())
        .await
        .unwrap();
    let err = guarded("flush", s.flush()).await.unwrap_err();
    assert!(matches!(err, SpoolError::Unread { .. }), "{err}");
    assert!(
        err.to_string().contains("00000000000000000003.open"),
        "{err}"
    );
    // Once it is moved away, the next start flushes cleanly.
    s.close().await;
    std::fs::remove_dir(dir.join("00000000000000000003.open")).unwrap();
    let mut s = spool(&dir, &out);
    guarded("flush", s.flush()).await.unwrap();
    s.close().await;
}

/// A directory where the spool writes its temporary `sequence.tmp`: the
/// refusal names it (not `sequence`), and `verify` reports it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_at_a_temporary_name_is_named_in_the_error_and_by_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    std::fs::create_dir(dir.join("sequence.tmp")).unwrap();
    let out = Recorder::<Reading>::default();
    let mut s = spool(&dir, &out);
    let err = guarded("ingest", s.ingest(&at(0), (0..2).map(reading).collect()))
        .await
        .unwrap_err();
    let message = err.error().to_string();
    assert!(message.contains("sequence.tmp"), "{message}");
    assert!(message.contains("move it away"), "{message}");
    assert_eq!(err.records().len(), 2);
    s.close().await;
    let (code, text) = verify(&dir);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("sequence.tmp"), "{text}");
    // Moved away, the spool works.
    std::fs::remove_dir(dir.join("sequence.tmp")).unwrap();
    let mut s = spool(&dir, &out);
    s.ingest(&at(0), (0..2).map(reading).collect())
        .await
        .unwrap();
    s.close().await;
}

/// A `LOCK` that is a hard link to a file elsewhere is refused, and that
/// file is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_linked_lock_file_is_refused_and_its_other_name_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("spool");
    std::fs::create_dir_all(&dir).unwrap();
    let victim = tmp.path().join("victim.conf");
    std::fs::write(&victim, b"precious contents\n").unwrap();
    std::fs::hard_link(&victim, dir.join("LOCK")).unwrap();
    let out = Recorder::<Reading>::default();
    let mut s = spool(&dir, &out);
    let err = guarded("open", s.open()).await.unwrap_err();
    assert!(err.to_string().contains("hard links"), "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious contents\n");
}
