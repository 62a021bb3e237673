//! `SpoolStats`: counters the runtime reads without `&mut`, from any task.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use time::OffsetDateTime;

/// A cloneable handle on a spool's counters; see [`DiskSpool::stats`](crate::DiskSpool::stats).
#[derive(Debug, Clone, Default)]
pub struct SpoolStats(Arc<Counters>);

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        #[derive(Debug)]
        pub(crate) struct Counters {
            $(pub(crate) $name: AtomicU64,)*
            /// Unix nanoseconds of the oldest undelivered segment, `i64::MAX` if none.
            pub(crate) oldest_nanos: AtomicI64,
        }

        impl Default for Counters {
            fn default() -> Self {
                Self { $($name: AtomicU64::new(0),)* oldest_nanos: AtomicI64::new(i64::MAX) }
            }
        }

        /// A consistent-enough copy of a spool's counters (each read
        /// atomically; the set is not a single snapshot).
        #[derive(Debug, Clone, Default, PartialEq)]
        #[non_exhaustive]
        pub struct StatsSnapshot {
            $($(#[$doc])* pub $name: u64,)*
            /// When the oldest segment not yet delivered was created.
            pub oldest_undelivered: Option<OffsetDateTime>,
        }

        impl SpoolStats {
            /// Reads every counter.
            pub fn snapshot(&self) -> StatsSnapshot {
                let c = &self.0;
                let oldest = c.oldest_nanos.load(Relaxed);
                StatsSnapshot {
                    $($name: c.$name.load(Relaxed),)*
                    oldest_undelivered: (oldest != i64::MAX)
                        .then(|| OffsetDateTime::from_unix_timestamp_nanos(i128::from(oldest)).ok())
                        .flatten(),
                }
            }
        }
    };
}

counters! {
    /// Records appended to segments and acknowledged.
    records_appended,
    /// Bytes appended to segments (frames, headers and seal frames).
    bytes_appended,
    /// Segments created.
    segments_created,
    /// Segment files on disk now.
    segments_on_disk,
    /// Bytes of segment files on disk now.
    bytes_on_disk,
    /// Records in segments on disk now.
    records_on_disk,
    /// Segments the inner sink accepted.
    deliveries_ok,
    /// Delivery attempts that failed.
    deliveries_failed,
    /// Delivery attempts made after a failure.
    deliveries_retried,
    /// Records the inner sink accepted.
    delivered_records,
    /// Records the spool rejected on their own (not serialisable, too large).
    rejected_records,
    /// Records the inner sink rejected on their own.
    rejected_by_inner,
    /// Records lost to damage on disk (their segment was copied to `quarantine/`).
    quarantined_records,
    /// Segments copied to `quarantine/`.
    quarantined_segments,
    /// Records moved to `dead-letter/` after the inner sink refused them permanently.
    dead_lettered_records,
    /// Records dropped because the spool was full and its policy is `DropOldest`.
    dropped_oldest,
    /// Records dropped because the spool was full and its policy is `DropNewest`.
    dropped_newest,
    /// Torn bytes cut from segment tails by recovery.
    truncated_bytes,
    /// Data fsyncs.
    fsyncs,
    /// Total time spent in data fsyncs, in nanoseconds.
    fsync_nanos_total,
    /// Longest data fsync, in nanoseconds.
    fsync_nanos_max,
    /// Fsyncs that failed.
    fsync_failures,
    /// The byte limit (0 = none).
    max_bytes,
    /// The free-space minimum.
    min_free_bytes,
    /// Free bytes on the disk when last checked.
    free_bytes,
}

/// Room left before the spool is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credits {
    /// Bytes that may still be appended.
    pub bytes: u64,
    /// Records that fit in those bytes at the average size so far, if any
    /// record was appended yet.
    pub records: Option<u64>,
}

impl SpoolStats {
    /// Bytes the spool may occupy now: its limit, or what it holds plus the
    /// free space above the minimum, whichever is smaller.
    fn capacity(&self) -> u64 {
        let c = &self.0;
        let held = c.bytes_on_disk.load(Relaxed);
        let max = match c.max_bytes.load(Relaxed) {
            0 => u64::MAX,
            m => m,
        };
        let free = c.free_bytes.load(Relaxed);
        let disk = held.saturating_add(free.saturating_sub(c.min_free_bytes.load(Relaxed)));
        max.min(disk)
    }

    /// How full the spool is, from 0.0 to 1.0: bytes on disk over the bytes
    /// it may occupy (its limit, or what the free-space minimum leaves).
    pub fn utilisation(&self) -> f64 {
        let held = self.0.bytes_on_disk.load(Relaxed);
        let cap = self.capacity();
        if cap == 0 {
            return 1.0;
        }
        #[allow(clippy::cast_precision_loss)] // a ratio
        let ratio = held as f64 / cap as f64;
        ratio.clamp(0.0, 1.0)
    }

    /// Room left before the full policy applies.
    pub fn credits(&self) -> Credits {
        let c = &self.0;
        let bytes = self
            .capacity()
            .saturating_sub(c.bytes_on_disk.load(Relaxed));
        let appended = c.records_appended.load(Relaxed);
        let records = (appended > 0).then(|| {
            let per = (c.bytes_appended.load(Relaxed) / appended).max(1);
            bytes / per
        });
        Credits { bytes, records }
    }

    /// Mean data fsync latency.
    pub fn mean_fsync(&self) -> Option<Duration> {
        let n = self.0.fsyncs.load(Relaxed);
        (n > 0).then(|| Duration::from_nanos(self.0.fsync_nanos_total.load(Relaxed) / n))
    }

    pub(crate) fn add(&self, field: impl Fn(&Counters) -> &AtomicU64, n: u64) {
        field(&self.0).fetch_add(n, Relaxed);
    }

    pub(crate) fn sub(&self, field: impl Fn(&Counters) -> &AtomicU64, n: u64) {
        let f = field(&self.0);
        let _ = f.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(n)));
    }

    pub(crate) fn set(&self, field: impl Fn(&Counters) -> &AtomicU64, n: u64) {
        field(&self.0).store(n, Relaxed);
    }

    pub(crate) fn note_fsync(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.0.fsyncs.fetch_add(1, Relaxed);
        self.0.fsync_nanos_total.fetch_add(nanos, Relaxed);
        self.0.fsync_nanos_max.fetch_max(nanos, Relaxed);
    }

    pub(crate) fn set_oldest(&self, at: Option<OffsetDateTime>) {
        let nanos = at.map_or(i64::MAX, |t| {
            i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX)
        });
        self.0.oldest_nanos.store(nanos, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utilisation_and_credits_follow_the_tighter_limit() {
        let s = SpoolStats::default();
        s.set(|c| &c.max_bytes, 1000);
        s.set(|c| &c.free_bytes, 10_000);
        s.set(|c| &c.bytes_on_disk, 250);
        assert!((s.utilisation() - 0.25).abs() < 1e-9);
        assert_eq!(s.credits().bytes, 750);
        assert_eq!(s.credits().records, None);
        s.add(|c| &c.records_appended, 10);
        s.add(|c| &c.bytes_appended, 250);
        assert_eq!(s.credits().records, Some(30));
        // Disk nearly full: 100 free above a 50-byte minimum leaves 50.
        s.set(|c| &c.free_bytes, 100);
        s.set(|c| &c.min_free_bytes, 50);
        assert_eq!(s.credits().bytes, 50);
        assert!((s.utilisation() - 250.0 / 300.0).abs() < 1e-9);
    }
}
