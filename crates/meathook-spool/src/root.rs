//! `SpoolRoot`: one lock for many spools.
//!
//! A spool locks its directory with a `LOCK` file held open (`flock`) for
//! as long as it runs: one file descriptor per spool, ten thousand for ten
//! thousand pipelines. A root is a directory whose subdirectories are
//! spools; its one `LOCK` covers them all, for one process at a time.
//!
//! ```text
//! /var/lib/meathook/spool/      the root
//!   LOCK                        held by the process running its spools
//!   station-0001/               a spool (no LOCK of its own)
//!   station-0002/
//! ```
//!
//! A spool opened *without* the root in a directory under one (a second
//! process, or the `meathook-spool` command) takes the root's lock first, so
//! it fails with [`SpoolError::Locked`] while the root's holder runs, and
//! keeps the root's spools from starting while it runs itself.

use std::convert::Infallible;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::SpoolError;
use crate::fs::{Fs, StdFs};
use crate::recovery::LOCK_FILE;
use crate::spool::take_lock;

/// A locked directory of spools: its one `LOCK` covers every spool in its
/// subdirectories (opened with [`DiskSpool::with_root`](crate::DiskSpool::with_root)). Clones share
/// the lock, which is released when the last clone and the last spool
/// opened under it are gone.
pub struct SpoolRoot<F: Fs = StdFs> {
    dir: PathBuf,
    lock: Arc<F::Lock>,
}

impl<F: Fs> Clone for SpoolRoot<F> {
    fn clone(&self) -> Self {
        Self {
            dir: self.dir.clone(),
            lock: Arc::clone(&self.lock),
        }
    }
}

impl<F: Fs> fmt::Debug for SpoolRoot<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpoolRoot").field("dir", &self.dir).finish()
    }
}

impl SpoolRoot<StdFs> {
    /// Creates `dir` if needed and takes its lock. Blocking file IO: call it
    /// at start, before the runtime runs, or off the executor.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, SpoolError<Infallible>> {
        Self::open_with(StdFs, dir)
    }
}

impl<F: Fs> SpoolRoot<F> {
    /// [`SpoolRoot::open`] through `fs`.
    pub fn open_with(fs: F, dir: impl Into<PathBuf>) -> Result<Self, SpoolError<Infallible>> {
        let dir = dir.into();
        fs.create_dir_all(&dir)
            .map_err(|source| SpoolError::Start {
                op: "create directory",
                path: dir.clone(),
                source,
            })?;
        let lock = take_lock(&fs, &dir.join(LOCK_FILE))?;
        Ok(Self {
            dir,
            lock: Arc::new(lock),
        })
    }

    /// The root directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory for the spool called `name` (one path component).
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub(crate) fn lock(&self) -> Arc<F::Lock> {
        Arc::clone(&self.lock)
    }
}
