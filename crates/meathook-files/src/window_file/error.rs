//! Why the window-file pipeline could not make a file, typed, so that each
//! sink can keep the cause as its own error's source.

use std::io;
use std::path::PathBuf;

use meathook_core::{DeliveryLogError, ErrorClass, SinkError};

use super::lenient::EncodeFailure;

/// A failure of the [`WindowFile`](super::WindowFile) pipeline. `X` is the
/// encoder's error. Each sink turns it into its own error type through
/// [`Publish::error`](super::Publish::error), keeping the cause as its
/// source; the variants are matched exhaustively there, so a new one is a
/// breaking change.
#[derive(Debug, thiserror::Error)]
pub enum WindowFileError<X> {
    /// The batch could not be encoded (other than a single bad record,
    /// which is rejected on its own).
    #[error("cannot encode {window}: {source}")]
    Encode {
        /// The window and batch.
        window: String,
        /// What the encoder reported.
        source: X,
    },
    /// One record could not be encoded; the rest of its batch was taken.
    /// Reported in the receipt, never as the error of a whole `ingest`.
    #[error(
        "record {index} of {window} cannot be encoded, so it was left out of the file: {source}"
    )]
    Record {
        /// The window and batch.
        window: String,
        /// The record's index in the batch.
        index: usize,
        /// What the encoder reported.
        source: X,
    },
    /// A scratch-file operation failed: creating, fsyncing or reading it,
    /// or cleaning the scratch directory.
    #[error("{action} {path} failed: {source}")]
    Local {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's answer.
        source: io::Error,
    },
    /// A blocking task doing file IO or encoding stopped (it panicked, or
    /// the runtime is shutting down).
    #[error("file task for {window} stopped: {reason}")]
    Task {
        /// The window and batch.
        window: String,
        /// What happened.
        reason: String,
    },
    /// The file landed but its delivery record could not be made durable.
    #[error("{path} was delivered but not recorded in the catalog: {source}")]
    Catalog {
        /// Where the file landed.
        path: String,
        /// What the catalog reported.
        source: DeliveryLogError,
    },
}

/// Whether a retry can help: an encoder's IO failure, a full disk, a
/// stopped task and a catalog that could not record are
/// [`Transient`](ErrorClass::Transient); records the encoder cannot
/// represent, and file operations no retry can fix (see [`io_class`]),
/// are [`Permanent`](ErrorClass::Permanent).
impl<X: EncodeFailure> SinkError for WindowFileError<X> {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Encode { source, .. } if source.is_io() => ErrorClass::Transient,
            Self::Encode { .. } | Self::Record { .. } => ErrorClass::Permanent,
            Self::Local { source, .. } => io_class(source),
            Self::Task { .. } | Self::Catalog { .. } => ErrorClass::Transient,
        }
    }
}

/// Whether retrying a local file operation can help: not when the name is
/// too long, a directory stands where a file goes (or the other way
/// round), permission is refused or the file system is read-only; a full
/// disk and the rest may clear.
pub fn io_class(e: &io::Error) -> ErrorClass {
    match e.kind() {
        io::ErrorKind::PermissionDenied
        | io::ErrorKind::ReadOnlyFilesystem
        | io::ErrorKind::InvalidFilename
        | io::ErrorKind::IsADirectory
        | io::ErrorKind::NotADirectory => ErrorClass::Permanent,
        _ => ErrorClass::Transient,
    }
}
