//! Time windows: which window a record belongs to.
//!
//! **Architecture invariant:** a record's window is decided once, from the
//! time it was collected. Windows are half-open UTC intervals `[start, end)`
//! aligned to their length, counted from the Unix epoch
//! (1970-01-01T00:00:00Z):
//!
//! - a length that divides a day (1 s, 5 min, 1 h, 6 h, 24 h, …) gives
//!   windows that start on the clock: hourly windows at `:00`, daily windows
//!   at 00:00 UTC;
//! - any other length is aligned to the epoch: 7-minute windows start at
//!   multiples of 7 minutes since 1970-01-01T00:00Z, weekly windows start on
//!   Thursdays at 00:00 UTC (1970-01-01 was a Thursday), 90-minute windows
//!   restart their pattern every three hours.
//!
//! The pipeline stamps each collected batch with the one-second window of its
//! collection time ([`WindowMeta::instant`]). A layer with a longer window
//! widens it with [`WindowMeta::widen`], which depends only on the window's
//! start, so every layer of a stack computes its window from the same
//! collection time and no layer moves a record into another window. Because
//! one second divides every whole-second length, a one-second window always
//! lies inside exactly one window of any longer length. Lengths that are not
//! multiples of each other (a 7-minute tier above an hourly one) do not nest:
//! the lower layer then files a batch by its window's start, so keep each
//! layer's window a multiple of the one above it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

/// The window a batch of records belongs to: a pipeline and a half-open UTC
/// interval `[start, end)`, and, once a durable layer has filed the batch,
/// the batch's identity within the window.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct WindowMeta {
    /// The pipeline the records were collected by.
    pub pipeline: Arc<str>,
    /// First instant of the window (inclusive), in UTC.
    pub start: OffsetDateTime,
    /// First instant after the window (exclusive), in UTC.
    pub end: OffsetDateTime,
    /// Which batch of the window this is, set by the durable layer that
    /// delivers it (the spool's sequence range). Terminal sinks name files
    /// after it, so a replayed batch lands on the same path and two batches
    /// never share one. `None` for batches straight from a pipeline or a
    /// memory tier; terminal sinks then name files by content hash.
    pub batch: Option<BatchId>,
}

/// The identity of one delivered batch: the spool incarnation that filed it
/// and the first and last sequence numbers the durable layer gave its
/// records. Stable across replays.
///
/// Sequence numbers alone are unique only within one spool directory: a
/// spool on a fresh volume (or whose `sequence` file was lost) starts again
/// at 0. The incarnation, a random number the spool draws each time it
/// opens and writes into every segment it creates, makes the identity unique
/// across spools and restarts too. Segments written before incarnations
/// existed have none, and keep the names they always had.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId {
    /// The spool incarnation that wrote the batch, if it recorded one.
    pub incarnation: Option<u64>,
    /// Sequence number of the batch's first frame.
    pub first: u64,
    /// Sequence number of the batch's last frame (inclusive).
    pub last: u64,
}

impl BatchId {
    /// The batch `first..=last` of spool incarnation `incarnation`.
    pub fn new(incarnation: u64, first: u64, last: u64) -> Self {
        Self {
            incarnation: Some(incarnation),
            first,
            last,
        }
    }

    /// The batch `first..=last` of a spool that recorded no incarnation.
    pub fn legacy(first: u64, last: u64) -> Self {
        Self {
            incarnation: None,
            first,
            last,
        }
    }
}

impl fmt::Display for BatchId {
    /// `incarnation-first-last`: the incarnation as 16 hex digits, the
    /// sequence numbers zero-padded to 20 digits so that one incarnation's
    /// names sort by sequence; `first-last` without an incarnation.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(incarnation) = self.incarnation {
            write!(f, "{incarnation:016x}-")?;
        }
        write!(f, "{:020}-{:020}", self.first, self.last)
    }
}

