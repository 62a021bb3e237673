//! Why the window-file pipeline could not make a file, typed, so that each
//! sink can keep the cause as its own error's source.

use std::io;
use std::path::PathBuf;

use meathook_core::DeliveryLogError;

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
