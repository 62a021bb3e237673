//! The blocking-pool steps of encoding one window: open a scratch file and
//! a session over it, write chunks leniently, finish, fsync and hash.
//!
//! Each step moves the session (and the chunk) to tokio's blocking pool
//! and back, so encoding and file IO never run on the executor's worker
//! threads, and a refused chunk can be handed back to the caller.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use meathook_core::{EncodeSession, Encoder};

use super::error::WindowFileError;
use super::lenient::{EncodeFailure, write_lenient};
use crate::local::{ScratchFile, Sealed};

/// The pipeline's error for encoder `E` of records `R`.
pub(crate) type Failure<R, E> = WindowFileError<<E as Encoder<R>>::Error>;

/// Records left out, by index in the batch, with the encoder's reason.
pub(crate) type Rejected<R, E> = Vec<(usize, <E as Encoder<R>>::Error)>;

/// Runs `f` on the blocking pool.
pub(crate) async fn blocking<T, X>(
    window: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, WindowFileError<X>>
where
    T: Send + 'static,
{
    meathook_core::blocking(f)
        .await
        .map_err(|e| WindowFileError::Task {
            window: window.to_owned(),
            reason: e.to_string(),
        })
}

/// A window being encoded into a scratch file.
pub(crate) struct Job<R, E: Encoder<R>> {
    session: E::Session<ScratchFile>,
    /// The scratch file, to remove it if the batch fails.
    pub(crate) path: PathBuf,
    rejected: Rejected<R, E>,
    /// Records offered so far.
    pub(crate) total: usize,
}

/// A chunk of records on its way to the blocking pool and back.
pub(crate) struct Records<R>(pub(crate) Vec<R>);

/// A finished window file: fsynced, hashed, with its first bytes.
pub(crate) struct Finished<R, E: Encoder<R>> {
    pub(crate) sealed: Sealed,
    pub(crate) head: Vec<u8>,
    pub(crate) rejected: Rejected<R, E>,
    pub(crate) total: usize,
}

/// Opens a scratch file in `dir` and an encoding session over it.
pub(crate) async fn begin<R, E>(
    encoder: &Arc<E>,
    dir: &Path,
    window: &str,
) -> Result<Job<R, E>, Failure<R, E>>
where
    R: 'static,
    E: Encoder<R> + 'static,
    E::Session<ScratchFile>: 'static,
{
    let encoder = Arc::clone(encoder);
    let dir = dir.to_path_buf();
    let w = window.to_owned();
    blocking(window, move || {
        let file = ScratchFile::create(&dir).map_err(|source| WindowFileError::Local {
            action: "creating a scratch file in",
            path: dir.clone(),
            source,
        })?;
        let path = file.path().to_path_buf();
        match encoder.begin(file) {
            Ok(session) => Ok(Job {
                session,
                path,
                rejected: Vec::new(),
                total: 0,
            }),
            Err(source) => {
                let _ = std::fs::remove_file(&path);
                Err(WindowFileError::Encode { window: w, source })
            }
        }
    })
    .await?
}

/// Writes one chunk on the blocking pool; hands the job and the chunk
/// back. On failure the chunk comes back too, unless the blocking task
/// stopped (a panic cannot hand it back).
pub(crate) async fn write<R, E>(
    encoder: &Arc<E>,
    mut job: Job<R, E>,
    chunk: Records<R>,
    window: &str,
) -> Result<(Job<R, E>, Records<R>), (Failure<R, E>, Option<Records<R>>)>
where
    R: Send + Sync + 'static,
    E: Encoder<R> + 'static,
    E::Error: EncodeFailure,
    E::Session<ScratchFile>: 'static,
{
    let encoder = Arc::clone(encoder);
    let done = blocking(window, move || {
        let offset = job.total;
        let written = write_lenient(
            &*encoder,
            &mut job.session,
            &chunk.0,
            offset,
            &mut job.rejected,
        );
        job.total += chunk.0.len();
        (job, chunk, written)
    })
    .await;
    match done {
        Err(e) => Err((e, None)),
        Ok((job, chunk, Ok(()))) => Ok((job, chunk)),
        Ok((_, chunk, Err(source))) => Err((
            WindowFileError::Encode {
                window: window.to_owned(),
                source,
            },
            Some(chunk),
        )),
    }
}

/// Completes the file, fsyncs it, and reads its first `head` bytes.
pub(crate) async fn finish<R, E>(
    job: Job<R, E>,
    head: usize,
    window: &str,
) -> Result<Finished<R, E>, Failure<R, E>>
where
    R: 'static,
    E: Encoder<R> + 'static,
    E::Session<ScratchFile>: 'static,
{
    let w = window.to_owned();
    blocking(window, move || {
        let file = job
            .session
            .finish()
            .map_err(|source| WindowFileError::Encode { window: w, source })?;
        let sealed = file.seal().map_err(|source| WindowFileError::Local {
            action: "fsyncing",
            path: job.path.clone(),
            source,
        })?;
        let first = read_head(&sealed.path, head).map_err(|source| WindowFileError::Local {
            action: "reading",
            path: sealed.path.clone(),
            source,
        })?;
        Ok(Finished {
            sealed,
            head: first,
            rejected: job.rejected,
            total: job.total,
        })
    })
    .await?
}

/// The first `len` bytes of a file (fewer if it is shorter).
fn read_head(path: &Path, len: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut head = Vec::with_capacity(len);
    if len > 0 {
        std::fs::File::open(path)?
            .take(len as u64)
            .read_to_end(&mut head)?;
    }
    Ok(head)
}

/// Removes a scratch file after a failure, or after publishing if it is
/// still there, on the blocking pool. A file already gone is fine.
pub(crate) async fn discard(path: PathBuf) {
    let _ = meathook_core::blocking(move || std::fs::remove_file(path)).await;
}