impl WindowMeta {
    /// The window of length `len` that contains `at`.
    ///
    /// `len` is rounded down to whole seconds and at least one second is used;
    /// layers validate their lengths through [`FlushPolicy`](crate::FlushPolicy),
    /// which rejects sub-second lengths. The last window before the end of
    /// the representable range (the year 9999) ends at that limit.
    pub fn containing(pipeline: impl Into<Arc<str>>, at: OffsetDateTime, len: Duration) -> Self {
        let len_secs = i64::try_from(len.as_secs()).unwrap_or(i64::MAX).max(1);
        let at = at.to_offset(time::UtcOffset::UTC);
        let start_secs = at.unix_timestamp().div_euclid(len_secs) * len_secs;
        // `at` is representable, and `start_secs <= at`, so the start is too
        // unless it falls before the year -9999, where we clamp.
        let start = OffsetDateTime::from_unix_timestamp(start_secs).unwrap_or(
            OffsetDateTime::new_utc(time::Date::MIN, time::Time::MIDNIGHT),
        );
        let end = start.saturating_add(time::Duration::seconds(len_secs));
        Self {
            pipeline: pipeline.into(),
            start,
            end,
            batch: None,
        }
    }

    /// The one-second window of a collection time: how a pipeline stamps the
    /// batches it collects, so that each layer can widen it to its own length.
    pub fn instant(pipeline: impl Into<Arc<str>>, at: OffsetDateTime) -> Self {
        Self::containing(pipeline, at, Duration::from_secs(1))
    }

    /// The window's length.
    pub fn len(&self) -> Duration {
        let secs = (self.end - self.start).whole_seconds();
        Duration::from_secs(u64::try_from(secs).unwrap_or(0))
    }

    /// Whether `at` lies in `[start, end)`.
    pub fn contains(&self, at: OffsetDateTime) -> bool {
        self.start <= at && at < self.end
    }

    /// Whether the window has closed at time `now` (`now >= end`).
    pub fn is_closed_at(&self, now: OffsetDateTime) -> bool {
        now >= self.end
    }

    /// The window of length `len` that this window belongs to.
    ///
    /// A layer calls this to file an incoming batch under its own window
    /// length. The result depends only on `start`; a window that is already
    /// at least `len` long is returned unchanged, never split or moved. A
    /// widened window has no [`batch`](Self::batch): the wider layer forms
    /// its own batches.
    pub fn widen(&self, len: Duration) -> Self {
        if len <= self.len() {
            return self.clone();
        }
        Self::containing(Arc::clone(&self.pipeline), self.start, len)
    }

    /// The same window, identified as batch `batch`.
    pub fn with_batch(mut self, batch: BatchId) -> Self {
        self.batch = Some(batch);
        self
    }

    /// The window of the same length that follows this one.
    pub fn next(&self) -> Self {
        Self::containing(Arc::clone(&self.pipeline), self.end, self.len())
    }
}

impl fmt::Debug for WindowMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WindowMeta({self})")
    }
}

