//! Recovery: what `open` does with the files a previous run left.
//!
//! Segment by segment, oldest first, each read once as a stream:
//!
//! - an `.open` segment (the run stopped while its window was open) has its
//!   torn tail cut off after the last valid frame and becomes the open
//!   segment of its window again, so the window is delivered whole when it
//!   closes (zeros written ahead of its frames are its clean end, kept for
//!   the next appends); one whose header never reached the disk held nothing
//!   acknowledged and is removed;
//! - a sealed `.seg` segment, and an `.abandoned` one (given up on after a
//!   write failure, perhaps already delivered), waits for delivery as it is:
//!   neither is ever appended to again, so a replay names the same batch;
//! - any segment with damage before its end (a checksum or decode failure,
//!   or a sealed segment without its seal frame) has a bounded copy made in
//!   `quarantine/` with a `.reason` file and the number of records lost; its
//!   valid frames are still delivered;
//! - a segment whose header is unreadable is moved (renamed) to
//!   `quarantine/`;
//! - other files are reported and left alone.
//!
//! **Hostile directories:** every file is opened without following symlinks
//! and without blocking ([`Fs`]), and only regular files are read: a symlink,
//! FIFO, socket, device or directory named like a segment (or like `LOCK` or
//! `sequence`) is reported in [`RecoveryReport::skipped`] and left alone. A
//! name whose number is too large to be followed by another is skipped too.
//! The scanner resyncs over damage with a vectorised search, so a valid
//! header followed by gigabytes of zeros costs about one read of the file.
//!
//! Nothing here allocates more than one frame, so a huge backlog or a length
//! field of `u32::MAX` cannot exhaust memory, and no error other than being
//! unable to create the directories stops the start.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use meathook_core::WindowMeta;

use crate::codec;
use crate::fs::{EntryKind, Fs, FsFile, copy_durably, read_small, write_file_durably};
use crate::limits::Config;
use crate::queue::{Due, Shared};
use crate::reader::{Damage, FrameReader};
use crate::segment::{self, HeaderError, Segment, State};
use crate::writer::{OpenSeg, SEQUENCE_FILE, WriteFail, Writer, new_incarnation};

/// The largest copy of a damaged segment kept in `quarantine/`: a segment
/// is at most its size cap plus one batch, so a larger file is a lie (a
/// sparse file, say) and only its start is kept.
pub(crate) const MAX_QUARANTINE_COPY: u64 = 256 << 20;

/// Segment ids and sequence numbers above this are not believed: a name or
/// a frame claiming one could not be followed by another.
pub(crate) const MAX_BELIEVED: u64 = u64::MAX / 2;

/// Subdirectory for copies of damaged segments.
pub const QUARANTINE_DIR: &str = "quarantine";
/// Subdirectory for segments the inner sink refused permanently.
pub const DEAD_LETTER_DIR: &str = "dead-letter";
/// The lock file.
pub const LOCK_FILE: &str = "LOCK";

/// What recovery found when the spool was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Segments found and kept for delivery (open or sealed).
    pub segments: usize,
    /// Records in their valid frames.
    pub records: u64,
    /// Torn bytes cut from the tails of open segments.
    pub truncated_bytes: u64,
    /// Records lost to damage, exactly counted from the frame indexes.
    pub lost_records: u64,
    /// Copies written to `quarantine/`, each with a `.reason` file.
    pub quarantined: Vec<PathBuf>,
    /// Files that are not segments or could not be read, with the reason;
    /// left where they are.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Scans the spool directory and builds the writer that continues it.
