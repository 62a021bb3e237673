//! The state the writer and the delivery worker share: sealed segments
//! waiting for delivery, oldest first, and which one is being delivered.
//!
//! **Invariant:** a segment is in `due` from the moment it is sealed (or
//! abandoned after a write failure) until its file has been deleted or moved
//! aside; only the worker removes it, and `DropOldest` never removes the one
//! in flight.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::segment::Segment;
use crate::stats::SpoolStats;

/// A segment ready for delivery.
#[derive(Debug, Clone)]
pub(crate) struct Due {
    pub(crate) segment: Segment,
    /// Where its file is now.
    pub(crate) path: PathBuf,
    /// Read no further than this (a segment abandoned after a write failure
    /// may hold unacknowledged bytes past it).
    pub(crate) valid_len: u64,
    /// Records recovery already counted as lost (and quarantined).
    pub(crate) known_lost: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub(crate) due: VecDeque<Due>,
    pub(crate) in_flight: Option<u64>,
    /// Creation time of every segment on disk, open or sealed, by id.
    pub(crate) on_disk: BTreeMap<u64, OffsetDateTime>,
}

/// Shared by the spool front and the worker.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) dir: PathBuf,
    pub(crate) stats: SpoolStats,
    queue: Mutex<Queue>,
    pub(crate) wake: Notify,
    /// Why the last delivery attempt failed; `None` once one succeeds.
    last_error: Mutex<Option<String>>,
}

impl Shared {
    pub(crate) fn new(dir: PathBuf, stats: SpoolStats) -> Self {
        Self {
            dir,
            stats,
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            last_error: Mutex::new(None),
        }
    }

    /// Notes how the last delivery attempt went: `None` for a success.
    pub(crate) fn note_attempt(&self, error: Option<String>) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = error;
    }

    /// Why the last delivery attempt failed, if it did.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Locks the queue. A panic while it was held cannot leave it
    /// inconsistent (every update is a single push, pop or insert), so a
    /// poisoned lock is used as is.
    pub(crate) fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a segment for delivery and wakes the worker.
    pub(crate) fn push_due(&self, due: Due) {
        {
            let mut q = self.queue();
            let at = q.due.partition_point(|d| d.segment.id < due.segment.id);
            q.due.insert(at, due);
        }
        self.wake.notify_one();
    }

    /// Notes a segment file created (or found) on disk.
    pub(crate) fn note_created(&self, id: u64, created: OffsetDateTime) {
        let mut q = self.queue();
        q.on_disk.insert(id, created);
        self.stats.set_oldest(q.on_disk.values().next().copied());
    }

    /// Notes a segment file gone from the spool (delivered, dropped or
    /// moved aside).
    pub(crate) fn note_removed(&self, id: u64) {
        let mut q = self.queue();
        q.on_disk.remove(&id);
        self.stats.set_oldest(q.on_disk.values().next().copied());
    }

    /// Segments waiting, including the one in flight.
    pub(crate) fn pending(&self) -> usize {
        self.queue().due.len()
    }
}
