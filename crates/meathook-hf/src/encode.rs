//! Encoding a window into a scratch file, chunk by chunk, on tokio's
//! blocking pool.
//!
//! **Invariant:** memory is bounded by one chunk and the encoder's row
//! group, never by the window: records stream into a
//! [`ScratchFile`] that hashes what it writes, so the sha256 the Hub needs
//! costs no second pass. A record that cannot be encoded on its own is left
//! out and reported by index; its neighbours are kept.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use meathook_core::{EncodeSession, Encoder};
use meathook_parquet::EncodeError;
use meathook_parquet::local::{ScratchFile, Sealed};

use crate::error::HfError;

/// Records left out, by index, with the reason.
pub(crate) type Rejected = Vec<(usize, String)>;

/// A file being encoded.
pub(crate) struct Job<R, E: Encoder<R>> {
    pub(crate) session: E::Session<ScratchFile>,
    pub(crate) path: PathBuf,
    pub(crate) rejected: Rejected,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
    scratch: &Path,
) -> Result<T, HfError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| HfError::Local {
            action: "encoding into",
            path: scratch.to_path_buf(),
            reason: e.to_string(),
        })
}

fn encode_error(repo: &str, window: &str, e: &EncodeError) -> HfError {
    match e {
        EncodeError::Io(io) => HfError::Local {
            action: "writing a scratch file for",
            path: PathBuf::from(window),
            reason: io.to_string(),
        },
        other => HfError::Encode {
            repo: repo.to_owned(),
            window: window.to_owned(),
            reason: other.to_string(),
        },
    }
}

/// Opens a scratch file in `dir` and an encoding session over it.
pub(crate) async fn begin<R, E>(
    encoder: &Arc<E>,
    dir: &Path,
    repo: &str,
    window: &str,
) -> Result<Job<R, E>, HfError>
where
    R: 'static,
    E: Encoder<R, Error = EncodeError> + 'static,
    E::Session<ScratchFile>: 'static,
{
    let encoder = Arc::clone(encoder);
    let d = dir.to_path_buf();
    let (repo_s, window_s) = (repo.to_owned(), window.to_owned());
    blocking(
        move || {
            let file = ScratchFile::create(&d).map_err(|e| HfError::Local {
                action: "creating a scratch file in",
                path: d.clone(),
                reason: e.to_string(),
            })?;
            let path = file.path().to_path_buf();
            match encoder.begin(file) {
                Ok(session) => Ok(Job {
                    session,
                    path,
                    rejected: Vec::new(),
                }),
                Err(e) => {
                    let _ = std::fs::remove_file(&path);
                    Err(encode_error(&repo_s, &window_s, &e))
                }
            }
        },
        dir,
    )
    .await?
}

/// Writes one chunk; hands the job and the chunk back (the chunk so that a
/// refusal can return the records to the caller).
pub(crate) async fn write<R, E, T>(
    encoder: &Arc<E>,
    mut job: Job<R, E>,
    chunk: T,
    offset: usize,
    repo: &str,
    window: &str,
) -> Result<(Job<R, E>, T), (HfError, Option<T>)>
where
    R: Send + Sync + 'static,
    E: Encoder<R, Error = EncodeError> + 'static,
    E::Session<ScratchFile>: 'static,
    T: AsRef<[R]> + Send + 'static,
{
    let encoder = Arc::clone(encoder);
    let scratch = job.path.clone();
    let done = blocking(
        move || {
            let r = write_lenient(&*encoder, &mut job, chunk.as_ref(), offset);
            (job, chunk, r)
        },
        &scratch,
    )
    .await;
    match done {
        Err(e) => Err((e, None)),
        Ok((job, chunk, Ok(()))) => Ok((job, chunk)),
        Ok((job, chunk, Err(e))) => {
            let _ = std::fs::remove_file(&job.path);
            Err((encode_error(repo, window, &e), Some(chunk)))
        }
    }
}

fn write_lenient<R, E>(
    encoder: &E,
    job: &mut Job<R, E>,
    records: &[R],
    offset: usize,
) -> Result<(), EncodeError>
where
    E: Encoder<R, Error = EncodeError>,
{
    match job.session.write(records) {
        Ok(()) => return Ok(()),
        Err(e) if !e.is_record() => return Err(e),
        Err(_) => {}
    }
    let mut run_start = 0;
    for (i, record) in records.iter().enumerate() {
        if let Err(e) = encoder.encode(std::slice::from_ref(record)) {
            if !e.is_record() {
                return Err(e);
            }
            job.session.write(&records[run_start..i])?;
            job.rejected.push((offset + i, e.to_string()));
            run_start = i + 1;
        }
    }
    job.session.write(&records[run_start..])
}

/// A finished, fsynced scratch file and its first bytes.
#[derive(Debug)]
pub(crate) struct Encoded {
    pub(crate) sealed: Sealed,
    pub(crate) sample: Vec<u8>,
    pub(crate) rejected: Rejected,
}

/// Completes the file, fsyncs it and reads its first 512 bytes.
pub(crate) async fn finish<R, E>(
    job: Job<R, E>,
    repo: &str,
    window: &str,
) -> Result<Encoded, HfError>
where
    R: 'static,
    E: Encoder<R, Error = EncodeError> + 'static,
    E::Session<ScratchFile>: 'static,
{
    let (repo_s, window_s) = (repo.to_owned(), window.to_owned());
    let scratch = job.path.clone();
    let path = job.path.clone();
    let result = blocking(
        move || {
            let file = job
                .session
                .finish()
                .map_err(|e| encode_error(&repo_s, &window_s, &e))?;
            let sealed = file.seal().map_err(|e| HfError::Local {
                action: "fsyncing",
                path: job.path.clone(),
                reason: e.to_string(),
            })?;
            let mut sample = Vec::with_capacity(512);
            std::fs::File::open(&sealed.path)
                .and_then(|f| {
                    std::io::Read::read_to_end(&mut std::io::Read::take(f, 512), &mut sample)
                })
                .map_err(|e| HfError::Local {
                    action: "reading",
                    path: sealed.path.clone(),
                    reason: e.to_string(),
                })?;
            Ok(Encoded {
                sealed,
                sample,
                rejected: job.rejected,
            })
        },
        &scratch,
    )
    .await;
    let result = result.and_then(|r| r);
    if result.is_err() {
        discard(path).await;
    }
    result
}

/// Removes a scratch file.
pub(crate) async fn discard(path: PathBuf) {
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(path)).await;
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