pub(crate) fn recover<F: Fs>(
    fs: F,
    shared: Arc<Shared>,
    cfg: Config,
) -> Result<(Writer<F>, RecoveryReport), WriteFail> {
    let dir = shared.dir.clone();
    fs.create_dir_all(&dir).map_err(|source| WriteFail::Io {
        op: "create directory",
        path: dir.clone(),
        source,
    })?;
    let entries = fs.list(&dir).map_err(|source| WriteFail::Io {
        op: "list",
        path: dir.clone(),
        source,
    })?;
    // `quarantine/` and `dead-letter/` are made when first needed
    // ([`aside_dir`]); if there, they must be real directories, since files
    // are moved into them.
    for name in [QUARANTINE_DIR, DEAD_LETTER_DIR] {
        if entries
            .iter()
            .any(|e| e.name == name && e.kind != EntryKind::Dir)
        {
            return Err(WriteFail::Io {
                op: "create directory",
                path: dir.join(name),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "exists but is not a directory (a file or a symlink): move it away",
                ),
            });
        }
    }
    let mut report = RecoveryReport::default();
    let (seq_limit, id_limit) = read_leases(&fs, &dir, &mut report);
    let mut segments = Vec::new();
    let mut writer_floor = 0u64;
    for e in entries {
        let name = e.name.to_string_lossy().into_owned();
        let is_dir = e.kind == EntryKind::Dir;
        if is_dir && (name == QUARANTINE_DIR || name == DEAD_LETTER_DIR) {
            continue;
        }
        if name == LOCK_FILE || name == SEQUENCE_FILE && e.kind == EntryKind::File {
            continue;
        }
        match segment::parse_name(&name) {
            _ if name == SEQUENCE_FILE => report.skipped.push((
                dir.join(&name),
                format!("the sequence file is {}, not a regular file: sequence numbers restart above the segments found", e.kind),
            )),
            Some((id, _)) if id > MAX_BELIEVED => report.skipped.push((
                dir.join(&name),
                "named like a segment, but its number is too large to be one of ours; left alone".into(),
            )),
            Some((id, _)) if e.kind != EntryKind::File => {
                // Its number stays taken: a new segment never collides with it.
                writer_floor = writer_floor.max(id + 1);
                report.skipped.push((
                    dir.join(&name),
                    format!("named like a segment, but it is {}; left alone", e.kind),
                ));
            }
            Some((id, state)) => segments.push((id, state, e.len)),
            None => report
                .skipped
                .push((dir.join(&name), "not a spool segment".into())),
        }
    }
    segments.sort_unstable();
    let mut writer = Writer {
        fs: fs.clone(),
        shared: Arc::clone(&shared),
        cfg,
        open: Vec::new(),
        next_seq: seq_limit,
        seq_limit,
        next_id: id_limit,
        id_limit,
        last_sync: Instant::now(),
        incarnation: new_incarnation(),
        defer_syncs: false,
        unsynced_metadata: false,
    };
    // Segments moved aside keep their names: numbering goes on above them
    // too, so a later segment never shares a name with one of them.
    for aside in [QUARANTINE_DIR, DEAD_LETTER_DIR] {
        for e in fs.list(&dir.join(aside)).unwrap_or_default() {
            let name = e.name.to_string_lossy();
            let stem = name.split('.').next().unwrap_or_default();
            if let Some((id, _)) = segment::parse_name(&format!("{stem}.seg"))
                && id <= MAX_BELIEVED
            {
                writer.next_id = writer.next_id.max(id + 1);
            }
        }
    }
    writer.next_id = writer.next_id.max(writer_floor);
    for (id, state, len) in segments {
        writer.next_id = writer.next_id.max(id + 1);
        recover_one(&mut writer, &mut report, id, state, len);
    }
    // An open segment followed by a later segment of its window was
    // abandoned after a write failure: it is sealed now, so that it is
    // delivered before the later one.
    let mut newest: HashMap<WindowMeta, u64> = HashMap::new();
    let due_ids: Vec<(WindowMeta, u64)> = shared
        .queue()
        .due
        .iter()
        .map(|d| (d.segment.window.clone(), d.segment.id))
        .collect();
    let open_ids = writer.open.iter().map(|o| (o.seg.window.clone(), o.seg.id));
    for (window, id) in due_ids.into_iter().chain(open_ids) {
        let slot = newest.entry(window).or_insert(id);
        *slot = (*slot).max(id);
    }
    let mut at = 0;
    while at < writer.open.len() {
        let seg = &writer.open[at].seg;
        if newest.get(&seg.window).is_some_and(|&max| max > seg.id) {
            if let Err(e) = writer.seal(at) {
                report.skipped.push((dir.clone(), describe(&e)));
            }
        } else {
            at += 1;
        }
    }
    Ok((writer, report))
}

