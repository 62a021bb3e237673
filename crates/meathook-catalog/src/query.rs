//! The questions users ask of a catalog, answered from the manifest: which
//! files a pipeline delivered in a time range, which windows have no
//! delivery, and totals per day. The PostgreSQL catalog answers the same
//! questions in SQL (`postgres::Catalog`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use meathook_core::WindowMeta;
use time::{Date, OffsetDateTime};

use crate::manifest::{ManifestError, for_each_record};
use crate::record::DeliveryRecord;

/// A gap report covers at most this many windows (a year of minutes is
/// about half a million).
pub const MAX_GAP_WINDOWS: u64 = 1_000_000;

/// A window with no delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// First instant of the window.
    pub start: OffsetDateTime,
    /// First instant after it.
    pub end: OffsetDateTime,
}

/// What one pipeline delivered on one UTC day (by window start).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DayTotal {
    /// The pipeline.
    pub pipeline: String,
    /// The UTC day.
    pub day: Date,
    /// Files delivered.
    pub files: u64,
    /// Records in them.
    pub rows: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// A query could not be answered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The manifest could not be read.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The gap report would list too many windows.
    #[error(
        "a gap report from {from} to {to} in windows of {window:?} covers {windows} windows, more than {MAX_GAP_WINDOWS}; \
         ask for a shorter range or a longer window"
    )]
    TooManyWindows {
        /// Start of the range.
        from: OffsetDateTime,
        /// End of the range.
        to: OffsetDateTime,
        /// The window length.
        window: Duration,
        /// How many windows that is.
        windows: u64,
    },
    /// The window length is zero or not whole seconds.
    #[error("a window length must be a positive number of whole seconds, not {0:?}")]
    BadWindow(Duration),
}

/// The deliveries of `pipeline` whose window starts in `[from, to)`, each
/// (destination, path) once (the first record of it), ordered by window
/// start and path. Compacted files are listed too (their window is the
/// day they hold, and `replaces` names what they replaced), and every file
/// a compaction replaced says which file holds its rows now
/// ([`DeliveryRecord::compacted_into`]): that is each file's lifecycle —
/// written, then compacted into another file and deleted.
///
/// # Errors
///
/// [`QueryError::Manifest`] when the manifest cannot be read.
pub fn list(
    manifest: &Path,
    pipeline: &str,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<DeliveryRecord>, QueryError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    // (destination, replaced path) → the compacted file that replaced it.
    let mut replaced_by: HashMap<(String, String), String> = HashMap::new();
    for_each_record(manifest, |r| {
        if r.pipeline != pipeline {
            return;
        }
        for old in &r.replaces {
            replaced_by.insert((r.destination.clone(), old.clone()), r.path.clone());
        }
        if r.window_start >= from
            && r.window_start < to
            && seen.insert((r.destination.clone(), r.path.clone()))
        {
            out.push(r);
        }
    })?;
    for r in &mut out {
        r.compacted_into = replaced_by.remove(&(r.destination.clone(), r.path.clone()));
    }
    out.sort_by(|a, b| (a.window_start, &a.path).cmp(&(b.window_start, &b.path)));
    Ok(out)
}

