//! Why a file sink did not take a batch, and whether a retry can help.

use std::io;
use std::path::PathBuf;

use meathook_core::{ErrorClass, SinkError};
use meathook_files::window_file::io_class;
use meathook_files::{EncodeFailure, WindowFileError};

use crate::error::EncodeError;

/// An error of [`FileSink`](crate::FileSink).
///
/// [`class`](SinkError::class) tells a retrying layer what to do:
/// network failures, 5xx answers, timeouts and full disks are
/// [`Transient`](ErrorClass::Transient); a missing bucket, refused
/// credentials, records the encoder cannot represent and a different file
/// already at the path are [`Permanent`](ErrorClass::Permanent).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileSinkError {
    /// The batch could not be encoded (other than a single bad record, which
    /// is rejected on its own). Permanent unless writing the scratch file
    /// failed.
    #[error("cannot encode {window}: {source}")]
    Encode {
        /// The window and batch.
        window: String,
        /// What the encoder reported.
        source: EncodeError,
    },
    /// One record could not be encoded; the rest of its batch was taken.
    /// Reported in the [`Receipt`](meathook_core::Receipt), never as the
    /// error of a whole `ingest`. Permanent.
    #[error(
        "record {index} of {window} cannot be encoded, so it was left out of the file: {source}"
    )]
    Record {
        /// The window and batch.
        window: String,
        /// The record's index in the batch.
        index: usize,
        /// What the encoder reported.
        source: EncodeError,
    },
    /// A local file operation failed: creating or writing the scratch file,
    /// linking it into place, fsyncing a directory. Transient (a full disk
    /// may clear) unless permission was refused or the file system is
    /// read-only. What to do: check the path's permissions and free space.
    #[error("{action} {path} failed: {source}")]
    Local {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's answer.
        source: io::Error,
    },
    /// The object store refused or failed a request. Permanent for a
    /// missing bucket, refused credentials, an invalid path or an
    /// unsupported operation; transient for the rest (network, 5xx,
    /// timeouts, after `object_store`'s own retries).
    #[error("{action} {path} failed: {source}")]
    Store {
        /// What was being done.
        action: &'static str,
        /// The object, as `scheme://bucket/path`.
        path: String,
        /// What the store reported (never a credential).
        source: object_store::Error,
    },
    /// A different file already exists at the batch's path: two different
    /// batches were given the same identity (a spool reset while old files
    /// remained?), or the file was changed by hand. Nothing was
    /// overwritten. Permanent. What to do: compare the two, move the old
    /// file aside if it is wrong, and replay.
    #[error(
        "{path} already holds different content (sha256 {existing}, this batch {ours}); \
         nothing was overwritten: move the existing file aside if it is wrong and replay"
    )]
    Conflict {
        /// The path.
        path: String,
        /// SHA-256 (hex) of the file there.
        existing: String,
        /// SHA-256 (hex) of this batch's file.
        ours: String,
    },
    /// The pipeline's name is too long to be a file name once escaped:
    /// no retry can land it. Permanent; rename the pipeline.
    #[error("cannot name a file for {window}: {source}")]
    Name {
        /// The window.
        window: String,
        /// What is wrong with the name.
        source: meathook_core::name::NameError,
    },
    /// A blocking task doing file IO or encoding stopped (it panicked or
    /// the runtime is shutting down). Transient.
    #[error("file task for {window} stopped: {reason}")]
    Task {
        /// The window and batch.
        window: String,
        /// What happened.
        reason: String,
    },
    /// The file is in place but its delivery record could not be made
    /// durable in the catalog. Transient: the batch stays with the layer
    /// above, the retry finds the file there and reports it again. What to
    /// do: check the manifest's directory (free space, permissions).
    #[error("{path} was delivered but not recorded in the catalog: {source}")]
    Catalog {
        /// The delivered file.
        path: String,
        /// What the catalog reported.
        source: meathook_core::DeliveryLogError,
    },
}

impl SinkError for FileSinkError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Encode { source, .. } if source.is_io() => ErrorClass::Transient,
            Self::Encode { .. }
            | Self::Record { .. }
            | Self::Conflict { .. }
            | Self::Name { .. } => ErrorClass::Permanent,
            // Retrying the same path can never help for a name too long
            // (ENAMETOOLONG), a directory where a file goes, or no
            // permission.
            Self::Local { source, .. } => io_class(source),
            Self::Store { source, .. } => store_class(source),
            Self::Task { .. } | Self::Catalog { .. } => ErrorClass::Transient,
        }
    }
}

impl From<WindowFileError<EncodeError>> for FileSinkError {
    fn from(e: WindowFileError<EncodeError>) -> Self {
        match e {
            WindowFileError::Encode { window, source } => Self::Encode { window, source },
            WindowFileError::Record {
                window,
                index,
                source,
            } => Self::Record {
                window,
                index,
                source,
            },
            WindowFileError::Local {
                action,
                path,
                source,
            } => Self::Local {
                action,
                path,
                source,
            },
            WindowFileError::Task { window, reason } => Self::Task { window, reason },
            WindowFileError::Catalog { path, source } => Self::Catalog { path, source },
        }
    }
}

/// The window-file pipeline retries a failed `write` record by record
/// when the error is about records.
impl EncodeFailure for EncodeError {
    fn is_record(&self) -> bool {
        EncodeError::is_record(self)
    }

    fn is_io(&self) -> bool {
        EncodeError::is_io(self)
    }
}

fn store_class(e: &object_store::Error) -> ErrorClass {
    use object_store::Error as E;
    match e {
        E::NotFound { .. }
        | E::InvalidPath { .. }
        | E::NotSupported { .. }
        | E::NotImplemented { .. }
        | E::PermissionDenied { .. }
        | E::Unauthenticated { .. }
        | E::UnknownConfigurationKey { .. } => ErrorClass::Permanent,
        _ => ErrorClass::Transient,
    }
}
