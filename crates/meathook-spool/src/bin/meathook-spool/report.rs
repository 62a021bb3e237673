//! `inspect --json` and `verify --json`: an [`Inspection`] as one JSON
//! document. The shape is part of the command's interface: fields may be
//! added, none is renamed or removed without a major release.
//!
//! ```text
//! {
//!   "dir": "spool/air",
//!   "damaged": false,                      // what makes `verify` exit 1
//!   "segments": [{
//!     "file": "00000000000000000007.seg", "path": "spool/air/00000000000000000007.seg",
//!     "state": "sealed",                   // "open", "sealed" or "abandoned"
//!     "pipeline": "air",                   // null (and the window) if the header is unreadable
//!     "window_start": "2026-11-23T10:00:00Z", "window_end": "2026-11-23T11:00:00Z",
//!     "created": "2026-11-23T10:00:02.5Z", "age_seconds": 73,
//!     "records": 15, "bytes": 1203, "lost": 0, "problems": []
//!   }],
//!   "totals": {"segments": 1, "records": 15, "bytes": 1203},
//!   "oldest_created": "2026-11-23T10:00:02.5Z", "oldest_age_seconds": 73,   // null without segments
//!   "quarantined": [], "dead_lettered": [], "stray": [],                    // paths
//!   "blockers": []                         // what would stop a spool from starting here
//! }
//! ```

use std::path::Path;

use meathook_spool::Inspection;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// An [`Inspection`] as the JSON document prints it.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    dir: String,
    damaged: bool,
    segments: Vec<Segment>,
    totals: Totals,
    oldest_created: Option<String>,
    oldest_age_seconds: Option<i64>,
    quarantined: Vec<String>,
    dead_lettered: Vec<String>,
    stray: Vec<String>,
    blockers: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Segment {
    file: String,
    path: String,
    state: &'static str,
    pipeline: Option<String>,
    window_start: Option<String>,
    window_end: Option<String>,
    created: Option<String>,
    age_seconds: Option<i64>,
    records: u64,
    bytes: u64,
    lost: u64,
    problems: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Totals {
    segments: usize,
    records: u64,
    bytes: u64,
}

/// A time in RFC 3339, UTC.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn path_text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

impl Report {
    /// The document for what `inspect` found in `dir`, ages counted to `now`.
    pub(crate) fn new(dir: &Path, found: &Inspection, now: OffsetDateTime) -> Self {
        let age = |t: OffsetDateTime| (now - t).whole_seconds().max(0);
        let segments: Vec<Segment> = found
            .segments
            .iter()
            .map(|s| Segment {
                file: s
                    .path
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                path: path_text(&s.path),
                state: s.state(),
                pipeline: s.window.as_ref().map(|w| w.pipeline.to_string()),
                window_start: s.window.as_ref().map(|w| rfc3339(w.start)),
                window_end: s.window.as_ref().map(|w| rfc3339(w.end)),
                created: s.created.map(rfc3339),
                age_seconds: s.created.map(age),
                records: s.records,
                bytes: s.bytes,
                lost: s.lost,
                problems: s.problems.clone(),
            })
            .collect();
        let oldest = found.segments.iter().filter_map(|s| s.created).min();
        let paths = |list: &[std::path::PathBuf]| list.iter().map(|p| path_text(p)).collect();
        Self {
            dir: path_text(dir),
            damaged: found.is_damaged(),
            totals: Totals {
                segments: segments.len(),
                records: found.segments.iter().map(|s| s.records).sum(),
                bytes: found.segments.iter().map(|s| s.bytes).sum(),
            },
            segments,
            oldest_created: oldest.map(rfc3339),
            oldest_age_seconds: oldest.map(age),
            quarantined: paths(&found.quarantined),
            dead_lettered: paths(&found.dead_lettered),
            stray: paths(&found.stray),
            blockers: found.blockers.clone(),
        }
    }
}
