//! Delivery records: what a terminal sink reports for every file it lands.
//!
//! **Architecture invariant:** a terminal sink reports each file to its
//! [`Deliveries`] handle after the file is in place and *before* its
//! `ingest` returns `Ok`. A durable layer deletes its copy of a batch only
//! after that `Ok`, so a delivery is never forgotten: either the record is
//! durable in the catalog's log, or the batch is still spooled and will be
//! delivered (and reported) again. A replay that finds its file already in
//! place reports the delivery again; the catalog keys records on
//! (destination, path), so the second report changes nothing.
//!
//! This module does no IO: it defines the record and the hook. The
//! catalog crate (`meathook-catalog`) implements the hook with a JSON-lines
//! manifest and back-fills PostgreSQL from it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use time::OffsetDateTime;

use crate::WindowMeta;

/// One file a terminal sink landed (or found already landed, on a replay).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// The pipeline whose records the file holds.
    pub pipeline: String,
    /// First instant of the file's window (inclusive), UTC.
    pub window_start: OffsetDateTime,
    /// First instant after the file's window (exclusive), UTC.
    pub window_end: OffsetDateTime,
    /// Where the file went: a local directory, a store URL such as
    /// `s3://bucket/prefix`, or a dataset repository such as `user/name`.
    /// Never carries a credential.
    pub destination: String,
    /// The file's path relative to the destination.
    pub path: String,
    /// Records in the file.
    pub rows: u64,
    /// The file's size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file's bytes.
    pub sha256: [u8; 32],
    /// The destination's commit id, for destinations that have commits.
    pub commit: Option<String>,
    /// When the sink saw the file in place, UTC.
    pub delivered_at: OffsetDateTime,
    /// Attempts this process made at the batch, the successful one included.
    pub attempts: u32,
}

impl Delivery {
    /// A delivery of `path` at `destination` for `window`, delivered now, at
    /// the first attempt, without a commit id.
    pub fn new(
        window: &WindowMeta,
        destination: impl Into<String>,
        path: impl Into<String>,
        rows: u64,
        bytes: u64,
        sha256: [u8; 32],
    ) -> Self {
        Self {
            pipeline: window.pipeline.to_string(),
            window_start: window.start,
            window_end: window.end,
            destination: destination.into(),
            path: path.into(),
            rows,
            bytes,
            sha256,
            commit: None,
            delivered_at: OffsetDateTime::now_utc(),
            attempts: 1,
        }
    }

    /// The same delivery with the destination's commit id.
    pub fn with_commit(mut self, commit: impl Into<String>) -> Self {
        self.commit = Some(commit.into());
        self
    }

    /// The same delivery with the number of attempts it took (at least 1).
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The same delivery, delivered at `at`.
    pub fn with_delivered_at(mut self, at: OffsetDateTime) -> Self {
        self.delivered_at = at;
        self
    }

    /// The SHA-256 in lowercase hex.
    pub fn sha256_hex(&self) -> String {
        use fmt::Write as _;
        self.sha256
            .iter()
            .fold(String::with_capacity(64), |mut out, b| {
                let _ = write!(out, "{b:02x}");
                out
            })
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("pipeline", &self.pipeline)
            .field("window_start", &self.window_start)
            .field("window_end", &self.window_end)
            .field("destination", &self.destination)
            .field("path", &self.path)
            .field("rows", &self.rows)
            .field("bytes", &self.bytes)
            .field("sha256", &self.sha256_hex())
            .field("commit", &self.commit)
            .field("delivered_at", &self.delivered_at)
            .field("attempts", &self.attempts)
            .finish()
    }
}

/// Counts a terminal sink's attempts at one batch across retries, for
/// [`Delivery::attempts`]: the attempt after `n` failures at the same
/// pipeline, window and batch is attempt `n + 1`; any other batch starts
/// again at 1.
#[derive(Debug, Clone, Default)]
pub struct Attempts {
    /// The batch whose last attempt failed, and how many attempts failed.
    failing: Option<(Arc<str>, OffsetDateTime, Option<crate::BatchId>, u32)>,
}

impl Attempts {
    /// The number of the attempt now being made at `window`'s batch.
    pub fn current(&self, window: &WindowMeta) -> u32 {
        match &self.failing {
            Some((pipeline, start, batch, failed))
                if *pipeline == window.pipeline
                    && *start == window.start
                    && *batch == window.batch =>
            {
                failed.saturating_add(1)
            }
            _ => 1,
        }
    }

    /// Records how the attempt at `window`'s batch ended.
    pub fn note(&mut self, window: &WindowMeta, ok: bool) {
        self.failing = if ok {
            None
        } else {
            let failed = self.current(window);
            Some((
                Arc::clone(&window.pipeline),
                window.start,
                window.batch,
                failed,
            ))
        };
    }
}

