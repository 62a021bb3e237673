//! `CatalogStats`: the figures a delivery catalog keeps, shared with the
//! runtime that exports them, so the runtime depends on no catalog crate.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a catalog has done, as counters and a gauge that the runtime
/// exports; cheap to clone, every clone sees the same figures.
#[derive(Debug, Clone, Default)]
pub struct CatalogStats(Arc<CatalogCounters>);

#[derive(Debug, Default)]
struct CatalogCounters {
    manifest_writes: AtomicU64,
    manifest_failures: AtomicU64,
    database_writes: AtomicU64,
    database_failures: AtomicU64,
    database_rejected: AtomicU64,
    backlog: AtomicU64,
    database_up: AtomicU64,
    database: AtomicU64,
}

/// The figures of a [`CatalogStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CatalogSnapshot {
    /// Delivery records appended and synced to the manifest.
    pub manifest_writes: u64,
    /// Delivery records the manifest failed to make durable.
    pub manifest_failures: u64,
    /// Rows upserted into the database (a replayed record counts again).
    pub database_writes: u64,
    /// Failed attempts to connect to or write to the database.
    pub database_failures: u64,
    /// Records the database refused (values it cannot store), set aside
    /// next to the manifest.
    pub database_rejected: u64,
    /// Records in the manifest not yet in the database, as of the last
    /// back-fill pass.
    pub backlog: u64,
    /// Whether the last back-fill pass reached the database.
    pub database_up: bool,
    /// Whether a database is fed from this catalog at all (the database
    /// figures mean nothing otherwise).
    pub database: bool,
}

impl CatalogStats {
    /// Counts a record made durable in the manifest.
    pub fn manifest_written(&self) {
        self.0.manifest_writes.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a record the manifest failed to keep.
    pub fn manifest_failed(&self) {
        self.0.manifest_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `rows` upserted into the database.
    pub fn database_written(&self, rows: u64) {
        self.0.database_writes.fetch_add(rows, Ordering::Relaxed);
    }

    /// Counts a failed attempt at the database, and marks it down.
    pub fn database_failed(&self) {
        self.0.database_failures.fetch_add(1, Ordering::Relaxed);
        self.0.database_up.store(0, Ordering::Relaxed);
    }

    /// Counts a record the database refused.
    pub fn database_refused(&self) {
        self.0.database_rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Marks this catalog as feeding a database.
    pub fn database_configured(&self) {
        self.0.database.store(1, Ordering::Relaxed);
    }

    /// Marks the database reachable.
    pub fn database_reached(&self) {
        self.0.database_up.store(1, Ordering::Relaxed);
    }

    /// Sets the back-fill backlog.
    pub fn set_backlog(&self, records: u64) {
        self.0.backlog.store(records, Ordering::Relaxed);
    }

    /// The figures now.
    pub fn snapshot(&self) -> CatalogSnapshot {
        let c = &self.0;
        CatalogSnapshot {
            manifest_writes: c.manifest_writes.load(Ordering::Relaxed),
            manifest_failures: c.manifest_failures.load(Ordering::Relaxed),
            database_writes: c.database_writes.load(Ordering::Relaxed),
            database_failures: c.database_failures.load(Ordering::Relaxed),
            database_rejected: c.database_rejected.load(Ordering::Relaxed),
            backlog: c.backlog.load(Ordering::Relaxed),
            database_up: c.database_up.load(Ordering::Relaxed) == 1,
            database: c.database.load(Ordering::Relaxed) == 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_count_and_mark_the_database() {
        let stats = CatalogStats::default();
        let clone = stats.clone();
        clone.manifest_written();
        clone.database_written(3);
        clone.database_reached();
        clone.set_backlog(7);
        assert!(stats.snapshot().database_up);
        clone.database_failed();
        let s = stats.snapshot();
        assert_eq!(
            (
                s.manifest_writes,
                s.database_writes,
                s.database_failures,
                s.backlog
            ),
            (1, 3, 1, 7)
        );
        assert!(!s.database_up);
    }
}
