//! Read-only inspection of a spool directory, for `meathook-spool inspect`
//! and `verify`. Opens every file read-only and takes no lock, so it can run
//! next to a live spool. Like recovery it never follows a symlink and never
//! opens anything but a regular file, so a hostile directory cannot make it
//! hang or read without end; what would stop a spool from starting there is
//! reported in [`Inspection::blockers`].

use std::fmt;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::fs::{EntryKind, Fs};
use crate::reader::FrameReader;
use crate::recovery::{DEAD_LETTER_DIR, LOCK_FILE, MAX_BELIEVED, QUARANTINE_DIR};
use crate::segment::{self, State};
use crate::writer::SEQUENCE_FILE;

/// One segment as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentReport {
    /// The segment file.
    pub path: PathBuf,
    /// Whether it is sealed or abandoned (immutable), rather than open.
    pub sealed: bool,
    /// Pipeline and window from its header; `None` if the header is unreadable.
    pub window: Option<meathook_core::WindowMeta>,
    /// When it was created.
    pub created: Option<OffsetDateTime>,
    /// Records in valid frames.
    pub records: u64,
    /// Bytes of the file.
    pub bytes: u64,
    /// Records known lost to damage.
    pub lost: u64,
    /// What is wrong with it; empty if nothing.
    pub problems: Vec<String>,
}

/// What `inspect` found in a spool directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Inspection {
    /// Segments, oldest first.
    pub segments: Vec<SegmentReport>,
    /// Files in `quarantine/`.
    pub quarantined: Vec<PathBuf>,
    /// Files in `dead-letter/`.
    pub dead_lettered: Vec<PathBuf>,
    /// Files that are not part of a spool.
    pub stray: Vec<PathBuf>,
    /// What would stop a spool from starting on this directory, or make it
    /// leave a file unread: `quarantine` or `dead-letter` not being a
    /// directory, a `LOCK` or `sequence` that is not a regular file, a
    /// symlink, FIFO or device named like a segment.
    pub blockers: Vec<String>,
}

impl SegmentReport {
    /// `"open"`, `"sealed"` or `"abandoned"`: the state its file name says.
    pub fn state(&self) -> &'static str {
        match self.path.extension().and_then(|e| e.to_str()) {
            Some("abandoned") => "abandoned",
            _ if self.sealed => "sealed",
            _ => "open",
        }
    }
}

impl Inspection {
    /// Whether any segment is damaged (a torn tail of an open segment is
    /// normal after a crash and not counted), or anything in
    /// [`blockers`](Self::blockers) would stop the spool.
    pub fn is_damaged(&self) -> bool {
        !self.blockers.is_empty() || self.segments.iter().any(|s| !s.problems.is_empty())
    }
}

/// Reads every segment of `dir` through `fs`, changing nothing.
///
/// # Errors
///
/// When `dir` cannot be listed.
pub fn inspect<F: Fs>(fs: &F, dir: &Path) -> std::io::Result<Inspection> {
    let mut out = Inspection::default();
    let mut found = Vec::new();
    for e in fs.list(dir)? {
        let name = e.name.to_string_lossy().into_owned();
        let path = dir.join(&name);
        let is_dir = e.kind == EntryKind::Dir;
        if !is_dir && (name == QUARANTINE_DIR || name == DEAD_LETTER_DIR) {
            out.blockers.push(format!(
                "{} is {}, not a directory: the spool cannot start until it is moved away",
                path.display(),
                e.kind
            ));
            continue;
        }
        if is_dir && (name == QUARANTINE_DIR || name == DEAD_LETTER_DIR) {
            let list = fs.list(&path).unwrap_or_default();
            let mut files: Vec<PathBuf> = list.iter().map(|f| path.join(&f.name)).collect();
            files.sort();
            if name == QUARANTINE_DIR {
                out.quarantined = files;
            } else {
                out.dead_lettered = files;
            }
            continue;
        }
        if name == LOCK_FILE || name == SEQUENCE_FILE {
            if e.kind != EntryKind::File {
                out.blockers.push(format!(
                    "{} is {}, not a regular file: {}",
                    path.display(),
                    e.kind,
                    if name == LOCK_FILE {
                        "the spool cannot start until it is moved away"
                    } else {
                        "it is ignored, and sequence numbers restart above the segments found"
                    }
                ));
            }
            continue;
        }
        if name.ends_with(".tmp") && e.kind != EntryKind::File {
            out.blockers.push(format!(
                "{} is {}: the spool writes a temporary file under that name, and cannot until it is moved away",
                path.display(),
                e.kind
            ));
            continue;
        }
        match segment::parse_name(&name) {
            Some((id, _)) if id > MAX_BELIEVED => out.blockers.push(format!(
                "{} is named like a segment, but its number is too large to be one; the spool leaves it alone",
                path.display()
            )),
            Some(_) if e.kind != EntryKind::File => out.blockers.push(format!(
                "{} is named like a segment, but it is {}; the spool leaves it alone",
                path.display(),
                e.kind
            )),
            Some((id, state)) => found.push((id, state, e.len, path)),
            None => out.stray.push(path),
        }
    }
    out.blockers.sort();
    found.sort();
    out.stray.sort();
    for (_, state, bytes, path) in found {
        out.segments.push(inspect_one(fs, path, state, bytes));
    }
    Ok(out)
}

