//! `SinkFailure`: a ready [`SinkError`] for sink authors, so a custom sink
//! needs no error type of its own.
//!
//! A sink's error must say whether a retry can help ([`ErrorClass`]);
//! `std::io::Error` and most library errors do not, so each custom sink used
//! to wrap them in a newtype. [`SinkFailure`] is that newtype, once: any
//! error with a class, and `std::io::Error` classified by its kind.

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::{ErrorClass, SinkError};

/// Any error with an [`ErrorClass`]: the error type of a custom sink that
/// needs no variants of its own.
///
/// Build one with [`transient`](Self::transient) or
/// [`permanent`](Self::permanent), or convert a `std::io::Error` with `?` or
/// `.into()`, which classifies it by its [`kind`](io::Error::kind) (see the
/// `From` implementation). `Display` and [`source`](Error::source) are those
/// of the wrapped error, and [`downcast_ref`](Self::downcast_ref) gives it
/// back by type. Cloning is cheap: the error is shared.
///
/// A sink whose callers match on what went wrong should keep a `thiserror`
/// enum of its own; `SinkFailure` is for the many that only need the class.
///
/// # Examples
///
/// A sink that writes each batch somewhere through `std::io`:
///
/// ```
/// use std::io::Write as _;
/// use meathook_core::{ErrorClass, IngestError, Receipt, Sink, SinkError as _, SinkFailure, WindowMeta};
///
/// /// Appends one line per record to a writer.
/// struct Lines<W>(W);
///
/// impl<W: std::io::Write + Send> Lines<W> {
///     fn write(&mut self, records: &[String]) -> Result<(), SinkFailure> {
///         for r in records {
///             if r.contains('\n') {
///                 // No retry will make this record fit on a line.
///                 return Err(SinkFailure::permanent(format!("record {r:?} spans lines")));
///             }
///             writeln!(self.0, "{r}")?; // a `std::io::Error`, classified by its kind
///         }
///         Ok(())
///     }
/// }
///
/// impl<W: std::io::Write + Send> Sink<String> for Lines<W> {
///     type Error = SinkFailure;
///
///     async fn ingest(&mut self, _: &WindowMeta, records: Vec<String>) -> Result<Receipt<SinkFailure>, IngestError<String, SinkFailure>> {
///         match self.write(&records) {
///             Ok(()) => Ok(Receipt::all(records.len())),
///             Err(e) => Err(IngestError::new(records, e)),
///         }
///     }
///
///     async fn flush(&mut self) -> Result<(), SinkFailure> {
///         Ok(self.0.flush()?)
///     }
/// }
///
/// // A full disk is worth a retry; a missing directory is not.
/// let full: SinkFailure = std::io::Error::from(std::io::ErrorKind::StorageFull).into();
/// assert_eq!(full.class(), ErrorClass::Transient);
/// let missing: SinkFailure = std::io::Error::from(std::io::ErrorKind::NotFound).into();
/// assert_eq!(missing.class(), ErrorClass::Permanent);
/// ```
#[derive(Clone)]
pub struct SinkFailure {
    class: ErrorClass,
    retry_after: Option<Duration>,
    source: Arc<dyn Error + Send + Sync + 'static>,
}

impl SinkFailure {
    /// `error`, of class `class`.
    pub fn new(class: ErrorClass, error: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self {
            class,
            retry_after: None,
            source: Arc::from(error.into()),
        }
    }

    /// `error`, worth retrying: a timeout, a dropped connection, a full
    /// disk. A message (`&str`, `String`) is an error too.
    pub fn transient(error: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self::new(ErrorClass::Transient, error)
    }

    /// `error`, which a retry would meet again: bad credentials, a missing
    /// destination, a record the destination cannot take. Layers that retry
    /// give up on the batch after a bounded number of attempts and keep it
    /// aside.
    pub fn permanent(error: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self::new(ErrorClass::Permanent, error)
    }

    /// The same failure, with the destination's hint of how long to wait
    /// before retrying (a `Retry-After`).
    #[must_use]
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// The wrapped error.
    pub fn get_ref(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.source
    }

    /// The wrapped error, if it is an `E`.
    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        self.source.downcast_ref()
    }
}

