//! What a sink adds to the window-file pipeline: where a sealed file goes
//! ([`Publish`]), and what the pipeline hands it and gets back.

use std::path::PathBuf;

use meathook_core::{SinkError, WindowMeta};

use super::error::WindowFileError;

/// A window's file, encoded, fsynced and hashed, ready to be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedFile {
    /// Its path under the destination's root, from the
    /// [`layout`](crate::layout): the pipeline, window start and batch
    /// identity, or the content hash for a batch without one.
    pub path: String,
    /// The encoder's file extension, without the dot.
    pub extension: String,
    /// The scratch file holding it. The pipeline removes it after
    /// [`Publish::publish`] returns, whatever it returned.
    pub scratch: PathBuf,
    /// Its SHA-256.
    pub sha256: [u8; 32],
    /// Its size in bytes.
    pub len: u64,
    /// The records in it.
    pub rows: u64,
    /// Its first bytes, as many as [`WindowFile::with_head_bytes`](super::WindowFile::with_head_bytes)
    /// asked for (none by default).
    pub head: Vec<u8>,
}

impl SealedFile {
    /// Its SHA-256 in lower-case hex (the oid LFS and the Hub name it by).
    pub fn sha256_hex(&self) -> String {
        use std::fmt::Write as _;
        self.sha256.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }
}

/// Where a published file landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landed {
    /// The path delivery records give it, under the destination.
    pub path: String,
    /// Where it is, for messages: a local path, a URL, a repository path.
    pub location: String,
    /// `false` when the same bytes were already there (a replay).
    pub created: bool,
    /// The commit that holds it, where the destination has commits and
    /// this publish made one.
    pub commit: Option<String>,
}

/// The part of a terminal sink that differs between destinations: landing
/// a sealed file, naming the destination, and the sink's own error type.
///
/// `X` is the encoder's error.
pub trait Publish<X>: Send {
    /// The sink's error.
    type Error: SinkError;

    /// How delivery records name the destination (a directory, a bucket
    /// URL, `hf://datasets/…`).
    fn destination(&self) -> String;

    /// The sink's error for a failure of the pipeline; the pipeline's
    /// error should stay reachable as its source.
    fn error(&self, error: WindowFileError<X>) -> Self::Error;

    /// Refuses a window before anything is encoded, when no retry could
    /// ever land it (a pipeline name no file can carry, say).
    ///
    /// By default, every window is admitted.
    ///
    /// # Errors
    ///
    /// The sink's error, which fails the `ingest` with every record
    /// handed back.
    fn admit(&self, window: &WindowMeta) -> Result<(), Self::Error> {
        let _ = window;
        Ok(())
    }

    /// Lands `file` at `file.path` under the destination, unless the same
    /// bytes are there already; never replaces other bytes.
    fn publish(
        &mut self,
        window: &WindowMeta,
        file: &SealedFile,
    ) -> impl Future<Output = Result<Landed, Self::Error>> + Send;
}