/// Totals per pipeline (or for `pipeline` only) and UTC day of window
/// start, for windows starting in `[from, to)`, ordered by pipeline and day.
/// Batches' files only: a compacted file holds rows already counted, so
/// the totals are the same before and after a compaction.
///
/// # Errors
///
/// [`QueryError::Manifest`] when the manifest cannot be read.
pub fn daily_totals(
    manifest: &Path,
    pipeline: Option<&str>,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<DayTotal>, QueryError> {
    let mut seen = HashSet::new();
    let mut totals: BTreeMap<(String, Date), (u64, u64, u64)> = BTreeMap::new();
    for_each_record(manifest, |r| {
        if pipeline.is_none_or(|p| p == r.pipeline)
            && !r.is_compaction()
            && r.window_start >= from
            && r.window_start < to
            && seen.insert((r.destination.clone(), r.path.clone()))
        {
            let day = r.window_start.to_offset(time::UtcOffset::UTC).date();
            let t = totals.entry((r.pipeline, day)).or_default();
            t.0 += 1;
            t.1 += r.rows;
            t.2 += r.bytes;
        }
    })?;
    Ok(totals
        .into_iter()
        .map(|((pipeline, day), (files, rows, bytes))| DayTotal {
            pipeline,
            day,
            files,
            rows,
            bytes,
        })
        .collect())
}

/// What the manifest records of one pipeline: what `meathook-catalog`
/// falls back on when `--pipeline` or `--window` is not given.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipelineSummary {
    /// The pipeline.
    pub pipeline: String,
    /// Files delivered (each (destination, path) once).
    pub files: u64,
    /// The earliest window start delivered.
    pub first_window: OffsetDateTime,
    /// The latest window start delivered.
    pub last_window: OffsetDateTime,
    /// The length of the latest window delivered: the pipeline's window
    /// length as it is configured now, unless it changed since.
    pub window: Duration,
}

/// Every pipeline the manifest records a delivery of, ordered by name.
///
/// # Errors
///
/// [`QueryError::Manifest`] when the manifest cannot be read.
pub fn pipelines(manifest: &Path) -> Result<Vec<PipelineSummary>, QueryError> {
    let mut seen = HashSet::new();
    let mut found: BTreeMap<String, PipelineSummary> = BTreeMap::new();
    for_each_record(manifest, |r| {
        if r.is_compaction() || !seen.insert((r.destination.clone(), r.path.clone())) {
            return;
        }
        let len = Duration::from_secs(
            u64::try_from((r.window_end - r.window_start).whole_seconds()).unwrap_or(0),
        );
        let entry = found
            .entry(r.pipeline.clone())
            .or_insert_with(|| PipelineSummary {
                pipeline: r.pipeline.clone(),
                files: 0,
                first_window: r.window_start,
                last_window: r.window_start,
                window: len,
            });
        entry.files += 1;
        entry.first_window = entry.first_window.min(r.window_start);
        if r.window_start >= entry.last_window {
            entry.last_window = r.window_start;
            entry.window = len;
        }
    })?;
    Ok(found.into_values().collect())
}

/// The windows of length `window` (aligned as meathook aligns them) that
/// start in `[from, to)` and that no delivery of `pipeline` covers (a
/// batch's file: a compacted file covers only the windows its parts did).
///
/// # Errors
///
/// [`QueryError`] when the manifest cannot be read or the range holds
/// more than [`MAX_GAP_WINDOWS`] windows.
pub fn gaps(
    manifest: &Path,
    pipeline: &str,
    from: OffsetDateTime,
    to: OffsetDateTime,
    window: Duration,
) -> Result<Vec<Gap>, QueryError> {
    let first = check_range(pipeline, from, to, window)?;
    let mut covered = Vec::new();
    for_each_record(manifest, |r| {
        if r.pipeline == pipeline
            && !r.is_compaction()
            && r.window_end > first
            && r.window_start < to
        {
            covered.push((r.window_start, r.window_end));
        }
    })?;
    Ok(gaps_between(covered, first, to, window))
}

/// The first window's start, after checking the window length and the
/// number of windows.
pub(crate) fn check_range(
    pipeline: &str,
    from: OffsetDateTime,
    to: OffsetDateTime,
    window: Duration,
) -> Result<OffsetDateTime, QueryError> {
    if window.as_secs() == 0 || window.subsec_nanos() != 0 {
        return Err(QueryError::BadWindow(window));
    }
    let first = WindowMeta::containing(pipeline, from, window).start;
    let span = u64::try_from((to - first).whole_seconds()).unwrap_or(0);
    let windows = span.div_ceil(window.as_secs());
    if windows > MAX_GAP_WINDOWS {
        return Err(QueryError::TooManyWindows {
            from,
            to,
            window,
            windows,
        });
    }
    Ok(first)
}

