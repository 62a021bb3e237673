//! `Delivery`: the record of one file a terminal sink landed.
//!
//! **Architecture invariant:** a terminal sink reports each file to its
//! [`Deliveries`](crate::Deliveries) handle after the file is in place and
//! *before* its `ingest` returns `Ok`. A durable layer deletes its copy of a
//! batch only after that `Ok`, so a delivery is never forgotten: either the
//! record is durable in the catalog's log, or the batch is still spooled and
//! will be delivered (and reported) again. A replay that finds its file
//! already in place reports the delivery again; the catalog keys records on
//! (destination, path), so the second report changes nothing.
//!
//! This module does no IO: it defines the record. The hook it is reported
//! through is in `deliveries.rs`; the catalog crate (`meathook-catalog`)
//! implements that hook with a JSON-lines manifest and back-fills PostgreSQL
//! from it.

use std::fmt;

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
    /// `false` when the file was already in place with these bytes (a
    /// replay found it) and this delivery wrote nothing.
    pub created: bool,
    /// For a compacted file: the files it replaced, relative to the
    /// destination (deleted by the compaction; their rows are in this
    /// file). Empty for a batch's file.
    pub replaces: Vec<String>,
}

impl Delivery {
    /// A delivery of `path` at `destination` for `window`, delivered now, at
    /// the first attempt, without a commit id, the file created by it.
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
            created: true,
            replaces: Vec::new(),
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

    /// The same delivery, the file created by it (`true`) or found already
    /// in place (`false`).
    pub fn with_created(mut self, created: bool) -> Self {
        self.created = created;
        self
    }

    /// The same delivery as a compacted file's, which replaced `files`
    /// (paths relative to the destination).
    pub fn with_replaces(mut self, files: Vec<String>) -> Self {
        self.replaces = files;
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
            .field("created", &self.created)
            .field("replaces", &self.replaces)
            .finish()
    }
}