/// Why a delivery could not be recorded. Every variant is worth a retry: the
/// sink returns a transient error, its batch stays spooled and is delivered
/// and reported again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryLogError {
    /// Appending to or syncing the log failed. What to do: check the
    /// log's directory for free space and permissions.
    #[error("cannot record the delivery of {path} in {log}: {action} failed: {source}")]
    Write {
        /// The log (the manifest's path).
        log: String,
        /// The delivered file's path.
        path: String,
        /// What was being done: opening, appending, syncing.
        action: &'static str,
        /// The operating system's answer.
        source: std::io::Error,
    },
    /// The record could not be encoded for the log.
    #[error("cannot encode the delivery record of {path}: {reason}")]
    Encode {
        /// The delivered file's path.
        path: String,
        /// What the encoder reported.
        reason: String,
    },
    /// The task that writes the record stopped (a panic, or the runtime
    /// shutting down).
    #[error("recording the delivery of {path} stopped: {reason}")]
    Stopped {
        /// The delivered file's path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Where terminal sinks report deliveries; implemented by the catalog.
///
/// `record` may block on file IO (an append and an fsync): call it from a
/// blocking thread, or through [`Deliveries::report`], which does. It must
/// return only once the record is durable, so that the sink may let the
/// batch go.
pub trait DeliveryLog: Send + Sync + fmt::Debug {
    /// Records `delivery` durably.
    ///
    /// # Errors
    ///
    /// [`DeliveryLogError`] when the record is not durable.
    fn record(&self, delivery: &Delivery) -> Result<(), DeliveryLogError>;
}

/// A cloneable handle to a [`DeliveryLog`], held by terminal sinks.
#[derive(Clone)]
pub struct Deliveries(Arc<dyn DeliveryLog>);

impl fmt::Debug for Deliveries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Deliveries").field(&self.0).finish()
    }
}

impl Deliveries {
    /// A handle to `log`.
    pub fn new(log: impl DeliveryLog + 'static) -> Self {
        Self(Arc::new(log))
    }

    /// A handle to a shared log.
    pub fn from_arc(log: Arc<dyn DeliveryLog>) -> Self {
        Self(log)
    }

    /// Records `delivery` on the calling thread (which may block).
    ///
    /// # Errors
    ///
    /// [`DeliveryLogError`] when the record is not durable.
    pub fn record(&self, delivery: &Delivery) -> Result<(), DeliveryLogError> {
        self.0.record(delivery)
    }

    /// Records `delivery` on tokio's blocking pool, so the executor's
    /// threads never wait on the log's fsync. Call it after the file is in
    /// place and before `ingest` returns `Ok`.
    ///
    /// # Errors
    ///
    /// [`DeliveryLogError`] when the record is not durable.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (as `tokio::task::spawn_blocking` does).
    pub async fn report(&self, delivery: Delivery) -> Result<(), DeliveryLogError> {
        let log = Arc::clone(&self.0);
        let path = delivery.path.clone();
        tokio::task::spawn_blocking(move || log.record(&delivery))
            .await
            .map_err(|e| DeliveryLogError::Stopped {
                path,
                reason: e.to_string(),
            })?
    }
}

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
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    #[derive(Debug, Default)]
    struct Keep(Mutex<Vec<Delivery>>);

    impl DeliveryLog for Arc<Keep> {
        fn record(&self, delivery: &Delivery) -> Result<(), DeliveryLogError> {
            self.0
                .lock()
                .map_err(|e| DeliveryLogError::Stopped {
                    path: delivery.path.clone(),
                    reason: e.to_string(),
                })?
                .push(delivery.clone());
            Ok(())
        }
    }

    #[test]
    fn attempts_count_failures_of_one_batch_only() {
        let at = OffsetDateTime::UNIX_EPOCH + Duration::from_secs(7200);
        let a = WindowMeta::containing("air", at, Duration::from_secs(3600))
            .with_batch(crate::BatchId::legacy(1, 9));
        let b = a.clone().with_batch(crate::BatchId::legacy(10, 19));
        let mut attempts = Attempts::default();
        assert_eq!(attempts.current(&a), 1);
        attempts.note(&a, false);
        attempts.note(&a, false);
        assert_eq!(attempts.current(&a), 3);
        assert_eq!(attempts.current(&b), 1, "another batch starts at 1");
        attempts.note(&b, false);
        assert_eq!(
            attempts.current(&a),
            1,
            "only the last failing batch counts"
        );
        attempts.note(&b, true);
        assert_eq!(attempts.current(&b), 1, "a success resets the count");
    }

    #[tokio::test]
    async fn report_records_on_the_blocking_pool() {
        let keep = Arc::new(Keep::default());
        let deliveries = Deliveries::new(Arc::clone(&keep));
        let window = WindowMeta::containing(
            "air",
            OffsetDateTime::UNIX_EPOCH + Duration::from_secs(4000),
            Duration::from_secs(3600),
        );
        let d = Delivery::new(&window, "/data", "data/air/x.parquet", 3, 10, [0xab; 32])
            .with_attempts(0)
            .with_commit("c0ffee");
        deliveries.report(d.clone()).await.unwrap();
        let got = keep.0.lock().unwrap().clone();
        assert_eq!(got, [d]);
        assert_eq!(got[0].attempts, 1, "attempts are at least one");
        assert_eq!(got[0].window_start.unix_timestamp(), 3600);
        assert_eq!(got[0].sha256_hex(), "ab".repeat(32));
    }

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