/// Windows from `first` (aligned) before `to` not covered by any interval.
fn gaps_between(
    mut covered: Vec<(OffsetDateTime, OffsetDateTime)>,
    first: OffsetDateTime,
    to: OffsetDateTime,
    window: Duration,
) -> Vec<Gap> {
    covered.sort();
    let mut out = Vec::new();
    let mut next = 0;
    let mut reach: Option<OffsetDateTime> = None;
    let mut start = first;
    while start < to {
        while next < covered.len() && covered[next].0 <= start {
            reach = reach.max(Some(covered[next].1));
            next += 1;
        }
        let end = start + window;
        if reach.is_none_or(|r| r <= start) {
            out.push(Gap { start, end });
        }
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn uncovered_windows_are_gaps_and_covering_windows_of_any_length_count() {
        let t0 = datetime!(2026-12-01 00:00 UTC);
        let h = time::Duration::HOUR;
        let covered = vec![
            (t0, t0 + h),
            (t0 + h, t0 + 2 * h),
            // A daily file from another layout covers 04:00..05:00 too.
            (t0 + 4 * h, t0 + 5 * h),
            (t0 + 4 * h, t0 + 5 * h),
        ];
        let got = gaps_between(covered, t0, t0 + 6 * h, HOUR);
        let starts: Vec<_> = got.iter().map(|g| (g.start - t0).whole_hours()).collect();
        assert_eq!(starts, [2, 3, 5]);
        assert_eq!(got[0].end, t0 + 3 * h);
        let whole_day = gaps_between(vec![(t0, t0 + 24 * h)], t0, t0 + 6 * h, HOUR);
        assert!(whole_day.is_empty());
    }

    #[test]
    fn pipelines_are_summarised_with_their_latest_window_length() {
        use crate::Manifest;
        use meathook_core::{Delivery, DeliveryLog as _};

        let dir = tempfile::tempdir().unwrap();
        let manifest = Manifest::open(dir.path().join(crate::MANIFEST_FILE)).unwrap();
        let t0 = datetime!(2026-12-01 00:00 UTC);
        let deliver = |pipeline: &str, at: OffsetDateTime, len: u64, path: &str| {
            let window = WindowMeta::containing(pipeline, at, Duration::from_secs(len));
            manifest
                .record(&Delivery::new(&window, "/data", path, 1, 1, [0; 32]))
                .unwrap();
        };
        deliver("rain", t0, 3600, "rain/a");
        deliver("air", t0 + time::Duration::HOUR, 3600, "air/b");
        // A replay of the same file counts once.
        deliver("air", t0 + time::Duration::HOUR, 3600, "air/b");
        // The window length changed to five minutes, and a late hourly
        // file arrived after: the latest window decides.
        deliver("air", t0 + time::Duration::hours(3), 300, "air/c");
        deliver("air", t0, 3600, "air/a");
        let got = pipelines(manifest.path()).unwrap();
        let names: Vec<_> = got.iter().map(|p| p.pipeline.as_str()).collect();
        assert_eq!(names, ["air", "rain"]);
        assert_eq!(got[0].files, 3);
        assert_eq!(got[0].first_window, t0);
        assert_eq!(got[0].last_window, t0 + time::Duration::hours(3));
        assert_eq!(got[0].window, Duration::from_secs(300));
        assert_eq!((got[1].files, got[1].window), (1, HOUR));
    }

    #[test]
    fn a_range_too_long_or_a_bad_window_is_refused() {
        let t0 = datetime!(2026-12-01 00:00 UTC);
        assert!(matches!(
            check_range(
                "p",
                t0,
                t0 + time::Duration::days(3650),
                Duration::from_secs(60)
            ),
            Err(QueryError::TooManyWindows { .. })
        ));
        assert!(matches!(
            check_range("p", t0, t0, Duration::from_millis(1500)),
            Err(QueryError::BadWindow(_))
        ));
        let first = check_range(
            "p",
            t0 + time::Duration::minutes(30),
            t0 + time::Duration::HOUR * 2,
            HOUR,
        )
        .unwrap();
        assert_eq!(first, t0, "the first window is aligned");
    }
}
