//! Errors of the spool, each naming the spool directory (and window) and
//! what to do.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use meathook_core::{ErrorClass, SinkError, WindowMeta};
use thiserror::Error;

/// Why the spool could not accept records or finish an operation. `E` is the
/// inner sink's error.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SpoolError<E> {
    /// Another process (or another `DiskSpool` in this one) holds the
    /// directory's lock. Stop the other holder, or give each spool its own
    /// directory. A lock held for less than a second (by a child process
    /// that has not yet run its program, holding a copy of the lock file) is
    /// waited for, not reported.
    #[error(
        "spool directory {dir} is locked by {holder}: only one writer may use a spool directory; stop it or use another directory"
    )]
    Locked {
        /// The spool directory.
        dir: PathBuf,
        /// What the lock file says about its holder.
        holder: String,
    },
    /// The spool could not start on its directory: it could not be created
    /// or locked, or a file the spool needs is something else (a
    /// `quarantine` that is a file, a `LOCK` that is a symlink). Nothing was
    /// offered yet; the message names the path and what to do.
    #[error(
        "spool cannot start: {op} {path} failed: {source}; fix or move it, then the spool starts on the next attempt"
    )]
    Start {
        /// What the spool was doing.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Files named like segments that the spool could not read at start-up
    /// are still in its directory: a flush or drain that delivered
    /// everything else reports them rather than claiming the spool is empty.
    #[error(
        "spool {dir} delivered what it could read, but left {} file(s) it could not: {}; fix or move them and restart to deliver them",
        .files.len(),
        .files.iter().map(|(p, why)| format!("{} ({why})", p.display())).collect::<Vec<_>>().join(", ")
    )]
    Unread {
        /// The spool directory.
        dir: PathBuf,
        /// Each file, with why it could not be read.
        files: Vec<(PathBuf, String)>,
    },
    /// A file operation failed. Nothing of the batch was acknowledged.
    /// Disk full and fsync failures land here; the spool recovers when the
    /// cause is fixed.
    #[error(
        "spool {op} failed on {path}: {source}; no batch was acknowledged by this call (a refused batch stays with the caller, what was acknowledged before is safe): check free space and the disk"
    )]
    Io {
        /// What the spool was doing.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The spool is at its byte limit or the disk at its free-space minimum,
    /// and the full policy is `Block`: slow down and offer the records again
    /// once delivery has freed space.
    #[error(
        "spool {dir} is full: {}; retry once the layer below has caught up",
        full_cause(*.bytes_on_disk, *.max_bytes, *.free_bytes, *.min_free_bytes, *.by_free_space)
    )]
    Full {
        /// The spool directory.
        dir: PathBuf,
        /// Bytes of segments on disk.
        bytes_on_disk: u64,
        /// The configured limit, if one is set.
        max_bytes: Option<u64>,
        /// Free bytes on the disk.
        free_bytes: u64,
        /// The configured minimum.
        min_free_bytes: u64,
        /// Whether the free-space minimum, not the byte limit, is what
        /// refused the records.
        by_free_space: bool,
    },
    /// A record's encoding is larger than the configured maximum; it was
    /// rejected on its own and never written.
    #[error(
        "record for {window} encodes to {size} bytes, over the spool's maximum of {max}: raise max_record_bytes or split the record"
    )]
    RecordTooLarge {
        /// The record's window.
        window: WindowMeta,
        /// Its encoded size.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A record's `Serialize` implementation failed; it was rejected on its
    /// own and never written.
    #[error("record for {window} cannot be serialised: {reason}")]
    Serialize {
        /// The record's window.
        window: WindowMeta,
        /// The serialiser's message.
        reason: String,
    },
    /// The spool was full and its policy is `DropNewest`: the record was
    /// counted and dropped.
    #[error(
        "record for {window} dropped: spool {dir} is full and its policy drops the newest records"
    )]
    Dropped {
        /// The spool directory.
        dir: PathBuf,
        /// The record's window.
        window: WindowMeta,
    },
    /// A setting cannot work (a limit or count of zero); found on open,
    /// before the directory is touched. What to do: fix the named setting.
    #[error("spool {dir}: the {setting} setting cannot be used: {reason}")]
    InvalidSetting {
        /// The spool directory.
        dir: PathBuf,
        /// The setting (its setter is `with_` and this name).
        setting: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The pipeline name does not fit a segment header.
    #[error("pipeline name of {len} bytes is too long for spool {dir}: use at most 1024 bytes")]
    PipelineName {
        /// The spool directory.
        dir: PathBuf,
        /// The name's length.
        len: usize,
    },
    /// A previous write failure left the spool unable to continue (its
    /// writer was lost). Restart the pipeline; recovery runs on open.
    #[error(
        "spool {dir} stopped after an earlier failure ({reason}): restart the pipeline to recover it"
    )]
    Poisoned {
        /// The spool directory.
        dir: PathBuf,
        /// What happened.
        reason: String,
    },
    /// `flush` did not deliver everything within its deadline. The rest stays
    /// on disk and is delivered later.
    #[error(
        "spool {dir} did not deliver {segments} segments within {deadline:?} ({}): they stay on disk and are delivered when the layer below accepts them",
        .last_error.as_deref().map_or_else(|| "no delivery failed; the layer below is slow".to_owned(), |e| format!("the last delivery attempt failed: {e}"))
    )]
    FlushTimeout {
        /// The spool directory.
        dir: PathBuf,
        /// Segments still waiting.
        segments: usize,
        /// The deadline.
        deadline: Duration,
        /// Why the last delivery attempt failed, if it did.
        last_error: Option<String>,
    },
    /// The layer below failed an operation passed on to it.
    #[error(transparent)]
    Inner(E),
}

impl<E: SinkError> SinkError for SpoolError<E> {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Io { .. }
            | Self::Start { .. }
            | Self::Unread { .. }
            | Self::Full { .. }
            | Self::FlushTimeout { .. } => ErrorClass::Transient,
            Self::Locked { .. }
            | Self::RecordTooLarge { .. }
            | Self::Serialize { .. }
            | Self::Dropped { .. }
            | Self::PipelineName { .. }
            | Self::InvalidSetting { .. }
            | Self::Poisoned { .. } => ErrorClass::Permanent,
            Self::Inner(e) => e.class(),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Inner(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// What made the spool full, in words: the free-space minimum or the byte
/// limit, with the figures.
fn full_cause(on_disk: u64, max: Option<u64>, free: u64, min_free: u64, by_free: bool) -> String {
    let limit = max.map_or_else(|| "no byte limit".to_owned(), |m| format!("limit {m}"));
    if by_free {
        format!(
            "the disk has {free} bytes free and the spool keeps at least {min_free} free ({on_disk} bytes of segments, {limit}); free space on the disk or lower min_free_bytes"
        )
    } else {
        format!("{on_disk} bytes of segments, at its {limit} ({free} bytes free on the disk)")
    }
}

impl<E> SpoolError<E> {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Why a segment could not be read while it was being delivered.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReadError {
    /// Reading the segment file failed.
    #[error("reading spool segment {path} failed: {source}; it stays on disk and is retried")]
    Io {
        /// The segment.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The reader was lost (a panic in the reading thread).
    #[error("reading spool segment {path} was interrupted: {reason}")]
    Interrupted {
        /// The segment.
        path: PathBuf,
        /// What happened.
        reason: String,
    },
}
