//! A file handed to the committer, and what became of it: the items a
//! commit round and the committer that runs rounds both speak of, kept
//! apart from both so that neither imports the other's.

use std::path::PathBuf;

use crate::error::HfError;

/// A file encoded and hashed, ready to be committed.
#[derive(Debug, Clone)]
pub(crate) struct ReadyFile {
    /// Its path in the repository.
    pub(crate) path: String,
    /// The scratch file holding it.
    pub(crate) local: PathBuf,
    /// Its sha256, lower-case hex.
    pub(crate) oid: String,
    /// Its size.
    pub(crate) size: u64,
    /// Its first ≤ 512 bytes.
    pub(crate) sample: Vec<u8>,
    /// The pipeline, for the dataset card.
    pub(crate) pipeline: String,
    /// The glob of the pipeline's files, for the dataset card.
    pub(crate) glob: String,
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Delivered {
    /// Committed in commit `oid`.
    Committed(String),
    /// The path already held these exact bytes.
    AlreadyThere,
}

/// One file's answer: delivered, or why not.
pub(crate) type Answer = Result<Delivered, HfError>;