impl fmt::Display for WindowMeta {
    /// `pipeline [start, end)` with RFC 3339 times, as errors and logs show it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rfc = &time::format_description::well_known::Rfc3339;
        let start = self.start.format(rfc).map_err(|_| fmt::Error)?;
        let end = self.end.format(rfc).map_err(|_| fmt::Error)?;
        write!(f, "{} [{start}, {end})", self.pipeline)?;
        if let Some(batch) = self.batch {
            write!(f, " batch {batch}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn hourly_windows_start_on_the_hour() {
        let w = WindowMeta::containing("p", datetime!(2026-11-23 10:56:13.5 UTC), HOUR);
        assert_eq!(w.start, datetime!(2026-11-23 10:00 UTC));
        assert_eq!(w.end, datetime!(2026-11-23 11:00 UTC));
        assert_eq!(&*w.pipeline, "p");
    }

    #[test]
    fn daily_windows_start_at_midnight_utc_whatever_the_input_offset() {
        let at = datetime!(2026-11-24 01:30 +08:00); // 2026-11-23 17:30 UTC
        let w = WindowMeta::containing("p", at, Duration::from_secs(86_400));
        assert_eq!(w.start, datetime!(2026-11-23 00:00 UTC));
        assert_eq!(w.end, datetime!(2026-11-24 00:00 UTC));
    }

    #[test]
    fn weekly_windows_start_on_thursdays_because_the_epoch_was_one() {
        let w = WindowMeta::containing(
            "p",
            datetime!(2026-11-23 12:00 UTC),
            Duration::from_secs(7 * 86_400),
        );
        assert_eq!(w.start.weekday(), time::Weekday::Thursday);
        assert_eq!(w.start, datetime!(2026-11-19 00:00 UTC));
    }

    #[test]
    fn times_before_the_epoch_floor_downwards() {
        let w = WindowMeta::containing("p", datetime!(1969-12-31 23:59:59 UTC), HOUR);
        assert_eq!(w.start, datetime!(1969-12-31 23:00 UTC));
    }

    #[test]
    fn widening_uses_the_start_and_never_splits() {
        let five = WindowMeta::containing(
            "p",
            datetime!(2026-11-23 10:56 UTC),
            Duration::from_secs(300),
        );
        assert_eq!(five.start, datetime!(2026-11-23 10:55 UTC));
        let hour = five.widen(HOUR);
        assert_eq!(hour.start, datetime!(2026-11-23 10:00 UTC));
        assert_eq!(hour.widen(Duration::from_secs(300)), hour);
    }

    #[test]
    fn the_last_window_is_clamped_at_the_end_of_time() {
        let at = datetime!(9999-12-31 23:59:59 UTC);
        let w = WindowMeta::containing("p", at, Duration::from_secs(86_400 * 2));
        assert!(w.contains(at));
        assert!(w.end > at);
    }

    #[test]
    fn display_names_pipeline_and_interval() {
        let w = WindowMeta::containing("air", datetime!(2026-11-23 10:56 UTC), HOUR);
        assert_eq!(
            w.to_string(),
            "air [2026-11-23T10:00:00Z, 2026-11-23T11:00:00Z)"
        );
    }

    fn lengths() -> impl Strategy<Value = Duration> {
        prop_oneof![
            Just(Duration::from_secs(1)),
            Just(Duration::from_secs(300)),
            Just(HOUR),
            Just(Duration::from_secs(86_400)),
            (1u64..=40 * 86_400).prop_map(Duration::from_secs),
        ]
    }

    proptest! {
        // Every instant lies in exactly one window: the one `containing`
        // returns, which is aligned, has the requested length, and whose
        // neighbours touch it without gap or overlap.
        #[test]
        fn every_instant_is_in_exactly_one_aligned_window(
            secs in -2_000_000_000i64..8_000_000_000,
            nanos in 0u32..1_000_000_000,
            len in lengths(),
        ) {
            let at = OffsetDateTime::from_unix_timestamp(secs).unwrap() + time::Duration::nanoseconds(i64::from(nanos));
            let w = WindowMeta::containing("p", at, len);
            let len_secs = i64::try_from(len.as_secs()).unwrap();
            prop_assert!(w.contains(at));
            prop_assert_eq!(w.len(), len);
            prop_assert_eq!(w.start.unix_timestamp().rem_euclid(len_secs), 0);
            prop_assert_eq!(w.start.nanosecond(), 0);
            // Contiguous: the next window starts where this one ends, the
            // previous one ends where this one starts.
            let next = w.next();
            prop_assert_eq!(next.start, w.end);
            prop_assert!(!next.contains(at));
            let last_of_prev = w.start - time::Duration::nanoseconds(1);
            let prev = WindowMeta::containing("p", last_of_prev, len);
            prop_assert_eq!(prev.end, w.start);
            prop_assert!(!prev.contains(at));
            // The last instant of the window maps back to the same window.
            prop_assert_eq!(WindowMeta::containing("p", w.end - time::Duration::nanoseconds(1), len), w.clone());
            // Widening the instant window of `at` gives the same window.
            prop_assert_eq!(WindowMeta::instant("p", at).widen(len), w);
        }
    }
}