fn describe(e: &WriteFail) -> String {
    match e {
        WriteFail::Io { op, path, source } => format!("{op} {}: {source}", path.display()),
        other => format!("{other:?}"),
    }
}

fn read_leases<F: Fs>(fs: &F, dir: &Path, report: &mut RecoveryReport) -> (u64, u64) {
    let path = dir.join(SEQUENCE_FILE);
    let Ok(text) = read_small(fs, &path, 256) else {
        return (0, 0);
    };
    let mut parts = text.split_whitespace().map(str::parse::<u64>);
    match (parts.next(), parts.next()) {
        (Some(Ok(seq)), Some(Ok(id))) if seq <= MAX_BELIEVED && id <= MAX_BELIEVED => (seq, id),
        _ => {
            report.skipped.push((
                path,
                "unreadable sequence file; sequence numbers restart above the segments found"
                    .into(),
            ));
            (0, 0)
        }
    }
}

fn recover_one<F: Fs>(
    w: &mut Writer<F>,
    report: &mut RecoveryReport,
    id: u64,
    state: State,
    len: u64,
) {
    let fs = w.fs.clone();
    let dir = w.shared.dir.clone();
    let path = segment::path(&dir, id, state);
    let rd = match fs.open_read(&path) {
        Ok(rd) => rd,
        Err(e) => {
            report.skipped.push((path, format!("cannot read: {e}")));
            return;
        }
    };
    let (header, mut reader) = match FrameReader::open(rd, u64::MAX) {
        Ok(ok) => ok,
        Err(HeaderError::Short) if state == State::Open => {
            // Created but its header never made it: nothing acknowledged.
            if fs
                .remove_file(&path)
                .and_then(|()| fs.sync_dir(&dir))
                .is_ok()
            {
                report.truncated_bytes += len;
            }
            return;
        }
        Err(HeaderError::Io(e)) => {
            report.skipped.push((path, format!("cannot read: {e}")));
            return;
        }
        Err(HeaderError::Short) => {
            quarantine_whole(w, report, &path, "the segment header is cut short");
            return;
        }
        Err(HeaderError::Invalid(why)) => {
            quarantine_whole(w, report, &path, &why);
            return;
        }
    };
    let mut seg = Segment {
        id,
        window: header.window.clone(),
        created: header.created,
        incarnation: header.incarnation,
        seqs: None,
        records: 0,
        bytes: len,
    };
    let mut payload = Vec::new();
    loop {
        payload.clear();
        match reader.next_frame_into(&mut payload) {
            Ok(Some(h)) => {
                seg.note_frame(h.first_seq, h.count);
                if h.end_seq() <= MAX_BELIEVED {
                    w.next_seq = w.next_seq.max(h.end_seq());
                }
            }
            Ok(None) => break,
            Err(e) => {
                report.skipped.push((path, format!("read failed: {e}")));
                return;
            }
        }
    }
    let damage = reader.damage.clone();
    if let Some(next) = damage.seal_next_seq.filter(|&n| n <= MAX_BELIEVED) {
        w.next_seq = w.next_seq.max(next);
    }
    let index = reader.index();
    // In an open segment, bytes after the last valid frame are a torn write
    // of a frame that was never acknowledged (in `EveryIngest`): not damage.
    let torn_only = state == State::Open
        && damage.lost == 0
        && damage.reasons.len() <= 1
        && damage.tail.is_some();
    let damaged = match state {
        State::Open => !damage.reasons.is_empty() && !torn_only,
        State::Sealed => !damage.reasons.is_empty() || !damage.sealed,
        State::Abandoned => !damage.reasons.is_empty(),
    };
    if damaged {
        quarantine_copy(w, report, &path, &damage);
    }
    // An open segment whose torn tail cannot be cut is never appended to
    // again: it is delivered up to its last valid frame, like a segment
    // abandoned after a write failure.
    let mut abandoned_at = None;
    if state == State::Open
        && let Some((offset, cut)) = damage.tail
    {
        let truncated = fs
            .open_append(&path)
            .and_then(|mut f| f.set_len(offset).and_then(|()| f.sync_data()));
        match truncated {
            Ok(()) => {
                report.truncated_bytes += cut;
                w.shared.stats.add(|c| &c.truncated_bytes, cut);
                seg.bytes = offset;
            }
            Err(e) => {
                report.skipped.push((
                    path.clone(),
                    format!("cannot cut the torn tail ({e}); delivering the segment up to it"),
                ));
                abandoned_at = Some(offset);
            }
        }
    }
    // Zeros written ahead of an open segment's frames stay: the next append
    // writes over them.
    if state == State::Open
        && let Some((offset, _)) = damage.zeros
    {
        seg.bytes = offset;
    }
    // An open segment an older release wrote in another payload encoding is
    // never appended to: its header names its frames' encoding, so frames
    // of this one must not follow. It is delivered as it is.
    if state == State::Open
        && abandoned_at.is_none()
        && header.encoding != codec::ENCODING_POSITIONAL_LZ4
    {
        abandoned_at = Some(seg.bytes);
    }
    report.segments += 1;
    report.records += seg.records;
    let stats = &w.shared.stats;
    stats.add(|c| &c.segments_on_disk, 1);
    stats.add(|c| &c.bytes_on_disk, seg.bytes);
    stats.add(|c| &c.records_on_disk, seg.records);
    w.shared.note_created(id, seg.created);
    if state == State::Open && damage.sealed && abandoned_at.is_none() {
        // Sealed, but the rename to `.seg` did not reach the disk (its
        // directory sync failed before a crash): never append after the
        // seal frame. Renamed now, or, if that fails, retired by the worker
        // before it delivers.
        let sealed = segment::path(&dir, id, State::Sealed);
        let renamed = fs.rename(&path, &sealed);
        let _ = fs.sync_dir(&dir);
        let (path, valid_len) = match renamed {
            Ok(()) => (sealed, u64::MAX),
            Err(_) => (path, seg.bytes),
        };
        w.shared.push_due(Due {
            valid_len,
            known_lost: damage.lost,
            segment: seg,
            path,
        });
        return;
    }
    match (state, abandoned_at) {
        (State::Open, Some(valid_len)) => w.shared.push_due(Due {
            valid_len,
            known_lost: damage.lost,
            segment: seg,
            path,
        }),
        (State::Open, None) => w.open.push(OpenSeg {
            len: seg.bytes,
            written_to: damage.zeros.map_or(seg.bytes, |_| len),
            seg,
            file: None,
            index,
            dirty: false,
            known_lost: damage.lost,
        }),
        (State::Sealed | State::Abandoned, _) => w.shared.push_due(Due {
            valid_len: u64::MAX,
            known_lost: damage.lost,
            segment: seg,
            path,
        }),
    }
}

