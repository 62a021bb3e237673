//! Recovery from damaged files: torn tails at every byte, bit flips in a
//! middle frame, garbage tails. Real files, real spools.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)] // tests; small fixed sizes

use crate::support;

use std::path::{Path, PathBuf};

use meathook_core::{Drain, Sink};
use meathook_spool::{DiskSpool, QUARANTINE_DIR};
use support::{Mode, Reading, Recorder, T0, at, hourly, quick_backoff, reading};

/// Writes `batches` batches of `per` records into an hourly window and
/// leaves the segment on disk: open (`seal = false`) or sealed. Returns the
/// segment path and where its frames end after each batch (an open
/// segment's file goes on with the zeros written ahead of them).
async fn write_segment(dir: &Path, batches: u64, per: u64, seal: bool) -> (PathBuf, Vec<u64>) {
    let out = Recorder::<Reading>::default();
    out.set_mode(Mode::Transient);
    let mut spool = DiskSpool::new(out.clone(), dir, hourly()).with_backoff(quick_backoff());
    spool.open().await.unwrap();
    let mut ends = Vec::new();
    for b in 0..batches {
        spool
            .ingest(
                &at(b as i64),
                (b * per..(b + 1) * per).map(reading).collect(),
            )
            .await
            .unwrap();
        ends.push(spool.stats().snapshot().bytes_on_disk);
    }
    if seal {
        spool.advance(T0 + support::HOUR).await.unwrap();
    } else {
        // Nothing is due; the inner sink's own drain must succeed.
        out.set_mode(Mode::Accept);
        spool.drain(Drain::KeepActiveWindow).await.unwrap();
        assert!(out.batches().is_empty());
    }
    spool.close().await;
    (segment_file(dir), ends)
}

fn segment_file(dir: &Path) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "open" || e == "seg"))
        .collect();
    found.sort();
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