/// The class of an `std::io::Error`, by its kind.
///
/// Permanent: what the same call will meet again — a missing file or
/// directory, a refused permission, a name already taken, bad input or
/// data, an unsupported operation, a read-only file system, a file too
/// large, a bad file name, a path through something that is not a
/// directory. Transient: everything else — interrupted or timed-out calls,
/// network failures, a busy resource, a full disk or quota (space can be
/// freed), and kinds the standard library does not name.
fn io_class(kind: io::ErrorKind) -> ErrorClass {
    use io::ErrorKind as K;
    match kind {
        K::NotFound
        | K::PermissionDenied
        | K::AlreadyExists
        | K::InvalidInput
        | K::InvalidData
        | K::Unsupported
        | K::ReadOnlyFilesystem
        | K::IsADirectory
        | K::NotADirectory
        | K::DirectoryNotEmpty
        | K::FileTooLarge
        | K::InvalidFilename
        | K::NotSeekable
        | K::CrossesDevices
        | K::TooManyLinks => ErrorClass::Permanent,
        _ => ErrorClass::Transient,
    }
}

/// Classifies the error by its [`kind`](io::Error::kind): a missing path,
/// a refused permission, an existing name, invalid input or data, an
/// unsupported operation or a read-only file system are permanent;
/// interruptions, time-outs, network failures, a full disk and any other
/// kind are transient. Use [`SinkFailure::new`] to decide otherwise.
impl From<io::Error> for SinkFailure {
    fn from(error: io::Error) -> Self {
        Self::new(io_class(error.kind()), error)
    }
}

impl fmt::Debug for SinkFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkFailure")
            .field("class", &self.class)
            .field("retry_after", &self.retry_after)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for SinkFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.source, f)
    }
}

impl Error for SinkFailure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.source()
    }
}

impl SinkError for SinkFailure {
    fn class(&self) -> ErrorClass {
        self.class
    }

    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("bucket gone")]
    struct Gone(#[source] io::Error);

    #[test]
    fn constructors_set_the_class() {
        let t = SinkFailure::transient("connection reset");
        assert_eq!(t.class(), ErrorClass::Transient);
        assert_eq!(t.to_string(), "connection reset");
        assert_eq!(t.retry_after(), None);
        let p = SinkFailure::permanent(String::from("bad token"));
        assert_eq!(p.class(), ErrorClass::Permanent);
        let hinted = t.with_retry_after(Duration::from_secs(30));
        assert_eq!(hinted.retry_after(), Some(Duration::from_secs(30)));
        assert_eq!(hinted.class(), ErrorClass::Transient);
    }

    #[test]
    fn io_errors_are_classified_by_kind() {
        for kind in [
            io::ErrorKind::NotFound,
            io::ErrorKind::PermissionDenied,
            io::ErrorKind::AlreadyExists,
            io::ErrorKind::InvalidData,
            io::ErrorKind::ReadOnlyFilesystem,
        ] {
            let failure = SinkFailure::from(io::Error::from(kind));
            assert_eq!(failure.class(), ErrorClass::Permanent, "{kind:?}");
        }
        for kind in [
            io::ErrorKind::Interrupted,
            io::ErrorKind::TimedOut,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::StorageFull,
            io::ErrorKind::QuotaExceeded,
            io::ErrorKind::Other,
        ] {
            let failure = SinkFailure::from(io::Error::from(kind));
            assert_eq!(failure.class(), ErrorClass::Transient, "{kind:?}");
        }
    }

    #[test]
    fn the_wrapped_error_shows_through() {
        let failure = SinkFailure::permanent(Gone(io::Error::other("404 from the store")));
        assert_eq!(failure.to_string(), "bucket gone");
        let source = failure.source().map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("404 from the store"));
        assert!(failure.downcast_ref::<Gone>().is_some());
        assert!(failure.downcast_ref::<io::Error>().is_none());
        assert!(failure.get_ref().is::<Gone>());
        let copy = failure.clone();
        assert!(format!("{copy:?}").contains("Permanent"), "{copy:?}");

        let io: SinkFailure = io::Error::new(io::ErrorKind::NotFound, "no such dir").into();
        assert_eq!(io.to_string(), "no such dir");
        assert_eq!(
            io.downcast_ref::<io::Error>().map(io::Error::kind),
            Some(io::ErrorKind::NotFound)
        );
    }
}