/// Copies a damaged segment to `quarantine/` with a reason file and counts
/// its losses. A copy left by an earlier start is kept, not made again.
pub(crate) fn quarantine_copy<F: Fs>(
    w: &Writer<F>,
    report: &mut RecoveryReport,
    path: &Path,
    damage: &Damage,
) {
    let mut reasons = damage.reasons.join("\n");
    if !damage.sealed && path.extension().is_some_and(|e| e == "seg") {
        reasons.push_str("\nthe seal frame is missing or damaged");
    }
    match copy_aside(&w.fs, &w.shared.dir, path, damage.lost, &reasons) {
        Ok(Some(copy)) => {
            tracing::error!(segment = %path.display(), lost = damage.lost, copy = %copy.display(), "damaged spool segment quarantined; its valid records are still delivered");
            w.shared.stats.add(|c| &c.quarantined_records, damage.lost);
            w.shared.stats.add(|c| &c.quarantined_segments, 1);
            report.lost_records += damage.lost;
            report.quarantined.push(copy);
        }
        Ok(None) => report.lost_records += damage.lost,
        Err(e) => report.skipped.push((
            path.to_path_buf(),
            format!("cannot copy to quarantine: {e}"),
        )),
    }
}

/// A name in `dir` for the file `path` that no file there has yet: its own
/// name, or that name with `.1`, `.2`, … added.
pub(crate) fn free_name<F: Fs>(fs: &F, dir: &Path, path: &Path) -> std::io::Result<PathBuf> {
    let name = path.file_name().unwrap_or_default();
    let taken: std::collections::HashSet<_> = fs.list(dir)?.into_iter().map(|e| e.name).collect();
    let mut candidate = name.to_os_string();
    let mut n = 0u32;
    while taken.contains(&candidate) {
        n += 1;
        candidate = name.to_os_string();
        candidate.push(format!(".{n}"));
    }
    Ok(dir.join(candidate))
}