fn inspect_one<F: Fs>(fs: &F, path: PathBuf, state: State, bytes: u64) -> SegmentReport {
    let mut report = SegmentReport {
        path,
        sealed: state != State::Open,
        window: None,
        created: None,
        records: 0,
        bytes,
        lost: 0,
        problems: Vec::new(),
    };
    let rd = match fs.open_read(&report.path) {
        Ok(rd) => rd,
        Err(e) => {
            report.problems.push(format!("cannot read: {e}"));
            return report;
        }
    };
    let (header, mut reader) = match FrameReader::open(rd, u64::MAX) {
        Ok(ok) => ok,
        Err(e) => {
            report.problems.push(format!("unreadable header: {e:?}"));
            return report;
        }
    };
    report.window = Some(header.window);
    report.created = Some(header.created);
    loop {
        match reader.next_frame() {
            Ok(Some((h, _))) => report.records += u64::from(h.count),
            Ok(None) => break,
            Err(e) => {
                report.problems.push(format!("read failed: {e}"));
                break;
            }
        }
    }
    let damage = reader.damage;
    report.lost = damage.lost;
    let torn_only =
        !report.sealed && damage.lost == 0 && damage.reasons.len() <= 1 && damage.tail.is_some();
    if !torn_only {
        report.problems.extend(damage.reasons);
    }
    if state == State::Sealed && !damage.sealed {
        report.problems.push("seal frame missing or damaged".into());
    }
    report
}

impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let now = OffsetDateTime::now_utc();
        let (mut records, mut bytes) = (0u64, 0u64);
        for s in &self.segments {
            records += s.records;
            bytes += s.bytes;
            let name = s.path.file_name().unwrap_or_default().to_string_lossy();
            let window = s
                .window
                .as_ref()
                .map_or_else(|| "?".to_owned(), ToString::to_string);
            let age = s.created.map_or_else(
                || "?".to_owned(),
                |c| format!("{}s", (now - c).whole_seconds().max(0)),
            );
            let state = s.state();
            writeln!(
                f,
                "{name}  {state:6}  {window}  records {}  bytes {}  age {age}",
                s.records, s.bytes
            )?;
            for p in &s.problems {
                writeln!(f, "    damaged: {p}")?;
            }
            if s.lost > 0 {
                writeln!(f, "    records lost: {}", s.lost)?;
            }
        }
        let oldest = self.segments.iter().filter_map(|s| s.created).min();
        writeln!(
            f,
            "{} segments, {records} records, {bytes} bytes",
            self.segments.len()
        )?;
        if let Some(oldest) = oldest {
            writeln!(
                f,
                "oldest undelivered: {}s",
                (now - oldest).whole_seconds().max(0)
            )?;
        }
        for (label, list) in [
            ("quarantined", &self.quarantined),
            ("dead-lettered", &self.dead_lettered),
            ("stray", &self.stray),
        ] {
            for p in list {
                writeln!(f, "{label}: {}", p.display())?;
            }
        }
        for b in &self.blockers {
            writeln!(f, "problem: {b}")?;
        }
        Ok(())
    }
}
