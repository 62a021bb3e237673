//! Configuration: durability, limits and what happens when the spool is full.

use std::time::Duration;

use meathook_core::Backoff;

/// When appended records are made durable before `ingest` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `fdatasync` after every ingest: an acknowledged record survives a
    /// process crash and a power loss. The default.
    #[default]
    EveryIngest,
    /// Group commit: `fdatasync` when the last one is older than the
    /// interval (checked on every ingest and tick). A process crash loses
    /// nothing acknowledged; a power loss or kernel crash can lose what was
    /// acknowledged since the last sync, up to the interval plus one tick.
    Interval(Duration),
    /// Never `fdatasync` appends (segments are still synced when sealed). A
    /// process crash loses nothing acknowledged; a power loss or kernel
    /// crash can lose whatever the OS had not written back, usually up to
    /// 30 seconds of records.
    Os,
}

/// What `ingest` does when the spool is at a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FullPolicy {
    /// Refuse the batch and hand the records back, so the caller slows down
    /// (backpressure). Nothing is dropped. The default.
    #[default]
    Block,
    /// Delete the oldest sealed, undelivered segments until the batch fits;
    /// every deleted record is counted as `dropped_oldest`. If that is not
    /// enough, refuse as `Block` does.
    DropOldest,
    /// Accept nothing of the batch and report each record as rejected with
    /// [`SpoolError::Dropped`](crate::SpoolError::Dropped), counted as
    /// `dropped_newest`.
    DropNewest,
}

/// How much the spool may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes of segments on disk; `None` for no limit.
    pub max_bytes: Option<u64>,
    /// Free bytes the spool leaves on the disk.
    pub min_free_bytes: u64,
    /// Largest encoded record; larger ones are rejected on their own.
    pub max_record_bytes: usize,
    /// A segment is sealed (and a new one started for its window) once it is
    /// this large.
    pub max_segment_bytes: u64,
}

/// The largest record any spool accepts, whatever its configuration.
pub const MAX_RECORD_BYTES: usize = 8 << 20;

impl Default for Limits {
    /// No byte limit, 256 MiB kept free, records up to 1 MiB, segments up
    /// to 128 MiB.
    fn default() -> Self {
        Self {
            max_bytes: None,
            min_free_bytes: 256 << 20,
            max_record_bytes: 1 << 20,
            max_segment_bytes: 128 << 20,
        }
    }
}

/// Everything a spool is configured with besides its directory and policy.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) durability: Durability,
    pub(crate) limits: Limits,
    pub(crate) full: FullPolicy,
    pub(crate) dead_letter_after: u32,
    pub(crate) keep_active_window: bool,
    pub(crate) flush_deadline: Duration,
    pub(crate) backoff: Backoff,
    /// Raw bytes after which an ingest batch continues in a new frame.
    pub(crate) frame_bytes: usize,
    /// Records per chunk offered to the inner sink on delivery.
    pub(crate) chunk_records: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            durability: Durability::default(),
            limits: Limits::default(),
            full: FullPolicy::default(),
            dead_letter_after: 5,
            keep_active_window: false,
            flush_deadline: Duration::from_secs(30),
            backoff: Backoff::default(),
            frame_bytes: 256 << 10,
            chunk_records: 8192,
        }
    }
}

impl Config {
    /// The first setting that cannot work, by its name (its setter is
    /// `with_` and the name), and why.
    pub(crate) fn problem(&self) -> Option<(&'static str, &'static str)> {
        let l = &self.limits;
        [
            (
                "max_bytes",
                l.max_bytes == Some(0),
                "a spool of zero bytes holds nothing",
            ),
            (
                "max_record_bytes",
                l.max_record_bytes == 0,
                "every record would be refused",
            ),
            (
                "max_segment_bytes",
                l.max_segment_bytes == 0,
                "no segment could hold a frame",
            ),
            (
                "dead_letter_after",
                self.dead_letter_after == 0,
                "zero refusals would dead-letter before a try",
            ),
            (
                "chunk_records",
                self.chunk_records == 0,
                "a chunk of zero records delivers nothing",
            ),
        ]
        .into_iter()
        .find_map(|(setting, bad, reason)| bad.then_some((setting, reason)))
    }

    /// The record limit actually enforced.
    pub(crate) fn max_record(&self) -> usize {
        self.limits.max_record_bytes.min(MAX_RECORD_BYTES)
    }
}