/// `dir/name` (`quarantine/` or `dead-letter/`), created on first use and
/// made durable in `dir`; refused if it is not a real directory (a symlink
/// to one, say).
pub(crate) fn aside_dir<F: Fs>(fs: &F, dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    let path = dir.join(name);
    fs.create_dir_all(&path)?;
    let real = fs
        .list(dir)?
        .iter()
        .any(|e| e.name == name && e.kind == EntryKind::Dir);
    if !real {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!(
                "{} exists but is not a directory (a file or a symlink): move it away",
                path.display()
            ),
        ));
    }
    fs.sync_dir(dir)?;
    Ok(path)
}

/// Copies at most [`MAX_QUARANTINE_COPY`] bytes of `path` into
/// `quarantine/` with a `.reason` file; `Ok(None)` if a copy is already
/// there.
pub(crate) fn copy_aside<F: Fs>(
    fs: &F,
    dir: &Path,
    path: &Path,
    lost: u64,
    reasons: &str,
) -> std::io::Result<Option<PathBuf>> {
    let name = path.file_name().unwrap_or_default();
    let copy = aside_dir(fs, dir, QUARANTINE_DIR)?.join(name);
    if fs.open_read(&copy).is_ok() {
        return Ok(None);
    }
    let mut reason_path = copy.clone().into_os_string();
    reason_path.push(".reason");
    let mut text = format!("records lost: {lost}\n{reasons}\n");
    let len = fs.len(path)?;
    if len > MAX_QUARANTINE_COPY {
        text.push_str(&format!(
            "the segment is {len} bytes; only its first {MAX_QUARANTINE_COPY} bytes were copied\n"
        ));
    }
    write_file_durably(fs, Path::new(&reason_path), text.as_bytes())?;
    copy_durably(fs, path, &copy, MAX_QUARANTINE_COPY)?;
    Ok(Some(copy))
}

/// Moves a segment nothing can be read from into `quarantine/` (a rename:
/// nothing is copied, whatever its size), under a name no earlier
/// quarantine used, with a `.reason` file.
fn quarantine_whole<F: Fs>(w: &Writer<F>, report: &mut RecoveryReport, path: &Path, why: &str) {
    let reasons = format!("records lost: unknown\nunreadable segment header: {why}\n");
    let (fs, dir) = (&w.fs, &w.shared.dir);
    let moved = (|| {
        let target = free_name(fs, &aside_dir(fs, dir, QUARANTINE_DIR)?, path)?;
        let mut reason_path = target.clone().into_os_string();
        reason_path.push(".reason");
        write_file_durably(fs, Path::new(&reason_path), reasons.as_bytes())?;
        fs.rename(path, &target)?;
        fs.sync_dir(&dir.join(QUARANTINE_DIR))?;
        fs.sync_dir(dir)?;
        Ok::<_, std::io::Error>(target)
    })();
    match moved {
        Ok(copy) => {
            tracing::error!(segment = %path.display(), reason = why, "unreadable spool segment moved to quarantine");
            w.shared.stats.add(|c| &c.quarantined_segments, 1);
            report.quarantined.push(copy);
        }
        Err(e) => report.skipped.push((
            path.to_path_buf(),
            format!("{why}; cannot move to quarantine: {e}"),
        )),
    }
}