/// Opens a spool on `dir`, delivers everything, returns what arrived and
/// the recovery report.
async fn replay(dir: &Path) -> (Vec<Reading>, meathook_spool::RecoveryReport) {
    let out = Recorder::<Reading>::default();
    let mut spool = DiskSpool::new(out.clone(), dir, hourly());
    spool.open().await.unwrap();
    let report = spool.recovery_report().unwrap().clone();
    spool.flush().await.unwrap();
    spool.close().await;
    (out.records(), report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_cut_at_every_byte_offset_keeps_exactly_the_complete_records() {
    let src = tempfile::tempdir().unwrap();
    let (seg, ends) = write_segment(src.path(), 4, 2, false).await;
    let bytes = std::fs::read(&seg).unwrap();
    let end = *ends.last().unwrap() as usize;
    assert!(
        bytes.len() > end + 1000 && bytes[end..].iter().all(|&b| b == 0),
        "zeros are written ahead of the frames"
    );
    let name = seg.file_name().unwrap().to_owned();
    // Every cut inside the frames and the first zeros, and the whole file.
    for cut in (0..=end + 100).chain([bytes.len()]) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(&name), &bytes[..cut]).unwrap();
        let (got, report) = replay(dir.path()).await;
        let complete = ends.iter().filter(|&&end| end <= cut as u64).count() as u64;
        let expected: Vec<Reading> = (0..complete * 2).map(reading).collect();
        assert_eq!(got, expected, "cut at byte {cut} of {}", bytes.len());
        assert_eq!(
            report.lost_records, 0,
            "cut at {cut}: a torn tail is not a loss"
        );
        assert!(report.quarantined.is_empty(), "cut at {cut}: {report:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bit_flips_in_a_middle_frame_lose_that_frame_only_and_quarantine_the_segment() {
    let src = tempfile::tempdir().unwrap();
    let (seg, ends) = write_segment(src.path(), 5, 3, true).await;
    let bytes = std::fs::read(&seg).unwrap();
    let name = seg.file_name().unwrap().to_owned();
    // Frame 2 spans ends[1]..ends[2]: header fields, then payload.
    let start = ends[1] as usize;
    let targets = [
        ("magic", start),
        ("length", start + 5),
        ("sequence", start + 9),
        ("index", start + 17),
        ("count", start + 24),
        ("header checksum", start + 33),
        ("payload checksum", start + 37),
        ("payload", start + 40 + (ends[2] as usize - start - 40) / 2),
    ];
    for (what, offset) in targets {
        let dir = tempfile::tempdir().unwrap();
        let mut damaged = bytes.clone();
        damaged[offset] ^= 0x04;
        std::fs::write(dir.path().join(&name), &damaged).unwrap();
        let (got, report) = replay(dir.path()).await;
        let expected: Vec<Reading> = (0..15)
            .filter(|i| !(6..9).contains(i))
            .map(reading)
            .collect();
        assert_eq!(got, expected, "flip in the {what}");
        assert_eq!(report.lost_records, 3, "flip in the {what}: {report:?}");
        assert_eq!(report.quarantined.len(), 1, "flip in the {what}");
        let quarantined = dir.path().join(QUARANTINE_DIR).join(&name);
        assert_eq!(
            std::fs::read(&quarantined).unwrap(),
            damaged,
            "the copy is the damaged file"
        );
        let mut reason = quarantined.into_os_string();
        reason.push(".reason");
        let reason = std::fs::read_to_string(reason).unwrap();
        assert!(reason.starts_with("records lost: 3\n"), "{reason}");
    }
}

fn forged_header(len: u32) -> Vec<u8> {
    let mut h = vec![0u8; 40];
    h[0..4].copy_from_slice(&[0xF5, 0x4D, 0x48, 0x46]);
    h[4..8].copy_from_slice(&len.to_le_bytes());
    h[24..28].copy_from_slice(&1u32.to_le_bytes());
    h[28] = 1;
    let crc = crc32c::crc32c(&h[0..32]);
    h[32..36].copy_from_slice(&crc.to_le_bytes());
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_tails_are_cut_without_panic_or_large_allocation() {
    let src = tempfile::tempdir().unwrap();
    let (seg, ends) = write_segment(src.path(), 3, 4, false).await;
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.truncate(*ends.last().unwrap() as usize);
    let name = seg.file_name().unwrap().to_owned();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut max_len = forged_header(u32::MAX);
    max_len.extend_from_slice(&[1, 2, 3]);
    let tails: Vec<(&str, Vec<u8>)> = vec![
        // More zeros than a spool writes ahead.
        ("zeros", vec![0; (1 << 20) + 1]),
        ("random bytes", (0..(1 << 20)).map(|_| rng.u8(..)).collect()),
        ("u32::MAX length", max_len),
        ("16 MiB length, 3 bytes present", {
            let mut t = forged_header(16 << 20);
            t.extend_from_slice(&[9, 9, 9]);
            t
        }),
        ("magic repeated", [0xF5, 0x4D, 0x48, 0x46].repeat(5000)),
    ];
    for (what, tail) in tails {
        let dir = tempfile::tempdir().unwrap();
        let mut file = bytes.clone();
        file.extend_from_slice(&tail);
        let path = dir.path().join(&name);
        std::fs::write(&path, &file).unwrap();
        let (got, report) = replay(dir.path()).await;
        assert_eq!(
            got,
            (0..12).map(reading).collect::<Vec<_>>(),
            "tail of {what}"
        );
        assert_eq!(report.truncated_bytes, tail.len() as u64, "tail of {what}");
        assert_eq!(report.lost_records, 0, "tail of {what}");
    }
}

#[tokio::test]
async fn stray_and_unreadable_files_are_reported_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
    std::fs::write(
        dir.path().join("00000000000000000099.seg"),
        b"not a segment at all, long enough to hold a header maybe not",
    )
    .unwrap();
    let (got, report) = replay(dir.path()).await;
    assert!(got.is_empty());
    assert_eq!(report.skipped.len(), 1, "{report:?}");
    assert!(report.skipped[0].0.ends_with("notes.txt"));
    assert!(
        dir.path().join("notes.txt").exists(),
        "stray files are left alone"
    );
    assert_eq!(
        report.quarantined.len(),
        1,
        "an unreadable segment is moved to quarantine"
    );
    assert!(!dir.path().join("00000000000000000099.seg").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_and_verify_report_segments_and_damage_without_modifying_anything() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, ends) = write_segment(dir.path(), 3, 5, true).await;
    let bin = env!("CARGO_BIN_EXE_meathook-spool");
    let run = |cmd: &str| {
        std::process::Command::new(bin)
            .args([cmd, dir.path().to_str().unwrap()])
            .output()
            .unwrap()
    };
    let ok = run("verify");
    let text = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert!(ok.status.success(), "{text}");
    assert!(
        text.contains("sealed")
            && text.contains("air [2026-11-23T10:00:00Z, 2026-11-23T11:00:00Z)"),
        "{text}"
    );
    assert!(
        text.contains("records 15") && text.contains("1 segments, 15 records"),
        "{text}"
    );
    assert!(
        text.contains("oldest undelivered") && text.contains("verify: ok"),
        "{text}"
    );
    // Damage the middle frame's payload.
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = (ends[1] + 45) as usize;
    bytes[at] ^= 0xFF;
    std::fs::write(&seg, &bytes).unwrap();
    let bad = run("verify");
    let text = String::from_utf8_lossy(&bad.stdout).into_owned();
    assert_eq!(bad.status.code(), Some(1), "{text}");
    assert!(
        text.contains("damaged:") && text.contains("records lost: 5"),
        "{text}"
    );
    assert_eq!(run("inspect").status.code(), Some(0));
    assert_eq!(
        std::fs::read(&seg).unwrap(),
        bytes,
        "inspection changed the segment"
    );
    assert!(
        !dir.path()
            .join(QUARANTINE_DIR)
            .join(seg.file_name().unwrap())
            .exists()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zeros_written_ahead_are_kept_by_a_restart_written_over_and_cut_at_the_seal() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, ends) = write_segment(dir.path(), 3, 4, false).await;
    let before = std::fs::read(&seg).unwrap();
    let end = *ends.last().unwrap() as usize;
    assert!(
        before.len() > end + 1000 && before[end..].iter().all(|&b| b == 0),
        "frames end at {end}, the file at {}",
        before.len()
    );
    let out = Recorder::<Reading>::default();
    out.set_mode(Mode::Transient);
    let mut spool = DiskSpool::new(out.clone(), dir.path(), hourly()).with_backoff(quick_backoff());
    spool.open().await.unwrap();
    let report = spool.recovery_report().unwrap().clone();
    assert_eq!(
        (
            report.truncated_bytes,
            report.lost_records,
            report.quarantined.len()
        ),
        (0, 0, 0),
        "{report:?}"
    );
    assert_eq!(std::fs::read(&seg).unwrap(), before, "the restart kept it");
    // The next batch goes over the zeros: the file keeps its length.
    spool
        .ingest(&at(3), (12..16).map(reading).collect())
        .await
        .unwrap();
    let after = std::fs::read(&seg).unwrap();
    assert_eq!(after.len(), before.len());
    assert_eq!(after[..end], before[..end]);
    assert!(after[end..end + 40].iter().any(|&b| b != 0));
    // Sealed, the segment ends with its seal frame: no zeros.
    spool.advance(T0 + support::HOUR).await.unwrap();
    let sealed = segment_file(dir.path());
    assert_eq!(sealed.extension().unwrap(), "seg");
    let frames = spool.stats().snapshot().bytes_on_disk;
    assert_eq!(std::fs::metadata(&sealed).unwrap().len(), frames);
    assert_ne!(frames as usize, before.len());
    out.set_mode(Mode::Accept);
    spool.flush().await.unwrap();
    assert_eq!(out.records(), (0..16).map(reading).collect::<Vec<_>>());
    spool.close().await;
}
